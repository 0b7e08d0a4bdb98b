"""Tests of the coolchic-stream command line: errors and exit codes, inspect, pipes, end-to-end encode/decode."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from coolchic_stream.bitstream import syntax
from coolchic_stream.bitstream.container import ContainerReader, ContainerWriter
from coolchic_stream import framecodec
from coolchic_stream.cli import main
from coolchic_stream.entropy.nn_weights import encode_nn
from coolchic_stream.entropy.stream import seal
from coolchic_stream.media import open_input
from coolchic_stream.media import raw_bytes
from coolchic_stream.media.y4m import Y4mReader, Y4mWriter
from coolchic_stream.types import ChromaSiting, ColorRange, DataType, FrameType, GopStructure, Packet, Picture, SequenceInfo

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
SAMPLE = ROOT / "samples" / "bbb_128x128_8f.y4m"
REGENERATE = os.environ.get("CCV_REGENERATE_GOLDEN") == "1"
FAST = ["--preset", "test", "--iterations", "10", "--quiet"]
# One torch thread per process: on a shared 2-core box, torch's default thread pool spins
# against other processes and made a 5 s encode take over a minute.
ENV = os.environ | {"OMP_NUM_THREADS": "1"}


def run_cli(*args: str, stdin: bytes | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "coolchic_stream", *args],
        input=stdin, capture_output=True, cwd=ROOT, timeout=timeout, env=ENV,
    )


def assert_one_line_error(stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("coolchic-stream: error: ")
    assert "Traceback" not in stderr


def tiny_clip(path: Path, frames: int = 2) -> list[Picture]:
    """frames x 24x16 crops of the Big Buck Bunny sample, with tags that must survive a round trip."""
    seq = SequenceInfo(24, 16, DataType.YUV420, 8, Fraction(30000, 1001), Fraction(1, 1), ColorRange.FULL, ChromaSiting.LEFT)
    pics = []
    with open_input(str(SAMPLE), frames=frames) as src:
        for p in src:
            y, u, v = p.planes
            pics.append(Picture((y[48:64, 52:76].copy(), u[24:32, 26:38].copy(), v[24:32, 26:38].copy()), 8, DataType.YUV420, p.pts))
    with open(path, "wb") as f:
        w = Y4mWriter(f, seq)
        for p in pics:
            w.write(p)
    return pics


# ------------------------------------------------------------------ usage and input errors (no codec)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["encode"],
        ["encode", "a.y4m", "b.ccv", "--preset", "turbo"],
        ["encode", "a.y4m", "b.ccv", "--frames", "0"],
        ["encode", "a.y4m", "b.ccv", "--lambda", "5"],
        ["encode", "a.y4m", "b.ccv", "--stats", "s.txt"],
        ["encode", "a.y4m", "b.ccv", "--gop", "ra", "--gop-size", "100"],
        ["encode", "a.y4m", "b.ccv", "--seed", "-1"],
        ["encode", "a.y4m", "b.ccv", "--seed", "4294967296"],
        ["encode", "a.y4m", "b.ccv", "--seed", "one"],
        ["decode", "x.ccv"],
        ["decode", "x.ccv", "-o", "out.gif"],
        ["decode", "x.ccv", "-o", "-", "--format", "mov"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_error(captured.err)


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "cuda:x"])
def test_an_unavailable_device_is_a_usage_error_before_any_output(
    device: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: device == "cuda:3")  # "cuda:3": one GPU only
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    tiny_clip(tmp_path / "in.y4m")
    assert main(["encode", str(tmp_path / "in.y4m"), str(tmp_path / "out.ccv"), "--device", device, "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"--device '{device}'" in captured.err
    assert_one_line_error(captured.err)
    assert not (tmp_path / "out.ccv").exists()


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "encode" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content,code,message",
    [
        (b"", 3, "empty"),
        (bytes(range(256)) * 4, 3, "cannot read"),
        (b"YUV4MPEG2 W24 Hx\nFRAME\n", 3, "not a number"),
        (b"YUV4MPEG2 W24 H16 C422\nFRAME\n" + bytes(768), 3, "C422 is not supported"),
        (b"YUV4MPEG2 W24 H16 C420jpeg\n", 3, "no frame"),
    ],
)
def test_bad_encode_inputs(tmp_path: Path, content: bytes, code: int, message: str, capsys) -> None:
    src = tmp_path / "in.y4m"
    src.write_bytes(content)
    assert main(["encode", str(src), str(tmp_path / "o.ccv"), *FAST]) == code
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert message in err
    assert not (tmp_path / "o.ccv").exists()  # nothing is created for an unusable input


@pytest.mark.parametrize("command", [["decode", "{}", "-o", "{}.y4m"], ["inspect", "{}"]])
@pytest.mark.parametrize("content,message", [(b"", "empty"), (os.urandom(300), "not a .ccv"), (b"CCVS\x01", "cut")])
def test_bad_ccv_inputs(tmp_path: Path, command, content: bytes, message: str, capsys) -> None:
    path = tmp_path / "bad.ccv"
    path.write_bytes(content)
    argv = [a.format(path) for a in command]
    assert main(argv) == 4
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert message in err


def test_internal_errors_are_one_line_too(monkeypatch, capsys) -> None:
    import coolchic_stream.cli as cli

    def boom(args):
        raise RuntimeError("unexpected state")

    monkeypatch.setattr(cli, "cmd_inspect", boom)
    monkeypatch.delenv("COOLCHIC_STREAM_TRACEBACK", raising=False)
    assert main(["inspect", "x.ccv"]) == 1
    err = capsys.readouterr().err
    assert_one_line_error(err)
    assert "RuntimeError: unexpected state" in err
    monkeypatch.setenv("COOLCHIC_STREAM_TRACEBACK", "1")
    with pytest.raises(RuntimeError):
        main(["inspect", "x.ccv"])


def test_missing_input_is_a_media_error(tmp_path: Path, capsys) -> None:
    assert main(["encode", str(tmp_path / "nope.mp4"), str(tmp_path / "o.ccv")]) == 3
    assert_one_line_error(capsys.readouterr().err)


def _synthetic_ccv(path: Path) -> None:
    seq = SequenceInfo(24, 16, chroma_siting=ChromaSiting.CENTER, encoder="test",
                       gop_structure=GopStructure.RANDOM_ACCESS, gop_size=2, intra_period=8)  # it holds P and B frames
    section = {
        "architecture": "explicit", "explicit": {
            "n_output": 3, "latent_resolution_min": 0, "latent_resolution_max": 4,
            "arm_context": 8, "arm_hidden_layers": 2, "arm_stabiliser": True, "ups_kernel": 8, "ups_preconcat_kernel": 7,
            "synthesis_layers": [{"out_channels": 16, "kernel_size": 1, "residual": False, "relu": True},
                                 {"out_channels": 3, "kernel_size": 3, "residual": False, "relu": False}],
            "synthesis_stabiliser": False},
        "networks": {
            "arm": {"mode": None, "reference": None, "weight_log2_step": -7, "bias_log2_step": -9, "weight_expgolomb_order": 1, "bias_expgolomb_order": 2},
            "upsampling": {"mode": None, "reference": None, "weight_log2_step": -8, "bias_log2_step": -9, "weight_expgolomb_order": 1, "bias_expgolomb_order": 2},
            "synthesis": {"mode": None, "reference": None, "weight_log2_step": -6, "bias_log2_step": -9, "weight_expgolomb_order": 0, "bias_expgolomb_order": 2}},
        "data": bytes(51),
    }
    none = {"weight_log2_step": None, "bias_log2_step": None, "weight_expgolomb_order": None, "bias_expgolomb_order": None}

    def predicted(t: str) -> dict:  # a P/B frame's residue: arm copied from reference 0, upsampling delta-coded, synthesis fresh
        n = section["networks"]
        ref = 0 if t == "b" else None
        outputs = {"p": 4, "b": 5}[t]  # + alpha (+ beta): a residue that predicts
        explicit = section["explicit"] | {"n_output": outputs, "synthesis_layers": [
            section["explicit"]["synthesis_layers"][0], section["explicit"]["synthesis_layers"][1] | {"out_channels": outputs}]}
        return section | {"explicit": explicit, "networks": {
            "arm": none | {"mode": "copy", "reference": ref},
            "upsampling": n["upsampling"] | {"mode": "delta", "reference": ref, "weight_log2_step": None, "bias_log2_step": None},
            "synthesis": n["synthesis"] | {"mode": "fresh"}}}
    with ContainerWriter(path, seq) as w:
        for dts, (pts, t, refs) in enumerate([(0, "i", []), (2, "p", [0]), (1, "b", [0, 2])]):
            payload = syntax.FramePayload.build({
                "display_index": pts, "coding_index": dts,
                "info": {"frame_type": t, "data_type": "yuv420", "bit_depth": 8, "depth": 1 if t == "b" else 0,
                         "warp_filter_size": 0 if t == "i" else 8},
                "width": 24, "height": 16,
                "references": [{"display_index": r, "translation_y": -1, "translation_x": 2} for r in refs],
                "coolchics": [predicted(t) if refs else section]
                + ([predicted(t) | {"architecture": "mop", "explicit": None}] if refs else []),
            })
            w.write(Packet(payload, pts, dts, FrameType[t.upper()]))


def test_inspect_json_and_table(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.ccv"
    _synthetic_ccv(path)
    assert main(["inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == f"{syntax.VERSION_MAJOR}.{syntax.VERSION_MINOR}"
    assert report["sequence"]["width"] == 24 and report["sequence"]["chroma_siting"] == "center"
    frames = report["frames"]
    assert [(f["coding_index"], f["display_index"], f["type"]) for f in frames] == [(0, 0, "I"), (1, 2, "P"), (2, 1, "B")]
    assert [r["display_index"] for r in frames[2]["references"]] == [0, 2]
    assert frames[2]["depth"] == 1
    assert [c["role"] for c in frames[1]["coolchics"]] == ["residue", "motion"]
    assert frames[0]["coolchics"][0]["synthesis"] == "16-1-linear-relu,3-3-linear-none"
    motion = frames[1]["coolchics"][1]  # named by preset: resolved for a 24x16 P frame
    assert motion["architecture"] == "mop" and motion["n_output"] == 2 and motion["latent_resolutions"] == [2, 5]
    assert motion["synthesis"] == "16-1-linear-relu,2-1-linear-none" and motion["arm_context"] == 8
    assert frames[0]["coolchics"][0]["stream_bytes"] == 51
    # symbol counts come from the architecture: grids 24x16, 12x8, 6x4, 3x2, 2x1 / motion 6x4 .. 1x1
    assert frames[0]["coolchics"][0]["n_symbols"] == 512 and motion["n_symbols"] == 24 + 6 + 2 + 1
    assert frames[1]["coolchics"][1]["modules"]["synthesis"]["weight_log2_step"] == -6
    residue_b = frames[2]["coolchics"][0]["modules"]
    assert [residue_b[name]["mode"] for name in ("arm", "upsampling", "synthesis")] == ["copy", "delta", "fresh"]
    assert residue_b["arm"]["source"] == residue_b["upsampling"]["source"] == 0 and residue_b["synthesis"]["source"] is None
    assert residue_b["arm"]["bits"] == 0 and residue_b["upsampling"]["weight_log2_step"] is None
    assert frames[0]["coolchics"][0]["modules"]["arm"]["mode"] == "fresh"  # an I frame's modules: always fresh
    # unit bytes = payload + 2 sync + 1 type + LEB128 length + 4 CRC
    assert [f["unit_bytes"] - f["payload_bytes"] for f in frames] == [
        7 + (1 if f["payload_bytes"] < 128 else 2) for f in frames
    ]
    assert {f["payload_bytes"] < 128 for f in frames} == {True, False}  # both LEB128 lengths are covered
    assert report["index"]["random_access_points"][0]["offset"] == frames[0]["offset"]
    assert report["errors"] == [] and report["ended"]
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr()
    assert "frames (coding order)" in out.out and "motion" in out.out and out.err == ""
    assert "copy←0" in out.out and "delta←0" in out.out


def test_inspect_reports_corruption_but_lists_the_rest(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.ccv"
    _synthetic_ccv(path)
    data = bytearray(path.read_bytes())
    report = json.loads(run_cli("inspect", str(path), "--json").stdout)
    data[report["frames"][1]["offset"] + 10] ^= 0x55
    path.write_bytes(bytes(data))
    assert main(["inspect", str(path), "--json"]) == 4
    captured = capsys.readouterr()
    damaged = json.loads(captured.out)
    assert [f["coding_index"] for f in damaged["frames"]] == [0, 2]
    assert "CRC" in damaged["errors"][0]
    assert_one_line_error(captured.err)


# ------------------------------------------------------------------ end to end with the real codec


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("e2e")
    pics = tiny_clip(tmp / "in.y4m")
    loud = [a for a in FAST if a != "--quiet"] + ["--gop", "intra"]  # every frame a random-access point
    proc = run_cli("encode", str(tmp / "in.y4m"), str(tmp / "out.ccv"), *loud, "--stats", str(tmp / "s.json"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b""  # the UI never touches stdout
    # stderr is not a terminal here: plain per-frame lines and the summary instead of bars
    lines = proc.stderr.decode().splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("frame ")] == ["frame 0 I pts 0", "frame 1 I pts 1"]
    assert any("bpp" in line and "kbit/s" in line for line in lines)
    return {"dir": tmp, "pics": pics, "ccv": tmp / "out.ccv"}


def _y4m_frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data), format="yuv4mpegpipe") as c:
        return [np.frombuffer(f.planes[0], np.uint8).reshape(16, -1)[:, :24].copy() for f in c.decode(video=0)]


def test_encode_writes_stats_and_a_valid_stream(encoded: dict) -> None:
    stats = json.loads((encoded["dir"] / "s.json").read_text())
    assert [f["display_index"] for f in stats["frames"]] == [0, 1]
    assert all(f["bits"] > 0 and f["psnr_y"] > 0 and f["type"] == "I" for f in stats["frames"])
    # the trained model's PSNR-YUV before NN quantization, near the coded frame's
    assert all(abs(f["train_psnr_yuv"] - f["psnr_yuv"]) < 3 for f in stats["frames"]), stats["frames"]
    with ContainerReader(encoded["ccv"]) as r:
        assert r.sequence.frame_rate == Fraction(30000, 1001) and r.sequence.chroma_siting == ChromaSiting.LEFT
        pkts = list(r)
    assert sum(len(p.data) * 8 for p in pkts) == sum(f["bits"] for f in stats["frames"])


def test_decode_to_stdout_is_read_by_pyav_and_keeps_tags(encoded: dict) -> None:
    proc = run_cli("decode", str(encoded["ccv"]), "-o", "-")
    assert proc.returncode == 0, proc.stderr
    header = proc.stdout.split(b"\n", 1)[0]
    assert header == b"YUV4MPEG2 W24 H16 F30000:1001 Ip A1:1 C420mpeg2 XCOLORRANGE=FULL"
    frames = _y4m_frames(proc.stdout)
    assert len(frames) == 2
    stats = json.loads((encoded["dir"] / "s.json").read_text())["frames"]
    for got, src, row in zip(frames, encoded["pics"], stats):
        # What the decoder wrote is what the encoder measured: the decoder's picture is the
        # encoder's reconstruction, and the y4m path adds no change of its own.
        mse = np.mean((got.astype(float) - src.planes[0]) ** 2)
        assert 10 * np.log10(255**2 / mse) == pytest.approx(row["psnr_y"], abs=1e-3)
    md5 = run_cli("decode", str(encoded["ccv"]), "-o", "-", "--format", "md5")
    assert md5.returncode == 0, md5.stderr
    decoded = list(Y4mReader(io.BytesIO(proc.stdout)))
    assert md5.stdout.decode() == hashlib.md5(b"".join(raw_bytes(p) for p in decoded)).hexdigest() + "\n"


def test_encode_stdin_to_stdout_then_decode_stdin_to_stdout(encoded: dict) -> None:
    y4m = (encoded["dir"] / "in.y4m").read_bytes()
    enc = run_cli("encode", "-", "-", *FAST, stdin=y4m)
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout[:4] == b"CCVS"
    with ContainerReader(io.BytesIO(enc.stdout)) as r:
        packets = list(r)
        assert len(packets) == 2 and r.index is None  # a pipe: no index, just END
    assert [p.frame_type for p in packets] == [FrameType.I, FrameType.P]  # default: random access
    dec = run_cli("decode", "-", "-o", "-", stdin=enc.stdout)
    assert dec.returncode == 0, dec.stderr
    assert len(_y4m_frames(dec.stdout)) == 2


def test_broken_pipe_ends_quietly(encoded: dict) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "coolchic_stream", "decode", str(encoded["ccv"]), "-o", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )
    proc.stdout.close()  # the reader goes away before the first byte (ffplay closed)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert b"Traceback" not in err and b"Error" not in err


def test_decode_skips_a_corrupted_frame_and_continues(encoded: dict, tmp_path: Path) -> None:
    data = bytearray(encoded["ccv"].read_bytes())
    first = json.loads(run_cli("inspect", str(encoded["ccv"]), "--json").stdout)["frames"][0]
    data[first["offset"] + 20] ^= 0xFF
    bad = tmp_path / "bad.ccv"
    bad.write_bytes(bytes(data))
    proc = run_cli("decode", str(bad), "-o", "-")
    assert proc.returncode == 4
    assert b"CRC" in proc.stderr and b"Traceback" not in proc.stderr
    assert len(_y4m_frames(proc.stdout)) == 1  # frame 1 (an I frame) still decodes


def test_decode_drops_frames_predicted_from_a_corrupted_one(tmp_path: Path) -> None:
    """P1 copies or delta-codes its networks from I0; I0's unit is damaged: neither comes out,
    the next segment decodes as it would undamaged."""
    clip, ccv = tmp_path / "in.y4m", tmp_path / "s.ccv"
    tiny_clip(clip, frames=4)
    proc = run_cli("encode", str(clip), str(ccv), *FAST, "--gop", "ra", "--gop-size", "2", "--intra-period", "2", "--lambda", "3e-3", "--fixed-gop")
    assert proc.returncode == 0, proc.stderr
    frames = json.loads(run_cli("inspect", str(ccv), "--json").stdout)["frames"]
    assert [(f["display_index"], f["type"]) for f in frames] == [(0, "I"), (1, "P"), (2, "I"), (3, "P")]
    assert any(m["source"] == 0 for c in frames[1]["coolchics"] for m in c["modules"].values())
    clean = _y4m_frames(run_cli("decode", str(ccv), "-o", "-").stdout)
    data = bytearray(ccv.read_bytes())
    data[frames[0]["offset"] + 20] ^= 0xFF
    bad = tmp_path / "bad.ccv"
    bad.write_bytes(bytes(data))
    proc = run_cli("decode", str(bad), "-o", "-")
    assert proc.returncode == 4 and b"Traceback" not in proc.stderr
    got = _y4m_frames(proc.stdout)
    assert len(got) == 2 and all(np.array_equal(a, b) for a, b in zip(got, clean[2:]))


def test_inspect_splits_each_stream_between_nn_and_latents(encoded: dict) -> None:
    report = json.loads(run_cli("inspect", str(encoded["ccv"]), "--json").stdout)
    with ContainerReader(encoded["ccv"]) as r:
        packets = list(r)
    assert len(packets) == len(report["frames"]) > 0
    total = 0.0
    for frame, packet in zip(report["frames"], packets):
        _, coded = framecodec.parse_payload(packet.data)
        for section, cc in zip(frame["coolchics"], coded, strict=True):
            # the same bins in a stream of their own: its flush, less the bytes cut (read as 0xFF)
            alone = 8 * len(seal([encode_nn(cc.modules)]))
            assert alone - 40 <= section["nn_bits"] <= alone + 24
            assert 0 < section["nn_bits"] <= 8 * section["stream_bytes"] + 24
            total += section["nn_bits"]
    assert report["totals"]["nn_bits"] == pytest.approx(total, abs=0.5)


def test_decode_truncated_stream_keeps_complete_frames(encoded: dict, tmp_path: Path) -> None:
    data = encoded["ccv"].read_bytes()
    second = json.loads(run_cli("inspect", str(encoded["ccv"]), "--json").stdout)["frames"][1]
    cut = tmp_path / "cut.ccv"
    cut.write_bytes(data[: second["offset"] + 7])
    proc = run_cli("decode", str(cut), "-o", "-")
    assert proc.returncode == 4
    assert_one_line_error(proc.stderr.decode())
    assert b"truncated" in proc.stderr
    assert len(_y4m_frames(proc.stdout)) == 1


INTERRUPT_SCRIPT = r"""
import sys
import coolchic_stream.encoder as encoder_module
from coolchic_stream.cli import main
original = encoder_module.Encoder._encode
calls = []
def code_one(self, job, *rest):
    calls.append(job.display_index)
    if len(calls) == 4:
        raise KeyboardInterrupt  # what Ctrl-C does in the middle of the fourth coded frame
    return original(self, job, *rest)
