"""Inter-coding benchmark: random access and low-delay P against intra-only, at one preset.

For each clip and lambda: encode with --gop intra / lowdelay / ra, decode, check the decoder
matches the encoder's reconstruction, and report per frame type the mean bits and PSNR, then
BD-rate (VCEG-M33, tools/bdrate.py) of lowdelay and ra against intra on PSNR-YUV 6:1:1
(mean of per-frame PSNR). Also measures the warm-start speed-up on the ra encode.

    python tools/bench_inter.py --clip bbb --frames 9 --size 128 --lambdas 4e-3,1.5e-3,6e-4,2.5e-4 --iterations 400
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coolchic_stream.config import EncoderConfig  # noqa: E402
from coolchic_stream.decoder import Decoder  # noqa: E402
from coolchic_stream.encoder import Encoder  # noqa: E402
from coolchic_stream.types import DataType, Picture  # noqa: E402
from tools.bdrate import bd_rate  # noqa: E402
from tools.clips import bbb_crop, photo_pan  # noqa: E402
from tools.metrics import frame_psnr  # noqa: E402


def clip_pictures(name: str, n: int, size: int, start: int = 32) -> list[Picture]:
    if name == "bbb":
        clip = bbb_crop(n, size, size, start=start, x=448 + (352 - size) // 2 // 2 * 2, y=128 + (288 - size) // 2 // 2 * 2)
    else:
        clip = photo_pan(n, size, size)
    frames = clip.frames if hasattr(clip, "frames") else clip[0]
    return [Picture(tuple(np.ascontiguousarray(p) for p in f), 8, DataType.YUV420, i) for i, f in enumerate(frames)]


def run(pictures: list[Picture], config: EncoderConfig, warm_start: bool = True) -> dict:
    enc = Encoder(config, warm_start=warm_start)
    enc.keep_reconstructions = True
    t0 = time.perf_counter()
    packets = []
    for p in pictures:
        packets += enc.send(p)
    packets += enc.flush()
    encode_s = time.perf_counter() - t0
    dec = Decoder()
    t0 = time.perf_counter()
    decoded = []
    for p in packets:
        decoded += dec.send(p)
    decoded += dec.flush()
    decode_s = time.perf_counter() - t0
    if not all(d.same_samples(enc.reconstructions[d.pts]) for d in decoded):
        raise SystemExit("decoder output differs from the encoder's reconstruction")
    by_pts = {p.pts: p for p in packets}
    frames = []
    for d in decoded:
        q = frame_psnr(pictures[d.pts].planes, d.planes)
        pk = by_pts[d.pts]
        frames.append({"pts": d.pts, "type": pk.frame_type.name, "depth": pk.stats.depth, "bits": 8 * len(pk.data),
                       "intra_coded": pk.stats.intra_coded, "intra_check": pk.stats.intra_check, "psnr_y": q.y,
                       "psnr_yuv": (6 * q.y + q.u + q.v) / 8, "flow_psnr": pk.stats.flow_psnr,
                       "motion_psnr": pk.stats.motion_psnr})  # fmt: skip
    h, w = pictures[0].height, pictures[0].width
    total_bits = sum(f["bits"] for f in frames)
    return {
        "frames": frames,
        "bpp": total_bits / (len(frames) * h * w),
        "psnr_yuv": float(np.mean([f["psnr_yuv"] for f in frames])),
        "psnr_y": float(np.mean([f["psnr_y"] for f in frames])),
        "encode_s": encode_s,
        "decode_s": decode_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", choices=["bbb", "pan"], default="bbb")
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--start", type=int, default=32, help="bbb: first frame (32 = the clip's fastest motion)")
    ap.add_argument("--structures", default="intra,lowdelay,ra", help="which of intra,lowdelay,ra to encode")
    ap.add_argument("--no-warm-compare", action="store_true", help="skip the cold-start RA encode")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lambdas", default="4e-3,1.5e-3,6e-4,2.5e-4")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--gop-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--intra-check", choices=["off", "auto", "always"], default="auto",
                    help="when P/B frames are also tried without prediction")
    ap.add_argument("--fixed-gop", action="store_true", help="no adaptive mini-GOPs or cut I frames")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "bench_inter")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pictures = clip_pictures(args.clip, args.frames, args.size, args.start)
    lambdas = [float(x) for x in args.lambdas.split(",")]
    structures = [s for s in ("intra", "lowdelay", "ra") if s in args.structures.split(",")]
    if "intra" not in structures:
        raise SystemExit("--structures must include intra (the BD-rate anchor)")
    results: dict[str, list[dict]] = {s: [] for s in structures}
    where = f" from frame {args.start}" if args.clip == "bbb" else ""
    print(f"{args.clip} {args.size}x{args.size}{where}, {args.frames} frames, preset {args.preset}, "
          f"iterations {args.iterations}, intra check {args.intra_check}, {'fixed' if args.fixed_gop else 'adaptive'} GOP")
    for lmbda in lambdas:
        for s in structures:
            config = EncoderConfig(preset=args.preset, lmbda=lmbda, iterations=args.iterations, gop=s,
                                   gop_size=args.gop_size, intra_period=64, intra_check=args.intra_check,
                                   adaptive_gop=not args.fixed_gop)  # fmt: skip
            r = run(pictures, config)
            r["lambda"] = lmbda
            results[s].append(r)
            per_type = {}
            for t in ("I", "P", "B"):
                fs = [f for f in r["frames"] if f["type"] == t]
                if fs:
                    n_intra = sum(f["intra_coded"] for f in fs)
                    per_type[t] = (f"{t}: {np.mean([f['bits'] for f in fs]):7.0f} b {np.mean([f['psnr_yuv'] for f in fs]):5.2f} dB "
                                   f"(n={len(fs)}" + (f", {n_intra} intra-coded)" if n_intra else ")"))  # fmt: skip
            print(f"λ={lmbda:.1e} {s:8s} bpp {r['bpp']:.4f} PSNR-YUV {r['psnr_yuv']:.2f} enc {r['encode_s']:6.1f}s dec {r['decode_s']:5.2f}s | "
                  + " | ".join(per_type.values()), flush=True)  # fmt: skip
    print("\nBD-rate vs intra-only (PSNR-YUV 6:1:1, VCEG-M33 cubic; negative = fewer bits):")
    bd = {}
    for s in structures[1:]:
        try:
            bd[s] = bd_rate([r["bpp"] for r in results["intra"]], [r["psnr_yuv"] for r in results["intra"]],
                            [r["bpp"] for r in results[s]], [r["psnr_yuv"] for r in results[s]])  # fmt: skip
            print(f"  {s:8s} {bd[s]:+.1f} %")
        except ValueError as exc:
            print(f"  {s:8s} n/a ({exc})")
    name = args.clip if args.clip != "bbb" or args.start == 32 else f"bbb{args.start}"
    cold = None
    if not args.no_warm_compare and "ra" in structures:
        cold = warm_compare(pictures, args, lambdas, results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps({"results": results, "bd_rate": bd, "cold_ra": cold}, indent=1))


def warm_compare(pictures: list[Picture], args: argparse.Namespace, lambdas: list[float], results: dict) -> dict:
    mid = lambdas[len(lambdas) // 2]
    config = EncoderConfig(preset=args.preset, lmbda=mid, iterations=args.iterations, gop="ra", gop_size=args.gop_size, intra_period=64,
                           intra_check=args.intra_check, adaptive_gop=not args.fixed_gop)
    cold = run(pictures, config, warm_start=False)
    warm = next(r for r in results["ra"] if r["lambda"] == mid)
    print(f"\nwarm start (ra, λ={mid:.1e}): encode {cold['encode_s']:.1f}s -> {warm['encode_s']:.1f}s, "
          f"bpp {cold['bpp']:.4f} -> {warm['bpp']:.4f}, PSNR-YUV {cold['psnr_yuv']:.2f} -> {warm['psnr_yuv']:.2f}")  # fmt: skip
    return cold


if __name__ == "__main__":
    main()
