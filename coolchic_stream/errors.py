"""One exception tree for everything coolchic-stream reports to a user.

Every error carries a one-line message that names the offending value and,
where one exists, a hint. Subclasses also inherit the matching builtin so
callers can catch them the Python way (``except ValueError``).
"""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Iterator
from dataclasses import dataclass


class CoolChicStreamError(Exception):
    """Root of every error raised on purpose by coolchic-stream."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} (hint: {hint})" if hint else message)

    def __reduce__(self) -> tuple:
        # Raised in a worker process or a Ray task, it reaches the caller with message and hint apart.
        return type(self), (self.message, self.hint)


class UsageError(CoolChicStreamError, ValueError):
    """A wrong option or argument given by the user."""

    exit_code = 2


class ConfigError(UsageError):
    """An invalid encoder configuration value."""


class MediaError(CoolChicStreamError, ValueError):
    """An input or output media file that cannot be read or written."""

    exit_code = 3


class UnsupportedFormatError(MediaError):
    """A pixel format, size or container coolchic-stream does not handle."""


class BitstreamError(CoolChicStreamError, ValueError):
    """A ``.ccv`` stream or frame payload that does not parse or decode."""

    exit_code = 4


class CorruptDataError(BitstreamError):
    """Bytes whose checksum, syntax or entropy-coded content is inconsistent."""


class TruncatedStreamError(BitstreamError, EOFError):
    """A stream that ends in the middle of a unit or a frame."""


class DecodeOrderError(BitstreamError):
    """A frame that refers to a picture the decoder does not hold."""



def reason(exc: BaseException) -> str:
    """An OS or library error in words, for a one-line message: its strerror without the errno
    number (``[Errno 28] No space left on device`` -> ``No space left on device``)."""
    text = getattr(exc, "strerror", None) or str(exc)
    lines = str(text).strip().splitlines()
    return re.sub(r"^\[Errno -?\d+\]\s*", "", lines[0] if lines else "").strip() or "unknown cause"


@contextlib.contextmanager
def writing(name: str) -> Iterator[None]:
    """An OS error while writing ``name`` becomes a one-line MediaError (exit 3) naming it; a closed
    pipe stays a BrokenPipeError (the reader went away: the CLI ends quietly)."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        hint = "free some space on that disk" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "check the output and its permissions"
        raise MediaError(f"cannot write {name}: {reason(exc)}", hint) from None


@dataclass(frozen=True)
class Failed:
    """A result slot for work that failed (a frame that did not parse or decode): the error, as a
    value among the results of the work that did not."""

    error: BitstreamError
