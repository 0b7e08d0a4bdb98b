"""Streaming ``.ccv`` reader: unit framing, CRC checks, resynchronisation and the end index.

Behaviour on damaged input:

* a stream that stops early yields every complete frame, then raises
  :class:`TruncatedStreamError` naming the byte offset where it was cut;
* a unit whose CRC (or payload syntax) is wrong raises :class:`CorruptDataError`,
  or, when an ``on_corrupt`` callback is given, reports it there and resumes at
  the next unit that starts with SYNC and has a valid CRC (the caller then drops
  frames until the next I frame: see :attr:`ContainerReader.corruptions`).
"""

from __future__ import annotations

import builtins
import os
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from construct import ConstructError

from ..errors import (
    reason,
    BitstreamError,
    CorruptDataError,
    MediaError,
    TruncatedStreamError,
)
from ..types import Packet, SequenceInfo
from .syntax import (
    MAGIC,
    SYNC,
    VERSION_MAJOR,
    FileHeader,
    IndexPayload,
)
from .units import (
    FILE_HEADER_SIZE,
    MAX_UNIT_PAYLOAD,
    READ_CHUNK,
    UNIT_END,
    UNIT_FRAME,
    UNIT_INDEX,
    UNIT_SEQ,
    packet_from_payload,
    sequence_from_bytes,
)


