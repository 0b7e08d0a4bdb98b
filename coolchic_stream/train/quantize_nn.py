"""NN weight quantization and mode decision: each module sent fresh, copied or delta-coded, by real D + λ·R.

Module by module (arm, upsampling, synthesis) and for each Cool-chic of the frame, every way
of sending the module is tried against the frame's real cost -- distortion and latent rate from
a hard-rounded forward (``evaluate.FrameEvaluator``), plus the coded bits (``entropy.nn_bins``)
of every module already decided and the header bits of the mode::

    fresh:  greedy power-of-two step search: the weight step (biases at their finest step), then
            the bias step
    copy:   the source's integers (a reference's same-role module, ``nn_prediction.Source``)
    delta:  the trained values at the source's steps, minus the source's integers; differences
            of magnitude <= t zeroed, t searched upwards (the largest t is a copy)

The cheapest is loaded into the Cool-chic (later modules are judged with it) and kept. Powers of
two keep the decoder's arithmetic exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..entropy.arm_int import BIAS_LOG2_STEPS as ARM_BIAS_STEPS
from ..entropy.arm_int import WEIGHT_LIMIT as ARM_WEIGHT_LIMIT
from ..entropy.arm_int import WEIGHT_LOG2_STEPS as ARM_WEIGHT_STEPS
from ..entropy.nn_weights import FRESH, ModulePrediction, QuantizedModule, module_bits
from ..nn.coolchic import CoolChicEncoder
from ..spec import MODULE_NAMES, NN_INT_MAX, NNMode
from .evaluate import FrameEvaluator
from .nn_prediction import Source

STEPS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "arm": (ARM_WEIGHT_STEPS, ARM_BIAS_STEPS),
    "upsampling": (tuple(range(-12, 1)), (0,)),
    "synthesis": (tuple(range(-12, 1)), tuple(range(-24, 1))),
}
MAX_INT = NN_INT_MAX
# Bits of an NNModuleCoding (bitstream/syntax.py) by mode: 2 mode bits, a reference bit in B
# frames, then steps (fresh) and orders (fresh, delta); an I frame's modules carry no mode.
_STEP_BITS, _ORDER_BITS, _MODE_BITS = 9, 8, 2


def header_bits(mode: NNMode, predicted: bool, two_references: bool) -> int:
    """Header bits of one module sent in ``mode``."""
    if not predicted:
        return _STEP_BITS + _ORDER_BITS
    if mode == NNMode.FRESH:
        return _MODE_BITS + _STEP_BITS + _ORDER_BITS
    return _MODE_BITS + int(two_references) + (_ORDER_BITS if mode == NNMode.DELTA else 0)


@dataclass(frozen=True)
class QuantizedNetworks:
    """One Cool-chic's modules as the decoder will hold them, and how each is sent."""

    modules: dict[str, QuantizedModule]
    predictions: dict[str, ModulePrediction] = field(default_factory=dict)  # missing: fresh


def _quantize(tensors: list[torch.Tensor], log2_step: int, limit: int = MAX_INT) -> tuple[np.ndarray, ...] | None:
    out = []
    for t in tensors:
        q = np.round(t.detach().cpu().double().numpy() / 2.0**log2_step).astype(np.int64)
        if q.size and np.abs(q).max() > limit:
            return None
        out.append(q)
    return tuple(out)


def _load(tensors: list[torch.Tensor], values: tuple[np.ndarray, ...], log2_step: int) -> None:
    with torch.no_grad():
        for t, v in zip(tensors, values):
            t.copy_(torch.from_numpy(v.astype(np.float64) * 2.0**log2_step).to(t.dtype))


def _arm_weight_limit(log2_step: int) -> int:
    """Largest ARM weight integer at ``log2_step`` that the fixed-point ARM accepts."""
    return min(MAX_INT, int(ARM_WEIGHT_LIMIT * 2.0**-log2_step))


Candidate = tuple[float, QuantizedModule, ModulePrediction]  # (cost, module, how it is sent)


