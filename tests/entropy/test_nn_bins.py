"""Adaptive exp-Golomb bins of NN parameters: exact round trips, honest size estimates, clean errors."""

from __future__ import annotations

import numpy as np
import pytest

from coolchic_stream.entropy.nn_bins import MAX_ORDER, GroupDecoder, best_order, context_counts, encode_groups, group_bits
from coolchic_stream.entropy.stream import open_decoder, seal
from coolchic_stream.errors import CorruptDataError


def stream(groups) -> bytes:
    return seal([encode_groups(groups)])


def reader(data: bytes) -> GroupDecoder:
    return GroupDecoder(open_decoder(data))


def plain_expgolomb_bits(values: np.ndarray, order: int) -> int:
    """Length of the signed order-k exp-Golomb code written bit by bit (the unadapted code)."""
    total = 0
    for v in values.tolist():
        u = -2 * v if v <= 0 else 2 * v - 1
        total += 2 * (u + (1 << order)).bit_length() - 1 - order
    return total


def laplace_ints(rng, n: int, scale: float) -> np.ndarray:
    return np.round(rng.laplace(0.0, scale, n)).astype(np.int64)


@pytest.mark.parametrize("order", [0, 1, 3, 7, MAX_ORDER])
def test_groups_round_trip_exactly(order):
    rng = np.random.default_rng(order)
    extremes = np.array([0, 1, -1, 2, -2, 7, -8, 100, -1000, 65535, -65536, 2**40, -(2**40)])
    groups = [(extremes, order), (laplace_ints(rng, 500, 20.0), order), (np.zeros(0, np.int64), 0), (np.zeros(9, np.int64), 2)]
    decoder = reader(stream(groups))
    for values, k in groups:
        assert np.array_equal(decoder.group(values.size, k), values)


def test_estimate_is_the_coded_size_up_to_the_flush():
    rng = np.random.default_rng(1)
    groups = [(laplace_ints(rng, 800, s), best_order(laplace_ints(rng, 800, s))[0]) for s in (0.7, 6.0, 90.0)]
    estimate = sum(group_bits(v, k) for v, k in groups)
    real = 8 * len(stream(groups))
    assert estimate <= real <= estimate + 64


def test_counts_follow_the_binarization():
    # 0 -> zero flag; 1 -> a=0, x=1 (order 0): prefix "0"; -3 -> a=2, x=3: prefix "10", suffix "1"
    n0, n1, bypass = context_counts(np.array([0, 1, -3]), 0)
    assert (n0[0], n1[0]) == (1, 2)  # zero flags
    assert (n0[1], n1[1]) == (1, 1)  # signs
    assert (n0[2], n1[2]) == (1, 1) and (n0[3], n1[3]) == (1, 0)  # prefix positions 0 and 1
    assert n1[19] == 1 and bypass == 0 and int(n0.sum() + n1.sum()) == 9  # 3 zero flags, 2 signs, 3 prefix, 1 suffix


def test_adaptive_bins_beat_the_plain_code_on_network_like_values():
    rng = np.random.default_rng(2)
    for scale in (0.5, 4.0, 40.0):
        values = laplace_ints(rng, 1000, scale)
        order, bits = best_order(values)
        plain = min(plain_expgolomb_bits(values, k) for k in range(MAX_ORDER + 1))
        assert bits < plain
        assert 8 * len(stream([(values, order)])) < plain
    big = rng.integers(-5000, 5000, 200)
    assert best_order(big)[0] >= 6 and best_order(np.array([0, 1, -1, 0, 0, 1]))[0] <= 1


def test_damaged_or_short_streams_fail_cleanly():
    values = laplace_ints(np.random.default_rng(3), 300, 30.0)
    data = stream([(values, 3)])
    with pytest.raises(CorruptDataError, match="NN weight"):
        reader(b"\xff" * 64).group(10, 0)
    rng = np.random.default_rng(4)
    for _ in range(50):
        bad = bytearray(data)
        bad[int(rng.integers(len(bad)))] ^= int(rng.integers(1, 256))
        try:
            reader(bytes(bad)).group(values.size, 3)
        except CorruptDataError:
            pass
    for cut in (1, 5, len(data) - 1):
        try:
            reader(data[:-cut]).group(values.size, 3)
        except CorruptDataError:
            pass
