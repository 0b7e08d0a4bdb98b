#!/usr/bin/env python3
"""RD benchmark: coolchic-stream vs x264/x265 (through PyAV) on one clip: table, BD-rate, rd.json, rd.csv, rd.png.

Example (repository root, venv active)::

    python tools/rd_benchmark.py --clip bbb --frames 9 --width 352 --height 288 \\
        --lambdas 2e-3,7e-4,2e-4,6e-5 --crfs 22,27,32,37 --preset fast \\
        --gop ra --gop-size 8 --intra-period 8 --out out/rd

Rates: kbit/s and bpp from the *coded* bytes (x264/x265: sum of packet sizes less the SEI
NAL units, i.e. libx264's ~0.7 KB version/options string; no container, no out-of-band
parameter sets; coolchic-stream: sum of ``Packet.data``). Whole-stream figures
(.mp4 file; .ccv stream written with the library's ContainerWriter, or payload + 20 B/frame when
that is unavailable) are in rd.json/rd.csv as ``stream_bytes``/``stream_kbps``.
Quality: sequence PSNR = mean of per-frame PSNR, YUV weighted 6:1:1 (tools/metrics.py).
BD-rate: VCEG-M33 cubic, log(payload rate) vs PSNR-YUV 6:1:1 (tools/bdrate.py); BD-rate on
PSNR-Y and BD-PSNR are reported too. Negative BD-rate = coolchic-stream saves bits.

Each coolchic-stream encode is kept as ``lambda_<λ>.ccv`` in --out, and its bits are split per
frame type into NN and latents with the library's own ``inspect`` (``report.inspect_stream``:
NN = -sum log2 p of the NN bins as coded; latents = the rest of the range-coder streams; header =
the rest of the payloads). ``--baseline OTHER/rd.json`` adds the coolchic-stream rows of an
earlier run (e.g. an older version, run with its own checkout) as ``coolchic-baseline`` and
reports the BD-rate against them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import platform
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools import anchors as anchors_mod  # noqa: E402
from tools.bdrate import bd_psnr, bd_rate  # noqa: E402
from tools.clips import Planes, get_clip  # noqa: E402
from tools.metrics import bpp, kbps, sequence_psnr  # noqa: E402

CCV_OVERHEAD_PER_FRAME = 20  # bytes, estimate used only when ContainerWriter is unavailable

CSV_FIELDS = [
    "codec", "setting", "kbps", "bpp", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv611", "psnr_yuv411",
    "encode_s", "decode_s", "coded_bytes", "payload_bytes", "sei_bytes", "stream_bytes", "stream_kbps",
]


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--clip", choices=["bbb", "pan", "testsrc2"], default="bbb", help="bbb: Big Buck Bunny crop; pan: astronaut pan")
    p.add_argument("--start", type=int, default=None, help="bbb: first frame (default: the clip builder's)")
    p.add_argument("--x", type=int, default=None, help="bbb: window left edge (even)")
    p.add_argument("--y", type=int, default=None, help="bbb: window top edge (even)")
    p.add_argument("--baseline", default=None, help="rd.json of an earlier run: its coolchic rows become coolchic-baseline")
    p.add_argument("--report", default=None, metavar="RD_JSON",
                   help="encode nothing: report an earlier run's rows (with --baseline: against it)")
    p.add_argument("--frames", type=int, default=9)
    p.add_argument("--width", type=int, default=352)
    p.add_argument("--height", type=int, default=288)
    p.add_argument("--lambdas", type=_floats, default=_floats("2e-3,7e-4,2e-4,6e-5"), help="coolchic-stream lambdas")
    p.add_argument("--crfs", type=_ints, default=_ints("22,27,32,37"), help="x264/x265 CRFs")
    p.add_argument("--preset", default="fast", help="coolchic-stream preset (test, fast, medium, slow)")
    p.add_argument("--anchor-preset", default="medium", help="x264/x265 preset")
    p.add_argument("--codecs", default="libx264,libx265", help="anchors to run (comma list, may be empty)")
    p.add_argument("--gop", default="ra", choices=["intra", "lowdelay", "ra"])
    p.add_argument("--gop-size", type=int, default=8)
    p.add_argument("--intra-period", type=int, default=8, help="also the anchors' keyint")
    p.add_argument("--iterations", type=int, default=None, help="override the preset's iterations per frame")
    p.add_argument("--device", default="cpu")
    p.add_argument("--nn-prediction", default=None, choices=["off", "copy", "all"], help="coolchic-stream's (default: the library's)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (2 on a busy 2-core machine oversubscribes it)")
    p.add_argument("--reuse", action="store_true", help="a lambda whose lambda_L.ccv is already in --out is decoded from it, not encoded again (resumes an interrupted run; its encode time is unknown)")
    p.add_argument("--no-coolchic", action="store_true", help="anchors only")
    p.add_argument("--cache-clip", action="store_true", help="keep the clip as y4m under out/clips/")
    p.add_argument("--out", default="out/rd")
    return p.parse_args(argv)


# ------------------------------------------------------------------ anchors


def run_anchor_rows(frames: list[Planes], fps: Fraction, args: argparse.Namespace) -> list[dict]:
    codecs = [c for c in args.codecs.split(",") if c]
    rows = []
    for codec in codecs:
        for crf in args.crfs:
            r = anchors_mod.encode_decode(frames, codec, crf, fps, args.intra_period, args.anchor_preset)
            s = r.psnr.summary()
            rows.append(
                {
                    "codec": codec.removeprefix("lib"),
                    "setting": f"crf={crf}",
                    "kbps": r.kbps,
                    "bpp": r.bpp,
                    "psnr_y": s["y"], "psnr_u": s["u"], "psnr_v": s["v"],
                    "psnr_yuv611": s["yuv611"], "psnr_yuv411": s["yuv411"],
                    "encode_s": r.encode_s,
                    "decode_s": r.decode_s,
                    "payload_bytes": r.payload_bytes,
                    "coded_bytes": r.coded_bytes,
                    "sei_bytes": r.sei_bytes,
                    "stream_bytes": r.file_bytes,
                    "stream_kbps": r.file_kbps,
                    "header_bytes": r.header_bytes,
                    "frame_types": "".join(r.frame_types),
                    "psnr_per_frame": [f.as_dict() for f in r.psnr.frames],
                }
            )
            _progress(rows[-1])
    return rows


# ------------------------------------------------------------------ coolchic-stream


def coolchic_available() -> str | None:
    """None when the library's encoder/decoder import; otherwise why not."""
    try:
        import coolchic_stream.decoder  # noqa: F401
        import coolchic_stream.encoder  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - report whatever stops the import
        return f"{type(exc).__name__}: {exc}"
    return None


