"""Tests of the .ccv syntax (golden bytes) and the streaming container reader/writer."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import zlib
from fractions import Fraction
from pathlib import Path

import pytest
from construct import Container, ConstructError, VarInt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import coolchic_stream
from coolchic_stream.bitstream import syntax
from coolchic_stream.bitstream.container import (
    ContainerReader,
    ContainerWriter,
    file_header_bytes,
    sequence_to_dict,
    trailer_bytes,
    unit_bytes,
)
from coolchic_stream.errors import (
    BitstreamError,
    CoolChicStreamError,
    CorruptDataError,
    TruncatedStreamError,
)
from coolchic_stream.types import ChromaSiting, ColorRange, DataType, FrameType, GopStructure, Packet, SequenceInfo

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "syntax"
REGENERATE = os.environ.get("CCV_REGENERATE_GOLDEN") == "1"

SEQ = SequenceInfo(
    width=33,
    height=17,
    data_type=DataType.YUV420,
    bit_depth=10,
    frame_rate=Fraction(30000, 1001),
    sample_aspect_ratio=Fraction(1, 1),
    color_range=ColorRange.FULL,
    chroma_siting=ChromaSiting.LEFT,
    gop_structure=GopStructure.RANDOM_ACCESS,
    gop_size=4,
    intra_period=8,
    frame_count=0,
    encoder="coolchic-stream test",
)

LAYER = {"out_channels": 48, "kernel_size": 1, "residual": False, "relu": True}
QUANT = {"weight_log2_step": -7, "bias_log2_step": -10, "weight_expgolomb_order": 2, "bias_expgolomb_order": 3}
ARCHITECTURE = {
    "n_output": 3,
    "latent_resolution_min": 0,
    "latent_resolution_max": 6,
    "arm_context": 16,
    "arm_hidden_layers": 2,
    "arm_stabiliser": True,
    "ups_kernel": 8,
    "ups_preconcat_kernel": 7,
    "synthesis_layers": [LAYER, {"out_channels": 3, "kernel_size": 3, "residual": True, "relu": False}],
    "synthesis_stabiliser": False,
}
FRESH_I = {"mode": None, "reference": None} | QUANT  # an I frame's module: no mode, always fresh
NETWORKS_I = {"arm": FRESH_I, "upsampling": FRESH_I | {"bias_log2_step": 0}, "synthesis": FRESH_I | {"bias_log2_step": -31}}
NO_STEPS = {"weight_log2_step": None, "bias_log2_step": None}
NO_ORDERS = {"weight_expgolomb_order": None, "bias_expgolomb_order": None}
NETWORKS_B = {  # copy from reference 1, delta from reference 0, fresh
    "arm": {"mode": "copy", "reference": 1} | NO_STEPS | NO_ORDERS,
    "upsampling": {"mode": "delta", "reference": 0} | NO_STEPS | {"weight_expgolomb_order": 1, "bias_expgolomb_order": 0},
    "synthesis": {"mode": "fresh", "reference": None} | QUANT | {"bias_log2_step": -31},
}
NETWORKS_P = {name: m | {"reference": None} for name, m in NETWORKS_B.items()}  # one reference: none named
NETWORKS = {"i": NETWORKS_I, "p": NETWORKS_P, "b": NETWORKS_B}
SECTION = {
    "architecture": "explicit",
    "explicit": ARCHITECTURE,
    "networks": NETWORKS_I,
    "data": bytes(range(20)) + b"\x01\x02\x03\x04" * 3,
}
PRESET_SECTION = SECTION | {"architecture": "hop", "explicit": None}


def section(frame_type: str, **fields) -> dict:
    """SECTION with the networks field a frame of ``frame_type`` carries."""
    return SECTION | {"networks": NETWORKS[frame_type]} | fields
REFERENCE = {"display_index": 300, "translation_y": -3, "translation_x": 2}


def frame_dict(pts: int, dts: int, frame_type: str, coolchics: list | None = None, refs: list | None = None) -> dict:
    """A predicted frame (P/B: references, residue + motion) or an I frame."""
    return {
        "display_index": pts,
        "coding_index": dts,
        "info": {
            "frame_type": frame_type,
            "data_type": "yuv420",
            "bit_depth": 10,
            "depth": 1 if frame_type == "b" else 0,
            "warp_filter_size": 0 if frame_type == "i" else 8,
        },
        "width": 33,
        "height": 17,
        "references": refs if refs is not None else [REFERENCE] * {"i": 0, "p": 1, "b": 2}[frame_type],
        "coolchics": coolchics or [section(frame_type)] * (1 if frame_type == "i" else 2),
    }


GOLDEN_STRUCTS = {
    "file_header": (syntax.FileHeader, {"magic": b"CCVS", "version_major": 1, "version_minor": 0, "crc": zlib.crc32(b"CCVS\x01\x00")}),
    "trailer": (syntax.Trailer, {"magic": b"CCVX", "index_offset": 123456, "crc": 0xDEADBEEF}),
    "unit_type": (syntax.UnitType, "frame"),
    "sequence_header": (syntax.SequenceHeader, sequence_to_dict(SEQ)),
    "synthesis_layer": (syntax.SynthesisLayer, LAYER),
    "nn_coding_i": (syntax.NNCoding, NETWORKS_I, {"predicted": False, "two_references": False}),
    "nn_coding_b": (syntax.NNCoding, NETWORKS_B, {"predicted": True, "two_references": True}),
    "explicit_architecture": (syntax.ExplicitArchitecture, ARCHITECTURE),
    "coolchic_section": (syntax.CoolChicSection, SECTION, {"info": Container(frame_type="i")}),
    "coolchic_section_preset": (syntax.CoolChicSection, section("b", architecture="hop", explicit=None), {"info": Container(frame_type="b")}),
    "reference": (syntax.Reference, REFERENCE),
    "frame_payload": (
        syntax.FramePayload,
        frame_dict(5, 2, "b", [section("b"), section("b", architecture="hop", explicit=None)], [REFERENCE, REFERENCE]),
    ),
    "index_entry": (syntax.IndexEntry, {"display_index": 8, "coding_index": 8, "offset": 70000}),
    "index_payload": (
        syntax.IndexPayload,
        {"frame_count": 9, "random_access_points": [{"display_index": 0, "coding_index": 0, "offset": 60}]},
    ),
}


COMPUTED = ("predicted", "two_references")  # CoolChicSection fields derived from the frame type, not stored


def _plain(value):
    """Parsed construct values as comparable plain Python (enums as str, no _io, no computed fields)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not k.startswith("_") and k not in COMPUTED}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def _check_golden(name: str, data: bytes) -> None:
    path = GOLDEN / f"{name}.hex"
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data.hex() + "\n")
    assert path.exists(), f"{path} is missing: run with CCV_REGENERATE_GOLDEN=1"
    assert data.hex() == path.read_text().strip(), f"{name} bytes changed: the format is normative"


