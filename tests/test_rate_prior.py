"""rate_prior: what rate control assumes of a segment's frames before it codes them."""

from __future__ import annotations

from fractions import Fraction

import pytest

from coolchic_stream.rate_prior import CONTENT_MOST, DETAIL_EXPONENT, DETAIL_RANGE, detail_scale, inter_share, source_content
from coolchic_stream.ratecontrol import KAPPA, RateController
from coolchic_stream.segment_plan import nominal_plan
from coolchic_stream.types import FrameType, GopStructure


def test_the_source_says_how_much_dearer_than_the_prior_predicted_frames_are() -> None:
    """Motion shares measured: the pan 0.02 and CIF BBB 0.07 (frames at their prior shares), BBB 128²
    10.5 (its predicted frames at 9x their prior shares, geometric mean of ten λ encodes)."""
    assert source_content(None) == source_content(0.02) == source_content(0.07) == 1.0
    assert 1.0 < source_content(1.3) < source_content(10.5) <= source_content(1e4) == CONTENT_MOST
    assert 8.0 < source_content(10.5) < 10.0
    # near their floor (BBB at λ 1.8e-2: 3.3x), predicted frames are less far above their prior shares
    assert source_content(10.5, 1e-3) == source_content(10.5) and 3.0 < source_content(10.5, 1.8e-2) < 4.0
    assert source_content(0.02, 0.5) == 1.0 and source_content(10.5, 0.5) > 1.0
    # the I frame, planned against dearer P/B frames, takes a smaller share of the segment's budget
    plan = nominal_plan(GopStructure.RANDOM_ACCESS, 8, 32, 17)
    shares = [RateController(2000.0, Fraction(1), plan, r).start_intra(64 * 64, 400, 1000).target_bits for r in (0.05, 10.5)]
    assert shares[1] < 0.9 * shares[0]


def test_a_frame_is_as_much_dearer_as_its_picture_has_more_detail() -> None:
    assert detail_scale(None, 4e-4) == detail_scale(4e-4, None) == detail_scale(4e-4, 4e-4) == 1.0
    assert detail_scale(1e-4, 4e-4) == pytest.approx(0.25**DETAIL_EXPONENT) and detail_scale(4e-4, 1e-4) > 1.0
    assert detail_scale(0.0, 4e-4) == 1.0 / DETAIL_RANGE and detail_scale(1.0, 1e-6) == DETAIL_RANGE  # flat or noise: bounded


def _segment(details: list[float] | None) -> tuple[RateController, list[float]]:
    """BBB 128² 32-48 in miniature: 17 frames whose second group's pictures have a sixteenth of the
    first's detail, in a world where a frame costs its prior share of the I frame times
    detail_scale; the controller told each frame's detail (and the next group's, as the encoder
    holds a frame until the pictures a mini-GOP after it are in), or nothing (``details`` None)."""
    from coolchic_stream.gop import schedule

    plan = nominal_plan(GopStructure.RANDOM_ACCESS, 8, 32, 17)
    jobs = schedule(GopStructure.RANDOM_ACCESS, 8, 32, 17)
    truth = [4e-4 if j.display_index <= 8 else 2.5e-5 for j in jobs]
    m_i = 4_000 / 1e-3**KAPPA  # an I frame of 4 000 bits at λ 1e-3, the budget what the segment costs there
    budget = 4_000 + sum(200 + inter_share(*c) * m_i * detail_scale(d, truth[0]) * 1e-3**KAPPA for c, d in zip(plan[1:], truth[1:]))
    rc = RateController(budget / len(plan), Fraction(1), plan, None, None if details is None else truth[0])
    rc.coded_frame(FrameType.I, 0, 1e-3, 4_000, detail=truth[0])
    lambdas = []
    for k in range(1, len(jobs)):
        cls = plan[k]
        if details is None:
            decision = rc.next_frame(*cls)
        else:
            decision = rc.next_frame(*cls, plan[k + 1 :], truth[k:], None)
        bits = 200 + inter_share(*cls) * m_i * detail_scale(truth[k], truth[0]) * decision.lmbda**KAPPA
        rc.coded_frame(jobs[k].frame_type, jobs[k].depth, decision.lmbda, round(bits), detail=None if details is None else truth[k])
        lambdas.append(decision.lmbda)
    return rc, lambdas


def test_frames_of_less_detail_are_planned_cheaper_and_the_segment_codes_at_one_lambda() -> None:
    """Told the details, a segment whose second group is cheaper (BBB 128² 32-48: 0.5-0.78x the
    first at one λ) is planned so from the I frame on: every frame at the one λ that meets the
    budget. Planned blind, the first group's cost is taken for the second's: λ off that λ."""
    told, told_lambdas = _segment([])
    assert told.spent == pytest.approx(told.budget, rel=1e-3) and max(told_lambdas) / min(told_lambdas) < 1.001
    assert told_lambdas[0] == pytest.approx(1e-3, rel=1e-3)
    _, blind_lambdas = _segment(None)
    assert min(blind_lambdas) > 1.02e-3
