"""Decoded picture buffer and reorder buffer, driven by real GOP schedules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coolchic_stream.dpb import DecodedPictureBuffer, ReorderBuffer
from coolchic_stream.errors import BitstreamError, DecodeOrderError
from coolchic_stream.gop import GopScheduler, ReferenceTracker, schedule
from coolchic_stream.types import FrameType, GopStructure, Picture


@dataclass(frozen=True)
class Frame:
    """Stand-in for a decoded picture: only pts matters to the buffers."""

    pts: int


GRID = [
    (s, g, p, n)
    for s in GopStructure
    for g in (1, 2, 4, 8, 16)
    for p in (1, 8, 16, 32)
    for n in (1, 2, 5, 9, 17, 33, 40)
]


def test_dpb_basics():
    dpb = DecodedPictureBuffer()
    dpb.insert(3, "three")
    dpb.insert(5, "five")
    assert len(dpb) == 2 and 3 in dpb and 4 not in dpb
    assert dpb.get(5) == "five"
    dpb.insert(5, "FIVE")  # replacement, not a second entry
    assert len(dpb) == 2 and dpb.get(5) == "FIVE"
    dpb.release([5, 99])
    assert dpb.held() == {5}
    dpb.clear()
    assert len(dpb) == 0


def test_dpb_missing_reference_message():
    dpb = DecodedPictureBuffer()
    dpb.insert(0, "zero")
    with pytest.raises(DecodeOrderError) as info:
        dpb.get(8, referenced_by=4)
    err = info.value
    assert isinstance(err, BitstreamError)
    assert err.message == "frame 4 refers to display index 8 which the decoder does not hold"
    assert err.hint == "the stream may start after a random-access point or be corrupted"
    with pytest.raises(DecodeOrderError, match="a frame refers to display index 1"):
        dpb.get(1)


def test_dpb_holds_pictures():
    plane = np.zeros((4, 4), np.uint8)
    chroma = np.zeros((2, 2), np.uint8)
    picture = Picture((plane, chroma, chroma), pts=7)
    dpb = DecodedPictureBuffer()
    dpb.insert(picture.pts, picture)
    assert dpb.get(7) is picture


def run_codec(structure, gop, period, n, use_tracker: bool):
    """Simulate a coder over a schedule: fetch references, insert, release; returns peak DPB size."""
    scheduler = GopScheduler(structure, gop, period)
    tracker = ReferenceTracker(structure, gop, period)
    dpb = DecodedPictureBuffer()
    peak = 0
    all_jobs = schedule(structure, gop, period, n)
    for d in range(n + 1):
        for job in scheduler.push(d) if d < n else scheduler.flush():
            if job.frame_type == FrameType.I:
                dpb.clear()
            refs = [dpb.get(r, referenced_by=job.display_index) for r in job.references]
            # The "picture" is its display index plus what it was predicted from.
            assert [ref[0] for ref in refs] == list(job.references)
            dpb.insert(job.display_index, (job.display_index, job.references))
            peak = max(peak, len(dpb))
            keep = (
                tracker.decoded(job.display_index, job.frame_type, job.references)
                if use_tracker
                else scheduler.still_referenced(job.coding_index)
            )
            dpb.release(keep)
            # Exactly what later jobs need among what is decoded, plus at most the open anchor.
            later = {r for j in all_jobs[job.coding_index + 1 :] for r in j.references}
            decoded = {j.display_index for j in all_jobs[: job.coding_index + 1]}
            assert later & decoded <= dpb.held()
            assert len(dpb.held() - later) <= 1
    return peak


@pytest.mark.parametrize("use_tracker", [False, True], ids=["encoder", "decoder"])
@pytest.mark.parametrize("structure,gop,period,n", GRID)
def test_dpb_release_bounded(structure, gop, period, n, use_tracker):
    peak = run_codec(structure, gop, period, n, use_tracker)
    if structure == GopStructure.RANDOM_ACCESS:
        assert peak <= math.ceil(math.log2(gop)) + 2
    elif structure == GopStructure.LOWDELAY:
        assert peak <= 2
    else:
        assert peak == 1


def test_dpb_size_gop8_walkthrough():
    sizes = []
    scheduler = GopScheduler(GopStructure.RANDOM_ACCESS, 8, 32)
    dpb = DecodedPictureBuffer()
    for d in range(9):
        for job in scheduler.push(d):
            dpb.insert(job.display_index, job)
            dpb.release(scheduler.still_referenced(job.coding_index))
            sizes.append((job.display_index, sorted(dpb.held())))
    assert sizes == [
        (0, [0]),
        (8, [0, 8]),
        (4, [0, 4, 8]),
        (2, [0, 2, 4, 8]),
        (1, [2, 4, 8]),
        (3, [4, 8]),
        (6, [4, 6, 8]),
        (5, [6, 8]),
        (7, [8]),  # the anchor stays for the next group's P
    ]


def reorder(jobs) -> list[int]:
    buffer = ReorderBuffer()
    out = []
    for job in jobs:
        if job.frame_type == FrameType.I:
            out += buffer.start_segment(job.display_index)
        out += buffer.push(Frame(job.display_index))
    out += buffer.flush()
    assert len(buffer) == 0
    return [f.pts for f in out]


@pytest.mark.parametrize("structure,gop,period,n", GRID)
def test_reorder_display_order(structure, gop, period, n):
    assert reorder(schedule(structure, gop, period, n)) == list(range(n))


def test_reorder_latency_gop8():
    buffer = ReorderBuffer()
    outputs = [[f.pts for f in buffer.push(Frame(d))] for d in [0, 8, 4, 2, 1, 3, 6, 5, 7]]
    assert outputs == [[0], [], [], [], [1, 2], [3, 4], [], [5, 6], [7, 8]]


def test_reorder_lost_frame_flushed_at_next_segment():
    buffer = ReorderBuffer()
    out = []
    for d in [0, 4, 2, 3]:  # B1 lost
        out += buffer.push(Frame(d))
    assert [f.pts for f in out] == [0]
    assert [f.pts for f in buffer.start_segment(5)] == [2, 3, 4]
    assert [f.pts for f in buffer.push(Frame(5))] == [5]


def test_reorder_starts_anywhere_and_rejects_misorder():
    buffer = ReorderBuffer()
    assert [f.pts for f in buffer.push(Frame(64))] == [64]  # stream joined at a random-access point
    with pytest.raises(DecodeOrderError, match="pts 10"):
        buffer.push(Frame(10))
    buffer.push(Frame(66))
    with pytest.raises(DecodeOrderError, match="two pictures with pts 66"):
        buffer.push(Frame(66))
    assert [f.pts for f in buffer.flush()] == [66]


@settings(max_examples=100, deadline=None)
@given(
    structure=st.sampled_from(list(GopStructure)),
    gop=st.integers(1, 33),
    period=st.integers(1, 50),
    n=st.integers(0, 100),
    use_tracker=st.booleans(),
)
def test_random_dpb_and_reorder(structure, gop, period, n, use_tracker):
    peak = run_codec(structure, gop, period, n, use_tracker)
    if structure == GopStructure.RANDOM_ACCESS and n:
        assert peak <= math.ceil(math.log2(gop)) + 2
    assert reorder(schedule(structure, gop, period, n)) == list(range(n))


def test_buffers_stay_bounded_whatever_a_stream_says():
    """A hostile stream (pts that leave gaps forever, references never released) cannot make
    either buffer hold more than its limit: the oldest reference goes, a gap counts as lost frames."""
    dpb = DecodedPictureBuffer(limit=3)
    for pts in range(10):
        dpb.insert(pts, Frame(pts))
    assert dpb.held() == {7, 8, 9}
    dpb.insert(7, Frame(7))  # replaced: counts as the newest
    dpb.insert(10, Frame(10))
    assert dpb.held() == {7, 9, 10}
    with pytest.raises(DecodeOrderError):
        dpb.get(0, referenced_by=11)

    reorder = ReorderBuffer(limit=3)
    reorder.start_segment(0)
    out = []
    for pts in range(1, 40, 2):  # pts 0 never comes, nor any even one
        out += reorder.push(Frame(pts))
        assert len(reorder) <= 3
    out += reorder.flush()
    assert [f.pts for f in out] == list(range(1, 40, 2))  # display order kept across the gaps


def test_default_limits_hold_every_schedule_of_the_longest_gop():
    from coolchic_stream.dpb import MAX_HELD
    from coolchic_stream.spec import MAX_GOP_SIZE

    for structure in GopStructure:
        jobs = schedule(structure, MAX_GOP_SIZE if structure != GopStructure.INTRA else 1, 2 * MAX_GOP_SIZE, 3 * MAX_GOP_SIZE)
        reorder = ReorderBuffer()
        out = []
        for job in jobs:
            if job.frame_type == FrameType.I:
                out += reorder.start_segment(job.display_index)
            out += reorder.push(Frame(job.display_index))
            assert len(reorder) <= MAX_HELD
        out += reorder.flush()
        assert [f.pts for f in out] == sorted(j.display_index for j in jobs)
