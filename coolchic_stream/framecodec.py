"""Frame payload <-> coded frame: the one decode path shared by encoder and decoder.

    FramePayload bytes ─► parse + validate ─► per Cool-chic: range-coded NN bins and latents
        ─► recon.decode_coolchic (exact) ─► recon.assemble (+ DPB references) ─► Picture

The encoder skips only the entropy *decoding* (it already holds the integers)
and then runs exactly this reconstruction to get its reference pictures.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from construct import ConstructError
from torch import Tensor

from .architecture import OUTPUTS, CoolChicEncoderParameter, module_predictable, parameter_shapes, preset_of  # noqa: F401 - OUTPUTS re-exported
from .bitstream.sections import bad as _bad
from .bitstream.sections import explicit_architecture
from .bitstream.frame import WARP_FILTER_SIZE, FrameHeader, parse_frame
from .bitstream.syntax import FramePayload, FramePrefix
from .entropy.arm_int import IntegerArm
from .entropy.latents import LatentLayout, decode_latents_many, encode_latents
from .entropy.nn_weights import (
    FRESH,
    ModulePrediction,
    QuantizedModule,
    coded_values,
    decode_nn,
    encode_nn,
    header_mode,
    nn_from_values,
    predict_module,
)
from .entropy.stream import open_decoder, seal
from .dpb import LastDecoded
from .errors import BitstreamError, DecodeOrderError, Failed
from .recon.coolchic import decode_coolchic
from .recon.frame import assemble, fixed_to_picture, picture_to_fixed
from .spec import ALPHA_CHANNEL, MODULE_NAMES, NNMode
from .types import CoolChicRole, FrameType, Picture



@dataclass(frozen=True)
class Networks:
    """The decoded NN of one Cool-chic, kept with its picture for the frames that predict from it."""

    param: CoolChicEncoderParameter
    modules: dict[str, QuantizedModule]


class NetworkSlot(Enum):
    """Where a decoded picture keeps a Cool-chic's networks for the frames that predict from it."""

    MOTION = "motion"
    PICTURE = "picture residue"  # ends in the picture: an I frame's or an intra-coded frame's residue
    GATED = "gated residue"  # ends in the picture's correction and α (β): an inter-coded frame's residue


def slot_of(role: CoolChicRole, param: CoolChicEncoderParameter) -> NetworkSlot:
    if role == CoolChicRole.MOTION:
        return NetworkSlot.MOTION
    return NetworkSlot.GATED if param.n_output > ALPHA_CHANNEL else NetworkSlot.PICTURE


# What a decoded picture holds for later frames, per slot (normative, format 6.0): the networks of
# its own Cool-chics; in each slot they do not fill, those of the first of its references (header
# order) that holds that slot; in each slot still empty, those of the frame decoded just before it
# (coding order, the same intra period). An I frame inherits nothing. So a frame coded without
# prediction passes its references' motion and gated residue on, and networks a leaf B frame sent
# reach the frames coded after it (format 5.0 passed on only what references held: the sample's
# second inter-coded leaf re-sent the first's motion and residue synthesis fresh).
FrameNetworks = dict[NetworkSlot, Networks]
NetworkLookup = Callable[[int], FrameNetworks]  # display index -> that decoded picture's networks


# What a decoder that decodes ahead (the helper's store, a batch) records in the slots a frame would
# have taken from a predecessor it did not see: unknown, so a later frame predicting from such a
# slot is left to the decoder that holds it (``prediction_source`` raises DecodeOrderError), while
# the slots its own Cool-chics and references fill stay usable.
UNSEEN: FrameNetworks = dict.fromkeys(NetworkSlot)  # type: ignore[arg-type]


def held_networks(
    header: FrameHeader,
    coded: "Sequence[CodedCoolChic | _Section]",
    lookup: NetworkLookup,
    last: LastDecoded,
    ahead: bool = False,
) -> FrameNetworks:
    """What a decoded frame holds for later frames (see ``FrameNetworks``): its references through
    ``lookup``, the frame decoded before it through ``last`` (DecodeOrderError if either is not
    held; with ``ahead``, a predecessor not seen leaves the slots it would fill ``UNSEEN``)."""
    if header.frame_type == FrameType.I:
        return frame_networks(coded)
    references = [lookup(r) for r in header.references]
    try:
        previous = last.before(header.coding_index)
    except DecodeOrderError:
        if not ahead:
            raise
        previous = UNSEEN
    return frame_networks(coded, [*references, previous])


