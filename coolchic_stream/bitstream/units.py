"""Unit framing of ``.ccv`` streams: unit types, file header and trailer bytes, payload conversions.

The byte layout is defined in :mod:`coolchic_stream.bitstream.syntax`. Units are
framed by hand (sync, type, LEB128 length, payload, CRC-32) because construct's
``RawCopy``/``Checksum`` need ``tell()``/``seek()``, which pipes do not have;
construct only parses payload bytes held in memory.
"""

from __future__ import annotations

import re
import zlib
from fractions import Fraction

from construct import ConstructError, VarInt

from ..errors import (
    BitstreamError,
    CorruptDataError,
    UnsupportedFormatError,
)
from ..types import (
    ChromaSiting,
    ColorRange,
    DataType,
    FrameType,
    GopStructure,
    Packet,
    SequenceInfo,
)
from ..spec import BIT_DEPTHS, MAX_GOP_SIZE, frame_size_allowed
from .syntax import (
    MAGIC,
    SYNC,
    TRAILER_MAGIC,
    VERSION_MAJOR,
    VERSION_MINOR,
    FileHeader,
    FramePrefix,
    SequenceHeader,
    Trailer,
)

UNIT_SEQ = 1
UNIT_FRAME = 2
UNIT_INDEX = 3
UNIT_END = 4

FILE_HEADER_SIZE = 10
TRAILER_SIZE = 16
# A length above this is taken as a damaged length field rather than a real unit: it stops a
# flipped bit from making the reader swallow (and buffer) the rest of a stream as one payload.
MAX_UNIT_PAYLOAD = 1 << 30
READ_CHUNK = 1 << 20


# ------------------------------------------------------------------ building blocks


def file_header_bytes(major: int = VERSION_MAJOR, minor: int = VERSION_MINOR) -> bytes:
    """The 10-byte file header for a version."""
    head = MAGIC + bytes([major, minor])
    return FileHeader.build(
        {"version_major": major, "version_minor": minor, "crc": zlib.crc32(head)}
    )


def trailer_bytes(index_offset: int) -> bytes:
    """The 16-byte trailer pointing at the INDEX unit."""
    head = TRAILER_MAGIC + index_offset.to_bytes(8, "little")
    return Trailer.build({"index_offset": index_offset, "crc": zlib.crc32(head)})


def unit_bytes(unit_type: int, payload: bytes) -> bytes:
    """One framed unit: SYNC | type | LEB128 length | payload | crc32(type|length|payload)."""
    if not 0 <= unit_type <= 255:
        raise BitstreamError(f"unit type {unit_type} does not fit in one byte")
    body = bytes([unit_type]) + VarInt.build(len(payload)) + payload
    return SYNC + body + zlib.crc32(body).to_bytes(4, "little")


def sequence_to_dict(sequence: SequenceInfo) -> dict:
    """SequenceInfo as the dict that ``SequenceHeader.build`` takes."""
    return {
        "width": sequence.width,
        "height": sequence.height,
        "data_type": sequence.data_type.name.lower(),
        "bit_depth": sequence.bit_depth,
        "frame_rate_num": sequence.frame_rate.numerator,
        "frame_rate_den": sequence.frame_rate.denominator,
        "sar_num": sequence.sample_aspect_ratio.numerator,
        # Fraction(0) has denominator 1; the format's "unknown" is 0:0.
        "sar_den": sequence.sample_aspect_ratio.denominator
        if sequence.sample_aspect_ratio
        else 0,
        "color_range": sequence.color_range.name.lower(),
        "chroma_siting": sequence.chroma_siting.name.lower(),
        "gop_structure": sequence.gop_structure.name.lower(),
        "gop_size": sequence.gop_size,
        "intra_period": sequence.intra_period,
        "frame_count": sequence.frame_count,
        "encoder": sequence.encoder,
    }


def _member(enum_type: type, value: object, field: str):
    """Map a parsed construct Enum value to our IntEnum; unknown numbers are corrupt data."""
    try:
        return enum_type[str(value).upper()]
    except KeyError:
        raise CorruptDataError(
            f"{field} value {value!r} is not defined by this version of the format"
        ) from None


