"""Exact frame assembly: Cool-chic outputs (+ warped references) -> integer sample planes.

    I:   r[:3]                                   ─┐
    P:   α·warp(ref0, v0) + r                     ├─► Q16 dense [3, H, W] ─► (4:2:0: 2x2 mean of chroma) ─► samples
    B:   α·(β·warp(ref0, v0) + (1-β)·warp(ref1, v1)) + r ─┘
α = clamp(raw + 1/2, 0, 1) and β likewise, in Q16.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..spec import (
    ALPHA_CHANNEL,
    BETA_CHANNEL,
    FLOW_FRACTION,
    FLOW_FRACTION_BITS,
    GATE_OFFSET,
    MOTION_BLOCK,
    PICTURE_CHANNELS,
)
from ..types import DataType, FrameType, Picture, sample_dtype
from .fixed import FRAC, ONE, fixed_to_samples, round_shift, round_shift_, samples_to_fixed


def picture_to_fixed(picture: Picture) -> Tensor:
    """Dense Q16 [3, H, W] of a picture; 4:2:0 chroma repeated to luma resolution (nearest)."""
    h, w = picture.height, picture.width
    planes = []
    for i, plane in enumerate(picture.planes):
        t = samples_to_fixed(torch.from_numpy(plane.astype(np.int64)), picture.bit_depth)
        if i and picture.data_type == DataType.YUV420:
            t = t.repeat_interleave(2, 0).repeat_interleave(2, 1)[:h, :w]
        planes.append(t)
    return torch.stack(planes)


def fixed_to_picture(dense: Tensor, data_type: DataType, bit_depth: int, pts: int) -> Picture:
    """Q16 dense [3, H, W] -> Picture (chroma 2x2-averaged before rounding for 4:2:0)."""
    dtype = sample_dtype(bit_depth)
    y = fixed_to_samples(dense[0], bit_depth).numpy().astype(dtype)
    if data_type == DataType.YUV420:
        h, w = dense.shape[-2:]
        uv = dense[1:].unsqueeze(0)
        if h % 2 or w % 2:
            uv = F.pad(uv, (0, w % 2, 0, h % 2), mode="replicate")
        uv = round_shift(F.avg_pool2d(uv, 2, divisor_override=1), 2)[0]
    else:
        uv = dense[1:]
    u, v = (fixed_to_samples(c, bit_depth).numpy().astype(dtype) for c in uv)
    return Picture((y, u, v), bit_depth, data_type, pts)


def _gate(raw: Tensor) -> Tensor:
    return torch.clamp(raw + ONE * GATE_OFFSET, 0.0, ONE)


def _vectors(motion: Tensor, translation: tuple[int, int]) -> Tensor:
    """Q16 pixel flows [2, h, w] -> int64 vectors in 1/FLOW_FRACTION pel, global translation (ty, tx) folded in."""
    q = round_shift(motion, FRAC - FLOW_FRACTION_BITS)
    shift = torch.tensor([translation[1], translation[0]], dtype=q.dtype).view(2, 1, 1) * FLOW_FRACTION
    return (q + shift).to(torch.int64)


def motion_to_flow(motion: Tensor, height: int, width: int, translation: tuple[int, int]) -> Tensor:
    """Q16 pixel flows at block resolution [2, h4, w4] -> int64 per-pixel flows [2, H, W] in 1/FLOW_FRACTION pel."""
    scale_y = -(-height // motion.shape[-2])
    scale_x = -(-width // motion.shape[-1])
    q = _vectors(motion, translation)
    return q.repeat_interleave(scale_y, 1).repeat_interleave(scale_x, 2)[:, :height, :width]


def _warp(reference: Tensor, motion: Tensor, translation: tuple[int, int]) -> Tensor:
    """Prediction from one reference: one vector per block when the motion grid is exactly at
    MOTION_BLOCK resolution (always, for this format's motion Cool-chic), else per pixel; same integers."""
    from .warp import warp_blocks, warp_exact  # motion compensation only for inter frames

    _, h, w = reference.shape
    hb, wb = -(-h // MOTION_BLOCK), -(-w // MOTION_BLOCK)
    if tuple(motion.shape[-2:]) == (hb, wb) and -(-h // hb) == MOTION_BLOCK == -(-w // wb):
        return warp_blocks(reference, _vectors(motion, translation))
    return warp_exact(reference, motion_to_flow(motion, h, w, translation))


def assemble(
    frame_type: FrameType,
    residue: Tensor,
    motion: Tensor | None,
    references: list[Tensor],
    translations: list[tuple[int, int]],
) -> Tensor:
    """Combine Q16 Cool-chic outputs into the dense Q16 decoded frame [3, H, W]."""
    if frame_type == FrameType.I:
        return residue[:PICTURE_CHANNELS]
    preds = [_warp(ref, motion[2 * i : 2 * i + 2], translations[i]) for i, ref in enumerate(references)]
    if frame_type == FrameType.P:
        pred = preds[0]
    else:
        # β·p0 + (1-β)·p1 written as β·(p0 - p1) + p1 (the same integers), in place.
        beta = _gate(residue[BETA_CHANNEL : BETA_CHANNEL + 1])
        pred = torch.sub(preds[0], preds[1]).mul_(beta).add_(preds[1], alpha=ONE)
        pred = round_shift_(pred, FRAC)
    alpha = _gate(residue[ALPHA_CHANNEL : ALPHA_CHANNEL + 1])
    return round_shift_(pred.mul_(alpha), FRAC).add_(residue[:PICTURE_CHANNELS])
