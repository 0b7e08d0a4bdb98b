"""Frame payloads whose NN modules are fresh, copied or delta-coded from reference pictures.

Streams here are built from synthetic integers (no training), each module sent in a mode the
test chooses, so every mode and mix of modes is covered: the decoder must give exactly the
pictures that ``framecodec.reconstruct`` gives from the intended integers, in every decoding
path, and refuse what the format forbids.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coolchic_stream import framecodec
from coolchic_stream.architecture import (
    OUTPUTS,
    module_predictable,
    motion_parameter,
    parameter_shapes,
    residue_parameter,
)
from coolchic_stream.bitstream.syntax import FramePayload
from coolchic_stream.config import Complexity
from coolchic_stream.decoder import Decoder, DropCause
from coolchic_stream.dpb import DecodedPictureBuffer, LastDecoded
from coolchic_stream.entropy.nn_weights import ModulePrediction, QuantizedModule, predict_module
from coolchic_stream.errors import BitstreamError, CorruptDataError, DecodeOrderError
from coolchic_stream.framecodec import (
    CodedCoolChic, FrameHeader, build_payload, held_networks, prediction_source, reconstruct,
)  # fmt: skip
from coolchic_stream.gop import schedule
from coolchic_stream.spec import MODULE_NAMES, NNMode
from coolchic_stream.types import CoolChicRole, DataType, FrameType, GopStructure, Packet, Picture

W, H = 20, 12


def _random_module(rng: np.random.Generator, shapes, role: CoolChicRole, name: str) -> QuantizedModule:
    sigma = {"arm": 10.0, "upsampling": 3.0, "synthesis": 6.0 if role == CoolChicRole.MOTION else 20.0}[name]
    weights = tuple(np.round(rng.normal(0, sigma, s)).astype(np.int64) for s in shapes[0])
    biases = tuple(np.round(rng.normal(0, 40.0, s)).astype(np.int64) for s in shapes[1])
    steps = {"arm": (-8, -14), "upsampling": (-6, 0), "synthesis": (-8, -12)}[name]
    return QuantizedModule(weights, biases, *steps).with_best_orders()


def _delta(rng: np.random.Generator, source: QuantizedModule) -> QuantizedModule:
    """The source's integers with a few of them moved (most differences zero)."""

    def moved(t: np.ndarray) -> np.ndarray:
        change = np.where(rng.random(t.shape) < 0.3, rng.integers(-3, 4, t.shape), 0)
        return t + change

    module = QuantizedModule(
        tuple(moved(w) for w in source.weights), tuple(moved(b) for b in source.biases),
        source.weight_log2_step, source.bias_log2_step,
    )  # fmt: skip
    return module.with_best_orders(source)


def _latents(rng: np.random.Generator, param) -> list[np.ndarray]:
    return [np.clip(np.round(rng.laplace(0, 0.5 * 1.5**i, s)), -64, 63).astype(np.int64) for i, s in enumerate(param.grid_sizes)]


ModeChoice = dict[tuple[int, CoolChicRole, str], tuple[NNMode, int]]  # (pts, role, module) -> (mode, reference)


