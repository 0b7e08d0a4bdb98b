"""What a rate-controlled segment is: the classes of its frames, how many, and when its I frame may start.

    --bitrate ─► segment of one intra period (or what is left of a known stream)
                   ├─ nominal_plan: its frames' classes in coding order, as the fixed structure codes them
                   └─ released: each frame held until the pictures up to look_end are in (the source
                      guess at its I frame, the detail of the next group at its P/B frames)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .intra_expectation import FrameClass
from .types import FrameType, GopStructure

if TYPE_CHECKING:
    from .gop import FrameJob

# The segment's first P/B frame sends the motion networks the frames after it predict theirs from:
# rate control plans and learns it as a class of its own, at this depth.
FIRST_INTER = -1
CONTENT_DISTANCE = 4  # the encoder holds a segment's I frame until this many frames after it are in


def nominal_plan(structure: GopStructure, gop_size: int, intra_period: int, frames: int) -> tuple[FrameClass, ...]:
    """Classes of a segment's ``frames`` frames in coding order, under the fixed structure (the
    adaptive GOP may code other classes, as many frames); the first P/B frame's depth is
    ``FIRST_INTER``."""
    from .gop import schedule

    if structure == GopStructure.INTRA:
        return ((FrameType.I, 0),) * frames
    classes = [(j.frame_type, j.depth) for j in schedule(structure, gop_size, intra_period, frames)]
    if len(classes) > 1:
        classes[1] = (classes[1][0], FIRST_INTER)
    return tuple(classes)


def segment_frames(structure: GopStructure, intra_period: int, frames_left: int | None) -> int:
    """How many frames a segment's budget covers: one intra period (one frame intra-only), or what
    is left of a stream of known length (``frames_left``, None from stdin)."""
    frames = 1 if structure == GopStructure.INTRA else intra_period
    return frames if frames_left is None else max(min(frames, frames_left), 1)


def segment_start(display_index: int, intra_period: int) -> bool:
    """Whether the picture at ``display_index`` opens a segment (an intra period: nothing crosses one)."""
    return display_index % intra_period == 0


def look_distance(intra_period: int) -> int:
    """How far after a segment's I frame the source guess looks: within the segment, all that a
    worker coding it alone sees."""
    return min(CONTENT_DISTANCE, intra_period - 1)


def look_end(display_index: int, gop_size: int, intra_period: int, stream_frames: int | None) -> int:
    """The last picture rate control sees before the frame at ``display_index`` is coded, never
    past its segment (all that a worker coding it alone sees) nor a stream of known length: for the
    segment's I frame, ``look_distance`` after it (its source guess; coded then, it gives the GOP's
    planner the quality the first group is planned against), for any other frame one mini-GOP
    further (at least ``look_distance``: the detail of the next group's pictures)."""
    start = display_index - display_index % intra_period
    last = start + intra_period - 1 if stream_frames is None else min(start + intra_period, stream_frames) - 1
    ahead = look_distance(intra_period) if segment_start(display_index, intra_period) else max(gop_size, look_distance(intra_period))
    return min(display_index + ahead, last)


def released(jobs: Sequence[FrameJob], next_display: int, gop: GopStructure, gop_size: int, intra_period: int,
             stream_frames: int | None) -> int:
    """How many of ``jobs`` (coding order; the next picture to arrive being ``next_display``) the
    encoder codes now with a bitrate: those before the first whose ``look_end`` is not yet in (an
    intra-only stream codes each picture as it comes)."""
    if gop == GopStructure.INTRA:
        return len(jobs)
    for i, job in enumerate(jobs):
        if next_display <= look_end(job.display_index, gop_size, intra_period, stream_frames):
            return i
    return len(jobs)


def beyond(display_index: int, told: set[int], arrived: Iterable[int], intra_period: int) -> list[int]:
    """The pictures rate control plans the frames it was not told of at (their mean detail): those
    of the segment of ``display_index`` that are in and not yet coded (``arrived``) and not ``told``
    of; where there are none, the ``told`` ones."""
    start = display_index - display_index % intra_period
    pictures = [d for d in arrived if d not in told and start <= d < start + intra_period]
    return pictures or sorted(told)


def nominal_mix(structure: GopStructure, gop_size: int, intra_period: int) -> Counter[FrameClass]:
    """P/B classes of one intra period of the fixed structure, with their counts."""
    plan = nominal_plan(structure, gop_size, intra_period, intra_period)
    return Counter(c for c in plan if c[0] != FrameType.I)


__all__ = [
    "CONTENT_DISTANCE", "FIRST_INTER", "beyond", "look_distance", "look_end", "nominal_mix", "nominal_plan", "released", "segment_frames",
    "segment_start",
]  # fmt: skip