class _Source:
    """A forward-only byte source with push-back, counting the absolute offset.

    Push-back is what lets the reader rescan the bytes of a damaged unit for the
    next SYNC on a stream that cannot seek.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._pending = bytearray()
        self.offset = 0  # absolute offset of the next byte read()

    def read(self, n: int) -> bytes:
        """Up to n bytes; fewer only at end of stream."""
        out = bytearray()
        if self._pending:
            take = min(n, len(self._pending))
            out += self._pending[:take]
            del self._pending[:take]
        while len(out) < n:
            try:
                chunk = self._f.read(min(n - len(out), READ_CHUNK))
            except OSError as exc:
                raise MediaError(f"cannot read the stream: {reason(exc)}") from None
            if not chunk:
                break
            out += chunk
        self.offset += len(out)
        return bytes(out)

    def unread(self, data: bytes) -> None:
        self._pending[:0] = data
        self.offset -= len(data)


@dataclass(frozen=True)
class UnitInfo:
    """Where a unit sits in the stream."""

    unit_type: int
    offset: int  # byte offset of its SYNC
    size: int  # bytes from SYNC to the end of its CRC
    payload: bytes


class _Cut(Exception):
    """Internal: the stream ended inside a unit (carries the bytes read and a description)."""

    def __init__(self, consumed: bytes, what: str) -> None:
        self.consumed = consumed
        self.what = what


class _BadUnit(Exception):
    """Internal: a unit failed its CRC or sanity checks (carries the bytes read)."""

    def __init__(self, consumed: bytes, what: str) -> None:
        self.consumed = consumed
        self.what = what


class ContainerReader:
    """Reads a ``.ccv`` stream from a path, ``'-'`` (stdin) or any binary file object, seekable or not.

    Iterating yields :class:`Packet` objects in coding order. ``on_corrupt``: when given, a
    damaged unit is reported to it as a :class:`CorruptDataError` and reading resumes at the
    next valid unit; otherwise the error is raised.
    """

    def __init__(
        self,
        source: str | os.PathLike | BinaryIO,
        on_corrupt: Callable[[CorruptDataError], None] | None = None,
    ) -> None:
        self._owns = False
        if isinstance(source, (str, os.PathLike)):
            self.name = str(source)
            if self.name == "-":
                f: BinaryIO = sys.stdin.buffer
                self.name = "<stdin>"
            else:
                try:
                    f = builtins.open(source, "rb")  # noqa: SIM115 - closed in close()
                except OSError as exc:
                    raise MediaError(
                        f"cannot open {self.name!r}: {exc.strerror}"
                    ) from None
                self._owns = True
        else:
            f = source
            self.name = getattr(source, "name", "<stream>")
        self._src = _Source(f)
        self._file = f
        self.on_corrupt = on_corrupt
        self.version: tuple[int, int] = (0, 0)
        self.index: dict | None = None  # parsed INDEX unit, when the stream has one
        self.ended = False  # an END unit was read
        self.corruptions: list[CorruptDataError] = []
        self.skipped_units: list[UnitInfo] = []  # unknown unit types, skipped by length
        self.last_unit: UnitInfo | None = None  # unit of the packet last yielded
        self.frames_read = 0
        try:
            self._read_file_header()
            self.sequence: SequenceInfo = self._read_sequence()
        except BaseException:
            self.close()
            raise

    # -- header

    def _read_file_header(self) -> None:
        head = self._src.read(FILE_HEADER_SIZE)
        if not head:
            raise BitstreamError(
                f"{self.name} is empty",
                "expected a .ccv stream made by coolchic-stream encode",
            )
        if head[:4] != MAGIC:
            raise BitstreamError(
                f"{self.name} is not a .ccv stream (starts with {head[:4].hex(' ')}, expected 43 43 56 53 'CCVS')",
                "decode/inspect take files written by coolchic-stream encode",
            )
        if len(head) < FILE_HEADER_SIZE:
            raise TruncatedStreamError(
                f"{self.name} is cut inside the file header at byte {len(head)}"
            )
        parsed = FileHeader.parse(head)
        if zlib.crc32(head[:6]) != parsed.crc:
            raise CorruptDataError(
                f"{self.name}: file header checksum mismatch (bytes 0-9 are damaged)"
            )
        self.version = (parsed.version_major, parsed.version_minor)
        if parsed.version_major != VERSION_MAJOR:
            raise BitstreamError(
                f"{self.name} uses .ccv version {parsed.version_major}.{parsed.version_minor}; "
                f"this reader handles {VERSION_MAJOR}.x",
                "upgrade coolchic-stream"
                if parsed.version_major > VERSION_MAJOR
                else "re-encode the file",
            )

    def _read_sequence(self) -> SequenceInfo:
        try:
            unit = self._read_unit()
        except _Cut as cut:
            raise TruncatedStreamError(
                f"{self.name} is cut inside the sequence header ({cut.what})"
            ) from None
        except _BadUnit as bad:
            raise CorruptDataError(
                f"{self.name}: sequence header unit is damaged ({bad.what})"
            ) from None
        if unit is None:
            raise TruncatedStreamError(
                f"{self.name} ends after the file header, before the sequence header"
            )
        if unit.unit_type != UNIT_SEQ:
            raise CorruptDataError(
                f"{self.name}: first unit has type {unit.unit_type}, expected SEQ (1)"
            )
        return sequence_from_bytes(unit.payload)

    # -- units

    def _read_unit(self) -> UnitInfo | None:
        """Next framed unit with a valid CRC, or None at a clean end of stream."""
        src = self._src
        start = src.offset
        sync = src.read(2)
        if not sync:
            return None
        if len(sync) < 2:
            raise _Cut(sync, f"unit at byte {start} cut after {len(sync)} byte")
        if sync != SYNC:
            raise _BadUnit(
                sync, f"no sync marker at byte {start} (found {sync.hex(' ')})"
            )
        consumed = bytearray(sync)
        type_byte = src.read(1)
        consumed += type_byte
        if not type_byte:
            raise _Cut(
                bytes(consumed), f"unit at byte {start} cut after its sync marker"
            )
        length = 0
        for i in range(10):
            b = src.read(1)
            consumed += b
            if not b:
                raise _Cut(
                    bytes(consumed), f"unit at byte {start} cut inside its length field"
                )
            length |= (b[0] & 0x7F) << (7 * i)
            if not b[0] & 0x80:
                break
        else:
            raise _BadUnit(
                bytes(consumed), f"unit at byte {start} has an overlong length field"
            )
        if length > MAX_UNIT_PAYLOAD:
            raise _BadUnit(
                bytes(consumed), f"unit at byte {start} claims {length} bytes"
            )
        payload = src.read(length)
        consumed += payload
        if len(payload) < length:
            raise _Cut(
                bytes(consumed),
                f"unit at byte {start} cut after {len(payload)} of {length} payload bytes",
            )
        crc = src.read(4)
        consumed += crc
        if len(crc) < 4:
            raise _Cut(bytes(consumed), f"unit at byte {start} cut inside its CRC")
        if zlib.crc32(consumed[2:-4]) != int.from_bytes(crc, "little"):
            raise _BadUnit(
                bytes(consumed),
                f"unit at byte {start} (type {type_byte[0]}, {length} bytes) fails its CRC",
            )
        return UnitInfo(type_byte[0], start, len(consumed), payload)

    def _resync(self, consumed: bytes, what: str) -> None:
        """Report a damaged unit and position the source at the next SYNC after its first byte."""
        err = CorruptDataError(f"{self.name}: {what}; skipping to the next sync marker")
        self.corruptions.append(err)
        if self.on_corrupt is None:
            raise err
        self.on_corrupt(err)
        # Give back everything after the damaged unit's first byte and scan it (plus whatever
        # follows) for the next SYNC, keeping at most one byte of look-behind between chunks.
        self._src.unread(consumed[1:])
        while True:
            chunk = self._src.read(READ_CHUNK)
            pos = chunk.find(SYNC)
            if pos >= 0:
                self._src.unread(chunk[pos:])
                return
            if len(chunk) < 2:  # end of stream (a lone byte cannot hold SYNC)
                return
            if chunk[-1:] == SYNC[:1]:  # SYNC may straddle two chunks
                self._src.unread(chunk[-1:])

    def units(self) -> Iterator[UnitInfo]:
        """Every valid unit after SEQ, in stream order; handles damage and truncation."""
        while not self.ended:
            try:
                unit = self._read_unit()
            except _BadUnit as bad:
                self._resync(bad.consumed, bad.what)
                continue
            except _Cut as cut:
                if self.on_corrupt is not None and SYNC in cut.consumed[1:]:
                    # A damaged length may have swallowed later units: rescan what was read.
                    self._resync(cut.consumed, cut.what)
                    continue
                raise TruncatedStreamError(
                    f"{self.name} is truncated: {cut.what}; {self.frames_read} complete frame unit(s) were read",
                    "the encode was interrupted or the file was cut",
                ) from None
            if unit is None:
                raise TruncatedStreamError(
                    f"{self.name} ends at byte {self._src.offset} without an END unit; "
                    f"{self.frames_read} complete frame unit(s) were read",
                    "the encode was interrupted or the file was cut",
                )
            if unit.unit_type == UNIT_END:
                self.ended = True
            elif unit.unit_type == UNIT_INDEX:
                try:
                    parsed = IndexPayload.parse(unit.payload)
                    self.index = {
                        "frame_count": parsed.frame_count,
                        "random_access_points": [
                            {
                                "display_index": e.display_index,
                                "coding_index": e.coding_index,
                                "offset": e.offset,
                            }
                            for e in parsed.random_access_points
                        ],
                    }
                except (
                    ConstructError
                ) as exc:  # the index is optional: a bad one is only reported
                    self._report(
                        CorruptDataError(
                            f"{self.name}: INDEX unit at byte {unit.offset} does not parse: {exc}"
                        )
                    )
            elif unit.unit_type == UNIT_SEQ:
                # A repeated sequence header (for joining mid-stream) must agree with the first one.
                if sequence_from_bytes(unit.payload) != self.sequence:
                    self._report(
                        CorruptDataError(
                            f"{self.name}: SEQ unit at byte {unit.offset} differs from the first"
                        )
                    )
            elif unit.unit_type == UNIT_FRAME:
                self.frames_read += 1
            else:
                self.skipped_units.append(unit)
            yield unit

    def _report(self, err: CorruptDataError) -> None:
        self.corruptions.append(err)
        if self.on_corrupt is None:
            raise err
        self.on_corrupt(err)

    def __iter__(self) -> Iterator[Packet]:
        for unit in self.units():
            if unit.unit_type != UNIT_FRAME:
                continue
            try:
                packet = packet_from_payload(unit.payload, self.sequence)
            except CorruptDataError as exc:
                self._report(
                    CorruptDataError(
                        f"{self.name}: FRAME unit at byte {unit.offset}: {exc.message}"
                    )
                )
                continue
            self.last_unit = unit
            yield packet

    @property
    def bytes_read(self) -> int:
        """Bytes of the stream consumed so far (the trailer after END is never read)."""
        return self._src.offset

    def close(self) -> None:
        if self._owns:
            self._file.close()
            self._owns = False

    def __enter__(self) -> "ContainerReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
