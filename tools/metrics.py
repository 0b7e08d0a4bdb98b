"""PSNR (per plane, per frame, per sequence, 6:1:1 and 4:1:1 YUV weighting) and rate (kbit/s, bpp) helpers.

Conventions, fixed here once for every benchmark in ``tools/``:

* peak = 2**bit_depth - 1 (255, 1023 for 10-bit), as ffmpeg's ``psnr`` filter and Cool-chic's
  [0, 1] normalisation; HM's 255 << (bd - 8) differs by ~0.03 dB at 10 bits.
* plane PSNR = 10 log10(peak^2 / MSE), MSE over all samples of the plane in float64;
  identical planes give ``math.inf``.
* YUV PSNR of a frame is a weighted mean of the plane PSNRs in dB:
  ``yuv611 = (6 Y + U + V) / 8`` (the video-coding convention, used for BD-rates here) and
  ``yuv411 = (4 Y + U + V) / 6`` (Cool-chic's luma/chroma weighting of its training loss).
* **Sequence PSNR = arithmetic mean of the per-frame PSNRs** (JVET CTC style), for each plane
  and for each weighted value. This is *not* ffmpeg's summary line, which is the PSNR of the
  frame-averaged MSE (about 0.4 dB lower on a clip with uneven frame qualities).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Sequence

import numpy as np


def mse(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean squared error of two same-shaped sample arrays, computed in float64."""
    if reference.shape != distorted.shape:
        raise ValueError(f"shape mismatch: {reference.shape} vs {distorted.shape}")
    diff = reference.astype(np.float64) - distorted.astype(np.float64)
    return float(np.mean(diff * diff))


def psnr(reference: np.ndarray, distorted: np.ndarray, bit_depth: int = 8) -> float:
    """PSNR in dB of one plane, peak 2**bit_depth - 1; ``inf`` when the planes are identical."""
    err = mse(reference, distorted)
    peak = float((1 << bit_depth) - 1)
    return math.inf if err == 0.0 else 10.0 * math.log10(peak * peak / err)


@dataclass(frozen=True)
class FramePSNR:
    """PSNR of one frame: planes Y, U, V and the 6:1:1 / 4:1:1 weighted YUV values (dB)."""

    y: float
    u: float
    v: float

    @property
    def yuv611(self) -> float:
        """(6 Y + U + V) / 8 in dB: the video-coding convention."""
        return (6.0 * self.y + self.u + self.v) / 8.0

    @property
    def yuv411(self) -> float:
        """(4 Y + U + V) / 6 in dB: Cool-chic's training weighting."""
        return (4.0 * self.y + self.u + self.v) / 6.0

    def as_dict(self) -> dict[str, float]:
        """Plain dict with y, u, v, yuv611, yuv411."""
        return {**asdict(self), "yuv611": self.yuv611, "yuv411": self.yuv411}


def frame_psnr(
    reference: Sequence[np.ndarray], distorted: Sequence[np.ndarray], bit_depth: int = 8
) -> FramePSNR:
    """Per-plane PSNR of one (Y, U, V) frame against its reference."""
    if len(reference) != 3 or len(distorted) != 3:
        raise ValueError("frames must have three planes")
    y, u, v = (psnr(r, d, bit_depth) for r, d in zip(reference, distorted))
    return FramePSNR(y, u, v)


@dataclass(frozen=True)
class SequencePSNR:
    """Per-frame PSNRs and their means (sequence PSNR = mean of per-frame PSNR, CTC style)."""

    frames: list[FramePSNR] = field(default_factory=list)

    def _mean(self, key: str) -> float:
        return float(np.mean([getattr(f, key) for f in self.frames])) if self.frames else math.nan

    @property
    def y(self) -> float:
        """Mean over frames of PSNR-Y."""
        return self._mean("y")

    @property
    def u(self) -> float:
        """Mean over frames of PSNR-U."""
        return self._mean("u")

    @property
    def v(self) -> float:
        """Mean over frames of PSNR-V."""
        return self._mean("v")

    @property
    def yuv611(self) -> float:
        """Mean over frames of (6Y + U + V) / 8 (equal to (6 mean Y + mean U + mean V) / 8)."""
        return self._mean("yuv611")

    @property
    def yuv411(self) -> float:
        """Mean over frames of (4Y + U + V) / 6."""
        return self._mean("yuv411")

    def summary(self) -> dict[str, float]:
        """Sequence means: y, u, v, yuv611, yuv411."""
        return {k: getattr(self, k) for k in ("y", "u", "v", "yuv611", "yuv411")}


def sequence_psnr(
    reference: Sequence[Sequence[np.ndarray]],
    distorted: Sequence[Sequence[np.ndarray]],
    bit_depth: int = 8,
) -> SequencePSNR:
    """Per-frame PSNR of two equally long lists of (Y, U, V) frames; means are per-frame means."""
    if len(reference) != len(distorted):
        raise ValueError(f"{len(reference)} reference frames vs {len(distorted)} distorted frames")
    return SequencePSNR([frame_psnr(r, d, bit_depth) for r, d in zip(reference, distorted)])


def kbps(n_bytes: int, n_frames: int, fps: float | Fraction) -> float:
    """Bitrate in kbit/s (1000 bit/s): bytes * 8 / (n_frames / fps) / 1000."""
    if n_frames <= 0:
        raise ValueError("n_frames must be positive")
    return n_bytes * 8.0 / (n_frames / float(fps)) / 1000.0


def bpp(n_bytes: int, n_frames: int, width: int, height: int) -> float:
    """Bits per luma pixel: bytes * 8 / (n_frames * width * height)."""
    return n_bytes * 8.0 / (n_frames * width * height)
