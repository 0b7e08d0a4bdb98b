"""Frame payload <-> coded frame: the one decode path shared by encoder and decoder.

    FramePayload bytes ─► parse + validate ─► per Cool-chic: range-coded NN bins and latents
        ─► recon.decode_coolchic (exact) ─► recon.assemble (+ DPB references) ─► Picture

The encoder skips only the entropy *decoding* (it already holds the integers)
and then runs exactly this reconstruction to get its reference pictures.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from construct import ConstructError
from torch import Tensor

from .architecture import OUTPUTS, CoolChicEncoderParameter, parameter_shapes, preset_of
from .bitstream.sections import bad as _bad
from .bitstream.sections import explicit_architecture, section_param
from .bitstream.syntax import FramePayload
from .entropy.arm_int import IntegerArm
from .entropy.latents import LatentLayout, decode_latents_many, encode_latents
from .entropy.nn_weights import MODULE_NAMES, QuantizedModule, decode_nn, encode_nn, flat_values, nn_from_values
from .entropy.stream import open_decoder, seal
from .errors import BitstreamError
from .recon.coolchic import decode_coolchic
from .recon.frame import assemble, fixed_to_picture, picture_to_fixed
from .types import CoolChicRole, DataType, FrameType, Picture

WARP_FILTER_SIZE = 8


@dataclass(frozen=True)
class CodedCoolChic:
    """What the bitstream holds for one Cool-chic, as integers."""

    role: CoolChicRole
    param: CoolChicEncoderParameter
    modules: dict[str, QuantizedModule]
    latents: list[np.ndarray]  # finest first, int64

    def integer_arm(self) -> IntegerArm:
        return integer_arm(self.param, self.modules)

    def layout(self) -> LatentLayout:
        return LatentLayout(tuple(self.param.grid_sizes), self.param.arm.context_size)


@dataclass(frozen=True)
class FrameHeader:
    display_index: int
    coding_index: int
    frame_type: FrameType
    depth: int
    data_type: DataType
    bit_depth: int
    width: int
    height: int
    references: tuple[int, ...]
    translations: tuple[tuple[int, int], ...]
    intra_coded: bool = False  # a P/B frame coded without prediction (keeps its GOP place and references)

    @property
    def coding_type(self) -> FrameType:
        """How the picture is reconstructed: I for I frames and intra-coded P/B frames."""
        return FrameType.I if self.intra_coded else self.frame_type


def integer_arm(param: CoolChicEncoderParameter, modules: dict[str, QuantizedModule]) -> IntegerArm:
    """The fixed-point ARM both sides derive the entropy-coding parameters from."""
    m = modules["arm"]
    return IntegerArm.from_integers(
        list(m.weights), list(m.biases), m.weight_log2_step, m.bias_log2_step, param.arm.n_hidden_layers
    )


def _enum_field(enum_type, value, what: str):
    """Parsed construct Enum -> our IntEnum; unknown values are corruption."""
    try:
        return enum_type[str(value).upper()]
    except KeyError:
        raise _bad(f"unknown {what} {value}") from None


def section_data(coded: CodedCoolChic) -> bytes:
    """A Cool-chic's range-coder stream: its NN bins, then its latents."""
    return seal([encode_nn(coded.modules), encode_latents(coded.layout(), coded.latents, coded.integer_arm())])


def build_section(coded: CodedCoolChic) -> dict:
    """The CoolChicSection fields of ``coded``."""
    p = coded.param
    preset = preset_of(p, coded.role == CoolChicRole.MOTION)
    quantization = {
        name: {
            "weight_log2_step": m.weight_log2_step,
            "bias_log2_step": m.bias_log2_step,
            "weight_expgolomb_order": m.weight_order,
            "bias_expgolomb_order": m.bias_order,
        }
        for name, m in ((name, coded.modules[name]) for name in MODULE_NAMES)
    }
    return {
        "architecture": "explicit" if preset is None else preset.value,
        "explicit": explicit_architecture(p) if preset is None else None,
        "quantization": quantization,
        "data": section_data(coded),
    }


