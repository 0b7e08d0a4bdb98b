"""Normative syntax of the ``.ccv`` format: every byte of a stream is defined here.

Layout of a stream::

    FileHeader                       "CCVS" | major u8 | minor u8 | crc32(magic+versions) u32le
    Unit*                            in coding order, each one self-delimiting:
        sync  = CC 5A
        type  = u8                   UnitType; unknown types are skipped by length
        len   = VarInt (LEB128)      payload length in bytes
        payload[len]                 parsed in memory with the structs below
        crc   = u32le                zlib.crc32(type | len | payload)
    [Trailer]                        "CCVX" | index_offset u64le | crc32 u32le (seekable output only)

The first unit is SEQ. FRAME units follow as soon as each frame is coded. An
INDEX unit (random-access points and the frame count) and END close a stream.
A newer minor version may append fields at the end of a payload: readers parse
the fields they know and ignore the tail. A newer major version is refused.
"""

from __future__ import annotations

from construct import (
    Array,
    BitsInteger,
    BitStruct,
    Computed,
    Const,
    Enum,
    ExprAdapter,
    Flag,
    GreedyBytes,
    If,
    Int8ub,
    Int32ul,
    Int64ul,
    Padding,
    PascalString,
    Prefixed,
    PrefixedArray,
    Struct,
    VarInt,
    ZigZag,
    this,
)

from ..spec import MODULE_NAMES, NNMode
from ..types import ChromaSiting, ColorRange, DataType, FrameType, GopStructure

MAGIC = b"CCVS"
TRAILER_MAGIC = b"CCVX"
SYNC = b"\xcc\x5a"
VERSION_MAJOR = 6  # 6.0: a picture also passes on what the frame decoded before it holds (5.0: what its references hold; 4.0: NN modules copied or delta-coded from references)
VERSION_MINOR = 0


def _enum(enum_type: type, field=Int8ub) -> Enum:
    """A field (one byte unless told) that serializes one of our IntEnums by name."""
    return Enum(field, **{member.name.lower(): int(member) for member in enum_type})


UnitType = Enum(Int8ub, seq=1, frame=2, index=3, end=4)

# ---------------------------------------------------------------- file framing

FileHeader = Struct(
    "magic" / Const(MAGIC),
    "version_major" / Int8ub,
    "version_minor" / Int8ub,
    "crc" / Int32ul,  # crc32 of the six bytes before it
)

Trailer = Struct(
    "magic" / Const(TRAILER_MAGIC),
    "index_offset" / Int64ul,  # byte offset of the INDEX unit's sync marker
    "crc" / Int32ul,  # crc32 of the twelve bytes before it
)

# ---------------------------------------------------------------- SEQ unit

SequenceHeader = Struct(
    "width" / VarInt,
    "height" / VarInt,
    "data_type" / _enum(DataType),
    "bit_depth" / Int8ub,
    "frame_rate_num" / VarInt,
    "frame_rate_den" / VarInt,
    "sar_num" / VarInt,  # 0:0 = unknown
    "sar_den" / VarInt,
    "color_range" / _enum(ColorRange),
    "chroma_siting" / _enum(ChromaSiting),
    "gop_structure" / _enum(GopStructure),
    "gop_size" / VarInt,
    "intra_period" / VarInt,
    "frame_count" / VarInt,  # 0 = unknown: a streamed encode does not know it up front
    "encoder" / PascalString(VarInt, "utf8"),
)

# ---------------------------------------------------------------- FRAME unit

SynthesisLayer = Struct(
    "out_channels" / VarInt,
    "kernel_size" / Int8ub,
    "residual" / Flag,
    "relu" / Flag,
)

def _log2_step(bits: int) -> ExprAdapter:
    """A power-of-two step 2**-s <= 1, stored as s in ``bits`` bits and read back as log2(step)."""
    return ExprAdapter(BitsInteger(bits), decoder=lambda s, ctx: -s, encoder=lambda log2, ctx: -log2)


def _module_bits(module) -> int:
    """Bits an NNModuleCoding took: its fields that are present."""
    widths = {"mode": 2, "reference": 1, "weight_log2_step": 4, "bias_log2_step": 5,
              "weight_expgolomb_order": 4, "bias_expgolomb_order": 4}  # fmt: skip
    return sum(width for name, width in widths.items() if module[name] is not None)


def _predicted(this) -> bool:
    return this._._.predicted  # NNModuleCoding ─► NNCoding ─► CoolChicSection


# How one module of a Cool-chic is sent (spec.NNMode). I frames send every module fresh and carry
# no mode; a P or B frame's module may instead copy, or add coded differences to, the same module
# of the same-role Cool-chic of one of its references, whose steps it then uses.
NNModuleCoding = Struct(
    "mode" / If(_predicted, _enum(NNMode, BitsInteger(2))),
    # index into the frame's references; only B frames have two to choose from
    "reference" / If(lambda this: _predicted(this) and this.mode != "fresh" and this._._.two_references, BitsInteger(1)),
    # weights are integers times 2**weight_log2_step, 2**-15 .. 1; biases 2**-31 .. 1
    "weight_log2_step" / If(lambda this: this.mode in (None, "fresh"), _log2_step(4)),
    "bias_log2_step" / If(lambda this: this.mode in (None, "fresh"), _log2_step(5)),
    # orders of what the bins carry: the integers (fresh) or the differences (delta)
    "weight_expgolomb_order" / If(lambda this: this.mode != "copy", BitsInteger(4)),
    "bias_expgolomb_order" / If(lambda this: this.mode != "copy", BitsInteger(4)),
)

