"""VCEG-M33 BD-rate / BD-PSNR against exact and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tools.bdrate import bd_psnr, bd_rate

RATES = [100.0, 180.0, 330.0, 600.0]
PSNRS = [30.1, 32.4, 34.9, 37.2]


def test_identical_curves_give_zero():
    assert bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)
    assert bd_psnr(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)


def test_rate_times_point_nine_is_minus_ten_percent():
    test_rates = [0.9 * r for r in RATES]
    assert bd_rate(RATES, PSNRS, test_rates, PSNRS) == pytest.approx(-10.0, abs=1e-9)
    # and the reverse direction: 1/0.9 - 1
    assert bd_rate(test_rates, PSNRS, RATES, PSNRS) == pytest.approx((1 / 0.9 - 1) * 100, abs=1e-9)


def test_order_of_points_does_not_matter():
    order = [2, 0, 3, 1]
    shuffled_r = [RATES[i] * 0.8 for i in order]
    shuffled_p = [PSNRS[i] + 0.3 for i in order]
    expected = bd_rate(RATES, PSNRS, [r * 0.8 for r in RATES], [p + 0.3 for p in PSNRS])
    assert bd_rate(RATES, PSNRS, shuffled_r, shuffled_p) == pytest.approx(expected, abs=1e-9)


def test_plus_one_db_on_a_log_linear_curve():
    # anchor: ln R = 0.2 P - 2 (exactly linear, so the cubic fit is exact)
    p = np.array([30.0, 32.0, 34.0, 36.0])
    r = np.exp(0.2 * p - 2.0)
    # test: same rates, 1 dB better -> ln R_t(P) = 0.2 (P - 1) - 2 -> ratio exp(-0.2)
    got = bd_rate(r, p, r, p + 1.0)
    assert got < 0
    assert got == pytest.approx((math.exp(-0.2) - 1) * 100, abs=1e-6)  # -18.127 %
    assert bd_psnr(r, p, r, p + 1.0) == pytest.approx(1.0, abs=1e-9)


def test_hand_computed_partial_overlap():
    # anchor ln R = 0.20 P - 2.0 on P in [30, 36]; test ln R = 0.15 P - 0.5 on P in [32, 38].
    # BD-rate: overlap [32, 36]; diff(P) = -0.05 P + 1.5, mean at P = 34 -> -0.2
    #          -> exp(-0.2) - 1 = -18.1269 %.
    # BD-PSNR: anchor P = 5 L + 10 on L in [4.0, 5.2]; test P = (L + 0.5) / 0.15 on L in [4.3, 5.2];
    #          overlap [4.3, 5.2]; diff(L) = (5/3) L - 20/3, mean at L = 4.75 -> 1.25 dB.
    pa = np.array([30.0, 32.0, 34.0, 36.0])
    pt = np.array([32.0, 34.0, 36.0, 38.0])
    ra = np.exp(0.20 * pa - 2.0)
    rt = np.exp(0.15 * pt - 0.5)
    assert bd_rate(ra, pa, rt, pt) == pytest.approx(-18.126924692201818, abs=1e-6)
    assert bd_psnr(ra, pa, rt, pt) == pytest.approx(1.25, abs=1e-9)


def test_hand_computed_cubic_case():
    # anchor ln R = 1e-3 (P - 30)^3 + 0.1 P (a true cubic, reproduced exactly by the fit),
    # test = anchor - 0.05 on [31, 35] (4 points inside the anchor's [30, 36]):
    # mean difference over [31, 35] is exactly -0.05 -> exp(-0.05) - 1 = -4.8771 %.
    pa = np.array([30.0, 32.0, 34.0, 36.0])
    pt = np.array([31.0, 32.5, 33.5, 35.0])
    f = lambda p: 1e-3 * (p - 30.0) ** 3 + 0.1 * p  # noqa: E731
    assert bd_rate(np.exp(f(pa)), pa, np.exp(f(pt) - 0.05), pt) == pytest.approx(
        (math.exp(-0.05) - 1) * 100, abs=1e-6
    )


def test_numerical_integration_agrees():
    # an irregular anchor and test: compare the closed-form polyint against trapezoids
    ra, pa = [95.0, 170.0, 340.0, 620.0], [29.8, 32.6, 35.1, 37.0]
    rt, pt = [80.0, 150.0, 300.0, 560.0], [30.0, 32.5, 35.3, 37.4]
    fa = np.polyfit(pa, np.log(ra), 3)
    ft = np.polyfit(pt, np.log(rt), 3)
    grid = np.linspace(30.0, 37.0, 200001)
    diff = np.polyval(ft, grid) - np.polyval(fa, grid)
    mean = np.sum((diff[1:] + diff[:-1]) / 2 * np.diff(grid)) / 7.0
    assert bd_rate(ra, pa, rt, pt) == pytest.approx((math.exp(mean) - 1) * 100, abs=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="overlap"):
        bd_rate(RATES, PSNRS, RATES, [p + 10 for p in PSNRS])
    with pytest.raises(ValueError, match="at least 2"):
        bd_rate([1.0], [30.0], RATES, PSNRS)
    with pytest.raises(ValueError, match="positive"):
        bd_rate([0.0, 1.0, 2.0, 3.0], PSNRS, RATES, PSNRS)
