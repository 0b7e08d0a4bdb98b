"""Fixed-point helpers of the exact reconstruction path.

Activations are Q16 integers (value * 2^16) held in float64 tensors: every
product and sum stays an integer below 2^53, so convolutions computed by any
BLAS in any order give the same bits on every machine.
"""

from __future__ import annotations

import torch
from torch import Tensor

FRAC = 16
ONE = float(1 << FRAC)


def round_shift(x: Tensor, bits: int) -> Tensor:
    """Divide by 2^bits rounding half up (exact on integer-valued float64)."""
    if bits <= 0:
        return x * float(1 << -bits)
    y = x + float(1 << (bits - 1))
    return y.mul_(1.0 / (1 << bits)).floor_()


def round_shift_(x: Tensor, bits: int) -> Tensor:
    """``round_shift`` in place, for a tensor the caller owns (bits > 0)."""
    return x.add_(float(1 << (bits - 1))).mul_(1.0 / (1 << bits)).floor_()


def scale_integers(values: Tensor, log2_factor: int) -> Tensor:
    """values * 2^log2_factor rounded to integers (half to even, deterministic)."""
    return torch.round(values * 2.0**log2_factor)


def samples_to_fixed(samples: Tensor, bit_depth: int) -> Tensor:
    """Integer samples -> Q16 of samples / (2^bd - 1)."""
    m = (1 << bit_depth) - 1
    return torch.floor((samples.to(torch.float64) * ONE + m // 2) / m)


def fixed_to_samples(x: Tensor, bit_depth: int) -> Tensor:
    """Q16 -> integer samples, rounded and clamped to [0, 2^bd - 1] (int64)."""
    m = (1 << bit_depth) - 1
    return torch.clamp(torch.floor((x * m + ONE / 2) / ONE), 0, m).to(torch.int64)
