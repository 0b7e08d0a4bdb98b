"""Media I/O: turn files and pipes into Pictures and Pictures into y4m/yuv/png/md5 (only place using PyAV).

    source = open_input("clip.mp4", frames=8, start=2)   # or "-" for stdin
    source.sequence   -> SequenceInfo (size, rate, data type, bit depth, range, siting)
    for picture in source: ...                           # pts = 0, 1, … counted after --start
    sink = open_output("-", None, sequence); sink.write(picture); sink.close()
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import MediaError, UsageError, reason
from ..types import Picture, SequenceInfo
from .sinks import FORMATS, Md5Sink, Sink, open_output, output_format, png_name, raw_bytes
from .y4m import MAGIC as Y4M_MAGIC
from .y4m import Y4mReader, Y4mWriter, rgb_to_yuv444


class _Replay(io.RawIOBase):
    """A raw stream that first gives back bytes already read (format sniffing on a pipe)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class VideoSource:
    """Pictures of one input, after ``--start`` and limited to ``--frames``."""

    def __init__(
        self, reader: Y4mReader, name: str, frames: int | None, start: int, closer=None, available: int | None = None
    ) -> None:
        self._reader = reader
        self.name = name
        self.sequence: SequenceInfo = reader.sequence
        self._frames = frames
        self._start = start
        self._closer = closer
        # How many pictures iteration will give, when it can be known up front (progress bars).
        self.frame_count: int | None = frames
        if available is not None:
            left = max(available - start, 0)
            self.frame_count = left if frames is None else min(frames, left)

    def __iter__(self) -> Iterator[Picture]:
        count = 0
        for index, picture in enumerate(self._reader):
            if index < self._start:
                continue
            if self._frames is not None and count >= self._frames:
                return
            yield Picture(picture.planes, picture.bit_depth, picture.data_type, count)
            count += 1

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_input(path: str, frames: int | None = None, start: int = 0) -> VideoSource:
    """Open a video input: y4m parsed by hand, anything else through PyAV; ``-`` is stdin."""
    if frames is not None and frames < 1:
        raise UsageError(f"--frames {frames} must be at least 1")
    if start < 0:
        raise UsageError(f"--start {start} must not be negative")
    if path == "-":
        stdin = sys.stdin.buffer
        head = stdin.read(len(Y4M_MAGIC))
        if not head:
            raise MediaError("stdin is empty", "pipe a y4m stream, e.g. ffmpeg -i in.mp4 -f yuv4mpegpipe -")
        stream = io.BufferedReader(_Replay(head, stdin))
        if head == Y4M_MAGIC:
            return VideoSource(Y4mReader(stream, "stdin"), "stdin", frames, start)
        from .pyav_io import PyAVReader

        reader = PyAVReader(stream, "stdin")
        return VideoSource(reader, "stdin", frames, start, reader.close)
    p = Path(path)
    try:
        f = open(p, "rb")  # noqa: SIM115 - closed by the source
    except OSError as exc:
        raise MediaError(f"cannot open {path!r}: {reason(exc)}", "check the path (- reads standard input)") from None
    try:
        head = f.read(len(Y4M_MAGIC))
    except OSError as exc:
        f.close()
        raise MediaError(f"cannot read {path!r}: {reason(exc)}") from None
    if not head:
        f.close()
        raise MediaError(f"{path} is empty", "give a y4m, mp4, mkv, png… input with at least one frame")
    if head == Y4M_MAGIC:
        f.seek(0)
        try:
            reader = Y4mReader(f, path)
            available = None
            if p.is_file():  # FRAME lines without parameters: the size gives the count
                body = p.stat().st_size - f.tell()
                per_frame = reader.frame_bytes + len(b"FRAME\n")
                available = body // per_frame if body % per_frame == 0 else None
            return VideoSource(reader, path, frames, start, f.close, available)
        except BaseException:
            f.close()
            raise
    f.close()
    from .pyav_io import PyAVReader  # PyAV loads only for non-y4m inputs

    reader = PyAVReader(p, path)
    return VideoSource(reader, path, frames, start, reader.close)


__all__ = [
    "FORMATS",
    "Md5Sink",
    "Sink",
    "VideoSource",
    "Y4mReader",
    "Y4mWriter",
    "open_input",
    "open_output",
    "output_format",
    "png_name",
    "raw_bytes",
    "rgb_to_yuv444",
]
