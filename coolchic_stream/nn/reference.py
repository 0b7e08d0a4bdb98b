"""Straightforward (unoptimised) forward of a CoolChicEncoder, kept as the speed baseline.

Same math and the very same parameters as ``CoolChicEncoder.forward``, written
the obvious way so that the training benchmark (``tools/bench_train.py``) and
the tests (``tests/nn/test_training_paths.py``) can check the fast path
against it::

    per grid: × gain ─► quantize ─► F.unfold square window ─► pick the S causal taps ─► ARM ─► Laplace bits
    upsampling: non-separable 2-D transposed conv (outer-product kernel), 2-D pre-concat conv
    synthesis: replicate-pad + conv per layer

Noise is drawn once for all latents (finest grid first, raster order), like
the fast path, so both consume the random generator identically.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..spec import CONTEXT_PAD, LOG_SCALE_MAX, LOG_SCALE_MIN, LOG_SCALE_SHIFT, context_offsets, tconv_geometry
from .coolchic import EVAL_QUANTIZER, CoolChicEncoder, CoolChicOutput, QuantizerSettings
from .quantizer import NoiseType, QuantizerMode
from .upsampling import symmetric_kernel

WINDOW = 2 * CONTEXT_PAD + 1  # side of the square window that holds every ARM context


def reference_softround(x: Tensor, t: float) -> Tensor:
    floor = torch.floor(x)
    return floor + 0.5 * torch.tanh((x - floor - 0.5) / t) / math.tanh(1.0 / (2.0 * t)) + 0.5


def reference_noise(n: int, like: Tensor, noise: NoiseType, parameter: float) -> Tensor:
    if noise == NoiseType.NONE:
        return torch.zeros(n, dtype=like.dtype, device=like.device)
    if noise == NoiseType.GAUSSIAN:
        return torch.randn(n, dtype=like.dtype, device=like.device) * parameter
    a = max(float(parameter), 1.0)
    b = (2.0**a * (a - 1.0) + 1.0) / a
    u = torch.rand(n, dtype=like.dtype, device=like.device).clamp(1e-6, 1.0 - 1e-6)
    return (1.0 - (1.0 - u) ** (1.0 / b)) ** (1.0 / a) - 0.5


def reference_quantize(x: Tensor, q: QuantizerSettings, noise: Tensor) -> Tensor:
    if q.mode == QuantizerMode.HARDROUND:
        return torch.round(x).detach()
    if q.mode == QuantizerMode.STE:
        soft = reference_softround(x, q.temperature)
        return soft + (torch.round(x) - soft).detach()
    if q.mode == QuantizerMode.NOISE:
        return x + noise
    return reference_softround(reference_softround(x, q.temperature) + noise, q.temperature)


def reference_context(grid: Tensor, context_size: int) -> Tensor:
    """[1, 1, h, w] -> [h*w, S] via F.unfold over the zero-padded WINDOW x WINDOW window and a mask."""
    r = WINDOW // 2
    windows = F.unfold(F.pad(grid, (r, r, r, r)), WINDOW)[0]  # [WINDOW², h*w]
    mask = torch.zeros(WINDOW * WINDOW, dtype=torch.bool)
    order = []
    for dy, dx in context_offsets(context_size):
        mask[(dy + r) * WINDOW + dx + r] = True
        order.append((dy + r) * WINDOW + dx + r)
    causal = windows * mask.to(windows.device, windows.dtype).unsqueeze(1)
    return causal[order].t()  # priority order


def reference_arm(cc: CoolChicEncoder, context: Tensor) -> tuple[Tensor, Tensor]:
    arm = cc.arm
    h = context
    for layer in arm.hidden:
        h = torch.relu(F.linear(h, layer.weight, layer.bias) + h)
    out = F.linear(h, arm.out.weight, arm.out.bias)
    if arm.stabiliser is not None:
        out = out + F.linear(context, arm.stabiliser.weight, arm.stabiliser.bias)
    mu = out[:, 0]
    scale = torch.exp(torch.clamp(out[:, 1] - LOG_SCALE_SHIFT, LOG_SCALE_MIN, LOG_SCALE_MAX))
    return mu, scale


def reference_rate(values: Tensor, mu: Tensor, scale: Tensor) -> Tensor:
    def cdf(x: Tensor) -> Tensor:
        z = x - mu
        return 0.5 - 0.5 * torch.sign(z) * torch.expm1(-torch.abs(z) / scale)

    p = torch.clamp(cdf(values + 0.5) - cdf(values - 0.5), min=2.0**-16)
    return -torch.log2(p)


def reference_upsampling(cc: CoolChicEncoder, grids: list[Tensor]) -> Tensor:
    ups = cc.upsampling
    x = grids[-1]  # [1, C, h, w]
    for i in range(len(grids) - 2, -1, -1):
        k1 = symmetric_kernel(ups.tconv[i], odd=False)
        k = k1.numel()
        pad, crop = tconv_geometry(k)
        kernel = torch.outer(k1, k1).view(1, 1, k, k)
        channels = []
        for c in range(x.shape[1]):  # every channel with the same 2-D kernel
            xc = F.pad(x[:, c : c + 1], (pad, pad, pad, pad), mode="replicate")
            y = F.conv_transpose2d(xc, kernel, stride=2)
            channels.append(y[..., crop : y.shape[-2] - crop, crop : y.shape[-1] - crop])
        h, w = grids[i].shape[-2:]
        x = torch.cat(channels, dim=1)[..., :h, :w]
        p1 = symmetric_kernel(ups.preconcat[i], odd=True)
        kp = p1.numel()
        r = (kp - 1) // 2
        g = grids[i]
        g = g + F.conv2d(F.pad(g, (r, r, r, r), mode="replicate"), torch.outer(p1, p1).view(1, 1, kp, kp))
        x = torch.cat([g, x], dim=1)
    return x


def reference_synthesis(cc: CoolChicEncoder, x: Tensor) -> Tensor:
    syn = cc.synthesis
    inputs = x
    for layer, conv in zip(syn.layers_spec, syn.convs):
        p = (layer.kernel_size - 1) // 2
        y = F.conv2d(F.pad(x, (p, p, p, p), mode="replicate") if p else x, conv.weight, conv.bias)
        if layer.residual:
            y = y + x
        x = torch.relu(y) if layer.relu else y
    if syn.stabiliser is not None:
        x = x + F.conv2d(inputs, syn.stabiliser.weight, syn.stabiliser.bias)
    return x


def reference_forward(cc: CoolChicEncoder, quantizer: QuantizerSettings = EVAL_QUANTIZER) -> CoolChicOutput:
    """Straightforward twin of ``cc(quantizer)``: per-grid loops, unfold contexts, 2-D upsampling."""
    gain = cc.param.encoder_gain
    n = cc.n_latents()
    noise = reference_noise(n, cc.latents[0], quantizer.noise, quantizer.noise_parameter) if quantizer.mode in (
        QuantizerMode.SOFTROUND, QuantizerMode.NOISE) else None  # fmt: skip
    grids, rates, start = [], [], 0
    for y in cc.latents:
        m = y.numel()
        nz = noise[start : start + m].view_as(y) if noise is not None else None
        start += m
        q = reference_quantize(y * gain, quantizer, nz)
        mu, scale = reference_arm(cc, reference_context(q, cc.param.arm.context_size))
        rates.append(reference_rate(q.reshape(-1), mu, scale))
        grids.append(q)
    raw = reference_synthesis(cc, reference_upsampling(cc, grids))
    return CoolChicOutput(raw=raw, rate=torch.cat(rates))