def _stream_bytes(packets: list, width: int, height: int, fps: Fraction, args: argparse.Namespace, keep: Path) -> tuple[int, str]:
    """Whole .ccv size written by the library's ContainerWriter (kept at ``keep``), or the payload + 20 B/frame estimate."""
    try:
        from coolchic_stream.bitstream.container import ContainerWriter
        from coolchic_stream.config import GOP_NAMES
        from coolchic_stream.types import SequenceInfo

        seq = SequenceInfo(
            width=width, height=height, frame_rate=fps, gop_structure=GOP_NAMES[args.gop],
            gop_size=args.gop_size, intra_period=args.intra_period,
        )
        buf = io.BytesIO()
        with ContainerWriter(buf, seq) as writer:
            for packet in sorted(packets, key=lambda p: p.dts):
                writer.write(packet)
        keep.write_bytes(buf.getvalue())
        return len(buf.getvalue()), "ccv"
    except Exception:  # noqa: BLE001 - fall back to the documented estimate
        return sum(len(p.data) for p in packets) + CCV_OVERHEAD_PER_FRAME * len(packets), "estimate"


def run_coolchic_rows(frames: list[Planes], fps: Fraction, args: argparse.Namespace) -> list[dict]:
    import torch

    torch.set_num_threads(args.threads)
    from coolchic_stream.config import EncoderConfig
    from coolchic_stream.decoder import Decoder
    from coolchic_stream.encoder import Encoder
    from coolchic_stream.types import DataType, Picture

    h, w = frames[0][0].shape
    rows = []
    for lmbda in args.lambdas:
        cfg = dict(preset=args.preset, lmbda=lmbda, gop=args.gop, gop_size=args.gop_size, intra_period=args.intra_period, device=args.device)
        if args.iterations:
            cfg["iterations"] = args.iterations
        if args.nn_prediction:
            cfg["nn_prediction"] = args.nn_prediction
        kept = Path(args.out) / f"lambda_{lmbda:g}.ccv"
        if args.reuse and kept.exists():
            # an interrupted run's stream: encoding is deterministic, so read it back (no encode time)
            from coolchic_stream.bitstream.reader import ContainerReader

            with ContainerReader(kept) as reader:
                packets = list(reader)
            encode_s = math.nan
        else:
            encoder = Encoder(EncoderConfig(**cfg))
            packets = []
            t0 = time.perf_counter()
            for i, (y, u, v) in enumerate(frames):
                packets += encoder.send(Picture(planes=(y, u, v), bit_depth=8, data_type=DataType.YUV420, pts=i))
            packets += encoder.flush()
            encode_s = time.perf_counter() - t0

        decoded = []
        t0 = time.perf_counter()
        decoder = Decoder()
        for packet in sorted(packets, key=lambda p: p.dts):
            decoded += decoder.send(packet)
        decoded += decoder.flush()
        decode_s = time.perf_counter() - t0
        decoded.sort(key=lambda pic: pic.pts)
        if [pic.pts for pic in decoded] != list(range(len(frames))):
            raise RuntimeError(f"lambda {lmbda}: decoder returned pts {[pic.pts for pic in decoded]}")

        payload = sum(len(p.data) for p in packets)
        stream, how = _stream_bytes(packets, w, h, fps, args, kept)
        seq = sequence_psnr(frames, [pic.planes for pic in decoded], 8)
        s = seq.summary()
        rows.append(
            {
                "codec": "coolchic",
                "setting": f"lambda={lmbda:g}",
                "kbps": kbps(payload, len(frames), fps),
                "bpp": bpp(payload, len(frames), w, h),
                "psnr_y": s["y"], "psnr_u": s["u"], "psnr_v": s["v"],
                "psnr_yuv611": s["yuv611"], "psnr_yuv411": s["yuv411"],
                "encode_s": encode_s,
                "decode_s": decode_s,
                "payload_bytes": payload,
                "coded_bytes": payload,
                "sei_bytes": 0,
                "stream_bytes": stream,
                "stream_bytes_from": how,
                "stream_kbps": kbps(stream, len(frames), fps),
                "frame_types": "".join(p.frame_type.name for p in sorted(packets, key=lambda p: p.pts)),
                "psnr_per_frame": [f.as_dict() for f in seq.frames],
                "bits_split": bits_split(kept),
            }
        )
        _progress(rows[-1])
    return rows


