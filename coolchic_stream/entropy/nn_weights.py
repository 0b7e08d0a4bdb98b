"""Quantized NN parameters of a Cool-chic and their serialization.

Module order arm, upsampling, synthesis; in each, every weight tensor then
every bias tensor (``architecture.parameter_shapes``). Each of those groups is
binarized with its own exp-Golomb order and range-coded with adaptive contexts
(``nn_bins``). A value v stands for v * 2**log2_step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..architecture import Shapes
from ..errors import CorruptDataError
from .nn_bins import MAX_ORDER, GroupDecoder, best_order, encode_groups
from .stream import Part

MODULE_NAMES = ("arm", "upsampling", "synthesis")


@dataclass(frozen=True)
class QuantizedModule:
    weights: tuple[np.ndarray, ...]  # int64
    biases: tuple[np.ndarray, ...]
    weight_log2_step: int
    bias_log2_step: int
    weight_order: int = 0
    bias_order: int = 0

    def with_best_orders(self) -> "QuantizedModule":
        w_order, _ = best_order(_flat(self.weights))
        b_order, _ = best_order(_flat(self.biases))
        return QuantizedModule(self.weights, self.biases, self.weight_log2_step, self.bias_log2_step, w_order, b_order)

    def n_bits(self) -> float:
        """Coded size at the best orders (ideal arithmetic: the stream adds its flush once)."""
        return best_order(_flat(self.weights))[1] + best_order(_flat(self.biases))[1]

    def dequantized(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return (
            [w.astype(np.float64) * 2.0**self.weight_log2_step for w in self.weights],
            [b.astype(np.float64) * 2.0**self.bias_log2_step for b in self.biases],
        )


def _flat(tensors: tuple[np.ndarray, ...]) -> np.ndarray:
    return np.concatenate([t.reshape(-1) for t in tensors]) if tensors else np.zeros(0, dtype=np.int64)


def encode_nn(modules: dict[str, QuantizedModule]) -> Part:
    """The NN bins of a Cool-chic, ready to head its stream (``stream.seal``)."""
    groups = []
    for name in MODULE_NAMES:
        m = modules[name]
        groups += [(_flat(m.weights), m.weight_order), (_flat(m.biases), m.bias_order)]
    return encode_groups(groups)


def decode_nn(decoder, shapes: dict[str, Shapes], headers: dict[str, dict]) -> dict[str, QuantizedModule]:
    """Decode the NN bins at the head of a stream (``stream.open_decoder``); the latents follow.

    headers[name]: weight_log2_step, bias_log2_step, weight_expgolomb_order, bias_expgolomb_order.
    """
    return _modules(GroupDecoder(decoder).group, shapes, headers)


def nn_from_values(values: np.ndarray, shapes: dict[str, Shapes], headers: dict[str, dict]) -> dict[str, QuantizedModule]:
    """The modules from integers decoded elsewhere (``flat_values`` order); ValueError if they do not fit."""
    cursor = 0

    def take(count: int, order: int) -> np.ndarray:
        nonlocal cursor
        cursor += count
        if cursor > values.size:
            raise ValueError(f"{values.size} decoded NN values do not fill the architecture")
        return values[cursor - count : cursor]

    out = _modules(take, shapes, headers)
    if cursor != values.size:
        raise ValueError(f"{values.size} decoded NN values for {cursor} parameters")
    return out


def flat_values(modules: dict[str, QuantizedModule]) -> np.ndarray:
    """Every integer of the modules in bitstream order."""
    return np.concatenate([_flat(g) for name in MODULE_NAMES for g in (modules[name].weights, modules[name].biases)])


def _modules(read, shapes: dict[str, Shapes], headers: dict[str, dict]) -> dict[str, QuantizedModule]:
    """Modules from ``read(count, order)``, which returns a group's integers."""
    out = {}
    for name in MODULE_NAMES:
        h = headers[name]
        if h["weight_expgolomb_order"] > MAX_ORDER or h["bias_expgolomb_order"] > MAX_ORDER:
            raise CorruptDataError(f"exp-Golomb order above {MAX_ORDER} in module {name}", "the frame header is corrupted")
        groups = []
        for group_shapes, order in zip(shapes[name], (h["weight_expgolomb_order"], h["bias_expgolomb_order"])):
            sizes = [int(np.prod(s)) for s in group_shapes]
            values = read(sum(sizes), order)
            tensors, start = [], 0
            for shape, size in zip(group_shapes, sizes):
                tensors.append(values[start : start + size].reshape(shape))
                start += size
            groups.append(tuple(tensors))
        out[name] = QuantizedModule(
            groups[0], groups[1], h["weight_log2_step"], h["bias_log2_step"],
            h["weight_expgolomb_order"], h["bias_expgolomb_order"],
        )  # fmt: skip
    return out
