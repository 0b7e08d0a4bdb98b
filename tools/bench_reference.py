"""Reference benchmark: Cool-chic's own encoder on the still-image benchmark's photo.

Runs a local checkout of Orange's Cool-chic (5.x, `cc_encode.py`; not shipped with this
project, nothing of it is imported here) as a subprocess on the same centre crop that
`bench_image.py` codes, with the same lambda, total iteration budget and complexity, and
prints the same columns: bpp from the size of the `.cool` file it writes, PSNR of the image
it decodes (computed here, with this project's metric), and the wall time of the run
(training, quantization, bitstream writing and its own decode check). Each seed seeds
torch's global generator before the reference starts (its initialisation; its training
noise has a fixed seed of its own).

    python tools/bench_reference.py --coolchic ~/Cool-Chic --python ~/Cool-Chic/.venv/bin/python \\
        --size 256 --lambdas 1e-3 --iterations 2000 --complexity hop --threads 1 --seeds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_image import astronaut  # noqa: E402

from coolchic_stream.encoder import picture_psnr  # noqa: E402
from coolchic_stream.types import DataType, Picture  # noqa: E402

# Seeds torch, then runs the reference's command-line entry point as if started directly.
_LAUNCH = (
    "import runpy, sys, torch; torch.manual_seed(int(sys.argv[1])); "
    "sys.argv = ['cc_encode.py'] + sys.argv[2:]; runpy.run_path('cc_encode.py', run_name='__main__')"
)


def _png_picture(path: Path) -> Picture:
    rgb = np.asarray(Image.open(path).convert("RGB"))
    return Picture(tuple(np.ascontiguousarray(rgb[..., c]) for c in range(3)), 8, DataType.RGB, 0)


def _encoder_results(workdir: Path) -> dict[str, str]:
    """The reference's own per-frame summary (rates split by module, MAC/pixel)."""
    header, values = (workdir / "0000-results_encoder.tsv").read_text().splitlines()[:2]
    return dict(zip(header.split(), values.split()))


def run_reference(
    checkout: Path, python: str, source: Path, picture: Picture, workdir: Path, lmbda: float,
    iterations: int, complexity: str, seed: int, threads: int,
) -> dict[str, float]:  # fmt: skip
    """One reference encode of ``source`` (the PNG of ``picture``) in its own working folder."""
    workdir.mkdir(parents=True, exist_ok=True)
    bitstream = workdir / "frame.cool"
    # The reference skips a frame whose encoder it finds saved: clear an earlier run's files.
    for stale in [bitstream, *workdir.glob("0000-*")]:
        stale.unlink(missing_ok=True)
    command = [
        python, "-c", _LAUNCH, str(seed), "-i", str(source), "-o", str(bitstream), "--workdir", str(workdir),
        "--lmbda", str(lmbda), "--n_itr", str(iterations),
        "--dec_cfg_residue", str(checkout / "cfg" / "dec" / "intra" / f"{complexity}.cfg"),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(checkout))
    t0 = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise SystemExit(f"error: --python {python} cannot be started ({exc.strerror}); hint: give its interpreter") from None
    seconds = time.perf_counter() - t0
    (workdir / "log.txt").write_text(done.stdout + done.stderr)
    if done.returncode != 0 or not bitstream.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"error: the reference encoder failed ({tail[0]}); its log is {workdir / 'log.txt'}")
    decoded = sorted(workdir.glob("0000-decoded-*.png"))
    if not decoded:
        raise SystemExit(f"error: the reference wrote no decoded PNG in {workdir}; hint: is it Cool-chic 5.x?")
    psnr_y, psnr_all = picture_psnr(_png_picture(decoded[0]), picture)
    own = _encoder_results(workdir)
    return {
        "bpp": 8 * bitstream.stat().st_size / (picture.width * picture.height),
        "psnr": psnr_all,
        "psnr_y": psnr_y,
        "encode_s": seconds,
        "latent_bpp": float(own.get("latent_bpp", "nan")),
        "nn_bpp": float(own.get("nn_bpp", "nan")),
        "mac_per_pixel": float(own.get("mac_decoded_pixel", "nan")),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coolchic", type=Path, required=True, help="a Cool-chic 5.x checkout (holds cc_encode.py)")
    ap.add_argument("--python", default=sys.executable, help="interpreter with the reference's requirements")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--lambdas", default="1e-3")
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--complexity", choices=["lop", "mop", "hop"], default="hop")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, help="keep the reference's files here (default: a temporary folder)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    checkout = args.coolchic.expanduser().resolve()
    if not (checkout / "cc_encode.py").exists():
        raise SystemExit(f"error: --coolchic {args.coolchic} holds no cc_encode.py; hint: give a Cool-chic 5.x checkout")
    root = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="cc-reference-"))
    source = root / f"astronaut_{args.size}.png"
    root.mkdir(parents=True, exist_ok=True)
    picture = astronaut(args.size, DataType.RGB)
    Image.fromarray(np.stack(picture.planes, axis=-1)).save(source)

    print(f"Cool-chic reference, astronaut {args.size}x{args.size} rgb, {args.iterations} iterations, {args.complexity}")
    print(f"{'lambda':>8} {'seed':>4} {'bpp':>7} {'PSNR':>7} {'PSNR-Y':>7} {'enc s':>7} {'lat bpp':>7} {'NN bpp':>7} {'MAC/px':>7}")
    rows = []
    for lmbda in (float(x) for x in args.lambdas.split(",")):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            folder = root / f"lambda{lmbda:g}_{args.iterations}its_{args.complexity}_seed{seed}"
            r = run_reference(checkout, args.python, source, picture, folder, lmbda,
                              args.iterations, args.complexity, seed, args.threads)  # fmt: skip
            rows.append({"lambda": lmbda, "seed": seed, **r})
            print(f"{lmbda:8.0e} {seed:4d} {r['bpp']:7.4f} {r['psnr']:7.3f} {r['psnr_y']:7.3f} {r['encode_s']:7.1f} "
                  f"{r['latent_bpp']:7.4f} {r['nn_bpp']:7.4f} {r['mac_per_pixel']:7.0f}", flush=True)  # fmt: skip
        same = [r for r in rows if r["lambda"] == lmbda]
        if len(same) > 1:
            mean = {k: float(np.mean([r[k] for r in same])) for k in ("bpp", "psnr", "psnr_y", "encode_s")}
            print(f"{lmbda:8.0e} mean {mean['bpp']:7.4f} {mean['psnr']:7.3f} {mean['psnr_y']:7.3f} {mean['encode_s']:7.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
