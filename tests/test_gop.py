"""GOP scheduler: coding order, references, depths, streaming latency and reference bookkeeping."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coolchic_stream.errors import ConfigError
from coolchic_stream.gop import (
    FrameJob,
    GopScheduler,
    GroupPlan,
    ReferenceTracker,
    lambda_scale,
    references_needed_after,
    schedule,
)
from coolchic_stream.types import FrameType, GopStructure

STRUCTURES = list(GopStructure)
GOP_SIZES = [1, 2, 4, 8, 16]
PERIODS = [1, 3, 8, 16, 32]
LENGTHS = [1, 2, 5, 9, 17, 33, 40]
GRID = [(s, g, p, n) for s in STRUCTURES for g in GOP_SIZES for p in PERIODS for n in LENGTHS]


def segment_of(display: int, intra_period: int) -> int:
    return display // intra_period


def check_schedule(structure: GopStructure, gop: int, period: int, n: int) -> list[FrameJob]:
    """Assert every structural invariant of a whole-clip schedule; returns it."""
    jobs = schedule(structure, gop, period, n)
    # Every display index exactly once; coding indices 0..n-1 in order.
    assert sorted(j.display_index for j in jobs) == list(range(n))
    assert [j.coding_index for j in jobs] == list(range(n))
    coded_at = {j.display_index: j.coding_index for j in jobs}
    for job in jobs:
        d = job.display_index
        # I exactly at segment starts.
        assert (job.frame_type == FrameType.I) == (structure == GopStructure.INTRA or d % period == 0)
        if job.frame_type == FrameType.I:
            assert job.references == () and job.depth == 0
        elif job.frame_type == FrameType.P:
            (ref,) = job.references
            assert ref < d
            if structure == GopStructure.LOWDELAY:
                assert ref == d - 1 and job.depth == 1
            else:
                assert job.depth == 0
        else:
            assert structure == GopStructure.RANDOM_ACCESS
            past, future = job.references
            assert past < d < future and job.depth >= 1
        for ref in job.references:
            # Coded before use, and never across an I frame (same closed segment).
            assert coded_at[ref] < job.coding_index
            assert segment_of(ref, period) == segment_of(d, period)
            # No reference to anything at or before another I frame in between.
            between = range(min(ref, d) + 1, max(ref, d) + 1)
            assert not any(jobs[coded_at[x]].frame_type == FrameType.I for x in between)
    # Segments are coded one after the other (closed, streamable).
    segments = [segment_of(j.display_index, period) for j in jobs]
    assert segments == sorted(segments)
    return jobs


def expected_ra_group_order(past: int, anchor: int) -> list[int]:
    """Cool-chic's coding-structure rule (notes §6.6 step 3): scan for the first missing frame,
    insert a B at past + (future - past) // 2 between the closest placed frames."""
    placed = [past, anchor]
    order = [anchor]
    while True:
        missing = [d for d in range(past, anchor + 1) if d not in placed]
        if not missing:
            return order
        first = missing[0]
        lo = max(p for p in placed if p < first)
        hi = min(p for p in placed if p > first)
        mid = lo + (hi - lo) // 2
        placed.append(mid)
        order.append(mid)


@pytest.mark.parametrize("structure,gop,period,n", GRID)
def test_schedule_invariants(structure, gop, period, n):
    jobs = check_schedule(structure, gop, period, n)
    if structure == GopStructure.RANDOM_ACCESS:
        by_display = {j.display_index: j for j in jobs}
        # Anchors: segment start I, then every gop-th frame, the segment's last frame and the clip's last.
        for start in range(0, n, period):
            end = min(start + period, n) - 1
            anchors = sorted({start, *range(start + gop, end + 1, gop), end})
            got = [d for d in range(start, end + 1) if by_display[d].frame_type != FrameType.B]
            assert got == anchors
            for past, anchor in zip(anchors, anchors[1:]):
                assert by_display[anchor].references == (past,)
                # The group is coded contiguously, anchor first, Cool-chic's B order.
                c0 = by_display[anchor].coding_index
                group = [j.display_index for j in jobs[c0 : c0 + anchor - past]]
                assert group == expected_ra_group_order(past, anchor)
                # B references are the closest already-coded past and future frames.
                for d in group[1:]:
                    job = by_display[d]
                    c = job.coding_index
                    coded = [x for x in range(past, anchor + 1) if by_display[x].coding_index < c]
                    assert job.references == (max(x for x in coded if x < d), min(x for x in coded if x > d))
                    # Depth = level of the binary hierarchy: one more than the deeper B reference.
                    ref_depths = [by_display[r].depth for r in job.references]  # anchors are depth 0
                    assert job.depth == max(ref_depths) + 1


