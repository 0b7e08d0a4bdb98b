"""NN RDOQ: never raises the real cost, keeps weights exact multiples of their steps, is seeded,
and what it chooses is what the decoder reconstructs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coolchic_stream.config import PRESETS, Preset
from coolchic_stream.entropy.arm_int import WEIGHT_LIMIT
from coolchic_stream.entropy.nn_weights import MODULE_NAMES
from coolchic_stream.train.evaluate import FrameEvaluator
from coolchic_stream.train.quantize_nn import quantize_coolchics
from coolchic_stream.train.rdoq import rdoq

from ..conftest import decode_packets, encode_pictures, make_picture, overfit_still

LMBDA = 2e-3


def trained(seed: int = 0):
    fe, target = overfit_still(LMBDA, seed)
    return fe, fe.residue, FrameEvaluator(fe, target, []), target.n_pixels


def real_cost(evaluate, modules, n_pixels) -> float:
    mse, latent_bits = evaluate()
    return mse + LMBDA * (latent_bits + sum(m.n_bits() for m in modules.values())) / n_pixels


def test_rdoq_lowers_the_cost_and_keeps_exact_integer_weights():
    fe, cc, evaluate, n = trained()
    quantized = quantize_coolchics([cc], evaluate, LMBDA, n)[0]
    modules = quantized.modules
    before = real_cost(evaluate, modules, n)
    improved = rdoq([cc], [quantized], evaluate, LMBDA, n, seed=3)[0].modules
    after = real_cost(evaluate, improved, n)
    assert after < before  # a 60-iteration model always has some weight worth a step
    changed = sum(int(np.sum(a != b)) for name in MODULE_NAMES for a, b in zip(modules[name].weights + modules[name].biases, improved[name].weights + improved[name].biases))
    assert changed > 0
    tensors = cc.nn_modules()
    for name in MODULE_NAMES:
        m = improved[name]
        weights, biases = m.dequantized()
        for p, v in zip(tensors[name][0], weights):
            assert torch.equal(p.detach().double(), torch.from_numpy(v))  # the model holds exactly the integers
        for p, v in zip(tensors[name][1], biases):
            assert torch.equal(p.detach().double(), torch.from_numpy(v))
    arm = improved["arm"]
    assert all(np.abs(w).max() * 2.0**arm.weight_log2_step <= WEIGHT_LIMIT for w in arm.weights)


def test_rdoq_is_seeded():
    runs = []
    for _ in range(2):
        fe, cc, evaluate, n = trained()
        quantized = quantize_coolchics([cc], evaluate, LMBDA, n)[0]
        runs.append(rdoq([cc], [quantized], evaluate, LMBDA, n, seed=5)[0].modules)
    for name in MODULE_NAMES:
        assert all(np.array_equal(a, b) for a, b in zip(runs[0][name].weights, runs[1][name].weights))
        assert all(np.array_equal(a, b) for a, b in zip(runs[0][name].biases, runs[1][name].biases))


def test_only_the_slower_presets_use_it():
    assert [PRESETS[p].nn_rdoq for p in Preset] == [False, False, True, True]


@pytest.mark.parametrize("gop", ["intra", "lowdelay"])
def test_streams_with_rdoq_decode_to_the_encoders_reconstruction(gop):
    pictures = [make_picture(16, 12, pts=i, shift=i) for i in range(2)]
    enc, packets = encode_pictures(pictures, preset="medium", iterations=30, gop=gop, intra_period=4)
    out = decode_packets(packets)
    assert [p.pts for p in out] == [0, 1]
    assert all(p.same_samples(enc.reconstructions[p.pts]) for p in out)


def test_rdoq_reports_progress_per_tensor_up_to_every_value():
    fe, cc, evaluate, n = trained()
    quantized = quantize_coolchics([cc], evaluate, LMBDA, n)[0]
    n_values = sum(np.size(t) for m in quantized.modules.values() for t in (*m.weights, *m.biases))
    calls = []
    rdoq([cc], [quantized], evaluate, LMBDA, n, seed=3, progress=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == sorted(c[0] for c in calls) and calls[-1][:2] == (n_values, n_values)
    costs = [c[2] for c in calls]
    assert all(b <= a for a, b in zip(costs, costs[1:]))
    mse, _ = evaluate()
    assert calls[-1][3] == pytest.approx(mse, rel=1e-6)  # the reported distortion is the model's
