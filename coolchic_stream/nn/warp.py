"""Differentiable float motion compensation for training: windowed-sinc / bilinear backward warp.

Convention (shared with :mod:`coolchic_stream.recon.warp`): ``pred[y, x] = ref[y + v_y, x + v_x]``,
flow channel 0 = horizontal (x), channel 1 = vertical (y), in pixels; positions outside the frame
clamp to the border. ``sinc8`` uses ``spec.WARP_TAPS`` taps at the integer offsets k from
``floor(position)`` that start at ``spec.WARP_FIRST_TAP``, with coefficients
``cos(pi (s - k) / WARP_TAPS) * sinc(s - k)`` (not normalised), applied horizontally first, then
vertically; ``bilinear`` uses k = 0, 1 with ``(1 - s, s)``.

Speed: a field that is constant on aligned ``MOTION_BLOCK`` blocks (what :func:`upsample_motion`
produces) is filtered block by block with batched matmuls; other blocks fall back to a per-pixel
computation. Both give the same values and exact per-pixel gradients with respect to ``ref`` and ``flow``
(the flow gradient is injected analytically, see :func:`warp`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..spec import FLOW_FRACTION, MOTION_BLOCK, WARP_FIRST_TAP, WARP_TAPS

__all__ = ["warp", "quantize_flow", "flow_to_q64", "upsample_motion"]

Filter = Literal["sinc8", "bilinear"]
# (number of taps, offset of the first tap relative to floor(position))
_FILTERS: dict[str, tuple[int, int]] = {"sinc8": (WARP_TAPS, WARP_FIRST_TAP), "bilinear": (2, 0)}


def _coefficients(s: Tensor, filt: str, deriv: bool) -> tuple[Tensor, Tensor | None]:
    """Taps and (if ``deriv``) their derivative w.r.t. ``s``: (N,) float64 in [0, 1) -> (N, taps)."""
    if filt == "bilinear":
        c = torch.stack([1.0 - s, s], dim=1)
        d = torch.tensor([-1.0, 1.0], dtype=s.dtype, device=s.device).expand_as(c)
        return c, d
    k = torch.arange(WARP_FIRST_TAP, WARP_FIRST_TAP + WARP_TAPS, dtype=s.dtype, device=s.device)
    t = s[:, None] - k  # (N, taps)
    a = math.pi / WARP_TAPS
    win = torch.cos(a * t)
    sinc = torch.sinc(t)
    if not deriv:
        return win * sinc, None
    dwin = -a * torch.sin(a * t)
    small = t.abs() < 1e-4
    t_safe = torch.where(small, torch.ones_like(t), t)
    # d/dt sinc(t) = (cos(pi t) - sinc(t)) / t, ~ -pi^2 t / 3 near 0 (avoids cancellation).
    dsinc = torch.where(small, -(math.pi**2) * t / 3, (torch.cos(math.pi * t) - sinc) / t_safe)
    return win * sinc, dwin * sinc + win * dsinc


def _banded(taps: Tensor, span: int) -> Tensor:
    """(N, T) taps -> (N, span + T - 1, span) matrices with ``M[n, j + t, j] = taps[n, t]``."""
    n, t = taps.shape
    m = taps.new_zeros(n, span + t - 1, span)
    for j in range(span):
        m[:, j : j + t, j] = taps
    return m


class _Source:
    """Reference replicate-padded by ``margin`` and cut into overlapping row segments of ``seg``.

    ``rows[(plane * hp + y) * ws + x]`` holds the ``seg`` samples of padded row ``y`` from column ``x``
    (``x <= wp - seg``); gathering whole segments is
    much faster than gathering samples one at a time. Differentiable w.r.t. ``ref``.
    """

    def __init__(self, ref: Tensor, margin: int, seg: int) -> None:
        self.b, self.c, self.h, self.w = ref.shape
        self.margin = margin
        padded = F.pad(ref, (margin,) * 4, mode="replicate")
        self.hp, self.wp = padded.shape[2:]
        if ref.requires_grad and torch.is_grad_enabled():
            self.ws = self.wp - seg + 1  # segment starts per padded row
            self.rows = padded.unfold(3, seg, 1).reshape(-1, seg)  # copy, with a cheap backward
        else:  # zero-copy overlapping view
            self.ws = self.wp
            flat = padded.contiguous().view(-1)
            self.rows = flat.as_strided((flat.numel() - seg + 1, seg), (1, 1))


def _tiles(src: _Source, filt: str, bi: Tensor, y0: Tensor, x0: Tensor, vx: Tensor, vy: Tensor,
           span: int, need_grad: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Warp N tiles of span x span pixels, each with one (float64, detached) vector.

    bi, y0, x0: (N,) int64 batch index and tile origin; vx, vy: (N,) float64 pixels.
    Returns the tiles (N, span, C, span) and, if ``need_grad``, d tile / d vx and d tile / d vy.
    """
    ntaps, kmin = _FILTERS[filt]
    c, h, w, m = src.c, src.h, src.w, src.margin
    p = span + ntaps - 1
    fy, fx = torch.floor(vy), torch.floor(vx)
    cy, dcy = _coefficients(vy - fy, filt, need_grad)
    cx, dcx = _coefficients(vx - fx, filt, need_grad)
    big = float(h + w + 2 * p)  # keep float -> int64 conversion in range for absurd vectors
    r0 = (y0 + fy.clamp(-big, big).to(torch.int64) + kmin).clamp_(-(p - 1), h - 1) + m
    c0 = (x0 + fx.clamp(-big, big).to(torch.int64) + kmin).clamp_(-(p - 1), w - 1) + m
    base = (bi * c)[:, None, None] + torch.arange(c, device=bi.device)  # (N, 1, C)
    start = ((base * src.hp + (r0[:, None] + torch.arange(p, device=bi.device))[:, :, None]) * src.ws
             + c0[:, None, None])  # (N, P, C)
    patch = src.rows.index_select(0, start.view(-1))[:, :p].reshape(-1, p * c, p)
    dt = patch.dtype
    mx, my = _banded(cx, span).to(dt), _banded(cy, span).to(dt).transpose(1, 2)
    hor = torch.bmm(patch, mx).view(-1, p, c * span)  # horizontal pass on the P rows
    out = torch.bmm(my, hor).view(-1, span, c, span)  # then vertical
    if not need_grad:
        return out, None, None
    assert dcx is not None and dcy is not None
    with torch.no_grad():
        dmx, dmy = _banded(dcx, span).to(dt), _banded(dcy, span).to(dt).transpose(1, 2)
        gx = torch.bmm(my, torch.bmm(patch, dmx).view(-1, p, c * span)).view(-1, span, c, span)
        gy = torch.bmm(dmy, hor).view(-1, span, c, span)
    return out, gx, gy


