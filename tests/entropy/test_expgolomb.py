"""Exp-Golomb coding of NN parameters: exact round trips and exact bit counts."""

from __future__ import annotations

import numpy as np
import pytest

from coolchic_stream.entropy.expgolomb import BitReader, BitWriter, best_order, code_lengths
from coolchic_stream.errors import CorruptDataError


@pytest.mark.parametrize("order", [0, 1, 3, 7, 12])
def test_round_trip_and_length(order):
    values = np.array([0, 1, -1, 2, -2, 7, -8, 100, -1000, 65535, -65536])
    writer = BitWriter()
    writer.write_expgolomb(values, order)
    data = writer.getvalue()
    assert len("".join(writer.bits)) == code_lengths(values, order)
    reader = BitReader(data)
    assert np.array_equal(reader.read_expgolomb(values.size, order), values)
    reader.check_end()


def test_best_order_prefers_larger_orders_for_larger_values():
    small = np.array([0, 1, -1, 0, 0, 1])
    large = np.random.default_rng(0).integers(-5000, 5000, 200)
    assert best_order(small)[0] <= 1
    assert best_order(large)[0] >= 8
    assert best_order(large)[1] == min(code_lengths(large, k) for k in range(13))


def test_truncated_bits_raise():
    writer = BitWriter()
    writer.write_expgolomb(np.array([1000, -1000]), 0)
    data = writer.getvalue()
    with pytest.raises(CorruptDataError):
        BitReader(data[:2]).read_expgolomb(2, 0)
