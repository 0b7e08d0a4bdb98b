"""Exact (fixed-point) Cool-chic decoding: integer latents + quantized NN -> Q16 outputs.

Same network as ``nn.coolchic`` but every intermediate is a Q16 integer, and
each layer rescales with a rounding shift, so encoder and decoder agree to the
bit on any machine::

    ŷ ints ─► Q16 ─► upsampling (int kernels, >>s) ─► synthesis (int convs, +bias, >>s) ─► [n_out, h0, w0] Q16
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..architecture import CoolChicEncoderParameter
from ..entropy.nn_weights import QuantizedModule
from ..spec import phase_taps, symmetric_index
from .fixed import FRAC, round_shift, scale_integers


def _t(a: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def _symmetric(half: np.ndarray, odd: bool) -> Tensor:
    """The full symmetric kernel (``spec.symmetric_index``) of transmitted free taps."""
    return _t(half[np.array(symmetric_index(half.size, odd))])


@lru_cache(maxsize=16)
def _phase_index(m: int) -> tuple[np.ndarray, int]:
    """[2, 2r+1] index into [0, *free taps] of the even/odd phase correlation taps (0: no tap)."""
    r = m // 2
    index = np.zeros((2, 2 * r + 1), dtype=np.int64)
    for phase, taps in enumerate(phase_taps(m)):
        for offset, j in taps:
            index[phase, offset + r] = j + 1
    return index, r


def _phase_kernels(half: Tensor) -> tuple[Tensor, int]:
    """[2, 2r+1] correlation taps of the even and odd outputs of a 2x upsampling with free taps ``half``."""
    index, r = _phase_index(half.numel())
    padded = torch.cat([half.new_zeros(1), half])
    return padded[torch.from_numpy(index)], r


def _rounding(s: int, channels: int) -> Tensor | None:
    """conv2d bias carrying round_shift's half step (None when there is nothing to round)."""
    return torch.full((channels,), float(1 << (s - 1)), dtype=torch.float64) if s > 0 else None


def _shift_(y: Tensor, s: int) -> Tensor:
    """In place: y / 2^s floored (its half step already added as a conv bias), or y * 2^-s."""
    if s == 0:
        return y
    return y.mul_(1.0 / (1 << s)).floor_() if s > 0 else y.mul_(float(1 << -s))


def _upsample2x(x: Tensor, half: Tensor, dim: int, s: int = 0) -> Tensor:
    """``round_shift`` of the float model's ``upsample2x_1d`` (the even symmetric kernel of ``half``,
    a stride-2 transposed conv) by ``s``, as two phase correlations.

    One conv2d with an output channel per phase, then the phases interleave: 2-3x faster than
    float64 conv_transpose2d, and the same integers (each output is the same sum of products).
    x: [C, 1, h, w] -> doubled along ``dim`` (2: rows, 3: columns).
    """
    kernels, r = _phase_kernels(half)
    c, _, h, w = x.shape
    if dim == 3:
        y = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), kernels.view(2, 1, 1, -1), _rounding(s, 2))
        return _shift_(y, s).permute(0, 2, 3, 1).reshape(c, 1, h, 2 * w)
    y = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), kernels.view(2, 1, -1, 1), _rounding(s, 2))
    return _shift_(y, s).permute(0, 2, 1, 3).reshape(c, 1, 2 * h, w)


