"""GOP scheduling: turns pictures arriving in display order into frame jobs in coding order.

Pure Python (no torch): the encoder drives a :class:`GopScheduler`, the decoder mirrors its
reference bookkeeping with a :class:`ReferenceTracker`, and both feed the decoded picture buffer
(:mod:`coolchic_stream.dpb`).

Every structure is *closed*: an I frame starts a segment that no frame before or after it
references across, so each I frame is a random-access point. Segments start at the display
indices that are multiples of ``intra_period``. Diagrams below use ``intra_period = 8``; arrows
point from a frame to the frames it references; ``c`` is the coding index.

INTRA (every frame I, coded as soon as it arrives)::

    display   0   1   2   3   4   5   6   7   8
    type      I   I   I   I   I   I   I   I   I
    c         0   1   2   3   4   5   6   7   8
    depth     0   0   0   0   0   0   0   0   0

LOWDELAY (each P references the previous display frame; coded as soon as it arrives)::

    display   0 <- 1 <- 2 <- 3 <- 4 <- 5 <- 6 <- 7    8 <- 9 ...
    type      I    P    P    P    P    P    P    P    I    P
    c         0    1    2    3    4    5    6    7    8    9
    depth     0    1    1    1    1    1    1    1    0    1

RANDOM_ACCESS (hierarchical B; ``gop_size = 4``, ``intra_period = 8``, an 11-frame clip)::

    display   0    1    2    3    4    5    6    7 |  8    9   10
    type      I    B    B    B    P    B    B    P |  I    B    P
    refs      -   0,2  0,4  2,4   0   4,7  5,7   4 |  -   8,10  8
    c         0    3    2    4    1    6    7    5 |  8   10    9
    depth     0    2    1    2    0    1    2    0 |  0    1    0

    P anchor  0 <---------------- 4 <----------- 7 |  8 <----- 10
    B depth 1 0 <------ 2 ------> 4 <- 5 ------> 7 |  8 <- 9 ->10
    B depth 2 0 <- 1 -> 2 <- 3 -> 4    5 <- 6 -> 7 |
                  '--- group 1 ----'  '- group 2 -'       ' tail '

    Arrows point at references. Group 2 is the segment's last group, shorter (it ends at 7 =
    intra_period - 1); the tail 9..10 is cut by the end of the clip and its last frame becomes
    the anchor. The I at 8 starts a new closed segment: nothing references across it.

Inside a group the anchor (its last frame) is coded first, then the B frames depth-first, midpoint
first (``past + (future - past) // 2``), each referencing the closest already-coded past and
future frames — Cool-chic's order: for ``gop_size = 8`` the group codes 8, 4, 2, 1, 3, 6, 5, 7.
The encoder buffers at most one group: a group's jobs are released when its last picture arrives
(or at :meth:`GopScheduler.flush` for the clip tail).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .errors import ConfigError, CorruptDataError
from .types import FrameType, GopStructure

__all__ = [
    "FrameJob",
    "GopScheduler",
    "GroupPlan",
    "Planner",
    "ReferenceTracker",
    "lambda_scale",
    "references_needed_after",
    "schedule",
]


@dataclass(frozen=True)
class FrameJob:
    """One frame to code.

    display_index: pts of the frame. coding_index: dts, 0-based over the whole stream.
    references: display indices, () for I, (past,) for P, (past, future) for B.
    depth: hierarchy depth — 0 for I and random-access P anchors, the B level (1 for the first
    midpoint) for B frames, 1 for low-delay P frames. Scales λ via :func:`lambda_scale`.
    """

    display_index: int
    coding_index: int
    frame_type: FrameType
    references: tuple[int, ...]
    depth: int


@dataclass(frozen=True)
class GroupPlan:
    """How a planner splits the pictures after an anchor: the frames that end a mini-GOP.

    anchors: increasing display indices, the last one the last pending picture; each is a P
    anchor predicted from the one before it (the first from the current anchor), with the B
    hierarchy in between, or an I frame when it is in ``cuts`` (then the frame before it is the
    current anchor or an anchor too, so no B frame straddles the cut).
    """

    anchors: tuple[int, ...]
    cuts: tuple[int, ...] = ()

    def check(self, anchor: int, pending: list[int], gop_size: int) -> None:
        """Raise ValueError unless the plan covers exactly ``pending`` after ``anchor`` within ``gop_size``."""
        if not self.anchors or self.anchors[-1] != pending[-1]:
            raise ValueError(f"plan {self} does not end at the last pending picture {pending[-1]}")
        previous = anchor
        for a in self.anchors:
            if a in self.cuts:
                if a - 1 != previous:
                    raise ValueError(f"plan {self}: cut {a} does not follow an anchor")
            elif not 0 < a - previous <= gop_size:
                raise ValueError(f"plan {self}: anchor {a} is not 1..{gop_size} frames after {previous}")
            previous = a
        if not set(self.cuts) <= set(self.anchors):
            raise ValueError(f"plan {self}: every cut must be an anchor")


Planner = Callable[[int, list[int]], GroupPlan]
"""(current anchor, pending display indices) -> GroupPlan; see :mod:`coolchic_stream.lookahead`."""


def lambda_scale(depth: int) -> float:
    """Multiplier of λ for a frame at hierarchy ``depth`` (Cool-chic: λ·1.5^depth).

    Deeper frames are referenced by fewer others, so spending fewer bits on them costs less.
    """
    return 1.5**depth


def _validate(structure: object, gop_size: object, intra_period: object) -> GopStructure:
    """Check GOP parameters; returns the structure as a :class:`GopStructure`."""
    try:
        structure = GopStructure(structure)
    except ValueError:
        raise ConfigError(
            f"GOP structure {structure!r} is not valid", "use intra, lowdelay or ra"
        ) from None
    # bool is an int subclass; True as a GOP size is certainly a mistake.
    if not isinstance(gop_size, int) or isinstance(gop_size, bool) or gop_size < 1:
        raise ConfigError(f"GOP size {gop_size!r} must be an integer of at least 1", "e.g. --gop-size 8")
    if not isinstance(intra_period, int) or isinstance(intra_period, bool) or intra_period < 1:
        raise ConfigError(
            f"intra period {intra_period!r} must be an integer of at least 1", "e.g. --intra-period 32"
        )
    return structure


def _b_hierarchy(past: int, future: int, depth: int = 1) -> list[tuple[int, tuple[int, int], int]]:
    """B frames strictly between two coded frames, in coding order, as (display, refs, depth).

    Depth-first, midpoint first, left half before right half. Iterative with an explicit stack
    so that very large GOP sizes cannot hit Python's recursion limit.
    """
    out: list[tuple[int, tuple[int, int], int]] = []
    stack = [(past, future, depth)]
    while stack:
        lo, hi, level = stack.pop()
        if hi - lo < 2:
            continue
        mid = lo + (hi - lo) // 2
        out.append((mid, (lo, hi), level))
        # Push the right half first so the left half is coded first.
        stack.append((mid, hi, level + 1))
        stack.append((lo, mid, level + 1))
    return out


class GopScheduler:
    """Streaming GOP scheduler: pictures in display order in, :class:`FrameJob` lists out.

    Call :meth:`push` once per picture with display indices 0, 1, 2, … and :meth:`flush` at the
    end of input. Jobs come out in coding order with a global, gap-free ``coding_index``.
    ``start`` (a segment's first display index) schedules one segment of a longer stream on its
    own: every segment before it holds exactly ``intra_period`` frames, so its coding indices also
    start at ``start`` — the jobs equal those the whole stream's scheduler gives that segment.
    See the module docstring for diagrams of each structure.

    Random access::

        segment = [k·intra_period, (k+1)·intra_period)       closed: no reference leaves it
        I ── group ── group ── … ── last group (shorter)      group = gop_size frames
             └ anchor P = last frame of the group, references the previous anchor (or the I)
               B frames in between, hierarchical (see module docstring)

    With a ``planner`` (the encoder's :class:`coolchic_stream.lookahead.Lookahead`), the pictures
    of a group are split into shorter mini-GOPs where motion is fast, and a scene cut becomes an
    I frame (random access and low delay alike); ``gop_size`` is then the longest anchor distance.

    The encoder keeps references with :meth:`still_referenced` after coding each job, then
    ``dpb.release(scheduler.still_referenced(job.coding_index))``.
    """

    def __init__(
        self, structure: GopStructure, gop_size: int, intra_period: int, planner: Planner | None = None, start: int = 0
    ) -> None:
        self.structure = _validate(structure, gop_size, intra_period)
        if not isinstance(start, int) or start < 0 or (self.structure != GopStructure.INTRA and start % intra_period):
            raise ValueError(f"a segment cannot start at picture {start!r}: not a multiple of the intra period {intra_period}")
        self.planner = planner  # None: fixed groups of gop_size, no cut detection
        self.gop_size = gop_size
        self.intra_period = intra_period
        self._next_display = start
        self._next_coding = start
        self._segment_start = start
        self._anchor: int | None = None  # last I/P coded in the open segment (next P refers to it)
        self._pending: list[int] = []  # RA: pictures of the group being collected
        self._flushed = False
        self._jobs: list[FrameJob] = []  # released jobs still of interest to still_referenced
        self._forgotten = -1  # still_referenced has forgotten jobs with coding_index <= this

    # ------------------------------------------------------------------ input

    def push(self, display_index: int) -> list[FrameJob]:
        """A new picture arrived; returns the jobs now ready, in coding order."""
        if self._flushed:
            raise ValueError("GopScheduler.push after flush: the stream has ended")
        if display_index != self._next_display:
            raise ValueError(
                f"picture with display index {display_index} pushed, expected {self._next_display} "
                "(pictures must arrive in display order without gaps)"
            )
        self._next_display += 1
        d = display_index
        if self.structure == GopStructure.INTRA:
            return self._release([(d, FrameType.I, (), 0)])
        if d % self.intra_period == 0:
            # A new closed segment; the previous one ended with its last frame as an anchor, so
            # nothing is pending here.
            assert not self._pending
            self._segment_start = d
            self._anchor = d
            return self._release([(d, FrameType.I, (), 0)])
        if self.structure == GopStructure.LOWDELAY:
            cut = self.planner is not None and d in self.planner(d - 1, [d]).cuts
            self._anchor = d
            return self._release([(d, FrameType.I, (), 0)] if cut else [(d, FrameType.P, (d - 1,), 1)])
        self._pending.append(d)
        segment_last = self._segment_start + self.intra_period - 1
        if len(self._pending) == self.gop_size or d == segment_last:
            return self._release_group()
        return []

    def flush(self) -> list[FrameJob]:
        """End of input: returns the jobs of the buffered tail (the last frame is its anchor)."""
        if self._flushed:
            return []
        jobs = self._release_group() if self._pending else []
        self._flushed = True
        return jobs

    # -------------------------------------------------------------- reference

    def still_referenced(self, after_coding_index: int) -> set[int]:
        """Display indices that jobs coded after ``after_coding_index`` still need.

        Includes jobs not released yet whose references are already determined: the open
        segment's latest anchor, which the next group's P anchor (or the next low-delay P) will
        reference — unless the segment is complete or the stream was flushed. So the answer is
        exact for everything pushed so far and at most one picture larger than the references the
        clip will actually use (a segment that turns out to end with the clip).

        Calls must come in non-decreasing ``after_coding_index`` order (the encoder codes jobs in
        order): answered jobs are forgotten to keep memory bounded on endless streams.
        """
        if after_coding_index < self._forgotten:
            raise ValueError(
                f"still_referenced({after_coding_index}) after still_referenced({self._forgotten}): "
                "query coded jobs in coding order"
            )
        self._forgotten = after_coding_index
        self._jobs = [job for job in self._jobs if job.coding_index > after_coding_index]
        needed = {ref for job in self._jobs for ref in job.references}
        if self._anchor is not None and self._segment_open():
            needed.add(self._anchor)
        return needed

    def _segment_open(self) -> bool:
        """True while later pictures of the current segment may still arrive and need the anchor."""
        if self.structure == GopStructure.INTRA or self._flushed:
            return False
        return (self._next_display - self._segment_start) < self.intra_period

    # --------------------------------------------------------------- internal

    def _release_group(self) -> list[FrameJob]:
        """Jobs of the pending pictures: per mini-GOP (one, or the planner's), the anchor P (or
        a cut's I) first, then its B hierarchy."""
        assert self._anchor is not None
        if self.planner is None:
            plan = GroupPlan((self._pending[-1],))
        else:
            plan = self.planner(self._anchor, list(self._pending))
            plan.check(self._anchor, self._pending, self.gop_size)
        specs: list[tuple[int, FrameType, tuple[int, ...], int]] = []
        for anchor in plan.anchors:
            past = self._anchor
            if anchor in plan.cuts:
                specs.append((anchor, FrameType.I, (), 0))
            else:
                specs.append((anchor, FrameType.P, (past,), 0))
                specs += [(d, FrameType.B, refs, depth) for d, refs, depth in _b_hierarchy(past, anchor)]
            self._anchor = anchor
        self._pending = []
        return self._release(specs)

    def _release(self, specs: list[tuple[int, FrameType, tuple[int, ...], int]]) -> list[FrameJob]:
        jobs = []
        for display, frame_type, refs, depth in specs:
            jobs.append(FrameJob(display, self._next_coding, frame_type, refs, depth))
            self._next_coding += 1
        self._jobs.extend(jobs)
        return jobs


def schedule(structure: GopStructure, gop_size: int, intra_period: int, n_frames: int) -> list[FrameJob]:
    """Every job of an ``n_frames`` clip in coding order (the streaming scheduler, run to the end)."""
    if not isinstance(n_frames, int) or n_frames < 0:
        raise ConfigError(f"frame count {n_frames!r} must be a non-negative integer", "e.g. 33")
    scheduler = GopScheduler(structure, gop_size, intra_period)
    jobs: list[FrameJob] = []
    for display in range(n_frames):
        jobs += scheduler.push(display)
    return jobs + scheduler.flush()


def references_needed_after(jobs: Iterable[FrameJob], after_coding_index: int) -> set[int]:
    """Display indices referenced by the jobs of a known schedule coded after ``after_coding_index``.

    The exact answer for a whole clip (e.g. from :func:`schedule` when the frame count is known).
    Streaming code uses :meth:`GopScheduler.still_referenced` (encoder) or
    :class:`ReferenceTracker` (decoder) instead.
    """
    return {ref for job in jobs if job.coding_index > after_coding_index for ref in job.references}


class ReferenceTracker:
    """Decoder-side mirror of the scheduler's reference bookkeeping.

    The decoder cannot see future packets, and with an unknown frame count it cannot know where
    the clip's short tail group ends until that group's anchor arrives. It does not need to:
    because GOPs are closed and coded anchor-first, each random-access P anchor tells the whole
    layout of its group (its reference is the group's past bound, the anchor itself the future
    bound), and the B hierarchy between them is fixed (:func:`_b_hierarchy`). So after each
    decoded frame the tracker knows exactly which pictures the rest of the group needs, plus the
    anchor the next group will reference.

    Usage, after decoding each frame::

        dpb.insert(pts, picture)
        dpb.release(tracker.decoded(pts, frame_type, references))

    ``structure=None`` (no sequence header, or an unknown structure) falls back to keeping every
    picture of the current segment, i.e. clearing the DPB only at I frames.
    ``frame_count`` (0 = unknown) lets the last anchor of the clip be dropped too.
    On a stream the scheduler produced, the result equals :meth:`GopScheduler.still_referenced`
    at the same coding index before the scheduler's flush (with ``frame_count`` known: after it).
    """

    def __init__(
        self,
        structure: GopStructure | None,
        gop_size: int = 1,
        intra_period: int = 1,
        frame_count: int = 0,
    ) -> None:
        self.structure = None if structure is None else _validate(structure, gop_size, intra_period)
        self.gop_size = gop_size
        self.intra_period = intra_period
        self.frame_count = frame_count
        self._anchor: int | None = None
        self._pending: list[tuple[int, tuple[int, int]]] = []  # B frames still to come in the group
        self._segment: set[int] = set()  # fallback: everything decoded since the last I

    def decoded(self, display_index: int, frame_type: FrameType, references: Iterable[int] = ()) -> set[int]:
        """Record a decoded frame; returns the display indices the DPB must keep."""
        frame_type = FrameType(frame_type)
        refs = tuple(references)
        if frame_type == FrameType.I:
            self._anchor = display_index
            self._pending = []
            self._segment = set()
        elif frame_type == FrameType.P:
            self._anchor = display_index
            if self.structure == GopStructure.RANDOM_ACCESS and refs:
                # The group's layout follows from its two bounds, which a damaged or hostile
                # stream could set a world apart: a group is at most gop_size frames.
                if not 0 < display_index - refs[0] <= self.gop_size:
                    raise CorruptDataError(
                        f"P frame {display_index} predicts from frame {refs[0]}, "
                        f"not 1 to {self.gop_size} (the GOP size) frames before it"
                    )
                self._pending = [(d, r) for d, r, _ in _b_hierarchy(refs[0], display_index)]
            else:
                self._pending = []
        else:
            self._pending = [(d, r) for d, r in self._pending if d != display_index]
        self._segment.add(display_index)

        if self.structure is None:
            return set(self._segment)
        if self.structure == GopStructure.INTRA:
            return set()
        needed = {ref for _, r in self._pending for ref in r}
        if self._anchor is not None and self._anchor_needed_later():
            needed.add(self._anchor)
        return needed

    def _anchor_needed_later(self) -> bool:
        """Whether a later frame (next group's anchor / next P) of the segment will use the anchor."""
        assert self._anchor is not None
        if (self._anchor + 1) % self.intra_period == 0:
            return False  # the next frame starts a new closed segment
        if self.frame_count and self._anchor >= self.frame_count - 1:
            return False  # the clip ends here
        return True