def quantize_coolchics(
    coolchics: list[CoolChicEncoder],
    evaluate: FrameEvaluator,
    lmbda: float,
    n_pixels: int,
    sources: list[dict[str, list[Source]]] | None = None,
    predicted: bool = False,
    two_references: bool = False,
    delta: bool = True,
) -> list[QuantizedNetworks]:
    """Quantize every module of every Cool-chic in place, each in its cheapest mode.

    sources[i][name]: what module ``name`` of Cool-chic i may be copied or delta-coded from (none:
    fresh only); ``predicted``: the frame is a P or B frame (its modules carry a mode),
    ``two_references``: a B frame (they name their reference); ``delta``: False to copy only.
    """
    originals = [
        {name: ([w.detach().clone() for w in ws], [b.detach().clone() for b in bs]) for name, (ws, bs) in cc.nn_modules().items()}
        for cc in coolchics
    ]
    results = [QuantizedNetworks({}, {}) for _ in coolchics]
    done_bits = 0.0

    def cost(extra_bits: float) -> float:
        mse, latent_bits = evaluate()
        return mse + lmbda * (latent_bits + done_bits + extra_bits) / n_pixels

    for ci, cc in enumerate(coolchics):
        modules = cc.nn_modules()
        for name in MODULE_NAMES:
            evaluate.focus(cc, name)
            weights, biases = modules[name]
            w_orig, b_orig = originals[ci][name]
            fresh_header = header_bits(NNMode.FRESH, predicted, two_references)
            candidates = [_fresh(name, weights, biases, w_orig, b_orig, lambda bits: cost(bits + fresh_header))]
            for source in (sources[ci].get(name, []) if sources else []):
                candidates += _predicted(weights, biases, w_orig, b_orig, source, name == "arm", cost,
                                         lambda mode: header_bits(mode, predicted, two_references), delta)  # fmt: skip
            found = [c for c in candidates if c is not None]
            if not found:
                raise RuntimeError(f"no valid quantization step for module {name}")
            _, chosen, how = min(found, key=lambda c: c[0])
            _load(weights, chosen.weights, chosen.weight_log2_step)
            _load(biases, chosen.biases, chosen.bias_log2_step)
            results[ci].modules[name] = chosen
            if how.mode != NNMode.FRESH:
                results[ci].predictions[name] = how
            done_bits += module_bits(chosen, how) + header_bits(how.mode, predicted, two_references)
    evaluate.focus(None)
    return results


def _fresh(
    name: str,
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    w_orig: list[torch.Tensor],
    b_orig: list[torch.Tensor],
    cost: Callable[[float], float],
) -> Candidate | None:
    """The module with its own steps: weight step searched first, then the bias step."""
    w_steps, b_steps = STEPS[name]
    # finest bias step whose integers stay in range, kept while the weight step is searched
    b_first = next((bs for bs in b_steps if not biases or _quantize(b_orig, bs) is not None), b_steps[-1])
    b_fine = _quantize(b_orig, b_first) if biases else ()

    def weight_candidate(ws: int) -> QuantizedModule | None:
        wq = _quantize(w_orig, ws, _arm_weight_limit(ws) if name == "arm" else MAX_INT)
        if wq is None:
            return None
        _load(weights, wq, ws)
        _load(biases, b_fine, b_first)
        return QuantizedModule(wq, b_fine, ws, b_first)

    best = _unimodal_search(w_steps, weight_candidate, cost)
    if best is None:
        return None
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
    return best[0], best[1].with_best_orders(), FRESH


def _predicted(
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    w_orig: list[torch.Tensor],
    b_orig: list[torch.Tensor],
    source: Source,
    arm: bool,
    cost: Callable[[float], float],
    header: Callable[[NNMode], int],
    delta: bool = True,
) -> list[Candidate]:
    """Copy, and (``delta``) delta with ever more of the small differences zeroed, from one source."""
    src = source.module
    w_limit = _arm_weight_limit(src.weight_log2_step) if arm else MAX_INT
    wq = tuple(np.clip(q, -w_limit, w_limit) for q in _quantize(w_orig, src.weight_log2_step, np.iinfo(np.int64).max))
    bq = tuple(np.clip(q, -MAX_INT, MAX_INT) for q in _quantize(b_orig, src.bias_log2_step, np.iinfo(np.int64).max))
    dw = [q - s for q, s in zip(wq, src.weights)]
    db = [q - s for q, s in zip(bq, src.biases)]
    magnitudes = np.concatenate([np.abs(d).reshape(-1) for d in dw + db] + [np.zeros(1, np.int64)])
    out: list[Candidate] = []

    def trial(mode: NNMode, module: QuantizedModule) -> None:
        how = ModulePrediction(mode, source.reference, src)
        _load(weights, module.weights, module.weight_log2_step)
        _load(biases, module.biases, module.bias_log2_step)
        out.append((cost(module_bits(module, how) + header(mode)), module, how))

    trial(NNMode.COPY, QuantizedModule(src.weights, src.biases, src.weight_log2_step, src.bias_log2_step))
    if not delta:
        return out
    worse, best = 0, float("inf")  # the delta costs fall then rise as t grows: stop after two rises
    for t in _thresholds(int(magnitudes.max())):
        keep = [np.where(np.abs(d) > t, d, 0) for d in dw + db]
        module = QuantizedModule(
            tuple(s + k for s, k in zip(src.weights, keep[: len(dw)])),
            tuple(s + k for s, k in zip(src.biases, keep[len(dw) :])),
            src.weight_log2_step, src.bias_log2_step,
        ).with_best_orders(src)  # fmt: skip
        trial(NNMode.DELTA, module)
        worse = worse + 1 if out[-1][0] >= best else 0
        best = min(best, out[-1][0])
        if worse >= 2:
            break
    return out


def _thresholds(largest: int) -> list[int]:
    """Magnitudes at or below which differences are zeroed: 0 (keep all), then growing to all but one."""
    out, t = [], 0
    while t < largest:
        out.append(t)
        t = t + 1 if t < 3 else 2 * t
    return out


def _unimodal_search(
    steps: tuple[int, ...], candidate: Callable[[int], QuantizedModule | None], cost: Callable[[float], float]
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


__all__ = ["MAX_INT", "QuantizedNetworks", "STEPS", "header_bits", "quantize_coolchics"]