def test_ra_gop8_coding_order():
    jobs = schedule(GopStructure.RANDOM_ACCESS, 8, 32, 33)
    order = [j.display_index for j in jobs]
    assert order[:9] == [0, 8, 4, 2, 1, 3, 6, 5, 7]
    assert order[9:17] == [16, 12, 10, 9, 11, 14, 13, 15]
    # Last group of the 32-frame segment is 25..31 (7 frames), then the I at 32.
    assert order[25:] == [31, 27, 25, 26, 29, 28, 30, 32]
    depths = {j.display_index: j.depth for j in jobs[:9]}
    assert depths == {0: 0, 8: 0, 4: 1, 2: 2, 6: 2, 1: 3, 3: 3, 5: 3, 7: 3}
    assert jobs[-1].frame_type == FrameType.I


def test_ra_gop16_max_depth():
    jobs = schedule(GopStructure.RANDOM_ACCESS, 16, 32, 17)
    assert max(j.depth for j in jobs) == 4
    assert [j.display_index for j in jobs[:6]] == [0, 16, 8, 4, 2, 1]


def test_short_tails():
    # A tail of one frame after the I is a P; a group of 1 is always a P.
    assert [(j.display_index, j.frame_type) for j in schedule(GopStructure.RANDOM_ACCESS, 8, 32, 2)] == [
        (0, FrameType.I),
        (1, FrameType.P),
    ]
    tail = schedule(GopStructure.RANDOM_ACCESS, 8, 32, 12)[9:]
    assert [(j.display_index, j.references) for j in tail] == [(11, (8,)), (9, (8, 11)), (10, (9, 11))]
    ra1 = schedule(GopStructure.RANDOM_ACCESS, 1, 8, 10)
    assert [j.frame_type for j in ra1] == [FrameType.I] + [FrameType.P] * 7 + [FrameType.I, FrameType.P]
    assert schedule(GopStructure.RANDOM_ACCESS, 8, 32, 1) == [FrameJob(0, 0, FrameType.I, (), 0)]
    assert schedule(GopStructure.INTRA, 8, 32, 0) == []


def test_lowdelay_and_intra():
    ld = schedule(GopStructure.LOWDELAY, 8, 4, 9)
    assert [j.display_index for j in ld] == list(range(9))
    assert [j.frame_type.name for j in ld] == list("IPPPIPPPI")
    assert ld[5].references == (4,)
    intra = schedule(GopStructure.INTRA, 8, 4, 5)
    assert all(j.frame_type == FrameType.I and j.references == () for j in intra)


def stream(structure, gop, period, n):
    """Run the scheduler picture by picture; returns (jobs, display index pushed when each job came out)."""
    scheduler = GopScheduler(structure, gop, period)
    jobs, released_at = [], []
    for d in range(n):
        out = scheduler.push(d)
        jobs += out
        released_at += [d] * len(out)
    out = scheduler.flush()
    jobs += out
    released_at += [None] * len(out)
    assert scheduler.flush() == []
    return jobs, released_at


@pytest.mark.parametrize("structure,gop,period,n", GRID)
def test_streaming_latency(structure, gop, period, n):
    jobs, released_at = stream(structure, gop, period, n)
    assert jobs == schedule(structure, gop, period, n)
    last = n - 1
    anchors = sorted(j.display_index for j in jobs if j.frame_type != FrameType.B)
    for job, at in zip(jobs, released_at):
        if at is None:
            # Only the clip's tail group waits for flush, and it is the end of the clip.
            assert structure == GopStructure.RANDOM_ACCESS
            at = last
        # Released no earlier than the picture exists ...
        assert at >= job.display_index
        if structure != GopStructure.RANDOM_ACCESS or job.frame_type == FrameType.I:
            assert at == job.display_index  # released immediately
        else:
            # ... and no later than the last picture of its group (its anchor) arrives: the
            # encoder buffers at most one GOP.
            anchor = min(a for a in anchors if a >= job.display_index)
            assert at == anchor and at - job.display_index < gop


