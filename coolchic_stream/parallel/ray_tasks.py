"""--ray: segments coded as Ray tasks (one CPU, or one GPU, each), Ray's retries on worker death."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from ..config import EncoderConfig
from ..errors import ConfigError, CoolChicStreamError
from ..types import Packet, Picture, TrainingProgress
from .segments import (
    POLL, RETRIES, Failure, Ordered, ProgressFn, Segment, Throttle, WorkerProgress, encode_segment, segment_length,
    segments, unexpected,
)  # fmt: skip

LOCAL_RAY = "local"  # --ray without an address: start a Ray instance on this machine


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
        return pid, encode_segment(segment, replace(config, device=device), Throttle(send) if box is not None else None)
    except CoolChicStreamError:
        raise
    except BaseException as exc:  # noqa: BLE001
        raise unexpected(segment, exc) from None


def check_ray():
    """The ray module, or a usage error with the install hint."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray, which is not installed", 'pip install "coolchic-stream[ray]"') from None
    return ray


_started_here = False  # whether connect() started or joined the cluster this process is attached to


def connect(address: str) -> bool:
    """Join the cluster at ``address`` (:data:`LOCAL_RAY`: start one here) unless this process is
    already attached; True when this call attached it. A cluster that cannot be joined is a usage
    error, so :func:`coolchic_stream.parallel.preflight` calls this before anything is written."""
    global _started_here
    ray = check_ray()
    if ray.is_initialized():
        return False
    try:
        with warnings.catch_warnings():  # the error below says it in one line
            warnings.simplefilter("ignore")
            ray.init(address=None if address == LOCAL_RAY else address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.ERROR)  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"--ray {address!r}: cannot join the cluster: {str(exc).splitlines()[0]}",
                          "give auto, ray://HOST:PORT, or no address for a local instance") from None  # fmt: skip
    _started_here = True
    return True


def disconnect() -> None:
    """Leave (or, for a local instance, stop) the cluster that :func:`connect` attached."""
    global _started_here
    if _started_here:
        check_ray().shutdown()
        _started_here = False


class RayRunner:
    """--ray: a Ray task per segment (1 CPU, or 1 GPU with --device cuda), Ray's retries on worker death."""

    def __init__(self, config: EncoderConfig, address: str, jobs: int | None, progress: ProgressFn | None) -> None:
        self.ray = check_ray()
        self.config = config
        self.address = address
        self.jobs = jobs
        self.progress = progress

    def run(self, pictures: Iterable[Picture], sink: Callable[[Packet], None]) -> None:
        connect(self.address)
        try:
            self._run(segments(pictures, segment_length(self.config)), sink)
        finally:
            disconnect()  # only what connect() attached: a caller's own ray.init() stays

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
        order = Ordered(sink, jobs)
        refs: dict = {}  # ObjectRef -> segment index
        try:
            while order.busy:
                for segment in order.refill(work):
                    refs[task.remote(segment, self.config, box)] = segment.index
                ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL) if refs else ([], [])
                self._drain(box, order)
                for ref in ready:
                    index = refs.pop(ref)
                    try:
                        pid, packets = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                        raise unexpected(order.out[index], cause) from None
                    except ray.exceptions.RayError as exc:
                        raise Failure(f"the Ray task coding the segment at frame {order.out[index].start} failed "
                                       f"after {RETRIES} retries: {type(exc).__name__}", "see the Ray logs") from None
                    order.finished(index, pid, packets)
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)
            if box is not None:
                ray.kill(box)

    def _drain(self, box, order: Ordered) -> None:
        if box is None or self.progress is None:
            return
        for index, pid, event in self.ray.get(box.take.remote()):
            self.progress(WorkerProgress(order.worker(pid), pid, index, event))