@pytest.mark.parametrize("name", sorted(GOLDEN_STRUCTS))
def test_struct_golden_build_and_parse(name: str) -> None:
    struct, value, *context = GOLDEN_STRUCTS[name]
    context = context[0] if context else {}  # what an enclosing struct would tell it (the frame type)
    data = struct.build(value, **context)
    _check_golden(name, data)
    parsed = _plain(struct.parse(bytes.fromhex((GOLDEN / f"{name}.hex").read_text().strip()), **context))
    assert parsed == value


def test_sequence_header_fields_are_where_the_spec_says() -> None:
    data = syntax.SequenceHeader.build(sequence_to_dict(SEQ))
    # width 33, height 17, data_type yuv420 (0), bit depth 10, then 30000 as LEB128 (b0 ea 01)
    assert data[:7] == bytes([33, 17, 0, 10, 0xB0, 0xEA, 0x01])
    assert data.endswith(b"\x14coolchic-stream test")


def test_frame_info_is_packed_as_the_spec_says() -> None:
    info = frame_dict(5, 2, "b")["info"]
    # MSB first: type b (2 bits: 2), data type yuv420 (2: 0), bit depth 10 - 8 (4: 2), depth 1 (4), warp size 8 (4)
    assert syntax.FrameInfo.build(info) == int("10" "00" "0010" "0001" "1000", 2).to_bytes(2, "big")
    with pytest.raises(ConstructError):
        syntax.FrameInfo.build(info | {"bit_depth": 7})
    # the frame type fixes the reference count, the warp size whether a motion Cool-chic follows
    assert len(syntax.FramePayload.parse(syntax.FramePayload.build(frame_dict(0, 0, "p"))).references) == 1
    intra_coded = frame_dict(3, 1, "b", [section("b")]) | {"info": info | {"warp_filter_size": 0}}
    assert len(syntax.FramePayload.parse(syntax.FramePayload.build(intra_coded)).coolchics) == 1