def build_stream(
    choose, n_frames: int = 5, gop_size: int = 4, intra_period: int = 8, seed: int = 0,
    intra_coded: frozenset[int] = frozenset(), data_type: DataType = DataType.YUV420, bit_depth: int = 8,
    complexity: dict[int, Complexity] | None = None,
) -> tuple[list[Packet], dict[int, Picture], ModeChoice]:  # fmt: skip
    """A random-access stream of synthetic frames; ``choose(pts, role, name, candidates, rng)``
    picks (mode, reference index) among the references whose module may predict it (candidates);
    ``complexity``: a frame's architecture preset, lop unless given.
    -> packets (coding order), the intended decoded pictures, and the modes used."""
    rng = np.random.default_rng(seed)
    dpb, last = DecodedPictureBuffer(), LastDecoded()
    packets, pictures, used = [], {}, {}
    for job in schedule(GopStructure.RANDOM_ACCESS, gop_size, intra_period, n_frames):
        intra = job.display_index in intra_coded and job.frame_type != FrameType.I
        coding_type = FrameType.I if intra else job.frame_type
        n_res, n_mot = OUTPUTS[coding_type]
        level = (complexity or {}).get(job.display_index, Complexity.LOP)
        params = {CoolChicRole.RESIDUE: residue_parameter(H, W, n_res, level)}
        if n_mot:
            params[CoolChicRole.MOTION] = motion_parameter(H, W, n_mot, level)
        ref_networks = [dpb.networks(r) for r in job.references]
        coded = []
        for role, param in params.items():
            shapes = parameter_shapes(param)
            modules, predictions = {}, {}
            for name in MODULE_NAMES:
                sources = [prediction_source(nets, role, param) for nets in ref_networks]
                candidates = [
                    i for i, src in enumerate(sources) if src is not None and module_predictable(src.param, param, name)
                ]  # fmt: skip
                mode, index = choose(job.display_index, role, name, candidates, rng) if candidates else (NNMode.FRESH, 0)
                if mode == NNMode.FRESH:
                    modules[name] = _random_module(rng, shapes[name], role, name)
                    continue
                source = predict_module(sources[index].modules[name], shapes[name])
                modules[name] = source if mode == NNMode.COPY else _delta(rng, source)
                predictions[name] = ModulePrediction(mode, index, source)
                used[(job.display_index, role, name)] = (mode, index)
            coded.append(CodedCoolChic(role, param, modules, _latents(rng, param), predictions))
        translations = ((0, 0),) * len(job.references) if intra else tuple((int(rng.integers(-1, 2)), 0) for _ in job.references)
        header = FrameHeader(
            job.display_index, job.coding_index, job.frame_type, job.depth, data_type, bit_depth, W, H,
            tuple(job.references), translations, intra,
        )  # fmt: skip
        refs = [dpb.get(r) for r in job.references]
        picture = reconstruct(header, coded, refs)
        held = held_networks(header, coded, dpb.networks, last)
        dpb.insert(job.display_index, picture, held)
        last.keep(job.coding_index, held)
        pictures[job.display_index] = picture
        packets.append(Packet(build_payload(header, coded), job.display_index, job.coding_index, job.frame_type))
    return packets, pictures, used


