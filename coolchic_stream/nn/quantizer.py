"""Latent quantization for training (soft-round, noise, STE) and for coding (hard round).

Training needs a differentiable proxy of ``round``; the bitstream always uses
hard rounding, clamped to the range coder's support.
"""

from __future__ import annotations

import math
from enum import Enum

import torch
from torch import Tensor

from ..spec import LATENT_MAX, LATENT_MIN


class QuantizerMode(str, Enum):
    SOFTROUND = "softround"  # softround(softround(x) + noise): C3's recipe
    NOISE = "noise"  # x + noise
    STE = "ste"  # round forward, soft-round gradient
    HARDROUND = "hardround"  # round, no gradient to the latents


class NoiseType(str, Enum):
    GAUSSIAN = "gaussian"
    KUMARASWAMY = "kumaraswamy"
    NONE = "none"


def softround(x: Tensor, temperature: float) -> Tensor:
    """Differentiable rounding (Agustsson & Theis): identity as t -> inf, round as t -> 0."""
    floor = torch.floor(x)
    frac = x - floor - 0.5
    return floor + 0.5 * torch.tanh(frac / temperature) / math.tanh(1.0 / (2.0 * temperature)) + 0.5


class _SoftroundNoise(torch.autograd.Function):
    """softround(softround(x, t) + noise, t) with a hand-written backward (training hot path).

    d softround(x)/dx = (1 - tanh^2((frac(x) - 1/2)/t)) / (2 t tanh(1/2t)); floor has no gradient.
    """

    @staticmethod
    def forward(ctx, x: Tensor, noise: Tensor, temperature: float) -> Tensor:  # type: ignore[override]
        c = 0.5 / math.tanh(1.0 / (2.0 * temperature))
        floor = torch.floor(x)
        t1 = torch.tanh((x - floor).sub_(0.5).div_(temperature))
        u = t1.mul(c).add_(floor).add_(0.5).add_(noise)
        floor = torch.floor(u)
        t2 = torch.tanh((u - floor).sub_(0.5).div_(temperature))
        ctx.save_for_backward(t1, t2)
        ctx.k = c / temperature
        return t2.mul(c).add_(floor).add_(0.5)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        t1, t2 = ctx.saved_tensors
        d = (1.0 - t1 * t1).mul_(1.0 - t2 * t2).mul_(ctx.k * ctx.k)
        return grad * d, None, None


def sample_noise(like: Tensor, noise_type: NoiseType, parameter: float) -> Tensor:
    """Additive training noise of zero mode.

    gaussian: std = parameter. kumaraswamy: shape a = parameter, b chosen so the
    mode sits at 0.5, shifted to [-0.5, 0.5]; a = 1 is uniform noise.
    """
    if noise_type == NoiseType.NONE:
        return torch.zeros_like(like)
    if noise_type == NoiseType.GAUSSIAN:
        return torch.randn_like(like) * parameter
    a = max(float(parameter), 1.0)
    b = (2.0**a * (a - 1.0) + 1.0) / a
    u = torch.rand_like(like).clamp(1e-6, 1.0 - 1e-6)
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a) - 0.5


def quantize(
    x: Tensor,
    mode: QuantizerMode,
    noise_type: NoiseType = NoiseType.GAUSSIAN,
    noise_parameter: float = 0.2,
    temperature: float = 0.3,
) -> Tensor:
    """Quantize scaled latents for a training or evaluation forward."""
    if mode == QuantizerMode.HARDROUND:
        return torch.round(x).detach()
    if mode == QuantizerMode.STE:
        soft = softround(x, temperature)
        return soft + (torch.round(x) - soft).detach()
    noise = sample_noise(x, noise_type, noise_parameter)
    if mode == QuantizerMode.NOISE:
        return x + noise
    return _SoftroundNoise.apply(x, noise, float(temperature))


def hard_latents(x: Tensor) -> Tensor:
    """Integer latents exactly as the bitstream carries them (rounded and clamped)."""
    return torch.round(x).clamp(LATENT_MIN, LATENT_MAX)