def test_nn_steps_are_packed_as_the_spec_says() -> None:
    intra = {"predicted": False, "two_references": False}
    data = syntax.NNCoding.build({"arm": FRESH_I, "upsampling": FRESH_I, "synthesis": FRESH_I}, **intra)
    # I frame, per module, MSB first: weight shift 7 (4 bits), bias shift 10 (5), orders 2 and 3 (4 each); then 5 zero bits
    assert data == int(("0111" "01010" "0010" "0011") * 3 + "00000", 2).to_bytes(7, "big")
    for bad in ({"weight_log2_step": 1}, {"weight_log2_step": -16}, {"bias_log2_step": -32}, {"bias_expgolomb_order": 16}):
        with pytest.raises(ConstructError):
            syntax.NNCoding.build({"arm": FRESH_I | bad, "upsampling": FRESH_I, "synthesis": FRESH_I}, **intra)


def test_nn_modes_are_packed_as_the_spec_says() -> None:
    """A B frame: copy from reference 1, delta from reference 0 with orders 1 and 0, fresh."""
    data = syntax.NNCoding.build(NETWORKS_B, predicted=True, two_references=True)
    bits = "01" "1" + "10" "0" "0001" "0000" + "00" "0111" "11111" "0010" "0011"
    assert data == int(bits + "0" * (-len(bits) % 8), 2).to_bytes((len(bits) + 7) // 8, "big")
    # a P frame names no reference: one bit less per predicted module; all copied fits in one byte
    assert len(syntax.NNCoding.build(NETWORKS_P, predicted=True, two_references=False)) == 4  # 31 bits
    copied = {name: NETWORKS_P["arm"] for name in ("arm", "upsampling", "synthesis")}
    assert syntax.NNCoding.build(copied, predicted=True, two_references=False) == bytes([0b01010100])
    parsed = syntax.NNCoding.parse(data, predicted=True, two_references=True)
    assert _plain(parsed) == NETWORKS_B


def packets(n: int = 6) -> list[Packet]:
    """An I P B B I P pattern in coding order with distinct payload sizes."""
    types = ["i", "p", "b", "b", "i", "p"]
    out = []
    for dts in range(n):
        t = types[dts % len(types)]
        cc = [section(t, data=bytes([dts]) * (3 + 40 * dts))] * (1 if t == "i" else 2)
        payload = syntax.FramePayload.build(frame_dict(dts * 2 % 7, dts, t, cc))
        out.append(Packet(payload, dts * 2 % 7, dts, FrameType[t.upper()]))
    return out


def stream(pkts: list[Packet], seekable: bool = True) -> bytes:
    buf = io.BytesIO() if seekable else _Unseekable()
    with ContainerWriter(buf, SEQ) as w:
        for p in pkts:
            w.write(p)
    return buf.getvalue()


class _Unseekable(io.BytesIO):
    def seekable(self) -> bool:
        return False


def read_all(data: bytes, **kw) -> tuple[ContainerReader, list[Packet]]:
    reader = ContainerReader(io.BytesIO(data), **kw)
    return reader, list(reader)


def test_whole_stream_golden() -> None:
    _check_golden("stream_seekable", stream(packets(3)))
    _check_golden("stream_pipe", stream(packets(3), seekable=False))


def test_round_trip_seekable_has_index_end_and_trailer() -> None:
    pkts = packets()
    data = stream(pkts)
    reader, got = read_all(data)
    assert reader.sequence == SEQ
    assert [(p.data, p.pts, p.dts, p.frame_type) for p in got] == [(p.data, p.pts, p.dts, p.frame_type) for p in pkts]
    assert reader.ended
    trailer = syntax.Trailer.parse(data[-16:])
    assert zlib.crc32(data[-16:-4]) == trailer.crc
    assert data[trailer.index_offset : trailer.index_offset + 2] == syntax.SYNC
    assert data[trailer.index_offset + 2] == 3  # INDEX
    assert reader.index["frame_count"] == 6
    raps = reader.index["random_access_points"]
    assert [(r["display_index"], r["coding_index"]) for r in raps] == [(0, 0), (1, 4)]
    for rap in raps:  # offsets point at the FRAME units of the I frames
        assert data[rap["offset"] : rap["offset"] + 3] == syntax.SYNC + b"\x02"


def test_a_ctrl_c_during_a_write_lands_once_the_unit_is_written_and_counted() -> None:
    """The CLI reports what the writer counted: a Ctrl-C between a unit's bytes and its bookkeeping
    left a frame in the file that the count and the index missed (seen: 3 frames kept, 2 reported)."""

    class Interrupted(io.BytesIO):
        armed = False

        def write(self, data) -> int:  # type: ignore[override]
            written = super().write(data)
            if self.armed:  # Ctrl-C arrives while the unit is being written
                self.armed = False
                # on this thread, its Python handler run before raise_signal returns (os.kill may
                # hand it to another thread and the main thread see it later: a CI flake)
                signal.raise_signal(signal.SIGINT)
            return written

    buf = Interrupted()
    writer = ContainerWriter(buf, SEQ)
    first, second = packets(2)
    writer.write(first)
    buf.armed = True
    # Python's own Ctrl-C handler, whatever an earlier test left installed (an ignored SIGINT is
    # rightly not raised: the full run failed here, the file alone passed)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            writer.write(second)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert writer.frames_written == 2 and writer.offset == len(buf.getvalue())
    writer.close()
    reader, got = read_all(buf.getvalue())
    assert len(got) == 2 and reader.index["frame_count"] == 2


def test_pipe_output_ends_with_end_unit_only() -> None:
    data = stream(packets(2), seekable=False)
    assert data.endswith(unit_bytes(4, b""))
    assert syntax.TRAILER_MAGIC not in data[-16:]
    _, got = read_all(data)
    assert len(got) == 2


def test_unit_framing_and_overhead() -> None:
    for n in (0, 1, 127, 128, 16383, 16384):
        unit = unit_bytes(2, bytes(n))
        assert unit[:3] == b"\xcc\x5a\x02"
        assert unit[3 : 3 + len(VarInt.build(n))] == VarInt.build(n)
        assert len(unit) - n == 2 + 1 + len(VarInt.build(n)) + 4
        assert int.from_bytes(unit[-4:], "little") == zlib.crc32(unit[2:-4])


WRITER_SCRIPT = r"""
import sys
sys.path.insert(0, sys.argv[1])
from tests.bitstream.test_container import packets, SEQ
from coolchic_stream.bitstream.container import ContainerWriter
w = ContainerWriter("-", SEQ)
for p in packets():
    w.write(p)
w.close()
"""


def test_round_trip_through_a_subprocess_pipe() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(root)], stdout=subprocess.PIPE, cwd=root, env=os.environ | {"PYTHONPATH": str(root)}
    )
    assert not proc.stdout.seekable()
    reader = ContainerReader(proc.stdout)
    got = list(reader)
    assert proc.wait(timeout=60) == 0
    assert [p.data for p in got] == [p.data for p in packets()]
    assert reader.ended and reader.index is None  # a pipe gets no index


