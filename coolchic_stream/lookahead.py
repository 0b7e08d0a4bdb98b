"""Adaptive GOP: anchor distances and scene-cut I frames decided from the source, before training.

    pictures ─► add(): dense copy (halved until small) ─► cache, bounded to one group
    GopScheduler ─► plan(anchor, pending) ─► block flow of candidate anchors from the current one
        ─► prediction gap g = 10·log10(MSE_pred / D) against the stream's coded distortion D
        ─► GroupPlan: anchors (P, or I at a cut) — the B hierarchy between two anchors is fixed

A random-access mini-GOP predicts its P anchor from the previous anchor, ``d`` frames back, and the
B frames between them from both. When motion is fast, the anchor ``d`` frames away is predicted
badly and every frame of the group inherits that (x265 decides its B structure per mini-GOP from a
lookahead for the same reason). The planner therefore takes, from the current anchor, the longest
distance in ``[remaining, 2^k < remaining …, 1]`` whose anchor the block flow predicts within
:data:`MAX_GAP_DB` of the quality the stream codes at (the last I frame's MSE, or a model of
it from λ before the first one): a residue that must add more than that costs a sizeable share of an
I frame, which is what the intra check would otherwise find out by coding the frame twice.

A scene cut is a frame whose block-flow prediction from the frame before it still leaves more than
:data:`CUT_SHARE` of its own (luma) variance, and more than :data:`CUT_MIN_MSE`: no motion explains it. It is coded as an I frame, the frames
before it end their group at the frame before it, and later groups predict from it (the segment stays
closed; the decoder needs nothing new: a P anchor at any distance up to the GOP size and an I frame
anywhere are already valid streams).

Only source pictures are looked at, so the decision needs no second encode; the flows cost a
fraction of a second per frame at CIF against minutes of training.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .gop import GroupPlan
from .types import DataType, Picture

__all__ = ["CUT_MIN_MSE", "CUT_SHARE", "MAX_GAP_DB", "Lookahead", "motion_share", "spatial_detail"]

MAX_GAP_DB = 6.0  # largest prediction gap (dB below the coded quality) an anchor may start from
# A cut: the motion-compensated luma MSE exceeds CUT_SHARE of the frame's variance (measured: 0.41-0.84
# across real cuts, at most 0.025 inside BBB's fastest stretch) and CUT_MIN_MSE (prediction below
# 20 dB): flat pictures have so little variance that a good prediction can still exceed the share.
CUT_SHARE = 0.15
CUT_MIN_MSE = 1e-2
LAMBDA_TO_MSE = 0.25  # coded MSE ~ this x λ before any I frame is coded (0.15-0.4 measured, fast preset)
_MAX_LOOKAHEAD_PIXELS = 1 << 17  # luma is halved until it has at most this many pixels


def _downscaled(picture: Picture) -> Tensor:
    """[1, 3, h, w] in [0, 1], halved until it has at most ``_MAX_LOOKAHEAD_PIXELS`` pixels."""
    from .train.coding import picture_to_dense

    dense = picture_to_dense(picture)
    while dense.shape[-1] * dense.shape[-2] > _MAX_LOOKAHEAD_PIXELS and min(dense.shape[-2:]) >= 32:
        dense = F.avg_pool2d(dense, 2, ceil_mode=True)
    return dense


def _detail(luma: Tensor) -> float:
    """Mean squared difference of neighbouring luma samples ([..., H, W] in [0, 1])."""
    return 0.5 * float((luma[..., 1:, :] - luma[..., :-1, :]).square().mean() + (luma[..., 1:] - luma[..., :-1]).square().mean())


def spatial_detail(picture: Picture) -> float:
    """How much detail a picture has for an I frame to code: :func:`_detail` of its luma
    (rate control's first guess at an I frame's bits)."""
    luma = torch.from_numpy(picture.planes[0].astype(np.float32) / float((1 << picture.bit_depth) - 1))
    return _detail(luma)


def motion_share(first: Picture, later: Picture) -> float:
    """How much of ``later`` block flow from ``first`` leaves unexplained, against ``first``'s
    detail: luma MSE of the flow prediction over the mean squared luma gradient of ``first``
    (rate control's guess at how dear P/B frames are before one is coded)."""
    from .train.motion import flow_prediction

    a, b = _downscaled(first), _downscaled(later)
    _, _, pred = flow_prediction(b, a, first.data_type)
    mse = float((pred[:, :1] - b[:, :1]).square().mean())
    return mse / max(_detail(a[:, :1]), 1e-9)


class Lookahead:
    """Source analysis for :class:`coolchic_stream.gop.GopScheduler`'s planner.

    Call :meth:`add` for every picture as it arrives, :meth:`coded_quality` after each I frame,
    and pass :meth:`plan` as the scheduler's ``planner``.
    """

    def __init__(self, lmbda: float) -> None:
        self._pictures: dict[int, Tensor] = {}
        self._variance: dict[int, float] = {}
        self._pred: dict[tuple[int, int], tuple[float, float]] = {}  # (MSE, luma MSE)
        self._data_type = DataType.YUV420
        self._quality_mse = LAMBDA_TO_MSE * lmbda
        self.decisions: list[str] = []  # one line per plan, for --stats / benchmarks

    def add(self, picture: Picture) -> None:
        """Keep a (possibly downscaled) copy of an arriving picture: [1, 3, h, w] in [0, 1]."""
        from .train.motion import matching_channels

        dense = _downscaled(picture)
        self._data_type = picture.data_type
        self._pictures[picture.pts] = dense
        self._variance[picture.pts] = float(matching_channels(dense, picture.data_type).var())

    def coded_quality(self, mse: float) -> None:
        """MSE of the latest coded I frame (all planes, sample-weighted, [0, 1] scale): the quality
        later groups aim at."""
        if mse > 0:
            self._quality_mse = mse

    def prediction_mse(self, target: int, reference: int) -> float:
        """MSE of ``target`` predicted from ``reference`` by global translation + block flow,
        measured like the training distortion ((4Y+U+V)/6 for 4:2:0)."""
        key = (target, reference)
        if key not in self._pred:
            from .train.loss import Target, distortion
            from .train.motion import flow_prediction

            tgt = self._pictures[target]
            _, _, pred = flow_prediction(tgt, self._pictures[reference], self._data_type)
            mse = float(distortion(pred, Target.from_dense(tgt, self._data_type)))
            self._pred[key] = (mse, float((pred[:, :1] - tgt[:, :1]).square().mean()))
        return self._pred[key][0]

    def gap_db(self, target: int, reference: int) -> float:
        """How far below the coded quality the block-flow prediction lands (dB; negative: above)."""
        return 10.0 * math.log10(max(self.prediction_mse(target, reference), 1e-12) / self._quality_mse)

    def is_cut(self, frame: int) -> bool:
        """Whether no motion from the previous frame explains ``frame`` (see module docstring)."""
        if frame - 1 not in self._pictures:
            return False
        self.prediction_mse(frame, frame - 1)
        luma_mse = self._pred[(frame, frame - 1)][1]
        return luma_mse > CUT_MIN_MSE and luma_mse > CUT_SHARE * self._variance[frame]

    def plan(self, anchor: int, pending: list[int]) -> GroupPlan:
        """Anchors (and cut I frames) for the pictures after ``anchor``; drops what is no longer needed."""
        cuts = [d for d in pending if self.is_cut(d)]
        anchors: list[int] = []
        current = anchor
        for end in [c - 1 for c in cuts] + [pending[-1]]:
            while current < end:
                current = self._next_anchor(current, end)
                anchors.append(current)
            if end != pending[-1]:
                current = end + 1  # the cut
                anchors.append(current)
        distances = [b - a for a, b in zip([anchor] + anchors, anchors)]
        self.decisions.append(f"{anchor}->{pending[-1]}: distances {distances}" + (f", cuts {cuts}" if cuts else ""))
        for d in [d for d in self._pictures if d < pending[-1]]:
            del self._pictures[d], self._variance[d]
        self._pred.clear()
        return GroupPlan(tuple(anchors), tuple(cuts))

    def _next_anchor(self, current: int, end: int) -> int:
        remaining = end - current
        candidates = [remaining] + [1 << k for k in range(remaining.bit_length() - 1, -1, -1) if 1 << k < remaining]
        for d in candidates:
            if self.gap_db(current + d, current) <= MAX_GAP_DB:
                return current + d
        return current + 1