def no_references(display_index: int) -> FrameNetworks:
    """The lookup of a decoder that holds no picture."""
    raise DecodeOrderError(
        f"a frame predicts its networks from display index {display_index}, which the decoder does not hold",
        "the stream may start after a random-access point or be corrupted",
    )


@dataclass(frozen=True)
class CodedCoolChic:
    """What the bitstream holds for one Cool-chic, as integers, and how its modules are sent."""

    role: CoolChicRole
    param: CoolChicEncoderParameter
    modules: dict[str, QuantizedModule]  # as decoded: a copied or delta-coded module resolved
    latents: list[np.ndarray]  # finest first, int64
    predictions: dict[str, ModulePrediction] = field(default_factory=dict)  # missing: fresh

    def prediction(self, name: str) -> ModulePrediction:
        return self.predictions.get(name, FRESH)

    def integer_arm(self) -> IntegerArm:
        return integer_arm(self.param, self.modules)

    def layout(self) -> LatentLayout:
        return LatentLayout(tuple(self.param.grid_sizes), self.param.arm.context_size)

    def networks(self) -> Networks:
        return Networks(self.param, self.modules)


def frame_networks(coded: "Sequence[CodedCoolChic | _Section]", inherited: Sequence[FrameNetworks] = ()) -> FrameNetworks:
    """What a decoded frame leaves for the frames that predict their networks from it, given what
    it inherits from, in order (its references in header order, then the frame decoded before it):
    see ``FrameNetworks`` and ``held_networks``."""
    held = {slot_of(c.role, c.param): c.networks() for c in coded}
    for networks in inherited:
        for slot, passed_on in networks.items():
            held.setdefault(slot, passed_on)
    return held


def prediction_source(held: FrameNetworks, role: CoolChicRole, param: CoolChicEncoderParameter) -> Networks | None:
    """The networks a module of a Cool-chic (``role``, ``param``) predicted from a picture that
    holds ``held`` takes its integers from (normative): that picture's slot of the same kind,
    else, for a residue, its other residue slot; None if it has neither (DecodeOrderError if
    that slot is ``UNSEEN``: this decoder does not know what it holds)."""
    slot = slot_of(role, param)
    if slot not in held and slot != NetworkSlot.MOTION:
        slot = NetworkSlot.PICTURE if slot == NetworkSlot.GATED else NetworkSlot.GATED
    if slot not in held:
        return None
    if held[slot] is None:
        raise DecodeOrderError(
            "a frame predicts its networks from one whose predecessor this decoder did not decode",
            "the stream may start after a random-access point or be corrupted",
        )
    return held[slot]


def integer_arm(param: CoolChicEncoderParameter, modules: dict[str, QuantizedModule]) -> IntegerArm:
    """The fixed-point ARM both sides derive the entropy-coding parameters from."""
    m = modules["arm"]
    return IntegerArm.from_integers(
        list(m.weights), list(m.biases), m.weight_log2_step, m.bias_log2_step, param.arm.n_hidden_layers
    )


def section_data(coded: CodedCoolChic) -> bytes:
    """A Cool-chic's range-coder stream: the bins of its modules not copied, then its latents."""
    nn = encode_nn(coded.modules, coded.predictions)
    return seal([nn, encode_latents(coded.layout(), coded.latents, coded.integer_arm())])


def build_section(coded: CodedCoolChic, predicted: bool, two_references: bool) -> dict:
    """The CoolChicSection fields of ``coded``; ``predicted``: the frame has references (P/B),
    ``two_references``: a B frame (its modules name which reference they predict from)."""
    p = coded.param
    preset = preset_of(p, coded.role == CoolChicRole.MOTION)
    networks = {}
    for name in MODULE_NAMES:
        m, how = coded.modules[name], coded.prediction(name)
        if not predicted and how.mode != NNMode.FRESH:
            raise ValueError("an I frame's modules are sent fresh")
        networks[name] = {
            "mode": how.mode.name.lower() if predicted else None,
            "reference": how.reference if predicted and two_references and how.mode != NNMode.FRESH else None,
            "weight_log2_step": m.weight_log2_step if how.mode == NNMode.FRESH else None,
            "bias_log2_step": m.bias_log2_step if how.mode == NNMode.FRESH else None,
            "weight_expgolomb_order": m.weight_order if how.mode != NNMode.COPY else None,
            "bias_expgolomb_order": m.bias_order if how.mode != NNMode.COPY else None,
        }
    return {
        "architecture": "explicit" if preset is None else preset.value,
        "explicit": explicit_architecture(p) if preset is None else None,
        "networks": networks,
        "data": section_data(coded),
    }


