"""Scale-out: closed intra periods encoded side by side, on local processes or Ray tasks, written in order.

    pictures ─► segments: one intra period each (one frame each for an intra-only stream)
        ─► runner ─┬─ inline: this process, packets out frame by frame            (jobs 1)
                   ├─ local: N worker processes, a dead one replaced              (--jobs N)
                   └─ Ray:   one task per segment, 1 CPU (or 1 GPU) each, retried (--ray)
           each segment: Encoder(config, start=its first frame) ─► its packets
        ─► in coding order: segment k goes to the sink as soon as segments < k are written

Same bytes however it runs: no encoder state crosses an intra period (see
:mod:`coolchic_stream.encoder`), every frame's training is seeded by its position, and every
process trains on ``config.threads`` torch threads. So a segment coded again after a worker died
gives the same packets, and ``--jobs 1``, ``--jobs N`` and ``--ray`` write the same file (on one
machine: float training may add differently on another CPU or GPU model).

Memory stays bounded on endless input: at most ``jobs`` segments are out (coding, or coded and
waiting for an earlier one) while the next one is read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from .config import EncoderConfig
from .errors import ConfigError, CoolChicStreamError
from .types import GopStructure, Packet, Picture, TrainingProgress

__all__ = [
    "LOCAL_RAY", "Segment", "WorkerProgress", "check_ray", "encode", "encode_segment", "preflight", "segment_length",
    "segments",
]  # fmt: skip

LOCAL_RAY = "local"  # --ray without an address: start a Ray instance on this machine
RETRIES = 2  # a segment whose worker dies is coded again this many times before the encode fails
_PROGRESS_INTERVAL = 0.25  # seconds between two progress events a worker sends (phase ends always go)
_POLL = 0.2  # seconds the runner waits for a result before it looks at its workers again


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


class _Throttle:
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
    from .encoder import Encoder

    encoder = Encoder(config, progress=progress, start=segment.start)
    packets: list[Packet] = []
    for picture in segment.pictures:
        packets += encoder.send(picture)
    return packets + encoder.flush()


# ------------------------------------------------------------------ the runners


class _Failure(CoolChicStreamError, RuntimeError):
    """A segment could not be coded (an unexpected error in a worker, or workers that kept dying)."""


def _unexpected(segment: Segment, exc: BaseException) -> CoolChicStreamError:
    if isinstance(exc, CoolChicStreamError):
        return exc
    last = traceback.format_exception(exc)[-1].strip()
    return _Failure(f"coding the segment at frame {segment.start} failed: {last}", "this is a bug: please report it")


class _Inline:
    """jobs 1: this process codes each picture as it arrives and hands each packet on at once."""

    def __init__(self, config: EncoderConfig, progress: ProgressFn | None) -> None:
        self.config = config
        self.progress = progress

    def run(self, pictures: Iterable[Picture], sink: Callable[[Packet], None]) -> None:
        from .encoder import Encoder

        length, pid = segment_length(self.config), os.getpid()
        encoder = None
        for display, picture in enumerate(same_format(pictures)):
            if display % length == 0:  # a new segment: a new encoder, as a worker would start it
                if encoder is not None:
                    for packet in encoder.encode(None):
                        sink(packet)
                report = None if self.progress is None else _reporter(self.progress, 0, pid, display // length)
                encoder = Encoder(self.config, progress=report, start=display)
            for packet in encoder.encode(picture):
                sink(packet)
        if encoder is not None:
            for packet in encoder.encode(None):
                sink(packet)


def _reporter(progress: ProgressFn, worker: int, pid: int, segment: int) -> Callable[[TrainingProgress], None]:
    return lambda event: progress(WorkerProgress(worker, pid, segment, event))


class _Ordered:
    """Results that arrive out of order, handed on in segment order; the bookkeeping of a window."""

    def __init__(self, sink: Callable[[Packet], None], jobs: int) -> None:
        self.sink = sink
        self.jobs = jobs
        self.next = 0  # the segment to write next
        self.done: dict[int, tuple[int, list[Packet]]] = {}  # segment -> (worker, packets)
        self.out: dict[int, Segment] = {}  # sent and not written yet
        self.workers: dict[int, int] = {}  # pid -> worker number, in order of appearance

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

    def full(self) -> bool:
        return len(self.out) >= self.jobs


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


def _serve(inbox, outbox, config: EncoderConfig) -> None:  # a local worker process
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pid = os.getpid()
    while True:
        segment = inbox.get()
        if segment is None:
            return

        def send(event: TrainingProgress, index: int = segment.index) -> None:
            outbox.put(("progress", index, pid, event))

        try:
            outbox.put(("done", segment.index, pid, encode_segment(segment, config, _Throttle(send))))
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the parent
            outbox.put(("error", segment.index, pid, _unexpected(segment, exc)))


class _Local:
    """--jobs N: N worker processes (spawned: torch and fork do not mix); a dead one is replaced."""

    def __init__(self, config: EncoderConfig, jobs: int, progress: ProgressFn | None) -> None:
        import multiprocessing

        self.config = config
        self.jobs = jobs
        self.progress = progress
        self.ctx = multiprocessing.get_context("spawn")
        self.outbox = self.ctx.Queue()
        self.procs: list = []  # per slot: (process, inbox, segment index or None)

    def _start(self, slot: int) -> None:
        inbox = self.ctx.Queue()
        config = self.config
        if config.device == "cuda":  # plain "cuda": the workers share the visible GPUs round robin
            import torch

            if torch.cuda.device_count() > 1:
                config = replace(config, device=f"cuda:{slot % torch.cuda.device_count()}")
        proc = self.ctx.Process(target=_serve, args=(inbox, self.outbox, config), daemon=True)
        with _sigint_ignored():  # inherited through exec: a Ctrl-C during its start-up cannot hit it
            proc.start()
        entry = [proc, inbox, None]
        if slot < len(self.procs):
            self.procs[slot] = entry
        else:
            self.procs.append(entry)

    def run(self, pictures: Iterable[Picture], sink: Callable[[Packet], None]) -> None:
        work = segments(pictures, segment_length(self.config))
        order = _Ordered(sink, self.jobs)
        attempts: dict[int, int] = {}
        waiting: list[Segment] = []  # to send when a worker is free
        exhausted = False
        try:
            for slot in range(self.jobs):
                self._start(slot)
            while not exhausted or order.out:
                while not exhausted and not order.full():
                    segment = next(work, None)
                    if segment is None:
                        exhausted = True
                        break
                    order.out[segment.index] = segment
                    waiting.append(segment)
                self._dispatch(waiting, attempts)
                self._receive(order)
                self._replace_dead(order, waiting, attempts)
        finally:
            for proc, inbox, _ in self.procs:
                if proc.is_alive():
                    proc.kill()
                proc.join(timeout=5)
                inbox.close()
            self.outbox.close()

    def _dispatch(self, waiting: list[Segment], attempts: dict[int, int]) -> None:
        for entry in self.procs:
            if entry[2] is None and waiting:
                segment = waiting.pop(0)
                attempts[segment.index] = attempts.get(segment.index, 0) + 1
                entry[1].put(segment)
                entry[2] = segment.index

    def _receive(self, order: _Ordered) -> None:
        deadline = time.monotonic() + _POLL
        while True:
            try:
                kind, index, pid, payload = self.outbox.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                return
            if kind == "progress":
                if self.progress is not None:
                    self.progress(WorkerProgress(order.worker(pid), pid, index, payload))
                continue
            for entry in self.procs:
                if entry[2] == index and entry[0].pid == pid:
                    entry[2] = None
            if kind == "error":
                raise payload
            order.finished(index, pid, payload)

    def _replace_dead(self, order: _Ordered, waiting: list[Segment], attempts: dict[int, int]) -> None:
        for slot, (proc, _, index) in enumerate(self.procs):
            if proc.is_alive():
                continue
            proc.join()
            self._start(slot)
            if index is None or index not in order.out or index in order.done:
                continue
            segment = order.out[index]
            if attempts[index] > RETRIES:
                raise _Failure(f"the worker coding the segment at frame {segment.start} died {attempts[index]} times "
                               f"(last exit status {proc.exitcode})", "check memory (dmesg) or try fewer --jobs")
            waiting.insert(0, segment)


class _ProgressBox:
    """A Ray actor (no CPU of its own) where tasks drop progress events and the driver takes them."""

    def __init__(self) -> None:
        self.items: list = []

    def put(self, item: tuple) -> None:
        self.items.append(item)

    def take(self) -> list:
        items, self.items = self.items, []
        return items


def _ray_segment(segment: Segment, config: EncoderConfig, box) -> tuple[int, list[Packet]]:
    """A Ray task: one segment; progress goes to the driver's box, fire and forget."""
    pid = os.getpid()

    def send(event: TrainingProgress) -> None:
        box.put.remote((segment.index, pid, event))

    device = config.device
    if device.startswith("cuda"):
        device = "cuda"  # Ray makes the task's GPU the only visible one
    try:
        return pid, encode_segment(segment, replace(config, device=device), _Throttle(send) if box is not None else None)
    except CoolChicStreamError:
        raise
    except BaseException as exc:  # noqa: BLE001
        raise _unexpected(segment, exc) from None