def test_reader_on_os_pipe_sees_frames_as_they_are_written() -> None:
    r, w = os.pipe()
    rf, wf = os.fdopen(r, "rb"), os.fdopen(w, "wb")
    pkts = packets(3)
    writer = ContainerWriter(wf, SEQ)
    reader = ContainerReader(rf)  # the header and SEQ are already flushed
    it = iter(reader)
    for p in pkts:
        writer.write(p)
        # The unit is flushed: the reader gets it before anything else is written.
        assert next(it).data == p.data
    done = threading.Thread(target=lambda: (writer.close(), wf.close()))
    done.start()
    assert list(it) == []
    done.join(10)
    assert reader.ended
    rf.close()


def test_truncation_at_every_byte_yields_complete_frames() -> None:
    pkts = packets(4)
    data = stream(pkts, seekable=False)
    # end offset of each FRAME unit
    ends = []
    reader = ContainerReader(io.BytesIO(data))
    for unit in reader.units():
        if unit.unit_type == 2:
            ends.append(unit.offset + unit.size)
    first_frame = ends[0] - len(unit_bytes(2, pkts[0].data))
    for cut in range(len(data)):
        part = data[:cut]
        if cut < first_frame:
            with pytest.raises(BitstreamError):
                list(ContainerReader(io.BytesIO(part)))
            continue
        reader = ContainerReader(io.BytesIO(part))
        got = []
        with pytest.raises(TruncatedStreamError) as exc:
            for p in reader:
                got.append(p)
        assert len(got) == sum(e <= cut for e in ends), cut
        assert [p.data for p in got] == [p.data for p in pkts[: len(got)]]
        assert "byte" in str(exc.value)
    _, got = read_all(data)
    assert len(got) == 4


