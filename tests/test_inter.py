"""P and B frames: the decoder reproduces every frame of the encoder's reconstruction, in display order."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from coolchic_stream.decoder import Decoder
from coolchic_stream.types import DataType, FrameType, Picture, SequenceInfo

from .conftest import decode_packets, encode_pictures, make_picture

ITERATIONS = 16


def moving_clip(n: int, width: int = 24, height: int = 16, data_type: DataType = DataType.YUV420, bit_depth: int = 8):
    return [make_picture(width, height, data_type, bit_depth, pts=i, shift=i) for i in range(n)]


def encode(pictures, **config):
    return encode_pictures(pictures, iterations=ITERATIONS, **config)


def decode(packets, sequence=None):
    return decode_packets(packets, sequence)


@pytest.mark.parametrize(
    ("gop", "gop_size", "intra_period", "n_frames"),
    [
        ("lowdelay", 1, 4, 5),
        ("ra", 2, 8, 5),
        ("ra", 4, 8, 7),  # short tail group
        ("ra", 8, 16, 11),  # one full GOP of 8 then a tail of 2
    ],
)
def test_inter_decoder_matches_encoder_every_frame(gop, gop_size, intra_period, n_frames):
    pictures = moving_clip(n_frames)
    enc, packets = encode(pictures, gop=gop, gop_size=gop_size, intra_period=intra_period)
    assert sorted(p.pts for p in packets) == list(range(n_frames))
    assert [p.dts for p in packets] == list(range(n_frames))
    types = {p.frame_type for p in packets}
    assert FrameType.P in types
    if gop == "ra" and gop_size > 1:
        assert FrameType.B in types
    sequence = SequenceInfo(24, 16, gop_structure=enc.config.gop, gop_size=gop_size, intra_period=intra_period)
    for seq in (None, sequence):
        decoded = decode(packets, seq)
        assert [d.pts for d in decoded] == list(range(n_frames))
        for d in decoded:
            assert d.same_samples(enc.reconstructions[d.pts]), f"frame {d.pts} differs"
    for p in packets:
        assert p.stats.bits == 8 * len(p.data)


@pytest.mark.parametrize(("data_type", "bit_depth", "size"), [(DataType.YUV420, 10, (33, 17)), (DataType.RGB, 8, (13, 9))])
def test_inter_other_formats_and_odd_sizes(data_type, bit_depth, size):
    pictures = moving_clip(3, *size, data_type, bit_depth)
    enc, packets = encode(pictures, gop="ra", gop_size=2, intra_period=4)
    decoded = decode(packets)
    assert [d.pts for d in decoded] == [0, 1, 2]
    assert all(d.same_samples(enc.reconstructions[d.pts]) for d in decoded)


def test_decoding_from_a_pipe():
    """Packets written to a real OS pipe by one thread are decoded from the other end."""
    from coolchic_stream.bitstream.container import ContainerReader, ContainerWriter

    pictures = moving_clip(4)
    enc, packets = encode(pictures, gop="ra", gop_size=2, intra_period=8)
    read_fd, write_fd = os.pipe()
    sequence = SequenceInfo(24, 16, gop_structure=enc.config.gop, gop_size=2, intra_period=8)

    def produce() -> None:
        with os.fdopen(write_fd, "wb") as sink:
            writer = ContainerWriter(sink, sequence)
            for p in packets:
                writer.write(p)
            writer.close()

    thread = threading.Thread(target=produce)
    thread.start()
    with os.fdopen(read_fd, "rb") as source:
        reader = ContainerReader(source)
        decoder = Decoder(reader.sequence)
        out = []
        for packet in reader:
            out += decoder.send(packet)
        out += decoder.flush()
    thread.join()
    assert [d.pts for d in out] == [0, 1, 2, 3]
    assert all(d.same_samples(enc.reconstructions[d.pts]) for d in out)


def test_inter_frames_predict_from_references():
    """On a translating clip, P frames cost far fewer bits than the I frame at similar quality."""
    pictures = moving_clip(3, 64, 64)
    enc, packets = encode(pictures, gop="lowdelay", gop_size=1, intra_period=8, lmbda=2e-3)
    i_frame = next(p for p in packets if p.frame_type == FrameType.I)
    p_frames = [p for p in packets if p.frame_type == FrameType.P]
    assert len(p_frames) == 2
    for p in p_frames:
        assert p.stats.bits < 0.6 * i_frame.stats.bits, (p.stats, i_frame.stats)
        assert p.stats.psnr_y > i_frame.stats.psnr_y - 1.5, (p.stats, i_frame.stats)
    assert np.isfinite([p.stats.psnr_yuv for p in packets]).all()


def test_after_a_reset_inter_frames_are_dropped_until_the_next_i_frame():
    pictures = moving_clip(4)
    enc, packets = encode(pictures, gop="lowdelay", gop_size=1, intra_period=2)  # I0 P1 I2 P3
    assert [p.frame_type for p in packets] == [FrameType.I, FrameType.P, FrameType.I, FrameType.P]
    dec = Decoder()
    out = dec.send(packets[0])
    dec.reset()  # as after a corrupted unit
    out += dec.send(packets[1])  # P1 refers to a forgotten picture: dropped, not an error
    for p in packets[2:]:
        out += dec.send(p)
    out += dec.flush()
    assert [d.pts for d in out] == [0, 2, 3]
    assert all(d.same_samples(enc.reconstructions[d.pts]) for d in out)


@pytest.mark.parametrize("pipeline", [True, False])
def test_prefetched_groups_decode_like_one_packet_at_a_time(pipeline):
    """Entropy-decoding a whole group of frames in one wavefront loop (in the helper process or
    in the calling thread) gives the same pictures."""
    enc, packets = encode(moving_clip(7), gop="ra", gop_size=4, intra_period=8)
    alone = decode(packets)
    for group in (2, 3, len(packets)):
        dec = Decoder(pipeline=pipeline)
        out = []
        chunks = [packets[start : start + group] for start in range(0, len(packets), group)]
        dec.prefetch(chunks[0])
        for k, chunk in enumerate(chunks):
            if k + 1 < len(chunks):
                dec.prefetch(chunks[k + 1])  # decodes while this group reconstructs
            for p in chunk:
                out += dec.send(p)
        out += dec.flush()
        assert [p.pts for p in out] == [p.pts for p in alone]
        assert all(a.same_samples(b) for a, b in zip(out, alone))
        assert all(p.same_samples(enc.reconstructions[p.pts]) for p in out)


@pytest.mark.parametrize(("stage", "damaged"), [("syntax", 1), ("latents", 0)])
def test_a_damaged_packet_in_a_prefetched_group_fails_alone(stage, damaged, monkeypatch):
    """A payload that does not parse, or whose latent stream fails to decode, gets its own error;
    the other frames of the group decode to the same integers as alone."""
    import coolchic_stream.framecodec as framecodec
    from coolchic_stream.errors import CorruptDataError

    from coolchic_stream.errors import DecodeOrderError, Failed

    _, packets = encode(moving_clip(5), gop="ra", gop_size=4, intra_period=8)
    expected = framecodec.parse_payloads([p.data for p in packets])
    payloads = [p.data for p in packets]
    # frames that copy or delta-code a module from the damaged one (or from such a frame) fail with it
    lost = {packets[damaged].pts}
    for header, coded in expected[damaged + 1 :]:
        if any(header.references[p.reference] in lost for c in coded for p in c.predictions.values()):
            lost.add(header.display_index)
    if stage == "syntax":
        payloads[damaged] = payloads[damaged][: len(payloads[damaged]) // 2]
    else:
        residue = [bytes(framecodec.FramePayload.parse(d).coolchics[0].data) for d in payloads]
        bad = residue[damaged]
        assert residue.count(bad) == 1  # the I frame's residue stream is its own
        real, real_open = framecodec.decode_latents_many, framecodec.open_decoder
        streams = {}  # decoder id -> the stream it reads

        def opening(data):
            decoder = real_open(data)
            streams[id(decoder)] = data
            return decoder

        def failing(jobs):
            if any(streams.get(id(d)) == bad for _, d, _ in jobs):
                raise CorruptDataError("latent decoding failed: PanicException", "the frame payload is corrupted")
            return real(jobs)

        monkeypatch.setattr(framecodec, "open_decoder", opening)

        monkeypatch.setattr(framecodec, "decode_latents_many", failing)
    results = framecodec.parse_payloads(payloads)
    assert isinstance(results[damaged], Failed) and isinstance(results[damaged].error, CorruptDataError)
    for i in sorted(set(range(5)) - {damaged}):
        if packets[i].pts in lost:
            assert isinstance(results[i].error, DecodeOrderError)  # never from stale or damaged networks
            continue
        assert results[i][0] == expected[i][0]
        pairs = [(a, b) for c, d in zip(results[i][1], expected[i][1]) for a, b in zip(c.latents, d.latents)]
        assert pairs and all(np.array_equal(a, b) for a, b in pairs)


def test_prefetch_entries_of_skipped_packets_are_dropped():
    _, packets = encode(moving_clip(3), gop="intra")
    dec = Decoder()
    dec.prefetch(packets)
    assert [p.pts for p in dec.send(packets[0]) + dec.send(packets[2])] == [0, 2]  # packet 1 skipped
    assert not dec._prefetched


def scene_cut_clip(n: int, cut: int, width: int = 40, height: int = 24):
    """A translating clip whose content is flipped and inverted from frame ``cut`` on: unpredictable."""
    pictures = moving_clip(n, width, height)
    return pictures[:cut] + [
        Picture(tuple(255 - plane[::-1] for plane in p.planes), p.bit_depth, p.data_type, p.pts) for p in pictures[cut:]
    ]


def test_a_frame_after_a_scene_cut_is_intra_coded_in_place(tmp_path):
    """The P frame at the cut is coded without prediction; it keeps its type and place, the rest decodes."""
    from coolchic_stream.bitstream.container import ContainerWriter
    from coolchic_stream.report import inspect_stream

    began = time.perf_counter()
    enc, packets = encode_pictures(scene_cut_clip(4, 2), iterations=80, gop="lowdelay", gop_size=1, intra_period=8)
    elapsed = time.perf_counter() - began
    assert 0 < sum(p.stats.encode_seconds for p in packets) <= elapsed  # per-frame times add up to the encode's
    assert [(p.frame_type, p.stats.intra_coded) for p in packets] == [
        (FrameType.I, False), (FrameType.P, False), (FrameType.P, True), (FrameType.P, False),
    ]  # fmt: skip
    assert not packets[2].is_keyframe and packets[2].stats.type_label == "P (intra)"
    sequence = SequenceInfo(40, 24, gop_structure=enc.config.gop, gop_size=1, intra_period=8)
    for seq in (None, sequence):
        decoded = decode(packets, seq)
        assert [d.pts for d in decoded] == [0, 1, 2, 3]
        assert all(d.same_samples(enc.reconstructions[d.pts]) for d in decoded)
    path = tmp_path / "cut.ccv"
    with ContainerWriter(path, sequence) as writer:
        for p in packets:
            writer.write(p)
    frames = inspect_stream(str(path))["frames"]
    assert [f["intra_coded"] for f in frames] == [False, False, True, False]
    assert [c["role"] for c in frames[2]["coolchics"]] == ["residue"] and frames[2]["warp_filter_size"] == 0
    assert [r["display_index"] for r in frames[2]["references"]] == [1]
    # format 5.0: the intra-coded frame passed frame 1's motion networks on, so frame 3 (its
    # reference is frame 2 alone) still predicts its motion modules instead of sending them fresh
    motion3 = next(c for c in frames[3]["coolchics"] if c["role"] == "motion")
    assert {m["mode"] for m in motion3["modules"].values()} != {"fresh"}, motion3


@pytest.mark.parametrize("check", ["off", "auto", "always"])
def test_intra_check_option_decides_when_intra_is_tried(check):
    from coolchic_stream.config import INTRA_CHECK_SHARE, EncoderConfig
    from coolchic_stream.encoder import Encoder

    enc = Encoder(EncoderConfig(preset="test", intra_check=check))
    enc._last_intra = (0.6e-2, 0.4)  # MSE, bpp: D + λ·R = 1e-2 at λ 1e-2, 0.8e-2 at λ 5e-3
    cheap, costly = INTRA_CHECK_SHARE * 1e-2, INTRA_CHECK_SHARE * 1e-2 * 1.001
    assert bool(enc._intra_check_reason(cheap, 1e-2)) == (check == "always")
    assert bool(enc._intra_check_reason(costly, 1e-2)) == (check != "off")
    if check == "auto":  # --stats says why it fired; the I frame's cost is taken at the frame's base λ
        assert enc._intra_check_reason(0.6e-2, 1e-2) == f"cost 0.600 of the I frame > {INTRA_CHECK_SHARE}"
        assert enc._intra_check_reason(0.6e-2, 5e-3) == f"cost 0.750 of the I frame > {INTRA_CHECK_SHARE}"


def test_intra_check_value_is_validated():
    from coolchic_stream.config import EncoderConfig
    from coolchic_stream.errors import ConfigError

    with pytest.raises(ConfigError, match="--intra-check 'sometimes'") as info:
        EncoderConfig(intra_check="sometimes")
    assert "auto" in info.value.hint


def _as_intra_coded_b(i_payload: bytes, **changes) -> bytes:
    """An I frame's payload re-labelled as an intra-coded B frame between pts 0 and 4 (at pts 2)."""
    from coolchic_stream.bitstream.syntax import FramePayload

    parsed = FramePayload.parse(i_payload)
    value = {k: v for k, v in parsed.items() if not k.startswith("_")}
    # a B frame's modules carry a mode: fresh, as the I frame sent them
    value["coolchics"] = [
        {**c, "networks": {name: {**c.networks[name], "mode": "fresh"} for name in ("arm", "upsampling", "synthesis")}}
        for c in parsed.coolchics
    ]
    info = {k: v for k, v in parsed.info.items() if not k.startswith("_")} | {"frame_type": "b", "depth": 1}
    value.update(
        display_index=2, coding_index=2, info=info | changes.pop("info", {}),
        references=[{"display_index": r, "translation_y": 0, "translation_x": 0} for r in (0, 4)],
    )  # fmt: skip
    value.update(changes)
    return FramePayload.build(value)