def bits_split(path: Path) -> dict[str, dict[str, float]] | None:
    """Per frame kind (I, P, B, intra-coded P/B): frames, payload bits, NN bits, latent bits
    (inspect's split of a kept stream; None when this version cannot tell)."""
    try:
        from coolchic_stream.report import inspect_stream

        report = inspect_stream(str(path))
    except Exception:  # noqa: BLE001 - an older or broken library: no split
        return None
    out: dict[str, dict[str, float]] = {}
    for f in report["frames"]:
        kind = f["type"] + (" (intra)" if f["intra_coded"] else "")
        nn = sum(c["nn_bits"] or 0.0 for c in f["coolchics"])
        streams = 8 * sum(c["stream_bytes"] for c in f["coolchics"])
        entry = out.setdefault(kind, {"frames": 0, "bits": 0.0, "nn_bits": 0.0, "latent_bits": 0.0, "header_bits": 0.0})
        entry["frames"] += 1
        entry["bits"] += 8 * f["payload_bytes"]
        entry["nn_bits"] += nn
        entry["latent_bits"] += streams - nn
        entry["header_bits"] += 8 * f["payload_bytes"] - streams
    return out


# ------------------------------------------------------------------ report


def _progress(row: dict) -> None:
    print(
        f"  done {row['codec']:<8} {row['setting']:<14} {row['kbps']:9.1f} kbit/s  "
        f"PSNR-YUV {row['psnr_yuv611']:6.2f} dB  enc {row['encode_s']:.2f} s",
        file=sys.stderr,
        flush=True,
    )


