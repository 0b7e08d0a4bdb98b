"""Decoder speed benchmark: frames/s, per-stage ms per frame and peak memory.

    python tools/bench_decode.py                       # 352x288 and 1280x720, RA gop 8, fast preset
    python tools/bench_decode.py --sizes 352x288 --frames 16 --gop intra
    python tools/bench_decode.py --source encode --iterations 50   # real encoder streams (slow to make)

Streams: by default *synthetic* ``--preset fast`` (LOP) streams: the exact architecture an encode
would send (residue + motion Cool-chics, RA hierarchy), random quantized weights and
Laplace-distributed latents, entropy-coded by the codec's own ``build_payload``.
Decoding cost depends on the architecture and frame size, not on how well the weights were
trained, so these time the decoder faithfully in seconds instead of hours of training.
``--source encode`` runs the real Encoder instead and caches its packets (bytes only) in
``out/bench_decode/`` (the benchmark's own cache; the codec never reads it).

Decoding reads a group of packets ahead (``--prefetch``): their latents entropy-decode together
in the decoder's helper process while the group before them reconstructs, as in
``coolchic-stream decode`` (which also tunes the allocator: ``--no-tune-allocator`` to compare).
The same run also times one packet at a time, entropy decoding in the calling thread.

Stages (ms per frame, measured by wrapping the decoder's internal functions, with the entropy
decoding kept in the calling thread so that the stages add up):
entropy = latent range decoding minus the ARM calls inside it; arm = integer ARM; upsampling;
synthesis; warping (motion-flow expansion + sinc warp + blending); io = header/NN parsing,
Q16<->sample conversion, DPB and reorder bookkeeping (everything else in Decoder.send/flush).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coolchic_stream.allocator import tune_allocator  # noqa: E402
from coolchic_stream.architecture import motion_parameter, parameter_shapes, residue_parameter  # noqa: E402
from coolchic_stream.config import Complexity  # noqa: E402
from coolchic_stream.decoder import Decoder, prefetch_group  # noqa: E402
from coolchic_stream.entropy.nn_weights import QuantizedModule  # noqa: E402
from coolchic_stream.framecodec import OUTPUTS, CodedCoolChic, FrameHeader, build_payload  # noqa: E402
from coolchic_stream.gop import schedule  # noqa: E402
from coolchic_stream.types import CoolChicRole, DataType, GopStructure, SequenceInfo  # noqa: E402

CACHE = ROOT / "out" / "bench_decode"
GOPS = {"intra": GopStructure.INTRA, "ra": GopStructure.RANDOM_ACCESS, "lowdelay": GopStructure.LOWDELAY}


# ----------------------------------------------------------------------------- synthetic streams
def _module(rng, shapes, w_step, b_step, w_sigma, b_sigma, fixed_w=None) -> QuantizedModule:
    ws = tuple(
        (fixed_w[i] if fixed_w is not None else np.round(rng.normal(0, w_sigma, s))).astype(np.int64)
        for i, s in enumerate(shapes[0])
    )
    bs = tuple(np.round(rng.normal(0, b_sigma, s)).astype(np.int64) for s in shapes[1])
    return QuantizedModule(ws, bs, w_step, b_step).with_best_orders()


def synthetic_coolchic(rng, role: CoolChicRole, param) -> CodedCoolChic:
    shapes = parameter_shapes(param)
    n_stages = param.n_grids - 1
    bicubic = np.array([-9, -27, 67, 225])[-param.ups_kernel // 2 :]
    ups_w = [bicubic] * n_stages + [np.round(rng.normal(0, 4, s)) for s in shapes["upsampling"][0][n_stages:]]
    # Motion synthesis gets small weights so that flows stay a few pixels, like real motion.
    syn_sigma = 6.0 if role == CoolChicRole.MOTION else 24.0
    modules = {
        "arm": _module(rng, shapes["arm"], -8, -16, 12.0, 3000.0),
        "upsampling": _module(rng, shapes["upsampling"], -8, 0, 0, 0, fixed_w=ups_w),
        "synthesis": _module(rng, shapes["synthesis"], -8, -12, syn_sigma, 200.0),
    }
    latents = []
    for i, (h, w) in enumerate(param.grid_sizes):
        scale = 0.25 * 1.6**i  # finer grids are sparser, as in trained Cool-chics
        g = np.clip(np.round(rng.laplace(0.0, scale, (h, w))), -64, 63).astype(np.int64)
        latents.append(g)
    return CodedCoolChic(role, param, modules, latents)


def synthetic_stream(width: int, height: int, n_frames: int, gop: str, gop_size: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    structure = GOPS[gop]
    packets = []
    for job in schedule(structure, gop_size, gop_size if structure == GopStructure.RANDOM_ACCESS else 32, n_frames):
        n_res, n_mot = OUTPUTS[job.frame_type]
        coded = [synthetic_coolchic(rng, CoolChicRole.RESIDUE, residue_parameter(height, width, n_res, Complexity.LOP))]
        if n_mot:
            coded.append(synthetic_coolchic(rng, CoolChicRole.MOTION, motion_parameter(height, width, n_mot, Complexity.LOP)))
        translations = tuple((int(rng.integers(-2, 3)), int(rng.integers(-2, 3))) for _ in job.references)
        header = FrameHeader(
            job.display_index, job.coding_index, job.frame_type, job.depth, DataType.YUV420, 8,
            width, height, tuple(job.references), translations,
        )  # fmt: skip
        packets.append(build_payload(header, coded))
    seq = SequenceInfo(
        width=width, height=height, gop_structure=structure, gop_size=gop_size,
        intra_period=gop_size if structure == GopStructure.RANDOM_ACCESS else 32, frame_count=n_frames,
    )  # fmt: skip
    return packets, seq


def encoded_stream(width: int, height: int, n_frames: int, gop: str, iterations: int, gop_size: int = 8):
    """Real Encoder packets, cached as a .ccv stream in the benchmark's own folder."""
    from coolchic_stream.bitstream.container import ContainerReader, ContainerWriter

    path = CACHE / f"enc_{width}x{height}_{n_frames}_{gop}_{iterations}.ccv"
    if path.exists():
        with ContainerReader(path) as reader:
            return [p.data for p in reader], reader.sequence
    sys.path.insert(0, str(ROOT / "tools"))
    from clips import bbb_crop

    from coolchic_stream.config import EncoderConfig
    from coolchic_stream.encoder import Encoder
    from coolchic_stream.types import Picture

    clip = bbb_crop(n_frames, width=width, height=height, x=0 if width > 352 else 448, y=0 if height > 288 else 128)
    config = EncoderConfig(preset="fast", gop=gop, gop_size=gop_size, intra_period=gop_size, iterations=iterations)
    enc = Encoder(config)
    packets = []
    for i, planes in enumerate(clip.frames):
        packets += enc.send(Picture(planes, 8, pts=i))
    packets += enc.flush()
    seq = SequenceInfo(width=width, height=height, gop_structure=config.gop, gop_size=gop_size, intra_period=gop_size)
    CACHE.mkdir(parents=True, exist_ok=True)
    writer = ContainerWriter(path, seq)
    for p in packets:
        writer.write(p)
    writer.close()
    return [p.data for p in packets], seq


