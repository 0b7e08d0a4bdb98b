"""The encoder under rate control: what it tells the controller, the λ it codes at, bit-exact decodes."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from coolchic_stream.config import EncoderConfig
from coolchic_stream.gop import lambda_scale
from coolchic_stream.ratecontrol import INTRA_BELOW, RateController
from coolchic_stream.types import FrameType

from .conftest import decode_packets, make_picture


def test_the_encoder_gives_rate_control_the_frames_scheduled_after_each_with_their_detail(monkeypatch) -> None:
    """``Encoder`` codes a frame once the pictures up to its ``segment_plan.look_end`` are in, and
    passes it the classes of the jobs scheduled after it, with the spatial detail of its picture and
    theirs, and of the pictures in beyond them."""
    from coolchic_stream.encoder import Encoder
    from coolchic_stream.lookahead import spatial_detail

    given: list[tuple] = []
    plain = RateController.next_frame

    def spy(rc, t, d, known=(), details=(), ahead=None):  # type: ignore[no-untyped-def]
        given.append((t, d, tuple(known), tuple(details), ahead))
        return plain(rc, t, d, known, details, ahead)

    monkeypatch.setattr(RateController, "next_frame", spy)
    pics = [make_picture(23, 17, pts=i, shift=i) for i in range(8)]
    detail = [spatial_detail(p) for p in pics]
    config = EncoderConfig(preset="test", iterations=10, bitrate="20k", frame_rate=Fraction(25), gop_size=2,
                           intra_period=8, stream_frames=5, adaptive_gop=False)  # fmt: skip
    enc = Encoder(config)
    [q for p in pics[:5] for q in enc.send(p)] + enc.flush()
    # groups (P2, B1) and (P4, B3), coded with the I frame once the last picture is in: each frame
    # knows those after it, and their pictures' detail
    b, p = (FrameType.B, 1), (FrameType.P, 0)
    assert [g[:3] for g in given] == [(*p, (b, p, b)), (*b, (p, b)), (*p, (b,)), (*b, ())]
    assert [g[3] for g in given] == [tuple(detail[d] for d in order) for order in ([2, 1, 4, 3], [1, 4, 3], [4, 3], [3])]
    # in a stream of 8, (P2, B1) wait for picture 6, when (P6, B5) are scheduled, the rest for picture 7
    given.clear()
    enc = Encoder(replace(config, stream_frames=8))
    [q for pic in pics for q in enc.send(pic)] + enc.flush()
    assert [g[:3] for g in given] == [(*p, (b, p, b, p, b)), (*b, (p, b, p, b)), (*p, (b, p, b, p)), (*b, (p, b, p)), (*p, (b, p)),
                                      (*b, (p,)), (*p, ())]  # fmt: skip
    # the frames planned beyond those known, at the mean detail of the pictures in: none beyond P2's
    # (B1 to B5) but itself and them
    assert given[0][4] == pytest.approx(sum(detail[d] for d in (2, 1, 4, 3, 6, 5)) / 6)


def test_a_rate_controlled_encode_decodes_bit_exactly_and_reports_its_lambdas() -> None:
    from coolchic_stream.encoder import Encoder

    pics = [make_picture(23, 17, pts=i, shift=i) for i in range(4)]
    config = EncoderConfig(preset="test", iterations=40, bitrate="20k", frame_rate=Fraction(25), gop_size=2,
                           intra_period=4, stream_frames=4)  # fmt: skip
    enc = Encoder(config)
    enc.keep_reconstructions = True
    packets = []
    for p in pics:
        packets += enc.send(p)
    packets += enc.flush()
    out = decode_packets(packets)
    assert len(out) == 4
    for d in out:
        r = enc.reconstructions[d.pts]
        assert all(np.array_equal(a, b) for a, b in zip(d.planes, r.planes))
    stats = [p.stats for p in packets]
    assert all(s is not None and s.lmbda is not None and s.lmbda > 0 for s in stats)
    assert enc.rate is not None and enc.rate.spent == sum(s.bits for s in stats)
    for s in stats:  # each frame's λ is its base λ times its depth's scale, or the base for one coded without prediction
        assert math.isfinite(s.lmbda) and (s.intra_coded or s.lmbda >= 1e-6 * lambda_scale(s.depth))


def test_an_encoded_frame_coded_without_prediction_is_coded_at_the_controllers_lambda(monkeypatch) -> None:
    """The encoder codes and judges the intra check's alternative at ``without_prediction``'s λ."""
    from coolchic_stream.encoder import Encoder

    given: list[float] = []
    plain = RateController.without_prediction
    monkeypatch.setattr(RateController, "without_prediction", lambda rc, lmbda: given.append(plain(rc, lmbda)) or given[-1])
    pics = [make_picture(23, 17, pts=i, shift=i, seed=i) for i in range(4)]  # new noise each frame: intra wins one
    config = EncoderConfig(preset="test", iterations=60, bitrate="60k", frame_rate=Fraction(25), gop_size=2,
                           intra_period=4, stream_frames=4, intra_check="always")  # fmt: skip
    enc = Encoder(config)
    packets = [q for p in pics for q in enc.send(p)] + enc.flush()
    stats = [p.stats for p in packets]
    assert enc.rate is not None and enc.rate.intra_lambda == stats[0].lmbda and len(given) == 3
    intra = [s for s in stats[1:] if s.intra_coded]
    assert intra and all(s.lmbda in given and s.lmbda >= enc.rate.intra_lambda / INTRA_BELOW for s in intra)
