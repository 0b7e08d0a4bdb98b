"""Unit framing of ``.ccv`` streams: unit types, file header and trailer bytes, payload conversions.

The byte layout is defined in :mod:`coolchic_stream.bitstream.syntax`. Units are
framed by hand (sync, type, LEB128 length, payload, CRC-32) because construct's
``RawCopy``/``Checksum`` need ``tell()``/``seek()``, which pipes do not have;
construct only parses payload bytes held in memory.
"""

from __future__ import annotations

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
from .syntax import (
    MAGIC,
    SYNC,
    TRAILER_MAGIC,
    VERSION_MAJOR,
    VERSION_MINOR,
    FileHeader,
    FramePayload,
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
        raise CorruptDataError(f"sequence header does not parse: {exc}") from None
    if h.frame_rate_den == 0 or h.frame_rate_num == 0:
        raise CorruptDataError(
            f"sequence header frame rate {h.frame_rate_num}/{h.frame_rate_den} is invalid"
        )
    sar = Fraction(h.sar_num, h.sar_den) if h.sar_den else Fraction(0, 1)
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
            gop_structure=_member(GopStructure, h.gop_structure, "gop_structure"),
            gop_size=h.gop_size,
            intra_period=h.intra_period,
            frame_count=h.frame_count,
            encoder=h.encoder,
        )
    except UnsupportedFormatError as exc:
        raise CorruptDataError(f"sequence header is invalid: {exc.message}") from None


def packet_from_payload(payload: bytes) -> Packet:
    """A Packet for a FRAME payload, with pts/dts/type read from its header."""
    header = parse_frame_payload(payload)
    return Packet(
        data=payload,
        pts=header.display_index,
        dts=header.coding_index,
        frame_type=_member(FrameType, header.info.frame_type, "frame_type"),
    )


def parse_frame_payload(payload: bytes):
    """Parse a FRAME payload with the normative struct; any failure is CorruptDataError."""
    try:
        return FramePayload.parse(payload)
    except (ConstructError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise CorruptDataError(f"frame payload does not parse: {exc}") from None


# ------------------------------------------------------------------ writer
