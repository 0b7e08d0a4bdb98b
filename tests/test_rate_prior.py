"""rate_prior: what rate control assumes of a segment's frames before it codes them."""

from __future__ import annotations

from fractions import Fraction

import pytest

from coolchic_stream.rate_prior import CONTENT_MOST, DETAIL_EXPONENT, DETAIL_RANGE, detail_scale, source_content
from coolchic_stream.ratecontrol import RateController
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


def test_frames_coded_without_prediction_are_planned_by_their_detail_those_with_it_by_their_motion() -> None:
    """A frame coded without prediction is coded like an I frame: its bits go with its picture's
    detail (BBB 128² 32-48: such frames' bits over detail_scale within 0.75-1.25x of the I frame's
    at each of 1.7e-3, 5.1e-3 and 1.8e-2); one coded with prediction codes a residue, that motion
    sets, and is planned as its class came out, whatever its picture's detail."""
    plan = nominal_plan(GopStructure.RANDOM_ACCESS, 8, 32, 17)
    detail = 4e-4

    def planned(motion_share: float, later: float) -> float:
        rc = RateController(2000.0, Fraction(1), plan, motion_share, detail)
        rc.coded_frame(FrameType.I, 0, 1e-3, 8_000, detail=detail)
        first = rc.next_frame(FrameType.P, 0, (), (detail,))
        rc.coded_frame(FrameType.P, 0, first.lmbda, 4_000, intra_coded=motion_share > 1, detail=detail)
        return rc.next_frame(FrameType.B, 1, (), (later,)).planned_bits

    assert planned(100.0, detail / 16) < 0.5 * planned(100.0, detail)  # where most frames are coded without prediction
    assert planned(0.02, detail / 16) == pytest.approx(planned(0.02, detail))  # where motion predicts
