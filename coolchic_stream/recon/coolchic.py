"""Exact (fixed-point) Cool-chic decoding: integer latents + quantized NN -> Q16 outputs.

Same network as ``nn.coolchic`` but every intermediate is a Q16 integer, and
each layer rescales with a rounding shift, so encoder and decoder agree to the
bit on any machine::

    ŷ ints ─► Q16 ─► upsampling (int kernels, >>s) ─► synthesis (int convs, +bias, >>s) ─► [n_out, h0, w0] Q16
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..architecture import CoolChicEncoderParameter
from ..entropy.nn_weights import QuantizedModule
from ..nn.upsampling import filter_1d, symmetric_kernel, upsample2x_1d
from .fixed import FRAC, round_shift, scale_integers


def _t(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def upsample_exact(param: CoolChicEncoderParameter, module: QuantizedModule, grids: list[Tensor]) -> Tensor:
    """grids: finest first, [1, 1, h, w] Q16 -> [1, n_grids, h0, w0] Q16."""
    s = -module.weight_log2_step
    n_stages = param.n_grids - 1
    tconv = [_t(w) for w in module.weights[:n_stages]]
    pre = [_t(w) for w in module.weights[n_stages:]]
    x = grids[-1][0].unsqueeze(1)
    for i in range(n_stages - 1, -1, -1):
        k = symmetric_kernel(tconv[i], odd=False)
        x = round_shift(upsample2x_1d(x, k, dim=3), s)
        x = round_shift(upsample2x_1d(x, k, dim=2), s)
        h, w = grids[i].shape[-2:]
        x = x[..., :h, :w]
        g = grids[i][0].unsqueeze(1)
        p = symmetric_kernel(pre[i], odd=True)
        g = g + round_shift(filter_1d(round_shift(filter_1d(g, p, dim=3), s), p, dim=2), s)
        x = torch.cat([g, x], dim=0)
    return x.transpose(0, 1)


def _conv(x: Tensor, weight: Tensor, bias_q: Tensor, s: int) -> Tensor:
    """Same-size conv (replicate padding) + bias, then rounding shift; x: [1, C, h, w].

    Computed as one float64 matrix product (1x1: W·X; kxk: W·im2col(X)), which BLAS runs far
    faster than float64 conv2d. Every product and partial sum is an integer below 2^53, so any
    summation order gives the integers of the plain convolution.
    """
    c_out, c_in, k, _ = weight.shape
    _, _, h, w = x.shape
    if s <= 0:
        offset = bias_q
    else:  # round_shift's half-step rides in the bias: one pass less over the output
        offset = bias_q + float(1 << (s - 1))
    if k == 1:
        y = torch.addmm(offset.view(-1, 1), weight.reshape(c_out, c_in), x.reshape(c_in, h * w))
    else:
        p = (k - 1) // 2
        xp = F.pad(x, (p, p, p, p), mode="replicate")[0]
        cols = torch.empty(c_in, k, k, h, w, dtype=x.dtype)
        for dy in range(k):
            for dx in range(k):
                cols[:, dy, dx] = xp[:, dy : dy + h, dx : dx + w]
        y = torch.addmm(offset.view(-1, 1), weight.reshape(c_out, c_in * k * k), cols.view(c_in * k * k, h * w))
    y = y.view(1, c_out, h, w)
    if s <= 0:
        return round_shift(y, s)
    return y.mul_(1.0 / (1 << s)).floor_()


def synthesize_exact(param: CoolChicEncoderParameter, module: QuantizedModule, features: Tensor) -> Tensor:
    """features: [1, C, h, w] Q16 -> [1, n_output, h, w] Q16."""
    s = -module.weight_log2_step
    # A bias b*2^sb lands in the accumulator's Q(16+s) scale.
    bias_shift = FRAC + s + module.bias_log2_step
    weights = [_t(w) for w in module.weights]
    biases = [scale_integers(_t(b), bias_shift) for b in module.biases]
    inputs = x = features
    for i, layer in enumerate(param.layers_synthesis):
        y = _conv(x, weights[i], biases[i], s)
        if layer.residual:
            y = y + x
        x = torch.clamp(y, min=0.0) if layer.relu else y
    if param.synthesis_stabiliser:
        x = x + _conv(inputs, weights[-1], biases[-1], s)
    return x


def decode_coolchic(
    param: CoolChicEncoderParameter, modules: dict[str, QuantizedModule], latents: list[np.ndarray]
) -> Tensor:
    """Integer latents (finest first) -> [n_output, h0, w0] Q16 float64 tensor."""
    grids = [_t(g).view(1, 1, *g.shape) * float(1 << FRAC) for g in latents]
    features = upsample_exact(param, modules["upsampling"], grids)
    return synthesize_exact(param, modules["synthesis"], features)[0]
