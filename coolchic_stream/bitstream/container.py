"""Streaming reader and writer of ``.ccv`` files: unit framing, CRC, resync and the end index.

The byte layout is defined in :mod:`coolchic_stream.bitstream.syntax`. Units are
framed by hand (sync, type, LEB128 length, payload, CRC-32) because construct's
``RawCopy``/``Checksum`` need ``tell()``/``seek()``, which pipes do not have;
construct only parses payload bytes held in memory.

Reader behaviour on damaged input:

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
from fractions import Fraction
from typing import BinaryIO

from construct import ConstructError, VarInt

from ..errors import (
    BitstreamError,
    CorruptDataError,
    MediaError,
    TruncatedStreamError,
    UnsupportedFormatError,
)
from ..types import ChromaSiting, ColorRange, DataType, FrameType, GopStructure, Packet, SequenceInfo
from .syntax import (
    END_PAYLOAD,
    MAGIC,
    SYNC,
    TRAILER_MAGIC,
    VERSION_MAJOR,
    VERSION_MINOR,
    FileHeader,
    FramePayload,
    IndexPayload,
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
_READ_CHUNK = 1 << 20


# ------------------------------------------------------------------ building blocks


def file_header_bytes(major: int = VERSION_MAJOR, minor: int = VERSION_MINOR) -> bytes:
    """The 10-byte file header for a version."""
    head = MAGIC + bytes([major, minor])
    return FileHeader.build({"version_major": major, "version_minor": minor, "crc": zlib.crc32(head)})


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
        "sar_den": sequence.sample_aspect_ratio.denominator if sequence.sample_aspect_ratio else 0,
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
        raise CorruptDataError(f"{field} value {value!r} is not defined by this version of the format") from None


def sequence_from_bytes(payload: bytes) -> SequenceInfo:
    """Parse a SEQ payload into SequenceInfo (trailing fields of a newer minor are ignored)."""
    try:
        h = SequenceHeader.parse(payload)
    except (ConstructError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptDataError(f"sequence header does not parse: {exc}") from None
    if h.frame_rate_den == 0 or h.frame_rate_num == 0:
        raise CorruptDataError(f"sequence header frame rate {h.frame_rate_num}/{h.frame_rate_den} is invalid")
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
        frame_type=_member(FrameType, header.frame_type, "frame_type"),
    )


def parse_frame_payload(payload: bytes):
    """Parse a FRAME payload with the normative struct; any failure is CorruptDataError."""
    try:
        return FramePayload.parse(payload)
    except (ConstructError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise CorruptDataError(f"frame payload does not parse: {exc}") from None


# ------------------------------------------------------------------ writer


def _is_seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


class ContainerWriter:
    """Writes a ``.ccv`` stream unit by unit; every unit is flushed as soon as it is written.

    Nothing is ever patched: the SEQ frame count stays 0 (unknown). On a seekable output
    ``close()`` appends INDEX (I frames) + END + trailer; on a pipe only END.
    """

    def __init__(self, target: str | os.PathLike | BinaryIO, sequence: SequenceInfo) -> None:
        self._owns = False
        if isinstance(target, (str, os.PathLike)):
            if str(target) == "-":
                self._f: BinaryIO = sys.stdout.buffer
            else:
                try:
                    self._f = builtins.open(target, "wb")  # noqa: SIM115 - closed in close()
                except OSError as exc:
                    raise MediaError(f"cannot write {str(target)!r}: {exc.strerror}") from None
                self._owns = True
        else:
            self._f = target
        self.sequence = sequence
        self.offset = 0  # bytes written so far = offset of the next unit, from the file header
        self.frames_written = 0
        self.random_access_points: list[tuple[int, int, int]] = []  # (display, coding, offset)
        self.closed = False
        self._emit(file_header_bytes())
        try:
            seq_payload = SequenceHeader.build(sequence_to_dict(sequence))
        except ConstructError as exc:
            raise BitstreamError(f"sequence header cannot be written: {exc}") from None
        self._emit(unit_bytes(UNIT_SEQ, seq_payload))

    def _emit(self, data: bytes) -> None:
        self._f.write(data)
        self._f.flush()
        self.offset += len(data)

    def write(self, packet: Packet) -> int:
        """Write one FRAME unit; returns the number of bytes the unit took."""
        if self.closed:
            raise BitstreamError("write() on a closed container")
        data = bytes(packet.data)
        unit = unit_bytes(UNIT_FRAME, data)
        if packet.frame_type == FrameType.I:
            self.random_access_points.append((packet.pts, packet.dts, self.offset))
        self._emit(unit)
        self.frames_written += 1
        return len(unit)

    def close(self) -> None:
        """Finish the stream (INDEX + END + trailer when seekable, else END) and close owned files."""
        if self.closed:
            return
        self.closed = True
        try:
            if _is_seekable(self._f):
                index_offset = self.offset
                index = IndexPayload.build(
                    {
                        "frame_count": self.frames_written,
                        "random_access_points": [
                            {"display_index": d, "coding_index": c, "offset": o}
                            for d, c, o in self.random_access_points
                        ],
                    }
                )
                self._emit(unit_bytes(UNIT_INDEX, index))
                self._emit(unit_bytes(UNIT_END, END_PAYLOAD))
                self._emit(trailer_bytes(index_offset))
            else:
                self._emit(unit_bytes(UNIT_END, END_PAYLOAD))
        finally:
            if self._owns:
                self._f.close()

    def __enter__(self) -> "ContainerWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ------------------------------------------------------------------ reader


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
                chunk = self._f.read(min(n - len(out), _READ_CHUNK))
            except OSError as exc:
                raise MediaError(f"cannot read the stream: {exc}") from None
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
                    raise MediaError(f"cannot open {self.name!r}: {exc.strerror}") from None
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
            raise BitstreamError(f"{self.name} is empty", "expected a .ccv stream made by coolchic-stream encode")
        if head[:4] != MAGIC:
            raise BitstreamError(
                f"{self.name} is not a .ccv stream (starts with {head[:4].hex(' ')}, expected 43 43 56 53 'CCVS')",
                "decode/inspect take files written by coolchic-stream encode",
            )
        if len(head) < FILE_HEADER_SIZE:
            raise TruncatedStreamError(f"{self.name} is cut inside the file header at byte {len(head)}")
        parsed = FileHeader.parse(head)
        if zlib.crc32(head[:6]) != parsed.crc:
            raise CorruptDataError(f"{self.name}: file header checksum mismatch (bytes 0-9 are damaged)")
        self.version = (parsed.version_major, parsed.version_minor)
        if parsed.version_major != VERSION_MAJOR:
            raise BitstreamError(
                f"{self.name} uses .ccv version {parsed.version_major}.{parsed.version_minor}; "
                f"this reader handles {VERSION_MAJOR}.x",
                "upgrade coolchic-stream" if parsed.version_major > VERSION_MAJOR else "re-encode the file",
            )

    def _read_sequence(self) -> SequenceInfo:
        try:
            unit = self._read_unit()
        except _Cut as cut:
            raise TruncatedStreamError(f"{self.name} is cut inside the sequence header ({cut.what})") from None
        except _BadUnit as bad:
            raise CorruptDataError(f"{self.name}: sequence header unit is damaged ({bad.what})") from None
        if unit is None:
            raise TruncatedStreamError(f"{self.name} ends after the file header, before the sequence header")
        if unit.unit_type != UNIT_SEQ:
            raise CorruptDataError(f"{self.name}: first unit has type {unit.unit_type}, expected SEQ (1)")
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
            raise _BadUnit(sync, f"no sync marker at byte {start} (found {sync.hex(' ')})")
        consumed = bytearray(sync)
        type_byte = src.read(1)
        consumed += type_byte
        if not type_byte:
            raise _Cut(bytes(consumed), f"unit at byte {start} cut after its sync marker")
        length = 0
        for i in range(10):
            b = src.read(1)
            consumed += b
            if not b:
                raise _Cut(bytes(consumed), f"unit at byte {start} cut inside its length field")
            length |= (b[0] & 0x7F) << (7 * i)
            if not b[0] & 0x80:
                break
        else:
            raise _BadUnit(bytes(consumed), f"unit at byte {start} has an overlong length field")
        if length > MAX_UNIT_PAYLOAD:
            raise _BadUnit(bytes(consumed), f"unit at byte {start} claims {length} bytes")
        payload = src.read(length)
        consumed += payload
        if len(payload) < length:
            raise _Cut(bytes(consumed), f"unit at byte {start} cut after {len(payload)} of {length} payload bytes")
        crc = src.read(4)
        consumed += crc
        if len(crc) < 4:
            raise _Cut(bytes(consumed), f"unit at byte {start} cut inside its CRC")
        if zlib.crc32(consumed[2:-4]) != int.from_bytes(crc, "little"):
            raise _BadUnit(bytes(consumed), f"unit at byte {start} (type {type_byte[0]}, {length} bytes) fails its CRC")
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
            chunk = self._src.read(_READ_CHUNK)
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
                            {"display_index": e.display_index, "coding_index": e.coding_index, "offset": e.offset}
                            for e in parsed.random_access_points
                        ],
                    }
                except ConstructError as exc:  # the index is optional: a bad one is only reported
                    self._report(CorruptDataError(f"{self.name}: INDEX unit at byte {unit.offset} does not parse: {exc}"))
            elif unit.unit_type == UNIT_SEQ:
                # A repeated sequence header (for joining mid-stream) must agree with the first one.
                if sequence_from_bytes(unit.payload) != self.sequence:
                    self._report(CorruptDataError(f"{self.name}: SEQ unit at byte {unit.offset} differs from the first"))
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
                packet = packet_from_payload(unit.payload)
            except CorruptDataError as exc:
                self._report(CorruptDataError(f"{self.name}: FRAME unit at byte {unit.offset}: {exc.message}"))
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
            raise BitstreamError("opening a .ccv stream for writing needs a SequenceInfo", "pass sequence=...")
        return ContainerWriter(path, sequence)
    raise BitstreamError(f"mode {mode!r} is not valid", "use 'r' or 'w'")


__all__ = [
    "ContainerReader",
    "ContainerWriter",
    "UnitInfo",
    "file_header_bytes",
    "open",
    "packet_from_payload",
    "parse_frame_payload",
    "sequence_from_bytes",
    "sequence_to_dict",
    "trailer_bytes",
    "unit_bytes",
]
