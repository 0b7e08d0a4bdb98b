"""Adaptive GOP lookahead: anchor distances from the prediction gap, I frames at scene cuts."""

from __future__ import annotations

import numpy as np
import pytest

from coolchic_stream.gop import GopScheduler
from coolchic_stream.lookahead import Lookahead
from coolchic_stream.types import DataType, FrameType, GopStructure, Picture

from .conftest import decode_packets, encode_pictures, make_picture


def scene_change(picture: Picture, pts: int) -> Picture:
    """Another scene: random 3x3 blocks (no motion of the sine texture explains them), moving right."""
    rng = np.random.default_rng(99)
    peak = (1 << picture.bit_depth) - 1
    planes = []
    for p in picture.planes:
        blocks = rng.integers(0, peak + 1, size=(p.shape[0] // 3 + 1, p.shape[1] // 3 + 2))
        texture = np.kron(blocks, np.ones((3, 3), dtype=np.int64))
        planes.append(np.ascontiguousarray(texture[: p.shape[0], pts % 3 : pts % 3 + p.shape[1]].astype(p.dtype)))
    return Picture(tuple(planes), picture.bit_depth, picture.data_type, pts)


def clip(n: int, cut_at: int | None = None, width: int = 40, height: int = 24, data_type=DataType.YUV420):
    pictures = [make_picture(width, height, data_type, pts=i, shift=i) for i in range(n)]
    if cut_at is not None:
        pictures[cut_at:] = [scene_change(p, p.pts) for p in pictures[cut_at:]]
    return pictures


def planned(pictures: list[Picture], quality_mse: float) -> tuple[Lookahead, list, float]:
    """(lookahead, its plan of the pictures after the first, gap of the last from the first)."""
    la = Lookahead(1e-3)
    la.coded_quality(quality_mse)
    for p in pictures:
        la.add(p)
    gap = la.gap_db(pictures[-1].pts, 0)
    return la, la.plan(0, [p.pts for p in pictures[1:]]), gap


@pytest.mark.parametrize("data_type", list(DataType))
def test_gap_decides_the_anchor_distance(data_type):
    pictures = clip(9, data_type=data_type)
    # Coded quality far below what the flow predicts: one mini-GOP of the whole group.
    la, plan, gap = planned(pictures, quality_mse=1.0)
    assert plan.anchors == (8,) and plan.cuts == () and gap < 0
    # Coded quality far above it: every anchor one frame after the last.
    la, plan, gap = planned(pictures, quality_mse=1e-12)
    assert plan.anchors == tuple(range(1, 9))
    assert la.decisions == ["0->8: distances [1, 1, 1, 1, 1, 1, 1, 1]"]


def test_a_scene_cut_becomes_an_anchor_i_frame():
    pictures = clip(9, cut_at=5)
    la, plan, _ = planned(pictures, quality_mse=1.0)
    assert plan.cuts == (5,) and plan.anchors == (4, 5, 8)
    assert la.decisions == ["0->8: distances [4, 1, 3], cuts [5]"]
    plan.check(0, list(range(1, 9)), 8)


def test_lookahead_memory_is_bounded_to_a_group():
    la = Lookahead(1e-3)
    pictures = clip(17)
    for p in pictures[:9]:
        la.add(p)
    la.plan(0, list(range(1, 9)))
    for p in pictures[9:]:
        la.add(p)
    la.plan(8, list(range(9, 17)))
    assert sorted(la._pictures) == [16]


@pytest.mark.parametrize("gop", ["ra", "lowdelay"])
def test_encoder_puts_an_i_frame_at_a_cut_and_decodes_exactly(gop):
    pictures = clip(7, cut_at=4, width=17, height=11)
    enc, packets = encode_pictures(pictures, gop=gop, gop_size=4, iterations=12)
    types = {p.pts: p.frame_type for p in packets}
    assert types[4] == FrameType.I and types[0] == FrameType.I
    assert all(types[d] != FrameType.I for d in (1, 2, 3, 5, 6))
    decoded = decode_packets(packets)
    assert all(d.same_samples(enc.reconstructions[d.pts]) for d in decoded)
    # --fixed-gop: the structure of old, no I frame at the cut.
    _, fixed = encode_pictures(pictures, gop=gop, gop_size=4, iterations=12, adaptive_gop=False)
    assert [p.frame_type for p in fixed if p.pts == 4] != [FrameType.I]


def test_scheduler_without_planner_is_unchanged():
    scheduler = GopScheduler(GopStructure.RANDOM_ACCESS, 4, 32)
    jobs = [j for d in range(9) for j in scheduler.push(d)] + scheduler.flush()
    assert [j.display_index for j in jobs if j.frame_type != FrameType.B] == [0, 4, 8]
