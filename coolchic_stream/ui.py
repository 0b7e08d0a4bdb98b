"""Terminal UI on stderr only: training progress bars, plain log lines off a terminal, summary tables.

stdout may carry video, so every console here is ``Console(stderr=True)``; nothing in
this module ever writes to stdout. When stderr is not a terminal the bars are disabled
and one plain line per finished frame is printed instead (CI logs, ``2> log``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .types import FrameStats

if TYPE_CHECKING:
    from .parallel import WorkerProgress


def stderr_console(quiet: bool = False) -> Console:
    """The one console type used for UI: stderr, silent when quiet."""
    return Console(stderr=True, quiet=quiet, highlight=False)


@dataclass(frozen=True)
class Totals:
    """Whole-sequence figures of an encode."""

    frames: int
    bits: int
    bpp: float
    kbps: float
    mean_psnr_y: float
    mean_psnr_yuv: float
    seconds: float


def totals(stats: Sequence[FrameStats], width: int, height: int, frame_rate: Fraction) -> Totals:
    """Rate and mean per-frame PSNR (not PSNR of the mean MSE) over coded frames."""
    n = len(stats)
    bits = sum(s.bits for s in stats)
    finite_y = [s.psnr_y for s in stats if math.isfinite(s.psnr_y)]
    finite_yuv = [s.psnr_yuv for s in stats if math.isfinite(s.psnr_yuv)]
    return Totals(
        frames=n,
        bits=bits,
        bpp=bits / (n * width * height) if n else 0.0,
        kbps=bits * float(frame_rate) / n / 1000 if n else 0.0,
        mean_psnr_y=sum(finite_y) / len(finite_y) if finite_y else float("inf"),
        mean_psnr_yuv=sum(finite_yuv) / len(finite_yuv) if finite_yuv else float("inf"),
        seconds=sum(s.encode_seconds for s in stats),
    )


class EncodeUI:
    """Progress of an encode: a frame bar, a line per active worker (its frame's training phase), a
    line per finished frame, a summary."""

    def __init__(self, total_frames: int | None = None, quiet: bool = False, console: Console | None = None) -> None:
        self.console = console or stderr_console(quiet)
        self.quiet = quiet
        self.live = self.console.is_terminal and not quiet
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            refresh_per_second=4,
            disable=not self.live,
            transient=False,
        )
        self._frames_task: TaskID | None = None
        self._total = total_frames
        self._phases: dict[int, tuple[TaskID, tuple[int, str]]] = {}  # worker -> (its bar, (pts, phase))
        self.stats: list[FrameStats] = []

    def __enter__(self) -> "EncodeUI":
        self._progress.__enter__()
        self._frames_task = self._progress.add_task("frames", total=self._total, info="")
        return self

    def __exit__(self, *exc_info: object) -> None:
        for worker in list(self._phases):
            self._end_phase(worker)
        self._progress.__exit__(None, None, None)

    def log(self, message: str) -> None:
        """A plain line above the bars (or on its own off a terminal)."""
        if not self.quiet:
            self.console.print(message, markup=False, highlight=False, soft_wrap=True)

    def _end_phase(self, worker: int) -> None:
        if worker in self._phases:
            self._progress.remove_task(self._phases.pop(worker)[0])

    def training(self, progress: WorkerProgress) -> None:
        """Feed a training progress event (the encode's progress callback): one bar per worker."""
        if not self.live:
            return
        event, worker = progress.event, progress.worker
        key = (event.pts, event.phase)
        if worker not in self._phases or self._phases[worker][1] != key:
            self._end_phase(worker)
            who = f"w{worker} " if worker or len(self._phases) else ""
            task = self._progress.add_task(
                f"  {who}{event.frame_type.name} pts {event.pts} {event.phase}", total=max(event.total, 1), info=""
            )
            self._phases[worker] = (task, key)
        self._progress.update(
            self._phases[worker][0],
            completed=event.iteration,
            info=f"loss {event.loss:.4g} psnr {event.psnr:.2f} dB",
        )
        if event.iteration >= event.total:
            self._end_phase(worker)

    def frame_done(self, stats: FrameStats | None, nbytes: int, pts: int) -> None:
        """One coded frame went to the container."""
        if stats is not None:
            self.stats.append(stats)
        if self._frames_task is not None:
            self._progress.update(self._frames_task, advance=1, info=f"last {nbytes} B")
        if stats is None:
            line = f"frame pts {pts}: {nbytes} bytes"
        else:
            line = (
                f"frame {stats.dts} {stats.type_label} pts {stats.pts}: {stats.bits} bits, "
                f"PSNR-Y {stats.psnr_y:.2f} dB, PSNR-YUV {stats.psnr_yuv:.2f} dB, "
                + (f"λ {stats.lmbda:.3g}, " if stats.lmbda is not None else "")
                + f"{stats.encode_seconds:.1f} s"
            )
        self.log(line)

    def summary(self, width: int, height: int, frame_rate: Fraction, target_bitrate: float | None = None) -> Totals:
        """Print the per-frame table and totals (with ``target_bitrate``: how far from it the encode
        landed); returns the totals."""
        result = totals(self.stats, width, height, frame_rate)
        if self.quiet or not self.stats:
            return result
        table = Table(title="encode summary", show_footer=False)
        for col in ("coding", "type", "pts", "bits", "λ", "PSNR-Y dB", "PSNR-YUV dB", "seconds"):
            table.add_column(col, justify="right")
        for s in self.stats:
            table.add_row(
                str(s.dts), s.type_label, str(s.pts), str(s.bits), f"{s.lmbda:.3g}" if s.lmbda is not None else "",
                f"{s.psnr_y:.2f}", f"{s.psnr_yuv:.2f}", f"{s.encode_seconds:.1f}",
            )
        self.console.print(table)
        target = ""
        if target_bitrate is not None:
            target = f" (target {target_bitrate / 1000:.1f}: {100 * (result.kbps * 1000 / target_bitrate - 1):+.1f} %)"
        self.console.print(
            f"{result.frames} frames, {result.bits} bits: {result.bpp:.4f} bpp, {result.kbps:.1f} kbit/s{target} "
            f"at {float(frame_rate):.3f} fps, mean PSNR-Y {result.mean_psnr_y:.2f} dB, "
            f"mean PSNR-YUV {result.mean_psnr_yuv:.2f} dB, {result.seconds:.1f} s",
            markup=False,
            soft_wrap=True,  # one line in logs, whatever the width
        )
        return result
