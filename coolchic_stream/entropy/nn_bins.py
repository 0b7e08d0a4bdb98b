"""Context-adaptive range coding of exp-Golomb binarized NN parameters.

Each parameter group (a module's weights, or its biases) is binarized with its exp-Golomb
order k, and every bin but the plain suffix bits is range-coded with an adaptive probability::

    v ─► zero? ─(v != 0)─► sign ─► a = |v| - 1, x = a + 2^k, n = bit length of x - 1 - k
                                   prefix: n ones, one zero      contexts PREFIX[min(i, 15)]
                                   suffix: n + k bits of x       first in SUFFIX[min(n, 15)],
                                                                 the rest at p = 1/2

The bins go out layer by layer so that the decoder handles each layer in a few vector calls::

    zero flags (every value) | signs (nonzero values) | prefix bin 0 (nonzero values) |
    prefix bin 1 (values whose prefix goes on) | ... | first suffix bits | the other suffix bits

Every context starts empty and counts its own bins; a bin is coded with the Krichevsky-Trofimov
estimate p(1) = (2·n1 + 1) / (2·n + 2), a ratio of small integers that both sides compute to the
same double, from the counts as they stood at the start of its run: a layer goes in runs of
max(1, position >> RUN_SHIFT) bins, one decoder call each (single bins while the counts are
young, then runs a quarter of what came before). Updated bin by bin, the cost would depend only
on a context's final counts (the product telescopes to a Beta function): the encoder prices
orders and RDOQ moves with that closed form; the runs spend a few bits more. Groups do not
share contexts; a Cool-chic's groups follow one another at the head of its range-coder stream
(``stream.py``), the latents after them.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import constriction
import numpy as np

from ..errors import CorruptDataError
from .stream import Part

MAX_ORDER = 12
MAX_PREFIX = 40  # a longer prefix only comes from damaged data
_CAPPED = 15  # prefix positions and suffix lengths from here on share a context
_ZERO, _SIGN, _PREFIX, _SUFFIX = 0, 1, 2, 2 + _CAPPED + 1
N_CONTEXTS = _SUFFIX + _CAPPED + 1
_BYPASS = -1
RUN_SHIFT = 2  # a layer's bins go in runs of max(1, position >> RUN_SHIFT) sharing one count state
_BERNOULLI = constriction.stream.model.Bernoulli(perfect=False)
_LOG2_HALF_GAMMA = 2 * math.lgamma(0.5) / math.log(2)


def _bit_lengths(x: np.ndarray) -> np.ndarray:
    """Exact bit length of positive int64 values."""
    n = np.floor(np.log2(x.astype(np.float64))).astype(np.int64) + 1
    n = np.where((np.int64(1) << n) <= x, n + 1, n)
    return np.where((np.int64(1) << (n - 1)) > x, n - 1, n)


def context_counts(values: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(zeros per context, ones per context, bypass bits) of a group binarized at ``order``."""
    v = values.reshape(-1).astype(np.int64)
    n0, n1 = np.zeros(N_CONTEXTS, np.int64), np.zeros(N_CONTEXTS, np.int64)
    nonzero = v[v != 0]
    n0[_ZERO], n1[_ZERO] = v.size - nonzero.size, nonzero.size
    if nonzero.size == 0:
        return n0, n1, 0
    n0[_SIGN], n1[_SIGN] = int(np.sum(nonzero > 0)), int(np.sum(nonzero < 0))
    x = np.abs(nonzero) - 1 + (np.int64(1) << order)
    length = _bit_lengths(x)
    prefix = length - 1 - order
    for i in range(int(prefix.max()) + 1):
        ctx = _PREFIX + min(i, _CAPPED)
        n1[ctx] += int(np.sum(prefix > i))
        n0[ctx] += int(np.sum(prefix == i))
    has_suffix = length >= 2
    top = (x[has_suffix] >> (length[has_suffix] - 2)) & 1
    ctx = _SUFFIX + np.minimum(prefix[has_suffix], _CAPPED)
    np.add.at(n1, ctx, top)
    np.add.at(n0, ctx, 1 - top)
    return n0, n1, int(np.sum(np.maximum(length - 2, 0)))


