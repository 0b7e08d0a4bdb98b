"""Encoder -> decoder: the decoder reproduces the encoder's reconstruction exactly.

rav1e-style: every frame decoded from the packets must equal, sample for
sample, the picture the encoder reconstructed and kept as a reference.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from coolchic_stream import framecodec
from coolchic_stream.architecture import preset_of, preset_parameter
from coolchic_stream.bitstream import syntax
from coolchic_stream.config import Complexity
from coolchic_stream.errors import CoolChicStreamError, CorruptDataError
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


def test_another_seed_is_another_encode_that_decodes_exactly():
    """``seed`` picks every training's random start: the same seed gives the same bytes, another
    one a different stream, which decodes to its own encoder's reconstruction."""
    pictures = [make_picture(23, 17, pts=i, shift=i) for i in range(3)]
    streams = {}
    for seed in (0, 1, 0):
        enc, packets = encode(pictures, gop_size=2, iterations=30, seed=seed)
        decoded = decode(packets)
        assert all(d.same_samples(enc.reconstructions[d.pts]) for d in decoded) and len(decoded) == 3
        data = b"".join(p.data for p in packets)
        assert streams.setdefault(seed, data) == data
    assert streams[0] != streams[1]


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


def test_architecture_is_named_by_preset_or_spelled_out():
    """A preset architecture costs one header byte; spelled out, the same frame decodes the same."""
    picture = make_picture(33, 17, DataType.YUV420, 8)
    enc, packets = encode([picture], gop="intra", iterations=30, complexity="mop")
    payload = packets[0].data
    parsed = syntax.FramePayload.parse(payload)
    section = parsed.coolchics[0]
    assert str(section.architecture) == "mop" and section.explicit is None
    [(_, coded)] = framecodec.parse_payloads([payload])
    param = coded[0].param
    assert param == preset_parameter(False, Complexity.MOP, 17, 33, 3)
    explicit = framecodec.explicit_architecture(param)
    spelled = syntax.FramePayload.build(
        dict(parsed) | {"coolchics": [dict(section) | {"architecture": "explicit", "explicit": explicit}]}
    )
    assert len(spelled) == len(payload) + len(syntax.ExplicitArchitecture.build(explicit))
    [(_, coded_spelled)] = framecodec.parse_payloads([spelled])
    assert coded_spelled[0].param == param
    assert all(np.array_equal(a, b) for a, b in zip(coded_spelled[0].latents, coded[0].latents))
    assert decode([spelled])[0].same_samples(enc.reconstructions[0])
    unknown = syntax.FramePayload.build(dict(parsed) | {"coolchics": [dict(section) | {"architecture": 9}]})
    with pytest.raises(CorruptDataError, match="architecture"):
        decode([unknown])


@pytest.mark.parametrize("motion", [False, True])
@pytest.mark.parametrize("size", [(2, 2), (17, 33), (1080, 1920)])
def test_presets_are_recognised_and_other_architectures_are_not(motion, size):
    n_output = 2 if motion else 3
    for complexity in Complexity:
        param = preset_parameter(motion, complexity, *size, n_output)
        named = preset_of(param, motion)  # motion mop and hop share one architecture: either will do
        assert named is not None and preset_parameter(motion, named, *size, n_output) == param
        assert preset_of(dataclasses.replace(param, ups_preconcat_kernel=5), motion) is None
        assert preset_of(dataclasses.replace(param, encoder_gain=20.0), motion) == named  # not in the header
    assert preset_of(preset_parameter(not motion, Complexity.LOP, *size, n_output), motion) is None
