"""Training-speed benchmark: ms per iteration of the fast forward vs the straightforward baseline.

One training iteration = forward (soft-round + noise) -> rate-distortion loss ->
backward -> grad clipping -> optimizer step (SOAP for the NNs, Adam for the latents),
exactly as ``train.loop.train_phase``.
The fast path is ``CoolChicEncoder.forward``; the baseline is
``nn.reference.reference_forward`` (unfold contexts, per-grid loops, 2-D
transposed-conv upsampling) on the very same module and parameters. Both run
in the same process, interleaved round by round, and their outputs, rates and
gradients are compared first. A child process then trains a 1280x720 frame for
a few iterations and reports its peak memory.

    python tools/bench_train.py                       # 352x288, mop and hop, 1 thread
    python tools/bench_train.py --threads 2 --rounds 5 --iterations 10 --memory-baseline --json out/bench_train.json
    python tools/bench_train.py --complexity lop,mop --batch-bound 4,8 --no-speed --memory-size ''   # batching's ceiling

Threads: on a 2-core machine shared with other jobs, 2 intra-op threads make
every small parallel region wait for a descheduled peer (timings of both paths
then vary by several x from round to round); 1 thread gives stable numbers.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coolchic_stream.architecture import residue_parameter  # noqa: E402
from coolchic_stream.config import Complexity  # noqa: E402
from coolchic_stream.nn.coolchic import CoolChicEncoder, QuantizerSettings  # noqa: E402
from coolchic_stream.nn.quantizer import NoiseType, QuantizerMode  # noqa: E402
from coolchic_stream.nn.reference import reference_forward  # noqa: E402
from coolchic_stream.train.loop import Optimizers  # noqa: E402
from coolchic_stream.train.loss import Target, rd_loss  # noqa: E402
from coolchic_stream.types import DataType  # noqa: E402

QUANTIZER = QuantizerSettings(QuantizerMode.SOFTROUND, NoiseType.GAUSSIAN, 0.2, 0.3)
LAMBDA = 1e-3


def parse_size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def make_case(width: int, height: int, complexity: Complexity, device: str, seed: int = 0):
    """A Cool-chic with non-trivial parameters (as after some training) and a smooth random target."""
    g = torch.Generator().manual_seed(seed)
    cc = CoolChicEncoder(residue_parameter(height, width, 3, complexity)).to(device)
    with torch.no_grad():
        for p in cc.latents:
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for p in cc.nn_parameters():
            p.add_(torch.randn(p.shape, generator=g).to(device) * 0.05)
    dense = torch.nn.functional.interpolate(torch.rand(1, 3, height // 8 + 1, width // 8 + 1, generator=g), size=(height, width), mode="bilinear")
    return cc, Target.from_dense(dense.to(device), DataType.YUV420)


def make_step(cc: CoolChicEncoder, target: Target, forward):
    params_nn = cc.nn_parameters()
    opt = Optimizers(params_nn, cc.latent_parameters(), 1e-3, use_soap=True)
    h, w = cc.param.img_size

    def step() -> float:
        out = forward(QUANTIZER)
        loss, _, _ = rd_loss(out.raw[:, :3, :h, :w], out.rate, target, LAMBDA)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params_nn, 1e-1)
        opt.step()
        return float(loss.detach())

    return step


def agreement(cc: CoolChicEncoder, target: Target) -> dict[str, float]:
    """Max |fast - baseline| of output, rate and (relative) gradients, same seed for the noise."""
    h, w = cc.param.img_size
    results = []
    for forward in (cc, lambda q: reference_forward(cc, q)):
        torch.manual_seed(123)
        out = forward(QUANTIZER)
        loss, _, _ = rd_loss(out.raw[:, :3, :h, :w], out.rate, target, LAMBDA)
        cc.zero_grad(set_to_none=True)
        loss.backward()
        results.append((out.raw.detach(), out.rate.detach(), [p.grad.clone() for p in cc.parameters()]))
        cc.zero_grad(set_to_none=True)
    (ra, rr, ga), (rb, rrb, gb) = results
    grad = max(float((x - y).abs().max() / y.abs().max().clamp_min(1e-12)) for x, y in zip(ga, gb))
    return {"raw": float((ra - rb).abs().max()), "rate": float((rr - rrb).abs().max()), "rate_rel_sum": float((rr.sum() - rrb.sum()).abs() / rrb.sum()), "grad_rel": grad}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(size: tuple[int, int], complexity: Complexity, device: str, rounds: int, iterations: int) -> dict:
    cc, target = make_case(*size, complexity, device)
    agree = agreement(cc, target)
    state = {k: v.clone() for k, v in cc.state_dict().items()}
    paths = {"fast": make_step(cc, target, cc), "baseline": make_step(cc, target, lambda q: reference_forward(cc, q))}
    times: dict[str, list[float]] = {k: [] for k in paths}
    for name, step in paths.items():  # warm-up (allocator, thread pools)
        step()
        step()
    for r in range(rounds):
        order = list(paths.items()) if r % 2 == 0 else list(reversed(paths.items()))
        for name, step in order:
            cc.load_state_dict(state)  # same parameters for both paths every round
            sync(device)
            t0 = time.perf_counter()
            for _ in range(iterations):
                step()
            sync(device)
            times[name].append((time.perf_counter() - t0) / iterations * 1000)
    ratios = [b / f for f, b in zip(times["fast"], times["baseline"])]
    return {
        "size": f"{size[0]}x{size[1]}",
        "complexity": complexity.name,
        "mac_per_pixel": cc.macs_per_pixel(),
        "fast_ms": statistics.median(times["fast"]),
        "baseline_ms": statistics.median(times["baseline"]),
        "fast_ms_all": times["fast"],
        "baseline_ms_all": times["baseline"],
        "speedup_median_of_rounds": statistics.median(ratios),
        "agreement": agree,
    }


def batch_bound(size: tuple[int, int], complexity: Complexity, device: str, ks: list[int], rounds: int, iterations: int) -> dict:
    """What training K frames in one step could gain at most: ms per frame-iteration of one frame
    against one frame K times as wide. The wide frame has one frame's operations (same latent
    levels, same networks, same optimizer state) over K frames' data: the launches and Python work a
    batch would share, none of the per-sample work it could not."""
    w, h = size
    steps = {}
    for k in [1, *ks]:
        cc, target = make_case(w * k, h, complexity, device)
        steps[k] = make_step(cc, target, cc)
    times: dict[int, list[float]] = {k: [] for k in steps}
    for step in steps.values():
        step()
        step()
    for r in range(rounds):
        for k in steps if r % 2 == 0 else reversed(list(steps)):
            sync(device)
            t0 = time.perf_counter()
            for _ in range(iterations):
                steps[k]()
            sync(device)
            times[k].append((time.perf_counter() - t0) / iterations * 1000 / k)  # per frame
    per_frame = {k: statistics.median(v) for k, v in times.items()}
    return {"size": f"{w}x{h}", "complexity": complexity.name, "ms_per_frame_iteration": per_frame,
            "bound": {k: per_frame[1] / per_frame[k] for k in ks}}  # fmt: skip


def _rss_mib(field: str) -> float:
    """VmHWM (peak) or VmRSS of this process in MiB; ru_maxrss as a fallback (it survives exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(size: tuple[int, int], complexity: Complexity, device: str, iterations: int, path: str) -> dict:
    """Peak memory of training a frame of ``size`` (run in a fresh process)."""
    base = _rss_mib("VmRSS")
    cc, target = make_case(*size, complexity, device)
    step = make_step(cc, target, cc if path == "fast" else lambda q: reference_forward(cc, q))
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(iterations):
        step()
    sync(device)
    ms = (time.perf_counter() - t0) / iterations * 1000
    peak = _rss_mib("VmHWM")
    out = {"size": f"{size[0]}x{size[1]}", "complexity": complexity.name, "path": path, "ms_per_iteration": ms,
           "peak_rss_mib": peak, "rss_before_model_mib": base, "training_rss_mib": peak - base}  # fmt: skip
    if device.startswith("cuda"):
        out["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="352x288", help="WxH of the speed benchmark")
    ap.add_argument("--complexity", default="mop,hop")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: see the report in the docstring)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved fast/baseline rounds")
    ap.add_argument("--iterations", type=int, default=8, help="iterations per round")
    ap.add_argument("--memory-size", default="1280x720", help="WxH of the peak-memory run ('' to skip)")
    ap.add_argument("--memory-iterations", type=int, default=3)
    ap.add_argument("--no-speed", action="store_true", help="skip the fast-vs-baseline timing")
    ap.add_argument("--memory-baseline", action="store_true", help="also measure the baseline's peak memory")
    ap.add_argument("--memory-child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--batch-bound", default="", metavar="K,K",
                    help="also time one frame K times as wide per K (the most K frames per step could gain), at --bound-sizes")
    ap.add_argument("--bound-sizes", default="128x128,352x288")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    complexities = [Complexity[c.strip().upper()] for c in args.complexity.split(",")]

    if args.memory_child:
        print(json.dumps(memory_child(parse_size(args.memory_size), complexities[0], args.device, args.memory_iterations, args.memory_child)))
        return

    rows = []
    print(f"training iteration, {args.size}, {args.threads} thread(s), {args.device}, torch {torch.__version__}")
    if not args.no_speed:
        print(f"{'cplx':>5} {'MAC/px':>7} {'fast ms':>8} {'base ms':>8} {'speedup':>8}  agreement (max |diff|: raw, rate bits, rel. grad)")
    for cx in [] if args.no_speed else complexities:
        r = bench(parse_size(args.size), cx, args.device, args.rounds, args.iterations)
        a = r["agreement"]
        print(f"{r['complexity']:>5} {r['mac_per_pixel']:7.0f} {r['fast_ms']:8.1f} {r['baseline_ms']:8.1f} "
              f"{r['speedup_median_of_rounds']:7.2f}x  {a['raw']:.1e}, {a['rate']:.1e}, {a['grad_rel']:.1e}", flush=True)  # fmt: skip
        rows.append(r)

    bounds = []
    ks = [int(k) for k in args.batch_bound.split(",") if k.strip()]
    for size in [parse_size(t) for t in args.bound_sizes.split(",")] if ks else []:
        for cx in complexities:
            b = batch_bound(size, cx, args.device, ks, args.rounds, args.iterations)
            cols = ", ".join(f"K={k}: {b['ms_per_frame_iteration'][k]:.1f} ms ({b['bound'][k]:.2f}x)" for k in ks)
            print(f"batch bound {b['size']} {b['complexity']}: 1 frame {b['ms_per_frame_iteration'][1]:.1f} ms; "
                  f"per frame, K frames' data in one frame's step: {cols}", flush=True)  # fmt: skip
            bounds.append(b)

    memory = []
    if args.memory_size:
        for cx, path in [(c, p) for c in complexities for p in (["fast", "baseline"] if args.memory_baseline else ["fast"])]:
            cmd = [sys.executable, __file__, "--memory-child", path, "--memory-size", args.memory_size, "--complexity", cx.name,
                   "--threads", str(args.threads), "--device", args.device, "--memory-iterations", str(args.memory_iterations)]  # fmt: skip
            m = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            extra = f", CUDA peak {m['cuda_peak_allocated_mib']:.0f} MiB" if "cuda_peak_allocated_mib" in m else ""
            print(f"peak memory, training {m['size']} {m['complexity']} ({path}): {m['peak_rss_mib']:.0f} MiB RSS "
                  f"({m['training_rss_mib']:.0f} MiB above the process before the model{extra}), "
                  f"{m['ms_per_iteration']:.0f} ms/iteration", flush=True)  # fmt: skip
            memory.append(m)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"speed": rows, "batch_bound": bounds, "memory": memory, "threads": args.threads}, indent=2))


if __name__ == "__main__":
    main()
