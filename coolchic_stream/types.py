"""Plain data types shared by every layer: pictures, packets and serialized enums.

No torch here: these types cross the boundary between media I/O, the codec and
the container.

    media ──Picture──► Encoder ──Packet──► container ──Packet──► Decoder ──Picture──► media
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from fractions import Fraction

import numpy as np

from .errors import UnsupportedFormatError
from .spec import BIT_DEPTHS, MAX_FRAME_SAMPLES, MAX_FRAME_SIDE, MIN_FRAME_SIDE, frame_size_allowed


class FrameType(IntEnum):
    """Coding type of a frame: intra, one-reference or two-reference inter."""

    I = 0  # noqa: E741 - the codec's own name
    P = 1
    B = 2


class DataType(IntEnum):
    """Colour layout of the planes a frame is coded in."""

    YUV420 = 0
    YUV444 = 1
    RGB = 2


class ColorRange(IntEnum):
    """Nominal sample range, as FFmpeg's AVColorRange."""

    UNSPECIFIED = 0
    LIMITED = 1
    FULL = 2


class ChromaSiting(IntEnum):
    """Position of 4:2:0 chroma samples (y4m ``C420jpeg``/``C420mpeg2``/``C420paldv``)."""

    UNSPECIFIED = 0
    LEFT = 1
    CENTER = 2
    TOPLEFT = 3


class GopStructure(IntEnum):
    """How frames are grouped and predicted."""

    INTRA = 0
    LOWDELAY = 1
    RANDOM_ACCESS = 2


class CoolChicRole(IntEnum):
    """What a Cool-chic of a frame produces."""

    RESIDUE = 0
    MOTION = 1


def chroma_shape(data_type: DataType, height: int, width: int) -> tuple[int, int]:
    """Shape of the second and third planes for a luma of ``height`` x ``width``."""
    if data_type == DataType.YUV420:
        return (height + 1) // 2, (width + 1) // 2
    return height, width


def sample_dtype(bit_depth: int) -> np.dtype:
    """numpy dtype holding samples of ``bit_depth`` bits."""
    return np.dtype(np.uint8) if bit_depth <= 8 else np.dtype(np.uint16)


@dataclass(frozen=True, eq=False)
class Picture:
    """One decoded or source picture as three planes of integer samples.

    planes: (Y, U, V) or (R, G, B); Y is (H, W); U, V are (ceil(H/2), ceil(W/2))
    for yuv420, (H, W) otherwise. dtype uint8 up to 8 bits, uint16 above.
    pts: display index of the frame in its sequence.
    """

    planes: tuple[np.ndarray, np.ndarray, np.ndarray]
    bit_depth: int = 8
    data_type: DataType = DataType.YUV420
    pts: int = 0

    def __post_init__(self) -> None:
        if len(self.planes) != 3:
            raise UnsupportedFormatError(
                f"picture has {len(self.planes)} planes, expected 3", "use yuv420p, yuv444p or rgb"
            )
        if not 8 <= self.bit_depth <= 16:
            raise UnsupportedFormatError(f"bit depth {self.bit_depth} is not supported", "use 8 to 16 bits")
        height, width = self.planes[0].shape
        if height < 2 or width < 2:
            raise UnsupportedFormatError(f"picture size {width}x{height} is too small", "frames must be at least 2x2")
        expected = chroma_shape(self.data_type, height, width)
        for plane in self.planes:
            if plane.ndim != 2 or plane.dtype != sample_dtype(self.bit_depth):
                raise UnsupportedFormatError(
                    f"plane of shape {plane.shape} and dtype {plane.dtype} does not fit "
                    f"{self.data_type.name.lower()} {self.bit_depth}-bit",
                    "convert planes with media.to_picture",
                )
        for plane in self.planes[1:]:
            if plane.shape != expected:
                raise UnsupportedFormatError(
                    f"chroma plane of shape {plane.shape} does not match {expected} for "
                    f"{self.data_type.name.lower()} {width}x{height}",
                    "check the pixel format",
                )
        if int(max(int(p.max(initial=0)) for p in self.planes)) >= 1 << self.bit_depth:
            raise UnsupportedFormatError(
                f"sample values exceed {self.bit_depth} bits", "check the declared bit depth"
            )

    @property
    def height(self) -> int:
        return int(self.planes[0].shape[0])

    @property
    def width(self) -> int:
        return int(self.planes[0].shape[1])

    def check_format_of(self, stream: "Picture", display: int) -> None:
        """Raise UnsupportedFormatError unless this picture (number ``display``) has the format of
        ``stream`` (the stream's first picture): size, bit depth and data type."""
        def name(p: Picture) -> str:
            return f"{p.width}x{p.height} {p.data_type.name.lower()} {p.bit_depth}-bit"

        if name(self) != name(stream):
            raise UnsupportedFormatError(
                f"picture {display} is {name(self)}, the stream is {name(stream)}", "all frames of a stream share one format"
            )

    def same_samples(self, other: "Picture") -> bool:
        """True when both pictures hold exactly the same samples and format."""
        return (
            self.bit_depth == other.bit_depth
            and self.data_type == other.data_type
            and all(np.array_equal(a, b) for a, b in zip(self.planes, other.planes))
        )