def warp(ref: Tensor, flow: Tensor, filter: Filter = "sinc8") -> Tensor:
    """Backward-warp ``ref`` by a per-pixel ``flow`` (continuous, in pixels).

    Args:
        ref: (B, C, H, W) float reference.
        flow: (B, 2, H, W) float flow; channel 0 = x, channel 1 = y.
        filter: ``"sinc8"`` (Cool-chic's 8-tap windowed sinc) or ``"bilinear"``.
    Returns:
        (B, C, H, W) prediction, differentiable w.r.t. ``ref`` and ``flow``.

    The gradient w.r.t. the flow is the derivative of the interpolation formula at fixed integer
    position (the floor has zero derivative), computed per pixel.
    """
    if filter not in _FILTERS:
        raise ValueError(f"warp: unknown filter {filter!r}, expected one of {sorted(_FILTERS)}")
    if ref.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[0] != ref.shape[0] \
            or flow.shape[2:] != ref.shape[2:]:
        raise ValueError(
            f"warp: expected ref (B,C,H,W) and flow (B,2,H,W), got {tuple(ref.shape)} and {tuple(flow.shape)}"
        )
    b, c, h, w = ref.shape
    dev = ref.device
    need_grad = flow.requires_grad and torch.is_grad_enabled()
    bs = MOTION_BLOCK
    hb, wb = -(-h // bs), -(-w // bs)
    ntaps, _ = _FILTERS[filter]
    src = _Source(ref, margin=bs + ntaps - 2, seg=bs + ntaps - 1)

    fl = flow.detach().to(torch.float64)
    fpad = F.pad(fl, (0, wb * bs - w, 0, hb * bs - h), mode="replicate") if (hb * bs != h or wb * bs != w) else fl
    fblk = fpad.view(b, 2, hb, bs, wb, bs)
    head = fblk[:, :, :, :1, :, :1]
    const = (fblk == head).all(5).all(3).all(1).flatten()  # (B * hb * wb,)
    bi = torch.arange(b, device=dev).repeat_interleave(hb * wb)
    by = torch.arange(hb, device=dev).repeat_interleave(wb).repeat(b)
    bx = torch.arange(wb, device=dev).repeat(b * hb)
    hv = head.permute(1, 0, 2, 3, 4, 5).reshape(2, -1)  # (2, B * hb * wb)

    if bool(const.all()):
        out, gx, gy = _tiles(src, filter, bi, by * bs, bx * bs, hv[0], hv[1], bs, need_grad)

        def to_image(t: Tensor) -> Tensor:  # (B*hb*wb, bs, C, bs) -> (B, C, H, W)
            t = t.view(b, hb, wb, bs, c, bs).permute(0, 4, 1, 3, 2, 5).reshape(b, c, hb * bs, wb * bs)
            return t[:, :, :h, :w]
    else:
        sel = const.nonzero().squeeze(1)
        rest = (~const).nonzero().squeeze(1)
        oy = torch.arange(bs, device=dev).repeat_interleave(bs)
        ox = torch.arange(bs, device=dev).repeat(bs)
        pb = bi[rest].repeat_interleave(bs * bs)
        py = (by[rest, None] * bs + oy).flatten()
        px = (bx[rest, None] * bs + ox).flatten()
        pv = fpad[pb, :, py, px]  # (Np, 2)
        t1 = _tiles(src, filter, bi[sel], by[sel] * bs, bx[sel] * bs, hv[0, sel], hv[1, sel], bs, need_grad)
        t2 = _tiles(src, filter, pb, py, px, pv[:, 0], pv[:, 1], 1, need_grad)
        # Flat pixel position (b, y, x) on the padded grid of every value, then invert the order.
        hp_, wp_ = hb * bs, wb * bs
        ar = torch.arange(bs, device=dev)
        pos1 = (((bi[sel] * hp_ + by[sel] * bs)[:, None, None] + ar.view(1, bs, 1)) * wp_
                + (bx[sel] * bs)[:, None, None] + ar.view(1, 1, bs)).view(-1)
        pos2 = (pb * hp_ + py) * wp_ + px
        inv = torch.empty(b * hp_ * wp_, dtype=torch.int64, device=dev)
        inv[torch.cat([pos1, pos2])] = torch.arange(b * hp_ * wp_, device=dev)

        def merge(a: Tensor | None, p: Tensor | None) -> Tensor | None:
            if a is None or p is None:
                return None
            vals = torch.cat([a.permute(0, 1, 3, 2).reshape(-1, c), p.reshape(-1, c)])
            return vals.index_select(0, inv)

        out, gx, gy = merge(t1[0], t2[0]), merge(t1[1], t2[1]), merge(t1[2], t2[2])

        def to_image(t: Tensor) -> Tensor:  # (B*Hp*Wp, C) -> (B, C, H, W)
            return t.view(b, hb * bs, wb * bs, c).permute(0, 3, 1, 2)[:, :, :h, :w]

    pred = to_image(out)
    if need_grad:
        # Zero-valued term whose gradient w.r.t. the flow is the per-pixel derivative.
        d = flow - flow.detach()
        pred = pred + to_image(gx) * d[:, :1] + to_image(gy) * d[:, 1:]
    return pred.contiguous()


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: D102
        return torch.round(x * FLOW_FRACTION) / FLOW_FRACTION

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:  # noqa: D102
        return g


def quantize_flow(flow: Tensor) -> Tensor:
    """Round a flow (any shape, pixels) to 1/FLOW_FRACTION pel; straight-through gradient."""
    return _RoundSTE.apply(flow)


def flow_to_q64(flow: Tensor) -> Tensor:
    """Float flow in pixels -> int64 flow in 1/FLOW_FRACTION pel (the input of ``recon.warp.warp_exact``)."""
    return torch.round(flow.detach() * FLOW_FRACTION).to(torch.int64)


def upsample_motion(flow_quarter: Tensor, height: int, width: int) -> Tensor:
    """(B, 2, h, w) block vectors -> (B, 2, height, width): nearest x MOTION_BLOCK, then crop.

    Needs ``h >= ceil(height / MOTION_BLOCK)`` and ``w >= ceil(width / MOTION_BLOCK)``.
    """
    if flow_quarter.shape[-2] * MOTION_BLOCK < height or flow_quarter.shape[-1] * MOTION_BLOCK < width:
        raise ValueError(f"upsample_motion: {tuple(flow_quarter.shape)} too small for {height}x{width}")
    up = flow_quarter.repeat_interleave(MOTION_BLOCK, dim=-2).repeat_interleave(MOTION_BLOCK, dim=-1)
    return up[..., :height, :width]
