"""tools/bench_ratecontrol.py: the λ it runs to land at a rate."""

from __future__ import annotations

import math

import pytest

from tools.bench_ratecontrol import between_lambdas, interpolate_lambda


def test_lambda_is_interpolated_in_the_log_log_plane() -> None:
    curve = [(4e-3, 50.0), (1e-3, 100.0), (2.5e-4, 200.0)]  # rate doubles when λ quarters
    assert interpolate_lambda(curve, 100.0) == pytest.approx(1e-3)
    assert interpolate_lambda(curve, 50 * math.sqrt(2)) == pytest.approx(2e-3)
    assert interpolate_lambda(curve, 25.0) == pytest.approx(1.6e-2)  # beyond the curve: its end segment
    assert interpolate_lambda(list(reversed(curve)), 400.0) == pytest.approx(6.25e-5)


def test_the_denser_curve_spaces_its_lambdas_evenly_in_log_between_neighbours() -> None:
    assert between_lambdas([4e-3, 1e-3, 1.6e-2], 1) == pytest.approx([2e-3, 8e-3])
    assert between_lambdas([1e-3, 8e-3], 2) == pytest.approx([2e-3, 4e-3])
    assert between_lambdas([1e-3], 1) == [] and between_lambdas([1e-3, 4e-3], 0) == []
