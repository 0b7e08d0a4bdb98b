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

ACT_BITS = 8
HIDDEN_LIMIT = float(1 << 20)  # |activation| <= 4096 in real units
WEIGHT_LIMIT = 255.0  # |weight| bound that keeps every product below 2^53
MU_MIN_Q8 = -64 * 256
MU_MAX_Q8 = 64 * 256 - 1
LOG_SCALE_MIN_Q8 = -5 * 256
LOG_SCALE_MAX_Q8 = 5 * 256
LOG_SCALE_SHIFT_Q8 = 4 * 256
WEIGHT_LOG2_STEPS = tuple(range(-8, 1))
BIAS_LOG2_STEPS = tuple(range(-16, 1))

# scale = exp(l / 256) rounded to 20 fractional bits, so that any libm gives the same table.
SCALE_TABLE = np.round(np.exp(np.arange(LOG_SCALE_MIN_Q8, LOG_SCALE_MAX_Q8 + 1) / 256.0) * 2.0**20) / 2.0**20


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
        w_scale = float(1 << (ACT_BITS + weight_log2_step))
        b_scale = float(1 << (2 * ACT_BITS + bias_log2_step))
        layers = []
        for w, b in zip(weights, biases):
            wq = w.astype(np.float64).T * w_scale
            if np.abs(wq).max(initial=0) > WEIGHT_LIMIT * 256:
                raise CorruptDataError("ARM weight exceeds the fixed-point range", "the frame payload is corrupted")
            layers.append((wq, b.astype(np.float64) * b_scale))
        hidden = []
        for wq, bq in layers[:n_hidden]:
            hidden.append((wq + np.eye(wq.shape[0]) * 256.0, bq))  # residual folded into the matrix
        stabiliser = layers[n_hidden + 1] if len(layers) > n_hidden + 1 else None
        return IntegerArm(tuple(hidden), layers[n_hidden], stabiliser)

    def __call__(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """context: [N, S] integer latents (float64) -> (mu_q8 [N], log_scale_q8 [N]) integers."""
        x = context * 256.0
        h = x
        for w, b in self.hidden:
            h = np.clip(_floor_shift(np.maximum(h @ w + b, 0.0), ACT_BITS), 0.0, HIDDEN_LIMIT)
        o = h @ self.out[0] + self.out[1]
        if self.stabiliser is not None:
            o = o + x @ self.stabiliser[0] + self.stabiliser[1]
        o = _floor_shift(o, ACT_BITS)
        mu = np.clip(o[:, 0], MU_MIN_Q8, MU_MAX_Q8)
        log_scale = np.clip(o[:, 1] - LOG_SCALE_SHIFT_Q8, LOG_SCALE_MIN_Q8, LOG_SCALE_MAX_Q8)
        return mu, log_scale


def laplace_parameters(mu_q8: np.ndarray, log_scale_q8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Table lookup: fixed-point (mu, log scale) -> float64 (mean, scale) for the range coder."""
    return mu_q8 * (1.0 / 256.0), SCALE_TABLE[(log_scale_q8 - LOG_SCALE_MIN_Q8).astype(np.int64)]
