"""Scale-out: closed intra periods encoded side by side, on local processes or Ray tasks, written in order.

    pictures ─► segments: one intra period each (one frame each for an intra-only stream)
        ─► runner ─┬─ inline: this process, packets out frame by frame            (jobs 1;
                   │          with ``aside``, a helper trains intra alternatives)
                   ├─ local: N worker processes, a dead one replaced              (--jobs N)
                   └─ Ray:   one task per segment, 1 CPU (or 1 GPU) each, retried (--ray)
           each segment: Encoder(config, start=its first frame) ─► its packets
        ─► in coding order: segment k goes to the sink as soon as segments < k are written

Same bytes however it runs: no encoder state crosses an intra period (see
:mod:`coolchic_stream.encoder`), every frame's training is seeded by its position, and every
process trains on ``config.threads`` torch threads. So a segment coded again after a worker died
gives the same packets, and ``--jobs 1``, ``--jobs N`` and ``--ray`` write the same file (on one
machine: float training may add differently on another CPU or GPU model).

Memory stays bounded on endless input: at most ``jobs`` + 1 segments are out (coding, waiting for
a worker, or coded and waiting for an earlier one to be written).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from ..config import EncoderConfig
from ..errors import ConfigError
from ..types import Packet, Picture, TrainingProgress
from .ray_tasks import LOCAL_RAY, check_ray, connect
from .segments import ProgressFn, Segment, WorkerProgress, encode_segment, same_format, segment_length, segments

__all__ = [
    "LOCAL_RAY", "ProgressFn", "Segment", "WorkerProgress", "check_ray", "encode", "encode_segment", "preflight",
    "segment_length", "segments",
]  # fmt: skip


class _Inline:
    """jobs 1: this process codes each picture as it arrives and hands each packet on at once."""

    def __init__(self, config: EncoderConfig, progress: ProgressFn | None, aside: bool = False) -> None:
        self.config = config
        self.progress = progress
        self.aside = aside

    def run(self, pictures: Iterable[Picture], sink: Callable[[Packet], None]) -> None:
        from ..encoder import Encoder
        from .aside import IntraAside

        length, pid = segment_length(self.config), os.getpid()
        encoder = None
        with IntraAside() as helper:
            aside = helper if self.aside else None
            for display, picture in enumerate(same_format(pictures)):
                if display % length == 0:  # a new segment: a new encoder, as a worker would start it
                    if encoder is not None:
                        for packet in encoder.encode(None):
                            sink(packet)
                    report = None if self.progress is None else _reporter(self.progress, 0, pid, display // length)
                    encoder = Encoder(self.config, progress=report, start=display, aside=aside)
                for packet in encoder.encode(picture):
                    sink(packet)
            if encoder is not None:
                for packet in encoder.encode(None):
                    sink(packet)


def _reporter(progress: ProgressFn, worker: int, pid: int, segment: int) -> Callable[[TrainingProgress], None]:
    return lambda event: progress(WorkerProgress(worker, pid, segment, event))


def preflight(config: EncoderConfig, jobs: int | None = None, ray_address: str | None = None) -> None:
    """Refuse what cannot run, before anything is read or written: a bad job count, a device this
    machine lacks (checked by the cluster's tasks with Ray), Ray not installed or a cluster that
    cannot be joined (joined here; the encode leaves it)."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"--jobs {jobs!r} must be a positive integer", "e.g. --jobs 2")
    if ray_address is not None:
        connect(ray_address)
    else:
        from ..encoder import check_device

        check_device(config.device)


def encode(pictures: Iterable[Picture], sink: Callable[[Packet], None], config: EncoderConfig, jobs: int | None = None,
           ray_address: str | None = None, progress: ProgressFn | None = None, aside: bool = False) -> None:
    """Encode ``pictures`` (display order, any iterable: it is read as the work needs it) and hand
    every packet to ``sink`` in coding order.

    jobs: worker processes (default 1: this process), or with Ray the most segments out at once
        (default: the cluster's CPUs over ``config.threads``, or its GPUs with ``--device cuda``).
    ray_address: None (no Ray), :data:`LOCAL_RAY` (a local instance), ``auto`` or ``ray://HOST:PORT``.
    aside: in this process (jobs 1), train the intra check's alternative in a helper process beside
        each inter frame's training (:mod:`.aside`: a second core, the same bytes); workers never do.
    A KeyboardInterrupt stops every worker; the packets already handed on are a valid stream prefix.
    """
    preflight(config, jobs, ray_address)
    if ray_address is not None:
        from .ray_tasks import RayRunner

        runner = RayRunner(config, ray_address, jobs, progress)
    elif (jobs or 1) > 1:
        from .local import LocalRunner

        runner = LocalRunner(config, jobs, progress)
    else:
        runner = _Inline(config, progress, aside)
    runner.run(pictures, sink)
