"""A decoder that trusts nothing: CRC-valid streams whose fields lie, output that cannot be written,
and the fuzz harness (``tools/fuzz_decode.py``) that re-frames every mutant with fresh CRCs."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from coolchic_stream.bitstream.container import ContainerReader
from coolchic_stream.bitstream.units import UNIT_FRAME, UNIT_SEQ
from coolchic_stream.decoder import DecodeErrors, Decoder, DropCause
from coolchic_stream.errors import CorruptDataError
from coolchic_stream.types import FrameType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import fuzz_decode  # noqa: E402

CONFORMANCE = ROOT / "tests" / "golden" / "conformance.ccv"
ENV = os.environ | {"OMP_NUM_THREADS": "1"}
MIB = 1 << 20


@pytest.fixture(scope="module")
def stream() -> fuzz_decode.Stream:
    """The conformance vector (24x16 4:2:0 8-bit, random access: I, P, B) as editable units."""
    return fuzz_decode.Stream.parse(CONFORMANCE.read_bytes())


def with_frame(stream: fuzz_decode.Stream, index: int, **fields: object) -> bytes:
    units = list(stream.units)
    i = stream.frames()[index]
    units[i] = (UNIT_FRAME, fuzz_decode.edit_frame(units[i][1], **fields))
    return fuzz_decode.Stream(units, stream.version).to_bytes()


def with_sequence(stream: fuzz_decode.Stream, **fields: object) -> bytes:
    units = list(stream.units)
    units[0] = (UNIT_SEQ, fuzz_decode.edit_sequence(units[0][1], **fields))
    return fuzz_decode.Stream(units, stream.version).to_bytes()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    import coolchic_stream.cli  # noqa: F401 - loaded before the children fork

    return tmp_path_factory.mktemp("hostile")


def decode(data: bytes, workdir: Path, memory: int = fuzz_decode.MEMORY_LIMIT) -> fuzz_decode.Outcome:
    return fuzz_decode.decode_in_child(data, workdir, memory_limit=memory, time_limit=60)


def test_the_unedited_vector_decodes(stream, workdir) -> None:
    assert stream.to_bytes() == CONFORMANCE.read_bytes()[: len(stream.to_bytes())]
    outcome = decode(stream.to_bytes(), workdir)
    assert (outcome.status, outcome.problem) == (0, None), outcome.message


def test_a_frame_declaring_16383x16383_is_refused_before_anything_is_allocated(stream, workdir) -> None:
    data = with_frame(stream, 0, width=16383, height=16383)
    assert len(data) < 1000
    outcome = decode(data, workdir, memory=1 << 30)
    assert outcome.status == 4, outcome.message
    assert outcome.problem is None, outcome.problem
    assert outcome.rss_bytes < 500 * MIB
    assert outcome.seconds < 5  # "well under a second" on an idle machine; this one is shared
    assert "FRAME unit at byte 57: frame size 16383x16383" in outcome.message


@pytest.mark.parametrize(
    "fields",
    [
        {"width": 48}, {"height": 8}, {"width": 23}, {"info_bit_depth": 10}, {"info_data_type": 1},
        {"info_data_type": 2},
    ],
)
@pytest.mark.parametrize("frame", [0, 1, 2])
def test_frame_fields_that_contradict_the_sequence_are_corrupt_data(stream, workdir, frame, fields) -> None:
    outcome = decode(with_frame(stream, frame, **fields), workdir)
    assert outcome.status == 4, outcome.message
    assert outcome.problem is None, outcome.problem


def test_an_explicit_architecture_beyond_the_parameter_limit_is_refused_before_decoding(stream, workdir) -> None:
    """200 synthesis layers of 255 channels and 15x15 kernels (2.6e9 parameters) in a 600-byte
    frame: refused from the header, nothing allocated, no bins decoded."""
    from construct import Container

    from coolchic_stream.bitstream.syntax import FramePayload

    units = list(stream.units)
    i = stream.frames()[0]
    frame = FramePayload.parse(units[i][1])
    wide = {"out_channels": 255, "kernel_size": 15, "residual": False, "relu": True}
    frame.coolchics[0].architecture = "explicit"
    frame.coolchics[0].explicit = Container(
        n_output=3, latent_resolution_min=0, latent_resolution_max=4, arm_context=8, arm_hidden_layers=2,
        arm_stabiliser=True, ups_kernel=8, ups_preconcat_kernel=7, synthesis_stabiliser=False,
        synthesis_layers=[Container(wide)] * 200 + [Container(out_channels=3, kernel_size=3, residual=False, relu=False)],
    )
    units[i] = (UNIT_FRAME, FramePayload.build(frame))
    outcome = decode(fuzz_decode.Stream(units, stream.version).to_bytes(), workdir)
    assert outcome.status == 4, outcome.message
    assert outcome.problem is None, outcome.problem
    assert "NN parameters, more than the format's 32768" in outcome.message
    assert outcome.seconds < 10 and outcome.rss_bytes < 500 * MIB


@pytest.mark.parametrize("pts", [1 << 40, 1000, 3])
def test_an_anchor_a_world_away_from_its_reference_is_corrupt_data(stream, workdir, pts) -> None:
    """P2 claims display index 2^40: its group's B layout (found by the fuzzer) is not built."""
    outcome = decode(with_frame(stream, 1, display_index=pts), workdir)
    assert outcome.status == 4, outcome.message
    assert outcome.problem is None, outcome.problem
    assert f"P frame {pts} predicts from frame 0, not 1 to 2 (the GOP size) frames before it" in outcome.message
    assert outcome.seconds < 10 and outcome.rss_bytes < 500 * MIB


