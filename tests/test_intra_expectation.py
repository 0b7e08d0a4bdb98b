"""The intra check's expected outcome: the source's guess spread over the frames' places, then
learnt from the frames coded."""

from __future__ import annotations

import math

import pytest

from coolchic_stream.intra_expectation import INTRA_EVIDENCE, INTRA_LOG_ODDS, IntraExpectation, log_odds
from coolchic_stream.segment_plan import nominal_plan
from coolchic_stream.types import FrameType, GopStructure

PLAN = [c for c in nominal_plan(GopStructure.RANDOM_ACCESS, 8, 32, 17) if c[0] != FrameType.I]
PLACES = [(FrameType.P, 0), (FrameType.B, 1), (FrameType.B, 2), (FrameType.B, 3)]


@pytest.mark.parametrize("guess", [0.1, 0.5, 0.75])
def test_the_guess_is_spread_over_the_plan_far_frames_expected_to_fail_more(guess: float) -> None:
    expect = IntraExpectation(guess, PLAN)
    assert sum(expect.for_class(c) for c in PLAN) / len(PLAN) == pytest.approx(guess)
    shares = [expect.for_class(c) for c in PLACES]
    assert shares == sorted(shares, reverse=True) and shares[0] > guess > shares[-1]
    assert expect.pooled == pytest.approx(guess)


def test_where_the_source_promises_prediction_nothing_is_expected_until_a_frame_fails() -> None:
    expect = IntraExpectation(0.0, PLAN)
    for cls in PLACES:
        expect.coded(cls, False)
    assert all(expect.for_class(c) == 0.0 for c in PLACES) and expect.pooled == 0.0
    expect.coded((FrameType.P, 0), True)
    assert expect.pooled == pytest.approx(1 / (5 + INTRA_EVIDENCE))
    assert all(0.0 < expect.for_class(c) < 1.0 for c in PLACES)


def test_frames_coded_move_every_class_and_their_own_most() -> None:
    failing, predicting = IntraExpectation(0.5, PLAN), IntraExpectation(0.5, PLAN)
    for _ in range(4):
        failing.coded((FrameType.B, 3), True)
        predicting.coded((FrameType.B, 3), False)
    start = IntraExpectation(0.5, PLAN)
    for cls in PLACES:
        assert predicting.for_class(cls) < start.for_class(cls) < failing.for_class(cls)
    # its own four frames count for more than the place: the deep class moves furthest (in log-odds)
    def logit(q: float) -> float:
        return math.log(q / (1 - q))

    for moved in (failing, predicting):
        shift = [abs(logit(moved.for_class(c)) - logit(start.for_class(c))) for c in ((FrameType.B, 3), (FrameType.B, 2))]
        assert shift[0] > shift[1]
    assert predicting.for_class((FrameType.B, 3)) < 0.1


def test_the_place_is_the_depth_the_first_frame_an_anchor() -> None:
    assert log_odds((FrameType.P, -1)) == log_odds((FrameType.P, 0)) == INTRA_LOG_ODDS[0]
    assert log_odds((FrameType.B, 5)) == INTRA_LOG_ODDS[-1]
    assert list(INTRA_LOG_ODDS) == sorted(INTRA_LOG_ODDS, reverse=True)


@pytest.mark.parametrize("guess", [-0.1, 1.5])
def test_a_share_outside_zero_to_one_is_refused(guess: float) -> None:
    with pytest.raises(ValueError, match="expected share"):
        IntraExpectation(guess, PLAN)
