"""Bjøntegaard delta rate and delta PSNR, classic VCEG-M33 cubic method (the one method used in tools/).

Method (G. Bjøntegaard, "Calculation of average PSNR differences between RD-curves",
ITU-T SG16/Q6 VCEG-M33, Austin, April 2001), for an anchor curve A and a test curve T, each
given as points (rate_i, PSNR_i):

BD-rate
    1. For each curve, fit log(rate) as a polynomial of PSNR by least squares
       (``numpy.polyfit``), degree 3 (cubic) — with exactly 4 points this interpolates.
    2. Take the overlapping PSNR interval [max(min P_A, min P_T), min(max P_A, max P_T)].
    3. Integrate both polynomials over it (``numpy.polyint``) and divide by its width:
       the mean log-rate of each curve over the common quality range.
    4. BD-rate = exp(mean_T - mean_A) - 1, in percent. Negative = the test curve needs
       fewer bits for the same PSNR. (VCEG-M33 writes it with log10 and 10**x; identical.)

BD-PSNR
    The same with the axes swapped: PSNR fitted as a cubic of log(rate), integrated over the
    overlapping log-rate interval; BD-PSNR = mean_T - mean_A in dB (positive = test better).

Inputs: rates in any unit (the ratio cancels; use the same unit for both curves), PSNR in dB
(this project uses the sequence YUV 6:1:1 PSNR, mean of per-frame values, see tools/metrics.py).
Points need not be sorted. Each curve needs at least 4 points for the cubic fit; with 2 or 3
points the degree drops to n - 1 (linear or quadratic fit), and fewer
than 2 points or no overlap raise ``ValueError``. No piecewise (pchip/akima) variant is
offered on purpose: one method, written down. Cubic fits can overshoot on badly spaced
points; keep the anchor and test curves spanning similar qualities.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _prepare(x: Sequence[float], y: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray, int]:
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"{name}: rates and PSNRs must be 1-D and of equal length")
    if len(xa) < 2:
        raise ValueError(f"{name}: need at least 2 points, got {len(xa)}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError(f"{name}: non-finite value")
    return xa, ya, min(3, len(xa) - 1)


def _mean_over(coeffs: np.ndarray, lo: float, hi: float) -> float:
    integral = np.polyint(coeffs)
    return float((np.polyval(integral, hi) - np.polyval(integral, lo)) / (hi - lo))


def _delta(xa: np.ndarray, ya: np.ndarray, xt: np.ndarray, yt: np.ndarray, da: int, dt: int) -> float:
    """Mean of fit_t(x) - fit_a(x) over the overlap of the x ranges, fits of y as polynomials of x."""
    lo = max(xa.min(), xt.min())
    hi = min(xa.max(), xt.max())
    if not hi > lo:
        raise ValueError(f"curves do not overlap (common interval [{lo:.4g}, {hi:.4g}])")
    pa = np.polyfit(xa, ya, da)
    pt = np.polyfit(xt, yt, dt)
    return _mean_over(pt, lo, hi) - _mean_over(pa, lo, hi)


def bd_rate(
    rate_anchor: Sequence[float],
    psnr_anchor: Sequence[float],
    rate_test: Sequence[float],
    psnr_test: Sequence[float],
) -> float:
    """BD-rate of test vs anchor in percent (VCEG-M33 cubic fit of log rate vs PSNR)."""
    ra, pa, da = _prepare(rate_anchor, psnr_anchor, "anchor")
    rt, pt, dt = _prepare(rate_test, psnr_test, "test")
    if np.any(ra <= 0) or np.any(rt <= 0):
        raise ValueError("rates must be positive")
    return (math.exp(_delta(pa, np.log(ra), pt, np.log(rt), da, dt)) - 1.0) * 100.0


def bd_psnr(
    rate_anchor: Sequence[float],
    psnr_anchor: Sequence[float],
    rate_test: Sequence[float],
    psnr_test: Sequence[float],
) -> float:
    """BD-PSNR of test vs anchor in dB (VCEG-M33 cubic fit of PSNR vs log rate)."""
    ra, pa, da = _prepare(rate_anchor, psnr_anchor, "anchor")
    rt, pt, dt = _prepare(rate_test, psnr_test, "test")
    if np.any(ra <= 0) or np.any(rt <= 0):
        raise ValueError("rates must be positive")
    return _delta(np.log(ra), pa, np.log(rt), pt, da, dt)
