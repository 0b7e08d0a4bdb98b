"""Hand-written YUV4MPEG2 reader and writer that keep every tag the codec must carry through.

PyAV cannot report the 4:2:0 chroma siting (``C420jpeg``/``C420mpeg2``/``C420paldv``),
so y4m is parsed here, and written here so that the siting and range tags survive a
decode. Header format (FFmpeg's yuv4mpegdec/enc)::

    YUV4MPEG2 W<w> H<h> F<n>:<d> I<p|t|b|?> A<n>:<d> C<fmt> [XCOLORRANGE=FULL|LIMITED]\\n
    FRAME[ params]\\n  Y plane, then U, then V, no stride; >8-bit samples are 16-bit little-endian
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from typing import BinaryIO

import numpy as np

from ..errors import MediaError, UnsupportedFormatError
from ..types import ChromaSiting, ColorRange, DataType, Picture, SequenceInfo, chroma_shape, sample_dtype

MAGIC = b"YUV4MPEG2"
# FFmpeg 5.1 (Debian's ffmpeg/ffplay) refuses stream headers longer than 96 bytes.
MAX_WRITTEN_HEADER = 96
# Readers accept longer headers (FFmpeg 8 takes 128), but never an unbounded line.
MAX_READ_LINE = 1024

_SITING_BY_TAG = {
    "420jpeg": ChromaSiting.CENTER,
    "420": ChromaSiting.CENTER,  # mjpegtools' plain 420 is the JPEG siting
    "420mpeg2": ChromaSiting.LEFT,
    "420paldv": ChromaSiting.TOPLEFT,
}
_TAG_BY_SITING = {
    ChromaSiting.CENTER: "420jpeg",
    ChromaSiting.LEFT: "420mpeg2",
    ChromaSiting.TOPLEFT: "420paldv",
}
_DEEP = re.compile(r"^(420|444)p(9|10|12|14|16)$")


def parse_colorspace(tag: str) -> tuple[DataType, int, ChromaSiting]:
    """Data type, bit depth and siting for a ``C`` tag value (without the C)."""
    if tag in _SITING_BY_TAG:
        return DataType.YUV420, 8, _SITING_BY_TAG[tag]
    if tag == "444":
        return DataType.YUV444, 8, ChromaSiting.UNSPECIFIED
    m = _DEEP.match(tag)
    if m:
        data_type = DataType.YUV420 if m.group(1) == "420" else DataType.YUV444
        return data_type, int(m.group(2)), ChromaSiting.UNSPECIFIED
    raise UnsupportedFormatError(
        f"y4m colour space C{tag} is not supported",
        "use C420jpeg/C420mpeg2/C420paldv, C444, C420p10 or C444p10 (ffmpeg -pix_fmt yuv420p)",
    )


def _fraction(token: str, what: str, name: str) -> Fraction:
    try:
        num, den = (int(x) for x in token.split(":"))
    except ValueError:
        raise MediaError(f"{name}: y4m {what} {token!r} is not of the form N:D", "e.g. F25:1 or F30000:1001") from None
    if num < 0 or den < 0:
        raise MediaError(f"{name}: y4m {what} {token!r} is negative", "e.g. F25:1 or F30000:1001")
    if den == 0 and num != 0:
        raise MediaError(f"{name}: y4m {what} {token!r} has a zero denominator", "0:0 means unknown; otherwise e.g. 25:1")
    return Fraction(num, den) if den else Fraction(0, 1)


def parse_header(line: bytes, name: str = "input") -> SequenceInfo:
    """SequenceInfo described by a y4m stream header line (with or without the newline)."""
    if not line.startswith(MAGIC):
        raise MediaError(f"{name} is not a y4m stream (starts with {line[:9]!r})")
    try:
        tokens = line.rstrip(b"\n").decode("ascii").split(" ")[1:]
    except UnicodeDecodeError:
        raise MediaError(f"{name}: y4m header is not ASCII") from None
    width = height = None
    rate = Fraction(0, 1)
    sar = Fraction(0, 1)
    colorspace = "420jpeg"
    siting_given = False
    color_range = ColorRange.UNSPECIFIED
    for tok in tokens:
        if not tok:
            continue
        key, val = tok[0], tok[1:]
        try:
            if key == "W":
                width = int(val)
            elif key == "H":
                height = int(val)
        except ValueError:
            raise MediaError(f"{name}: y4m size token {tok!r} is not a number", "the header must hold W<width> H<height>") from None
        if key == "F":
            rate = _fraction(val, "frame rate", name)
        elif key == "A":
            sar = _fraction(val, "pixel aspect", name)
        elif key == "C":
            colorspace, siting_given = val, True
        elif key == "I" and val == "m":
            raise UnsupportedFormatError(f"{name}: mixed-interlace y4m (Im) is not supported", "deinterlace first")
        elif key == "X" and val.startswith("COLORRANGE="):
            color_range = {"FULL": ColorRange.FULL, "LIMITED": ColorRange.LIMITED}.get(
                val.split("=", 1)[1], ColorRange.UNSPECIFIED
            )
    if width is None or height is None:
        raise MediaError(f"{name}: y4m header has no W/H size", "the header must hold W<width> H<height>")
    data_type, bit_depth, siting = parse_colorspace(colorspace)
    if not siting_given:
        siting = ChromaSiting.UNSPECIFIED  # no C tag: FFmpeg assumes 420jpeg, but nothing was said
    return SequenceInfo(
        width=width,
        height=height,
        data_type=data_type,
        bit_depth=bit_depth,
        frame_rate=rate if rate > 0 else Fraction(25, 1),  # F0:0 = unknown; FFmpeg also falls back to 25
        sample_aspect_ratio=sar,
        color_range=color_range,
        chroma_siting=siting,
    )


def header_bytes(seq: SequenceInfo) -> bytes:
    """The y4m stream header for a sequence (yuv only), at most 96 bytes."""
    if seq.data_type == DataType.RGB:
        raise UnsupportedFormatError("y4m cannot hold rgb", "convert to yuv444p first (media.rgb_to_yuv444)")
    if seq.bit_depth == 8:
        if seq.data_type == DataType.YUV444:
            cs = "444"
        else:
            cs = _TAG_BY_SITING.get(seq.chroma_siting)  # None: leave siting unsaid, as the source did
    else:
        cs = f"{'420' if seq.data_type == DataType.YUV420 else '444'}p{seq.bit_depth}"
    rate = seq.frame_rate
    sar = seq.sample_aspect_ratio
    tokens = [
        f"W{seq.width}",
        f"H{seq.height}",
        f"F{rate.numerator}:{rate.denominator}",
        "Ip",
        f"A{sar.numerator}:{sar.denominator}" if sar else "A0:0",
    ]
    if cs:
        tokens.append(f"C{cs}")
    if seq.color_range != ColorRange.UNSPECIFIED:
        tokens.append(f"XCOLORRANGE={seq.color_range.name}")
    header = (b" ".join([MAGIC, *(t.encode() for t in tokens)])) + b"\n"
    if len(header) > MAX_WRITTEN_HEADER:
        raise MediaError(f"y4m header would be {len(header)} bytes, over FFmpeg 5.1's limit of 96")
    return header


def frame_size(seq: SequenceInfo) -> int:
    """Bytes of one frame's planes."""
    ch, cw = chroma_shape(seq.data_type, seq.height, seq.width)
    bps = 1 if seq.bit_depth <= 8 else 2
    return (seq.width * seq.height + 2 * ch * cw) * bps


