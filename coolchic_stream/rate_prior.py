"""What rate control assumes of a segment's frames before it has coded them.

    the picture's detail ─► the I frame's first λ (PRIOR_BPP_AT), its networks' bits
    the source's motion share ─► how much dearer than their prior shares P/B frames are (source_content)
    a frame's detail against the I frame's ─► how much dearer it is (detail_scale)

``ratecontrol`` plans each segment from these, then replaces them by what the frames coded show.
"""

from __future__ import annotations

from .segment_plan import FIRST_INTER
from .types import FrameType

# A P/B class's complexity, as a share of the I frame's, before one is coded, where motion predicts:
# its bits beyond FLOOR_BITS over the I frame's at one λ (format 6.0, fast preset, 500 iterations,
# λ encodes of the pan at 4e-3 and CIF BBB 57- at 1.5e-3: P anchors 0.28 and 0.10 (the first one
# sends its motion networks, the next predicts them) and 0.20; B frames at depth 1 0.03-0.044, at
# depth 2 0.013-0.014, at depth 3 0.004-0.093, 0.012 on average).
PRIOR_SHARE = {(FrameType.P, 0): 0.12, (FrameType.P, 1): 0.12}
# The segment's first P/B frame sends the motion networks the frames after it predict theirs from:
# a class of its own, at depth FIRST_INTER. The pan's rate-controlled encodes of 9c82d01's encoder
# (three targets, two seeds; P8 coded at the I frame's λ, 1.1e-3 to 1.5e-2): 0.16-0.23 of the I
# frame's complexity, geometric mean 0.18, its P16 0.07-0.14 (measured at 0.28 earlier, 2 024 bits
# at 4e-3; planned at 0.24, P8 came out 5-32 % under its plan in each of the six, and all six landed
# under their target).
PRIOR_FIRST_SHARE = 0.18
PRIOR_SHARE_B = (0.04, 0.014, 0.012, 0.012)  # B frames at depth 1, 2, 3, 4 and deeper
# Where it does not, the intra check codes most P/B frames without prediction, at about this share
# of the I frame (BBB 128² 32- and the sample: 0.43-0.65).
INTRA_SHARE = 0.6
# Before a class is coded with prediction, how much dearer than its prior share the source says its
# frames are: (r / CONTENT_FROM)^CONTENT_EXPONENT, within [1, CONTENT_MOST], r the luma MSE of block
# flow's prediction over the I frame's detail (``lookahead.motion_share``). Measured on the λ encodes
# of the rate-control benchmark (two seeds, five λ each, fast preset): the pan (r 0.02) 1.13x its prior
# shares, BBB 128² 32- (r 10.5) 9x (geometric means; 6.6-9.9 from λ 1.7e-3 to 1e-2), CIF BBB 57-
# (r 0.07) at its prior shares (they were measured on it). Planned on the prior alone, BBB's I frame
# was given 15-17 % of the segment's budget; in the λ encodes it takes 11-15 %.
CONTENT_FROM, CONTENT_EXPONENT, CONTENT_MOST = 0.1, 0.47, 10.0
# Above CONTENT_KNEE such frames near their floor and g falls: g(λ) = 1 + (g - 1)·(CONTENT_KNEE/λ)^CONTENT_TAPER
# (BBB 128²: 8.2-9.9x up to λ 1e-2, 3.3x at 1.8e-2; at 9x there, its I frame at 24.9 kbit/s was
# planned 12 % of the budget, steered to λ 3.3e-2 and the segment ended 12.6 % under).
CONTENT_KNEE, CONTENT_TAPER = 1e-2, 2.0
# The source's guess counts as this many classes seen: on BBB the segment's first P/B frame, next to
# the I frame and costing nearly what a frame coded without prediction does, came out at 2.2x its
# prior share, the B frames after it at 9x; one class seen says little of the others.
CONTENT_EVIDENCE = 1.0
# An I frame's latent bits per pixel at λ = PRIOR_LAMBDA, the steered training's first guess:
# PRIOR_BPP_AT for a picture of spatial detail PRIOR_DETAIL (``lookahead.spatial_detail``) trained
# for PRIOR_ITERATIONS, times (detail / PRIOR_DETAIL)^DETAIL_EXPONENT and (PRIOR_ITERATIONS /
# iterations)^ITERATIONS_EXPONENT. Measured at a fixed λ: the sample (detail 4.1e-4) 0.086 bpp at
# 1 000 iterations and 0.117 at 300; CIF BBB 57- (6.8e-4) 0.15; the astronaut (3.4e-3) 0.25 at 500.
# Its slope is KAPPA.
PRIOR_LAMBDA, PRIOR_BPP_AT, PRIOR_DETAIL, DETAIL_EXPONENT = 4e-3, 0.09, 4e-4, 0.5
PRIOR_ITERATIONS, ITERATIONS_EXPONENT = 1000, 0.25
# A frame coded without prediction is learnt and planned per unit of its picture's spatial detail,
# against the segment's I frame's: s = (detail / detail_I)^DETAIL_EXPONENT, as the I frame's prior
# curve has it, within a factor DETAIL_RANGE (``ratecontrol``'s model). BBB 128² 32-48: detail 4-6e-4
# over frames 0-8, 1-3e-4 over 9-16 (s 0.45-0.9 by frame); in its ten λ encodes (λ 1.7e-3 to 1.8e-2)
# the second group's frames coded without prediction cost 0.72-0.91x the first's, 0.96-1.2x divided
# by s. Bounded so that a flat picture (a fade) or noise is not planned at nothing, or at many
# frames' bits, on the strength of one measure.
DETAIL_RANGE = 4.0
# Fresh networks of an I frame at PRIOR_LAMBDA: about 5.4 bits per parameter (2 206-2 368 bits for
# the fast preset's 427 parameters, BBB 128²), times (λ / PRIOR_LAMBDA)^NN_KAPPA, and above NN_KNEE
# falling faster, at NN_KAPPA_ABOVE (I frames of the pan, CIF and BBB 128², fast preset: 3 025-3 203
# bits at 4-5e-4, 1 468-2 050 at 1-2e-2, 1 313-1 511 at 3.2-3.8e-2, 678-935 at 0.19, where a single
# slope put 1 300 and steered BBB's I frame at 24.9 kbit/s to λ 0.19 and 21.5 dB); headers and
# the range coder's flush add about FRAME_OVERHEAD_BITS.
NN_BITS_PER_PARAMETER, NN_KAPPA, NN_KNEE, NN_KAPPA_ABOVE = 5.4, -0.15, 2e-2, -0.4
FRAME_OVERHEAD_BITS = 250