def check_ray():
    """The ray module, or a usage error with the install hint."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray, which is not installed", 'pip install "coolchic-stream[ray]"') from None
    return ray


class _Ray:
    """--ray: a Ray task per segment (1 CPU, or 1 GPU with --device cuda), Ray's retries on worker death."""

    def __init__(self, config: EncoderConfig, address: str, jobs: int | None, progress: ProgressFn | None) -> None:
        self.ray = check_ray()
        self.config = config
        self.address = address
        self.jobs = jobs
        self.progress = progress

    def _connect(self) -> bool:
        """Join (or start) the cluster; True when this call started it (and so shuts it down)."""
        ray = self.ray
        if ray.is_initialized():
            return False
        try:
            ray.init(address=None if self.address == LOCAL_RAY else self.address, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR)  # fmt: skip
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--ray {self.address!r}: cannot join the cluster: {str(exc).splitlines()[0]}",
                              "give auto, ray://HOST:PORT, or no address for a local instance") from None  # fmt: skip
        return True

    def run(self, pictures: Iterable[Picture], sink: Callable[[Packet], None]) -> None:
        ray = self.ray
        started = self._connect()
        try:
            self._run(segments(pictures, segment_length(self.config)), sink)
        finally:
            if started:
                ray.shutdown()

    def _run(self, work: Iterator[Segment], sink: Callable[[Packet], None]) -> None:
        ray = self.ray
        gpu = self.config.device.startswith("cuda")
        resources = ray.cluster_resources()
        if gpu and resources.get("GPU", 0) < 1:
            raise ConfigError(f"--device {self.config.device} with --ray: the cluster has no GPU", "use --device cpu")
        slots = int(resources.get("GPU" if gpu else "CPU", 1)) // (1 if gpu else self.config.threads)
        jobs = self.jobs or max(slots, 1)
        task = ray.remote(_ray_segment).options(num_cpus=0 if gpu else self.config.threads, num_gpus=1 if gpu else 0,
                                                max_retries=RETRIES, retry_exceptions=False)  # fmt: skip
        box = ray.remote(_ProgressBox).options(num_cpus=0).remote() if self.progress is not None else None
        order = _Ordered(sink, jobs)
        refs: dict = {}  # ObjectRef -> segment index
        exhausted = False
        try:
            while not exhausted or order.out:
                while not exhausted and not order.full():
                    segment = next(work, None)
                    if segment is None:
                        exhausted = True
                        break
                    order.out[segment.index] = segment
                    refs[task.remote(segment, self.config, box)] = segment.index
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=_POLL) if refs else ([], [])
                self._drain(box, order)
                for ref in ready:
                    index = refs.pop(ref)
                    try:
                        pid, packets = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                        raise _unexpected(order.out[index], cause) from None
                    except ray.exceptions.RayError as exc:
                        raise _Failure(f"the Ray task coding the segment at frame {order.out[index].start} failed "
                                       f"after {RETRIES} retries: {type(exc).__name__}", "see the Ray logs") from None
                    order.finished(index, pid, packets)
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)
            if box is not None:
                ray.kill(box)

    def _drain(self, box, order: _Ordered) -> None:
        if box is None or self.progress is None:
            return
        for index, pid, event in self.ray.get(box.take.remote()):
            self.progress(WorkerProgress(order.worker(pid), pid, index, event))


