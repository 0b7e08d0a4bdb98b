"""x264 / x265 anchors encoded and decoded through PyAV, with per-CRF rate, PSNR and timings.

What is measured, per CRF (see tools/metrics.py for the PSNR conventions):

* ``payload_bytes``: sum of the encoder's packet sizes = the coded frames, without the
  container and without the parameter sets the mp4 muxer keeps out of band;
  ``sei_bytes``: the SEI NAL units inside those packets (libx264's ~0.7 KB version/options
  string in the first packet; x265's equivalent is switched off with ``info=0``);
  ``coded_bytes`` = payload - SEI: **what kbit/s and bpp use**;
  ``header_bytes``: the encoder's extradata (SPS/PPS, or VPS/SPS/PPS for HEVC: avcC/hvcC;
  x265 also repeats its VPS/SPS/PPS in band at every IRAP, counted in the payload);
  ``file_bytes``: size of the whole .mp4 file written.
* PSNR per frame and sequence mean (mean of per-frame PSNR) of the PyAV-decoded yuv420p planes
  against the source planes, peak 255.
* ``encode_s``: wall time of sending every frame to the encoder, flushing it and muxing
  (libx264/libx265 use their own threads); ``decode_s``: wall time of demuxing, decoding and
  copying the planes to numpy.

Settings: ``-preset medium`` (changeable), ``-crf N``, keyint = min-keyint = intra period and
scenecut=0 so an I frame falls exactly every ``intra_period`` frames (``None``/0: the
encoder's default, 250), B frames and everything else at the preset's default (x264 medium:
3 B frames, closed GOP; x265 medium: 4 B frames, open GOP); x265 with ``log-level=error``
and ``info=0``; frame threading (PyAV's default, slice threading, would put libx264 in
sliced-threads mode: 2 slices per frame on 2 cores).
Frames are handed to the encoders as fresh ``VideoFrame.from_ndarray`` frames (pict_type NONE):
frames decoded by PyAV carry pict_type I, which libx264 honours as "force an I frame", so
re-encoding decoded frames as they are would give an all-intra anchor.
Repeatability: x265 output is bit-exact from run to run; libx264's mb-tree rate control
(on by default) was seen to vary by a few bytes (< 0.1 dB) between runs in one process in
this build, even with threads=1 (``no-mbtree`` makes it exact): far below what a BD-rate resolves.
Input must be 8-bit yuv420p with even width and height (H.264/HEVC 4:2:0 need even sizes);
odd sizes are rejected, or cropped to even with ``crop_odd=True``.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from tools.clips import Planes, frame_to_planes, read_y4m
from tools.metrics import SequencePSNR, bpp, kbps, sequence_psnr

CODECS = ("libx264", "libx265")
# AVPictureType values (PyAV 18 gives VideoFrame.pict_type as a plain int)
_PICT_TYPES = {1: "I", 2: "P", 3: "B", 4: "S", 5: "SI", 6: "SP", 7: "BI"}


@dataclass
class AnchorResult:
    """One anchor encode: rate, quality and timings for one codec at one CRF."""

    codec: str
    crf: int
    preset: str
    n_frames: int
    width: int
    height: int
    fps: float
    payload_bytes: int
    sei_bytes: int
    header_bytes: int
    file_bytes: int
    encode_s: float
    decode_s: float
    psnr: SequencePSNR = field(repr=False)
    frame_types: list[str] = field(default_factory=list)
    path: str | None = None

    @property
    def coded_bytes(self) -> int:
        """Payload without SEI NAL units: what the rate figures use."""
        return self.payload_bytes - self.sei_bytes

    @property
    def kbps(self) -> float:
        """Bitrate of ``coded_bytes`` in kbit/s."""
        return kbps(self.coded_bytes, self.n_frames, self.fps)

    @property
    def file_kbps(self) -> float:
        """Whole-file bitrate in kbit/s."""
        return kbps(self.file_bytes, self.n_frames, self.fps)

    @property
    def bpp(self) -> float:
        """Bits of ``coded_bytes`` per luma pixel."""
        return bpp(self.coded_bytes, self.n_frames, self.width, self.height)

    def as_dict(self) -> dict:
        """JSON-able summary including per-frame PSNRs."""
        return {
            "codec": self.codec,
            "crf": self.crf,
            "preset": self.preset,
            "n_frames": self.n_frames,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "payload_bytes": self.payload_bytes,
            "sei_bytes": self.sei_bytes,
            "coded_bytes": self.coded_bytes,
            "header_bytes": self.header_bytes,
            "file_bytes": self.file_bytes,
            "kbps": self.kbps,
            "file_kbps": self.file_kbps,
            "bpp": self.bpp,
            "encode_s": self.encode_s,
            "decode_s": self.decode_s,
            "psnr": self.psnr.summary(),
            "psnr_per_frame": [f.as_dict() for f in self.psnr.frames],
            "frame_types": self.frame_types,
        }


def _is_sei(head: int, codec: str) -> bool:
    if codec == "libx265":
        return (head >> 1) & 0x3F in (39, 40)  # prefix / suffix SEI
    return head & 0x1F == 6


def sei_bytes(packet: bytes, codec: str) -> int:
    """Bytes of the SEI NAL units in one H.264/HEVC packet, Annex B or length-prefixed (AVCC/HVCC).

    Counted with their start code / 4-byte length prefix. libx264 puts a ~0.7 KB user-data SEI
    (its version and full option string) in the first packet; it is not needed to decode, so
    ``coded_bytes`` leaves it out.
    """
    total = 0
    if packet[:3] == b"\x00\x00\x01" or packet[:4] == b"\x00\x00\x00\x01":
        starts = []  # (start of the start code, start of the NAL)
        i = 0
        while (j := packet.find(b"\x00\x00\x01", i)) >= 0:
            code = j - 1 if j > 0 and packet[j - 1] == 0 else j
            starts.append((code, j + 3))
            i = j + 3
        for k, (code, nal) in enumerate(starts):
            end = starts[k + 1][0] if k + 1 < len(starts) else len(packet)
            if nal < len(packet) and _is_sei(packet[nal], codec):
                total += end - code
        return total
    pos = 0
    while pos + 5 <= len(packet):
        size = int.from_bytes(packet[pos : pos + 4], "big")
        if _is_sei(packet[pos + 4], codec):
            total += 4 + size
        pos += 4 + size
    return total


def _check_frames(frames: Sequence[Planes], crop_odd: bool) -> list[Planes]:
    if not frames:
        raise ValueError("no frames to encode")
    h, w = frames[0][0].shape
    for planes in frames:
        if any(p.dtype != np.uint8 for p in planes):
            raise ValueError("anchors take 8-bit yuv420p planes (uint8)")
        if planes[0].shape != (h, w) or planes[1].shape != ((h + 1) // 2, (w + 1) // 2):
            raise ValueError("all frames must be yuv420p of the same size")
    if h % 2 or w % 2:
        if not crop_odd:
            raise ValueError(
                f"{w}x{h}: libx264/libx265 need even width and height for yuv420p; "
                "crop the clip to even dimensions or pass crop_odd=True"
            )
        h2, w2 = h - h % 2, w - w % 2
        if h2 < 2 or w2 < 2:
            raise ValueError(f"{w}x{h} is too small once cropped to even dimensions")
        return [(y[:h2, :w2], u[: h2 // 2, : w2 // 2], v[: h2 // 2, : w2 // 2]) for y, u, v in frames]
    return list(frames)


def _codec_options(codec: str, crf: int, preset: str, intra_period: int | None) -> dict[str, str]:
    params = []
    if intra_period:
        params.append(f"keyint={intra_period}:min-keyint={intra_period}:scenecut=0")
    if codec == "libx265":
        params.insert(0, "log-level=error:info=0")
        return {"crf": str(crf), "preset": preset, "x265-params": ":".join(params)}
    if codec == "libx264":
        opts = {"crf": str(crf), "preset": preset}
        if params:
            opts["x264-params"] = ":".join(params)
        return opts
    raise ValueError(f"unknown anchor codec {codec!r}: choose one of {', '.join(CODECS)}")


def encode_decode(
    frames: Sequence[Planes] | str | os.PathLike,
    codec: str,
    crf: int,
    fps: float | Fraction = 30,
    intra_period: int | None = None,
    preset: str = "medium",
    out_dir: str | os.PathLike | None = None,
    crop_odd: bool = False,
) -> AnchorResult:
    """Encode ``frames`` (list of (Y, U, V) or a y4m path) with ``codec`` at ``crf``, decode, measure."""
    import av

    if isinstance(frames, (str, os.PathLike)):
        clip = read_y4m(frames)
        frames, fps = clip.frames, clip.fps
    frames = _check_frames(frames, crop_odd)
    h, w = frames[0][0].shape
    rate = Fraction(fps).limit_denominator(1001000)
    options = _codec_options(codec, crf, preset, intra_period)

    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="anchor_")
        out_dir = tmp.name
    path = Path(out_dir) / f"{codec}_crf{crf}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # frames as PyAV wants them, built before the clock starts
        av_frames = []
        for i, (y, u, v) in enumerate(frames):
            arr = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(h * 3 // 2, w)
            frame = av.VideoFrame.from_ndarray(arr, format="yuv420p")
            frame.pts = i
            frame.time_base = 1 / rate
            av_frames.append(frame)

        t0 = time.perf_counter()
        with av.open(str(path), "w", format="mp4") as container:
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.time_base = 1 / rate
            stream.options = options
            # PyAV defaults encoders to slice threading, which turns libx264 into sliced-threads
            # mode (one slice per thread, no threaded lookahead): not x264's usual behaviour.
            stream.codec_context.thread_type = "FRAME"
            packets = []
            for frame in av_frames:
                for packet in stream.encode(frame):
                    packets.append(bytes(packet))
                    container.mux(packet)
            for packet in stream.encode(None):
                packets.append(bytes(packet))
                container.mux(packet)
            extradata = stream.codec_context.extradata
        encode_s = time.perf_counter() - t0
        header = len(extradata) if extradata else 0
        payload = sum(len(p) for p in packets)
        sei = sum(sei_bytes(p, codec) for p in packets)

        decoded: list[Planes] = []
        frame_types: list[str] = []
        t0 = time.perf_counter()
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                decoded.append(frame_to_planes(frame))
                frame_types.append(_PICT_TYPES.get(int(frame.pict_type), "?"))
        decode_s = time.perf_counter() - t0
        if len(decoded) != len(frames):
            raise RuntimeError(f"{codec} crf {crf}: decoded {len(decoded)} frames, sent {len(frames)}")
        file_bytes = path.stat().st_size
    finally:
        if tmp is not None:
            tmp.cleanup()

    return AnchorResult(
        codec=codec,
        crf=crf,
        preset=preset,
        n_frames=len(frames),
        width=w,
        height=h,
        fps=float(rate),
        payload_bytes=payload,
        sei_bytes=sei,
        header_bytes=header,
        file_bytes=file_bytes,
        encode_s=encode_s,
        decode_s=decode_s,
        psnr=sequence_psnr(frames, decoded, 8),
        frame_types=frame_types,
        path=None if tmp is not None else str(path),
    )


def run_anchors(
    frames: Sequence[Planes] | str | os.PathLike,
    crfs: Sequence[int],
    codecs: Sequence[str] = CODECS,
    fps: float | Fraction = 30,
    intra_period: int | None = None,
    preset: str = "medium",
    out_dir: str | os.PathLike | None = None,
    crop_odd: bool = False,
) -> dict[str, list[AnchorResult]]:
    """Every codec at every CRF: ``{codec: [AnchorResult per CRF, in the given order]}``."""
    if isinstance(frames, (str, os.PathLike)):
        clip = read_y4m(frames)
        frames, fps = clip.frames, clip.fps
    return {
        codec: [
            encode_decode(frames, codec, crf, fps, intra_period, preset, out_dir, crop_odd) for crf in crfs
        ]
        for codec in codecs
    }