def planes_from_bytes(data: bytes, seq: SequenceInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split one frame's packed bytes into (Y, U, V) arrays of the native sample dtype."""
    ch, cw = chroma_shape(seq.data_type, seq.height, seq.width)
    wire = np.dtype(np.uint8) if seq.bit_depth <= 8 else np.dtype("<u2")
    flat = np.frombuffer(data, dtype=wire)
    n_luma = seq.width * seq.height
    n_chroma = ch * cw
    y = flat[:n_luma].reshape(seq.height, seq.width)
    u = flat[n_luma : n_luma + n_chroma].reshape(ch, cw)
    v = flat[n_luma + n_chroma : n_luma + 2 * n_chroma].reshape(ch, cw)
    native = sample_dtype(seq.bit_depth)
    return tuple(p.astype(native) for p in (y, u, v))  # copies: frombuffer views are read-only


def planes_to_bytes(picture: Picture) -> bytes:
    """Packed plane bytes (little-endian above 8 bits), the payload of a y4m or raw frame."""
    if picture.bit_depth <= 8:
        return b"".join(np.ascontiguousarray(p, dtype=np.uint8).tobytes() for p in picture.planes)
    return b"".join(np.ascontiguousarray(p, dtype="<u2").tobytes() for p in picture.planes)


def _readline(f: BinaryIO, what: str, name: str) -> bytes:
    line = f.readline(MAX_READ_LINE)
    if line and not line.endswith(b"\n"):
        if len(line) >= MAX_READ_LINE:
            raise MediaError(f"{name}: y4m {what} line is longer than {MAX_READ_LINE} bytes")
        raise MediaError(f"{name}: y4m stream is cut inside a {what} line")
    return line


class Y4mReader:
    """Reads pictures one by one from a y4m byte stream (file or pipe)."""

    def __init__(self, f: BinaryIO, name: str = "input") -> None:
        self._f = f
        self.name = name
        header = _readline(f, "stream header", name)
        if not header:
            raise MediaError(f"{name} is empty", "give a y4m, mp4, mkv, png… input with at least one frame")
        self.sequence = parse_header(header, name)
        self.frame_bytes = frame_size(self.sequence)
        self.frames_read = 0

    def __iter__(self) -> Iterator[Picture]:
        seq = self.sequence
        while True:
            line = _readline(self._f, "FRAME", self.name)
            if not line:
                return
            if not line.startswith(b"FRAME"):
                raise MediaError(
                    f"{self.name}: expected FRAME before frame {self.frames_read}, found {line[:16]!r}",
                    "the size or colour space in the header may not match the data",
                )
            data = self._f.read(self.frame_bytes)
            if len(data) < self.frame_bytes:
                raise MediaError(
                    f"{self.name}: y4m frame {self.frames_read} is truncated "
                    f"({len(data)} of {self.frame_bytes} bytes)",
                    f"the file was cut; --frames {self.frames_read} takes the complete frames only"
                    if self.frames_read
                    else "the size or colour space in the header may not match the data",
                )
            yield Picture(planes_from_bytes(data, seq), seq.bit_depth, seq.data_type, self.frames_read)
            self.frames_read += 1


class Y4mWriter:
    """Writes pictures as y4m to a binary stream; RGB pictures are converted to yuv444p."""

    def __init__(self, f: BinaryIO, sequence: SequenceInfo) -> None:
        self._f = f
        if sequence.data_type == DataType.RGB:
            # y4m has no RGB layout: full-range BT.601 yuv444p keeps every sample position.
            sequence = replace(sequence, data_type=DataType.YUV444, color_range=ColorRange.FULL, bit_depth=8)
        self.sequence = sequence
        self._f.write(header_bytes(sequence))

    def write(self, picture: Picture) -> None:
        if picture.data_type == DataType.RGB:
            picture = rgb_to_yuv444(picture)
        self._f.write(b"FRAME\n" + planes_to_bytes(picture))
        self._f.flush()


def rgb_to_yuv444(picture: Picture) -> Picture:
    """Full-range BT.601 (JPEG) conversion of an RGB picture to 8-bit yuv444p."""
    peak = (1 << picture.bit_depth) - 1
    r, g, b = (p.astype(np.float64) * (255.0 / peak) for p in picture.planes)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    v = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    planes = tuple(np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in (y, u, v))
    return Picture(planes, 8, DataType.YUV444, picture.pts)