def build_payload(header: FrameHeader, coded: list[CodedCoolChic]) -> bytes:
    """A FRAME payload: the header's fields, then the Cool-chics in role order (the position is the role)."""
    predicted = header.frame_type != FrameType.I
    sections = [build_section(c, predicted, header.frame_type == FrameType.B) for c in sorted(coded, key=lambda c: c.role)]
    return FramePayload.build(
        {
            "display_index": header.display_index,
            "coding_index": header.coding_index,
            "info": {
                "frame_type": header.frame_type.name.lower(),
                "data_type": header.data_type.name.lower(),
                "bit_depth": header.bit_depth,
                "depth": header.depth,
                "warp_filter_size": 0 if header.coding_type == FrameType.I else WARP_FILTER_SIZE,
            },
            "width": header.width,
            "height": header.height,
            "references": [
                {"display_index": r, "translation_y": t[0], "translation_x": t[1]}
                for r, t in zip(header.references, header.translations)
            ],
            "coolchics": sections,
        }
    )


@dataclass(frozen=True)
class _Section:
    """A parsed Cool-chic section, its NN decoded, its latents not yet."""

    role: CoolChicRole
    param: CoolChicEncoderParameter
    modules: dict[str, QuantizedModule]
    predictions: dict[str, ModulePrediction]
    layout: LatentLayout
    decoder: object  # the stream's range decoder past the NN bins (None if decoded elsewhere)
    arm: IntegerArm

    def networks(self) -> Networks:
        return Networks(self.param, self.modules)

    def coded(self, latents: list[np.ndarray]) -> CodedCoolChic:
        return CodedCoolChic(self.role, self.param, self.modules, latents, self.predictions)


def _sources(
    networks, header: FrameHeader, role: CoolChicRole, param: CoolChicEncoderParameter, lookup: NetworkLookup
) -> dict[str, ModulePrediction]:
    """Where each predicted module of a section takes its integers from, validated."""
    out = {}
    for name in MODULE_NAMES:
        h = networks[name]
        mode = header_mode(h)
        if mode == NNMode.FRESH:
            continue
        index = h["reference"] or 0
        what = f"frame {header.display_index}: {role.name.lower()} {name}"
        if index >= len(header.references):
            raise _bad(f"{what} predicts from reference {index} of {len(header.references)}")
        display = header.references[index]
        try:
            held = lookup(display)
        except DecodeOrderError:
            raise DecodeOrderError(
                f"{what} is predicted from display index {display}, which the decoder does not hold",
                "the stream may start after a random-access point or be corrupted",
            ) from None
        source = prediction_source(held, role, param)
        if source is None:
            raise _bad(f"{what} is predicted from display index {display}, which has no {role.name.lower()} Cool-chic")
        if not module_predictable(source.param, param, name):
            raise _bad(f"{what} is predicted from display index {display}, whose {name} has another architecture")
        out[name] = ModulePrediction(mode, index, predict_module(source.modules[name], parameter_shapes(param)[name]))
    return out


def _carried_count(shapes, predictions: dict[str, ModulePrediction]) -> int:
    """How many integers the NN bins of a section carry (every module not copied)."""
    return sum(
        int(np.prod(s))
        for name in MODULE_NAMES
        if predictions.get(name, FRESH).mode != NNMode.COPY
        for s in (*shapes[name][0], *shapes[name][1])
    )


def _parse_sections(
    data: bytes, lookup: NetworkLookup, nn_values: np.ndarray | None = None
) -> tuple[FrameHeader, list[_Section]]:
    """Parse and validate a FRAME payload up to (not including) its latent entropy decoding.

    ``lookup``: the networks of the pictures a predicted module may take its integers from.
    ``nn_values``: the carried NN integers of every section, already decoded
    (``integers_to_bytes``); ValueError if they do not fit the architecture.
    """
    frame = parse_frame(data)  # every field that does not need the decoder's state, checked
    header = frame.header
    sections, cursor = [], 0
    for parsed in frame.sections:
        role, param, section = parsed.role, parsed.param, parsed.fields
        headers = {name: section.networks[name] for name in MODULE_NAMES}
        predictions = _sources(section.networks, header, role, param, lookup)
        sources = {name: p.source for name, p in predictions.items()}
        shapes = parameter_shapes(param)
        decoder = None
        if nn_values is None:
            decoder = open_decoder(bytes(section.data))
            modules = decode_nn(decoder, shapes, headers, sources)
        else:
            count = _carried_count(shapes, predictions)
            modules = nn_from_values(nn_values[cursor : cursor + count], shapes, headers, sources)
            cursor += count
        layout = LatentLayout(tuple(param.grid_sizes), param.arm.context_size)
        sections.append(_Section(role, param, modules, predictions, layout, decoder, integer_arm(param, modules)))
    if nn_values is not None and cursor != nn_values.size:
        raise ValueError(f"{nn_values.size} decoded NN values for {cursor} parameters")
    return header, sections


