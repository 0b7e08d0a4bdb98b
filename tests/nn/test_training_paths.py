"""The fast training forward and the straightforward baseline (nn.reference) compute the same thing."""

from __future__ import annotations

import pytest
import torch

from coolchic_stream.architecture import CoolChicEncoderParameter, parse_layers, residue_parameter
from coolchic_stream.architecture import ArmParameter
from coolchic_stream.config import Complexity
from coolchic_stream.nn.arm import gather_context, gather_contexts
from coolchic_stream.nn.coolchic import EVAL_QUANTIZER, CoolChicEncoder, QuantizerSettings
from coolchic_stream.nn.quantizer import NoiseType, QuantizerMode
from coolchic_stream.nn.reference import reference_context, reference_forward
from coolchic_stream.nn.upsampling import Upsampling

QUANTIZERS = [
    QuantizerSettings(QuantizerMode.SOFTROUND, NoiseType.GAUSSIAN, 0.2, 0.3),
    QuantizerSettings(QuantizerMode.SOFTROUND, NoiseType.KUMARASWAMY, 2.0, 0.3),
    QuantizerSettings(QuantizerMode.NOISE, NoiseType.GAUSSIAN, 0.2, 0.3),
    QuantizerSettings(QuantizerMode.STE, NoiseType.NONE, 0.0, 0.1),
    EVAL_QUANTIZER,
]


def _perturbed(param: CoolChicEncoderParameter, seed: int = 0) -> CoolChicEncoder:
    torch.manual_seed(seed)
    cc = CoolChicEncoder(param).double()
    with torch.no_grad():
        for g in cc.latents:
            g.normal_(0, 0.3)
        for p in cc.nn_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return cc


def _run(cc: CoolChicEncoder, forward, quantizer: QuantizerSettings):
    torch.manual_seed(7)
    out = forward(quantizer)
    loss = (out.raw - 0.3).square().mean() + out.rate.sum() * 1e-4
    cc.zero_grad(set_to_none=True)
    loss.backward()
    grads = {n: p.grad.clone() if p.grad is not None else None for n, p in cc.named_parameters()}
    return out.raw.detach(), out.rate.detach(), grads


