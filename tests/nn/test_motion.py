"""Motion initialisation: global translation search and block flow estimation on real texture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from coolchic_stream.nn.motion import estimate_flow, global_translation, shift_clamped
from coolchic_stream.nn.warp import upsample_motion, warp


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    img = data.astronaut()[80:208, 120:280].astype(np.float32) / 255  # 128 x 160, face and suit
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10((a - b).square().mean()))


def test_shift_clamped_convention():
    img = torch.arange(12.0).view(1, 1, 3, 4)
    out = shift_clamped(img, 1, -2)  # out[y, x] = img[y + 1, x - 2]
    assert out[0, 0, 0, 2] == img[0, 0, 1, 0] and out[0, 0, 2, 3] == img[0, 0, 2, 1]
    assert out[0, 0, 0, 0] == img[0, 0, 1, 0]  # clamped


@pytest.mark.parametrize("ty,tx", [(0, 0), (1, -1), (-1, 0), (5, -9), (-23, 17), (40, -50)])
def test_global_translation_recovers_shift(astronaut, ty, tx):
    target = shift_clamped(astronaut, ty, tx)
    assert global_translation(target, astronaut, max_shift=64) == (ty, tx)


def test_global_translation_respects_max_shift(astronaut):
    ty, tx = global_translation(shift_clamped(astronaut, 30, -30), astronaut, max_shift=8)
    assert abs(ty) <= 8 and abs(tx) <= 8


def _interior_error(est: torch.Tensor, true: torch.Tensor, border: int = 2) -> torch.Tensor:
    """Max-component absolute error per block, border blocks dropped (clamping is ambiguous there)."""
    return (est - true)[0, :, border:-border, border:-border].abs().max(dim=0).values


@pytest.mark.parametrize("vx,vy", [(3.0, -2.0), (2.25, -1.75), (-6.5, 4.75)])
def test_estimate_flow_global_translation(astronaut, vx, vy):
    h, w = astronaut.shape[-2:]
    true = torch.zeros(1, 2, h // 4, w // 4)
    true[:, 0], true[:, 1] = vx, vy
    target = warp(astronaut, upsample_motion(true, h, w))
    est = estimate_flow(target, astronaut)
    assert est.shape == (1, 2, h // 4, w // 4)
    assert torch.equal(est * 4, torch.round(est * 4))  # quarter pel
    err = _interior_error(est, true)
    assert float((err <= 0.25).float().mean()) > 0.85
    assert float(err.median()) == 0.0
    pred = warp(astronaut, upsample_motion(est, h, w))
    assert psnr(pred, target) > psnr(astronaut, target) + 15


def test_estimate_flow_piecewise_motion(astronaut):
    h, w = astronaut.shape[-2:]
    true = torch.zeros(1, 2, h // 4, w // 4)
    true[:, 0, :, :20], true[:, 1, :, :20] = 3.5, -2.0
    true[:, 0, :, 20:], true[:, 1, :, 20:] = -4.0, 1.25
    target = warp(astronaut, upsample_motion(true, h, w))
    est = estimate_flow(target, astronaut)
    err = _interior_error(est, true)
    away = torch.ones_like(err, dtype=torch.bool)
    away[:, 20 - 2 - 2 : 20 - 2 + 2] = False  # blocks next to the motion boundary
    assert float((err[away] <= 0.25).float().mean()) > 0.85
    pred = warp(astronaut, upsample_motion(est, h, w))
    assert psnr(pred, target) > psnr(astronaut, target) + 15


def test_estimate_flow_odd_size_and_integer_mode(astronaut):
    ref = astronaut[:, :, :45, :67]
    target = shift_clamped(ref, 2, -3)
    est = estimate_flow(target, ref, subpel=1)
    assert est.shape == (1, 2, 12, 17)
    assert torch.equal(est, torch.round(est))
    inner = est[0, :, 2:-2, 2:-2]
    ok = (inner[0] == -3) & (inner[1] == 2)
    assert float(ok.float().mean()) > 0.8
    with pytest.raises(ValueError):
        estimate_flow(target, ref, block=8)
