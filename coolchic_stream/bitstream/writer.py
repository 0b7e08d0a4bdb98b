"""Streaming ``.ccv`` writer: file header, SEQ, one FRAME unit per packet, END; index and trailer when seekable."""

from __future__ import annotations

import builtins
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from construct import ConstructError

from ..errors import BitstreamError, MediaError, reason, writing
from ..types import FrameType, Packet, SequenceInfo
from .syntax import (
    END_PAYLOAD,
    IndexPayload,
    SequenceHeader,
)
from .units import (
    UNIT_END,
    UNIT_FRAME,
    UNIT_INDEX,
    UNIT_SEQ,
    file_header_bytes,
    sequence_to_dict,
    trailer_bytes,
    unit_bytes,
)


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

    def __init__(
        self, target: str | os.PathLike | BinaryIO, sequence: SequenceInfo
    ) -> None:
        self._owns = False
        name = target if isinstance(target, (str, os.PathLike)) else getattr(target, "name", None)
        self.name = "standard output" if str(name) == "-" else repr(str(name)) if name is not None else "the output"
        if isinstance(target, (str, os.PathLike)):
            if str(target) == "-":
                self._f: BinaryIO = sys.stdout.buffer
            else:
                try:
                    self._f = builtins.open(target, "wb")  # noqa: SIM115 - closed in close()
                except OSError as exc:
                    raise MediaError(
                        f"cannot write {str(target)!r}: {reason(exc)}", "check that the folder exists and is writable"
                    ) from None
                self._owns = True
        else:
            self._f = target
        self.sequence = sequence
        self.offset = (
            0  # bytes written so far = offset of the next unit, from the file header
        )
        self.frames_written = 0
        self.random_access_points: list[
            tuple[int, int, int]
        ] = []  # (display, coding, offset)
        self.closed = False
        self._emit(file_header_bytes())
        try:
            seq_payload = SequenceHeader.build(sequence_to_dict(sequence))
        except ConstructError as exc:
            raise BitstreamError(f"sequence header cannot be written: {exc}") from None
        self._emit(unit_bytes(UNIT_SEQ, seq_payload))

    def _emit(self, data: bytes) -> None:
        with writing(self.name):
            self._f.write(data)
            self._f.flush()
        self.offset += len(data)

    def write(self, packet: Packet) -> int:
        """Write one FRAME unit; returns the number of bytes the unit took."""
        if self.closed:
            raise BitstreamError("write() on a closed container")
        data = bytes(packet.data)
        unit = unit_bytes(UNIT_FRAME, data)
        with _whole_unit():
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
                with writing(self.name):
                    self._f.close()

    def __enter__(self) -> "ContainerWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def _whole_unit() -> Iterator[None]:
    """Hold a Ctrl-C until a unit is written and counted: one landing between the bytes and the
    bookkeeping left a frame in the file that the count the CLI reports (and the index) missed.
    Python runs signal handlers in the main thread only; elsewhere there is nothing to hold."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is None:
        yield  # None: a handler not installed from Python, which this could not put back
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held and previous is signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)
        elif held and callable(previous):
            previous(signal.SIGINT, None)  # Python's default handler: KeyboardInterrupt, now


# ------------------------------------------------------------------ reader

