"""Fixed-point ARM shared by encoder and decoder: the only source of entropy-coding parameters.

Every value is an integer held in float64 (exact below 2^53, which the bounds
below guarantee), so the same (mu, scale) come out on any machine and for any
batching -- the range decoder never desyncs (DESIGN.md §3)::

    ctx ints ─► Q8 ─► [x·(W+I)ᵀ + b ─► ReLU ─► >>8, clamp] × n ─► x·Woᵀ + bo + ctx·Wsᵀ + bs ─► >>8
            ─► (mu_q8, log_scale_q8) ─► table ─► (mean, scale) for constriction

Weights carry 8 fractional bits (steps >= 2^-8), biases 16 (steps >= 2^-16).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CorruptDataError
from ..spec import (
    ARM_ACT_BITS,
    ARM_ONE,
    LOG_SCALE_MAX_Q8,
    LOG_SCALE_MIN_Q8,
    LOG_SCALE_SHIFT_Q8,
    MU_MAX_Q8,
    MU_MIN_Q8,
)

_ONE = float(ARM_ONE)  # 1.0 in the fixed point of activations and weights
HIDDEN_LIMIT = 4096.0 * _ONE  # hidden activations clamp at 4096 real units (held in fixed point)
WEIGHT_LIMIT = 255.0  # |weight| bound that keeps every product below 2^53
WEIGHT_LOG2_STEPS = tuple(range(-8, 1))
BIAS_LOG2_STEPS = tuple(range(-16, 1))

# scale = exp(l / ARM_ONE) rounded to 20 fractional bits, so that any libm gives the same table.
SCALE_TABLE = np.round(np.exp(np.arange(LOG_SCALE_MIN_Q8, LOG_SCALE_MAX_Q8 + 1) / _ONE) * 2.0**20) / 2.0**20


def _floor_shift(x: np.ndarray, bits: int) -> np.ndarray:
    return np.floor(x * (1.0 / (1 << bits)))


@dataclass(frozen=True)
class IntegerArm:
    """ARM weights in fixed point. Matrices are [in, out] for row-vector products."""

    hidden: tuple[tuple[np.ndarray, np.ndarray], ...]  # (W+I in Q8, b in Q16)
    out: tuple[np.ndarray, np.ndarray]  # (Wo Q8, bo Q16)
    stabiliser: tuple[np.ndarray, np.ndarray] | None

    @staticmethod
    def from_integers(
        weights: list[np.ndarray], biases: list[np.ndarray], weight_log2_step: int, bias_log2_step: int, n_hidden: int
    ) -> "IntegerArm":
        """Build from transmitted integers (torch Linear layout [out, in]) and their log2 steps."""
        if weight_log2_step not in WEIGHT_LOG2_STEPS or bias_log2_step not in BIAS_LOG2_STEPS:
            raise CorruptDataError(
                f"ARM quantization steps 2^{weight_log2_step} / 2^{bias_log2_step} are out of range",
                "the frame header is corrupted",
            )
        w_scale = float(1 << (ARM_ACT_BITS + weight_log2_step))
        b_scale = float(1 << (2 * ARM_ACT_BITS + bias_log2_step))
        layers = []
        for w, b in zip(weights, biases):
            wq = w.astype(np.float64).T * w_scale
            if np.abs(wq).max(initial=0) > WEIGHT_LIMIT * _ONE:
                raise CorruptDataError("ARM weight exceeds the fixed-point range", "the frame payload is corrupted")
            layers.append((wq, b.astype(np.float64) * b_scale))
        hidden = []
        for wq, bq in layers[:n_hidden]:
            hidden.append((wq + np.eye(wq.shape[0]) * _ONE, bq))  # residual folded into the matrix
        stabiliser = layers[n_hidden + 1] if len(layers) > n_hidden + 1 else None
        return IntegerArm(tuple(hidden), layers[n_hidden], stabiliser)

    def __call__(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """context: [N, S] integer latents (float64) -> (mu_q8 [N], log_scale_q8 [N]) integers."""
        x = context * _ONE
        h = x
        for w, b in self.hidden:
            h = np.clip(_floor_shift(np.maximum(h @ w + b, 0.0), ARM_ACT_BITS), 0.0, HIDDEN_LIMIT)
        o = h @ self.out[0] + self.out[1]
        if self.stabiliser is not None:
            o = o + x @ self.stabiliser[0] + self.stabiliser[1]
        o = _floor_shift(o, ARM_ACT_BITS)
        mu = np.clip(o[:, 0], MU_MIN_Q8, MU_MAX_Q8)
        log_scale = np.clip(o[:, 1] - LOG_SCALE_SHIFT_Q8, LOG_SCALE_MIN_Q8, LOG_SCALE_MAX_Q8)
        return mu, log_scale


def laplace_parameters(mu_q8: np.ndarray, log_scale_q8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Table lookup: fixed-point (mu, log scale) -> float64 (mean, scale) for the range coder."""
    return mu_q8 * (1.0 / _ONE), SCALE_TABLE[(log_scale_q8 - LOG_SCALE_MIN_Q8).astype(np.int64)]


