"""``.ccv`` streams: ``open`` for reading or writing, and the public names of the container layer.

writer.ContainerWriter ─► units (framing, CRC) ─► bytes ─► reader.ContainerReader ─► Packet
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

from ..errors import BitstreamError, CorruptDataError
from ..types import SequenceInfo
from .reader import ContainerReader, UnitInfo
from .units import (
    file_header_bytes,
    check_frame_format,
    packet_from_payload,
    read_frame_format,
    sequence_from_bytes,
    sequence_to_dict,
    trailer_bytes,
    unit_bytes,
)
from .writer import ContainerWriter


def open(  # noqa: A001 - mirrors the builtin on purpose, as coolchic_stream.open
    path: str | os.PathLike | BinaryIO,
    mode: str = "r",
    sequence: SequenceInfo | None = None,
    on_corrupt: Callable[[CorruptDataError], None] | None = None,
) -> ContainerReader | ContainerWriter:
    """Open a ``.ccv`` stream for reading (``'r'``) or writing (``'w'``, needs ``sequence``)."""
    if mode == "r":
        return ContainerReader(path, on_corrupt=on_corrupt)
    if mode == "w":
        if sequence is None:
            raise BitstreamError(
                "opening a .ccv stream for writing needs a SequenceInfo",
                "pass sequence=...",
            )
        return ContainerWriter(path, sequence)
    raise BitstreamError(f"mode {mode!r} is not valid", "use 'r' or 'w'")


__all__ = [
    "ContainerReader",
    "ContainerWriter",
    "UnitInfo",
    "file_header_bytes",
    "open",
    "check_frame_format",
    "packet_from_payload",
    "read_frame_format",
    "sequence_from_bytes",
    "sequence_to_dict",
    "trailer_bytes",
    "unit_bytes",
]