def build_payload(header: FrameHeader, sections: list[dict]) -> bytes:
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


# role, architecture, NN, latent layout, the stream's decoder past the NN (None if decoded elsewhere), ARM
_Pending = tuple[CoolChicRole, CoolChicEncoderParameter, dict[str, QuantizedModule], LatentLayout, object, IntegerArm]


def _parse_sections(data: bytes, nn_values: np.ndarray | None = None) -> tuple[FrameHeader, list[_Pending]]:
    """Parse and validate a FRAME payload up to (not including) its latent entropy decoding.

    ``nn_values``: the NN integers of every section, already decoded (``integers_to_bytes``);
    ValueError if they do not fit the architecture.
    """
    try:
        parsed = FramePayload.parse(data)
    except (ConstructError, ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise _bad(f"frame payload does not parse ({type(exc).__name__})") from None
    info = parsed.info
    frame_type = _enum_field(FrameType, info.frame_type, "frame type")
    data_type = _enum_field(DataType, info.data_type, "data type")
    if not 8 <= info.bit_depth <= 16:
        raise _bad(f"bit depth {info.bit_depth} is out of range 8..16")
    if not (2 <= parsed.width <= 16383 and 2 <= parsed.height <= 16383):
        raise _bad(f"frame size {parsed.width}x{parsed.height} is out of range")
    # A P/B frame whose only Cool-chic is its residue is coded without prediction (intra-coded).
    intra_coded = frame_type != FrameType.I and info.warp_filter_size == 0
    coding_type = FrameType.I if intra_coded else frame_type
    if info.warp_filter_size != (0 if coding_type == FrameType.I else WARP_FILTER_SIZE):
        raise _bad(f"warp filter size {info.warp_filter_size} is not valid here ({frame_type.name} frame)")
    if intra_coded and any(r.translation_y or r.translation_x for r in parsed.references):
        raise _bad(f"intra-coded {frame_type.name} frame carries a global translation")
    header = FrameHeader(
        parsed.display_index, parsed.coding_index, frame_type, info.depth, data_type, info.bit_depth,
        parsed.width, parsed.height,
        tuple(r.display_index for r in parsed.references),
        tuple((r.translation_y, r.translation_x) for r in parsed.references),
        intra_coded,
    )  # fmt: skip
    roles = [CoolChicRole.RESIDUE] + ([CoolChicRole.MOTION] if coding_type != FrameType.I else [])
    pending, cursor = [], 0
    for role, section in zip(roles, parsed.coolchics):
        n_output = OUTPUTS[coding_type][role == CoolChicRole.MOTION]
        param = section_param(section, header.height, header.width, role, n_output)
        headers = {name: section.quantization[name] for name in MODULE_NAMES}
        shapes = parameter_shapes(param)
        decoder = None
        if nn_values is None:
            decoder = open_decoder(bytes(section.data))
            modules = decode_nn(decoder, shapes, headers)
        else:
            count = sum(int(np.prod(s)) for w, b in shapes.values() for s in (*w, *b))
            modules = nn_from_values(nn_values[cursor : cursor + count], shapes, headers)
            cursor += count
        layout = LatentLayout(tuple(param.grid_sizes), param.arm.context_size)
        pending.append((role, param, modules, layout, decoder, integer_arm(param, modules)))
    if nn_values is not None and cursor != nn_values.size:
        raise ValueError(f"{nn_values.size} decoded NN values for {cursor} parameters")
    return header, pending


ParseResult = tuple[FrameHeader, list[CodedCoolChic]]


def parse_payloads(payloads: list[bytes]) -> list[ParseResult | BitstreamError]:
    """Parse, validate and entropy-decode several FRAME payloads at once.

    Latent streams do not depend on any decoded picture, so the Cool-chics of all the frames
    decode in one merged wavefront loop (one ARM call per step for every Cool-chic sharing a
    grid layout and ARM shape). A damaged payload gives its own BitstreamError in its slot;
    the other frames still decode to the same integers as one by one.
    """
    results: list[ParseResult | BitstreamError | None] = [None] * len(payloads)
    sections: list[tuple[int, FrameHeader, list[_Pending]]] = []
    for i, data in enumerate(payloads):
        try:
            header, pending = _parse_sections(data)
        except BitstreamError as exc:
            results[i] = exc
            continue
        sections.append((i, header, pending))

    def finish(i: int, header: FrameHeader, pending: list[_Pending], grids: list) -> None:
        results[i] = (header, [CodedCoolChic(role, param, modules, g) for (role, param, modules, *_), g in zip(pending, grids)])

    jobs = [(layout, decoder, arm) for _, _, pending in sections for _, _, _, layout, decoder, arm in pending]
    try:
        grids = decode_latents_many(jobs)
    except BitstreamError:
        grids = None  # some stream is damaged: decode frame by frame (fresh decoders) to tell which
    if grids is not None:
        start = 0
        for i, header, pending in sections:
            finish(i, header, pending, grids[start : start + len(pending)])
            start += len(pending)
    else:
        for i, _, _ in sections:
            try:
                header, pending = _parse_sections(payloads[i])
                finish(i, header, pending, decode_latents_many([(layout, d, arm) for _, _, _, layout, d, arm in pending]))
            except BitstreamError as exc:
                results[i] = exc
    return results  # type: ignore[return-value]


_LATENT_COUNT = struct.Struct("<I")


def integers_to_bytes(coded: list[CodedCoolChic]) -> bytes:
    """A frame's entropy-decoded integers as plain bytes: u32le latent count, every latent as
    int8 (section order, finest grid first, raster; the coder's support fits), then every NN
    integer as int64le (section order, bitstream order)."""
    flat = [g.reshape(-1) for c in coded for g in c.latents]
    latents = np.concatenate(flat).astype(np.int8).tobytes() if flat else b""
    nn = [flat_values(c.modules) for c in coded]
    values = np.concatenate(nn).astype("<i8").tobytes() if nn else b""
    return _LATENT_COUNT.pack(len(latents)) + latents + values


def parse_with_integers(data: bytes, integers: bytes) -> ParseResult:
    """Parse a FRAME payload whose entropy coding was decoded elsewhere (``integers_to_bytes``).

    The header and every field are parsed and validated here as in :func:`parse_payload`; only
    the NN and latent range decoding are skipped. ValueError if the integers do not fit.
    """
    if len(integers) < _LATENT_COUNT.size:
        raise ValueError("decoded integers are cut short")
    (n_latents,) = _LATENT_COUNT.unpack_from(integers)
    nn_bytes = integers[_LATENT_COUNT.size + n_latents :]
    if len(nn_bytes) % 8:
        raise ValueError("decoded NN values are not whole int64")
    header, pending = _parse_sections(data, np.frombuffer(nn_bytes, dtype="<i8").astype(np.int64))
    flat = np.frombuffer(integers, dtype=np.int8, count=n_latents, offset=_LATENT_COUNT.size)
    if flat.size != sum(layout.n_symbols for _, _, _, layout, _, _ in pending):
        raise ValueError(f"{flat.size} decoded latents do not match the frame's architecture")
    coded, start = [], 0
    for role, param, modules, layout, _, _ in pending:
        grids = layout.split(flat[start : start + layout.n_symbols].astype(np.int64))
        coded.append(CodedCoolChic(role, param, modules, grids))
        start += layout.n_symbols
    return header, coded


def parse_payload(data: bytes) -> ParseResult:
    """Parse, validate and entropy-decode a FRAME payload."""
    result = parse_payloads([data])[0]
    if isinstance(result, BitstreamError):
        raise result
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