ParseResult = tuple[FrameHeader, list[CodedCoolChic]]


class _Batch:
    """The lookup of a batch of payloads in coding order: earlier frames of the batch first (a
    frame that failed there is missing, never taken from ``outer``), then ``outer``; ``last``:
    what the frame decoded before the batch holds, then each frame of the batch in turn."""

    def __init__(self, outer: NetworkLookup, last: LastDecoded | None = None) -> None:
        self.outer = outer
        self.known: dict[int, FrameNetworks | None] = {}
        self.last = last.copy() if last is not None else LastDecoded()

    def __call__(self, display_index: int) -> FrameNetworks:
        if display_index not in self.known:
            return self.outer(display_index)
        networks = self.known[display_index]
        if networks is None:
            return no_references(display_index)
        return networks

    def parse(self, data: bytes) -> tuple[FrameHeader, list[_Section]]:
        try:
            header, sections = _parse_sections(data, self)
        except BitstreamError:
            self.fail(data)
            raise
        try:
            held = held_networks(header, sections, self, self.last, ahead=True)
        except DecodeOrderError:
            held = None  # what it inherits is unknown here: later frames are decoded elsewhere
        self.known[header.display_index] = held
        self.last.keep(header.coding_index, held)
        return header, sections

    def fail(self, data: bytes) -> None:
        """A frame of the batch did not decode: later frames must not predict from it."""
        try:
            prefix = FramePrefix.parse(data)
        except (ConstructError, ValueError, OverflowError, UnicodeDecodeError):
            self.last.clear()  # nothing can name this frame, but the next one inherits from it
            return
        self.known[prefix.display_index] = None
        self.last.keep(prefix.coding_index, None)


def parse_payloads(
    payloads: list[bytes], lookup: NetworkLookup = no_references, last: LastDecoded | None = None
) -> list[ParseResult | Failed]:
    """Parse, validate and entropy-decode several FRAME payloads (in coding order) at once.

    Latent streams do not depend on any decoded picture, so the Cool-chics of all the frames
    decode in one merged wavefront loop (one ARM call per step for every Cool-chic sharing a
    grid layout and ARM shape); a frame's networks may be predicted from an earlier frame of the
    batch or from ``lookup``. ``last``: what the frame decoded before the batch holds (its first
    frame inherits from it); None: unknown, so the slots the batch's P/B frames would have taken
    from it are ``UNSEEN`` and a frame predicting from one fails with DecodeOrderError (the caller
    decodes it once its DPB holds that). A damaged payload gives its own ``Failed`` (its error) in its slot; the
    other frames still decode to the same integers as one by one.
    """
    results: list[ParseResult | Failed | None] = [None] * len(payloads)
    batch = _Batch(lookup, last)
    parsed: list[tuple[int, FrameHeader, list[_Section]]] = []
    for i, data in enumerate(payloads):
        try:
            header, sections = batch.parse(data)
        except BitstreamError as exc:
            results[i] = Failed(exc)
            continue
        parsed.append((i, header, sections))

    def finish(i: int, header: FrameHeader, sections: list[_Section], grids: list) -> None:
        results[i] = (header, [s.coded(g) for s, g in zip(sections, grids)])

    try:
        grids = decode_latents_many([(s.layout, s.decoder, s.arm) for _, _, sections in parsed for s in sections])
    except BitstreamError:
        grids = None  # some stream is damaged: decode frame by frame (fresh decoders) to tell which
    if grids is not None:
        start = 0
        for i, header, sections in parsed:
            finish(i, header, sections, grids[start : start + len(sections)])
            start += len(sections)
        return results  # type: ignore[return-value]
    batch = _Batch(lookup, last)
    for i, data in enumerate(payloads):
        if results[i] is not None:
            batch.fail(data)
            continue
        try:
            header, sections = batch.parse(data)
            finish(i, header, sections, decode_latents_many([(s.layout, s.decoder, s.arm) for s in sections]))
        except BitstreamError as exc:
            batch.fail(data)
            results[i] = Failed(exc)
    return results  # type: ignore[return-value]


