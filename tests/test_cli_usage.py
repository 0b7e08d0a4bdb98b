"""Tests of the coolchic-stream command line without the codec: usage and input errors, exit codes, inspect of a built stream."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from coolchic_stream.bitstream import syntax
from coolchic_stream.bitstream.container import ContainerWriter
from coolchic_stream.cli import main
from coolchic_stream.types import ChromaSiting, FrameType, GopStructure, Packet, SequenceInfo

from .cli_helpers import FAST, assert_one_line_error, run_cli, tiny_clip

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