def _cycle(pts: int, role: CoolChicRole, name: str, candidates: list[int], rng) -> tuple[NNMode, int]:
    """Every mode and reference in turn, so one stream holds them all."""
    k = pts * 7 + int(role) * 3 + MODULE_NAMES.index(name)
    return (NNMode.FRESH, NNMode.COPY, NNMode.DELTA)[k % 3], candidates[(k // 3) % len(candidates)]


def decode_all(packets: list[Packet], pipeline: bool = True) -> dict[int, Picture]:
    dec = Decoder(pipeline=pipeline)
    out: list[Picture] = []
    dec.prefetch(packets)
    for p in packets:
        out += dec.send(p)
    return {p.pts: p for p in out + dec.flush()}


def _check(decoded: dict[int, Picture], expected: dict[int, Picture]) -> None:
    assert sorted(decoded) == sorted(expected)
    for pts, picture in expected.items():
        assert decoded[pts].same_samples(picture), f"picture {pts} differs"


def test_every_mode_decodes_to_the_intended_pictures() -> None:
    packets, expected, used = build_stream(_cycle, n_frames=9, intra_period=8)
    modes = {mode for mode, _ in used.values()}
    assert modes == {NNMode.COPY, NNMode.DELTA}
    # copies and deltas of modules that were themselves delta-coded, from both references
    refs_of = {p.pts: _references(packets, p.pts) for p in packets}
    chained = {
        mode for (pts, role, name), (mode, index) in used.items()
        if used.get((refs_of[pts][index], role, name), (NNMode.FRESH,))[0] == NNMode.DELTA
    }  # fmt: skip
    assert chained == {NNMode.COPY, NNMode.DELTA}
    assert {index for _, index in used.values()} == {0, 1}
    assert {role for _, role, _ in used} == {CoolChicRole.RESIDUE, CoolChicRole.MOTION}
    for pipeline in (False, True):
        _check(decode_all(packets, pipeline), expected)
    # one packet at a time, no prefetch
    dec = Decoder()
    out = [q for p in packets for q in dec.send(p)] + dec.flush()
    _check({p.pts: p for p in out}, expected)


def _references(packets: list[Packet], pts: int) -> tuple[int, ...]:
    data = next(p.data for p in packets if p.pts == pts)
    return tuple(r.display_index for r in FramePayload.parse(data).references)


@pytest.mark.parametrize("data_type, bit_depth", [(DataType.YUV420, 10), (DataType.YUV444, 8)])
def test_modes_in_other_formats(data_type: DataType, bit_depth: int) -> None:
    packets, expected, _ = build_stream(_cycle, data_type=data_type, bit_depth=bit_depth, seed=3)
    _check(decode_all(packets), expected)


def test_intra_coded_b_frame_copies_its_reference_residue() -> None:
    def copy_all(pts, role, name, candidates, rng):
        return NNMode.COPY, candidates[0]

    packets, expected, used = build_stream(copy_all, intra_coded=frozenset({2}))
    b2 = [(name, mode, index) for (pts, role, name), (mode, index) in used.items() if pts == 2]
    # an intra-coded B frame has an I frame's residue: all three modules match the I frame's
    assert [(name, mode) for name, mode, _ in b2] == [(name, NNMode.COPY) for name in MODULE_NAMES]
    frame = FramePayload.parse(next(p.data for p in packets if p.pts == 2))
    assert len(frame.coolchics) == 1 and frame.info.warp_filter_size == 0
    _check(decode_all(packets), expected)


def test_an_intra_coded_frame_passes_its_references_networks_on() -> None:
    def copy_all(pts, role, name, candidates, rng):
        return NNMode.COPY, candidates[-1]

    # coding order 0 4 2 1 3; frame 2 (B, refs 0 and 4) is coded without prediction: its own residue
    # fills the picture slot, its motion and gated residue are frame 4's (its first reference that
    # has them: the I frame has neither)
    packets, expected, used = build_stream(copy_all, intra_coded=frozenset({2}))
    assert _references(packets, 1) == (0, 2)
    for name in MODULE_NAMES:
        assert used[(1, CoolChicRole.MOTION, name)] == (NNMode.COPY, 1)  # from frame 2: inherited
    dpb_like = _lookup_after(packets, 1)
    p4, b2 = dpb_like(4), dpb_like(2)
    assert b2[framecodec.NetworkSlot.MOTION] is p4[framecodec.NetworkSlot.MOTION]
    assert b2[framecodec.NetworkSlot.GATED] is p4[framecodec.NetworkSlot.GATED]
    assert b2[framecodec.NetworkSlot.PICTURE] is not dpb_like(0)[framecodec.NetworkSlot.PICTURE]  # its own
    # frame 1's motion integers, as decoded, are frame 4's (P: one flow, widened to the B frame's two)
    _, coded1 = framecodec.parse_payload(next(p.data for p in packets if p.pts == 1), dpb_like)
    motion1 = next(c for c in coded1 if c.role == CoolChicRole.MOTION)
    for name in MODULE_NAMES:
        source = predict_module(p4[framecodec.NetworkSlot.MOTION].modules[name], parameter_shapes(motion1.param)[name])
        assert motion1.modules[name].same_integers(source)
    for pipeline in (False, True):
        _check(decode_all(packets, pipeline), expected)


def _inherits_through_coding_order():
    """gop 8, coding order 0 8 4 2 1 3 6 5 7, the anchors and frame 6 coded without prediction:
    leaf B3 sends fresh motion; frame 6 (refs 4 and 8, neither holds motion) inherits it as the
    frame decoded before it, and frame 5 copies it from frame 6."""

    def last_reference(pts, role, name, candidates, rng):
        return NNMode.COPY, candidates[-1]

    return build_stream(last_reference, n_frames=9, gop_size=8, intra_period=16, intra_coded=frozenset({8, 4, 2, 6}))


def test_a_frame_inherits_what_the_frame_decoded_before_it_holds() -> None:
    packets, expected, used = _inherits_through_coding_order()
    assert [p.pts for p in packets] == [0, 8, 4, 2, 1, 3, 6, 5, 7]
    assert _references(packets, 6) == (4, 8) and _references(packets, 5) == (4, 6)
    assert (3, CoolChicRole.MOTION, "arm") not in used  # fresh: its references hold no motion
    for name in MODULE_NAMES:
        assert used[(5, CoolChicRole.MOTION, name)] == (NNMode.COPY, 1)  # frame 6's: frame 3's
    dpb_like = _lookup_after(packets, 6)
    assert dpb_like(6)[framecodec.NetworkSlot.MOTION] is dpb_like(3)[framecodec.NetworkSlot.MOTION]
    assert framecodec.NetworkSlot.MOTION not in dpb_like(4) and framecodec.NetworkSlot.MOTION not in dpb_like(8)
    for pipeline in (False, True):
        _check(decode_all(packets, pipeline), expected)
    dec = Decoder()  # one packet at a time, no prefetch
    _check({q.pts: q for q in [q for p in packets for q in dec.send(p)] + dec.flush()}, expected)


def test_a_missing_frame_that_others_inherit_from_is_reported() -> None:
    """Leaf B3 is dropped (nothing references it): frame 6, which inherits from it, is reported and
    decoding resumes at the next I frame; the pictures decoded before are exact."""
    packets, expected, _ = _inherits_through_coding_order()
    dropped = [p for p in packets if p.pts != 3]
    for pipeline in (False, True):
        dec = Decoder(pipeline=pipeline)
        dec.prefetch(dropped)
        out = [q for p in dropped for q in dec.send(p)] + dec.flush()
        assert [(d.pts, d.cause) for d in dec.dropped] == [
            (6, DropCause.UNDECODABLE), (5, DropCause.AFTER_LOSS), (7, DropCause.AFTER_LOSS)
        ]  # fmt: skip
        assert "inherits networks from the frame coded before it" in dec.dropped[0].message
        assert sorted(q.pts for q in out) == [0, 1, 2, 4, 8]
        for q in out:
            assert q.same_samples(expected[q.pts])


def test_a_decoder_ahead_that_missed_a_frame_never_guesses_what_it_passed_on() -> None:
    """The helper's store never saw leaf B3: frame 6 still decodes there (it predicts from frames 4
    and 8 only), but the motion it holds came from B3, so frames 5 and 7, which copy it, are left
    to the decoder that holds it."""
    from coolchic_stream import worker

    packets, expected, _ = _inherits_through_coding_order()
    kept = [p for p in packets if p.pts != 3]
    results = worker.decode_results([p.data for p in kept], worker.NetworkStore())
    left = [p.pts for p, r in zip(kept, results) if isinstance(r, worker.Undecoded)]
    assert left == [5, 7]


def test_copy_sends_no_bins_and_no_steps() -> None:
    def copy_all(pts, role, name, candidates, rng):
        return NNMode.COPY, candidates[0]

    def fresh_all(pts, role, name, candidates, rng):
        return NNMode.FRESH, 0

    copied, _, _ = build_stream(copy_all, intra_coded=frozenset({2}))
    fresh, _, _ = build_stream(fresh_all, intra_coded=frozenset({2}))
    # same latents and frame 0: the intra-coded B frame's stream shrinks by its NN bins; its header by
    # 7 bytes of steps and orders less 2 bytes of modes
    size = {p.pts: len(p.data) for p in copied}
    assert size[0] == next(len(p.data) for p in fresh if p.pts == 0)
    section = FramePayload.parse(next(p.data for p in copied if p.pts == 2)).coolchics[0]
    assert all(section.networks[name].weight_log2_step is None for name in MODULE_NAMES)
    assert all(section.networks[name].weight_expgolomb_order is None for name in MODULE_NAMES)


def test_inspect_reports_modes_sources_and_bits(tmp_path) -> None:
    from coolchic_stream.bitstream.container import ContainerWriter
    from coolchic_stream.report import inspect_stream
    from coolchic_stream.types import SequenceInfo

    packets, _, used = build_stream(_cycle, n_frames=9, intra_period=8)
    path = tmp_path / "modes.ccv"
    with open(path, "wb") as f, ContainerWriter(f, SequenceInfo(W, H, gop_structure=GopStructure.RANDOM_ACCESS, gop_size=4, intra_period=8)) as w:
        for p in packets:
            w.write(p)
    report = inspect_stream(str(path))
    seen = 0
    for frame in report["frames"]:
        for c in frame["coolchics"]:
            role = CoolChicRole[c["role"].upper()]
            for name, m in c["modules"].items():
                mode, index = used.get((frame["display_index"], role, name), (NNMode.FRESH, 0))
                assert m["mode"] == mode.name.lower()
                if mode == NNMode.FRESH:
                    assert m["source"] is None and m["bits"] > 0
                else:
                    assert m["source"] == frame["references"][index]["display_index"]
                    assert (m["bits"] == 0) == (mode == NNMode.COPY)
                    seen += 1
            assert c["nn_bits"] == pytest.approx(sum(m["bits"] for m in c["modules"].values()), abs=0.2)
    assert seen == len(used)


# ---------------------------------------------------------------- what the parser refuses


def test_a_module_whose_architecture_differs_from_its_source_is_refused() -> None:
    """A lop synthesis (3 layers) cannot come from a mop one (4 layers); other widths can."""
    packets, _, _ = build_stream(lambda *a: (NNMode.FRESH, 0), complexity={4: Complexity.MOP})
    lookup = _lookup_after(packets, 4)
    b2 = _rewrite(next(p.data for p in packets if p.pts == 2), 0, "synthesis", mode="copy", reference=1)
    with pytest.raises(CorruptDataError, match="another architecture"):
        framecodec.parse_payload(b2, lookup)
    b2 = _rewrite(next(p.data for p in packets if p.pts == 2), 0, "synthesis", mode="copy", reference=0)  # from the I frame
    header, coded = framecodec.parse_payload(b2, lookup)
    # a B frame's residue synthesis (5 outputs) from an I frame's (3): the overlap, zero beyond
    i_synthesis = lookup(0)[framecodec.NetworkSlot.PICTURE].modules["synthesis"]
    last = coded[0].modules["synthesis"].biases[-1]
    assert last.shape == (5,) and np.array_equal(last[:3], i_synthesis.biases[-1]) and not last[3:].any()
    b2 = _rewrite(next(p.data for p in packets if p.pts == 2), 1, "arm", mode="copy", reference=0)  # motion from an I frame
    with pytest.raises(CorruptDataError, match="no motion Cool-chic"):
        framecodec.parse_payload(b2, lookup)


def test_a_module_predicted_from_a_picture_not_held_is_reported() -> None:
    packets, _, _ = build_stream(lambda pts, role, name, c, rng: (NNMode.COPY, c[-1]))
    with pytest.raises(DecodeOrderError, match="does not hold"):
        framecodec.parse_payload(packets[1].data)  # P4 copies from I0, which nothing holds here


def test_reserved_mode_is_corruption() -> None:
    packets, _, _ = build_stream(lambda pts, role, name, c, rng: (NNMode.COPY, c[0]))
    p4 = _rewrite(packets[1].data, 0, "arm", mode=3, weight_expgolomb_order=0, bias_expgolomb_order=0)
    assert FramePayload.parse(p4).coolchics[0].networks.arm.mode == 3
    with pytest.raises(CorruptDataError, match="mode"):
        framecodec.parse_payload(p4, _lookup_after(packets, 0))


def _lookup_after(packets: list[Packet], pts: int):
    """The networks a decoder holds once it has decoded up to and including ``pts``."""
    held, last = {}, LastDecoded()
    for p in packets:
        lookup = lambda d: held[d] if d in held else framecodec.no_references(d)  # noqa: E731
        header, coded = framecodec.parse_payload(p.data, lookup)
        held[header.display_index] = held_networks(header, coded, lookup, last)
        last.keep(header.coding_index, held[header.display_index])
        if p.pts == pts:
            break
    return lambda d: held[d] if d in held else framecodec.no_references(d)


def _rewrite(data: bytes, section: int, module: str, **fields) -> bytes:
    parsed = FramePayload.parse(data)
    coolchics = []
    for i, c in enumerate(parsed.coolchics):
        networks = {name: dict(c.networks[name]) for name in MODULE_NAMES}
        if i == section:
            networks[module].update({"weight_log2_step": None, "bias_log2_step": None,
                                     "weight_expgolomb_order": None, "bias_expgolomb_order": None})  # fmt: skip
            networks[module].update(fields)
        coolchics.append({**c, "networks": networks})
    return FramePayload.build({**parsed, "coolchics": coolchics})


# ---------------------------------------------------------------- damage


@pytest.mark.parametrize("damage", ["lost", "truncated"])
def test_damage_in_a_frame_others_predict_from_resumes_at_the_next_intra_frame(damage: str) -> None:
    """B1 is lost (the container drops a unit whose CRC fails) or cut short, and B2 copies or
    delta-codes its modules from it: neither may come out (no stale networks), and decoding
    resumes at the next I frame with every picture exact."""

    def nearest_first(pts, role, name, candidates, rng):
        return (NNMode.COPY, NNMode.DELTA)[int(rng.integers(0, 2))], candidates[0]

    packets, expected, used = build_stream(nearest_first, n_frames=9, intra_period=4)
    assert _references(packets, 2)[0] == 1 and (2, CoolChicRole.RESIDUE, "arm") in used
    damaged = []
    for p in packets:
        if p.pts == 1:
            if damage == "lost":
                continue
            p = Packet(p.data[: len(p.data) // 3], p.pts, p.dts, p.frame_type)
        damaged.append(p)
    for pipeline in (False, True):
        dec = Decoder(pipeline=pipeline)  # recovers by itself, and says what it dropped
        dec.prefetch(damaged)
        out: list[Picture] = []
        for p in damaged:
            out += dec.send(p)
        out += dec.flush()
        decoded = {p.pts: p for p in out}
        causes = [(d.pts, d.cause) for d in dec.dropped]
        if damage == "lost":  # the container dropped B1: the decoder meets B2's unknown reference
            assert causes == [(2, DropCause.UNDECODABLE)]
        else:
            assert causes == [(1, DropCause.UNDECODABLE), (2, DropCause.AFTER_LOSS)]
        assert sorted(decoded) == [0, 3, 4, 5, 6, 7, 8]
        for pts, picture in decoded.items():
            assert picture.same_samples(expected[pts])


# ---------------------------------------------------------------- fuzzing


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1))
def test_random_mode_mixes_round_trip(seed: int) -> None:
    def pick(pts, role, name, candidates, rng):
        return NNMode(int(rng.integers(0, 3))), int(rng.choice(candidates))

    packets, expected, _ = build_stream(pick, n_frames=5, seed=seed)
    _check(decode_all(packets, pipeline=False), expected)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_mutated_network_fields_never_crash(data) -> None:
    """Any mode, reference, step or order written into a P/B section parses to a picture or a
    BitstreamError, never anything else."""
    packets, _, _ = build_stream(_cycle, n_frames=5)
    lookup = _lookup_after(packets, 4)
    target = packets[data.draw(st.integers(1, 2))]  # P4 or B2
    parsed = FramePayload.parse(target.data)
    section = data.draw(st.integers(0, len(parsed.coolchics) - 1))
    module = data.draw(st.sampled_from(MODULE_NAMES))
    mode = data.draw(st.sampled_from(["fresh", "copy", "delta"]))
    fields = {
        "mode": mode,
        "reference": data.draw(st.integers(0, 1)) if mode != "fresh" and str(parsed.info.frame_type) == "b" else None,
        "weight_log2_step": -data.draw(st.integers(0, 15)) if mode == "fresh" else None,
        "bias_log2_step": -data.draw(st.integers(0, 31)) if mode == "fresh" else None,
        "weight_expgolomb_order": data.draw(st.integers(0, 15)) if mode != "copy" else None,
        "bias_expgolomb_order": data.draw(st.integers(0, 15)) if mode != "copy" else None,
    }
    parsed_c = [dict(c) for c in parsed.coolchics]
    networks = {name: dict(parsed_c[section]["networks"][name]) for name in MODULE_NAMES}
    networks[module] = fields
    parsed_c[section]["networks"] = networks
    mutated = FramePayload.build({**parsed, "coolchics": parsed_c})
    try:
        header, coded = framecodec.parse_payload(mutated, lookup)
    except BitstreamError:
        return
    refs = [expected_picture for expected_picture in _pictures_for(packets, header.references)]
    picture = reconstruct(header, coded, refs)
    assert picture.width == W and picture.height == H


def _pictures_for(packets: list[Packet], references: tuple[int, ...]) -> list[Picture]:
    dec = Decoder(pipeline=False)
    out = {}
    for p in packets:
        for q in dec.send(p):
            out[q.pts] = q
    for q in dec.flush():
        out[q.pts] = q
    return [out[r] for r in references]