NNCoding = BitStruct(  # 7 bytes in an I frame; 2 (all copied) to 8 (all fresh) in a P or B frame
    "arm" / NNModuleCoding,
    "upsampling" / NNModuleCoding,
    "synthesis" / NNModuleCoding,
    Padding(lambda this: -sum(_module_bits(this[name]) for name in MODULE_NAMES) % 8),
)

# Named architectures: the residue or motion tables of ``architecture.py`` for this preset,
# with the latent grids Cool-chic's rule derives from the frame size, and the frame type's
# output count. Those tables are normative: a preset's meaning never changes within a major
# version. Anything else is spelled out.
ArchitecturePreset = Enum(Int8ub, explicit=0, lop=1, mop=2, hop=3)

ExplicitArchitecture = Struct(
    "n_output" / Int8ub,
    "latent_resolution_min" / Int8ub,  # finest grid is 1/2**min of the frame
    "latent_resolution_max" / Int8ub,  # coarsest grid is 1/2**max of the frame
    "arm_context" / Int8ub,  # number of causal neighbours, Cool-chic priority order
    "arm_hidden_layers" / Int8ub,
    "arm_stabiliser" / Flag,
    "ups_kernel" / Int8ub,  # transposed-conv taps (even)
    "ups_preconcat_kernel" / Int8ub,  # pre-concatenation filter taps (odd)
    "synthesis_layers" / PrefixedArray(Int8ub, SynthesisLayer),
    "synthesis_stabiliser" / Flag,
)

# A frame's Cool-chics go residue first, then motion when the frame is predicted; the position
# is the role. The latent symbol count follows from the architecture and the frame size.
CoolChicSection = Struct(
    "predicted" / Computed(lambda this: str(this._.info.frame_type) != "i"),  # FramePayload's
    "two_references" / Computed(lambda this: str(this._.info.frame_type) == "b"),
    "architecture" / ArchitecturePreset,
    "explicit" / If(this.architecture == "explicit", ExplicitArchitecture),
    "networks" / NNCoding,
    # one range-coder stream (entropy/stream.py): the NN's exp-Golomb bins (entropy/nn_bins.py) of
    # every module not copied, module by module, then the latents; big-endian u32 words, the last one cut short (missing bytes read 0xFF)
    "data" / Prefixed(VarInt, GreedyBytes),
)

Reference = Struct(
    "display_index" / VarInt,
    "translation_y" / ZigZag,  # integer global translation applied to this reference
    "translation_x" / ZigZag,
)


FrameInfo = BitStruct(  # 2 bytes
    "frame_type" / _enum(FrameType, BitsInteger(2)),
    "data_type" / _enum(DataType, BitsInteger(2)),
    "bit_depth" / ExprAdapter(BitsInteger(4), decoder=lambda v, ctx: v + 8, encoder=lambda depth, ctx: depth - 8),
    "depth" / BitsInteger(4),  # hierarchy depth (0 for I and anchors)
    "warp_filter_size" / BitsInteger(4),  # 0 for I frames and intra-coded P/B frames
)

_REFERENCES = {"i": 0, "p": 1, "b": 2}

_FRAME_FORMAT = (
    "display_index" / VarInt,  # pts
    "coding_index" / VarInt,  # dts
    "info" / FrameInfo,
    "width" / VarInt,
    "height" / VarInt,
)
# The leading fields alone: what a decoder checks before it allocates anything for a frame.
FramePrefix = Struct(*_FRAME_FORMAT)

FramePayload = Struct(
    *_FRAME_FORMAT,
    "references" / Array(lambda this: _REFERENCES.get(str(this.info.frame_type), 0), Reference),
    # residue, then motion when predicted (warp_filter_size > 0). A P or B frame carrying its
    # residue alone (3 outputs, zero translations) is intra-coded: its references still place it
    # in the GOP (the DPB keeps them for the frames after it), but it is not a random-access point.
    "coolchics" / Array(lambda this: 2 if this.info.warp_filter_size else 1, CoolChicSection),
)

# ---------------------------------------------------------------- INDEX unit

IndexEntry = Struct(
    "display_index" / VarInt,
    "coding_index" / VarInt,
    "offset" / VarInt,  # byte offset of the FRAME unit's sync marker
)

IndexPayload = Struct(
    "frame_count" / VarInt,
    "random_access_points" / PrefixedArray(VarInt, IndexEntry),
)

END_PAYLOAD = b""

__all__ = [
    "ArchitecturePreset",
    "CoolChicSection",
    "END_PAYLOAD",
    "ExplicitArchitecture",
    "FileHeader",
    "FrameInfo",
    "FramePayload",
    "FramePrefix",
    "IndexEntry",
    "IndexPayload",
    "MAGIC",
    "NNCoding",
    "NNModuleCoding",
    "Reference",
    "SYNC",
    "SequenceHeader",
    "SynthesisLayer",
    "TRAILER_MAGIC",
    "Trailer",
    "UnitType",
    "VERSION_MAJOR",
    "VERSION_MINOR",
]