def inter_share(frame_type: FrameType, depth: int) -> float:
    """Complexity of a P/B class coded with prediction, as a share of the I frame's, before the
    segment codes one (1 for the I frame)."""
    if frame_type == FrameType.I:
        return 1.0
    if depth == FIRST_INTER:
        return PRIOR_FIRST_SHARE
    if frame_type == FrameType.P:
        return PRIOR_SHARE.get((frame_type, depth), PRIOR_SHARE[(FrameType.P, 0)])
    return PRIOR_SHARE_B[min(max(depth, 1), len(PRIOR_SHARE_B)) - 1]


def source_content(motion_share: float | None, lmbda: float | None = None) -> float:
    """g: how much dearer than their prior shares the source says P/B frames coded with prediction
    will be, from its motion share r (1 when unknown), at base λ ``lmbda`` (above CONTENT_KNEE
    they near their floor, and g falls toward 1)."""
    if motion_share is None or motion_share <= CONTENT_FROM:
        return 1.0
    g = min((motion_share / CONTENT_FROM) ** CONTENT_EXPONENT, CONTENT_MOST)
    return g if lmbda is None else 1.0 + (g - 1.0) * min(1.0, (CONTENT_KNEE / lmbda) ** CONTENT_TAPER)


def detail_scale(detail: float | None, reference: float | None) -> float:
    """s: how much dearer a frame of spatial ``detail`` is than one of the ``reference`` detail
    (the segment's I frame's), 1 when either is unknown."""
    if detail is None or reference is None:
        return 1.0
    ratio = (max(detail, 1e-9) / max(reference, 1e-9)) ** DETAIL_EXPONENT
    return min(max(ratio, 1.0 / DETAIL_RANGE), DETAIL_RANGE)


__all__ = [
    "CONTENT_EVIDENCE", "CONTENT_MOST", "DETAIL_EXPONENT", "DETAIL_RANGE", "FRAME_OVERHEAD_BITS", "INTRA_SHARE", "ITERATIONS_EXPONENT",
    "NN_BITS_PER_PARAMETER", "NN_KAPPA", "NN_KAPPA_ABOVE", "NN_KNEE", "PRIOR_BPP_AT", "PRIOR_DETAIL", "PRIOR_ITERATIONS",
    "PRIOR_LAMBDA", "detail_scale", "inter_share", "source_content",
]  # fmt: skip