# ----------------------------------------------------------------------------- stage timers
class StageTimer:
    """Wraps module-level functions; nested timed calls are subtracted from their caller."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self._stack: list[list[float]] = []

    def wrap(self, module, name: str, stage: str):
        original = getattr(module, name)

        def timed(*args, **kwargs):
            self._stack.append([time.perf_counter(), 0.0])
            try:
                return original(*args, **kwargs)
            finally:
                start, inner = self._stack.pop()
                elapsed = time.perf_counter() - start
                self.totals[stage] = self.totals.get(stage, 0.0) + elapsed - inner
                if self._stack:
                    self._stack[-1][1] += elapsed

        setattr(module, name, timed)
        return original


@contextlib.contextmanager
def instrumented(timer: StageTimer):
    """Time the decoder's internal stages by wrapping the functions it looks up at call time."""
    import coolchic_stream.entropy.latents as latents
    import coolchic_stream.framecodec as framecodec
    import coolchic_stream.recon.coolchic as coolchic
    import coolchic_stream.recon.frame as frame

    targets = [
        (framecodec, "decode_latents", "entropy"),
        (framecodec, "decode_latents_many", "entropy"),
        (latents, "decode_latents", "entropy"),
        (coolchic, "upsample_exact", "upsampling"),
        (coolchic, "synthesize_exact", "synthesis"),
        (framecodec, "assemble", "warping"),
        (frame, "assemble", "warping"),
    ]
    for hook in getattr(latents, "TIMING_HOOKS", ()):  # optional finer hooks exposed by the decoder
        targets.append(hook)
    import coolchic_stream.entropy.arm_int as arm_int

    # The integer ARM runs inside latent decoding: its time is split out of "entropy".
    arm_targets = [(getattr(arm_int, "ArmStack", arm_int.IntegerArm), "__call__")]
    saved = []
    seen = set()
    for module, name, stage in targets:
        if hasattr(module, name) and (id(module), name) not in seen:
            seen.add((id(module), name))
            saved.append((module, name, timer.wrap(module, name, stage)))
    for module, name in arm_targets:
        saved.append((module, name, timer.wrap(module, name, "arm")))
    try:
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


