"""Auto-regressive probability model (ARM): causal context -> Laplace (mu, scale) per latent.

One small MLP is shared by all latent grids of a Cool-chic; each latent's
context is made of its already-decoded neighbours in the same grid, taken
from a 9x9 causal window in Cool-chic's priority order::

    context (S neighbours) ─► [Linear D→D + x, ReLU] × n_hidden ─► Linear D→2 ─┬─► (mu, log scale)
                          └──────────────── stabiliser: Linear D→2 ────────────┘
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..architecture import ArmParameter

# Causal neighbours as (dy, dx) in decreasing usefulness; an ARM with context S
# uses the first S of them.
PRIORITY_OFFSETS: tuple[tuple[int, int], ...] = (
    (0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0),
    (-3, 0), (0, -3), (-1, -2), (-2, 1),
    (-2, -1), (-1, 2), (-2, -2), (-1, -3),
    (-2, 2), (-3, 1), (0, -4), (-1, 3), (-2, -3), (-2, 3),
)  # fmt: skip
MAX_CONTEXT = len(PRIORITY_OFFSETS)
CONTEXT_PAD = 4  # the 9x9 window reaches 4 samples away
LOG_SCALE_SHIFT = 4.0
LOG_SCALE_MIN = -5.0
LOG_SCALE_MAX = 5.0


def context_offsets(context_size: int) -> tuple[tuple[int, int], ...]:
    return PRIORITY_OFFSETS[:context_size]


def wavefront_lag(context_size: int) -> int:
    """Smallest row lag L such that a latent's context is decoded before step x + L*y.

    A neighbour (dy<0, dx) precedes (y, x) iff dx < L*|dy|; all latents sharing
    a step are then mutually independent and decode as one batch.
    """
    lag = 1
    for dy, dx in context_offsets(context_size):
        if dy < 0:
            lag = max(lag, dx // -dy + 1)
    return lag


def gather_context(grid: Tensor, context_size: int) -> Tensor:
    """All causal contexts of one grid.

    grid: [1, 1, h, w] -> [h*w, S] (zero outside the grid), raster order.
    """
    h, w = grid.shape[-2:]
    padded = F.pad(grid, (CONTEXT_PAD,) * 4)
    columns = [
        padded[0, 0, CONTEXT_PAD + dy : CONTEXT_PAD + dy + h, CONTEXT_PAD + dx : CONTEXT_PAD + dx + w].reshape(-1)
        for dy, dx in context_offsets(context_size)
    ]
    return torch.stack(columns, dim=1)


def _output_init(layer: nn.Linear) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.randn_like(layer.weight) / layer.out_features**4)
        layer.bias.zero_()


class Arm(nn.Module):
    """Float ARM used for training; the exact integer twin lives in entropy.arm_int."""

    def __init__(self, param: ArmParameter) -> None:
        super().__init__()
        self.param = param
        d = param.context_size
        self.hidden = nn.ModuleList(nn.Linear(d, d) for _ in range(param.n_hidden_layers))
        self.out = nn.Linear(d, 2)
        self.stabiliser = nn.Linear(d, 2) if param.stabiliser else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.hidden:
            nn.init.zeros_(layer.weight)  # residual layers start as identity
            nn.init.zeros_(layer.bias)
        _output_init(self.out)
        if self.stabiliser is not None:
            _output_init(self.stabiliser)

    def forward(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """context: [N, S] -> mu [N], scale [N]."""
        h = context
        for layer in self.hidden:
            h = torch.relu(layer(h) + h)
        out = self.out(h)
        if self.stabiliser is not None:
            out = out + self.stabiliser(context)
        mu = out[:, 0]
        log_scale = torch.clamp(out[:, 1] - LOG_SCALE_SHIFT, LOG_SCALE_MIN, LOG_SCALE_MAX)
        return mu, torch.exp(log_scale)

    def macs_per_latent(self) -> int:
        d = self.param.context_size
        return d * d * self.param.n_hidden_layers + 2 * d * (2 if self.stabiliser is not None else 1)


def laplace_bits(values: Tensor, mu: Tensor, scale: Tensor) -> Tensor:
    """Bits to code integer-valued ``values`` with a discretised Laplace, floored at 2^-16."""

    def cdf(x: Tensor) -> Tensor:
        z = x - mu
        return 0.5 - 0.5 * torch.sign(z) * torch.expm1(-torch.abs(z) / scale)

    p = torch.clamp(cdf(values + 0.5) - cdf(values - 0.5), min=2.0**-16)
    return -torch.log2(p)
