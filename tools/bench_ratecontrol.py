#!/usr/bin/env python3
"""Rate control benchmark: ``--bitrate`` encodes against λ encodes landing at the same rate.

For one clip and each target bitrate (by default x265 medium's rates at CRF 27, 32 and 37 on the
same clip, keyint = the intra period):

1. ``coolchic-stream encode --bitrate T`` (the CLI, wall-clock timed): achieved rate against T;
2. a λ encode landing at that rate: λ interpolated at T in the log-log plane from
   ``--lambda-curve`` (an ``rd.json`` of tools/rd_benchmark.py on the same clip and settings),
   run side by side with the first (so both see the same machine), its time against the first
   one's; without a curve, afterwards, at the bits-weighted geometric mean of the rate-controlled
   frames' base λ;
3. ``--between`` more λ encodes, evenly spaced in log λ between each two neighbouring λ of step 2:
   one encode's training luck moves a point by tenths of a dB (the same code's λ points have come
   out several per cent BD-rate apart from one run to the next, README *Rate control*), so the
   curve the rate-controlled points are judged against needs more than three;
4. BD-rate (VCEG-M33, PSNR-YUV 6:1:1, payload rates) of the rate-controlled points against all the
   λ points (steps 2 and 3, and the curve's), and, for comparison, against step 2's alone; with
   ``--seeds``, each seed's rate-controlled points against its own λ points too, and the standard
   error of their mean: what the figure can resolve, training luck being what it is.

With ``--seeds K`` every encode above runs K times, with ``--seed`` 0 to K-1, and each point is the
mean rate and PSNR of its K encodes (the expected encode at that target or λ; how far one seed's
encode lands from another's is printed per point): the rate errors and times are the mean's, the
worst seed's rate error is printed beside them.

Encodes run ``--workers`` at a time, each on one torch thread: compare the times of one run only.
Rates are of the coded frames (``Packet.data``), as ``--bitrate`` aims and rd_benchmark reports.

Example (repository root, venv active)::

    python tools/bench_ratecontrol.py --clip pan --width 128 --height 128 --frames 17 \\
        --iterations 500 --intra-period 32 --lambda-curve out/rd_pan/rd.json --workers 2 --out out/rc_pan
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import anchors as anchors_mod  # noqa: E402
from tools.bdrate import bd_rate  # noqa: E402
from tools.clips import get_clip, write_y4m  # noqa: E402
from tools.metrics import kbps, sequence_psnr  # noqa: E402

ENV = os.environ | {"OMP_NUM_THREADS": "1"}


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--clip", choices=["bbb", "pan"], default="bbb")
    p.add_argument("--start", type=int, default=None, help="bbb: first frame (default: the clip builder's)")
    p.add_argument("--frames", type=int, default=17)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--targets", default=None, help="kbit/s, comma list (default: x265 medium's rates at --crfs)")
    p.add_argument("--crfs", default="27,32,37")
    p.add_argument("--preset", default="fast")
    p.add_argument("--iterations", type=int, default=None)
    p.add_argument("--gop", default="ra", choices=["intra", "lowdelay", "ra"])
    p.add_argument("--gop-size", type=int, default=8)
    p.add_argument("--intra-period", type=int, default=32)
    p.add_argument("--lambda-curve", default=None, help="rd.json of tools/rd_benchmark.py with the same clip and settings")
    p.add_argument("--no-time-compare", action="store_true", help="rate-controlled encodes only")
    p.add_argument("--between", type=int, default=1, help="λ encodes between each two neighbouring matched λ")
    p.add_argument("--seeds", type=_at_least_one, default=1, help="encodes per point, --seed 0 to N-1, averaged")
    p.add_argument("--workers", type=int, default=1, help="encodes run side by side")
    p.add_argument("--out", default="out/rc")
    return p.parse_args(argv)


def seeded(out: Path, option: list[str], seed: int) -> tuple[Path, list[str]]:
    """The output file and options of an encode at ``seed`` (0: the CLI's default, the plain name)."""
    if not seed:
        return out, option
    return out.with_name(f"{out.stem}_s{seed}{out.suffix}"), [*option, "--seed", str(seed)]


def encode(clip: Path, out: Path, option: list[str], args: argparse.Namespace, seed: int = 0) -> dict:
    """One CLI encode at ``seed`` -> its stats and wall-clock seconds."""
    out, option = seeded(out, option, seed)
    stats = out.with_suffix(".json")
    cmd = [sys.executable, "-m", "coolchic_stream", "encode", str(clip), str(out), "--quiet", "--preset", args.preset,
           "--gop", args.gop, "--gop-size", str(args.gop_size), "--intra-period", str(args.intra_period),
           "--stats", str(stats), *option]  # fmt: skip
    if args.workers > 1:  # the workers already take the cores; a helper per encode would oversubscribe them
        cmd += ["--aside", "off"]
    if args.iterations:
        cmd += ["--iterations", str(args.iterations)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=ENV, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.decode()[-2000:]}")
    return {"stats": json.loads(stats.read_text()), "seconds": seconds, "ccv": out}


def measure(run: dict, frames: list, fps) -> dict:
    """Payload rate and sequence PSNR-YUV 6:1:1 of an encode (decoded with the library)."""
    from coolchic_stream.bitstream.container import ContainerReader
    from coolchic_stream.decoder import Decoder
    from coolchic_stream.gop import lambda_scale

    with ContainerReader(run["ccv"]) as reader:
        packets = list(reader)
    decoder = Decoder()
    pictures = [pic for p in packets for pic in decoder.send(p)] + decoder.flush()
    pictures.sort(key=lambda pic: pic.pts)
    payload = sum(len(p.data) for p in packets)
    rows = run["stats"]["frames"]
    bits = np.array([r["bits"] for r in rows], float)
    lambdas = np.array([r["lambda"] for r in rows], float)
    scale = np.array([1.0 if r["intra_coded"] else lambda_scale(r["depth"]) for r in rows])
    return {
        "kbps": kbps(payload, len(frames), fps),
        "psnr": sequence_psnr(frames, [pic.planes for pic in pictures], 8).summary()["yuv611"],
        "seconds": run["seconds"],
        "base_lambda": float(np.exp(np.sum(bits * np.log(lambdas / scale)) / bits.sum())),
        "lambdas": [float(v) for v in lambdas],
        "types": "".join(r["type"][0] + ("i" if r["intra_coded"] else "") for r in rows),
    }


def mean_point(runs: list[dict]) -> dict:
    """One point from the measures of its seeds' encodes: mean rate, PSNR and seconds, the
    geometric mean of their base λ; the seeds' own under ``seeds``."""
    first = runs[0]
    if len(runs) == 1:
        return first
    return first | {
        "kbps": float(np.mean([r["kbps"] for r in runs])),
        "psnr": float(np.mean([r["psnr"] for r in runs])),
        "seconds": float(np.mean([r["seconds"] for r in runs])),
        "base_lambda": float(np.exp(np.mean([math.log(r["base_lambda"]) for r in runs]))),
        "seeds": runs,
    }


def spread(point: dict) -> str:
    """How far its seeds' encodes lie apart: rate and PSNR ranges."""
    runs = point.get("seeds", [point])
    rates, psnrs = [r["kbps"] for r in runs], [r["psnr"] for r in runs]
    return f"{len(runs)} seeds: {min(rates):.1f}-{max(rates):.1f} kbit/s, {min(psnrs):.2f}-{max(psnrs):.2f} dB"


def seed_bd_rates(rc: list[dict], lambda_points: list[dict], curve: list[tuple[float, float]]) -> list[float]:
    """BD-rate of each seed's rate-controlled encodes against that seed's λ encodes (and the
    ``curve``'s (kbit/s, PSNR) points, seedless), one per seed: how far one seed's training luck
    moves the figure, which the mean point's BD-rate alone does not say."""

    def seed_point(point: dict, k: int) -> tuple[float, float]:
        run = point.get("seeds", [point])[k]
        return run["kbps"], run["psnr"]

    rates = []
    for k in range(len(rc[0].get("seeds", [rc[0]]))):
        anchor = [seed_point(m, k) for m in lambda_points] + curve
        test = [seed_point(r, k) for r in rc]
        rates.append(bd_rate([a[0] for a in anchor], [a[1] for a in anchor], [t[0] for t in test], [t[1] for t in test]))
    return rates


def between_lambdas(lambdas: list[float], count: int) -> list[float]:
    """``count`` λ evenly spaced in log λ strictly between each two neighbouring ``lambdas``."""
    ordered = sorted(set(lambdas))
    return [a * (b / a) ** (k / (count + 1)) for a, b in zip(ordered, ordered[1:]) for k in range(1, count + 1)]


def interpolate_lambda(curve: list[tuple[float, float]], rate: float) -> float:
    """λ at ``rate`` on a curve of (λ, kbit/s) points, log-log (extrapolated from the end segments)."""
    pts = sorted(curve, key=lambda p: p[1])
    xs, ys = np.log([p[1] for p in pts]), np.log([p[0] for p in pts])
    i = int(np.clip(np.searchsorted(xs, math.log(rate)), 1, len(xs) - 1))
    t = (math.log(rate) - xs[i - 1]) / (xs[i] - xs[i - 1])
    return float(math.exp(ys[i - 1] + t * (ys[i] - ys[i - 1])))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kw = {"start": args.start} if args.start is not None else {}
    clip = get_clip(args.clip, args.frames, args.width, args.height, **kw)
    source = write_y4m(out / "clip.y4m", clip.frames, clip.fps)
    print(f"clip {args.clip}: {args.frames} frames {args.width}x{args.height} @ {float(clip.fps):g} fps", flush=True)

    if args.targets:
        targets = [float(t) for t in args.targets.split(",")]
    else:
        targets = []
        for crf in (int(c) for c in args.crfs.split(",")):
            r = anchors_mod.encode_decode(clip.frames, "libx265", crf, clip.fps, args.intra_period, "medium")
            print(f"  x265 crf={crf}: {r.kbps:.1f} kbit/s, PSNR-YUV {r.psnr.summary()['yuv611']:.2f} dB", flush=True)
            targets.append(round(r.kbps, 1))
    curve = []
    if args.lambda_curve:
        rd = json.loads(Path(args.lambda_curve).read_text())
        curve = [(float(r["setting"].split("=")[1]), r["kbps"], r["psnr_yuv611"]) for r in rd["rows"] if r["codec"] == "coolchic"]

    seeds = range(args.seeds)

    def rc_run(job: tuple[float, int]) -> dict:
        t, seed = job
        return encode(source, out / f"rc_{t:g}k.ccv", ["--bitrate", f"{t:g}k"], args, seed)

    def lambda_run(job: tuple[float, int]) -> dict:
        lm, seed = job
        return encode(source, out / f"lambda_{lm:.4g}.ccv", ["--lambda", f"{lm:.4g}"], args, seed)

    def averaged(runs: list[dict], values: list[float], key: str) -> list[dict]:
        """Measures of the runs of ``values`` x ``seeds`` (in that order), averaged per value."""
        measured = [measure(r, clip.frames, clip.fps) for r in runs]
        return [mean_point(measured[i * len(seeds) : (i + 1) * len(seeds)]) | {key: v} for i, v in enumerate(values)]

    def jobs(values: list[float]) -> list[tuple[float, int]]:
        return [(v, seed) for v in values for seed in seeds]

    def report(r: dict) -> None:
        print(f"  --bitrate {r['target']:g}k: {r['kbps']:.1f} kbit/s ({100 * (r['kbps'] / r['target'] - 1):+.1f} %), "
              f"PSNR-YUV {r['psnr']:.2f} dB, {r['seconds']:.0f} s, base λ {r['base_lambda']:.3g}, frames {r['types']}",
              flush=True)  # fmt: skip
        for run in r.get("seeds", [])[1:]:
            print(f"{'':>20}seed: {run['kbps']:.1f} kbit/s, {run['psnr']:.2f} dB, frames {run['types']}")

    matched = []
    compare = not args.no_time_compare
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        if compare and len(curve) >= 2:  # each pair side by side
            lambdas = [interpolate_lambda([(c[0], c[1]) for c in curve], t) for t in targets]
            pairs = [pool.submit(f, x) for a, b in zip(jobs(targets), jobs(lambdas)) for f, x in ((rc_run, a), (lambda_run, b))]
            runs = [j.result() for j in pairs]
            rc = averaged(runs[0::2], targets, "target")
            matched = averaged(runs[1::2], lambdas, "lambda")
            for r in rc:
                report(r)
        else:
            rc = averaged(list(pool.map(rc_run, jobs(targets))), targets, "target")
            for r in rc:
                report(r)
            if compare:
                lambdas = [r["base_lambda"] for r in rc]
                matched = averaged(list(pool.map(lambda_run, jobs(lambdas))), lambdas, "lambda")

        between = between_lambdas([m["lambda"] for m in matched], args.between)
        denser = averaged(list(pool.map(lambda_run, jobs(between))), between, "lambda")

    print("\ntarget kbit/s  achieved  error   PSNR-YUV  time s | λ encode: λ       kbit/s  PSNR-YUV  time s  time ratio")
    for i, r in enumerate(rc):
        line = f"{r['target']:12.1f}  {r['kbps']:8.1f}  {100 * (r['kbps'] / r['target'] - 1):+5.1f} %  {r['psnr']:8.2f}  {r['seconds']:6.0f}"
        if matched:  # the λ encode's rate is what it landed at: compare times where it is near the target
            m = matched[i]
            line += f" | {m['lambda']:13.4g}  {m['kbps']:6.1f}  {m['psnr']:8.2f}  {m['seconds']:6.0f}  {r['seconds'] / m['seconds']:10.2f}"
        print(line)
    for m in denser:
        print(f"{'λ encode between':>45} | {m['lambda']:13.4g}  {m['kbps']:6.1f}  {m['psnr']:8.2f}  {m['seconds']:6.0f}")
    if len(seeds) > 1:
        print("\nspread over the seeds:")
        for r in rc:
            print(f"  --bitrate {r['target']:g}k: {spread(r)}")
        for m in matched + denser:
            print(f"  λ {m['lambda']:.4g}: {spread(m)}")
    points = [(m["kbps"], m["psnr"]) for m in matched + denser] + [(c[1], c[2]) for c in curve]
    result = {"args": vars(args), "targets": targets, "rate_controlled": rc, "lambda_matched": matched,
              "lambda_between": denser, "curve": curve}  # fmt: skip
    rc_rates, rc_psnr = [r["kbps"] for r in rc], [r["psnr"] for r in rc]
    try:
        if len(points) >= 2:
            bd = bd_rate([p[0] for p in points], [p[1] for p in points], rc_rates, rc_psnr)
            result["bd_rate_vs_lambda_pct"] = bd
            print(f"\nBD-rate of the rate-controlled points against the λ points ({len(points)}): {bd:+.2f} %")
        if denser and len(matched) >= 2:
            alone = bd_rate([m["kbps"] for m in matched], [m["psnr"] for m in matched], rc_rates, rc_psnr)
            result["bd_rate_vs_matched_pct"] = alone
            print(f"  (against the {len(matched)} matched λ points alone: {alone:+.2f} %)")
        if len(seeds) > 1 and len(points) >= 2:
            each = seed_bd_rates(rc, matched + denser, [(c[1], c[2]) for c in curve])
            result["bd_rate_per_seed_pct"] = each
            error = float(np.std(each, ddof=1) / math.sqrt(len(each)))
            print(f"  each seed alone: {' / '.join(f'{b:+.2f}' for b in each)} % "
                  f"(their mean {np.mean(each):+.2f} %, standard error {error:.2f} %)")  # fmt: skip
    except ValueError as e:  # e.g. the curves do not overlap in PSNR
        print(f"\nno BD-rate: {e}")
    worst = max(abs(r["kbps"] / r["target"] - 1) for r in rc)
    print(f"largest rate error: {100 * worst:.1f} %")
    if len(seeds) > 1:
        one = max(abs(run["kbps"] / r["target"] - 1) for r in rc for run in r["seeds"])
        print(f"  (of one seed's encode: {100 * one:.1f} %)")
    (out / "rc.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out / 'rc.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
