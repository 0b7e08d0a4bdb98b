"""Bit-exact fixed-point motion compensation (windowed sinc, fractional-pel vectors) for the decoder path.

Everything here is integer arithmetic, so the encoder's reconstruction and the decoder agree bit
for bit on any platform. Samples are Q16 fixed point (value / 65536 = sample / (2**bit_depth - 1)),
motion vectors are integers in 1/FLOW_FRACTION pel (``spec``). The computation uses float64
tensors that only ever hold exact integers (every product and partial sum stays far below 2**53),
because float64 batched matmul is much faster on CPU than int64 arithmetic; the result does not
depend on summation order.

Convention (normative): backward warping, ``pred[y, x] = ref[y + v_y, x + v_x]``; flow channel 0 is
horizontal (x), channel 1 vertical (y); positions outside the frame clamp to the border.
For a vector component ``v`` the integer part is ``floor(v / FLOW_FRACTION)`` and the fraction
``f = v mod FLOW_FRACTION``; the WARP_TAPS taps at integer offsets ``WARP_FIRST_TAP + t`` from the
integer position are ``SINC8_TAPS[f][t]``.
The horizontal pass filters the WARP_TAPS rows needed, each sum is brought back to Q16 with
``(acc + 2**13) >> 14``; then the vertical pass does the same on those intermediate values.
No clamping happens between or after the passes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..spec import FLOW_FRACTION, MOTION_BLOCK, WARP_FIRST_TAP, WARP_TAPS

__all__ = [
    "TAP_BITS",
    "Q16_ONE",
    "SINC8_TAPS",
    "sinc8_coefficient",
    "warp_blocks",
    "warp_exact",
]

TAP_BITS = 14
"""Filter coefficients are integers in units of 2**-TAP_BITS."""
Q16_ONE = 1 << 16
"""Fixed-point value of a full-scale sample (normalised value 1.0)."""

_ROUND = 1 << (TAP_BITS - 1)
_SCALE = float(1 << TAP_BITS)
_BAND_TILES = 2048  # tiles warped per batch


def sinc8_coefficient(s: float, k: int) -> float:
    """Real-valued tap ``cos(pi (s - k) / WARP_TAPS) * sinc(s - k)`` for fraction ``s`` and offset ``k``."""
    t = s - k
    sinc = 1.0 if t == 0 else float(np.sin(np.pi * t) / (np.pi * t))
    return float(np.cos(np.pi * t / WARP_TAPS)) * sinc


# SINC8_TAPS[f][k - WARP_FIRST_TAP] = round_half_away(sinc8_coefficient(f / FLOW_FRACTION, k) * 2**TAP_BITS)
# for the WARP_TAPS offsets k from WARP_FIRST_TAP on.
# Written out as literals so that the normative constant never depends on a platform's libm
# (tests/recon/test_warp_exact.py recomputes it). Rows do not sum to exactly 2**14 by design:
# Cool-chic's windowed sinc is not normalised (sums range from 16383 to 16415).
SINC8_TAPS: tuple[tuple[int, ...], ...] = (
    (     0,      0,      0,  16384,      0,      0,      0,      0),  #  0/64
    (   -32,     89,   -232,  16377,    241,    -92,     33,      0),  #  1/64
    (   -63,    176,   -456,  16356,    490,   -186,     68,     -2),  #  2/64
    (   -92,    259,   -670,  16322,    747,   -282,    104,     -4),  #  3/64
    (  -120,    340,   -875,  16274,   1013,   -380,    140,     -6),  #  4/64
    (  -146,    418,  -1072,  16212,   1285,   -480,    178,    -10),  #  5/64
    (  -170,    492,  -1258,  16137,   1566,   -582,    217,    -14),  #  6/64
    (  -194,    563,  -1436,  16049,   1853,   -685,    256,    -19),  #  7/64
    (  -215,    631,  -1604,  15947,   2148,   -789,    297,    -25),  #  8/64
    (  -235,    695,  -1762,  15832,   2448,   -893,    338,    -32),  #  9/64
    (  -253,    755,  -1911,  15704,   2755,   -999,    379,    -39),  # 10/64
    (  -270,    812,  -2050,  15564,   3068,  -1105,    421,    -47),  # 11/64
    (  -285,    865,  -2179,  15411,   3386,  -1210,    463,    -56),  # 12/64
    (  -299,    914,  -2299,  15246,   3709,  -1316,    505,    -65),  # 13/64
    (  -310,    960,  -2410,  15069,   4037,  -1421,    548,    -75),  # 14/64
    (  -321,   1002,  -2510,  14880,   4369,  -1526,    590,    -85),  # 15/64
    (  -329,   1040,  -2602,  14680,   4705,  -1629,    632,    -96),  # 16/64
    (  -337,   1074,  -2684,  14469,   5045,  -1731,    674,   -108),  # 17/64
    (  -342,   1104,  -2757,  14247,   5387,  -1831,    715,   -119),  # 18/64
    (  -346,   1131,  -2820,  14014,   5732,  -1930,    756,   -132),  # 19/64
    (  -349,   1154,  -2875,  13772,   6079,  -2026,    795,   -144),  # 20/64
    (  -351,   1173,  -2920,  13520,   6427,  -2119,    834,   -157),  # 21/64
    (  -351,   1188,  -2957,  13258,   6777,  -2210,    872,   -169),  # 22/64
    (  -349,   1200,  -2986,  12988,   7128,  -2298,    908,   -182),  # 23/64
    (  -347,   1209,  -3006,  12709,   7478,  -2382,    944,   -195),  # 24/64
    (  -343,   1213,  -3017,  12423,   7828,  -2462,    977,   -208),  # 25/64
    (  -339,   1215,  -3021,  12129,   8178,  -2538,   1009,   -221),  # 26/64
    (  -333,   1213,  -3018,  11827,   8526,  -2610,   1040,   -233),  # 27/64
    (  -326,   1208,  -3006,  11519,   8872,  -2676,   1068,   -245),  # 28/64
    (  -318,   1200,  -2988,  11205,   9216,  -2738,   1094,   -257),  # 29/64
    (  -310,   1189,  -2962,  10885,   9558,  -2795,   1118,   -269),  # 30/64
    (  -301,   1176,  -2930,  10560,   9896,  -2846,   1140,   -280),  # 31/64
    (  -291,   1159,  -2891,  10230,  10230,  -2891,   1159,   -291),  # 32/64
    (  -280,   1140,  -2846,   9896,  10560,  -2930,   1176,   -301),  # 33/64
    (  -269,   1118,  -2795,   9558,  10885,  -2962,   1189,   -310),  # 34/64
    (  -257,   1094,  -2738,   9216,  11205,  -2988,   1200,   -318),  # 35/64
    (  -245,   1068,  -2676,   8872,  11519,  -3006,   1208,   -326),  # 36/64
    (  -233,   1040,  -2610,   8526,  11827,  -3018,   1213,   -333),  # 37/64
    (  -221,   1009,  -2538,   8178,  12129,  -3021,   1215,   -339),  # 38/64
    (  -208,    977,  -2462,   7828,  12423,  -3017,   1213,   -343),  # 39/64
    (  -195,    944,  -2382,   7478,  12709,  -3006,   1209,   -347),  # 40/64
    (  -182,    908,  -2298,   7128,  12988,  -2986,   1200,   -349),  # 41/64
    (  -169,    872,  -2210,   6777,  13258,  -2957,   1188,   -351),  # 42/64
    (  -157,    834,  -2119,   6427,  13520,  -2920,   1173,   -351),  # 43/64
    (  -144,    795,  -2026,   6079,  13772,  -2875,   1154,   -349),  # 44/64
    (  -132,    756,  -1930,   5732,  14014,  -2820,   1131,   -346),  # 45/64
    (  -119,    715,  -1831,   5387,  14247,  -2757,   1104,   -342),  # 46/64
    (  -108,    674,  -1731,   5045,  14469,  -2684,   1074,   -337),  # 47/64
    (   -96,    632,  -1629,   4705,  14680,  -2602,   1040,   -329),  # 48/64
    (   -85,    590,  -1526,   4369,  14880,  -2510,   1002,   -321),  # 49/64
    (   -75,    548,  -1421,   4037,  15069,  -2410,    960,   -310),  # 50/64
    (   -65,    505,  -1316,   3709,  15246,  -2299,    914,   -299),  # 51/64
    (   -56,    463,  -1210,   3386,  15411,  -2179,    865,   -285),  # 52/64
    (   -47,    421,  -1105,   3068,  15564,  -2050,    812,   -270),  # 53/64
    (   -39,    379,   -999,   2755,  15704,  -1911,    755,   -253),  # 54/64
    (   -32,    338,   -893,   2448,  15832,  -1762,    695,   -235),  # 55/64
    (   -25,    297,   -789,   2148,  15947,  -1604,    631,   -215),  # 56/64
    (   -19,    256,   -685,   1853,  16049,  -1436,    563,   -194),  # 57/64
    (   -14,    217,   -582,   1566,  16137,  -1258,    492,   -170),  # 58/64
    (   -10,    178,   -480,   1285,  16212,  -1072,    418,   -146),  # 59/64
    (    -6,    140,   -380,   1013,  16274,   -875,    340,   -120),  # 60/64
    (    -4,    104,   -282,    747,  16322,   -670,    259,    -92),  # 61/64
    (    -2,     68,   -186,    490,  16356,   -456,    176,    -63),  # 62/64
    (     0,     33,    -92,    241,  16377,   -232,     89,    -32),  # 63/64
)


def _toeplitz_table(span: int) -> Tensor:
    """``(FLOW_FRACTION, span + WARP_TAPS - 1, span)`` float64 banded matrices: ``M[f, j + t, j] = SINC8_TAPS[f][t]``.

    Right-multiplying a ``(..., span + WARP_TAPS - 1)`` row of samples by ``M[f]`` filters ``span`` outputs.
    """
    taps = torch.tensor(SINC8_TAPS, dtype=torch.float64)
    m = torch.zeros(FLOW_FRACTION, span + WARP_TAPS - 1, span, dtype=torch.float64)
    for j in range(span):
        m[:, j : j + WARP_TAPS, j] = taps
    return m


_TABLES: dict[int, Tensor] = {}


def _table(span: int) -> Tensor:
    if span not in _TABLES:
        _TABLES[span] = _toeplitz_table(span)
    return _TABLES[span]


def _round_shift_(acc: Tensor) -> Tensor:
    """In place ``(acc + 2**13) >> 14`` on float64 holding exact integers (scaling by 2**-14 is exact)."""
    return acc.add_(_ROUND).mul_(1.0 / _SCALE).floor_()


class _Padded:
    """Reference replicate-padded by ``margin`` pixels, exposed as overlapping row segments.

    ``segments[i] = flat[i : i + seg]``: a zero-copy strided view, so that gathering one segment
    copies ``seg`` contiguous samples (much faster than gathering samples one by one).
    """

    def __init__(self, ref: Tensor, margin: int, seg: int) -> None:
        self.c, self.h, self.w = ref.shape
        self.margin = margin
        padded = torch.nn.functional.pad(ref[None], (margin,) * 4, mode="replicate")[0].contiguous()
        self.hp, self.wp = padded.shape[1:]
        flat = padded.view(-1)
        self.segments = flat.as_strided((flat.numel() - seg + 1, seg), (1, 1))
        self.padded = padded  # keeps the storage alive


def _filter_patches(src: _Padded, y0: Tensor, x0: Tensor, vy: Tensor, vx: Tensor, span: int) -> Tensor:
    """Warp ``N`` square tiles of ``span x span`` pixels, each with one motion vector.

    src: padded Q16 reference (float64 exact ints); y0, x0: (N,) int64 tile origins;
    vy, vx: (N,) int64 in 1/64 pel. Returns (N, span, C, span) float64 (tile row, channel, column).
    """
    c, h, w, m = src.c, src.h, src.w, src.margin
    p = span + WARP_TAPS - 1
    assert m >= p - 1
    iy = torch.div(vy, FLOW_FRACTION, rounding_mode="floor")
    ix = torch.div(vx, FLOW_FRACTION, rounding_mode="floor")
    fy = vy - iy * FLOW_FRACTION
    fx = vx - ix * FLOW_FRACTION
    # First sample row/column of each patch. Clamping it to [-(p-1), size-1] picks exactly the
    # border-clamped samples, and the padded frame holds every position in that range.
    r0 = (y0 + iy + WARP_FIRST_TAP).clamp_(-(p - 1), h - 1) + m
    c0 = (x0 + ix + WARP_FIRST_TAP).clamp_(-(p - 1), w - 1) + m
    start = (r0[:, None] + torch.arange(p, device=r0.device)) * src.wp + c0[:, None]  # (N, P)
    chan = torch.arange(c, device=r0.device) * (src.hp * src.wp)
    # Gather in (tile, row, channel, column) layout so both passes are plain batched matmuls.
    seg = (start[:, :, None] + chan).view(-1)
    patch = src.segments[:, :p].index_select(0, seg).view(-1, p * c, p)
    table = _table(span).to(patch.device)
    # Horizontal pass as (taps^T)(patch^T) on transposed views: a short, wide product per tile,
    # which batched BLAS runs faster than the tall, 4-column patch·taps (same sums).
    hor = _round_shift_(torch.bmm(table[fx].transpose(1, 2), patch.transpose(1, 2)))  # (N, span, P * C)
    hor = hor.view(-1, span, p, c).permute(0, 2, 3, 1).reshape(-1, p, c * span)  # (N, P, C * span)
    ver = torch.bmm(table[fy].transpose(1, 2), hor)  # (N, span, C * span)
    return _round_shift_(ver).view(-1, span, c, span)


def _warp_all_blocks(src: _Padded, vy: Tensor, vx: Tensor) -> Tensor:
    """Warp every 4x4 block of ``src`` by its own vector; vy, vx: (hb, wb) int64 1/64 pel.

    Returns the (C, 4 hb, 4 wb) float64 prediction (uncropped). Bands of block rows keep each
    band's patches (~3 KiB per tile) cache- and heap-sized.
    """
    hb, wb = vy.shape
    c, dev = src.c, vy.device
    out = torch.empty(c, hb * MOTION_BLOCK, wb * MOTION_BLOCK, dtype=torch.float64, device=dev)
    bx = torch.arange(wb, device=dev) * MOTION_BLOCK
    rows = max(1, _BAND_TILES // wb)
    for r0 in range(0, hb, rows):
        r1 = min(hb, r0 + rows)
        by = torch.arange(r0, r1, device=dev).repeat_interleave(wb) * MOTION_BLOCK
        tiles = _filter_patches(src, by, bx.repeat(r1 - r0), vy[r0:r1].reshape(-1), vx[r0:r1].reshape(-1), MOTION_BLOCK)
        band = tiles.view(r1 - r0, wb, MOTION_BLOCK, c, MOTION_BLOCK).permute(3, 0, 2, 1, 4)
        out[:, r0 * MOTION_BLOCK : r1 * MOTION_BLOCK].view(c, r1 - r0, MOTION_BLOCK, wb, MOTION_BLOCK).copy_(band)
    return out


def warp_blocks(ref: Tensor, block_flow_q: Tensor) -> Tensor:
    """``warp_exact`` of a motion field that is constant on 4x4 blocks, given one vector per block.

    Args:
        ref: (C, H, W) float64 holding exact Q16 integers.
        block_flow_q: (2, ceil(H/4), ceil(W/4)) int64 in 1/64 pel, channel 0 = x, 1 = y;
            partial blocks at the right and bottom edges use their block's vector.
    Returns:
        (C, H, W) float64, the same integers as ``warp_exact`` on the per-pixel field.
    """
    c, h, w = ref.shape
    hb, wb = -(-h // MOTION_BLOCK), -(-w // MOTION_BLOCK)
    if ref.dtype != torch.float64 or block_flow_q.dtype != torch.int64 or tuple(block_flow_q.shape) != (2, hb, wb):
        raise ValueError(f"warp_blocks: expected float64 ref and int64 (2, {hb}, {wb}) vectors, got {tuple(block_flow_q.shape)}")
    src = _Padded(ref, margin=MOTION_BLOCK + WARP_TAPS - 2, seg=MOTION_BLOCK + WARP_TAPS - 1)
    out = _warp_all_blocks(src, block_flow_q[1], block_flow_q[0])
    return out[:, :h, :w].contiguous()


def warp_exact(ref: Tensor, flow_q: Tensor) -> Tensor:
    """Bit-exact backward warp of Q16 samples by a 1/64-pel motion field.

    Args:
        ref: (C, H, W) int64, or float64 holding exact integers: Q16 samples.
        flow_q: (2, H, W) int64 motion in 1/64 pel, channel 0 = x, channel 1 = y.
    Returns:
        (C, H, W) Q16 prediction, same dtype as ``ref``.

    Correct for any per-pixel field; 4x4 blocks with a constant vector take a fast path that gives
    the same integers as the per-pixel computation.
    """
    if ref.dim() != 3 or flow_q.dim() != 3 or flow_q.shape[0] != 2 or flow_q.shape[1:] != ref.shape[1:]:
        raise ValueError(
            f"warp_exact: expected ref (C,H,W) and flow_q (2,H,W), got {tuple(ref.shape)} and {tuple(flow_q.shape)}"
        )
    if ref.dtype not in (torch.int64, torch.float64):
        raise TypeError(f"warp_exact: ref must be int64 or float64 (exact integers), got {ref.dtype}")
    if flow_q.dtype != torch.int64:
        raise TypeError(f"warp_exact: flow_q must be int64 (1/64 pel), got {flow_q.dtype}")
    c, h, w = ref.shape
    dev = ref.device
    src = _Padded(ref.to(torch.float64), margin=MOTION_BLOCK + WARP_TAPS - 2, seg=MOTION_BLOCK + WARP_TAPS - 1)
    flow_q = flow_q.to(dev)
    hb, wb = -(-h // MOTION_BLOCK), -(-w // MOTION_BLOCK)
    ph, pw = hb * MOTION_BLOCK - h, wb * MOTION_BLOCK - w
    # Replicate-pad the field to whole blocks, then find the blocks holding a single vector.
    fpad = flow_q
    if ph or pw:
        fpad = torch.cat([fpad, fpad[:, -1:, :].expand(2, ph, w)], dim=1)
        fpad = torch.cat([fpad, fpad[:, :, -1:].expand(2, hb * MOTION_BLOCK, pw)], dim=2)
    fblk = fpad.view(2, hb, MOTION_BLOCK, wb, MOTION_BLOCK)
    head = fblk[:, :, :1, :, :1]
    const = (fblk == head).all(4).all(2).all(0).flatten()  # (hb * wb,)
    by = torch.arange(hb, device=dev).repeat_interleave(wb)
    bx = torch.arange(wb, device=dev).repeat(hb)
    vx_b, vy_b = head[0].flatten(), head[1].flatten()

    if bool(const.all()):
        out = _warp_all_blocks(src, vy_b.view(hb, wb), vx_b.view(hb, wb))
    else:
        out = torch.empty(c, hb * MOTION_BLOCK, wb * MOTION_BLOCK, dtype=torch.float64, device=dev)
        sel = const.nonzero().squeeze(1)
        if sel.numel():
            tiles = _filter_patches(
                src, by[sel] * MOTION_BLOCK, bx[sel] * MOTION_BLOCK, vy_b[sel], vx_b[sel], MOTION_BLOCK
            )
            out.view(c, hb, MOTION_BLOCK, wb, MOTION_BLOCK)[:, by[sel], :, bx[sel], :] = tiles.permute(0, 2, 1, 3)
        # Per-pixel path for the blocks whose vectors differ (chunked to bound memory).
        rest = (~const).nonzero().squeeze(1)
        oy = torch.arange(MOTION_BLOCK, device=dev).repeat_interleave(MOTION_BLOCK)
        ox = torch.arange(MOTION_BLOCK, device=dev).repeat(MOTION_BLOCK)
        py = (by[rest, None] * MOTION_BLOCK + oy).flatten()
        px = (bx[rest, None] * MOTION_BLOCK + ox).flatten()
        chunk = 1 << 15
        for s in range(0, py.numel(), chunk):
            yy, xx = py[s : s + chunk], px[s : s + chunk]
            vec = fpad[:, yy, xx]
            pix = _filter_patches(src, yy, xx, vec[1], vec[0], 1)  # (n, 1, C, 1)
            out[:, yy, xx] = pix[:, 0, :, 0].T
    out = out[:, :h, :w]
    if ref.dtype == torch.int64:
        return out.to(torch.int64)
    return out.contiguous()