@pytest.mark.parametrize(
    "fields,words",
    [
        ({"width": 48}, "frame size 24x16 differs"),
        ({"height": 8}, "frame size 24x16 differs"),
        ({"bit_depth": 10}, "frame bit depth 8 differs"),
        ({"data_type": 2}, "frame data type YUV420 differs"),
        ({"gop_size": 0}, "gop_size 0 is out of range"),
        ({"intra_period": 0}, "intra_period 0 is not positive"),
        ({"gop_structure": 0}, "contradict its all-intra structure"),
        ({"gop_structure": 1}, "B frame in a lowdelay stream"),
        ({"width": 1 << 20}, "too large"),
    ],
)
def test_sequence_fields_that_contradict_the_frames_are_corrupt_data(stream, workdir, fields, words) -> None:
    """Exit 4 (damage), not a y4m whose header contradicts its frames, nor a --gop-size usage error."""
    outcome = decode(with_sequence(stream, **fields), workdir)
    assert outcome.status == 4, outcome.message
    assert outcome.problem is None, outcome.problem
    assert words in outcome.message


def test_library_decoder_without_a_sequence_refuses_a_frame_of_another_size(stream) -> None:
    """No SEQ given: the first frame's format is the stream's; a P frame of another size predicting
    from it is corrupt data (it was a RuntimeError from a tensor shape mismatch)."""
    packets = list(ContainerReader(CONFORMANCE))
    decoder = Decoder(None, pipeline=False, errors=DecodeErrors.RAISE)
    decoder.send(packets[0])
    bad = fuzz_decode.edit_frame(packets[1].data, width=48)
    with pytest.raises(CorruptDataError, match="frame size 48x16 differs"):
        decoder.send(bad)


def test_references_of_another_format_are_refused(stream) -> None:
    """Frame-by-frame the check against the first frame is what keeps the references' size right."""
    packets = list(ContainerReader(CONFORMANCE))
    decoder = Decoder(None, pipeline=False, errors=DecodeErrors.RAISE)
    decoder._format = None  # noqa: SLF001 - as if no frame had set it: the reference check alone
    decoder.send(packets[0])
    decoder._format = None  # noqa: SLF001
    with pytest.raises(CorruptDataError, match="predicts from frame 0 of another format"):
        decoder.send(fuzz_decode.edit_frame(packets[1].data, height=32))
    assert packets[1].frame_type == FrameType.P


def test_the_library_decoder_recovers_by_itself_and_lists_what_it_dropped() -> None:
    """What the CLI does, a library user gets from Decoder alone: a frame that fails is dropped,
    the frames after it wait for the next I frame, the pictures before it still come out."""
    packets = list(ContainerReader(CONFORMANCE))  # I0 P2 B1 (gop 2)
    i0, p2, b1 = packets
    damaged = fuzz_decode.edit_frame(p2.data, info_warp_filter_size=4)
    decoder = Decoder(None, pipeline=False)
    out = decoder.send(i0) + decoder.send(damaged) + decoder.send(b1) + decoder.send(i0.data) + decoder.flush()
    assert [p.pts for p in out] == [0, 0]  # I0, then I0 again as a new segment
    assert [(d.pts, d.cause) for d in decoder.dropped] == [(2, DropCause.UNDECODABLE), (1, DropCause.AFTER_LOSS)]
    assert "frame pts 2: " in decoder.dropped[0].message and "warp filter size 4" in decoder.dropped[0].message
    assert decoder.dropped[1].message == "frame pts 1 follows a lost frame"

    decoder = Decoder(None, pipeline=False)
    decoder.lost(CorruptDataError("unit at byte 57 fails its CRC"))  # what the container reports
    assert decoder.send(p2) == [] and [d.cause for d in decoder.dropped] == [DropCause.DAMAGED_UNIT, DropCause.AFTER_LOSS]

    with pytest.raises(CorruptDataError, match="warp filter size 4"):
        Decoder(None, pipeline=False, errors=DecodeErrors.RAISE).send(damaged)


# ------------------------------------------------------------------ output errors


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coolchic_stream", *args], capture_output=True, env=ENV, cwd=ROOT, timeout=240, **kw)


def one_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert not fuzz_decode.LEAKS.search(lines[0]), lines[0]
    return lines[0]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", ["y4m", "yuv", "md5"])
