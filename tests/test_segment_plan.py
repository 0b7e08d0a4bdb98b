"""What a rate-controlled segment is: its classes, its length, how far its source guess looks."""

from __future__ import annotations

from collections import Counter

from coolchic_stream.gop import schedule
from coolchic_stream.segment_plan import (
    CONTENT_DISTANCE, FIRST_INTER, beyond, look_distance, look_end, nominal_mix, nominal_plan, released, segment_frames, segment_start,
)  # fmt: skip
from coolchic_stream.types import FrameType, GopStructure


def test_the_nominal_mix_is_one_intra_period_without_its_i_frame() -> None:
    mix = nominal_mix(GopStructure.RANDOM_ACCESS, 8, 32)
    assert sum(mix.values()) == 31
    # 4 groups of 8 (the last one ends on the period's last frame: one depth-3 B frame fewer)
    # the first P frame is a class of its own: it sends the motion networks the others predict
    assert mix == Counter({(FrameType.P, FIRST_INTER): 1, (FrameType.P, 0): 3, (FrameType.B, 1): 4, (FrameType.B, 2): 8, (FrameType.B, 3): 15})
    assert sum(nominal_mix(GopStructure.LOWDELAY, 4, 8).values()) == 7
    plan = nominal_plan(GopStructure.RANDOM_ACCESS, 8, 32, 17)  # a stream that ends inside the period
    assert len(plan) == 17 and plan[0] == (FrameType.I, 0) and plan[1] == (FrameType.P, FIRST_INTER)
    assert nominal_plan(GopStructure.INTRA, 1, 1, 1) == ((FrameType.I, 0),)


def test_a_segment_covers_its_intra_period_or_what_is_left_of_a_known_stream() -> None:
    ra = GopStructure.RANDOM_ACCESS
    assert segment_frames(ra, 32, None) == 32  # stdin: the length is unknown
    assert segment_frames(ra, 32, 17) == 17 and segment_frames(ra, 32, 100) == 32
    assert segment_frames(GopStructure.INTRA, 32, 17) == 1  # intra-only: every frame is a segment
    assert look_distance(32) == CONTENT_DISTANCE and look_distance(2) == 1  # never past the segment
    assert segment_start(0, 32) and segment_start(64, 32) and not segment_start(17, 32)


def test_a_frame_waits_for_the_pictures_a_mini_gop_after_it_within_its_segment() -> None:
    # the I frame looks as far as its source guess: coded then, the first group is planned at its quality
    assert look_end(0, 8, 32, None) == CONTENT_DISTANCE and look_end(32, 8, 32, None) == 32 + CONTENT_DISTANCE
    assert look_end(8, 8, 32, None) == 16 and look_end(24, 8, 32, None) == 31
    assert look_end(40, 8, 32, None) == 48 and look_end(56, 8, 32, None) == 63  # the second segment's own end
    assert look_end(8, 8, 32, 17) == 16 and look_end(12, 8, 32, 17) == 16  # nor past the stream's end
    assert look_end(0, 2, 32, None) == CONTENT_DISTANCE  # at least as far as the I frame's source guess looks
    jobs = schedule(GopStructure.RANDOM_ACCESS, 8, 32, 17)  # coding order: I0, P8, B4, ..., P16, B12, ...
    ra = GopStructure.RANDOM_ACCESS
    assert released(jobs, 4, ra, 8, 32, 17) == 0 and released(jobs, 9, ra, 8, 32, 17) == 1  # the I frame, once 4 is in
    assert released(jobs, 17, ra, 8, 32, 17) == 17  # all of a stream of 17 once its last picture is in
    assert released(jobs[1:], 16, ra, 8, 32, None) == 0 and released(jobs[1:], 17, ra, 8, 32, None) == 8  # the first group, once 16 is in
    assert released(jobs, 1, GopStructure.INTRA, 1, 1, None) == len(jobs)  # intra-only: as pictures come


def test_frames_not_told_of_are_planned_at_the_pictures_in_beyond_those_told() -> None:
    assert beyond(8, {8, 4, 2}, [1, 2, 3, 4, 5, 9, 33], 32) == [1, 3, 5, 9]  # in the segment, not told of
    assert beyond(40, {40, 36}, [33, 36, 70], 32) == [33]
    assert beyond(8, {8, 4}, [4, 40], 32) == [4, 8]  # none: the told ones