def _filter(x: Tensor, kernel: Tensor, dim: int, s: int) -> Tensor:
    """``round_shift`` of the float model's same-size ``filter_1d`` by ``s``, the half step as conv bias."""
    p = (kernel.numel() - 1) // 2
    if dim == 3:
        y = F.conv2d(F.pad(x, (p, p, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1), _rounding(s, 1))
    else:
        y = F.conv2d(F.pad(x, (0, 0, p, p), mode="replicate"), kernel.view(1, 1, -1, 1), _rounding(s, 1))
    return _shift_(y, s)


def upsample_exact(param: CoolChicEncoderParameter, module: QuantizedModule, grids: list[Tensor]) -> Tensor:
    """grids: finest first, [1, 1, h, w] Q16 -> [1, n_grids, h0, w0] Q16."""
    s = -module.weight_log2_step
    n_stages = param.n_grids - 1
    tconv = [_t(w) for w in module.weights[:n_stages]]
    pre = [_symmetric(w, odd=True) for w in module.weights[n_stages:]]
    x = grids[-1][0].unsqueeze(1)
    for i in range(n_stages - 1, -1, -1):
        x = _upsample2x(_upsample2x(x, tconv[i], 3, s), tconv[i], 2, s)
        h, w = grids[i].shape[-2:]
        x = x[..., :h, :w]
        g = grids[i][0].unsqueeze(1)
        g = g + _filter(_filter(g, pre[i], 3, s), pre[i], 2, s)
        x = torch.cat([g, x], dim=0)
    return x.transpose(0, 1)


def _conv(x: Tensor, weight: Tensor, bias_q: Tensor, s: int) -> Tensor:
    """Same-size conv (replicate padding) + bias, then rounding shift; x: [1, C, h, w].

    Computed with float64 matrix products, which BLAS runs far faster than float64 conv2d.
    1x1: W·X. kxk: the padded input flattened row by row, so that the input under tap (dy, dx)
    of every output is one contiguous slice shifted by dy·(w+2p)+dx; the k² products W_t·slice
    accumulate in place (no im2col buffer: filling a fresh one cost more than the products) and
    the 2p columns between rows are dropped at the end. Every product and partial sum is an
    integer below 2^53, so any summation order gives the integers of the plain convolution.
    """
    c_out, c_in, k, _ = weight.shape
    _, _, h, w = x.shape
    if s <= 0:
        offset = bias_q
    else:  # round_shift's half-step rides in the bias: one pass less over the output
        offset = bias_q + float(1 << (s - 1))
    if k == 1:
        y = torch.addmm(offset.view(-1, 1), weight.reshape(c_out, c_in), x.reshape(c_in, h * w))
        return _shift_(y.view(1, c_out, h, w), s)
    p = (k - 1) // 2
    row = w + 2 * p
    flat = F.pad(x, (p, p, p, p), mode="replicate").reshape(c_in, -1)
    span = (h - 1) * row + w  # first to last output position, in padded-row coordinates
    y = torch.addmm(offset.view(-1, 1), weight[:, :, 0, 0], flat[:, :span])
    for dy in range(k):
        for dx in range(k):
            if dy or dx:
                start = dy * row + dx
                y.addmm_(weight[:, :, dy, dx], flat[:, start : start + span])
    y = y.as_strided((1, c_out, h, w), (c_out * span, span, row, 1))
    if s <= 0:
        return round_shift(y, s).contiguous()
    return torch.floor(y * (1.0 / (1 << s)))


def synthesize_exact(param: CoolChicEncoderParameter, module: QuantizedModule, features: Tensor) -> Tensor:
    """features: [1, C, h, w] Q16 -> [1, n_output, h, w] Q16."""
    s = -module.weight_log2_step
    # A bias b*2^sb lands in the accumulator's Q(16+s) scale.
    bias_shift = FRAC + s + module.bias_log2_step
    weights = [_t(w) for w in module.weights]
    biases = [scale_integers(_t(b), bias_shift) for b in module.biases]
    inputs = x = features
    for i, layer in enumerate(param.layers_synthesis):
        y = _conv(x, weights[i], biases[i], s)  # a fresh tensor: the residual and ReLU go in place
        if layer.residual:
            y.add_(x)
        x = y.clamp_(min=0.0) if layer.relu else y
    if param.synthesis_stabiliser:
        stabiliser = _conv(inputs, weights[-1], biases[-1], s)
        x = x.add_(stabiliser) if x is not inputs else x + stabiliser  # never add into the features
    return x


def decode_coolchic(
    param: CoolChicEncoderParameter, modules: dict[str, QuantizedModule], latents: list[np.ndarray]
) -> Tensor:
    """Integer latents (finest first) -> [n_output, h0, w0] Q16 float64 tensor."""
    grids = [_t(g).view(1, 1, *g.shape) * float(1 << FRAC) for g in latents]
    features = upsample_exact(param, modules["upsampling"], grids)
    return synthesize_exact(param, modules["synthesis"], features)[0]
