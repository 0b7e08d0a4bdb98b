"""Bit-exact fixed-point warp: slow reference, identities, Q16 conversions, agreement with float."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coolchic_stream.nn.warp import flow_to_q64, quantize_flow, upsample_motion, warp
from coolchic_stream.recon.fixed import fixed_to_samples, samples_to_fixed
from coolchic_stream.recon.warp import SINC8_TAPS, warp_exact


def slow_warp_exact(ref: np.ndarray, flow_q: np.ndarray) -> np.ndarray:
    """Literal per-pixel transcription of the normative definition (Python ints)."""
    taps = np.array(SINC8_TAPS, dtype=np.int64)
    c, h, w = ref.shape
    out = np.zeros_like(ref, dtype=np.int64)
    for y in range(h):
        for x in range(w):
            vx, vy = int(flow_q[0, y, x]), int(flow_q[1, y, x])
            ix, fx = vx >> 6, vx & 63
            iy, fy = vy >> 6, vy & 63
            acc_v = np.zeros(c, dtype=np.int64)
            for k in range(-3, 5):
                r = min(max(y + iy + k, 0), h - 1)
                acc_h = np.zeros(c, dtype=np.int64)
                for j in range(-3, 5):
                    col = min(max(x + ix + j, 0), w - 1)
                    acc_h += taps[fx, j + 3] * ref[:, r, col]
                acc_v += taps[fy, k + 3] * ((acc_h + (1 << 13)) >> 14)
            out[:, y, x] = (acc_v + (1 << 13)) >> 14
    return out


def random_q16(gen: torch.Generator, c: int, h: int, w: int) -> torch.Tensor:
    return torch.randint(0, 65537, (c, h, w), generator=gen, dtype=torch.int64)


def block_flow(gen: torch.Generator, h: int, w: int, spread: int) -> torch.Tensor:
    q = torch.randint(-spread, spread + 1, (1, 2, -(-h // 4), -(-w // 4)), generator=gen)
    return upsample_motion(q, h, w)[0].contiguous()


def test_tap_table_matches_formula():
    taps = np.array(SINC8_TAPS)
    assert taps.shape == (64, 8)
    for f in range(64):
        for k in range(-3, 5):
            t = f / 64 - k
            val = math.cos(math.pi * t / 8) * (1.0 if t == 0 else math.sin(math.pi * t) / (math.pi * t))
            scaled = val * 2**14
            assert taps[f, k + 3] == int(math.copysign(math.floor(abs(scaled) + 0.5), scaled))
    assert list(taps[0]) == [0, 0, 0, 1 << 14, 0, 0, 0, 0]
    # mirror symmetry: fraction f at tap k equals fraction 64 - f at tap 1 - k
    for f in range(1, 64):
        assert list(taps[f]) == list(taps[64 - f][::-1])


@pytest.mark.parametrize("h,w", [(33, 17), (5, 9), (1, 1), (4, 4), (8, 3)])
def test_per_pixel_flow_matches_slow_reference(h, w):
    gen = torch.Generator().manual_seed(h * 100 + w)
    ref = random_q16(gen, 3, h, w)
    flow = torch.randint(-64 * 40, 64 * 40, (2, h, w), generator=gen)  # far outside the frame too
    flow[:, : h // 2] //= 16  # and some small vectors
    expected = slow_warp_exact(ref.numpy(), flow.numpy())
    got = warp_exact(ref, flow)
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), expected)
    got64 = warp_exact(ref.to(torch.float64), flow)
    assert got64.dtype == torch.float64
    np.testing.assert_array_equal(got64.numpy(), expected.astype(np.float64))


@pytest.mark.parametrize("h,w", [(33, 17), (16, 12), (7, 30)])
def test_block_flow_fast_path_matches_slow_reference(h, w):
    gen = torch.Generator().manual_seed(7 + h + w)
    ref = random_q16(gen, 2, h, w)
    flow = block_flow(gen, h, w, spread=64 * 12)
    expected = slow_warp_exact(ref.numpy(), flow.numpy())
    np.testing.assert_array_equal(warp_exact(ref, flow).numpy(), expected)
    # Mixed: a few blocks broken into per-pixel vectors.
    flow2 = flow.clone()
    flow2[:, 1, 2] += 5
    flow2[:, h - 1, w - 1] -= 70
    expected2 = slow_warp_exact(ref.numpy(), flow2.numpy())
    np.testing.assert_array_equal(warp_exact(ref, flow2).numpy(), expected2)


@pytest.mark.parametrize("h,w", [(33, 17), (16, 12), (1, 5), (288, 352)])
def test_one_vector_per_block_equals_the_per_pixel_field(h, w, monkeypatch):
    """warp_blocks (vectors of the 1/4-resolution motion grid) = warp_exact on the expanded field,
    with the block rows split into several bands."""
    from coolchic_stream.recon import warp as warp_module
    from coolchic_stream.recon.warp import warp_blocks

    monkeypatch.setattr(warp_module, "_BAND_TILES", 37)
    gen = torch.Generator().manual_seed(h * w)
    ref = random_q16(gen, 3, h, w).to(torch.float64)
    hb, wb = -(-h // 4), -(-w // 4)
    vectors = torch.randint(-64 * 9, 64 * 9, (2, hb, wb), generator=gen)
    flow = vectors.repeat_interleave(4, 1).repeat_interleave(4, 2)[:, :h, :w].contiguous()
    assert torch.equal(warp_blocks(ref, vectors), warp_exact(ref, flow))
    with pytest.raises(ValueError, match="warp_blocks"):
        warp_blocks(ref, vectors[:, :-1])


@settings(max_examples=15, deadline=None)
@given(
    h=st.integers(1, 14),
    w=st.integers(1, 14),
    seed=st.integers(0, 2**31 - 1),
    spread=st.sampled_from([0, 63, 64 * 3, 64 * 50]),
    per_pixel=st.booleans(),
)
def test_warp_exact_hypothesis(h, w, seed, spread, per_pixel):
    gen = torch.Generator().manual_seed(seed)
    ref = random_q16(gen, 1, h, w)
    if per_pixel:
        flow = torch.randint(-spread, spread + 1, (2, h, w), generator=gen)
    else:
        flow = block_flow(gen, h, w, spread)
    np.testing.assert_array_equal(warp_exact(ref, flow).numpy(), slow_warp_exact(ref.numpy(), flow.numpy()))


def test_zero_flow_is_identity():
    gen = torch.Generator().manual_seed(1)
    ref = random_q16(gen, 3, 29, 31)
    assert torch.equal(warp_exact(ref, torch.zeros(2, 29, 31, dtype=torch.int64)), ref)


@pytest.mark.parametrize("dy,dx", [(0, 1), (2, -3), (-7, 5), (40, -50)])
def test_integer_flow_is_border_clamped_shift(dy, dx):
    gen = torch.Generator().manual_seed(2)
    h, w = 21, 26
    ref = random_q16(gen, 3, h, w)
    flow = torch.empty(2, h, w, dtype=torch.int64)
    flow[0], flow[1] = dx * 64, dy * 64
    rows = np.clip(np.arange(h) + dy, 0, h - 1)
    cols = np.clip(np.arange(w) + dx, 0, w - 1)
    expected = ref.numpy()[:, rows][:, :, cols]
    np.testing.assert_array_equal(warp_exact(ref, flow).numpy(), expected)


def test_fixed_point_roundtrip_8_to_16_bit():
    for bd in (8, 10, 12, 16):
        m = (1 << bd) - 1
        s = torch.arange(m + 1, dtype=torch.int64)
        q = samples_to_fixed(s, bd)
        assert q[0] == 0 and q[-1] == 65536
        assert torch.equal(fixed_to_samples(q, bd), s)
    # the conversion back clamps overshoot of the sinc filter
    assert fixed_to_samples(torch.tensor([-5000.0, 70000.0], dtype=torch.float64), 8).tolist() == [0, 255]


def test_rejects_bad_inputs():
    ref = torch.zeros(1, 4, 4, dtype=torch.int64)
    with pytest.raises(TypeError):
        warp_exact(ref.float(), torch.zeros(2, 4, 4, dtype=torch.int64))
    with pytest.raises(TypeError):
        warp_exact(ref, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError):
        warp_exact(ref, torch.zeros(2, 4, 5, dtype=torch.int64))


@pytest.mark.parametrize("per_pixel", [False, True])
def test_float_warp_agrees_with_exact(per_pixel):
    gen = torch.Generator().manual_seed(3)
    h, w = 37, 45
    img = torch.rand(1, 3, h, w, generator=gen, dtype=torch.float64)
    if per_pixel:
        flow = torch.randn(1, 2, h, w, generator=gen, dtype=torch.float64) * 4
    else:
        flow = upsample_motion(torch.randn(1, 2, 10, 12, generator=gen, dtype=torch.float64) * 6, h, w)
    flow = quantize_flow(flow)
    q16 = samples_to_fixed(torch.round(img[0] * 255).to(torch.int64), 8).to(torch.int64)
    exact = warp_exact(q16, flow_to_q64(flow[0])).to(torch.float64) / 65536
    approx = warp(q16[None].to(torch.float32) / 65536, flow.to(torch.float32))[0]
    assert (exact - approx).abs().max() < 1e-3