def preflight(config: EncoderConfig, jobs: int | None = None, ray_address: str | None = None) -> None:
    """Refuse what cannot run, before anything is read or written: a bad job count, a device this
    machine lacks (checked by the cluster's tasks with Ray), Ray not installed."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"--jobs {jobs!r} must be a positive integer", "e.g. --jobs 2")
    if ray_address is not None:
        check_ray()
    else:
        from .encoder import check_device

        check_device(config.device)


def encode(pictures: Iterable[Picture], sink: Callable[[Packet], None], config: EncoderConfig, jobs: int | None = None,
           ray_address: str | None = None, progress: ProgressFn | None = None) -> None:
    """Encode ``pictures`` (display order, any iterable: it is read as the work needs it) and hand
    every packet to ``sink`` in coding order.

    jobs: worker processes (default 1: this process), or with Ray the most segments out at once
        (default: the cluster's CPUs over ``config.threads``, or its GPUs with ``--device cuda``).
    ray_address: None (no Ray), :data:`LOCAL_RAY` (a local instance), ``auto`` or ``ray://HOST:PORT``.
    A KeyboardInterrupt stops every worker; the packets already handed on are a valid stream prefix.
    """
    preflight(config, jobs, ray_address)
    if ray_address is not None:
        runner = _Ray(config, ray_address, jobs, progress)
    elif (jobs or 1) > 1:
        runner = _Local(config, jobs, progress)
    else:
        runner = _Inline(config, progress)
    runner.run(pictures, sink)