def test_push_contract():
    scheduler = GopScheduler(GopStructure.RANDOM_ACCESS, 4, 8)
    scheduler.push(0)
    with pytest.raises(ValueError, match="expected 1"):
        scheduler.push(2)
    scheduler.flush()
    with pytest.raises(ValueError, match="after flush"):
        scheduler.push(1)


@pytest.mark.parametrize(
    "args,match",
    [
        ((GopStructure.RANDOM_ACCESS, 0, 32), "GOP size 0"),
        ((GopStructure.RANDOM_ACCESS, -3, 32), "GOP size -3"),
        ((GopStructure.LOWDELAY, 8, 0), "intra period 0"),
        ((GopStructure.INTRA, 8, 2.5), "intra period 2.5"),
        ((7, 8, 32), "GOP structure 7"),
        (("ra", 8, 32), "GOP structure 'ra'"),
    ],
)
def test_validation(args, match):
    with pytest.raises(ConfigError, match=match) as info:
        GopScheduler(*args)
    assert info.value.hint and "\n" not in str(info.value)


def test_schedule_rejects_negative_length():
    with pytest.raises(ConfigError, match="frame count -1"):
        schedule(GopStructure.INTRA, 1, 1, -1)


def test_ra_intra_period_not_multiple_of_gop():
    jobs = check_schedule(GopStructure.RANDOM_ACCESS, 4, 10, 20)
    anchors = [j.display_index for j in jobs if j.frame_type != FrameType.B]
    assert anchors == [0, 4, 8, 9, 10, 14, 18, 19]


def test_lambda_scale():
    assert lambda_scale(0) == 1.0
    assert lambda_scale(3) == pytest.approx(3.375)
    assert [lambda_scale(d) for d in range(5)] == sorted(lambda_scale(d) for d in range(5))


def check_reference_bookkeeping(structure, gop, period, n):
    """Scheduler and decoder-side tracker keep what later jobs need, and the DPB stays small."""
    full = schedule(structure, gop, period, n)
    scheduler = GopScheduler(structure, gop, period)
    tracker = ReferenceTracker(structure, gop, period)
    tracker_known_n = ReferenceTracker(structure, gop, period, frame_count=n)
    tracker_blind = ReferenceTracker(None)
    bound = math.ceil(math.log2(gop)) + 2 if structure == GopStructure.RANDOM_ACCESS else 2
    for d in range(n + 1):
        ready = scheduler.push(d) if d < n else scheduler.flush()
        for job in ready:
            # Only pictures already coded can sit in a DPB: compare on those.
            coded = {j.display_index for j in full[: job.coding_index + 1]}
            exact = references_needed_after(full, job.coding_index) & coded
            keep = scheduler.still_referenced(job.coding_index) & coded
            # Never drops a needed reference; at most the segment's latest anchor extra
            # (the scheduler cannot know the clip ends there).
            assert exact <= keep
            assert len(keep - exact) <= 1
            if d == n:
                assert keep == exact  # after flush the scheduler knows the end
            mirrored = tracker.decoded(job.display_index, job.frame_type, job.references) & coded
            assert mirrored == keep if d < n else exact <= mirrored
            known_n = tracker_known_n.decoded(job.display_index, job.frame_type, job.references)
            assert known_n & coded == exact
            blind = tracker_blind.decoded(job.display_index, job.frame_type, job.references)
            assert exact <= blind <= coded
            # DPB after insertion of the coded frame and release: within the bound.
            assert len(keep | {job.display_index}) <= bound
            assert len(mirrored | {job.display_index}) <= bound


@pytest.mark.parametrize("structure,gop,period,n", GRID)
def test_reference_bookkeeping(structure, gop, period, n):
    check_reference_bookkeeping(structure, gop, period, n)


