"""Motion benchmark: how well each flow estimator, and the pre-trained motion Cool-chic, predict.

For every P and B frame of a clip's random-access structure (the fixed one, ``--gop-size`` apart, or
the adaptive lookahead's at ``--lambda``), from its clean source references: PSNR-YUV (4:2:0
sample-weighted) of each reference warped by
    zero       no motion
    global     the integer global translation (and the share of the frame it uncovers: "new")
    block-mean our block matcher on the mean of Y, U, V (what the encoder matched on before)
    block      our block matcher on luma (what the encoder matches on now)
    dis        OpenCV's DIS optical flow (preset medium) on luma, seeded with the global translation
               (needs ``opencv-python-headless``; skipped without it)
    motion     the motion Cool-chic after pre-training (train/motion.py), both candidates and the kept one
and the time each takes; then means per frame type and distance. ``--rate-gain`` overrides the weight
pre-training gives the motion's rate (``train.motion.RATE_GAIN``), ``--iterations`` its length: what
it takes the motion Cool-chic to come within 1 dB of the block flow, in bits.

    python tools/bench_motion.py --clip sample bbb bbb57 pan --lambda 1e-3
    python tools/bench_motion.py --clip sample --gop-size 1 --iterations 1000 --rate-gain 1
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coolchic_stream.architecture import OUTPUTS, motion_parameter, residue_parameter  # noqa: E402
from coolchic_stream.config import PRESETS, Preset  # noqa: E402
from coolchic_stream.gop import FrameJob, GopScheduler  # noqa: E402
from coolchic_stream.lookahead import Lookahead  # noqa: E402
from coolchic_stream.media import open_input  # noqa: E402
from coolchic_stream.nn.frame import FrameEncoder  # noqa: E402
from coolchic_stream.nn.intercoding import InterCodingModule  # noqa: E402
from coolchic_stream.nn.motion import estimate_flow, global_translation, shift_clamped  # noqa: E402
from coolchic_stream.nn.warp import upsample_motion, warp  # noqa: E402
from coolchic_stream.train import motion  # noqa: E402
from coolchic_stream.train.coding import picture_target, picture_to_dense  # noqa: E402
from coolchic_stream.train.inter import inter_complexity  # noqa: E402
from coolchic_stream.train.loss import Target, distortion  # noqa: E402
from coolchic_stream.train.motion import estimate_motion, pretrain_iterations, pretrain_motion  # noqa: E402
from coolchic_stream.types import FrameType, GopStructure, Picture  # noqa: E402
from tools.bench_inter import clip_pictures  # noqa: E402

ESTIMATORS = ("zero", "global", "block-mean", "block", "dis")


def psnr(pred: torch.Tensor, target: Target) -> float:
    return -10.0 * math.log10(max(float(distortion(pred, target)), 1e-12))


def load(name: str, frames: int) -> list[Picture]:
    if name == "sample":
        return list(open_input(str(ROOT / "samples" / "bbb_128x128_8f.y4m"), frames=frames))
    if name.startswith("bbb"):
        return clip_pictures("bbb", frames, 128, int(name[3:] or 32))
    return clip_pictures("pan", frames, 128)


def dis_flow(target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor | None:
    """Dense backward flow [1, 2, H, W] (x, y) from OpenCV DIS on 8-bit luma, or None without OpenCV."""
    try:
        import cv2
    except ImportError:
        return None
    t = (target[0, 0].clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    r = (reference[0, 0].clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    flow = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(t, r, None)
    return torch.from_numpy(flow).permute(2, 0, 1)[None].float()


def estimators(target: Target, ref: torch.Tensor) -> dict[str, tuple[float, float]]:
    """{estimator: (PSNR-YUV of the warped reference, seconds)}, and "new": (the share of the frame,
    in %, that the reference's global translation leaves uncovered, 0)."""
    h, w = ref.shape[-2:]
    out: dict[str, tuple[float, float]] = {"zero": (psnr(ref, target), 0.0)}
    t0 = time.perf_counter()
    ty, tx = global_translation(target.dense[:, :1], ref[:, :1])
    shifted = shift_clamped(ref, ty, tx)
    t_glob = time.perf_counter() - t0
    out["global"] = (psnr(shifted, target), t_glob)
    out["new"] = (100.0 * (1.0 - max(h - abs(ty), 0) * max(w - abs(tx), 0) / (h * w)), 0.0)
    for name, match in (("block-mean", lambda x: x), ("block", lambda x: x[:, :1])):
        t0 = time.perf_counter()
        if name == "block-mean":
            gy, gx = global_translation(target.dense, ref)
            base = shift_clamped(ref, gy, gx)
        else:
            base = shifted
        flow = estimate_flow(match(target.dense), match(base))
        out[name] = (psnr(warp(base, upsample_motion(flow, h, w)), target), time.perf_counter() - t0 + t_glob)
    t0 = time.perf_counter()
    dense = dis_flow(target.dense, shifted)
    if dense is not None:
        out["dis"] = (psnr(warp(shifted, dense), target), time.perf_counter() - t0 + t_glob)
    return out


def jobs_of(pictures: list[Picture], gop_size: int, adaptive_lambda: float | None) -> list[FrameJob]:
    planner = None
    if adaptive_lambda is not None:
        lookahead = Lookahead(adaptive_lambda)
        for p in pictures:
            lookahead.add(p)
        planner = lookahead.plan
    scheduler = GopScheduler(GopStructure.RANDOM_ACCESS, gop_size, 64, planner)
    jobs = [j for d in range(len(pictures)) for j in scheduler.push(d)]
    return jobs + scheduler.flush()


def pretrained(picture: Picture, refs: list[torch.Tensor], job: FrameJob, lmbda: float, iterations: int):
    target = picture_target(picture)
    estimate = estimate_motion(target, refs)
    n_res, n_mot = OUTPUTS[job.frame_type]
    complexity = inter_complexity(PRESETS[Preset.FAST].complexity, job.frame_type, job.depth)
    h, w = picture.height, picture.width
    torch.manual_seed(job.display_index)
    fe = FrameEncoder(job.frame_type, picture.data_type, picture.bit_depth, residue_parameter(h, w, n_res, complexity),
                      motion_parameter(h, w, n_mot, complexity), InterCodingModule(job.frame_type, list(estimate.translations)))
    t0 = time.perf_counter()
    report = pretrain_motion(fe, refs, target, estimate, lmbda, iterations)
    return report, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", nargs="+", default=["sample", "bbb", "bbb57", "pan"], help="sample, bbb[START], pan")
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--gop-size", type=int, default=8)
    ap.add_argument("--lambda", dest="lmbda", type=float, default=1e-3, help="rate weight of the motion pre-training")
    ap.add_argument("--adaptive", action="store_true", help="the lookahead's structure instead of the fixed one")
    ap.add_argument("--iterations", type=int, default=pretrain_iterations(PRESETS[Preset.FAST].iterations),
                    help="pre-training iterations per candidate (default: the fast preset's)")
    ap.add_argument("--rate-gain", type=float, default=None,
                    help=f"weight of the motion's rate in pre-training, times λ (default: the encoder's, {motion.RATE_GAIN:g})")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench_motion.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.rate_gain is not None:
        motion.RATE_GAIN = args.rate_gain
    rows = []
    for clip in args.clip:
        pictures = load(clip, args.frames)
        print(f"\n{clip}: {len(pictures)} frames {pictures[0].width}x{pictures[0].height}; PSNR-YUV dB of each reference "
              f"warped (per reference: past / future), pre-training {args.iterations} iterations per candidate")
        print(f"{'frame':>12} {'new %':>9} " + " ".join(f"{e:>12}" for e in ESTIMATORS)
              + f" {'motion flow':>13} {'motion plain':>13} kept   bits")
        for job in jobs_of(pictures, args.gop_size, args.lmbda if args.adaptive else None):
            if job.frame_type == FrameType.I:
                continue
            target = picture_target(pictures[job.display_index])
            refs = [picture_to_dense(pictures[r]) for r in job.references]
            per_ref = [estimators(target, r) for r in refs]
            report, seconds = pretrained(pictures[job.display_index], refs, job, args.lmbda, args.iterations)
            tried = {name: values for name, values, _ in report.tried}
            fmt = lambda vals: "/".join(f"{v:.2f}" for v in vals)  # noqa: E731
            label = f"{job.frame_type.name}{job.display_index}<-{','.join(map(str, job.references))}"
            cells = [fmt([p[e][0] for p in per_ref]) if all(e in p for p in per_ref) else "n/a" for e in ESTIMATORS]
            uncovered = "/".join(f"{p['new'][0]:.0f}" for p in per_ref)
            print(f"{label:>12} {uncovered:>9} " + " ".join(f"{c:>12}" for c in cells)
                  + f" {fmt(tried['flow']):>13} {fmt(tried['plain']):>13} {report.candidate:5s} {report.motion_bits:6.0f}", flush=True)
            rows.append({
                "clip": clip, "pts": job.display_index, "type": job.frame_type.name, "references": list(job.references),
                "distances": [abs(job.display_index - r) for r in job.references],
                "uncovered_percent": [p["new"][0] for p in per_ref],
                "estimators": {e: [p[e][0] for p in per_ref] for e in ESTIMATORS if all(e in p for p in per_ref)},
                "seconds": {e: sum(p[e][1] for p in per_ref) for e in ESTIMATORS if all(e in p for p in per_ref)},
                "motion": {name: list(v) for name, v in tried.items()}, "kept": report.candidate,
                "motion_bits": report.motion_bits, "pretrain_seconds": seconds,
            })  # fmt: skip
    print("\nMeans per frame type and distance (dB over references; seconds per frame):")
    keys = sorted({(r["type"], max(r["distances"])) for r in rows})
    for t, d in keys:
        sel = [r for r in rows if r["type"] == t and max(r["distances"]) == d]
        cells = []
        for e in ESTIMATORS:
            vals = [np.mean(r["estimators"][e]) for r in sel if e in r["estimators"]]
            secs = [r["seconds"][e] for r in sel if e in r["seconds"]]
            cells.append(f"{e} {np.mean(vals):.2f} ({np.mean(secs):.3f}s)" if vals else f"{e} n/a")
        kept = np.mean([np.mean(r["motion"][r["kept"]]) for r in sel])
        print(f"  {t} distance {d} (n={len(sel)}): " + ", ".join(cells)
              + f", motion kept {kept:.2f} ({np.mean([r['pretrain_seconds'] for r in sel]):.1f}s)")
    gaps = [np.mean(r["estimators"]["block"]) - np.mean(r["motion"][r["kept"]]) for r in rows]
    print(f"\npre-trained motion vs the block flow it starts from: {np.mean(gaps):.2f} dB below on average "
          f"(median {np.median(gaps):.2f}, worst {max(gaps):.2f}); within 1 dB on {sum(g <= 1 for g in gaps)} of {len(gaps)} frames; "
          f"motion latents {np.mean([r['motion_bits'] for r in rows]):.0f} bits a frame on average")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