def group_bits(values: np.ndarray, order: int) -> float:
    """Bits the adaptive coder spends on a group (ideal arithmetic, before the stream's flush)."""
    n0, n1, bypass = context_counts(values, order)
    total = float(bypass)
    for a, b in zip(n0.tolist(), n1.tolist()):
        if a or b:
            total -= (math.lgamma(a + 0.5) + math.lgamma(b + 0.5) - math.lgamma(a + b + 1.0)) / math.log(2) - _LOG2_HALF_GAMMA
    return total


def best_order(values: np.ndarray) -> tuple[int, float]:
    """(order, bits) minimising the coded size of a group."""
    if values.size == 0:
        return 0, 0.0
    bits, k = min((group_bits(values, k), k) for k in range(MAX_ORDER + 1))
    return k, bits


Layer = tuple[int | np.ndarray, np.ndarray]  # (one context for all its bins, or one per bin; bits)


def _layers(values: np.ndarray, order: int) -> list[Layer]:
    """The bins of a group, layer by layer in stream order."""
    v = values.reshape(-1).astype(np.int64)
    layers: list[Layer] = [(_ZERO, (v != 0).astype(np.int64))]
    nonzero = v[v != 0]
    if nonzero.size == 0:
        return layers
    layers.append((_SIGN, (nonzero < 0).astype(np.int64)))
    x = np.abs(nonzero) - 1 + (np.int64(1) << order)
    length = _bit_lengths(x)
    prefix = length - 1 - order
    alive = np.arange(nonzero.size)
    for i in range(int(prefix.max()) + 1):
        going_on = prefix[alive] > i
        layers.append((_PREFIX + min(i, _CAPPED), going_on.astype(np.int64)))
        alive = alive[going_on]
    has = length >= 2
    layers.append((_SUFFIX + np.minimum(prefix[has], _CAPPED), (x[has] >> (length[has] - 2)) & 1))
    owner, shift = _plain_bits(length)
    layers.append((_BYPASS, (x[owner] >> shift) & 1))
    return layers