def test_decoding_to_a_full_disk_is_a_media_error(fmt) -> None:
    result = run_cli("decode", str(CONFORMANCE), "-o", "/dev/full", "--format", fmt)
    assert result.returncode == 3
    assert "cannot write '/dev/full': No space left on device (hint: free some space" in one_line(result.stderr)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_encoding_to_a_full_disk_is_a_media_error(tmp_path) -> None:
    y4m = tmp_path / "in.y4m"
    run_cli("decode", str(CONFORMANCE), "-o", str(y4m), check=True)
    result = run_cli("encode", str(y4m), "/dev/full", "--preset", "test", "--iterations", "2", "--quiet")
    assert result.returncode == 3
    assert "cannot write '/dev/full': No space left on device" in one_line(result.stderr)


def test_decode_refuses_to_write_video_to_a_terminal() -> None:
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "coolchic_stream", "decode", str(CONFORMANCE), "-o", "-"],
            stdout=terminal, stderr=subprocess.PIPE, env=ENV, cwd=ROOT, timeout=240,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 2
    assert "refusing to write binary video to a terminal" in one_line(result.stderr)


def test_an_undecodable_input_file_names_no_errno(tmp_path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video at all" * 50)
    result = run_cli("encode", str(junk), str(tmp_path / "out.ccv"), "--quiet")
    assert result.returncode == 3
    assert "Invalid data found when processing input" in one_line(result.stderr)


# ------------------------------------------------------------------ the fuzz harness


def test_the_harness_recomputes_crcs_so_edits_reach_the_parsers(stream) -> None:
    data = with_sequence(stream, width=48)
    reader = ContainerReader(__import__("io").BytesIO(data))
    assert reader.sequence.width == 48  # the CRC passed: the edit reaches the SEQ parser


def test_a_short_fuzz_campaign_finds_no_crash_hang_leak_or_contradiction() -> None:
    campaign = fuzz_decode.run_campaign(fuzz_decode.seed_streams(), mutants=60, seed=1)
    assert campaign.mutants == 60
    assert not campaign.failures, [(kind, o.problem, o.message[:200]) for kind, o in campaign.failures[:5]]
    assert campaign.max_rss < fuzz_decode.MEMORY_LIMIT
    assert set(campaign.statuses) <= {0, 4}
    assert campaign.statuses[4] > 0  # mutants do reach the checks


@pytest.mark.slow
def test_a_long_fuzz_campaign_finds_no_crash_hang_leak_or_contradiction() -> None:
    campaign = fuzz_decode.run_campaign(fuzz_decode.seed_streams(), mutants=2000, seed=2)
    assert not campaign.failures, [(kind, o.problem, o.message[:200]) for kind, o in campaign.failures[:5]]


def test_inspect_reports_a_frame_that_contradicts_the_sequence(stream, tmp_path) -> None:
    from coolchic_stream.report import inspect_stream

    path = tmp_path / "bad.ccv"
    path.write_bytes(with_frame(stream, 1, width=4000))
    report = inspect_stream(str(path))
    assert [f["display_index"] for f in report["frames"]] == [0, 1]
    assert report["errors"] == ["FRAME unit at byte 465: frame size 4000x16 differs from the sequence header's 24x16"]


def test_a_garbled_text_field_is_named_not_quoted(stream, workdir) -> None:
    """The SEQ's encoder name with bytes that are not UTF-8 (and happen to spell '->'): the
    message says what is wrong without construct's path or the raw bytes."""
    units = list(stream.units)
    seq = bytearray(units[0][1])
    seq[-4:] = b"\xff->\xd8"
    units[0] = (UNIT_SEQ, bytes(seq))
    outcome = decode(fuzz_decode.Stream(units, stream.version).to_bytes(), workdir)
    assert outcome.status == 4 and outcome.problem is None, (outcome.problem, outcome.message)
    assert "sequence header does not parse: a text field is not valid UTF-8" in outcome.message


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_stream_refused_from_its_headers_never_loads_torch(stream, tmp_path) -> None:
    """The 16383x16383 frame as a user meets it: the whole command is a small, quick exit 4 (the
    reconstruction and torch are imported only when a frame is really decoded)."""
    path = tmp_path / "hostile.ccv"
    path.write_bytes(with_frame(stream, 0, width=16383, height=16383))
    # peak RSS from /proc (VmHWM): getrusage's maxrss would include the forked pytest before exec
    script = (
        "import re, sys; from coolchic_stream.cli import main; "
        f"rc = main(['decode', {str(path)!r}, '-o', {str(tmp_path / 'out.y4m')!r}]); "
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]; "
        "print('torch' in sys.modules, hwm); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, env=ENV, cwd=ROOT, timeout=120)
    assert result.returncode == 4, result.stderr
    torch_loaded, rss_kib = result.stdout.decode().split()
    assert torch_loaded == "False"
    assert int(rss_kib) * 1024 < 200 * MIB, result.stderr.decode()
    assert "frame size 16383x16383 is beyond the format's limits" in result.stderr.decode()
