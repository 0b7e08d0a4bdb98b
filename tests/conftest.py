"""Shared fixtures: tiny synthetic pictures of every supported format, odd sizes included."""

from __future__ import annotations

import numpy as np
import torch

from coolchic_stream.types import DataType, Picture, chroma_shape, sample_dtype

torch.set_num_threads(1)


def make_picture(width: int, height: int, data_type: DataType = DataType.YUV420, bit_depth: int = 8, pts: int = 0, seed: int = 0, shift: int = 0) -> Picture:
    """A smooth textured picture (gradients + sines + a little noise), optionally shifted right."""
    rng = np.random.default_rng(seed)
    peak = (1 << bit_depth) - 1
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    xx = xx - shift
    base = 0.5 + 0.25 * np.sin(xx / 3.1) * np.cos(yy / 4.3) + 0.15 * np.sin((xx + yy) / 7.0)
    planes = []
    ch, cw = chroma_shape(data_type, height, width)
    for c in range(3):
        if c == 0 or data_type != DataType.YUV420:
            p = base + 0.1 * c * np.cos(xx / 5.0)
        else:
            cy, cx = np.mgrid[0:ch, 0:cw].astype(np.float64)
            p = 0.5 + 0.1 * c * np.sin((cx * 2 - shift) / 4.0) + 0.05 * np.cos(cy / 3.0)
        p = np.clip(p + rng.normal(0, 0.01, p.shape), 0, 1)
        planes.append(np.round(p * peak).astype(sample_dtype(bit_depth)))
    return Picture(tuple(planes), bit_depth, data_type, pts)


def encode_pictures(pictures, **config):
    """Encode with the ``test`` preset, keeping the encoder's reconstructions; -> (encoder, packets)."""
    from coolchic_stream.config import EncoderConfig
    from coolchic_stream.encoder import Encoder

    enc = Encoder(EncoderConfig(**{"preset": "test", **config}))
    enc.keep_reconstructions = True
    packets = []
    for p in pictures:
        packets += enc.send(p)
    return enc, packets + enc.flush()


def decode_packets(packets, sequence=None):
    """Decode packets in coding order; -> pictures in display order. Strict: the first frame that
    fails raises (the default decoder would drop it and resume at the next I frame)."""
    from coolchic_stream.decoder import DecodeErrors, Decoder

    dec = Decoder(sequence, errors=DecodeErrors.RAISE)
    out = []
    for p in packets:
        out += dec.send(p)
    return out + dec.flush()


def overfit_still(lmbda: float, seed: int = 0, iterations: int = 60):
    """A lop I-frame FrameEncoder overfitted to a 20x14 RGB picture; -> (FrameEncoder, Target)."""
    from coolchic_stream.architecture import OUTPUTS, residue_parameter
    from coolchic_stream.config import Complexity
    from coolchic_stream.nn.frame import FrameEncoder
    from coolchic_stream.train.coding import picture_target
    from coolchic_stream.train.loop import intra_plan, run_plan
    from coolchic_stream.types import FrameType

    target = picture_target(make_picture(20, 14, DataType.RGB, seed=seed))
    param = residue_parameter(14, 20, OUTPUTS[FrameType.I][0], Complexity.LOP)

    def make(s: int) -> FrameEncoder:
        torch.manual_seed(s)
        return FrameEncoder(FrameType.I, DataType.RGB, 8, param)

    fe, _ = run_plan(make, target, [], lmbda, intra_plan(iterations, lmbda, 1, 10, 10, 20))
    return fe, target