def coolchic_section(payload: bytes) -> dict:
    from coolchic_stream.bitstream.syntax import FramePayload

    section = FramePayload.parse(payload).coolchics[0]
    return {**section, "networks": {name: {**section.networks[name], "mode": "fresh"} for name in ("arm", "upsampling", "synthesis")}}


def test_intra_coded_b_frame_parses_and_reconstructs_like_the_i_frame():
    from coolchic_stream.errors import CorruptDataError
    from coolchic_stream.framecodec import parse_payload, reconstruct

    enc, packets = encode(moving_clip(1, 13, 9))
    header_i, coded_i = parse_payload(packets[0].data)
    header, coded = parse_payload(_as_intra_coded_b(packets[0].data))
    assert header.frame_type == FrameType.B and header.intra_coded and header.coding_type == FrameType.I
    assert header.references == (0, 4)
    refs = [make_picture(13, 9, pts=r, seed=r) for r in (0, 4)]
    assert reconstruct(header, coded, refs).same_samples(reconstruct(header_i, coded_i, []))
    predicted = bytearray(_as_intra_coded_b(packets[0].data))
    predicted[3] |= 8  # FrameInfo's last nibble, after pts 2 and dts 2: warp size 8 says a motion Cool-chic follows
    with pytest.raises(CorruptDataError, match="does not parse"):
        parse_payload(bytes(predicted))
    with pytest.raises(CorruptDataError, match="warp filter size 6"):
        parse_payload(_as_intra_coded_b(packets[0].data, info={"warp_filter_size": 6}, coolchics=[coolchic_section(packets[0].data)] * 2))
    moved = [{"display_index": 0, "translation_y": 1, "translation_x": 0}, {"display_index": 4, "translation_y": 0, "translation_x": 0}]
    with pytest.raises(CorruptDataError, match="translation"):
        parse_payload(_as_intra_coded_b(packets[0].data, references=moved))


