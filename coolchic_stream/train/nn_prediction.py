"""Networks predicted from reference frames, encoder side: where a module may come from, the
training's start from it and what changing it costs.

    reference pictures' networks ─► sources per module: same role, same module architecture
        ─► start: the float Cool-chic loads the nearest source's integers × steps
        ─► training loss: D + λ·(latent bits + ChangeRate)/pixels, ChangeRate an estimate of
           the bits of the differences to the start, so training moves a module only where that pays
        ─► quantize_nn: fresh | copy | delta per module, by the real cost of the coded frame
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..architecture import module_predictable, parameter_shapes
from ..entropy.nn_weights import QuantizedModule, predict_module
from ..framecodec import FrameNetworks, prediction_source
from ..nn.coolchic import CoolChicEncoder
from ..spec import ALPHA_CHANNEL, MODULE_NAMES
from ..types import CoolChicRole

# Bits per doubling of a parameter's change, counted in steps of its source: a difference of u
# steps costs about BITS_PER_OCTAVE·log2(1 + |u|) (the first step pays the zero flag, the sign and
# the exp-Golomb prefix of a mostly-zero group; larger ones two bits per doubling).
BITS_PER_OCTAVE = 4.0


@dataclass(frozen=True)
class Source:
    """A module a Cool-chic's module may be copied or delta-coded from."""

    reference: int  # index in the frame's references
    distance: int  # display distance to that reference
    module: QuantizedModule  # its prediction (``predict_module``): shaped like the module it predicts
    outputs: int  # output count of the Cool-chic it comes from


def module_sources(
    coolchic: CoolChicEncoder, role: CoolChicRole, references: Sequence[FrameNetworks], distances: Sequence[int]
) -> dict[str, list[Source]]:
    """Per module: the prediction from the same module of the same-role Cool-chic of each
    reference, where the decoder accepts it (``architecture.module_predictable``)."""
    out: dict[str, list[Source]] = {}
    shapes = parameter_shapes(coolchic.param)
    for name in MODULE_NAMES:
        for index, (networks, distance) in enumerate(zip(references, distances)):
            held = prediction_source(networks, role, coolchic.param)
            if held is not None and module_predictable(held.param, coolchic.param, name):
                prediction = predict_module(held.modules[name], shapes[name])
                out.setdefault(name, []).append(Source(index, distance, prediction, held.param.n_output))
    return out


def load_module(weights: list[Tensor], biases: list[Tensor], module: QuantizedModule) -> None:
    """Set a float module to a quantized one's values."""
    w, b = module.dequantized()
    with torch.no_grad():
        for t, v in zip([*weights, *biases], [*w, *b]):
            t.copy_(torch.from_numpy(np.ascontiguousarray(v)).to(t.dtype))


class ChangeRate:
    """Differentiable estimate of the bits the changes of started modules will cost as differences.

    Holds, for every parameter tensor of a module started from a source, the start values and
    the source's step; call -> bits (0-dim tensor).
    """

    def __init__(self) -> None:
        self._terms: list[tuple[Tensor, Tensor, float]] = []

    def add(self, weights: list[Tensor], biases: list[Tensor], start: QuantizedModule) -> None:
        for tensors, step in ((weights, start.weight_log2_step), (biases, start.bias_log2_step)):
            for t in tensors:
                self._terms.append((t, t.detach().clone(), 2.0**-step))

    def __bool__(self) -> bool:
        return bool(self._terms)

    @staticmethod
    def of(rate: "ChangeRate", module: torch.nn.Module) -> "ChangeRate":
        """The part of ``rate`` that watches ``module``'s parameters."""
        own = {id(p) for p in module.parameters()}
        part = ChangeRate()
        part._terms = [term for term in rate._terms if id(term[0]) in own]
        return part

    def __call__(self) -> Tensor:
        total = sum((torch.log1p((t - a).abs() * inv) .sum() for t, a, inv in self._terms), torch.zeros(()))
        return total * (BITS_PER_OCTAVE / math.log(2.0))


def start_from_references(
    coolchics: dict[CoolChicRole, CoolChicEncoder],
    references: Sequence[FrameNetworks],
    distances: Sequence[int],
    start: bool = True,
) -> tuple[list[dict[str, list[Source]]], ChangeRate]:
    """Load every module that has a source to start from with the nearest one's prediction (the
    past one on a tie); -> the sources of each Cool-chic (in the given order) and the training's
    ChangeRate. A residue synthesis starts only from one that ends in the same kind of output:
    an I frame's (the picture) is a poor start for an inter frame's (a correction of a
    prediction), and the other way round; either may still be chosen to predict from once
    trained, if that costs less. ``start`` False: only the sources, nothing loaded."""
    rate = ChangeRate()
    all_sources = []
    for role, cc in coolchics.items():
        sources = module_sources(cc, role, references, distances)
        modules = cc.nn_modules()
        for name, found in sources.items():
            starts = [s for s in found if name != "synthesis" or role != CoolChicRole.RESIDUE or _same_kind(s.outputs, cc)]
            if not starts or not start:
                continue
            start = min(starts, key=lambda s: (s.distance, s.reference)).module
            load_module(*modules[name], start)
            rate.add(*modules[name], start)
        all_sources.append(sources)
    return all_sources, rate


def _same_kind(outputs: int, coolchic: CoolChicEncoder) -> bool:
    """Both residues gate a prediction (alpha), or neither does."""
    return (outputs > ALPHA_CHANNEL) == (coolchic.param.n_output > ALPHA_CHANNEL)


__all__ = ["BITS_PER_OCTAVE", "ChangeRate", "Source", "load_module", "module_sources", "start_from_references"]