encoder_module.Encoder._encode = code_one
sys.exit(main(sys.argv[1:]))
"""


def test_an_interrupted_encode_keeps_every_finished_frame(tmp_path: Path) -> None:
    """Random access, gop 4: coding order 0 | 4 2 1 3. Ctrl-C while frame 1 is coded keeps 0, 4 and
    2 (before, a group's packets left together and only frame 0 was kept); the file decodes."""
    tiny_clip(tmp_path / "in.y4m", frames=5)
    out = tmp_path / "o.ccv"
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPT_SCRIPT, "encode", str(tmp_path / "in.y4m"), str(out), *FAST,
         "--gop", "ra", "--gop-size", "4", "--intra-period", "8", "--fixed-gop"],
        capture_output=True, cwd=ROOT, timeout=240, env=ENV,
    )
    assert proc.returncode == 130
    assert b"interrupted: 3 finished frame(s)" in proc.stderr and b"Traceback" not in proc.stderr
    with ContainerReader(out) as r:
        assert [p.pts for p in r] == [0, 4, 2]
        assert r.ended and r.index["frame_count"] == 3
    decoded = run_cli("decode", str(out), "-o", "-")
    assert decoded.returncode == 0, decoded.stderr
    assert len(_y4m_frames(decoded.stdout)) == 3


