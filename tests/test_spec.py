"""The normative constants live once, in a torch-free ``spec``, and every side computes with them."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import coolchic_stream.entropy
import coolchic_stream.recon
from coolchic_stream import spec
from coolchic_stream.architecture import ArmParameter
from coolchic_stream.entropy import arm_int
from coolchic_stream.nn import arm as float_arm
from coolchic_stream.nn.intercoding import InterCodingModule
from coolchic_stream.nn.upsampling import fast_upsample2x, symmetric_kernel, upsample2x_1d
from coolchic_stream.nn.warp import _coefficients, flow_to_q64, upsample_motion
from coolchic_stream.recon.frame import assemble
from coolchic_stream.recon.warp import SINC8_TAPS, TAP_BITS
from coolchic_stream.types import FrameType


def _modules(package) -> list[str]:
    return sorted(f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__))


def _loaded_after(imports: list[str]) -> set[str]:
    """Names in ``sys.modules`` of a fresh interpreter after importing ``imports``."""
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code, *imports], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_decoder_side_does_not_import_the_float_model() -> None:
    imports = _modules(coolchic_stream.recon) + _modules(coolchic_stream.entropy)
    assert "coolchic_stream.recon.coolchic" in imports and "coolchic_stream.entropy.latents" in imports
    loaded = _loaded_after(imports)
    assert set(imports) <= loaded
    assert sorted(m for m in loaded if m == "coolchic_stream.nn" or m.startswith("coolchic_stream.nn.")) == []


def test_spec_is_torch_free() -> None:
    loaded = _loaded_after(["coolchic_stream.spec"])
    assert "coolchic_stream.spec" in loaded
    assert "torch" not in loaded


def test_context_geometry() -> None:
    offsets = spec.PRIORITY_OFFSETS
    assert spec.MAX_ARM_CONTEXT == len(offsets) == len(set(offsets))
    assert all(dy < 0 or (dy == 0 and dx < 0) for dy, dx in offsets)  # causal in raster order
    assert all(max(-dy, abs(dx)) <= spec.CONTEXT_PAD for dy, dx in offsets)
    for s in range(1, spec.MAX_ARM_CONTEXT + 1):
        lag = spec.wavefront_lag(s)
        # every neighbour of (y, x) sits on an earlier step x + lag*y, and lag is the smallest such
        assert all(dx + lag * dy < 0 for dy, dx in spec.context_offsets(s))
        assert lag == 1 or any(dx + (lag - 1) * dy >= 0 for dy, dx in spec.context_offsets(s))


def test_float_and_integer_arm_clamp_alike() -> None:
    """Raw outputs far out of range land on the same (mu, scale) in both ARMs, in real units."""
    d = 2
    arm = float_arm.Arm(ArmParameter(d, 0, stabiliser=False))
    raw = torch.tensor([[-1e4, -1e4], [0.0, 0.0], [1e4, 1e4]], dtype=torch.float64)
    with torch.no_grad():
        arm.double()
        arm.out.weight.copy_(torch.eye(2, dtype=torch.float64))
        arm.out.bias.zero_()
        _, scale = arm(raw)
    # the integer ARM with identity output weights (Q8) and zero bias sees the same raw outputs
    integer = arm_int.IntegerArm.from_integers([np.eye(2, dtype=np.int64)], [np.zeros(2, np.int64)], 0, 0, 0)
    mu_q8, ls_q8 = integer(raw.numpy())
    mean, int_scale = arm_int.laplace_parameters(mu_q8, ls_q8)
    expected_log = np.clip(raw.numpy()[:, 1] - spec.LOG_SCALE_SHIFT, spec.LOG_SCALE_MIN, spec.LOG_SCALE_MAX)
    np.testing.assert_allclose(scale.numpy(), np.exp(expected_log), rtol=1e-12)
    np.testing.assert_allclose(int_scale, np.exp(expected_log), rtol=0, atol=2**-21)  # table: 20 fractional bits
    assert ls_q8.tolist() == [spec.LOG_SCALE_MIN_Q8, -spec.LOG_SCALE_SHIFT_Q8, spec.LOG_SCALE_MAX_Q8]
    assert mean.tolist() == [spec.LATENT_MIN, 0.0, spec.LATENT_MAX + 1 - 1 / spec.ARM_ONE]
    assert arm_int.SCALE_TABLE.size == spec.LOG_SCALE_MAX_Q8 - spec.LOG_SCALE_MIN_Q8 + 1


def test_q8_constants_are_the_real_ones() -> None:
    one = 1 << spec.ARM_ACT_BITS
    assert spec.ARM_ONE == one
    assert spec.LOG_SCALE_SHIFT_Q8 == spec.LOG_SCALE_SHIFT * one
    assert (spec.LOG_SCALE_MIN_Q8, spec.LOG_SCALE_MAX_Q8) == (spec.LOG_SCALE_MIN * one, spec.LOG_SCALE_MAX * one)
    assert spec.MU_MIN_Q8 == spec.LATENT_MIN * one and spec.MU_MAX_Q8 == (spec.LATENT_MAX + 1) * one - 1
    with pytest.raises(ValueError):
        spec._q8(1.0 / (2 * one))


@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 8])
def test_upsampling_kernels_from_one_definition(m: int) -> None:
    """The float kernel mirrors as ``spec.symmetric_index`` says, and the polyphase form of
    ``spec.phase_taps`` (what the exact decoder runs) equals the transposed convolution."""
    half = torch.arange(1, m + 1, dtype=torch.float64) * 3.0 + torch.rand(m, dtype=torch.float64)
    assert symmetric_kernel(half, odd=True).tolist() == [half[j].item() for j in spec.symmetric_index(m, odd=True)]
    even = symmetric_kernel(half, odd=False)
    assert even.tolist() == half.tolist() + half.flip(0).tolist()
    x = torch.rand(2, 7, 9, dtype=torch.float64)
    for dim in (1, 2):
        conv = upsample2x_1d(x.unsqueeze(1), even, dim + 1).squeeze(1)
        torch.testing.assert_close(fast_upsample2x(x, half, dim), conv, rtol=0, atol=1e-12)


def test_float_warp_filter_is_the_decoder_filter() -> None:
    """The float model's windowed sinc, rounded to TAP_BITS, is the decoder's integer table."""
    assert np.array(SINC8_TAPS).shape == (spec.FLOW_FRACTION, spec.WARP_TAPS)
    s = torch.arange(spec.FLOW_FRACTION, dtype=torch.float64) / spec.FLOW_FRACTION
    taps, _ = _coefficients(s, "sinc8", deriv=False)
    scaled = taps * (1 << TAP_BITS)
    rounded = torch.sign(scaled) * torch.floor(scaled.abs() + 0.5)
    assert rounded.to(torch.int64).tolist() == [list(row) for row in SINC8_TAPS]
    assert flow_to_q64(torch.tensor([1.0 / spec.FLOW_FRACTION, -1.0])).tolist() == [1, -spec.FLOW_FRACTION]


def test_motion_block_and_residue_channels() -> None:
    assert spec.MOTION_BLOCK == 1 << spec.MOTION_LATENT_FINEST
    up = upsample_motion(torch.arange(4.0).view(1, 1, 2, 2).expand(1, 2, 2, 2), 2 * spec.MOTION_BLOCK, 5)
    assert up[0, 0, :, 0].tolist() == [0.0] * spec.MOTION_BLOCK + [2.0] * spec.MOTION_BLOCK
    # A B frame: float and exact assembly read the picture, alpha and beta from the same channels.
    h, w = 2 * spec.MOTION_BLOCK, 2 * spec.MOTION_BLOCK
    n_out = max(spec.PICTURE_CHANNELS, spec.ALPHA_CHANNEL, spec.BETA_CHANNEL) + 1
    residue = torch.zeros(1, n_out, h, w, dtype=torch.float64)
    residue[:, : spec.PICTURE_CHANNELS] = 0.125
    residue[:, spec.ALPHA_CHANNEL] = 0.0  # alpha = 1/2
    residue[:, spec.BETA_CHANNEL] = 0.25  # beta = 3/4
    refs = [torch.full((1, 3, h, w), v, dtype=torch.float64) for v in (0.5, 0.25)]
    motion = torch.zeros(1, 4, h // spec.MOTION_BLOCK, w // spec.MOTION_BLOCK, dtype=torch.float64)
    module = InterCodingModule(FrameType.B, [(0, 0), (0, 0)]).eval()
    expected = 0.5 * (0.75 * 0.5 + 0.25 * 0.25) + 0.125
    torch.testing.assert_close(module(residue, motion, refs), torch.full((1, 3, h, w), expected, dtype=torch.float64))
    one = float(1 << 16)
    exact = assemble(FrameType.B, residue[0] * one, motion[0] * one, [r[0] * one for r in refs], [(0, 0), (0, 0)])
    assert torch.equal(exact, torch.full((3, h, w), expected * one, dtype=torch.float64))


def test_a_tensor_is_predicted_by_the_overlap_and_zero_beyond() -> None:
    source = np.arange(2 * 3 * 3 * 3).reshape(2, 3, 3, 3)
    wider = spec.predict_tensor(source, (4, 3, 3, 3))  # an I frame's synthesis into a B frame's: 2 more channels
    assert np.array_equal(wider[:2], source) and not wider[2:].any()
    narrower = spec.predict_tensor(source, (1, 2, 3, 3))
    assert np.array_equal(narrower, source[:1, :2])
    assert spec.predict_tensor(np.array([5, -6]), (3,)).tolist() == [5, -6, 0]


def test_which_modules_can_be_predicted() -> None:
    from coolchic_stream.architecture import module_predictable, motion_parameter, residue_parameter
    from coolchic_stream.config import Complexity

    i, p, b = (residue_parameter(32, 48, n, Complexity.LOP) for n in (3, 4, 5))
    assert all(module_predictable(s, t, name) for s in (i, p, b) for t in (i, p, b) for name in spec.MODULE_NAMES)
    mop = residue_parameter(32, 48, 5, Complexity.MOP)  # one more synthesis layer: another structure
    assert not module_predictable(mop, b, "synthesis") and module_predictable(mop, b, "upsampling")
    smaller = residue_parameter(8, 8, 5, Complexity.LOP)  # fewer latent grids: fewer upsampling stages
    assert not module_predictable(smaller, b, "upsampling")
    assert module_predictable(motion_parameter(32, 48, 2, Complexity.LOP), motion_parameter(32, 48, 4, Complexity.LOP), "synthesis")
    assert not spec.predictable(((3, 3, 3, 3),), ((3, 3, 1, 1),))  # kernel sizes must agree
