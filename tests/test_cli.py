"""Tests of the coolchic-stream command line with the codec: end-to-end encode/decode, pipes, damaged streams, outputs that would clobber inputs."""

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

from coolchic_stream.bitstream.container import ContainerReader
from coolchic_stream import framecodec
from coolchic_stream.entropy.nn_weights import encode_nn
from coolchic_stream.entropy.stream import seal
from coolchic_stream.media import raw_bytes
from coolchic_stream.media.y4m import Y4mReader
from coolchic_stream.types import ChromaSiting, FrameType

from .cli_helpers import ENV, FAST, ROOT, assert_one_line_error, run_cli, tiny_clip

GOLDEN = ROOT / "tests" / "golden"
REGENERATE = os.environ.get("CCV_REGENERATE_GOLDEN") == "1"

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
