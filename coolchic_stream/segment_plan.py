"""What a rate-controlled segment is: the classes of its frames, how many, and when its I frame may start.

    --bitrate ─► segment of one intra period (or what is left of a known stream)
                   ├─ nominal_plan: its frames' classes in coding order, as the fixed structure codes them
                   └─ waits_for_look: its I frame held until the source guess can look look_distance ahead
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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


def waits_for_look(jobs: Sequence[FrameJob], next_display: int, gop: GopStructure, intra_period: int) -> bool:
    """Whether the encoder holds ``jobs``, just released, the next picture to arrive being
    ``next_display``: a segment's I frame (and what comes with it) waits until the frame
    ``look_distance`` after it is in, which its source guess looks at (never in an intra-only stream)."""
    first = jobs[0] if jobs else None
    return (
        first is not None and first.frame_type == FrameType.I and segment_start(first.display_index, intra_period)
        and gop != GopStructure.INTRA and next_display <= first.display_index + look_distance(intra_period)
    )  # fmt: skip


def nominal_mix(structure: GopStructure, gop_size: int, intra_period: int) -> Counter[FrameClass]:
    """P/B classes of one intra period of the fixed structure, with their counts."""
    plan = nominal_plan(structure, gop_size, intra_period, intra_period)
    return Counter(c for c in plan if c[0] != FrameType.I)


__all__ = ["CONTENT_DISTANCE", "FIRST_INTER", "look_distance", "nominal_mix", "nominal_plan", "segment_frames", "segment_start", "waits_for_look"]
