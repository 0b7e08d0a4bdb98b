"""Quantized NN parameters of a Cool-chic, how each module is sent (fresh, copy, delta), and their bins.

Module order arm, upsampling, synthesis (``spec.MODULE_NAMES``); in each, every weight tensor
then every bias tensor (``architecture.parameter_shapes``). A value v stands for v * 2**log2_step.
What a module's bins carry depends on its mode (``spec.NNMode``)::

    fresh:  weights | biases                              its own steps and exp-Golomb orders
    delta:  weights - prediction | biases - prediction    the source's steps, orders of the differences
    copy:   nothing                                       the prediction: the source's integers and steps

A prediction is the same module of a reference's same-role Cool-chic, each tensor shaped to this
one's (``spec.predict_tensor``: the overlap, zero elsewhere).

Each carried group is binarized with its own exp-Golomb order and range-coded with adaptive
contexts that start empty (``nn_bins``), so differences learn their own statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..architecture import Shapes
from ..errors import CorruptDataError
from ..spec import MODULE_NAMES, NN_INT_MAX, NNMode, predict_tensor
from .nn_bins import MAX_ORDER, GroupDecoder, best_order, encode_groups
from .stream import Part


@dataclass(frozen=True)
class QuantizedModule:
    """A module's integers and steps; the orders are those of what its bins carry (fresh: the
    integers; delta: the differences to its source; copy: unused)."""

    weights: tuple[np.ndarray, ...]  # int64
    biases: tuple[np.ndarray, ...]
    weight_log2_step: int
    bias_log2_step: int
    weight_order: int = 0
    bias_order: int = 0

    def with_best_orders(self, source: "QuantizedModule | None" = None) -> "QuantizedModule":
        """The same integers with the orders that code them (or their differences to ``source``) best."""
        w, b = carried(self, source)
        return QuantizedModule(
            self.weights, self.biases, self.weight_log2_step, self.bias_log2_step, best_order(w)[0], best_order(b)[0]
        )

    def n_bits(self, source: "QuantizedModule | None" = None) -> float:
        """Coded size at the best orders, fresh or as differences to ``source`` (ideal arithmetic:
        the stream adds its flush once)."""
        w, b = carried(self, source)
        return best_order(w)[1] + best_order(b)[1]

    def dequantized(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return (
            [w.astype(np.float64) * 2.0**self.weight_log2_step for w in self.weights],
            [b.astype(np.float64) * 2.0**self.bias_log2_step for b in self.biases],
        )

    def same_integers(self, other: "QuantizedModule") -> bool:
        """Same steps and integers (orders aside): what a copy of ``other`` decodes to."""
        return (
            self.weight_log2_step == other.weight_log2_step
            and self.bias_log2_step == other.bias_log2_step
            and len(self.weights) == len(other.weights)
            and len(self.biases) == len(other.biases)
            and all(np.array_equal(a, b) for a, b in zip(self.weights + self.biases, other.weights + other.biases))
        )


def predict_module(source: QuantizedModule, shapes: Shapes) -> QuantizedModule:
    """A module of ``shapes`` (weights, biases) as predicted from ``source``, at its steps."""
    return QuantizedModule(
        tuple(predict_tensor(t, s) for t, s in zip(source.weights, shapes[0])),
        tuple(predict_tensor(t, s) for t, s in zip(source.biases, shapes[1])),
        source.weight_log2_step, source.bias_log2_step,
    )  # fmt: skip


@dataclass(frozen=True)
class ModulePrediction:
    """How one module is sent: fresh, or copied / delta-coded from ``source``, its prediction
    (``predict_module``) from the same module of the same-role Cool-chic of the frame's
    reference number ``reference``."""

    mode: NNMode = NNMode.FRESH
    reference: int = 0
    source: QuantizedModule | None = None

    def __post_init__(self) -> None:
        if (self.mode == NNMode.FRESH) != (self.source is None):
            raise ValueError(f"a {self.mode.name.lower()} module {'has no' if self.source is None else 'takes no'} source")


FRESH = ModulePrediction()


def _flat(tensors: tuple[np.ndarray, ...]) -> np.ndarray:
    return np.concatenate([t.reshape(-1) for t in tensors]) if tensors else np.zeros(0, dtype=np.int64)


def carried(module: QuantizedModule, source: QuantizedModule | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(weights, biases) as the bins carry them: the integers, or their differences to ``source``."""
    w, b = _flat(module.weights), _flat(module.biases)
    if source is None:
        return w, b
    return w - _flat(source.weights), b - _flat(source.biases)


def module_bits(module: QuantizedModule, prediction: ModulePrediction = FRESH) -> float:
    """Coded size of a module sent as ``prediction`` says, at its best orders (0 for a copy)."""
    if prediction.mode == NNMode.COPY:
        return 0.0
    return module.n_bits(prediction.source)


