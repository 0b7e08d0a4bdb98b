"""One validating parse of a FRAME payload, shared by the decoder and ``inspect`` (torch-free).

    payload ─► FramePayload (construct) ─► header fields checked where read: format against the
        SEQ (``check_frame_format``), frame type, warp filter, translations ─► FrameHeader
        ─► each section's architecture checked (``section_param``) ─► ParsedFrame

What needs the decoder's state (a predicted module's source picture) or its entropy decoding is
checked later, by ``framecodec``, on the sections this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from construct import ConstructError

from ..architecture import OUTPUTS, CoolChicEncoderParameter
from ..spec import WARP_TAPS
from ..types import CoolChicRole, DataType, FrameType, SequenceInfo
from .sections import bad, section_param
from .syntax import FramePayload
from .units import check_frame_format, parse_failure

# The warp_filter_size of a predicted frame: its motion warps with the format's one filter.
WARP_FILTER_SIZE = WARP_TAPS


@dataclass(frozen=True)
class FrameHeader:
    display_index: int
    coding_index: int
    frame_type: FrameType
    depth: int
    data_type: DataType
    bit_depth: int
    width: int
    height: int
    references: tuple[int, ...]
    translations: tuple[tuple[int, int], ...]
    intra_coded: bool = False  # a P/B frame coded without prediction (keeps its GOP place and references)

    @property
    def coding_type(self) -> FrameType:
        """How the picture is reconstructed: I for I frames and intra-coded P/B frames."""
        return FrameType.I if self.intra_coded else self.frame_type


@dataclass(frozen=True)
class ParsedSection:
    """One Cool-chic of a frame: its role, its checked architecture, and its fields as parsed
    (``networks``: each module's mode, reference, steps and orders; ``data``: the range-coder stream)."""

    role: CoolChicRole
    param: CoolChicEncoderParameter
    fields: Any


@dataclass(frozen=True)
class ParsedFrame:
    header: FrameHeader
    sections: tuple[ParsedSection, ...]  # residue, then motion when predicted
    fields: Any  # the FramePayload as parsed (what ``inspect`` reports field by field)


def _member(enum_type: type, value: object, what: str):
    try:
        return enum_type[str(value).upper()]
    except KeyError:
        raise bad(f"unknown {what} {value}") from None


def parse_frame(payload: bytes, sequence: SequenceInfo | None = None) -> ParsedFrame:
    """Parse a FRAME payload and check every field that does not need the decoder's state;
    CorruptDataError names the first that is wrong."""
    try:
        parsed = FramePayload.parse(payload)
    except (ConstructError, ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise bad(f"frame payload does not parse: {parse_failure(exc)}") from None
    info = parsed.info
    frame_type = _member(FrameType, info.frame_type, "frame type")
    data_type = _member(DataType, info.data_type, "data type")
    check_frame_format(sequence, frame_type, data_type, info.bit_depth, parsed.width, parsed.height)
    # A P/B frame whose only Cool-chic is its residue is coded without prediction (intra-coded).
    intra_coded = frame_type != FrameType.I and info.warp_filter_size == 0
    coding_type = FrameType.I if intra_coded else frame_type
    if info.warp_filter_size != (0 if coding_type == FrameType.I else WARP_FILTER_SIZE):
        raise bad(f"warp filter size {info.warp_filter_size} is not valid here ({frame_type.name} frame)")
    if intra_coded and any(r.translation_y or r.translation_x for r in parsed.references):
        raise bad(f"intra-coded {frame_type.name} frame carries a global translation")
    header = FrameHeader(
        parsed.display_index, parsed.coding_index, frame_type, info.depth, data_type, info.bit_depth,
        parsed.width, parsed.height,
        tuple(r.display_index for r in parsed.references),
        tuple((r.translation_y, r.translation_x) for r in parsed.references),
        intra_coded,
    )  # fmt: skip
    roles = [CoolChicRole.RESIDUE] + ([CoolChicRole.MOTION] if coding_type != FrameType.I else [])
    sections = tuple(
        ParsedSection(role, section_param(section, header.height, header.width, role, OUTPUTS[coding_type][role == CoolChicRole.MOTION]), section)
        for role, section in zip(roles, parsed.coolchics)
    )
    return ParsedFrame(header, sections, parsed)


__all__ = ["FrameHeader", "ParsedFrame", "ParsedSection", "WARP_FILTER_SIZE", "parse_frame"]
