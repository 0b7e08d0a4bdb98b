"""Auto-regressive probability model (ARM): causal context -> Laplace (mu, scale) per latent.

One small MLP is shared by all latent grids of a Cool-chic; each latent's
context is made of its already-decoded neighbours in the same grid, taken
in Cool-chic's priority order (``spec.PRIORITY_OFFSETS``)::

    context (S neighbours) ─► [Linear D→D + x, ReLU] × n_hidden ─► Linear D→2 ─┬─► (mu, log scale)
                          └──────────────── stabiliser: Linear D→2 ────────────┘
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..architecture import ArmParameter
from ..spec import CONTEXT_PAD, LOG_SCALE_MAX, LOG_SCALE_MIN, LOG_SCALE_SHIFT, context_offsets


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


class _GatherContexts(torch.autograd.Function):
    """Causal contexts of all grids at once, column-major: [N] latents -> [S, N].

    Forward: one zero-padded copy per grid and one strided copy per neighbour;
    backward: the transpose, S in-place strided adds into one padded buffer
    (autograd through S slices would zero-fill and add S full padded grids).
    """

    @staticmethod
    def forward(ctx, flat: Tensor, sizes: tuple[tuple[int, int], ...], context_size: int) -> Tensor:  # type: ignore[override]
        offsets = context_offsets(context_size)
        out = flat.new_empty(context_size, flat.numel())
        start = 0
        for h, w in sizes:
            n = h * w
            padded = F.pad(flat[start : start + n].view(1, h, w), (CONTEXT_PAD,) * 4)[0]
            cols = out[:, start : start + n].view(context_size, h, w)
            for s, (dy, dx) in enumerate(offsets):
                cols[s].copy_(padded[CONTEXT_PAD + dy : CONTEXT_PAD + dy + h, CONTEXT_PAD + dx : CONTEXT_PAD + dx + w])
            start += n
        ctx.sizes, ctx.context_size = sizes, context_size
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        offsets = context_offsets(ctx.context_size)
        grad_flat = grad.new_empty(grad.shape[1])
        start = 0
        for h, w in ctx.sizes:
            n = h * w
            acc = grad.new_zeros(h + 2 * CONTEXT_PAD, w + 2 * CONTEXT_PAD)
            cols = grad[:, start : start + n].reshape(ctx.context_size, h, w)
            for s, (dy, dx) in enumerate(offsets):
                acc[CONTEXT_PAD + dy : CONTEXT_PAD + dy + h, CONTEXT_PAD + dx : CONTEXT_PAD + dx + w].add_(cols[s])
            grad_flat[start : start + n].view(h, w).copy_(acc[CONTEXT_PAD : CONTEXT_PAD + h, CONTEXT_PAD : CONTEXT_PAD + w])
            start += n
        return grad_flat, None, None


def gather_contexts(flat: Tensor, sizes: list[tuple[int, int]], context_size: int) -> Tensor:
    """Causal contexts of every latent of grids stored back to back in ``flat``: [S, N] (column-major).

    Column n equals row n of ``torch.cat([gather_context(g, S) for g in grids])``.
    """
    return _GatherContexts.apply(flat, tuple(tuple(s) for s in sizes), context_size)


POINTWISE_CHUNK = 8192  # columns per chunk: the activations of a chunk stay in L2


class _PointwiseChain(torch.autograd.Function):
    """y = L_n(...L_1(x)) (+ S x + s) over the columns of x [C, N], L_i = W_i . + b_i (+ ReLU).

    Runs chunk by chunk and saves only x: the backward recomputes each chunk's
    activations while they are in cache, instead of writing, re-reading and
    masking full [width, N] activations (the bulk of a training iteration).
    """

    @staticmethod
    def forward(ctx, x: Tensor, relus: tuple[bool, ...], chunk: int, *params: Tensor) -> Tensor:  # type: ignore[override]
        n_layers = len(relus)
        weights, biases = params[0 : 2 * n_layers : 2], params[1 : 2 * n_layers : 2]
        skip = params[2 * n_layers :]
        n = x.shape[1]
        y = x.new_empty(weights[-1].shape[0], n)
        for c0 in range(0, n, chunk):
            xc = x[:, c0 : c0 + chunk]
            h = xc
            for w, b, relu in zip(weights, biases, relus):
                h = torch.addmm(b.unsqueeze(1), w, h)
                if relu:
                    h.relu_()
            if skip:
                h = torch.addmm(h, skip[0], xc).add_(skip[1].unsqueeze(1))
            y[:, c0 : c0 + chunk] = h
        ctx.relus, ctx.chunk = relus, chunk
        ctx.save_for_backward(x, *params)
        return y

    @staticmethod
    def backward(ctx, gy: Tensor):  # type: ignore[override]
        x, *params = ctx.saved_tensors
        relus, chunk = ctx.relus, ctx.chunk
        n_layers = len(relus)
        weights, biases = params[0 : 2 * n_layers : 2], params[1 : 2 * n_layers : 2]
        skip = params[2 * n_layers :]
        need_x = ctx.needs_input_grad[0]
        gx = torch.empty_like(x) if need_x else None
        gw = [torch.zeros_like(w) for w in weights]
        gb = [b.new_zeros(b.shape) for b in biases]
        gy = gy.contiguous()
        for c0 in range(0, x.shape[1], chunk):
            xc = x[:, c0 : c0 + chunk]
            acts = [xc]
            h = xc
            for w, b, relu in zip(weights, biases, relus):
                h = torch.addmm(b.unsqueeze(1), w, h)
                if relu:
                    h.relu_()
                acts.append(h)
            g = gy[:, c0 : c0 + chunk]
            gxc = torch.mm(skip[0].t(), g) if (skip and need_x) else None
            for i in range(n_layers - 1, -1, -1):
                if relus[i]:
                    g = torch.ops.aten.threshold_backward(g, acts[i + 1], 0)  # g * (act > 0), one pass
                gw[i].addmm_(g, acts[i].t())
                gb[i].add_(g.sum(1))
                if i > 0 or need_x:
                    g_in = torch.mm(weights[i].t(), g)
                    g = g_in
            if need_x:
                gx[:, c0 : c0 + chunk] = g if gxc is None else g + gxc
        grads: list[Tensor | None] = []
        for w_, b_ in zip(gw, gb):
            grads += [w_, b_]
        if skip:
            grads += [torch.mm(gy, x.t()), gy.sum(1)]
        return (gx, None, None, *grads)


def pointwise_chain(
    x: Tensor, layers: list[tuple[Tensor, Tensor, bool]], skip: tuple[Tensor, Tensor] | None = None,
    chunk: int | None = None,
) -> Tensor:  # fmt: skip
    """Chunked, recomputing MLP over the columns of x [C, N]; layers = (weight [out, in], bias, relu)."""
    params: list[Tensor] = []
    for w, b, _ in layers:
        params += [w, b]
    if skip is not None:
        params += list(skip)
    if chunk is None:  # CPU: cache-sized chunks; GPU: few large launches
        chunk = POINTWISE_CHUNK if x.device.type == "cpu" else 1 << 18
    return _PointwiseChain.apply(x, tuple(r for _, _, r in layers), chunk, *params)


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

    def forward_columns(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """Same as ``forward`` on column-major contexts: [S, N] -> mu [N], scale [N].

        Each residual layer relu(W h + b + h) runs as one addmm with W + I; the
        output layer and the stabiliser accumulate into one [2, N] tensor.
        """
        eye = torch.eye(context.shape[0], dtype=context.dtype, device=context.device)
        layers = [(layer.weight + eye, layer.bias, True) for layer in self.hidden] + [(self.out.weight, self.out.bias, False)]
        skip = (self.stabiliser.weight, self.stabiliser.bias) if self.stabiliser is not None else None
        out = pointwise_chain(context, layers, skip)
        log_scale = torch.clamp(out[1] - LOG_SCALE_SHIFT, LOG_SCALE_MIN, LOG_SCALE_MAX)
        return out[0], torch.exp(log_scale)

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


_LN2 = 0.6931471805599453
_P_MIN = 2.0**-16


class _LaplaceBits(torch.autograd.Function):
    """``laplace_bits`` with a hand-written backward: a handful of passes instead of ~30 autograd nodes.

    p = F(z + 1/2) - F(z - 1/2), z = v - mu, F(z) = 1/2 - 1/2 sign(z) expm1(-|z|/b);
    dF/dz = e^{-|z|/b} / 2b, dF/db = -z e^{-|z|/b} / 2b^2; rate = -log2(max(p, 2^-16)).
    """

    @staticmethod
    def forward(ctx, values: Tensor, mu: Tensor, scale: Tensor) -> Tensor:  # type: ignore[override]
        z_hi = values - mu + 0.5
        z_lo = z_hi - 1.0
        inv_b = scale.reciprocal()
        e_hi = torch.expm1(-z_hi.abs() * inv_b)
        e_lo = torch.expm1(-z_lo.abs() * inv_b)
        # F(z_hi) - F(z_lo) = 1/2 (sign(z_lo) e_lo - sign(z_hi) e_hi)
        p = (torch.sign(z_lo) * e_lo).sub_(torch.sign(z_hi) * e_hi).mul_(0.5)
        ctx.save_for_backward(z_hi, z_lo, e_hi, e_lo, inv_b, p)
        return torch.clamp(p, min=_P_MIN).log2_().neg_()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        z_hi, z_lo, e_hi, e_lo, inv_b, p = ctx.saved_tensors
        # d rate / d p, zero where the floor is active (as torch.clamp's gradient)
        coef = torch.where(p >= _P_MIN, grad / (p * -_LN2), torch.zeros_like(p))
        x_hi = e_hi.add(1.0)  # exp(-|z|/b)
        x_lo = e_lo.add(1.0)
        half_inv_b = inv_b * 0.5
        g_v = coef * (x_hi - x_lo) * half_inv_b
        g_b = coef * (z_lo * x_lo - z_hi * x_hi) * (half_inv_b * inv_b)
        return g_v, -g_v, g_b


def laplace_bits_fast(values: Tensor, mu: Tensor, scale: Tensor) -> Tensor:
    """Same as ``laplace_bits`` (training path)."""
    return _LaplaceBits.apply(values, mu, scale)
