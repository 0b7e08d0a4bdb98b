"""Still-image benchmark: a real photo coded as one I frame at several lambdas.

Prints, per lambda: bpp (from the real payload bytes), PSNR (RGB: over the three
channels; 4:2:0: Y and (4Y+U+V)/6), encode and decode seconds and MAC/pixel.

    python tools/bench_image.py --size 256 --format rgb --lambdas 1e-3 --iterations 2000 --complexity hop
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coolchic_stream.config import EncoderConfig  # noqa: E402
from coolchic_stream.decoder import Decoder  # noqa: E402
from coolchic_stream.encoder import Encoder, picture_psnr  # noqa: E402
from coolchic_stream.framecodec import parse_payload  # noqa: E402
from coolchic_stream.nn.coolchic import CoolChicEncoder  # noqa: E402
from coolchic_stream.types import DataType, Picture  # noqa: E402


def astronaut(size: int, data_type: DataType) -> Picture:
    """Centre crop of scikit-image's astronaut (public domain, NASA)."""
    from skimage import data

    rgb = data.astronaut()
    h, w, _ = rgb.shape
    top, left = (h - size) // 2, (w - size) // 2
    crop = rgb[top : top + size, left : left + size].astype(np.float64)
    if data_type == DataType.RGB:
        planes = tuple(np.ascontiguousarray(crop[..., c]).astype(np.uint8) for c in range(3))
        return Picture(planes, 8, DataType.RGB, 0)
    # BT.709 full range, chroma 2x2 mean
    r, g, b = crop[..., 0], crop[..., 1], crop[..., 2]
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    u = (b - y) / 1.8556 + 128
    v = (r - y) / 1.5748 + 128
    pool = lambda c: c.reshape(size // 2, 2, size // 2, 2).mean(axis=(1, 3))  # noqa: E731
    planes = tuple(np.clip(np.round(p), 0, 255).astype(np.uint8) for p in (y, pool(u), pool(v)))
    return Picture(planes, 8, DataType.YUV420, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--format", choices=["rgb", "yuv420"], default="rgb")
    ap.add_argument("--lambdas", default="1e-3")
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--complexity", default="hop")
    ap.add_argument("--preset", default="slow")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=1, help="encode each lambda with seeds 0..N-1 and print their mean")
    ap.add_argument("--first-seed", type=int, default=0, help="start the seeds here (split a run over processes)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    picture = astronaut(args.size, DataType.RGB if args.format == "rgb" else DataType.YUV420)
    rows = []
    print(f"astronaut {args.size}x{args.size} {args.format}, {args.iterations} iterations, {args.complexity}")
    print(f"{'lambda':>8} {'seed':>4} {'bpp':>7} {'PSNR':>7} {'PSNR-Y':>7} {'enc s':>7} {'dec s':>6} {'MAC/px':>7}")
    jobs = [(float(x), seed) for x in args.lambdas.split(",") for seed in range(args.first_seed, args.first_seed + args.seeds)]
    for lmbda, seed in jobs:
        config = EncoderConfig(preset=args.preset, lmbda=lmbda, iterations=args.iterations, complexity=args.complexity,
                               gop="intra", seed=seed)  # fmt: skip
        t0 = time.perf_counter()
        encoder = Encoder(config)
        packets = encoder.send(picture) + encoder.flush()
        enc_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        decoder = Decoder()
        decoded = decoder.send(packets[0]) + decoder.flush()
        dec_s = time.perf_counter() - t0
        psnr_y, psnr_all = picture_psnr(decoded[0], picture)
        bpp = 8 * len(packets[0].data) / (args.size * args.size)
        _, coded = parse_payload(packets[0].data)
        macs = sum(CoolChicEncoder(c.param).macs_per_pixel() for c in coded)
        rows.append({"lambda": lmbda, "seed": seed, "bpp": bpp, "psnr": psnr_all, "psnr_y": psnr_y, "encode_s": enc_s, "decode_s": dec_s, "mac_per_pixel": macs})
        print(f"{lmbda:8.0e} {seed:4d} {bpp:7.4f} {psnr_all:7.2f} {psnr_y:7.2f} {enc_s:7.1f} {dec_s:6.2f} {macs:7.0f}", flush=True)
        same = [r for r in rows if r["lambda"] == lmbda]
        if args.seeds > 1 and len(same) == args.seeds:
            mean = {k: float(np.mean([r[k] for r in same])) for k in ("bpp", "psnr", "psnr_y", "encode_s", "decode_s")}
            spread = max(r["bpp"] for r in same) - min(r["bpp"] for r in same), max(r["psnr"] for r in same) - min(r["psnr"] for r in same)
            print(f"{lmbda:8.0e} mean {mean['bpp']:7.4f} {mean['psnr']:7.2f} {mean['psnr_y']:7.2f} {mean['encode_s']:7.1f} "
                  f"{mean['decode_s']:6.2f} {macs:7.0f}   (spread {spread[0]:.4f} bpp, {spread[1]:.2f} dB)", flush=True)  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