def _plain_bits(length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every suffix bit after the first: its value's index and its shift, MSB first."""
    rest = np.maximum(length - 2, 0)
    owner = np.repeat(np.arange(length.size), rest)
    within = np.arange(owner.size) - np.repeat(np.cumsum(rest) - rest, rest)
    return owner, rest[owner] - 1 - within


@lru_cache(maxsize=512)
def _runs(n: int) -> tuple[tuple[int, int], ...]:
    """[start, stop) runs of a layer of n bins: single bins first, then ever longer runs."""
    out, start = [], 0
    while start < n:
        stop = min(n, start + max(1, start >> RUN_SHIFT))
        out.append((start, stop))
        start = stop
    return tuple(out)


def _kt(n0: int, n1: int) -> float:
    return (2 * n1 + 1) / (2 * (n0 + n1) + 2)


class _Contexts:
    """Bin counts of one group's contexts."""

    def __init__(self) -> None:
        self.n0 = [0] * N_CONTEXTS
        self.n1 = [0] * N_CONTEXTS


CodeRun = Callable[[np.ndarray, int, int], np.ndarray]  # (probabilities, start, stop) -> the run's bits


def _code_layer(ctx: int | np.ndarray, n: int, contexts: _Contexts, code: CodeRun) -> np.ndarray:
    """Take a layer of n bins run by run, the probabilities of a run from the counts at its start.

    ``code`` range-codes (encoder) or decodes (decoder) one run; both sides go through this one
    schedule, so they cannot disagree on a probability. -> the layer's bits (int64).
    """
    if n == 0:
        return np.zeros(0, np.int64)
    if isinstance(ctx, np.ndarray):
        out = []
        for start, stop in _runs(n):
            c = ctx[start:stop]
            n0, n1 = np.array(contexts.n0)[c], np.array(contexts.n1)[c]
            bits = code((2 * n1 + 1) / (2 * (n0 + n1) + 2), start, stop).astype(np.int64)
            ones = np.bincount(c, weights=bits, minlength=N_CONTEXTS).astype(np.int64)
            zeros = np.bincount(c, minlength=N_CONTEXTS) - ones
            contexts.n1 = [a + b for a, b in zip(contexts.n1, ones.tolist())]
            contexts.n0 = [a + b for a, b in zip(contexts.n0, zeros.tolist())]
            out.append(bits)
        return np.concatenate(out)
    if ctx == _BYPASS:
        return code(np.full(n, 0.5), 0, n).astype(np.int64)
    out_bits = np.empty(n, np.int64)
    p = np.empty(n)
    n0, n1 = contexts.n0[ctx], contexts.n1[ctx]
    for start, stop in _runs(n):
        p[start:stop] = _kt(n0, n1)
        bits = code(p[start:stop], start, stop)
        out_bits[start:stop] = bits
        ones = int(np.count_nonzero(bits))
        n1 += ones
        n0 += stop - start - ones
    contexts.n0[ctx], contexts.n1[ctx] = n0, n1
    return out_bits


def encode_groups(groups: list[tuple[np.ndarray, int]]) -> Part:
    """The bins of (values, order) groups in sequence, with their probabilities (for ``stream.seal``)."""
    probs: list[np.ndarray] = []
    all_bits: list[np.ndarray] = []
    for values, order in groups:
        contexts = _Contexts()
        for ctx, bits in _layers(values, order):

            def code(p: np.ndarray, start: int, stop: int, bits: np.ndarray = bits) -> np.ndarray:
                probs.append(p)
                return bits[start:stop]

            all_bits.append(_code_layer(ctx, bits.size, contexts, code))
    if not all_bits:
        return Part(_BERNOULLI, np.zeros(0, np.int32), (np.zeros(0),))
    return Part(_BERNOULLI, np.concatenate(all_bits).astype(np.int32), (np.concatenate(probs),))


class GroupDecoder:
    """Decodes the groups of one stream in the order they were coded."""

    def __init__(self, decoder) -> None:
        self._decoder = decoder

    def _decode_run(self, p: np.ndarray, start: int, stop: int) -> np.ndarray:
        try:
            return self._decoder.decode(_BERNOULLI, p)
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException as exc:  # noqa: BLE001 - pyo3 PanicException is not an Exception
            raise _corrupt("NN weight decoding failed: the coded weights are inconsistent") from None

    def _layer(self, ctx: int | np.ndarray, n: int, contexts: _Contexts) -> np.ndarray:
        return _code_layer(ctx, n, contexts, self._decode_run)

    def group(self, count: int, order: int) -> np.ndarray:
        contexts = _Contexts()
        out = np.zeros(count, dtype=np.int64)
        nonzero = np.flatnonzero(self._layer(_ZERO, count, contexts))
        if nonzero.size == 0:
            return out
        negative = self._layer(_SIGN, nonzero.size, contexts).astype(bool)
        prefix = np.zeros(nonzero.size, np.int64)
        alive = np.arange(nonzero.size)
        i = 0
        while alive.size:
            if i > MAX_PREFIX:
                raise _corrupt("NN weight code is malformed")
            alive = alive[self._layer(_PREFIX + min(i, _CAPPED), alive.size, contexts) == 1]
            prefix[alive] += 1
            i += 1
        length = prefix + 1 + order
        x = np.int64(1) << (length - 1)
        has = length >= 2
        first = _SUFFIX + np.minimum(prefix[has], _CAPPED)
        x[has] |= self._layer(first, first.size, contexts) << (length[has] - 2)
        owner, shift = _plain_bits(length)
        np.bitwise_or.at(x, owner, self._layer(_BYPASS, owner.size, contexts) << shift)
        magnitude = x - (np.int64(1) << order) + 1
        out[nonzero] = np.where(negative, -magnitude, magnitude)
        return out


def _corrupt(message: str) -> CorruptDataError:
    return CorruptDataError(message, "the frame payload is corrupted")


__all__ = ["MAX_ORDER", "GroupDecoder", "best_order", "context_counts", "encode_groups", "group_bits"]