def encode_nn(modules: dict[str, QuantizedModule], predictions: dict[str, ModulePrediction] | None = None) -> Part:
    """The NN bins of a Cool-chic, ready to head its stream (``stream.seal``)."""
    groups = []
    for name in MODULE_NAMES:
        m, p = modules[name], (predictions or {}).get(name, FRESH)
        if p.mode == NNMode.COPY:
            continue
        w, b = carried(m, p.source)
        groups += [(w, m.weight_order), (b, m.bias_order)]
    return encode_groups(groups)


def coded_values(modules: dict[str, QuantizedModule], predictions: dict[str, ModulePrediction] | None = None) -> np.ndarray:
    """Every integer the bins carry, in bitstream order (what ``nn_from_values`` takes back)."""
    parts = [np.zeros(0, np.int64)]
    for name in MODULE_NAMES:
        p = (predictions or {}).get(name, FRESH)
        if p.mode != NNMode.COPY:
            parts += list(carried(modules[name], p.source))
    return np.concatenate(parts)


def decode_nn(
    decoder, shapes: dict[str, Shapes], headers: dict[str, dict], sources: dict[str, QuantizedModule | None]
) -> dict[str, QuantizedModule]:
    """Decode the NN bins at the head of a stream (``stream.open_decoder``); the latents follow.

    headers[name]: the parsed NNModuleCoding (mode None in an I frame: fresh); sources[name]: the
    prediction (``predict_module``) a copy or delta takes its integers and steps from (None for fresh).
    """
    return _modules(GroupDecoder(decoder).group, shapes, headers, sources)


def nn_from_values(
    values: np.ndarray, shapes: dict[str, Shapes], headers: dict[str, dict], sources: dict[str, QuantizedModule | None]
) -> dict[str, QuantizedModule]:
    """The modules from carried integers decoded elsewhere (``coded_values`` order); ValueError if
    they do not fit the architecture."""
    cursor = 0

    def take(count: int, order: int) -> np.ndarray:
        nonlocal cursor
        cursor += count
        if cursor > values.size:
            raise ValueError(f"{values.size} decoded NN values do not fill the architecture")
        return values[cursor - count : cursor]

    out = _modules(take, shapes, headers, sources)
    if cursor != values.size:
        raise ValueError(f"{values.size} decoded NN values for {cursor} parameters")
    return out


def header_mode(header: dict) -> NNMode:
    """A parsed NNModuleCoding's mode (an I frame's modules carry none: fresh)."""
    mode = header["mode"]
    if mode is None:
        return NNMode.FRESH
    try:
        return NNMode[str(mode).upper()]
    except KeyError:
        raise CorruptDataError(f"unknown NN module mode {mode}", "the frame header is corrupted") from None


def _modules(
    read, shapes: dict[str, Shapes], headers: dict[str, dict], sources: dict[str, QuantizedModule | None]
) -> dict[str, QuantizedModule]:
    """Modules from ``read(count, order)``, which returns a carried group's integers."""
    out = {}
    for name in MODULE_NAMES:
        h, mode, source = headers[name], header_mode(headers[name]), sources.get(name)
        if mode == NNMode.COPY:
            out[name] = QuantizedModule(source.weights, source.biases, source.weight_log2_step, source.bias_log2_step)
            continue
        orders = (h["weight_expgolomb_order"], h["bias_expgolomb_order"])
        if max(orders) > MAX_ORDER:
            raise CorruptDataError(f"exp-Golomb order above {MAX_ORDER} in module {name}", "the frame header is corrupted")
        groups = []
        for i, (group_shapes, order) in enumerate(zip(shapes[name], orders)):
            sizes = [int(np.prod(s)) for s in group_shapes]
            values = read(sum(sizes), order)
            if mode == NNMode.DELTA:
                values = _flat((source.weights, source.biases)[i]) + values
            if values.size and np.abs(values).max() > NN_INT_MAX:
                raise CorruptDataError(f"NN integer of module {name} exceeds {NN_INT_MAX}", "the frame payload is corrupted")
            tensors, start = [], 0
            for shape, size in zip(group_shapes, sizes):
                tensors.append(values[start : start + size].reshape(shape))
                start += size
            groups.append(tuple(tensors))
        steps = (h["weight_log2_step"], h["bias_log2_step"]) if mode == NNMode.FRESH else (
            source.weight_log2_step, source.bias_log2_step)  # fmt: skip
        out[name] = QuantizedModule(groups[0], groups[1], *steps, *orders)
    return out


__all__ = [
    "FRESH", "ModulePrediction", "QuantizedModule", "carried", "coded_values", "decode_nn", "encode_nn",
    "header_mode", "module_bits", "nn_from_values", "predict_module",
]  # fmt: skip
