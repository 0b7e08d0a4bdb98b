"""NN weight quantization: greedy power-of-two step search minimising D + lambda * R.

Module by module (arm, upsampling, synthesis) and for each Cool-chic of the
frame: pick the weight step (biases at their finest step), then the bias step,
each time keeping the candidate with the lowest real cost: distortion and
latent rate from a hard-rounded forward, plus the coded bits (``entropy.nn_bins``) of every
already-quantized module. Powers of two keep the decoder's arithmetic exact.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..entropy.arm_int import BIAS_LOG2_STEPS as ARM_BIAS_STEPS
from ..entropy.arm_int import WEIGHT_LIMIT as ARM_WEIGHT_LIMIT
from ..entropy.arm_int import WEIGHT_LOG2_STEPS as ARM_WEIGHT_STEPS
from ..entropy.nn_weights import MODULE_NAMES, QuantizedModule
from ..nn.coolchic import CoolChicEncoder
from .evaluate import FrameEvaluator

STEPS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "arm": (ARM_WEIGHT_STEPS, ARM_BIAS_STEPS),
    "upsampling": (tuple(range(-12, 1)), (0,)),
    "synthesis": (tuple(range(-12, 1)), tuple(range(-24, 1))),
}
MAX_INT = 1 << 20



def _quantize(tensors: list[torch.Tensor], log2_step: int) -> tuple[np.ndarray, ...] | None:
    out = []
    for t in tensors:
        q = np.round(t.detach().cpu().double().numpy() / 2.0**log2_step).astype(np.int64)
        if q.size and np.abs(q).max() > MAX_INT:
            return None
        out.append(q)
    return tuple(out)


def _load(tensors: list[torch.Tensor], values: tuple[np.ndarray, ...], log2_step: int) -> None:
    with torch.no_grad():
        for t, v in zip(tensors, values):
            t.copy_(torch.from_numpy(v.astype(np.float64) * 2.0**log2_step).to(t.dtype))


def quantize_coolchics(
    coolchics: list[CoolChicEncoder], evaluate: FrameEvaluator, lmbda: float, n_pixels: int
) -> list[dict[str, QuantizedModule]]:
    """Quantize every module of every Cool-chic in place; returns the integers per Cool-chic."""
    originals = [
        {name: ([w.detach().clone() for w in ws], [b.detach().clone() for b in bs]) for name, (ws, bs) in cc.nn_modules().items()}
        for cc in coolchics
    ]
    results: list[dict[str, QuantizedModule]] = [{} for _ in coolchics]
    done_bits = 0

    def cost(extra_bits: int) -> float:
        mse, latent_bits = evaluate()
        return mse + lmbda * (latent_bits + done_bits + extra_bits) / n_pixels

    for ci, cc in enumerate(coolchics):
        modules = cc.nn_modules()
        for name in MODULE_NAMES:
            evaluate.focus(cc, name)
            weights, biases = modules[name]
            w_orig, b_orig = originals[ci][name]
            w_steps, b_steps = STEPS[name]
            # finest bias step whose integers stay in range, kept while the weight step is searched
            b_first = next((bs for bs in b_steps if not biases or _quantize(b_orig, bs) is not None), b_steps[-1])
            b_fine = _quantize(b_orig, b_first) if biases else ()

            def weight_candidate(ws: int) -> QuantizedModule | None:
                wq = _quantize(w_orig, ws)
                if wq is None or (name == "arm" and any(np.abs(q).max(initial=0) * 2.0**ws > ARM_WEIGHT_LIMIT for q in wq)):
                    return None
                _load(weights, wq, ws)
                _load(biases, b_fine, b_first)
                return QuantizedModule(wq, b_fine, ws, b_first)

            best = _unimodal_search(w_steps, weight_candidate, cost)
            if best is None:
                raise RuntimeError(f"no valid quantization step for module {name}")
            chosen = best[1]
            _load(weights, chosen.weights, chosen.weight_log2_step)
            if biases:

                def bias_candidate(bs: int) -> QuantizedModule | None:
                    bq = _quantize(b_orig, bs)
                    if bq is None:
                        return None
                    _load(biases, bq, bs)
                    return QuantizedModule(chosen.weights, bq, chosen.weight_log2_step, bs)

                found = _unimodal_search(b_steps, bias_candidate, cost)
                if found is not None and found[0] < best[0]:
                    best = found
            chosen = best[1].with_best_orders()
            _load(weights, chosen.weights, chosen.weight_log2_step)
            _load(biases, chosen.biases, chosen.bias_log2_step)
            results[ci][name] = chosen
            done_bits += chosen.n_bits()
    evaluate.focus(None)
    return results


def _unimodal_search(
    steps: tuple[int, ...], candidate: Callable[[int], QuantizedModule | None], cost: Callable[[int], float]
) -> tuple[float, QuantizedModule] | None:
    """Fine to coarse over power-of-two steps: the rate falls and the distortion rises, so the RD
    cost falls then rises; stop after two rises. (From the coarse end, all-zero weights make a
    plateau of equal costs that would stop the search too early.)"""
    best: tuple[float, QuantizedModule] | None = None
    worse = 0
    for step in sorted(steps):
        q = candidate(step)
        if q is None:
            continue
        c = cost(q.n_bits())
        if best is None or c < best[0]:
            best, worse = (c, q), 0
        else:
            worse += 1
            if worse >= 2:
                break
    return best
