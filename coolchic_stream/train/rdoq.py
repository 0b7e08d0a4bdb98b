"""Rate-distortion optimised quantization of the NN weights (Cool-chic 5's NN RDOQ).

After the step search (``quantize_nn``) every weight and bias is an integer times its module's
power-of-two step. Each integer, in a seeded random order, is tried one step away from its
value (towards what the bins make cheapest first: zero, or a delta-coded module's source value);
a move is kept when the real cost D + λ·(latent bits + NN bits)/pixels goes down. Copied modules
are left as they are::

    for each Cool-chic, module, tensor, value (random order):
        q ─► q ∓ 1 ─► load q·2^step ─► hard-rounded forward of what the module changes
          (train/evaluate.py) ─► cost lower? keep : restore

The NN bits of a move are the change in its group's coded size (``entropy.nn_bins``: the
adaptive contexts make a value's cost depend on the whole group; for a delta-coded module, the
group of differences to its source) at the module's orders as they
were; the orders are chosen again once the module is done, which can only lower its bits. Weights stay exact integer multiples of
their steps, so the decoder's arithmetic is unchanged. One evaluation per try (about two per
parameter), each recomputing only what the module reaches: ~16 s for the ~1600 parameters of a
hop Cool-chic at 256x256 (44 s with full forwards); the medium and slow presets use it.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..entropy.arm_int import WEIGHT_LIMIT as ARM_WEIGHT_LIMIT
from ..entropy.nn_bins import group_bits
from ..entropy.nn_weights import ModulePrediction, QuantizedModule, module_bits
from ..nn.coolchic import CoolChicEncoder
from ..spec import MODULE_NAMES, NNMode
from .evaluate import FrameEvaluator
from .quantize_nn import MAX_INT, QuantizedNetworks

StageProgress = Callable[[int, int, float, float], None]  # (done, total, cost, mse)


def _group(tensors: tuple[np.ndarray, ...]) -> np.ndarray:
    return np.concatenate([t.reshape(-1) for t in tensors]) if tensors else np.zeros(0, dtype=np.int64)


def rdoq(
    coolchics: list[CoolChicEncoder],
    networks: list[QuantizedNetworks],
    evaluate: FrameEvaluator,
    lmbda: float,
    n_pixels: int,
    seed: int,
    progress: StageProgress | None = None,
) -> list[QuantizedNetworks]:
    """Improve the quantized NNs in place (the Cool-chics end up holding the result);
    ``progress`` hears (values done, values in all, cost, mse) after every tensor."""
    rng = np.random.default_rng(seed)
    hows = [{name: q.predictions.get(name) for name in MODULE_NAMES} for q in networks]
    total_nn = sum(
        module_bits(q.modules[name], how[name]) if how[name] else q.modules[name].n_bits()
        for q, how in zip(networks, hows) for name in MODULE_NAMES
    )  # fmt: skip
    mse, latent_bits = evaluate()
    cost = mse + lmbda * (latent_bits + total_nn) / n_pixels
    n_values = sum(int(np.size(t)) for q in networks for m in q.modules.values() for t in (*m.weights, *m.biases))
    done, best_mse = 0, mse
    out: list[QuantizedNetworks] = []
    for cc, q_nets, how in zip(coolchics, networks, hows):
        tensors = cc.nn_modules()
        result = QuantizedNetworks({}, dict(q_nets.predictions))
        for name in MODULE_NAMES:
            prediction = how[name]
            if prediction is not None and prediction.mode == NNMode.COPY:
                result.modules[name] = q_nets.modules[name]
                done += sum(int(np.size(t)) for t in (*q_nets.modules[name].weights, *q_nets.modules[name].biases))
                continue
            source = prediction.source if prediction is not None else None
            evaluate.focus(cc, name)
            m = q_nets.modules[name].with_best_orders(source)
            weights = tuple(w.copy() for w in m.weights)
            biases = tuple(b.copy() for b in m.biases)
            params_w, params_b = tensors[name]
            groups = [
                (params_w, weights, m.weight_log2_step, m.weight_order, source.weights if source else None),
                (params_b, biases, m.bias_log2_step, m.bias_order, source.biases if source else None),
            ]
            for params, ints, log2_step, order, base in groups:
                limit = MAX_INT if name != "arm" or params is params_b else int(ARM_WEIGHT_LIMIT * 2.0**-log2_step)
                step = 2.0**log2_step
                offset = _group(base) if base is not None else 0  # the bins carry ints - offset
                group_now = group_bits(_group(ints) - offset, order)
                for tensor_index, (param, q) in enumerate(zip(params, ints)):
                    flat_q, flat_p = q.reshape(-1), param.data.view(-1)
                    flat_base = base[tensor_index].reshape(-1) if base is not None else None
                    for index in rng.permutation(flat_q.size):
                        value = int(flat_q[index])
                        cheap = int(flat_base[index]) if flat_base is not None else 0
                        for new in (value - 1, value + 1) if value > cheap else (value + 1, value - 1):
                            if abs(new) > limit:
                                continue
                            flat_q[index] = new
                            delta_bits = group_bits(_group(ints) - offset, order) - group_now
                            flat_q[index] = value
                            with torch.no_grad():
                                flat_p[index] = new * step
                            mse, latent_bits = evaluate()
                            trial = mse + lmbda * (latent_bits + total_nn + delta_bits) / n_pixels
                            if trial < cost:
                                cost, total_nn, best_mse = trial, total_nn + delta_bits, mse
                                group_now += delta_bits
                                flat_q[index] = new
                                break
                            with torch.no_grad():
                                flat_p[index] = value * step
                    done += flat_q.size
                    if progress is not None:
                        progress(done, n_values, cost, best_mse)
            # New orders can only lower the bits; the running total keeps the old orders' count,
            # an offset that cancels in every later comparison.
            result.modules[name] = QuantizedModule(weights, biases, m.weight_log2_step, m.bias_log2_step).with_best_orders(source)
            if prediction is not None and result.modules[name].same_integers(source):
                result.predictions[name] = ModulePrediction(NNMode.COPY, prediction.reference, source)  # no difference left
        out.append(result)
    evaluate.focus(None)
    return out


__all__ = ["rdoq"]
