"""--jobs N: segments coded on N local worker processes, a dead one replaced."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from ..config import EncoderConfig
from ..types import Packet, Picture, TrainingProgress
from .segments import (
    POLL, RETRIES, Failure, Ordered, ProgressFn, Segment, Throttle, WorkerProgress, encode_segment, incoming,
    segment_length, segments, unexpected,
)  # fmt: skip


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ctrl-C is the parent's to handle: a worker started in this block ignores it from birth."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread sets handlers; signals only reach it anyway
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _serve(conn, config: EncoderConfig) -> None:  # a local worker process
    pid = os.getpid()
    for segment in incoming(conn):

        def send(event: TrainingProgress, index: int = segment.index) -> None:
            conn.send(("progress", index, pid, event))

        try:
            conn.send(("done", segment.index, pid, encode_segment(segment, config, Throttle(send))))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            conn.send(("error", segment.index, pid, unexpected(segment, exc)))


@dataclass
class _Worker:
    """A local worker process, the parent's end of its own pipe, and the segment it codes."""

    process: object
    conn: object
    segment: int | None = None


class LocalRunner:
    """--jobs N: N worker processes (spawned: torch and fork do not mix); a dead one is replaced.

    Each worker has a pipe of its own: one killed in the middle of a message garbles only its own
    channel, which goes with it.
    """

    def __init__(self, config: EncoderConfig, jobs: int, progress: ProgressFn | None) -> None:
        import multiprocessing

        self.config = config
        self.jobs = jobs
        self.progress = progress
        self.ctx = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []

    def _start(self, slot: int) -> None:
        config = self.config
        if config.device == "cuda":  # plain "cuda": the workers share the visible GPUs round robin
            import torch

            if torch.cuda.device_count() > 1:
                config = replace(config, device=f"cuda:{slot % torch.cuda.device_count()}")
        ours, theirs = self.ctx.Pipe()
        process = self.ctx.Process(target=_serve, args=(theirs, config), name=f"ccv-encode-{slot}", daemon=True)
        with _sigint_ignored():  # inherited through exec: a Ctrl-C during its start-up cannot hit it
            process.start()
        theirs.close()
        worker = _Worker(process, ours)
        if slot < len(self.workers):
            self.workers[slot] = worker
        else:
            self.workers.append(worker)

    def run(self, pictures: Iterable[Picture], sink: Callable[[Packet], None]) -> None:
        work = segments(pictures, segment_length(self.config))
        order = Ordered(sink, self.jobs)
        attempts: dict[int, int] = {}
        waiting: list[Segment] = []  # to send when a worker is free
        try:
            for slot in range(self.jobs):
                self._start(slot)
            while order.busy:
                waiting += order.refill(work)
                self._dispatch(waiting, attempts)
                lost = self._receive(order)
                self._replace(lost, order, waiting, attempts)
        finally:
            for worker in self.workers:
                if worker.process.is_alive():
                    worker.process.kill()
                worker.process.join(timeout=5)
                worker.conn.close()

    def _dispatch(self, waiting: list[Segment], attempts: dict[int, int]) -> None:
        for worker in self.workers:
            if worker.segment is None and waiting:
                segment = waiting.pop(0)
                attempts[segment.index] = attempts.get(segment.index, 0) + 1
                worker.segment = segment.index
                try:
                    worker.conn.send(segment)
                except OSError:
                    pass  # it died: _receive finds its pipe closed, and the segment goes again

    def _receive(self, order: Ordered) -> list[int]:
        """Handle what the workers sent within POLL seconds; the slots of workers that died."""
        from multiprocessing.connection import wait

        lost: list[int] = []
        by_conn = {id(w.conn): slot for slot, w in enumerate(self.workers)}
        for conn in wait([w.conn for w in self.workers], timeout=POLL):
            slot = by_conn[id(conn)]
            worker = self.workers[slot]
            while slot not in lost and conn.poll():
                try:
                    kind, index, pid, payload = conn.recv()
                except (EOFError, OSError):
                    lost.append(slot)
                    break
                if kind == "progress":
                    if self.progress is not None:
                        self.progress(WorkerProgress(order.worker(pid), pid, index, payload))
                    continue
                worker.segment = None
                if kind == "error":
                    raise payload
                order.finished(index, pid, payload)
        return lost + [slot for slot, w in enumerate(self.workers) if slot not in lost and not w.process.is_alive()]

    def _replace(self, lost: list[int], order: Ordered, waiting: list[Segment], attempts: dict[int, int]) -> None:
        for slot in lost:
            dead = self.workers[slot]
            dead.process.kill()
            dead.process.join()
            dead.conn.close()
            self._start(slot)
            index = dead.segment
            if index is None or index not in order.out or index in order.done:
                continue
            segment = order.out[index]
            if attempts[index] > RETRIES:
                raise Failure(f"the worker coding the segment at frame {segment.start} died {attempts[index]} times "
                               f"(last exit status {dead.process.exitcode})", "check memory (dmesg) or try fewer --jobs")
            waiting.insert(0, segment)
