"""Motion initialisation without learned weights: global integer translation and block flow.

Both follow the backward-warp convention of :mod:`coolchic_stream.nn.warp`:
``pred[y, x] = ref[y + v_y, x + v_x]`` with border clamping; flows have channel 0 = x, 1 = y.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..spec import MOTION_BLOCK
from .warp import upsample_motion, warp

__all__ = ["global_translation", "estimate_flow", "shift_clamped"]

_MIN_COARSE = 16  # coarsest pyramid level keeps at least this many pixels per side
_WIN = 8  # integer matching window per 4x4 block (block centred, 2 extra pixels each side)
_SMOOTH = 0.02  # cost of one pixel away from the neighbours' median vector, x window variance
_VAR_FLOOR = 1e-5  # variance floor of that weight (flat windows)


def shift_clamped(img: Tensor, ty: int, tx: int) -> Tensor:
    """(B, C, H, W) -> (B, C, H, W) with ``out[y, x] = img[clamp(y + ty), clamp(x + tx)]``."""
    h, w = img.shape[-2:]
    rows = (torch.arange(h, device=img.device) + ty).clamp_(0, h - 1)
    cols = (torch.arange(w, device=img.device) + tx).clamp_(0, w - 1)
    return img.index_select(-2, rows).index_select(-1, cols)


def _pyramid(img: Tensor, levels: int) -> list[Tensor]:
    """[level 0 = img, level l = 2**l downsampled (area, odd sizes rounded up)]."""
    out = [img]
    for _ in range(levels):
        out.append(F.avg_pool2d(out[-1], 2, ceil_mode=True))
    return out


def _levels(h: int, w: int, reach: int) -> int:
    """Number of halvings so that the coarse search radius is small and the image not too tiny."""
    lv = 0
    while reach / 2**lv > 4 and min(h, w) / 2 ** (lv + 1) >= _MIN_COARSE:
        lv += 1
    return lv


def _check_pair(target: Tensor, reference: Tensor) -> None:
    if target.dim() != 4 or target.shape[0] != 1 or target.shape != reference.shape:
        raise ValueError(
            f"expected target and reference of the same shape (1, C, H, W), got {tuple(target.shape)} "
            f"and {tuple(reference.shape)}"
        )


@torch.no_grad()
def global_translation(target: Tensor, reference: Tensor, max_shift: int = 64) -> tuple[int, int]:
    """Integer translation ``(ty, tx)`` minimising the MSE of ``shift_clamped(reference, ty, tx)`` vs target.

    target, reference: (1, C, H, W). Coarse to fine: exhaustive search over ``+-ceil(max_shift / 2**L)``
    on a 2**L-downsampled pyramid level, then at each finer level every candidate within +-2 of the
    doubled estimate (so +-1 is always tested at full resolution). Result clamped to +-max_shift.
    """
    _check_pair(target, reference)
    tgt, ref = target.float(), reference.float()
    h, w = tgt.shape[-2:]
    lv = _levels(h, w, max_shift)
    pt, pr = _pyramid(tgt, lv), _pyramid(ref, lv)

    def mse(level: int, ty: int, tx: int) -> float:
        return float((shift_clamped(pr[level], ty, tx) - pt[level]).square().mean())

    radius = math.ceil(max_shift / 2**lv)
    best = (math.inf, 0, 0)
    t_c, r_c = pt[lv], pr[lv]
    hc, wc = t_c.shape[-2:]
    dxs = torch.arange(-radius, radius + 1, device=ref.device)
    cols = (torch.arange(wc, device=ref.device)[None, :] + dxs[:, None]).clamp_(0, wc - 1)  # (ndx, W)
    for ty in range(-radius, radius + 1):
        rows = shift_clamped(r_c, ty, 0)  # (1, C, H, W)
        cand = rows[:, :, :, cols]  # (1, C, H, ndx, W)
        err = (cand - t_c[:, :, :, None, :]).square().mean(dim=(0, 1, 2, 4))  # (ndx,)
        i = int(err.argmin())
        if float(err[i]) < best[0]:
            best = (float(err[i]), ty, int(dxs[i]))
    _, ty, tx = best
    for level in range(lv - 1, -1, -1):
        cy, cx = 2 * ty, 2 * tx
        best = (math.inf, cy, cx)
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                e = mse(level, cy + dy, cx + dx)
                if e < best[0]:
                    best = (e, cy + dy, cx + dx)
        _, ty, tx = best
    return max(-max_shift, min(max_shift, ty)), max(-max_shift, min(max_shift, tx))


class _BlockMatcher:
    """Per-block window costs at one pyramid level. Images (1, H, W) single channel."""

    def __init__(self, tgt: Tensor, ref: Tensor) -> None:
        self.h, self.w = tgt.shape[-2:]
        self.gh, self.gw = -(-self.h // MOTION_BLOCK), -(-self.w // MOTION_BLOCK)
        dev = tgt.device
        m = _WIN - 1
        self.wp = self.w + 2 * m
        # Rows of the column-padded image cut into overlapping segments of _WIN samples: gathering a
        # window row is one contiguous copy. Clamping a segment start to [-(WIN-1), W-1] selects the
        # same samples as clamping every column.
        self.ref = self._segments(ref, m)
        self.oy = (torch.arange(_WIN, device=dev) - (_WIN - MOTION_BLOCK) // 2).view(1, 1, _WIN)
        self.by = (torch.arange(self.gh, device=dev) * MOTION_BLOCK).view(self.gh, 1, 1)
        self.bx = (torch.arange(self.gw, device=dev) * MOTION_BLOCK).view(1, self.gw, 1)
        zero = torch.zeros(1, 2, self.gh, self.gw, dtype=torch.int64, device=dev)
        self.tgt = self._take(self._segments(tgt, m), zero)[0]
        # Smoothness weight per block, proportional to the window's contrast so that it trades
        # against matching errors the same way in flat and textured areas.
        self.weight = _SMOOTH * (self.tgt.var(dim=(-1, -2)) + _VAR_FLOOR)

    def _segments(self, img: Tensor, m: int) -> Tensor:
        padded = F.pad(img, (m, m), mode="replicate").reshape(-1).contiguous()
        self._keep = getattr(self, "_keep", []) + [padded]
        return padded.as_strided((padded.numel() - _WIN + 1, _WIN), (1, 1))

    def _take(self, seg: Tensor, v: Tensor) -> Tensor:
        """v: (K, 2, gh, gw) int vectors -> (K, gh, gw, 8, 8) window samples."""
        k = v.shape[0]
        c0 = (self.bx[None, ..., 0] - (_WIN - MOTION_BLOCK) // 2 + v[:, 0]).clamp(-(_WIN - 1), self.w - 1)
        rows = (self.by[None] + self.oy[None] + v[:, 1, :, :, None]).clamp(0, self.h - 1)
        idx = rows * self.wp + (c0 + _WIN - 1)[..., None]  # (K, gh, gw, 8)
        return seg.index_select(0, idx.view(-1)).view(k, self.gh, self.gw, _WIN, _WIN)

    def cost(self, v: Tensor) -> Tensor:
        """v: (K, 2, gh, gw) int64 -> (K, gh, gw) mean squared window error."""
        return (self._take(self.ref, v) - self.tgt).square().mean(dim=(-1, -2))


def _median3(v: Tensor) -> Tensor:
    """(2, gh, gw) -> component-wise median over each 3x3 neighbourhood (replicate border)."""
    p = F.pad(v[None].float(), (1, 1, 1, 1), mode="replicate")[0]
    patches = p.unfold(1, 3, 1).unfold(2, 3, 1).reshape(2, v.shape[1], v.shape[2], 9)
    return patches.median(dim=-1).values.to(v.dtype)


def _neighbours(v: Tensor) -> list[Tensor]:
    """The field with each block's vector replaced by its up/down/left/right neighbour's."""
    p = F.pad(v[None].float(), (1, 1, 1, 1), mode="replicate")[0].to(v.dtype)
    gh, gw = v.shape[1:]
    return [p[:, 0:gh, 1:gw + 1], p[:, 2:gh + 2, 1:gw + 1], p[:, 1:gh + 1, 0:gw], p[:, 1:gh + 1, 2:gw + 2]]


def _select(cands: Tensor, costs: Tensor, median: Tensor, weight: Tensor) -> Tensor:
    """Per block, the candidate (K, 2, gh, gw) minimising cost + weight * |cand - median|_1."""
    costs = costs + weight * (cands - median).abs().sum(dim=1)
    best = costs.argmin(dim=0)  # (gh, gw)
    return torch.gather(cands, 0, best[None, None].expand(1, 2, *best.shape))[0]


def _refine_integer(m: _BlockMatcher, v: Tensor, extra: list[Tensor], iters: int) -> Tensor:
    """Greedy +-1 / neighbour / extra-predictor descent on (2, gh, gw) int vectors until stable."""
    deltas = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    for _ in range(iters):
        med = _median3(v)
        cands = [v + torch.tensor([dx, dy], device=v.device).view(2, 1, 1) for dy, dx in deltas]
        cands += _neighbours(v) + extra
        stack = torch.stack(cands)
        v_new = _select(stack, m.cost(stack), med, m.weight)
        changed = float((v_new != v).any(dim=0).float().mean())
        v = v_new
        if changed < 2e-3:
            break
    return v


@torch.no_grad()
def estimate_flow(target: Tensor, reference: Tensor, block: int = MOTION_BLOCK, search: int = 64,
                  subpel: int = 4) -> Tensor:
    """Dense backward flow, one vector per 4x4 block, such that ``warp(reference, upsample(flow))`` ~ target.

    Args:
        target, reference: (1, C, H, W) float images (any range; matching uses the channel mean).
        block: must be ``spec.MOTION_BLOCK``.
        search: largest displacement looked for, in pixels.
        subpel: sub-pixel precision (1 = integer, 2 = half, 4 = quarter pel).
    Returns:
        (1, 2, ceil(H / 4), ceil(W / 4)) float32 flow in pixels, channel 0 = x, 1 = y.

    Method: a 2x pyramid; exhaustive integer search of 8x8 windows (centred on each 4x4 block) at
    the coarsest level; at finer levels the doubled parent vector and the neighbours' vectors are
    predictors, refined by +-1 steps with a penalty on the distance to the 3x3 median vector;
    finally half- then quarter-pel candidates are tested with the sinc8 warp on the 4x4 blocks.
    """
    _check_pair(target, reference)
    if block != MOTION_BLOCK:
        raise ValueError(f"estimate_flow: block must be {MOTION_BLOCK}, got {block}")
    if subpel not in (1, 2, 4):
        raise ValueError(f"estimate_flow: subpel must be 1, 2 or 4, got {subpel}")
    tgt, ref = target.float(), reference.float()
    h, w = tgt.shape[-2:]
    lv = _levels(h, w, search)
    pt = _pyramid(tgt.mean(dim=1, keepdim=True), lv)
    pr = _pyramid(ref.mean(dim=1, keepdim=True), lv)
    gty, gtx = global_translation(tgt, ref, max_shift=search)

    # Coarsest level: exhaustive search, every block at once per candidate displacement.
    m = _BlockMatcher(pt[lv][0], pr[lv][0])
    radius = math.ceil(search / 2**lv)
    best_cost = torch.full((m.gh, m.gw), math.inf, device=tgt.device)
    v = torch.zeros(2, m.gh, m.gw, dtype=torch.int64, device=tgt.device)
    for dy in range(-radius, radius + 1):
        d = torch.stack([torch.arange(-radius, radius + 1), torch.full((2 * radius + 1,), dy)], dim=1)
        d = d.to(tgt.device)[:, :, None, None].expand(-1, 2, m.gh, m.gw)
        c = m.cost(d)  # (ndx, gh, gw)
        cmin, arg = c.min(dim=0)
        better = cmin < best_cost
        best_cost = torch.where(better, cmin, best_cost)
        v = torch.where(better[None], torch.gather(d, 0, arg[None, None].expand(1, 2, m.gh, m.gw))[0], v)
    glob = torch.tensor([gtx, gty], device=tgt.device).view(2, 1, 1)
    g_l = torch.round(glob / 2**lv).to(torch.int64).expand(2, m.gh, m.gw)
    v = _refine_integer(m, v, [g_l], iters=4)

    for level in range(lv - 1, -1, -1):
        m = _BlockMatcher(pt[level][0], pr[level][0])
        up = (2 * v).repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)[:, : m.gh, : m.gw]
        g_l = torch.round(glob / 2**level).to(torch.int64).expand(2, m.gh, m.gw)
        v = _refine_integer(m, up, [g_l, torch.zeros_like(up)], iters=8 if level == 0 else 4)

    flow = v.to(torch.float32)[None]  # (1, 2, gh, gw)
    if subpel == 1:
        return flow
    # Sub-pel costs with the codec's sinc8 warp on the channel mean (warping is linear per channel).
    ref_m, tgt_m = ref.mean(dim=1, keepdim=True), tgt.mean(dim=1, keepdim=True)
    err_map = lambda f: (warp(ref_m, upsample_motion(f, h, w)) - tgt_m).square()  # noqa: E731
    ph, pw = flow.shape[2] * MOTION_BLOCK - h, flow.shape[3] * MOTION_BLOCK - w

    def block_cost(f: Tensor) -> Tensor:  # (1, 2, gh, gw) -> (gh, gw)
        e = F.pad(err_map(f), (0, pw, 0, ph), mode="replicate")
        return F.avg_pool2d(e, MOTION_BLOCK)[0, 0]

    weight = m.weight
    # Half pel once, then quarter-pel 3x3 descent (a few rounds: x and y may both need two steps).
    for step, rounds in ((0.5, 1), (0.25, 3)):
        if step < 1.0 / subpel:
            break
        cost0 = block_cost(flow)
        for _ in range(rounds):
            med = _median3(flow[0])
            offs = [(dx * step, dy * step) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dx or dy]
            cands = torch.stack([flow[0]] + [flow[0] + torch.tensor(o, device=flow.device).view(2, 1, 1) for o in offs])
            costs = torch.stack([cost0] + [block_cost(c[None]) for c in cands[1:]])
            pen = costs + weight * (cands - med).abs().sum(dim=1)
            best = pen.argmin(dim=0)
            if not bool((best != 0).any()):
                break
            flow = torch.gather(cands, 0, best[None, None].expand(1, 2, *best.shape))
            cost0 = torch.gather(costs, 0, best[None])[0]
    return flow