def test_truncation_message_names_the_offset() -> None:
    data = stream(packets(2), seekable=False)
    cut = len(data) - 12
    with pytest.raises(TruncatedStreamError, match=r"unit at byte \d+ cut"):
        list(ContainerReader(io.BytesIO(data[:cut])))


def _frame_units(data: bytes) -> list:
    return [u for u in ContainerReader(io.BytesIO(data)).units() if u.unit_type == 2]


@pytest.mark.parametrize("where", ["payload", "crc", "length", "sync", "type"])
def test_corrupt_unit_is_reported_and_reading_resumes(where: str) -> None:
    pkts = packets()
    data = bytearray(stream(pkts))
    unit = _frame_units(bytes(data))[1]
    pos = {
        "payload": unit.offset + 6,
        "crc": unit.offset + unit.size - 1,
        "length": unit.offset + 3,
        "sync": unit.offset,
        "type": unit.offset + 2,
    }[where]
    data[pos] ^= 0x40 if where == "length" else 0xFF
    # Without a callback: the damage is an error, after the good frame before it.
    reader = ContainerReader(io.BytesIO(bytes(data)))
    got = []
    with pytest.raises(CorruptDataError):
        for p in reader:
            got.append(p)
    assert [p.dts for p in got] == [0]
    # With a callback: one report, and every other frame comes through.
    reports: list[CorruptDataError] = []
    reader, got = read_all(bytes(data), on_corrupt=reports.append)
    assert len(reports) >= 1 and all(isinstance(r, CorruptDataError) for r in reports)
    assert [p.dts for p in got] == [0, 2, 3, 4, 5]
    assert reader.ended


def test_corrupt_unit_on_a_pipe_resyncs_without_seeking() -> None:
    data = bytearray(stream(packets(), seekable=False))
    unit = _frame_units(bytes(data))[2]
    data[unit.offset + 3] = 0x7F  # a length that swallows the next units
    r, w = os.pipe()
    threading.Thread(target=lambda: (os.write(w, bytes(data)), os.close(w)), daemon=True).start()
    with os.fdopen(r, "rb") as rf:
        reports = []
        got = list(ContainerReader(rf, on_corrupt=reports.append))
    assert [p.dts for p in got] == [0, 1, 3, 4, 5]
    assert len(reports) == 1


def test_unknown_unit_type_is_skipped_by_length() -> None:
    pkts = packets(3)
    data = stream(pkts, seekable=False)
    units = _frame_units(data)
    cut = units[1].offset
    extra = unit_bytes(0x7F, b"future data \xcc\x5a inside")
    reader, got = read_all(data[:cut] + extra + data[cut:])
    assert [p.data for p in got] == [p.data for p in pkts]
    assert [u.unit_type for u in reader.skipped_units] == [0x7F]


def _with_version(major: int, minor: int, seq_tail: bytes = b"", frame_tail: bytes = b"") -> bytes:
    seq = syntax.SequenceHeader.build(sequence_to_dict(SEQ)) + seq_tail
    frame = syntax.FramePayload.build(frame_dict(0, 0, "i")) + frame_tail
    return (
        file_header_bytes(major, minor)
        + unit_bytes(1, seq)
        + unit_bytes(2, frame)
        + unit_bytes(4, b"")
    )


