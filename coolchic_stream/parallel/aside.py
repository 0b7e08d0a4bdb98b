"""A helper process that trains a P/B frame's coding without prediction while the encoder trains its inter coding.

    Encoder ── submit(IntraRequest) ──────────► helper process: code_intra(...) ──┐
       │  trains the frame's inter coding meanwhile (this process)                │ result
       └── take(ticket): the intra check fired ◄──────────────────────────────────┘
           drop(ticket): it did not (the result is read and thrown away)

The intra check (``encoder.Encoder``) codes a P/B frame a second time, without prediction, when its
inter coding turns out costly — a second training of the same length, after the first. Both only
read what is already decoded (the frame, its references' networks), so the second can start with
the first, on another core: an encode of one intra period then uses two cores and waits for the
longer training instead of both. The helper trains on the encode's torch thread count from the
frame's own seed, so the bytes are those of the one-process encode (a test compares them).

Requests are served in order, one at a time; a result nobody waits for is read and dropped when
the next one is taken. A helper that dies (or cannot start) is not replaced: ``take`` says so and
the encoder trains the alternative itself.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from ..config import EncoderConfig
from ..errors import CoolChicStreamError
from ..framecodec import FrameNetworks
from ..types import FrameType, Picture
from .segments import incoming

if TYPE_CHECKING:
    from ..train.coding import FrameCodingResult
    from ..train.loop import ProgressFn

__all__ = ["HELPER_NAME", "IntraAside", "IntraRequest"]

HELPER_NAME = "ccv-aside"


@dataclass(frozen=True)
class IntraRequest:
    """The arguments of one ``train.coding.code_intra`` call (no progress reporting: the helper is silent)."""

    picture: Picture
    config: EncoderConfig
    lmbda: float
    iterations: int
    references: Sequence[FrameNetworks] = field(default_factory=tuple)
    distances: Sequence[int] = field(default_factory=tuple)
    frame_type: FrameType = FrameType.P
    start: bool = True

    def __post_init__(self) -> None:
        if self.frame_type == FrameType.I:
            raise ValueError("an I frame has no inter coding to train beside")
        if len(self.references) != len(self.distances):
            raise ValueError("one display distance per reference's networks")

    def run(self, progress: ProgressFn | None = None) -> FrameCodingResult:
        """Train it in this process (the helper's work, and the encoder's without a helper)."""
        from ..threads import torch_threads
        from ..train import coding

        with torch_threads(self.config.threads):
            return coding.code_intra(
                self.picture, self.config, self.lmbda, self.iterations, progress, self.references, self.distances,
                self.frame_type, self.start,
            )  # fmt: skip


def _serve(conn: Connection) -> None:  # the helper process
    for ticket, request in incoming(conn):
        try:
            conn.send((ticket, True, request.run()))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the encoder
            if not isinstance(exc, CoolChicStreamError):
                exc = RuntimeError(traceback.format_exception(exc)[-1].strip())
            conn.send((ticket, False, exc))


class IntraAside:
    """One helper process, started at the first request, for every segment an encode codes in this process."""

    def __init__(self) -> None:
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._next = 0
        self._dropped: set[int] = set()
        self.failed = False  # the helper died or could not start: the encoder trains alone

    def submit(self, request: IntraRequest) -> int | None:
        """Start training ``request`` in the helper; a ticket for ``take``/``drop``, None without a helper."""
        if self.failed:
            return None
        try:
            if self._process is None:
                context = multiprocessing.get_context("spawn")
                parent, child = context.Pipe()
                self._process = context.Process(target=_serve, args=(child,), name=HELPER_NAME, daemon=True)
                self._process.start()
                child.close()
                self._conn = parent
            ticket, self._next = self._next, self._next + 1
            self._conn.send((ticket, request))
            return ticket
        except (OSError, EOFError, ValueError):
            self._fail()
            return None

    def take(self, ticket: int) -> FrameCodingResult | None:
        """The request's ``FrameCodingResult`` (waits for it); None if the helper died (train it yourself).
        An error the training raised is raised here."""
        while not self.failed:
            try:
                got, ok, value = self._conn.recv()
            except (OSError, EOFError):
                self._fail()
                return None
            if got == ticket:
                if not ok:
                    raise value
                return value
            if got not in self._dropped:  # requests are served in order: an earlier one was dropped
                raise RuntimeError(f"the helper answered request {got} before {ticket}, which nobody dropped")
            self._dropped.discard(got)
        return None

    def drop(self, ticket: int) -> None:
        """The result of ``ticket`` is not wanted; it is read and discarded when a later one is taken."""
        self._dropped.add(ticket)

    def _fail(self) -> None:
        self.failed = True
        self.close()

    def close(self) -> None:
        """Stop the helper (its current training is abandoned)."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            conn.close()
        if process is not None:
            process.join(timeout=0.5)
            if process.is_alive():
                process.kill()
                process.join()

    def __enter__(self) -> IntraAside:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