@pytest.mark.parametrize("quantizer", QUANTIZERS, ids=lambda q: f"{q.mode.value}-{q.noise.value}")
@pytest.mark.parametrize(("height", "width", "complexity"), [(37, 51, Complexity.HOP), (16, 16, Complexity.MOP), (9, 30, Complexity.LOP)])
def test_fast_and_reference_forward_agree(height, width, complexity, quantizer):
    cc = _perturbed(residue_parameter(height, width, 3, complexity))
    raw_f, rate_f, grad_f = _run(cc, cc, quantizer)
    raw_r, rate_r, grad_r = _run(cc, lambda q: reference_forward(cc, q), quantizer)
    assert raw_f.shape == raw_r.shape and rate_f.shape == rate_r.shape
    torch.testing.assert_close(raw_f, raw_r, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(rate_f, rate_r, rtol=1e-9, atol=1e-9)
    for name, g in grad_r.items():
        if g is None:
            assert grad_f[name] is None or not grad_f[name].any(), name
            continue
        torch.testing.assert_close(grad_f[name], g, rtol=1e-7, atol=1e-9 * float(g.abs().max().clamp_min(1.0)), msg=name)


def test_fast_forward_float32_close_to_reference():
    torch.manual_seed(0)
    cc = _perturbed(residue_parameter(40, 56, 3, Complexity.HOP)).float()
    q = QUANTIZERS[0]
    raw_f, rate_f, _ = _run(cc, cc, q)
    raw_r, rate_r, _ = _run(cc, lambda q: reference_forward(cc, q), q)
    torch.testing.assert_close(raw_f, raw_r, rtol=1e-4, atol=1e-5)
    assert float((rate_f.sum() - rate_r.sum()).abs()) < 1e-4 * float(rate_r.sum())


def test_context_gather_matches_unfold_and_slices():
    sizes = [(7, 9), (4, 5), (2, 3), (1, 2), (1, 1)]
    grids = [torch.randn(1, 1, h, w, dtype=torch.float64) for h, w in sizes]
    flat = torch.cat([g.reshape(-1) for g in grids]).requires_grad_(True)
    for s in (1, 6, 14, 20):
        fast = gather_contexts(flat, sizes, s)
        assert torch.equal(fast.t(), torch.cat([gather_context(g, s) for g in grids]))
        assert torch.equal(fast.t(), torch.cat([reference_context(g, s) for g in grids]))
        assert torch.autograd.gradcheck(lambda x: gather_contexts(x, sizes, s), (flat,))


@pytest.mark.parametrize(("kernel", "preconcat"), [(8, 7), (4, 3), (6, 5), (10, 1), (12, 9)])
def test_polyphase_upsampling_matches_transposed_convolutions(kernel, preconcat):
    torch.manual_seed(1)
    ups = Upsampling(4, kernel, preconcat).double()
    with torch.no_grad():
        for p in ups.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    grids = [torch.randn(1, 1, -(-19 // 2**i), -(-26 // 2**i), dtype=torch.float64) for i in range(5)]
    torch.testing.assert_close(ups(grids), ups.forward_conv(grids), rtol=1e-12, atol=1e-12)


def test_synthesis_fast_path_matches_plain_layers():
    param = CoolChicEncoderParameter((13, 17), 4, parse_layers("24-1-linear-relu,X-1-linear-none,X-3-residual-relu,X-5-residual-none,6-3-linear-relu,X-1-linear-none", 4), ArmParameter(6, 1))
    cc = _perturbed(param)
    x = torch.randn(1, param.n_grids, 13, 17, dtype=torch.float64)
    torch.testing.assert_close(cc.synthesis(x), cc.synthesis.forward_plain(x), rtol=1e-12, atol=1e-12)


def test_training_phase_runs_and_keeps_the_best_parameters():
    from coolchic_stream.nn.frame import FrameEncoder
    from coolchic_stream.train.loop import Phase, evaluate, train_phase
    from coolchic_stream.train.loss import Target
    from coolchic_stream.types import DataType, FrameType

    torch.manual_seed(0)
    param = residue_parameter(16, 16, 3, Complexity.LOP)
    fe = FrameEncoder(FrameType.I, DataType.YUV420, 8, param)
    target = Target.from_dense(torch.rand(1, 3, 16, 16), DataType.YUV420)
    before = evaluate(fe, target, [], 1e-3)
    best = train_phase(fe, target, [], 1e-3, Phase("t", 30, 1e-2, 1e-3, validation_interval=10))
    assert best.loss <= before.loss
    assert abs(evaluate(fe, target, [], 1e-3).loss - best.loss) < 1e-9


def test_fused_laplace_rate_matches_autograd():
    from coolchic_stream.nn.arm import laplace_bits, laplace_bits_fast

    torch.manual_seed(3)
    v = (torch.randn(500, dtype=torch.float64) * 4).round() + torch.rand(500, dtype=torch.float64) * 0.2
    mu = (torch.randn(500, dtype=torch.float64) * 3).requires_grad_(True)
    scale = (torch.rand(500, dtype=torch.float64) * 3 + 0.01).requires_grad_(True)
    v.requires_grad_(True)
    torch.testing.assert_close(laplace_bits_fast(v, mu, scale), laplace_bits(v, mu, scale))
    assert torch.autograd.gradcheck(laplace_bits_fast, (v, mu, scale))
    g_fast = torch.autograd.grad(laplace_bits_fast(v, mu, scale).sum(), (v, mu, scale))
    g_ref = torch.autograd.grad(laplace_bits(v, mu, scale).sum(), (v, mu, scale))
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b)
