"""tools/replay_ratecontrol.py: a --bitrate encode's decisions, replayed by the controller that made them."""

from __future__ import annotations

import json

from tools.replay_ratecontrol import main

from ..test_cli import FAST, run_cli, tiny_clip


def test_a_recorded_encode_replays_to_the_same_decisions_and_another_target_does_not(tmp_path, capsys) -> None:
    tiny_clip(tmp_path / "in.y4m", frames=6)
    # two intra periods: a controller per segment, each with its source guess, as the encoder has them
    proc = run_cli("encode", str(tmp_path / "in.y4m"), str(tmp_path / "out.ccv"), *FAST, "--bitrate", "40k",
                   "--gop-size", "2", "--intra-period", "4", "--intra-check", "always", "--stats", str(tmp_path / "s.json"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((tmp_path / "s.json").read_text())
    common = [str(tmp_path / "s.json"), "--input", str(tmp_path / "in.y4m"), "--gop-size", "2", "--intra-period", "4", "--quiet"]
    assert main([*common, "--bitrate", "40k"]) == 0
    line = capsys.readouterr().out.strip()
    inter = sum(f["type"] != "I" for f in stats["frames"])
    assert f"{inter} of {inter} P/B decisions as recorded (the same encode)" in line
    assert f"recorded {stats['totals']['kbps']:.2f} kbit/s, replayed {stats['totals']['kbps']:.2f}" in line
    assert main([*common, "--bitrate", "20k"]) == 0  # the recorded I frames, then other P/B decisions
    assert "(another encode" in capsys.readouterr().out


def test_the_replay_groups_frames_as_the_encoder_releases_them() -> None:
    """As ``test_the_encoder_gives_rate_control_the_rest_of_each_group``: the held I frame goes with
    both groups after it, later groups alone, the segment's last frame alone."""
    from coolchic_stream.types import GopStructure
    from tools.replay_ratecontrol import release_batches

    batch = release_batches(GopStructure.RANDOM_ACCESS, 2, 8, 8)
    assert len({batch[d] for d in range(5)}) == 1
    assert batch[5] == batch[6] != batch[4] and batch[7] not in (batch[4], batch[6])