def test_still_referenced_order_contract():
    scheduler = GopScheduler(GopStructure.RANDOM_ACCESS, 4, 8)
    jobs = [job for d in range(5) for job in scheduler.push(d)]
    # B2 (0, 4), B1 (0, 2), B3 (2, 4); 4 is also the next group's P reference.
    assert scheduler.still_referenced(1) == {0, 2, 4}
    assert scheduler.still_referenced(len(jobs) - 1) == {4}
    with pytest.raises(ValueError, match="coding order"):
        scheduler.still_referenced(0)


@settings(max_examples=150, deadline=None)
@given(
    structure=st.sampled_from(STRUCTURES),
    gop=st.integers(1, 40),
    period=st.integers(1, 70),
    n=st.integers(0, 120),
)
def test_random_structures(structure, gop, period, n):
    check_schedule(structure, gop, period, n)
    jobs, _ = stream(structure, gop, period, n)
    assert jobs == schedule(structure, gop, period, n)
    check_reference_bookkeeping(structure, gop, period, n)


def test_no_torch_import():
    code = "import coolchic_stream.gop, coolchic_stream.dpb, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def random_planner(draw_distance, cut_every: int):
    """A planner that splits pending pictures at drawn distances and cuts every ``cut_every``-th."""

    def plan(anchor: int, pending: list[int]) -> GroupPlan:
        cuts = [d for d in pending if cut_every and d % cut_every == 0]
        anchors, current = [], anchor
        for end in [c - 1 for c in cuts] + [pending[-1]]:
            while current < end:
                current = min(current + draw_distance(), end)
                anchors.append(current)
            if end != pending[-1]:
                current = end + 1
                anchors.append(current)
        return GroupPlan(tuple(anchors), tuple(cuts))

    return plan


@settings(max_examples=150, deadline=None)
@given(
    structure=st.sampled_from([GopStructure.RANDOM_ACCESS, GopStructure.LOWDELAY]),
    gop=st.integers(1, 16),
    period=st.integers(1, 40),
    n=st.integers(1, 80),
    cut_every=st.sampled_from([0, 3, 7, 11]),
    distances=st.lists(st.integers(1, 16), min_size=1, max_size=30),
)
def test_planned_groups_and_cuts(structure, gop, period, n, cut_every, distances):
    """With a planner: shorter mini-GOPs and I frames at cuts give a stream whose every reference is
    coded first, never crosses an I frame, and that the decoder's tracker keeps without knowing the plan."""
    draws = iter(distances * 200)
    scheduler = GopScheduler(structure, gop, period, random_planner(lambda: min(next(draws), gop), cut_every))
    tracker = ReferenceTracker(structure, gop, period)
    jobs: list[FrameJob] = []
    for d in range(n + 1):
        jobs += scheduler.push(d) if d < n else scheduler.flush()
    assert sorted(j.display_index for j in jobs) == list(range(n))
    assert [j.coding_index for j in jobs] == list(range(n))
    by_display = {j.display_index: j for j in jobs}
    for job in jobs:
        d = job.display_index
        cut = bool(cut_every) and d % cut_every == 0
        assert (job.frame_type == FrameType.I) == (d % period == 0 or cut)
        if job.frame_type == FrameType.P:
            assert 0 < d - job.references[0] <= gop
        if job.frame_type == FrameType.B:
            past, future = job.references
            assert past < d < future and future - past <= gop
        for ref in job.references:
            assert by_display[ref].coding_index < job.coding_index
            assert not any(by_display[x].frame_type == FrameType.I for x in range(min(ref, d) + 1, max(ref, d) + 1))
    for job in jobs:
        needed = references_needed_after(jobs, job.coding_index)
        coded = {j.display_index for j in jobs[: job.coding_index + 1]}
        kept = tracker.decoded(job.display_index, job.frame_type, job.references)
        assert needed & coded <= kept


def test_planner_plans_are_checked():
    with pytest.raises(ValueError, match="not 1..4 frames"):
        GroupPlan((9,)).check(0, [1, 2, 3, 9], 4)
    with pytest.raises(ValueError, match="does not follow an anchor"):
        GroupPlan((2, 4), (4,)).check(0, [1, 2, 3, 4], 4)
    with pytest.raises(ValueError, match="does not end"):
        GroupPlan((2,)).check(0, [1, 2, 3], 4)