# ----------------------------------------------------------------------------- benchmark
PREFETCH: int | None = None  # packets entropy-decoded together (None: as `coolchic-stream decode`; 0: one at a time)


def decode_all(packets, seq, pipeline: bool = True):
    dec = Decoder(seq, pipeline=pipeline)
    out = []
    group = (prefetch_group(seq) if PREFETCH is None else PREFETCH) or 1
    chunks = [packets[start : start + group] for start in range(0, len(packets), group)]
    for k, chunk in enumerate(chunks):
        if PREFETCH != 0:  # group k was started one turn earlier; k+1 decodes while k reconstructs
            for ahead in chunks[k : k + 2] if k == 0 else chunks[k + 1 : k + 2]:
                dec.prefetch(ahead)
        for p in chunk:
            out += dec.send(p)
    out += dec.flush()
    return out


def bench(packets, seq, repeat: int, stages: bool):
    gc.collect()
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        pictures = decode_all(packets, seq)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    result = {"frames": len(pictures), "seconds": best, "fps": len(pictures) / best}
    if stages:
        timer = StageTimer()
        with instrumented(timer):
            t0 = time.perf_counter()
            decode_all(packets, seq, pipeline=False)  # the stage timer follows one thread
            total = time.perf_counter() - t0
        n = len(pictures)
        ms = {k: 1000 * v / n for k, v in timer.totals.items()}
        ms["io"] = 1000 * total / n - sum(ms.values())
        result["stage_ms"] = ms
        result["stage_total_ms"] = 1000 * total / n
    tracemalloc.start()
    decode_all(packets, seq)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result["tracemalloc_peak_mib"] = peak / 2**20
    digest = hashlib.md5()
    for p in pictures:
        for plane in p.planes:
            digest.update(np.ascontiguousarray(plane).tobytes())
    result["md5"] = digest.hexdigest()
    return result, pictures


def main(argv=None) -> int:
    global PREFETCH
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="352x288,1280x720")
    ap.add_argument("--frames", type=int, default=16, help="frames per size (1280x720 uses min(frames, 8) unless --frames-hd)")
    ap.add_argument("--frames-hd", type=int, default=8)
    ap.add_argument("--gop", default="ra", choices=sorted(GOPS))
    ap.add_argument("--source", default="synthetic", choices=("synthetic", "encode"))
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--prefetch", type=int, default=None, help="packets entropy-decoded together (default: as the CLI; 0: one at a time)")
    ap.add_argument("--no-tune-allocator", action="store_true", help="leave glibc's mmap/trim thresholds alone (the CLI tunes them)")
    args = ap.parse_args(argv)
    PREFETCH = args.prefetch
    if not args.no_tune_allocator:
        print(f"allocator tuned: {tune_allocator()}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    for size in args.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        n = args.frames if w * h <= 352 * 288 else args.frames_hd
        t0 = time.perf_counter()
        if args.source == "synthetic":
            packets, seq = synthetic_stream(w, h, n, args.gop)
        else:
            packets, seq = encoded_stream(w, h, n, args.gop, args.iterations)
        made = time.perf_counter() - t0
        kbytes = sum(len(p) for p in packets) / 1024
        res, _ = bench(packets, seq, args.repeat, stages=True)
        print(f"{w}x{h} {args.gop} {res['frames']} frames ({kbytes:.0f} KiB, stream made in {made:.1f} s)")
        print(f"  {res['fps']:.2f} frames/s  ({1000 * res['seconds'] / res['frames']:.1f} ms/frame, best of {args.repeat})")
        stage = res["stage_ms"]
        order = ["entropy", "arm", "upsampling", "synthesis", "warping", "io"]
        print("  ms/frame: " + "  ".join(f"{k} {stage.get(k, 0.0):.1f}" for k in order)
              + f"  (instrumented total {res['stage_total_ms']:.1f})")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  output md5 {res['md5']}")
        if PREFETCH != 0:
            PREFETCH, chosen = 0, PREFETCH
            alone, _ = bench(packets, seq, args.repeat, stages=False)
            PREFETCH = chosen
            group = prefetch_group(seq) if chosen is None else chosen
            print(f"  one packet at a time: {alone['fps']:.2f} frames/s, same output: {alone['md5'] == res['md5']}"
                  f"  (prefetching {group}: {res['fps'] / alone['fps']:.2f}x)")  # fmt: skip
        print(f"  peak memory: tracemalloc {res['tracemalloc_peak_mib']:.1f} MiB (numpy/python heap), maxrss {rss:.0f} MiB (process so far)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