def table(rows: list[dict]) -> str:
    head = f"{'codec':<9}{'setting':<15}{'kbit/s':>9}{'bpp':>8}{'PSNR-Y':>8}{'YUV611':>8}{'enc s':>9}{'dec s':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['codec']:<9}{r['setting']:<15}{r['kbps']:9.1f}{r['bpp']:8.4f}{r['psnr_y']:8.2f}"
            f"{r['psnr_yuv611']:8.2f}{r['encode_s']:9.2f}{r['decode_s']:8.3f}"
        )
    return "\n".join(lines)


def split_table(rows: list[dict]) -> str:
    """Per coolchic row and frame kind: mean bits per frame, NN share, latent share."""
    lines = []
    for r in rows:
        if not r.get("bits_split"):
            continue
        for kind, e in sorted(r["bits_split"].items()):
            n = e["frames"]
            lines.append(
                f"  {r['codec']:<18}{r['setting']:<15}{kind:<10}{n:3d} frames {e['bits'] / n:9.0f} b/frame  "
                f"NN {e['nn_bits'] / n:7.0f} ({100 * e['nn_bits'] / e['bits']:4.1f} %)  latents {e['latent_bits'] / n:7.0f}"
            )
        pb = [e for kind, e in r["bits_split"].items() if not kind.startswith("I")]
        if pb:
            bits, nn = sum(e["bits"] for e in pb), sum(e["nn_bits"] for e in pb)
            lines.append(f"  {r['codec']:<18}{r['setting']:<15}P/B all   NN {100 * nn / bits:4.1f} % of {bits:.0f} bits")
    return "\n".join(lines)


def curve(rows: list[dict], codec: str, key: str) -> tuple[list[float], list[float]]:
    sel = [r for r in rows if r["codec"] == codec]
    return [r["kbps"] for r in sel], [r[key] for r in sel]


def bd_table(rows: list[dict]) -> dict[str, dict[str, float | str]]:
    """BD figures of each test codec against each anchor: {"coolchic vs x264": {...}, ...}."""
    codecs = list(dict.fromkeys(r["codec"] for r in rows))
    tests = [c for c in codecs if c == "coolchic"]
    anchors = [c for c in codecs if c != "coolchic"]
    pairs = [(t, a) for t in tests for a in anchors]
    if "coolchic-baseline" in anchors:
        pairs += [("coolchic-baseline", a) for a in anchors if a != "coolchic-baseline"]
    if "x264" in anchors and "x265" in anchors:
        pairs.append(("x265", "x264"))  # sanity line: x265 should beat x264
    out: dict[str, dict[str, float | str]] = {}
    for test, anchor in pairs:
        entry: dict[str, float | str] = {}
        for key, name in (("psnr_yuv611", "bd_rate_yuv611_pct"), ("psnr_y", "bd_rate_y_pct")):
            try:
                entry[name] = bd_rate(*curve(rows, anchor, key), *curve(rows, test, key))
            except ValueError as exc:
                entry[name] = f"n/a ({exc})"
        try:
            entry["bd_psnr_yuv611_db"] = bd_psnr(*curve(rows, anchor, "psnr_yuv611"), *curve(rows, test, "psnr_yuv611"))
        except ValueError as exc:
            entry["bd_psnr_yuv611_db"] = f"n/a ({exc})"
        out[f"{test} vs {anchor}"] = entry
    return out


