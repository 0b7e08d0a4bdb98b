"""Encoder side of networks predicted from references: sources, the training's change rate, the
mode decision by real cost, delta RDOQ, and real encodes that decode bit-exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from coolchic_stream.architecture import motion_parameter, parameter_shapes, residue_parameter
from coolchic_stream.config import Complexity
from coolchic_stream.entropy.nn_weights import QuantizedModule, carried, module_bits
from coolchic_stream.framecodec import Networks, NetworkSlot
from coolchic_stream.nn.coolchic import CoolChicEncoder
from coolchic_stream.nn.frame import FrameEncoder
from coolchic_stream.spec import MODULE_NAMES, NNMode
from coolchic_stream.train.evaluate import FrameEvaluator
from coolchic_stream.train.nn_prediction import BITS_PER_OCTAVE, ChangeRate, module_sources, start_from_references
from coolchic_stream.train.quantize_nn import header_bits, quantize_coolchics
from coolchic_stream.train.rdoq import rdoq
from coolchic_stream.types import CoolChicRole, DataType

from ..conftest import decode_packets, encode_pictures, make_picture, overfit_still

LMBDA = 2e-3


def trained(seed: int = 0, iterations: int = 60):
    return overfit_still(LMBDA, seed, iterations)


def test_sources_follow_role_and_structure() -> None:
    """A P frame's residue (4 outputs) may predict every module from an I frame's (3 outputs);
    its motion has nothing to predict from in an I frame; a mop synthesis is not a lop one."""
    fe, target = trained()
    i_net = Networks(fe.residue.param, _quantized_copy_of(fe, target))
    p_residue = CoolChicEncoder(residue_parameter(14, 20, 4, Complexity.LOP))
    sources = module_sources(p_residue, CoolChicRole.RESIDUE, [{NetworkSlot.PICTURE: i_net}], [4])
    assert sorted(sources) == sorted(MODULE_NAMES)
    synthesis = sources["synthesis"][0].module
    assert [w.shape for w in synthesis.weights] == list(parameter_shapes(p_residue.param)["synthesis"][0])
    motion = CoolChicEncoder(motion_parameter(14, 20, 2, Complexity.LOP))
    assert module_sources(motion, CoolChicRole.MOTION, [{NetworkSlot.PICTURE: i_net}], [4]) == {}
    mop = CoolChicEncoder(residue_parameter(14, 20, 4, Complexity.MOP))
    assert "synthesis" not in module_sources(mop, CoolChicRole.RESIDUE, [{NetworkSlot.PICTURE: i_net}], [4])


def test_change_rate_is_zero_at_the_start_and_grows_with_the_change() -> None:
    cc = CoolChicEncoder(residue_parameter(14, 20, 3, Complexity.LOP))
    weights, biases = cc.nn_modules()["synthesis"]
    start = QuantizedModule(
        tuple(np.zeros(w.shape, np.int64) for w in weights), tuple(np.zeros(b.shape, np.int64) for b in biases), -4, -6
    )
    from coolchic_stream.train.nn_prediction import load_module

    load_module(weights, biases, start)
    rate = ChangeRate()
    rate.add(weights, biases, start)
    assert float(rate().detach()) == 0.0
    with torch.no_grad():
        weights[0].view(-1)[0] += 2.0**-4  # one weight step
    assert float(rate().detach()) == pytest.approx(BITS_PER_OCTAVE)  # log2(1 + 1) octaves
    with torch.no_grad():
        weights[0].view(-1)[0] += 2 * 2.0**-4  # three steps
    assert float(rate().detach()) == pytest.approx(2 * BITS_PER_OCTAVE)
    assert not ChangeRate() and rate


def _quantized_copy_of(fe: FrameEncoder, target) -> dict[str, QuantizedModule]:
    """fe's residue quantized on its own (what a reference would hold), fe left as it was."""
    state = {k: v.clone() for k, v in fe.state_dict().items()}
    modules = quantize_coolchics([fe.residue], FrameEvaluator(fe, target, []), LMBDA, target.n_pixels)[0].modules
    fe.load_state_dict(state)
    return modules


def test_a_module_equal_to_its_source_is_copied_and_a_far_one_sent_fresh() -> None:
    fe, target = trained()
    held = _quantized_copy_of(fe, target)
    far = {
        name: QuantizedModule(tuple(w * 0 + 7 for w in m.weights), tuple(b * 0 + 7 for b in m.biases), m.weight_log2_step, m.bias_log2_step)
        for name, m in held.items()
    }
    networks = [{NetworkSlot.PICTURE: Networks(fe.residue.param, far)}, {NetworkSlot.PICTURE: Networks(fe.residue.param, held)}]
    sources = module_sources(fe.residue, CoolChicRole.RESIDUE, networks, [1, 2])
    result = quantize_coolchics([fe.residue], FrameEvaluator(fe, target, []), LMBDA, target.n_pixels, [sources], True, True)[0]
    # the trained module sits on held's integers: copying it costs nothing and changes nothing
    assert {name: (p.mode, p.reference) for name, p in result.predictions.items()} == {
        name: (NNMode.COPY, 1) for name in MODULE_NAMES
    }
    assert all(result.modules[name].same_integers(held[name]) for name in MODULE_NAMES)
    # against the far source alone, nothing is predicted
    fe2, target2 = trained()
    sources = module_sources(fe2.residue, CoolChicRole.RESIDUE, networks[:1], [1])
    result = quantize_coolchics([fe2.residue], FrameEvaluator(fe2, target2, []), LMBDA, target2.n_pixels, [sources], True, False)[0]
    assert result.predictions == {}