@dataclass(frozen=True)
class FrameStats:
    """What the encoder measured for one coded frame (not serialized)."""

    frame_type: FrameType
    pts: int
    dts: int
    bits: int
    psnr_y: float
    psnr_yuv: float
    encode_seconds: float
    depth: int = 0
    intra_coded: bool = False  # a P/B frame the encoder coded without prediction
    intra_check: str = ""  # why a P/B frame was also coded without prediction ("" when it was not)
    flow_psnr: float | None = None  # P/B: block-flow prediction PSNR, mean over references (dB)
    motion_psnr: float | None = None  # P/B: the pre-trained motion Cool-chic's prediction PSNR (dB)
    motion_candidate: str = ""  # P/B: the pre-training candidate kept (flow | plain)
    # The trained frame's PSNR-YUV before its networks were quantized (latents rounded as coded):
    # psnr_yuv below it is what quantizing the networks cost.
    train_psnr_yuv: float | None = None
    finished: float = 0.0  # time.time() when the frame was coded
    worker: int = 0  # the worker that coded it (0.., in order of appearance; 0 when coded in-process)
    lmbda: float | None = None  # the λ it was trained and quantized at (depth scaling included)

    @property
    def type_label(self) -> str:
        """``I``, ``P``, ``B``, or ``P (intra)`` / ``B (intra)`` for an intra-coded inter frame."""
        return self.frame_type.name + (" (intra)" if self.intra_coded else "")


@dataclass(frozen=True)
class Packet:
    """One coded frame: the FRAME unit payload and its timing.

    pts: display index; dts: coding index (both in frames, time_base = 1/fps).
    """

    data: bytes
    pts: int
    dts: int
    frame_type: FrameType
    stats: FrameStats | None = field(default=None, compare=False)

    @property
    def is_keyframe(self) -> bool:
        return self.frame_type == FrameType.I


@dataclass(frozen=True)
class SequenceInfo:
    """What a sequence header says about the whole stream."""

    width: int
    height: int
    data_type: DataType = DataType.YUV420
    bit_depth: int = 8
    frame_rate: Fraction = Fraction(25, 1)
    sample_aspect_ratio: Fraction = Fraction(0, 1)
    color_range: ColorRange = ColorRange.UNSPECIFIED
    chroma_siting: ChromaSiting = ChromaSiting.UNSPECIFIED
    gop_structure: GopStructure = GopStructure.INTRA
    gop_size: int = 1
    intra_period: int = 1
    frame_count: int = 0  # 0: unknown (streamed)
    encoder: str = ""

    def __post_init__(self) -> None:
        if self.width < MIN_FRAME_SIDE or self.height < MIN_FRAME_SIDE:
            raise UnsupportedFormatError(
                f"frame size {self.width}x{self.height} is too small", f"frames must be at least {MIN_FRAME_SIDE}x{MIN_FRAME_SIDE}"
            )
        if not frame_size_allowed(self.width, self.height):
            raise UnsupportedFormatError(
                f"frame size {self.width}x{self.height} is too large",
                f"at most {MAX_FRAME_SIDE} per side and {MAX_FRAME_SAMPLES} samples (8K UHD fits)",
            )
        if self.bit_depth not in BIT_DEPTHS:
            raise UnsupportedFormatError(
                f"bit depth {self.bit_depth} is not supported", f"use {BIT_DEPTHS[0]} to {BIT_DEPTHS[-1]} bits"
            )
        if self.frame_rate <= 0:
            raise UnsupportedFormatError(f"frame rate {self.frame_rate} is not positive", "give a rate such as 25 or 30000/1001")


@dataclass(frozen=True)
class TrainingProgress:
    """An encoder progress event: one training phase of one frame moved forward.

    Emitted every few iterations; ``iteration == total`` closes the phase.
    """

    pts: int
    frame_type: FrameType
    phase: str
    iteration: int
    total: int
    loss: float
    psnr: float
