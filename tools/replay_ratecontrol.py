#!/usr/bin/env python3
"""Replay a ``--bitrate`` encode's ``--stats`` through this checkout's rate controller.

For every frame of the recorded encode, in coding order, the controller of this checkout decides
its λ from what the frames before it cost (as the encoder would: a controller per intra period,
its source guess from the input, the classes of the rest of its group as the recorded adaptive GOP
split it, the recorded I frames' λ and bits, the recorded intra check outcomes). Where every
decision equals the recorded one, this checkout codes that encode's very frames: its figures hold
for it. Where a decision differs, the frame's bits are carried over to the new λ along the model's
slope (κ), a counterfactual estimate, not a measurement: training, and with it the intra check,
would change too.

    python tools/replay_ratecontrol.py out/rc_pan/rc_26.4k.json --input out/rc_pan/clip.y4m \\
        --bitrate 26.4k --intra-period 32
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from coolchic_stream.gop import GopScheduler, GroupPlan, Planner, lambda_scale  # noqa: E402
from coolchic_stream.lookahead import motion_share, spatial_detail  # noqa: E402
from coolchic_stream.media.y4m import Y4mReader  # noqa: E402
from coolchic_stream.config import parse_bitrate  # noqa: E402
from coolchic_stream.ratecontrol import FLOOR_BITS, KAPPA, RateController  # noqa: E402
from coolchic_stream.segment_plan import beyond, look_distance, nominal_plan, released, segment_frames  # noqa: E402
from coolchic_stream.types import FrameType, GopStructure  # noqa: E402

TYPES = {"I": FrameType.I, "P": FrameType.P, "B": FrameType.B}
GOPS = {"intra": GopStructure.INTRA, "lowdelay": GopStructure.LOWDELAY, "ra": GopStructure.RANDOM_ACCESS}
SAME = 1e-4  # relative: --stats keeps λ to 6 significant digits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("stats", help="--stats JSON of a --bitrate encode")
    p.add_argument("--input", required=True, help="the y4m it encoded (frame rate, length, source guesses)")
    p.add_argument("--bitrate", required=True)
    p.add_argument("--gop", default="ra", choices=sorted(GOPS))
    p.add_argument("--gop-size", type=int, default=8)
    p.add_argument("--intra-period", type=int, default=32)
    p.add_argument("--quiet", action="store_true", help="the summary line only")
    return p.parse_args(argv)


def recorded_plan(frames: list[dict], period: int) -> Planner:
    """The adaptive GOP's decisions as the encode recorded them: each group's anchors are its P
    frames and the I frames inside a segment (its cuts)."""
    anchors = sorted(f["display_index"] for f in frames if f["type"] in ("P", "I"))
    cuts = {f["display_index"] for f in frames if f["type"] == "I" and f["display_index"] % period}

    def plan(anchor: int, pending: list[int]) -> GroupPlan:
        chosen = tuple(d for d in anchors if pending[0] <= d <= pending[-1])
        return GroupPlan(chosen, tuple(d for d in chosen if d in cuts))

    return plan


def release_times(gop: GopStructure, gop_size: int, period: int, count: int,
                  planner: Planner | None = None) -> tuple[dict[int, int], dict[int, int]]:
    """Display index -> the picture after which the GOP scheduled it, and the one after which the
    encoder coded it (``Encoder.encode``: held until ``segment_plan.released`` lets it go, in
    coding order: an adaptive GOP's ``planner``, which orders a group's frames otherwise, moves
    when they go)."""
    scheduler = GopScheduler(gop, gop_size, period, planner)
    scheduled: dict[int, int] = {}
    coded: dict[int, int] = {}
    held: list = []
    for d in range(count + 1):
        new = scheduler.push(d) if d < count else scheduler.flush()
        scheduled |= {job.display_index: d for job in new}
        jobs = held + new
        ready = len(jobs) if d == count else released(jobs, d + 1, gop, gop_size, period, count)
        coded |= {job.display_index: d for job in jobs[:ready]}
        held = jobs[ready:]
    return scheduled, coded


def scheduled_after(frames: list[dict], k: int, scheduled: dict[int, int], coded: dict[int, int]) -> list[dict]:
    """The frames the encoder told rate control of with frame ``k`` (coding order): those after it,
    up to an I frame, that the GOP had scheduled by then."""
    known = []
    for f in frames[k + 1 :]:
        if f["type"] == "I" or scheduled[f["display_index"]] > coded[frames[k]["display_index"]]:
            break
        known.append(f)
    return known


def ahead(details: list[float], f: dict, known: list[dict], done: set[int], coded: dict[int, int], period: int) -> float:
    """The detail the frames beyond ``known`` are planned at, as ``Encoder._ahead``: the pictures
    in when ``f`` is coded (up to the newest) and not yet coded (``done``)."""
    told = {f["display_index"], *(g["display_index"] for g in known)}
    arrived = [d for d in range(min(coded[f["display_index"]], len(details) - 1) + 1) if d not in done and d != f["display_index"]]
    pictures = beyond(f["display_index"], told, arrived, period)
    return sum(details[d] for d in pictures) / len(pictures)


def replay(frames: list[dict], pictures: list, frame_rate: Fraction, bitrate: float, gop: GopStructure, gop_size: int,
           period: int) -> dict:
    """``frames``: the recorded ``--stats`` frames in coding order; ``pictures``: the input. ->
    {"same": P/B decisions equal to the recorded ones, "decisions": P/B decisions, "bits": the
    replayed total, "rows": one line per P/B frame}."""
    rc: RateController | None = None
    same = decisions = 0
    total = 0.0
    rows = []
    scheduled, coded = release_times(gop, gop_size, period, len(pictures), recorded_plan(frames, period))
    details = [spatial_detail(p) for p in pictures]
    done: set[int] = set()
    for k, f in enumerate(frames):
        kind, depth, bits, lmbda = TYPES[f["type"]], f["depth"], f["bits"], f["lambda"]
        start = f["display_index"] - f["display_index"] % period
        if kind == FrameType.I and f["display_index"] == start:  # a segment: as Encoder._segment_rate
            count = segment_frames(gop, period, len(pictures) - start)
            later = [d for d in range(start + 1, start + look_distance(period) + 1) if d < len(pictures)]
            guess = motion_share(pictures[start], pictures[max(later)]) if later and gop != GopStructure.INTRA else None
            rc = RateController(bitrate, frame_rate, nominal_plan(gop, gop_size, period, count), guess, details[start])
        if rc is None:
            raise SystemExit("the stats do not start with an I frame")
        if kind == FrameType.I:
            rc.coded_frame(kind, depth, lmbda, bits, detail=details[f["display_index"]])
            done.add(f["display_index"])
            total += bits
            continue
        known = scheduled_after(frames, k, scheduled, coded)
        decision = rc.next_frame(
            kind, depth, [(TYPES[g["type"]], g["depth"]) for g in known], [details[g["display_index"]] for g in [f, *known]],
            ahead(details, f, known, done, coded, period),
        )  # fmt: skip
        done.add(f["display_index"])
        if f["intra_coded"]:  # --stats has a frame coded without prediction's base λ, the others' depth-scaled
            recorded, now = lmbda, rc.without_prediction(decision.solved)
            new_bits = bits * (now / recorded) ** KAPPA
        else:
            recorded, now = lmbda / lambda_scale(depth), decision.lmbda
            new_bits = FLOOR_BITS + max(bits - FLOOR_BITS, 1) * (now / recorded) ** KAPPA
        decisions += 1
        if abs(now / recorded - 1) <= SAME:
            same += 1
            new_bits, now = bits, recorded
        rows.append(f"{f['display_index']:4d} {f['type']}{depth} {'intra' if f['intra_coded'] else '     '} "
                    f"λ {recorded:.4g} -> {now:.4g}  bits {bits:6d} -> {new_bits:7.0f}  planned {decision.planned_bits:7.0f}")  # fmt: skip
        rc.coded_frame(kind, depth, now, round(new_bits), f["intra_coded"], details[f["display_index"]])
        total += round(new_bits)
    return {"same": same, "decisions": decisions, "bits": total, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    frames = sorted(json.loads(Path(args.stats).read_text())["frames"], key=lambda f: f["coding_index"])
    with open(args.input, "rb") as fh:
        reader = Y4mReader(fh, args.input)
        pictures = list(reader)
    frame_rate, bitrate = reader.sequence.frame_rate, parse_bitrate(args.bitrate)
    result = replay(frames, pictures, frame_rate, bitrate, GOPS[args.gop], args.gop_size, args.intra_period)
    if not args.quiet:
        print("\n".join(result["rows"]))

    def kbps(bits: float) -> float:
        return bits * float(frame_rate) / len(frames) / 1000

    verdict = "the same encode" if result["same"] == result["decisions"] else "another encode: the replayed rate is an estimate"
    print(f"{args.stats}: {result['same']} of {result['decisions']} P/B decisions as recorded ({verdict}); "
          f"recorded {kbps(sum(f['bits'] for f in frames)):.2f} kbit/s, replayed {kbps(result['bits']):.2f}, "
          f"target {bitrate / 1000:g}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