def test_conformance_vector() -> None:
    """A fixed stream must keep decoding to the same samples (regenerate: CCV_REGENERATE_GOLDEN=1)."""
    ccv, md5_file = GOLDEN / "conformance.ccv", GOLDEN / "conformance.md5"
    if REGENERATE:
        clip = GOLDEN / "conformance_source.y4m"
        tiny_clip(clip, frames=3)
        # I0, P2, B1: every frame type, both Cool-chics, both references, NN modules fresh, copied and delta-coded
        proc = run_cli("encode", str(clip), str(ccv), "--preset", "test", "--iterations", "40", "--quiet",
                       "--gop", "ra", "--gop-size", "2", "--intra-period", "8", "--intra-check", "off", "--lambda", "3e-3",
                       "--fixed-gop")
        clip.unlink()
        assert proc.returncode == 0, proc.stderr
        md5 = run_cli("decode", str(ccv), "-o", str(md5_file))
        assert md5.returncode == 0, md5.stderr
    assert ccv.exists(), "run with CCV_REGENERATE_GOLDEN=1 to create the conformance vector"
    assert ccv.stat().st_size < 8192
    with ContainerReader(ccv) as r:
        assert sorted(str(p.frame_type.name) for p in r) == ["B", "I", "P"]
    from coolchic_stream.report import inspect_stream

    modes = {m["mode"] for f in inspect_stream(str(ccv))["frames"] for c in f["coolchics"] for m in c["modules"].values()}
    assert modes == {"fresh", "copy", "delta"}  # networks sent each way
    proc = run_cli("decode", str(ccv), "-o", "-", "--format", "md5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == md5_file.read_text()
    piped = run_cli("decode", "-", "-o", "-", "--format", "md5", stdin=ccv.read_bytes())  # a pipe: no seeking
    assert piped.returncode == 0 and piped.stdout == proc.stdout


# ------------------------------------------------------------------ outputs that would clobber inputs, pipes


def test_input_and_output_that_are_one_file_are_refused(encoded: dict, tmp_path: Path) -> None:
    clip = tmp_path / "in.y4m"
    tiny_clip(clip)
    before = clip.read_bytes()
    link = tmp_path / "link.y4m"
    link.symlink_to(clip)
    for out in (str(clip), str(tmp_path / "." / "in.y4m"), str(link)):
        proc = run_cli("encode", str(clip), out, *FAST)
        assert proc.returncode == 2
        assert_one_line_error(proc.stderr.decode())
        assert b"same file" in proc.stderr
    assert clip.read_bytes() == before
    ccv = tmp_path / "s.ccv"
    ccv.write_bytes(encoded["ccv"].read_bytes())
    proc = run_cli("decode", str(ccv), "-o", str(ccv), "--format", "md5")
    assert proc.returncode == 2 and b"same file" in proc.stderr
    assert ccv.read_bytes() == encoded["ccv"].read_bytes()


def test_stats_into_a_missing_folder_fails_before_encoding(tmp_path: Path) -> None:
    clip = tmp_path / "in.y4m"
    tiny_clip(clip)
    proc = run_cli("encode", str(clip), str(tmp_path / "o.ccv"), *FAST, "--stats", str(tmp_path / "nope" / "s.csv"))
    assert proc.returncode == 3
    assert_one_line_error(proc.stderr.decode())
    assert not (tmp_path / "o.ccv").exists()


def test_inspect_table_into_a_closed_pipe_ends_quietly(encoded: dict) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "coolchic_stream", "inspect", str(encoded["ccv"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # `| head -1`
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert b"Traceback" not in err