def plot(rows: list[dict], path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    styles = {"x264": "s--", "x265": "^--", "coolchic": "o-", "coolchic-baseline": "o:"}
    for ax, key, label in ((axes[0], "psnr_yuv611", "PSNR-YUV 6:1:1 (dB)"), (axes[1], "psnr_y", "PSNR-Y (dB)")):
        for codec in dict.fromkeys(r["codec"] for r in rows):
            x, y = curve(rows, codec, key)
            order = np.argsort(x)
            ax.plot(np.array(x)[order], np.array(y)[order], styles.get(codec, "x-"), label=codec)
        ax.set_xscale("log")
        ax.set_xlabel("coded rate (kbit/s, log scale)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    window = {k: v for k, v in (("start", args.start), ("x", args.x), ("y", args.y)) if v is not None}
    clip = get_clip(args.clip, args.frames, args.width, args.height, cache=args.cache_clip, **window)
    frames, fps = clip.frames, clip.fps
    h, w = frames[0][0].shape
    print(f"clip {args.clip}: {len(frames)} frames {w}x{h} @ {float(fps):g} fps", file=sys.stderr)

    if args.report:
        earlier_run = json.loads(Path(args.report).read_text())
        rows = [r for r in earlier_run["rows"] if not args.baseline or r["codec"] != "coolchic-baseline"]
        for key in ("preset", "gop", "gop_size", "intra_period", "anchor_preset", "iterations"):
            if key in earlier_run.get("args", {}):  # the settings the rows were measured with, for the record
                setattr(args, key, earlier_run["args"][key])
        coolchic_status = "ok (from " + args.report + ")"
    else:
        rows = run_anchor_rows(frames, fps, args)
        coolchic_status = "skipped (--no-coolchic)" if args.no_coolchic else None
    if not args.no_coolchic and not args.report:
        why = coolchic_available()
        if why is not None:
            coolchic_status = f"not run: coolchic_stream encoder/decoder not importable yet ({why})"
            print(f"coolchic-stream {coolchic_status}", file=sys.stderr)
        else:
            rows += run_coolchic_rows(frames, fps, args)
            coolchic_status = "ok"
    if args.baseline:
        earlier = json.loads(Path(args.baseline).read_text())
        rows += [{**r, "codec": "coolchic-baseline"} for r in earlier["rows"] if r["codec"] == "coolchic"]

    print(table(rows))
    split = split_table(rows)
    if split:
        print("\nbits per frame kind (NN = -sum log2 p of the NN bins; latents = the rest of the range-coder streams):")
        print(split)
    bd = bd_table(rows)
    if bd:
        print("\nBD (VCEG-M33 cubic; rate = coded kbit/s; negative BD-rate = fewer bits than the anchor):")
        for name, entry in bd.items():
            vals = "  ".join(f"{k}={v:+.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items())
            print(f"  {name:<18} {vals}")
    if not coolchic_status.startswith("ok"):
        print(f"\ncoolchic-stream: {coolchic_status}")

    title = (
        f"{args.clip} {w}x{h}, {len(frames)} frames @ {float(fps):g} fps; coolchic preset={args.preset} "
        f"gop={args.gop}/{args.gop_size} intra={args.intra_period}; x26x {args.anchor_preset} keyint={args.intra_period}"
    )
    result = {
        "clip": {"name": args.clip, "frames": len(frames), "width": w, "height": h, "fps": float(fps)},
        "args": {k: v for k, v in vars(args).items()},
        "conventions": {
            "rate": "kbps/bpp from coded bytes (packet payload less SEI NAL units); stream_* from whole .mp4 / .ccv",
            "psnr": "peak 255; sequence PSNR = mean of per-frame PSNR; yuv611 = (6Y+U+V)/8, yuv411 = (4Y+U+V)/6",
            "bd": "VCEG-M33 cubic fit of log(rate) vs PSNR over the overlapping PSNR interval",
        },
        "coolchic_status": coolchic_status,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "processor": platform.processor()},
        "rows": rows,
        "bd": bd,
    }
    (out / "rd.json").write_text(json.dumps(result, indent=1, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o)))
    with open(out / "rd.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    plotted = plot(rows, out / "rd.png", title)
    print(f"\nwrote {out / 'rd.json'}, {out / 'rd.csv'}" + (f", {out / 'rd.png'}" if plotted else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
