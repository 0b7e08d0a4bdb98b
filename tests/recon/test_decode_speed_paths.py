"""The decoder's fast paths give exactly the integers of the plain reference computations.

Each reference below is the straightforward formulation the fast code replaced (per-Cool-chic
wavefront loop with IntegerArm + laplace_parameters, float64 conv2d, out-of-place shift).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from coolchic_stream.architecture import grid_sizes
from coolchic_stream.entropy.arm_int import ArmStack, IntegerArm, laplace_parameters
from coolchic_stream.entropy.latents import _FAMILY, LatentLayout, decode_latents, decode_latents_many, encode_latents
from coolchic_stream.entropy.stream import open_decoder, seal
from coolchic_stream.recon.coolchic import _conv
from coolchic_stream.recon.fixed import round_shift, round_shift_

import constriction


def random_arm(rng, context: int, hidden: int, stabiliser: bool = True, big: bool = False) -> IntegerArm:
    lim = 255 if big else 40
    n_out = 2 if stabiliser else 1
    weights = [rng.integers(-lim, lim, (context, context)) for _ in range(hidden)] + [
        rng.integers(-lim, lim, (2, context)) for _ in range(n_out)
    ]
    biases = [rng.integers(-3000, 3000, context) for _ in range(hidden)] + [rng.integers(-3000, 3000, 2) for _ in range(n_out)]
    return IntegerArm.from_integers(weights, biases, -8 if big else -7, -16 if big else -12, hidden)


def reference_decode(layout: LatentLayout, data: bytes, arm: IntegerArm) -> list[np.ndarray]:
    """The original one-Cool-chic wavefront loop."""
    decoder = open_decoder(data)
    order = layout.order
    buffer_idx, grid_of, steps = order["buffer"], order["grid"], order["steps"]
    offsets = layout.neighbour_offsets
    buf = np.zeros(layout.buffer_size(), dtype=np.float64)
    for t in range(steps.size - 1):
        lo, hi = steps[t], steps[t + 1]
        pos = buffer_idx[lo:hi]
        ctx = buf[pos[:, None] + offsets[grid_of[lo:hi]]]
        mean, scale = laplace_parameters(*arm(ctx))
        buf[pos] = decoder.decode(_FAMILY, mean, scale)
    flat = np.empty(layout.n_symbols, dtype=np.int64)
    flat[order["raster"]] = buf[buffer_idx]
    return layout.split(flat)


@pytest.mark.parametrize("context,hidden,stabiliser", [(8, 2, True), (6, 1, True), (20, 2, True), (3, 0, True), (8, 1, False), (1, 0, False)])
@pytest.mark.parametrize("big", [False, True])
def test_arm_stack_equals_integer_arm(context, hidden, stabiliser, big):
    rng = np.random.default_rng(context * 10 + hidden + big)
    arms = [random_arm(rng, context, hidden, stabiliser, big) for _ in range(3)]
    ctx = rng.integers(-64, 64, (3, 777, context)).astype(np.float64)
    ctx[:, :5] = 63.0
    ctx[:, 5:10] = -64.0
    mean, scale = ArmStack(arms)(ctx)
    for k, arm in enumerate(arms):
        ref_mean, ref_scale = laplace_parameters(*arm(ctx[k]))
        assert np.array_equal(mean[k], ref_mean) and np.array_equal(scale[k], ref_scale)


def test_arm_stack_rejects_mixed_architectures():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        ArmStack([random_arm(rng, 8, 2), random_arm(rng, 8, 1)])


def test_merged_decoding_of_several_coolchics_equals_one_by_one():
    rng = np.random.default_rng(7)
    jobs, truth = [], []
    specs = [((37, 45), (0, 5), 8, 2), ((37, 45), (0, 5), 8, 2), ((37, 45), (2, 5), 6, 1), ((9, 3), (0, 2), 20, 2), ((2, 2), (0, 1), 8, 2)]
    for size, res, context, hidden in specs:
        layout = LatentLayout(tuple(grid_sizes(*size, res)), context)
        arm = random_arm(rng, context, hidden)
        grids = [np.clip(np.round(rng.laplace(0, 2, s)), -64, 63).astype(np.int64) for s in layout.grid_sizes]
        data = seal([encode_latents(layout, grids, arm)])
        jobs.append((layout, data, arm))
        truth.append(grids)
    merged = decode_latents_many([(layout, open_decoder(data), arm) for layout, data, arm in jobs])
    for (layout, data, arm), grids, got in zip(jobs, truth, merged):
        ref = reference_decode(layout, data, arm)
        single = decode_latents(layout, open_decoder(data), arm)
        for a, b, c, d in zip(grids, ref, single, got):
            assert np.array_equal(a, b) and np.array_equal(b, c) and np.array_equal(c, d)
            assert d.dtype == np.int64


def reference_conv(x, weight, bias_q, s):
    k = weight.shape[-1]
    p = (k - 1) // 2
    y = F.conv2d(F.pad(x, (p, p, p, p), mode="replicate") if p else x, weight)
    return reference_round_shift(y + bias_q.view(1, -1, 1, 1), s)


def reference_round_shift(x, bits):
    if bits <= 0:
        return x * float(1 << -bits)
    return torch.floor((x + float(1 << (bits - 1))) * (1.0 / (1 << bits)))


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("size", [(1, 1), (7, 13), (33, 18)])
def test_conv_matches_conv2d_reference(k, size):
    g = torch.Generator().manual_seed(k * 100 + size[0])
    c_in, c_out = 5, 4
    x = torch.randint(-(1 << 22), 1 << 22, (1, c_in, *size), generator=g).to(torch.float64)
    w = torch.randint(-(1 << 12), 1 << 12, (c_out, c_in, k, k), generator=g).to(torch.float64)
    b = torch.randint(-(1 << 30), 1 << 30, (c_out,), generator=g).to(torch.float64)
    for s in (0, 8, 12):
        assert torch.equal(_conv(x, w, b, s), reference_conv(x, w, b, s))


def test_round_shift_matches_reference_and_keeps_input():
    x = torch.arange(-5000, 5000, dtype=torch.float64) * 37
    before = x.clone()
    for bits in (-2, 0, 1, 8, 16):
        assert torch.equal(round_shift(x, bits), reference_round_shift(x, bits))
    assert torch.equal(x, before)
    for bits in (1, 8, 16):
        assert torch.equal(round_shift_(x.clone(), bits), reference_round_shift(x, bits))


@pytest.mark.parametrize("m", [2, 3, 4, 6])
@pytest.mark.parametrize("size", [(1, 1), (2, 5), (9, 13)])
def test_phase_upsampling_matches_transposed_conv(m, size):
    """The decoder's two-phase correlation (rounding folded in) gives the integers of the
    transposed convolution followed by the rounding shift."""
    from coolchic_stream.nn.upsampling import symmetric_kernel, upsample2x_1d
    from coolchic_stream.recon.coolchic import _upsample2x

    g = torch.Generator().manual_seed(m * 10 + size[0])
    half = torch.randint(-(1 << 10), 1 << 10, (m,), generator=g).to(torch.float64)
    x = torch.randint(-(1 << 22), 1 << 22, (3, 1, *size), generator=g).to(torch.float64)
    for dim in (2, 3):
        expected = upsample2x_1d(x, symmetric_kernel(half, odd=False), dim)
        for s in (0, 8, 12):
            assert torch.equal(_upsample2x(x, half, dim, s), reference_round_shift(expected, s))


@pytest.mark.parametrize("m", [1, 2, 4])
def test_preconcat_filter_with_folded_rounding_matches_reference(m):
    from coolchic_stream.nn.upsampling import filter_1d, symmetric_kernel
    from coolchic_stream.recon.coolchic import _filter

    g = torch.Generator().manual_seed(m)
    kernel = symmetric_kernel(torch.randint(-(1 << 10), 1 << 10, (m,), generator=g).to(torch.float64), odd=True)
    x = torch.randint(-(1 << 22), 1 << 22, (1, 1, 7, 10), generator=g).to(torch.float64)
    for dim in (2, 3):
        for s in (0, 8):
            assert torch.equal(_filter(x, kernel, dim, s), reference_round_shift(filter_1d(x, kernel, dim), s))


@pytest.mark.parametrize(("frame_type", "size"), [("P", (13, 22)), ("B", (16, 12)), ("B", (9, 5))])
def test_assembly_equals_the_plain_formula(frame_type, size):
    """In-place blending and one vector per 4x4 block give the integers of
    α·(β·warp(r0) + (1-β)·warp(r1)) + r computed out of place on per-pixel flows."""
    from coolchic_stream.recon.fixed import ONE
    from coolchic_stream.recon.frame import assemble, motion_to_flow
    from coolchic_stream.recon.warp import warp_exact
    from coolchic_stream.types import FrameType

    ft = FrameType[frame_type]
    h, w = size
    g = torch.Generator().manual_seed(h * 31 + w)
    n_refs = 1 if ft == FrameType.P else 2
    residue = torch.randint(-(1 << 17), 1 << 17, (3 + n_refs, h, w), generator=g).to(torch.float64)
    motion = torch.randint(-(1 << 20), 1 << 20, (2 * n_refs, -(-h // 4), -(-w // 4)), generator=g).to(torch.float64)
    refs = [torch.randint(0, 1 << 16, (3, h, w), generator=g).to(torch.float64) for _ in range(n_refs)]
    translations = [(1, -2), (0, 3)][:n_refs]

    def gate(raw):
        return torch.clamp(raw + ONE / 2, 0.0, ONE)

    preds = [warp_exact(r, motion_to_flow(motion[2 * i : 2 * i + 2], h, w, translations[i])) for i, r in enumerate(refs)]
    if ft == FrameType.P:
        pred = preds[0]
    else:
        beta = gate(residue[4:5])
        pred = reference_round_shift(beta * preds[0] + (ONE - beta) * preds[1], 16)
    expected = reference_round_shift(gate(residue[3:4]) * pred, 16) + residue[:3]
    before = [r.clone() for r in refs]
    assert torch.equal(assemble(ft, residue, motion, refs, translations), expected)
    assert all(torch.equal(a, b) for a, b in zip(refs, before))  # references are not touched
