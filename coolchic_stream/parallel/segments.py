"""Segments, the unit of scale-out, and what every runner shares: coding one, ordering results."""

from __future__ import annotations

import signal
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from ..config import EncoderConfig
from ..errors import CoolChicStreamError
from ..types import GopStructure, Packet, Picture, TrainingProgress

RETRIES = 2  # a segment whose worker dies is coded again this many times before the encode fails
POLL = 0.2  # seconds a runner waits for a result before it looks at its workers again
_PROGRESS_INTERVAL = 0.25  # seconds between two progress events a worker sends (phase ends always go)


@dataclass(frozen=True)
class Segment:
    """One unit of work: the pictures of one closed intra period, the first at display ``start``."""

    index: int
    start: int
    pictures: tuple[Picture, ...]

    def __post_init__(self) -> None:
        if self.index < 0 or self.start < 0 or not self.pictures:
            raise ValueError(f"segment {self.index} at {self.start} with {len(self.pictures)} pictures")


@dataclass(frozen=True)
class WorkerProgress:
    """A training progress event and where it comes from (``worker``: 0.. in order of appearance)."""

    worker: int
    pid: int
    segment: int
    event: TrainingProgress


ProgressFn = Callable[[WorkerProgress], None]


def segment_length(config: EncoderConfig) -> int:
    """Frames per unit of work: the intra period (an I frame and what predicts from it)."""
    return 1 if config.gop == GopStructure.INTRA else config.intra_period


def same_format(pictures: Iterable[Picture]) -> Iterator[Picture]:
    """The pictures, refused from the first whose format differs from the first picture's (each
    segment's encoder sees only its own pictures)."""
    first: Picture | None = None
    for display, picture in enumerate(pictures):
        first = first or picture
        picture.check_format_of(first, display)
        yield picture


def segments(pictures: Iterable[Picture], length: int) -> Iterator[Segment]:
    """Cut pictures (display order) into segments of ``length``; the last may be shorter."""
    held: list[Picture] = []
    index = 0
    for picture in same_format(pictures):
        held.append(picture)
        if len(held) == length:
            yield Segment(index, index * length, tuple(held))
            index, held = index + 1, []
    if held:
        yield Segment(index, index * length, tuple(held))


class Throttle:
    """Passes a worker's progress events on at most every _PROGRESS_INTERVAL (and each phase's end)."""

    def __init__(self, send: Callable[[TrainingProgress], None]) -> None:
        self._send = send
        self._last = 0.0

    def __call__(self, event: TrainingProgress) -> None:
        now = time.monotonic()
        if event.iteration >= event.total or now - self._last >= _PROGRESS_INTERVAL:
            self._last = now
            self._send(event)


def encode_segment(segment: Segment, config: EncoderConfig,
                   progress: Callable[[TrainingProgress], None] | None = None) -> list[Packet]:
    """Code one segment on its own: its packets in coding order, as the whole stream's encoder gives them."""
    from ..encoder import Encoder

    encoder = Encoder(config, progress=progress, start=segment.start)
    packets: list[Packet] = []
    for picture in segment.pictures:
        packets += encoder.send(picture)
    return packets + encoder.flush()


# ------------------------------------------------------------------ the runners


def incoming(conn: Connection) -> Iterator[Any]:
    """A helper process's requests from its parent, Ctrl-C ignored (the parent's to handle, and it
    stops us), until the parent sends None or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone
            return
        if message is None:
            return
        yield message


class Failure(CoolChicStreamError, RuntimeError):
    """A segment could not be coded (an unexpected error in a worker, or workers that kept dying)."""


def unexpected(segment: Segment, exc: BaseException) -> CoolChicStreamError:
    if isinstance(exc, CoolChicStreamError):
        return exc
    last = traceback.format_exception(exc)[-1].strip()
    return Failure(f"coding the segment at frame {segment.start} failed: {last}", "this is a bug: please report it")


class Ordered:
    """Results that arrive out of order, handed on in segment order; the bookkeeping of a window."""

    def __init__(self, sink: Callable[[Packet], None], jobs: int) -> None:
        self.sink = sink
        self.jobs = jobs
        self.next = 0  # the segment to write next
        self.done: dict[int, tuple[int, list[Packet]]] = {}  # segment -> (worker, packets)
        self.out: dict[int, Segment] = {}  # sent and not written yet
        self.workers: dict[int, int] = {}  # pid -> worker number, in order of appearance
        self.exhausted = False  # the input has no segment left

    def worker(self, pid: int) -> int:
        return self.workers.setdefault(pid, len(self.workers))

    def finished(self, index: int, pid: int, packets: list[Packet]) -> None:
        if index in self.out and index not in self.done:  # a duplicate (a retried segment) is the same
            self.done[index] = (self.worker(pid), packets)
        while self.next in self.done:
            worker, packets = self.done.pop(self.next)
            for packet in packets:
                stats = packet.stats and replace(packet.stats, worker=worker)
                self.sink(replace(packet, stats=stats))
            del self.out[self.next]
            self.next += 1

    def refill(self, work: Iterator[Segment]) -> list[Segment]:
        """Read segments from ``work`` while fewer than ``jobs`` + 1 are out; returns those read.

        The one beyond the workers' count waits, read, for the first worker to come free: a worker
        that finishes before an earlier segment does is not left idle until that one is written.
        """
        read: list[Segment] = []
        while not self.exhausted and len(self.out) <= self.jobs:
            segment = next(work, None)
            if segment is None:
                self.exhausted = True
            else:
                self.out[segment.index] = segment
                read.append(segment)
        return read

    @property
    def busy(self) -> bool:
        """Whether anything is still to read, code or write."""
        return not self.exhausted or bool(self.out)
