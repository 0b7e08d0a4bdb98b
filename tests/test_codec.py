"""Encoder -> decoder: the decoder reproduces the encoder's reconstruction exactly.

rav1e-style: every frame decoded from the packets must equal, sample for
sample, the picture the encoder reconstructed and kept as a reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from coolchic_stream.errors import CoolChicStreamError
from coolchic_stream.types import DataType, FrameType

from .conftest import decode_packets, encode_pictures, make_picture

CASES = [
    (DataType.YUV420, 8),
    (DataType.YUV420, 10),
    (DataType.YUV444, 8),
    (DataType.RGB, 8),
]


encode = encode_pictures
decode = decode_packets


@pytest.mark.parametrize(("data_type", "bit_depth"), CASES)
@pytest.mark.parametrize("size", [(2, 2), (33, 17)])
def test_intra_decoder_matches_encoder_reconstruction(data_type, bit_depth, size):
    pictures = [make_picture(*size, data_type, bit_depth, pts=0)]
    enc, packets = encode(pictures, gop="intra", iterations=60)
    decoded = decode(packets)
    assert len(decoded) == 1 and decoded[0].pts == 0
    recon = enc.reconstructions[0]
    assert decoded[0].same_samples(recon)
    assert decoded[0].data_type == data_type and decoded[0].bit_depth == bit_depth
    assert decoded[0].width == size[0] and decoded[0].height == size[1]
    stats = packets[0].stats
    assert stats.bits == 8 * len(packets[0].data)
    assert stats.frame_type == FrameType.I


def test_training_actually_fits_the_picture():
    picture = make_picture(48, 32, DataType.YUV420, 8)
    _, packets = encode([picture], gop="intra", lmbda=1e-4, iterations=300)
    stats = packets[0].stats
    assert stats.psnr_y > 28.0, stats
    # far below raw 4:2:0 (12 bits per pixel)
    assert stats.bits / (48 * 32) < 8.0


def test_corrupted_payloads_fail_cleanly():
    picture = make_picture(24, 16, DataType.YUV420, 8)
    _, packets = encode([picture], gop="intra", iterations=40)
    data = packets[0].data
    rng = np.random.default_rng(0)
    outcomes = {"error": 0, "decoded": 0}
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= int(rng.integers(1, 256))
        try:
            decode([bytes(bad)])
            outcomes["decoded"] += 1
        except CoolChicStreamError:
            outcomes["error"] += 1
    for cut in range(0, len(data), 3):
        with pytest.raises(CoolChicStreamError):
            decode([data[:cut]])
    assert outcomes["error"] > 0
