"""CoolChicEncoder structure: presets' complexity, shapes, gradients, quantizers."""

from __future__ import annotations

import pytest
import torch

from coolchic_stream.architecture import parameter_shapes, parse_layers, residue_parameter
from coolchic_stream.config import Complexity
from coolchic_stream.nn.coolchic import CoolChicEncoder, QuantizerSettings
from coolchic_stream.nn.quantizer import NoiseType, QuantizerMode, quantize, sample_noise, softround


@pytest.mark.parametrize(("complexity", "low", "high"), [(Complexity.LOP, 350, 650), (Complexity.MOP, 800, 1250), (Complexity.HOP, 1600, 2400)])
def test_presets_are_near_their_mac_budget(complexity, low, high):
    cc = CoolChicEncoder(residue_parameter(256, 256, 3, complexity))
    assert low <= cc.macs_per_pixel() <= high


def test_transmitted_parameter_shapes_follow_the_architecture():
    param = residue_parameter(17, 33, 3, Complexity.HOP)
    cc = CoolChicEncoder(param)
    shapes = parameter_shapes(param)
    for name, (ws, bs) in cc.nn_modules().items():
        assert tuple(tuple(t.shape) for t in ws) == shapes[name][0]
        assert tuple(tuple(t.shape) for t in bs) == shapes[name][1]
    assert [tuple(g.shape[-2:]) for g in cc.latents] == param.grid_sizes
    assert param.grid_sizes[0] == (17, 33)


def test_forward_shapes_and_gradients_reach_latents():
    torch.manual_seed(0)
    cc = CoolChicEncoder(residue_parameter(19, 23, 3, Complexity.LOP))
    with torch.no_grad():
        for g in cc.latents:
            g.normal_(0, 0.2)
    out = cc(QuantizerSettings(QuantizerMode.SOFTROUND, NoiseType.GAUSSIAN, 0.2, 0.3))
    assert out.raw.shape == (1, 3, 19, 23)
    assert out.rate.shape == (cc.n_latents(),)
    (out.raw.square().mean() + out.rate.sum() * 1e-3).backward()
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in cc.latents)


def test_layer_strings():
    layers = parse_layers("48-1-linear-relu,X-1-linear-none,X-3-residual-relu", 3)
    assert [layer.describe() for layer in layers] == ["48-1-linear-relu", "3-1-linear-none", "3-3-residual-relu"]
    with pytest.raises(ValueError):
        parse_layers("48-2-linear-relu", 3)


def test_quantizers():
    x = torch.linspace(-3, 3, 101)
    x = x[(x - x.floor() - 0.5).abs() > 0.01]  # rounding of exact halves differs by convention
    assert torch.allclose(softround(x, 1e-4), torch.round(x), atol=1e-3)
    assert torch.equal(quantize(x, QuantizerMode.HARDROUND), torch.round(x))
    ste = quantize(x.clone().requires_grad_(True), QuantizerMode.STE, temperature=0.3)
    assert torch.equal(ste.detach(), torch.round(x))
    noise = sample_noise(torch.zeros(20000), NoiseType.KUMARASWAMY, 1.0)
    assert noise.min() >= -0.5 and noise.max() <= 0.5 and abs(float(noise.mean())) < 0.02
    gauss = sample_noise(torch.zeros(20000), NoiseType.GAUSSIAN, 0.2)
    assert abs(float(gauss.std()) - 0.2) < 0.01