_SCALE_INDEX_SHIFT = float(-LOG_SCALE_SHIFT_Q8 - LOG_SCALE_MIN_Q8)  # raw log-scale output -> SCALE_TABLE index
_SCALE_INDEX_MAX = float(LOG_SCALE_MAX_Q8 - LOG_SCALE_MIN_Q8)


class ArmStack:
    """K integer ARMs of one architecture evaluated together on [K, n, S] contexts.

    Gives exactly ``laplace_parameters(*arms[k](ctx[k]))`` for every k (tests/entropy/
    test_decode_speed_paths.py), with fewer, in-place numpy calls: the Q8 input scaling is folded
    into the first-layer and stabiliser weights (256·(c·w) = c·(256·w), exact integers), the
    ReLU merges into the post-shift clamp (floor(a/256) < 0 iff a < 0), both biases of the output
    are summed, and the log-scale shift into the table index. Every value stays an exact integer
    (below 2^53) in float64, so the order of summation does not matter.
    """

    def __init__(self, arms: list[IntegerArm]) -> None:
        first = arms[0]
        if any(len(a.hidden) != len(first.hidden) or (a.stabiliser is None) != (first.stabiliser is None) for a in arms):
            raise ValueError("ArmStack needs ARMs of one architecture")
        self.k = len(arms)
        self.hidden = []
        for i in range(len(first.hidden)):
            w = np.stack([a.hidden[i][0] for a in arms]) * (_ONE if i == 0 else 1.0)
            b = np.stack([a.hidden[i][1] for a in arms])[:, None, :]
            self.hidden.append((np.ascontiguousarray(w), b))
        self.out_w = np.stack([a.out[0] for a in arms]) * (_ONE if not first.hidden else 1.0)
        bias = np.stack([a.out[1] for a in arms])
        if first.stabiliser is not None:
            self.stab_w = np.stack([a.stabiliser[0] for a in arms]) * _ONE
            bias = bias + np.stack([a.stabiliser[1] for a in arms])
        else:
            self.stab_w = None
        self.out_b = bias[:, None, :]

    def __call__(self, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ctx: [K, n, S] integer latents (float64) -> (mean [K, n], scale [K, n]) for the range coder."""
        h = ctx
        for w, b in self.hidden:
            t = np.matmul(h, w)
            t += b
            t *= 1.0 / (1 << ARM_ACT_BITS)
            np.floor(t, out=t)
            np.maximum(t, 0.0, out=t)
            np.minimum(t, HIDDEN_LIMIT, out=t)
            h = t
        o = np.matmul(h, self.out_w)
        if self.stab_w is not None:
            o += np.matmul(ctx, self.stab_w)
        o += self.out_b
        o *= 1.0 / (1 << ARM_ACT_BITS)
        np.floor(o, out=o)
        mu = o[..., 0]
        np.maximum(mu, MU_MIN_Q8, out=mu)
        np.minimum(mu, MU_MAX_Q8, out=mu)
        mean = mu * (1.0 / _ONE)
        ls = o[..., 1]
        ls += _SCALE_INDEX_SHIFT
        np.maximum(ls, 0.0, out=ls)
        np.minimum(ls, _SCALE_INDEX_MAX, out=ls)
        return mean, SCALE_TABLE[ls.astype(np.intp)]
