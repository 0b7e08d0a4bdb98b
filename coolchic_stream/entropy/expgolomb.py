"""Signed exp-Golomb coding of quantized NN parameters, with the best order search.

Signed -> unsigned: v <= 0 -> -2v, v > 0 -> 2v - 1. Order-k code of u: the
order-0 code of u + 2^k - 1 with its k leading zeros dropped. Bits are packed
MSB first and zero-padded at the end of the last byte.
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptDataError

MAX_ORDER = 12


def to_unsigned(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.int64)
    return np.where(v <= 0, -2 * v, 2 * v - 1)


def to_signed(u: np.ndarray) -> np.ndarray:
    u = u.astype(np.int64)
    return np.where(u % 2 == 1, (u + 1) // 2, -(u // 2))


def code_lengths(values: np.ndarray, order: int) -> int:
    """Total bits of the order-k code of ``values``."""
    if values.size == 0:
        return 0
    x = to_unsigned(values) + (1 << order)  # u + 2^k - 1 + 1
    nbits = np.floor(np.log2(x.astype(np.float64))).astype(np.int64) + 1
    # exact correction where float log2 is off near powers of two
    nbits = np.where((1 << nbits) <= x, nbits + 1, nbits)
    nbits = np.where((1 << (nbits - 1)) > x, nbits - 1, nbits)
    return int(np.sum(2 * nbits - 1 - order))


def best_order(values: np.ndarray) -> tuple[int, int]:
    """(order, bits) minimising the code length."""
    costs = [(code_lengths(values, k), k) for k in range(MAX_ORDER + 1)]
    bits, k = min(costs)
    return k, bits


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[str] = []

    def write_expgolomb(self, values: np.ndarray, order: int) -> None:
        for u in to_unsigned(values.reshape(-1)).tolist():
            x = u + (1 << order)
            n = x.bit_length()
            self.bits.append("0" * (n - 1 - order) + format(x, "b"))

    def getvalue(self) -> bytes:
        s = "".join(self.bits)
        s += "0" * (-len(s) % 8)
        return int(s, 2).to_bytes(len(s) // 8, "big") if s else b""


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(format(b, "08b") for b in data)
        self.pos = 0

    def read_expgolomb(self, count: int, order: int) -> np.ndarray:
        out = np.empty(count, dtype=np.int64)
        bits, pos, n_total = self.bits, self.pos, len(self.bits)
        for i in range(count):
            zeros = 0
            while pos < n_total and bits[pos] == "0":
                zeros += 1
                pos += 1
            end = pos + zeros + order + 1
            if end > n_total or zeros > 40:
                raise CorruptDataError("NN weight bits end early or are malformed", "the frame payload is corrupted")
            out[i] = int(bits[pos:end], 2) - (1 << order)
            pos = end
        self.pos = pos
        return to_signed(out)

    def check_end(self) -> None:
        rest = self.bits[self.pos :]
        if len(rest) >= 8 or "1" in rest:
            raise CorruptDataError(f"{len(rest)} unexpected bits after the NN weights", "the frame payload is corrupted")
