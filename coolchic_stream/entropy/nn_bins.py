"""Context-adaptive range coding of exp-Golomb binarized NN parameters.

Each parameter group (a module's weights, or its biases) is binarized with its exp-Golomb
order k, and every bin but the plain suffix bits is range-coded with an adaptive probability::

    v ─► zero? ─(v != 0)─► sign ─► a = |v| - 1, x = a + 2^k, n = bit length of x - 1 - k
                                   prefix: n ones, one zero      contexts PREFIX[min(i, 15)]
                                   suffix: n + k bits of x       first in SUFFIX[min(n, 15)],
                                                                 the rest at p = 1/2

Every context starts empty and counts its own bins; a bin is coded with the Krichevsky-Trofimov
estimate p(1) = (2·n1 + 1) / (2·n + 2), a ratio of small integers that both sides compute to the
same double. Its total cost depends only on a context's final counts (the product telescopes
to a Beta function), so the encoder prices every order in closed form without coding anything.
Groups do not share contexts; a Cool-chic's groups follow one another in one range-coder stream.
"""

from __future__ import annotations

import math

import constriction
import numpy as np

from ..errors import CorruptDataError

MAX_ORDER = 12
MAX_PREFIX = 40  # a longer prefix only comes from damaged data
_CAPPED = 15  # prefix positions and suffix lengths from here on share a context
_ZERO, _SIGN, _PREFIX, _SUFFIX = 0, 1, 2, 2 + _CAPPED + 1
N_CONTEXTS = _SUFFIX + _CAPPED + 1
_BYPASS = -1
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


def _binarize(values: np.ndarray, order: int, ctx: list[int], bits: list[int]) -> None:
    for v in values.reshape(-1).tolist():
        ctx.append(_ZERO)
        bits.append(int(v != 0))
        if v == 0:
            continue
        ctx.append(_SIGN)
        bits.append(int(v < 0))
        x = abs(v) - 1 + (1 << order)
        length = x.bit_length()
        prefix = length - 1 - order
        ctx.extend(_PREFIX + min(i, _CAPPED) for i in range(prefix + 1))
        bits.extend([1] * prefix + [0])
        for j in range(length - 2, -1, -1):
            ctx.append(_SUFFIX + min(prefix, _CAPPED) if j == length - 2 else _BYPASS)
            bits.append((x >> j) & 1)


def _probability(counts: list[list[int]], ctx: int) -> float:
    if ctx == _BYPASS:
        return 0.5
    n0, n1 = counts[ctx]
    return (2 * n1 + 1) / (2 * (n0 + n1) + 2)


def encode_groups(groups: list[tuple[np.ndarray, int]]) -> bytes:
    """Range-code (values, order) groups in sequence; -> little-endian 32-bit words."""
    probs: list[float] = []
    all_bits: list[int] = []
    for values, order in groups:
        ctx: list[int] = []
        bits: list[int] = []
        _binarize(values, order, ctx, bits)
        counts = [[0, 0] for _ in range(N_CONTEXTS)]
        for c, b in zip(ctx, bits):
            probs.append(_probability(counts, c))
            if c != _BYPASS:
                counts[c][b] += 1
        all_bits += bits
    if not all_bits:
        return b""
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(np.array(all_bits, dtype=np.int32), _BERNOULLI, np.array(probs, dtype=np.float64))
    return encoder.get_compressed().astype("<u4").tobytes()


class GroupDecoder:
    """Decodes the groups of one stream in the order they were coded."""

    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise _corrupt(f"NN payload of {len(data)} bytes is not whole 32-bit words")
        self._decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype="<u4").astype(np.uint32))
        self._p = np.zeros(1, dtype=np.float64)

    def _bin(self, p: float) -> int:
        self._p[0] = p
        try:
            return int(self._decoder.decode(_BERNOULLI, self._p)[0])
        except (KeyboardInterrupt, SystemExit, MemoryError):
            raise
        except BaseException as exc:  # noqa: BLE001 - pyo3 PanicException is not an Exception
            raise _corrupt(f"NN weight decoding failed: {type(exc).__name__}") from None

    def _coded(self, counts: list[list[int]], ctx: int) -> int:
        bit = self._bin(_probability(counts, ctx))
        counts[ctx][bit] += 1
        return bit

    def group(self, count: int, order: int) -> np.ndarray:
        counts = [[0, 0] for _ in range(N_CONTEXTS)]
        out = np.zeros(count, dtype=np.int64)
        for i in range(count):
            if not self._coded(counts, _ZERO):
                continue
            negative = self._coded(counts, _SIGN)
            prefix = 0
            while self._coded(counts, _PREFIX + min(prefix, _CAPPED)):
                prefix += 1
                if prefix > MAX_PREFIX:
                    raise _corrupt("NN weight code is malformed")
            x = 1
            for j in range(prefix + order):
                bit = self._coded(counts, _SUFFIX + min(prefix, _CAPPED)) if j == 0 else self._bin(0.5)
                x = (x << 1) | bit
            magnitude = x - (1 << order) + 1
            out[i] = -magnitude if negative else magnitude
        return out

    def check_end(self) -> None:
        if not self._decoder.maybe_exhausted():
            raise _corrupt("NN weight data goes on after the last parameter")


def _corrupt(message: str) -> CorruptDataError:
    return CorruptDataError(message, "the frame payload is corrupted")


__all__ = ["MAX_ORDER", "GroupDecoder", "best_order", "context_counts", "encode_groups", "group_bits"]
