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

Requests are served in order, one at a time. Two threads of the encoder's process talk to the
helper, one sending requests and one reading results as they come, so neither side ever blocks
on a full pipe: a request and a result are each larger than a pipe holds from CIF up (the picture,
the latents), and an encoder sending the next frame's request while the helper sent back the
dropped one's hung both. A result nobody waits for is thrown away when it arrives. A helper that
dies (or cannot start) is not replaced: ``take`` says so and the encoder trains the alternative
itself.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

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
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Condition()
        self._next = 0
        self._open: set[int] = set()  # submitted, neither taken nor dropped
        self._dropped: set[int] = set()  # dropped before their result came
        self._results: dict[int, tuple[bool, Any]] = {}
        self._gone = False  # the helper's pipe broke (set by the threads)
        self.failed = False  # the helper died or could not start: the encoder trains alone

    def submit(self, request: IntraRequest) -> int | None:
        """Start training ``request`` in the helper; a ticket for ``take``/``drop``, None without a helper."""
        if self.failed:
            return None
        if self._process is None:
            try:
                self._start()
            except (OSError, EOFError, ValueError):
                self._fail()
                return None
        ticket, self._next = self._next, self._next + 1
        with self._lock:
            self._open.add(ticket)
        self._outbox.put((ticket, request))
        return ticket

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name=HELPER_NAME, daemon=True)
        self._process.start()
        child.close()
        self._conn = parent
        self._threads = [
            threading.Thread(target=self._send, args=(parent,), name=f"{HELPER_NAME}-send", daemon=True),
            threading.Thread(target=self._receive, args=(parent,), name=f"{HELPER_NAME}-receive", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _send(self, conn: Connection) -> None:  # a thread: requests, then None to stop the helper
        while True:
            message = self._outbox.get()
            try:
                conn.send(message)
            except (OSError, ValueError):
                self._broken()
                return
            if message is None:
                return

    def _receive(self, conn: Connection) -> None:  # a thread: results as they come
        while True:
            try:
                ticket, ok, value = conn.recv()
            except (OSError, EOFError, ValueError):
                self._broken()
                return
            with self._lock:
                if ticket in self._dropped:
                    self._dropped.discard(ticket)
                else:
                    self._results[ticket] = (ok, value)
                    self._lock.notify_all()

    def _broken(self) -> None:
        with self._lock:
            self._gone = True
            self._lock.notify_all()

    def take(self, ticket: int) -> FrameCodingResult | None:
        """The request's ``FrameCodingResult`` (waits for it); None if the helper died (train it yourself).
        An error the training raised is raised here."""
        with self._lock:
            skipped = sorted(t for t in self._open if t < ticket)
            if skipped:  # requests are served in order: the encoder forgot one
                raise RuntimeError(f"request {ticket} taken before request {skipped[0]}, which nobody dropped or took")
            self._open.discard(ticket)
            while ticket not in self._results and not self._gone and not self.failed:
                self._lock.wait()
            answer = self._results.pop(ticket, None)
        if answer is None:
            self._fail()
            return None
        ok, value = answer
        if not ok:
            raise value
        return value

    def drop(self, ticket: int) -> None:
        """The result of ``ticket`` is not wanted: thrown away (when it comes)."""
        with self._lock:
            self._open.discard(ticket)
            if self._results.pop(ticket, None) is None:
                self._dropped.add(ticket)

    def _fail(self) -> None:
        self.failed = True
        self.close()

    def close(self) -> None:
        """Stop the helper (its current training is abandoned)."""
        process, conn, threads = self._process, self._conn, self._threads
        self._process, self._conn, self._threads = None, None, []
        if process is None:
            return
        self._outbox.put(None)  # the helper stops at the next request it reads
        process.join(timeout=0.5)
        if process.is_alive():
            process.kill()
            process.join()
        for thread in threads:  # the pipe's other end is gone: both return
            thread.join(timeout=5)
        if conn is not None:
            conn.close()

    def __enter__(self) -> IntraAside:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