def test_fresh_networks_are_tried_only_where_the_references_ones_cost_nearly_an_i_frame():
    from coolchic_stream.config import SCRATCH_SHARE, EncoderConfig
    from coolchic_stream.encoder import Encoder

    enc = Encoder(EncoderConfig(preset="test"))
    assert enc._worth_fresh(1.0, 1e-2)  # no I frame coded yet: nothing to compare with
    enc._last_intra = (0.6e-2, 0.4)  # D + λ·R = 1e-2 at λ 1e-2
    assert not enc._worth_fresh(SCRATCH_SHARE * 1e-2, 1e-2)
    assert enc._worth_fresh(SCRATCH_SHARE * 1e-2 * 1.001, 1e-2)
    assert not enc._worth_fresh(SCRATCH_SHARE * 0.8e-2, 5e-3)  # the I frame's cost at the λ asked
    assert enc._worth_fresh(SCRATCH_SHARE * 0.8e-2 * 1.001, 5e-3)


@pytest.mark.parametrize("fresh", [False, True])
def test_the_intra_check_trains_fresh_networks_only_when_worth_it(monkeypatch, fresh):
    """One training from the references' networks per checked frame, a second from scratch only
    where ``_worth_fresh`` says it could win; the bytes are those of the cheaper either way."""
    import coolchic_stream.encoder as encoder_module
    import coolchic_stream.train.coding as coding_module
    from coolchic_stream.encoder import Encoder

    starts, asked = [], []
    real = encoder_module.code_intra

    def spy(picture, config, lmbda, iterations, progress=None, references=(), distances=(), frame_type=FrameType.I,
            start=True, steer=None):  # fmt: skip
        starts.append((frame_type, bool(references) and start))
        return real(picture, config, lmbda, iterations, progress, references, distances, frame_type, start, steer)

    def worth(self, from_references, lmbda):
        asked.append(from_references)
        return fresh

    monkeypatch.setattr(encoder_module, "code_intra", spy)  # the I frame's
    monkeypatch.setattr(coding_module, "code_intra", spy)  # the alternatives' (parallel.aside.IntraRequest.run)
    monkeypatch.setattr(Encoder, "_worth_fresh", worth)
    enc, packets = encode_pictures(moving_clip(3), iterations=20, gop="lowdelay", gop_size=1, intra_check="always")
    per_p = [(FrameType.P, True), (FrameType.P, False)] if fresh else [(FrameType.P, True)]
    assert starts == [(FrameType.I, False), *per_p, *per_p]
    assert len(asked) == 2 and all(0 < c < float("inf") for c in asked)  # asked with the first one's real cost
    decoded = decode(packets)
    assert all(d.same_samples(enc.reconstructions[d.pts]) for d in decoded)
