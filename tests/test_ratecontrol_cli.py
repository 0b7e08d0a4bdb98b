"""Rate control as a user runs it: --bitrate's errors, a rate-controlled encode from the command
line, the same bytes on workers, a stream of unknown length."""

from __future__ import annotations

from fractions import Fraction

import pytest

from coolchic_stream.config import EncoderConfig

from .conftest import make_picture


@pytest.mark.parametrize(
    "argv, named",
    [(["--bitrate", "0"], "--bitrate '0'"), (["--bitrate", "abc"], "--bitrate 'abc'"), (["--bitrate", "-3k"], "--bitrate"),
     (["--lambda", "1e-3", "--bitrate", "300k"], "exclude each other")],
)  # fmt: skip
def test_bad_bitrate_options_are_one_line_usage_errors(argv: list[str], named: str, tmp_path, capsys) -> None:
    from coolchic_stream.cli import main

    from .cli_helpers import assert_one_line_error, tiny_clip

    tiny_clip(tmp_path / "in.y4m")
    assert main(["encode", str(tmp_path / "in.y4m"), str(tmp_path / "out.ccv"), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and named in captured.err
    assert_one_line_error(captured.err)
    assert not (tmp_path / "out.ccv").exists()


def test_the_cli_encodes_at_a_bitrate_and_reports_how_close_it_landed(tmp_path) -> None:
    import json

    from .cli_helpers import FAST, run_cli, tiny_clip

    tiny_clip(tmp_path / "in.y4m", frames=3)
    loud = [a for a in FAST if a != "--quiet"]
    proc = run_cli("encode", str(tmp_path / "in.y4m"), str(tmp_path / "out.ccv"), *loud, "--bitrate", "40k",
                   "--gop-size", "2", "--stats", str(tmp_path / "s.json"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = [line for line in proc.stderr.decode().splitlines() if "kbit/s" in line]
    assert len(summary) == 1 and "(target 40.0: " in summary[0]
    stats = json.loads((tmp_path / "s.json").read_text())
    assert len(stats["frames"]) == 3 and all(f["lambda"] > 0 for f in stats["frames"])
    achieved = stats["totals"]["kbps"]
    assert f"{achieved:.1f} kbit/s" in summary[0]
    decoded = run_cli("decode", str(tmp_path / "out.ccv"), "-o", str(tmp_path / "out.y4m"), "--quiet")
    assert decoded.returncode == 0, decoded.stderr


def test_rate_control_gives_the_same_bytes_inline_and_on_two_workers() -> None:
    """Each segment has its own budget and model: the plain Encoder, --jobs 1 and --jobs 2 agree,
    and the last, shorter segment plans for the frames it has."""
    from coolchic_stream import parallel
    from coolchic_stream.encoder import Encoder

    pictures = [make_picture(24, 18, pts=i, shift=i) for i in range(7)]
    config = EncoderConfig(preset="test", iterations=10, gop_size=2, intra_period=4, bitrate="30k", frame_rate=Fraction(25),
                           stream_frames=7)  # fmt: skip
    enc = Encoder(config)
    plain = [p.data for pic in pictures for p in enc.send(pic)] + [p.data for p in enc.flush()]
    for jobs in (1, 2):
        out: list = []
        parallel.encode(iter(pictures), out.append, config, jobs=jobs)
        assert [p.data for p in out] == plain, jobs
    tail = Encoder(config, start=4)
    for pic in pictures[4:]:
        tail.send(pic)
    tail.flush()
    assert tail.rate is not None and tail.rate.frames == 3 and tail.rate.budget == pytest.approx(3 * 30e3 / 25)


def test_a_stream_of_unknown_length_from_stdin_plans_whole_intra_periods(tmp_path) -> None:
    from .cli_helpers import FAST, run_cli, tiny_clip

    tiny_clip(tmp_path / "in.y4m", frames=2)
    proc = run_cli("encode", "-", "-", *FAST, "--bitrate", "1.2M", "--gop-size", "2", stdin=(tmp_path / "in.y4m").read_bytes())
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "out.ccv").write_bytes(proc.stdout)
    decoded = run_cli("decode", str(tmp_path / "out.ccv"), "-o", "-", "--format", "md5", "--quiet")
    assert decoded.returncode == 0 and decoded.stdout.strip()