_COUNT = struct.Struct("<I")


def _arm_check(coded: list[CodedCoolChic] | list[_Section]) -> np.ndarray:
    """Every section's ARM as the latents were decoded with: steps, then integers (int64)."""
    parts = [np.zeros(0, np.int64)]
    for c in coded:
        m = c.modules["arm"]
        parts += [np.array([m.weight_log2_step, m.bias_log2_step], np.int64), *(t.reshape(-1) for t in m.weights + m.biases)]
    return np.concatenate(parts).astype(np.int64)


def integers_to_bytes(coded: list[CodedCoolChic]) -> bytes:
    """A frame's entropy-decoded integers as plain bytes: u32le latent count, every latent as int8
    (section order, finest grid first, raster; the coder's support fits), u32le count of carried
    NN integers, those as int64le (``entropy.nn_weights.coded_values``, section order), then each
    section's ARM (steps, integers) as int64le: the ARM its latents were decoded with, which the
    receiver checks against its own resolution of the copied and delta-coded modules."""
    flat = [g.reshape(-1) for c in coded for g in c.latents]
    latents = np.concatenate(flat).astype(np.int8).tobytes() if flat else b""
    carried = np.concatenate([np.zeros(0, np.int64)] + [coded_values(c.modules, c.predictions) for c in coded])
    return b"".join(
        (_COUNT.pack(len(latents)), latents, _COUNT.pack(carried.size), carried.astype("<i8").tobytes(),
         _arm_check(coded).astype("<i8").tobytes())
    )  # fmt: skip


def parse_with_integers(data: bytes, integers: bytes, lookup: NetworkLookup = no_references) -> ParseResult:
    """Parse a FRAME payload whose entropy coding was decoded elsewhere (``integers_to_bytes``).

    The header and every field are parsed and validated here as in :func:`parse_payload`, and
    predicted modules resolved through ``lookup``; only the NN and latent range decoding are
    skipped. ValueError if the integers do not fit, or were decoded with another ARM than the
    one ``lookup`` resolves to (the caller then decodes the payload itself).
    """
    try:
        (n_latents,) = _COUNT.unpack_from(integers)
        (n_carried,) = _COUNT.unpack_from(integers, _COUNT.size + n_latents)
    except struct.error:
        raise ValueError("decoded integers are cut short") from None
    start = 2 * _COUNT.size + n_latents
    tail = integers[start:]
    if len(tail) < 8 * n_carried or len(tail) % 8:
        raise ValueError("decoded NN values are not whole int64")
    carried = np.frombuffer(tail, dtype="<i8", count=n_carried).astype(np.int64)
    header, sections = _parse_sections(data, lookup, carried)
    if not np.array_equal(np.frombuffer(tail, dtype="<i8", offset=8 * n_carried), _arm_check(sections)):
        raise ValueError("the latents were decoded with another ARM than this decoder's references give")
    flat = np.frombuffer(integers, dtype=np.int8, count=n_latents, offset=_COUNT.size)
    if flat.size != sum(s.layout.n_symbols for s in sections):
        raise ValueError(f"{flat.size} decoded latents do not match the frame's architecture")
    coded, begin = [], 0
    for s in sections:
        coded.append(s.coded(s.layout.split(flat[begin : begin + s.layout.n_symbols].astype(np.int64))))
        begin += s.layout.n_symbols
    return header, coded


def parse_payload(data: bytes, lookup: NetworkLookup = no_references) -> ParseResult:
    """Parse, validate and entropy-decode a FRAME payload."""
    result = parse_payloads([data], lookup)[0]
    if isinstance(result, Failed):
        raise result.error
    return result


def reconstruct(
    header: FrameHeader, coded: list[CodedCoolChic], references: list[Picture], fixed: list[Tensor] | None = None
) -> Picture:
    """Exact decoded picture of a frame from its integers and its reference pictures.

    fixed: the references' ``picture_to_fixed`` if the caller keeps them (a random-access
    anchor serves several frames); computed here otherwise.
    """
    outputs = {c.role: decode_coolchic(c.param, c.modules, c.latents) for c in coded}
    residue = outputs[CoolChicRole.RESIDUE][:, : header.height, : header.width]
    if header.coding_type == FrameType.I:
        refs = []
    else:
        refs = fixed if fixed is not None else [picture_to_fixed(p) for p in references]
    dense = assemble(header.coding_type, residue, outputs.get(CoolChicRole.MOTION), refs, list(header.translations))
    return fixed_to_picture(dense, header.data_type, header.bit_depth, header.display_index)
