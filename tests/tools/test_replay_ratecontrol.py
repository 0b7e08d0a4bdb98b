"""tools/replay_ratecontrol.py: a --bitrate encode's decisions, replayed by the controller that made them."""

from __future__ import annotations

import json

from tools.replay_ratecontrol import main

from ..cli_helpers import FAST, run_cli, tiny_clip


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


def test_the_replay_codes_frames_when_the_encoder_does() -> None:
    """As ``Encoder.encode``: each frame coded once the pictures up to its ``look_end`` are in (at
    the end of the stream, all that is left), in coding order, and told of the frames scheduled by then."""
    from coolchic_stream.gop import schedule
    from coolchic_stream.segment_plan import look_end
    from coolchic_stream.types import GopStructure
    from tools.replay_ratecontrol import release_times

    scheduled, coded = release_times(GopStructure.RANDOM_ACCESS, 2, 8, 8)
    order = [j.display_index for j in schedule(GopStructure.RANDOM_ACCESS, 2, 8, 8)]
    assert all(coded[d] >= min(look_end(d, 2, 8, 8), 7) and coded[d] >= scheduled[d] for d in order)
    assert [coded[d] for d in order] == sorted(coded[d] for d in order)
    assert coded[0] == 4 and coded[2] == coded[1] == 6 and scheduled[4] == 4  # P4 scheduled while P2 waited


def test_an_adaptive_gop_is_replayed_as_recorded() -> None:
    """The adaptive GOP orders a group's frames otherwise (P anchors where the fixed structure has B
    frames), and the encoder holds each until its ``look_end`` is in, in coding order: the replay
    schedules the recorded anchors (and cuts), so it codes each frame when the encoder did."""
    from coolchic_stream.gop import GopScheduler, GroupPlan
    from coolchic_stream.segment_plan import look_end
    from coolchic_stream.types import GopStructure
    from tools.replay_ratecontrol import recorded_plan, release_times

    def planner(anchor: int, pending: list[int]) -> GroupPlan:
        return GroupPlan((2, 3, 4, 8), (3,)) if pending[0] == 1 else GroupPlan((pending[-1],))

    scheduler = GopScheduler(GopStructure.RANDOM_ACCESS, 8, 16, planner)
    jobs = [j for d in range(16) for j in scheduler.push(d)] + scheduler.flush()
    frames = [{"display_index": j.display_index, "type": j.frame_type.name} for j in jobs]
    replayed = GopScheduler(GopStructure.RANDOM_ACCESS, 8, 16, recorded_plan(frames, 16))
    again = [j for d in range(16) for j in replayed.push(d)] + replayed.flush()
    assert [(j.display_index, j.frame_type, j.references) for j in again] == [(j.display_index, j.frame_type, j.references) for j in jobs]

    scheduled, coded = release_times(GopStructure.RANDOM_ACCESS, 8, 16, 16, recorded_plan(frames, 16))
    order = [j.display_index for j in jobs]
    assert [coded[d] for d in order] == sorted(coded[d] for d in order)
    assert all(coded[d] >= min(look_end(d, 8, 16, 16), 15) for d in order)
    fixed = release_times(GopStructure.RANDOM_ACCESS, 8, 16, 16)[1]
    assert coded[2] < fixed[2]  # P2 goes once its own look_end is in, not after the fixed order's P8 and B4