def test_newer_minor_version_with_appended_fields_is_read() -> None:
    major = syntax.VERSION_MAJOR
    reader, got = read_all(_with_version(major, 7, seq_tail=b"\x05new", frame_tail=b"\x09\x09"))
    assert reader.version == (major, 7)
    assert reader.sequence == SEQ
    assert len(got) == 1 and got[0].frame_type == FrameType.I


def test_other_major_versions_are_refused_with_a_hint() -> None:
    newer = syntax.VERSION_MAJOR + 1
    with pytest.raises(BitstreamError, match=f"version {newer}.0.*upgrade"):
        ContainerReader(io.BytesIO(_with_version(newer, 0)))
    older = syntax.VERSION_MAJOR - 1
    with pytest.raises(BitstreamError, match=f"version {older}.1.*re-encode"):
        ContainerReader(io.BytesIO(_with_version(older, 1)))


def test_damaged_file_header_and_foreign_files() -> None:
    data = bytearray(stream(packets(1)))
    data[5] ^= 1
    with pytest.raises(CorruptDataError, match="file header"):
        ContainerReader(io.BytesIO(bytes(data)))
    with pytest.raises(BitstreamError, match="empty"):
        ContainerReader(io.BytesIO(b""))
    with pytest.raises(BitstreamError, match="not a .ccv"):
        ContainerReader(io.BytesIO(b"YUV4MPEG2 W2 H2\n"))
    with pytest.raises(TruncatedStreamError):
        ContainerReader(io.BytesIO(b"CCVS\x01"))


def test_first_unit_must_be_seq() -> None:
    data = file_header_bytes() + unit_bytes(2, syntax.FramePayload.build(frame_dict(0, 0, "i")))
    with pytest.raises(CorruptDataError, match="expected SEQ"):
        ContainerReader(io.BytesIO(data))


def test_frame_payload_that_does_not_parse_is_reported() -> None:
    data = file_header_bytes() + unit_bytes(1, syntax.SequenceHeader.build(sequence_to_dict(SEQ)))
    data += unit_bytes(2, b"\x00\x00\x09") + unit_bytes(2, packets(1)[0].data) + unit_bytes(4, b"")
    reports = []
    _, got = read_all(data, on_corrupt=reports.append)
    assert len(got) == 1 and len(reports) == 1
    with pytest.raises(CorruptDataError, match="frame header does not parse"):
        read_all(data)


def test_open_entry_point(tmp_path: Path) -> None:
    path = tmp_path / "x.ccv"
    with coolchic_stream.open(path, "w", sequence=SEQ) as w:
        for p in packets(2):
            w.write(p)
    with coolchic_stream.open(path) as r:
        assert r.sequence == SEQ
        assert len(list(r)) == 2
    with pytest.raises(BitstreamError):
        coolchic_stream.open(path, "w")
    with pytest.raises(BitstreamError):
        coolchic_stream.open(path, "a")


def test_trailer_bytes_checksum() -> None:
    t = trailer_bytes(77)
    assert t[:4] == b"CCVX" and len(t) == 16
    assert syntax.Trailer.parse(t).index_offset == 77


_VALID = stream(packets(3), seekable=False)


def _drain(data: bytes, resync: bool) -> None:
    try:
        reader = ContainerReader(io.BytesIO(data), on_corrupt=(lambda e: None) if resync else None)
        for _ in reader:
            pass
    except CoolChicStreamError:
        pass


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.booleans())
def test_arbitrary_bytes_never_crash(data: bytes, resync: bool) -> None:
    _drain(data, resync)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(_VALID) - 1), st.binary(min_size=1, max_size=8), st.booleans())
def test_damaged_valid_streams_never_crash(pos: int, junk: bytes, resync: bool) -> None:
    data = _VALID[:pos] + junk + _VALID[pos + len(junk) :]
    _drain(data, resync)


@settings(max_examples=200, deadline=2000)
@given(st.binary(max_size=200))
def test_valid_header_then_garbage_never_crash(tail: bytes) -> None:
    head = file_header_bytes() + unit_bytes(1, syntax.SequenceHeader.build(sequence_to_dict(SEQ)))
    _drain(head + tail, True)
    _drain(head + unit_bytes(2, tail) + unit_bytes(1, tail), True)
    _drain(file_header_bytes() + unit_bytes(1, tail), False)
