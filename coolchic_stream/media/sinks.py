"""Where decoded pictures go: y4m, raw .yuv, numbered PNGs, an md5 digest or nowhere.

Every sink takes pictures in display order through ``write`` and finishes in ``close``.
``-`` means stdout for the byte-stream sinks (y4m, yuv, md5).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import MediaError, UsageError, reason, writing
from ..types import DataType, Picture, SequenceInfo
from .y4m import Y4mWriter, planes_to_bytes

FORMATS = ("y4m", "yuv", "png", "md5", "null")
_BY_EXTENSION = {".y4m": "y4m", ".yuv": "yuv", ".png": "png", ".md5": "md5"}


class Sink(Protocol):
    def write(self, picture: Picture) -> None: ...

    def close(self) -> None: ...


def output_format(target: str, fmt: str | None) -> str:
    """The sink format for ``-o target [--format fmt]``: explicit, else stdout → y4m, else by extension."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UsageError(f"--format {fmt!r} is not valid", f"choose one of {', '.join(FORMATS)}")
        return fmt
    if target == "-":
        return "y4m"
    if target == os.devnull:
        return "null"
    ext = Path(target).suffix.lower()
    if ext in _BY_EXTENSION:
        return _BY_EXTENSION[ext]
    raise UsageError(
        f"cannot tell the output format from {target!r}",
        f"use a .y4m/.yuv/.png/.md5 name or --format {{{','.join(FORMATS)}}}",
    )


def _label(target: str) -> str:
    return "standard output" if target == "-" else repr(target)


def _open_bytes(target: str) -> tuple[BinaryIO, bool]:
    if target == "-":
        return sys.stdout.buffer, False
    try:
        return open(target, "wb"), True  # noqa: SIM115 - closed by the sink
    except OSError as exc:
        raise MediaError(f"cannot write {target!r}: {reason(exc)}", "check that the folder exists and is writable") from None


def _finish(f: BinaryIO, owns: bool, name: str) -> None:
    """Flush an output (a full disk shows here too) and close it if the sink opened it."""
    with writing(name):
        try:
            f.flush()
        finally:
            if owns:
                f.close()


def raw_bytes(picture: Picture) -> bytes:
    """What the yuv sink writes (and the md5 sink hashes) for one picture.

    YUV: Y, U, V planes, tightly packed, 1 byte per sample up to 8 bits, else 2 bytes
    little-endian (FFmpeg's yuv420p / yuv420p10le / yuv444p… rawvideo). RGB: planes in
    G, B, R order (FFmpeg's gbrp rawvideo).
    """
    if picture.data_type == DataType.RGB:
        r, g, b = picture.planes
        picture = Picture((g, b, r), picture.bit_depth, picture.data_type, picture.pts)
    return planes_to_bytes(picture)


class Y4mSink:
    """y4m to a file or stdout."""

    def __init__(self, target: str, sequence: SequenceInfo) -> None:
        self._f, self._owns = _open_bytes(target)
        self._name = _label(target)
        with writing(self._name):
            self._writer = Y4mWriter(self._f, sequence)

    def write(self, picture: Picture) -> None:
        with writing(self._name):
            self._writer.write(picture)

    def close(self) -> None:
        _finish(self._f, self._owns, self._name)


class RawSink:
    """Headerless planar samples (see :func:`raw_bytes`) to a file or stdout."""

    def __init__(self, target: str) -> None:
        self._f, self._owns = _open_bytes(target)
        self._name = _label(target)

    def write(self, picture: Picture) -> None:
        with writing(self._name):
            self._f.write(raw_bytes(picture))
            self._f.flush()

    def close(self) -> None:
        _finish(self._f, self._owns, self._name)


class Md5Sink:
    """One md5 over every picture's :func:`raw_bytes` in output (display) order.

    It equals ``md5sum`` of the ``--format yuv`` output. Written as ``<hex digest>\\n``.
    """

    def __init__(self, target: str) -> None:
        self._target = target
        self._md5 = hashlib.md5()
        self.frames = 0

    def write(self, picture: Picture) -> None:
        self._md5.update(raw_bytes(picture))
        self.frames += 1

    @property
    def hexdigest(self) -> str:
        return self._md5.hexdigest()

    def close(self) -> None:
        f, owns = _open_bytes(self._target)
        try:
            with writing(_label(self._target)):
                f.write(f"{self.hexdigest}\n".encode())
        finally:
            _finish(f, owns, _label(self._target))


def png_name(target: str, pts: int) -> str:
    """File name of picture ``pts``: a printf pattern (``%d``, ``%04d``) or ``stem_0000.png`` next to target."""
    if re.search(r"%0?\d*d", target):
        try:
            return target % pts
        except (TypeError, ValueError):
            raise UsageError(f"png pattern {target!r} is not valid", "use one %d or %04d") from None
    p = Path(target)
    return str(p.with_name(f"{p.stem}_{pts:04d}{p.suffix or '.png'}"))


class PngSink:
    """One PNG per picture (rgb24, or rgb48 above 8 bits; YUV converted by swscale)."""

    def __init__(self, target: str) -> None:
        if target == "-":
            raise UsageError("png output cannot go to stdout", "give a name such as out_%04d.png")
        self._target = target
        self.files: list[str] = []
        self._index = 0

    def write(self, picture: Picture) -> None:
        from .pyav_io import png_bytes  # PyAV is loaded only when PNGs are written

        name = png_name(self._target, self._index)
        self._index += 1
        try:
            Path(name).write_bytes(png_bytes(picture))
        except OSError as exc:
            raise MediaError(f"cannot write {name!r}: {reason(exc)}", "check the output folder and free space") from None
        self.files.append(name)

    def close(self) -> None:
        pass


class NullSink:
    """Discards pictures (decode speed tests)."""

    def write(self, picture: Picture) -> None:
        pass

    def close(self) -> None:
        pass


def open_output(target: str, fmt: str | None, sequence: SequenceInfo) -> Sink:
    """A sink for ``target`` in format ``fmt`` (None: guessed, see :func:`output_format`)."""
    kind = output_format(target, fmt)
    if kind == "y4m":
        return Y4mSink(target, sequence)
    if kind == "yuv":
        return RawSink(target)
    if kind == "md5":
        return Md5Sink(target)
    if kind == "png":
        return PngSink(target)
    return NullSink()