def test_a_nearby_source_gives_a_delta_cheaper_than_fresh() -> None:
    """Trained further from a reference's networks, the modules are best sent as differences."""
    fe, target = trained(iterations=40)
    held = _quantized_copy_of(fe, target)
    networks = [{NetworkSlot.PICTURE: Networks(fe.residue.param, held)}]
    sources, change_rate = start_from_references({CoolChicRole.RESIDUE: fe.residue}, networks, [1])
    from coolchic_stream.train.loop import Phase, train_phase

    train_phase(fe, target, [], LMBDA, Phase("more", 40, 2e-3, 1e-4, validation_interval=20), None, change_rate)
    result = quantize_coolchics([fe.residue], FrameEvaluator(fe, target, []), LMBDA, target.n_pixels, sources, True, False)[0]
    modes = {name: p.mode for name, p in result.predictions.items()}
    assert NNMode.DELTA in modes.values() or NNMode.COPY in modes.values()
    for name, p in result.predictions.items():
        m = result.modules[name]
        fresh_bits = m.with_best_orders().n_bits() + header_bits(NNMode.FRESH, True, False)
        assert module_bits(m, p) + header_bits(p.mode, True, False) < fresh_bits
        if p.mode == NNMode.DELTA:
            assert any(d.any() for d in carried(m, p.source))  # a delta that changes something


def test_delta_rdoq_lowers_the_cost_and_counts_differences() -> None:
    fe, target = trained(iterations=40)
    held = _quantized_copy_of(fe, target)
    networks = [{NetworkSlot.PICTURE: Networks(fe.residue.param, held)}]
    sources, change_rate = start_from_references({CoolChicRole.RESIDUE: fe.residue}, networks, [1])
    from coolchic_stream.train.loop import Phase, train_phase

    train_phase(fe, target, [], 0.2 * LMBDA, Phase("more", 60, 5e-3, 1e-4, validation_interval=20), None, change_rate)
    evaluate = FrameEvaluator(fe, target, [])
    quantized = quantize_coolchics([fe.residue], evaluate, LMBDA, target.n_pixels, sources, True, False)[0]

    def cost(q) -> float:
        mse, latent_bits = evaluate()
        nn = sum(module_bits(q.modules[n], q.predictions[n]) if n in q.predictions else q.modules[n].n_bits() for n in MODULE_NAMES)
        return mse + LMBDA * (latent_bits + nn) / target.n_pixels

    before = cost(quantized)
    improved = rdoq([fe.residue], [quantized], evaluate, LMBDA, target.n_pixels, seed=1)[0]
    assert cost(improved) <= before
    for name, p in improved.predictions.items():  # copies untouched, deltas still at their source's steps
        assert improved.modules[name].weight_log2_step == p.source.weight_log2_step
        if p.mode == NNMode.COPY:
            assert improved.modules[name].same_integers(p.source)


# ------------------------------------------------------------------ real encodes


@pytest.mark.parametrize(
    "data_type, bit_depth", [(DataType.YUV420, 8), (DataType.YUV420, 10), (DataType.YUV444, 8)]
)
def test_predicted_networks_decode_to_the_encoders_reconstruction(data_type: DataType, bit_depth: int) -> None:
    pictures = [make_picture(21, 13, data_type, bit_depth, pts=i, shift=i) for i in range(5)]
    enc, packets = encode_pictures(pictures, lmbda=2e-2, gop="ra", gop_size=4, intra_period=8)
    modes = _modes(packets)
    assert modes & {NNMode.COPY, NNMode.DELTA}  # a test that cannot pass without prediction
    out = decode_packets(packets)
    assert [p.pts for p in out] == list(range(5))
    assert all(p.same_samples(enc.reconstructions[p.pts]) for p in out)


def test_nn_prediction_off_sends_every_module_fresh_and_copy_never_deltas() -> None:
    pictures = [make_picture(21, 13, pts=i, shift=i) for i in range(3)]
    _, off = encode_pictures(pictures, lmbda=2e-2, gop="lowdelay", intra_period=8, nn_prediction="off")
    assert _modes(off) == set()
    enc, copy = encode_pictures(pictures, lmbda=2e-2, gop="lowdelay", intra_period=8, nn_prediction="copy")
    assert NNMode.DELTA not in _modes(copy)
    assert all(p.same_samples(enc.reconstructions[p.pts]) for p in decode_packets(copy))


def _modes(packets) -> set[NNMode]:
    from coolchic_stream.framecodec import parse_payloads

    return {
        p.mode for result in parse_payloads([p.data for p in packets]) for c in result[1] for p in c.predictions.values()
    }