def sequence_from_bytes(payload: bytes) -> SequenceInfo:
    """Parse a SEQ payload into SequenceInfo (trailing fields of a newer minor are ignored)."""
    try:
        h = SequenceHeader.parse(payload)
    except (ConstructError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptDataError(f"sequence header does not parse: {parse_failure(exc)}") from None
    if h.frame_rate_den == 0 or h.frame_rate_num == 0:
        raise CorruptDataError(
            f"sequence header frame rate {h.frame_rate_num}/{h.frame_rate_den} is invalid"
        )
    sar = Fraction(h.sar_num, h.sar_den) if h.sar_den else Fraction(0, 1)
    structure = _member(GopStructure, h.gop_structure, "gop_structure")
    # gop_size/intra_period are stream facts here, not options: a bad one is damage (exit 4).
    if not 1 <= h.gop_size <= MAX_GOP_SIZE:
        raise CorruptDataError(f"sequence header gop_size {h.gop_size} is out of range 1..{MAX_GOP_SIZE}")
    if h.intra_period < 1:
        raise CorruptDataError(f"sequence header intra_period {h.intra_period} is not positive")
    if structure == GopStructure.INTRA and (h.gop_size, h.intra_period) != (1, 1):
        raise CorruptDataError(
            f"sequence header gop_size {h.gop_size} / intra_period {h.intra_period} contradict its all-intra structure"
        )
    try:
        return SequenceInfo(
            width=h.width,
            height=h.height,
            data_type=_member(DataType, h.data_type, "data_type"),
            bit_depth=h.bit_depth,
            frame_rate=Fraction(h.frame_rate_num, h.frame_rate_den),
            sample_aspect_ratio=sar,
            color_range=_member(ColorRange, h.color_range, "color_range"),
            chroma_siting=_member(ChromaSiting, h.chroma_siting, "chroma_siting"),
            gop_structure=structure,
            gop_size=h.gop_size,
            intra_period=h.intra_period,
            frame_count=h.frame_count,
            encoder=h.encoder,
        )
    except UnsupportedFormatError as exc:
        raise CorruptDataError(f"sequence header is invalid: {exc.message}") from None


# Frame types a GOP structure may contain (intra-coded P/B frames keep their type).
_ALLOWED_TYPES = {
    GopStructure.INTRA: {FrameType.I},
    GopStructure.LOWDELAY: {FrameType.I, FrameType.P},
    GopStructure.RANDOM_ACCESS: {FrameType.I, FrameType.P, FrameType.B},
}


def check_frame_format(
    sequence: SequenceInfo | None,
    frame_type: FrameType,
    data_type: DataType,
    bit_depth: int,
    width: int,
    height: int,
) -> None:
    """Check a FRAME header's format against the sequence header (None: the format's limits only).

    Every frame of a stream has the sequence's size, sample format and bit depth (there is no
    resolution change), so whatever a frame header says, the decoder allocates at most what one
    sequence-sized frame needs; and a y4m written from the stream never contradicts its header.
    """
    if not frame_size_allowed(width, height):
        raise CorruptDataError(f"frame size {width}x{height} is beyond the format's limits")
    if bit_depth not in BIT_DEPTHS:
        raise CorruptDataError(f"frame bit depth {bit_depth} is out of range")
    if sequence is None:
        return
    if (width, height) != (sequence.width, sequence.height):
        raise CorruptDataError(
            f"frame size {width}x{height} differs from the sequence header's {sequence.width}x{sequence.height}"
        )
    if data_type != sequence.data_type:
        raise CorruptDataError(
            f"frame data type {data_type.name} differs from the sequence header's {sequence.data_type.name}"
        )
    if bit_depth != sequence.bit_depth:
        raise CorruptDataError(f"frame bit depth {bit_depth} differs from the sequence header's {sequence.bit_depth}")
    if frame_type not in _ALLOWED_TYPES[sequence.gop_structure]:
        raise CorruptDataError(
            f"{frame_type.name} frame in a {sequence.gop_structure.name.lower()} stream"
        )


def read_frame_format(payload: bytes, sequence: SequenceInfo | None) -> FrameType:
    """Parse and check a FRAME payload's leading fields only (a few bytes, no sections): what a
    decoder checks before it allocates or entropy-decodes anything; returns the frame type."""
    return _read_prefix(payload, sequence)[1]


def _read_prefix(payload: bytes, sequence: SequenceInfo | None):
    try:
        head = FramePrefix.parse(payload)
    except (ConstructError, ValueError, OverflowError) as exc:
        raise CorruptDataError(f"frame header does not parse: {parse_failure(exc)}") from None
    frame_type = _member(FrameType, head.info.frame_type, "frame_type")
    data_type = _member(DataType, head.info.data_type, "data_type")
    check_frame_format(sequence, frame_type, data_type, head.info.bit_depth, head.width, head.height)
    return head, frame_type


def parse_failure(exc: Exception) -> str:
    """Why construct could not parse, in words: without its parsing path (``Error in path
    (parsing) -> a -> b``) and without the raw bytes it quotes."""
    text = str(exc).strip().splitlines()
    reason = (text[-1] if text else "").split(" -> ")[-1].strip()
    if isinstance(exc, UnicodeDecodeError) or "encoding" in reason:
        return "a text field is not valid UTF-8"
    short = re.fullmatch(r"stream read less than specified amount, expected (\d+), found (\d+)", reason)
    if short:
        return f"the data ends early ({short[1]} bytes expected, {short[2]} present)"
    if not reason or "b'" in reason or 'b"' in reason or len(reason) > 120:
        return "malformed bytes"
    return reason


def packet_from_payload(payload: bytes, sequence: SequenceInfo | None = None) -> Packet:
    """A Packet for a FRAME payload, with pts/dts/type read from its header, checked against the
    sequence header (``check_frame_format``)."""
    # The leading fields only: the sections are parsed (and every field in them checked) once,
    # by the decoder or inspect, where they are used.
    head, frame_type = _read_prefix(payload, sequence)
    return Packet(data=payload, pts=head.display_index, dts=head.coding_index, frame_type=frame_type)


# ------------------------------------------------------------------ writer
