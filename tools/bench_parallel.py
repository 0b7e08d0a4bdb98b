"""Scale-out benchmark: wall time of one encode run inline, on N local worker processes, and on Ray.

    python tools/bench_parallel.py                                  # the sample, 4 segments, jobs 1 and 2
    python tools/bench_parallel.py --jobs 1,2 --ray                 # also a local Ray instance (2 CPUs)
    python tools/bench_parallel.py --input clip.y4m --frames 32 --intra-period 8 --preset fast

Every run encodes the same pictures with the same options through ``coolchic_stream.parallel.encode``
(the library call the command line is a thin shell over), one torch thread per process, and the
table says whether its packets are byte-identical to the first run's. Wall time counts everything a
user waits for: worker start-up (spawned processes import torch), Ray start-up when this tool
starts the instance (printed apart), reading, coding and ordering. Runs follow one another on the
same machine, so their ratio is the figure to read; absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coolchic_stream import parallel  # noqa: E402
from coolchic_stream.config import EncoderConfig  # noqa: E402
from coolchic_stream.media import open_input  # noqa: E402


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", default=str(ROOT / "samples" / "bbb_128x128_8f.y4m"))
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--preset", default="fast")
    p.add_argument("--iterations", type=int, default=150, help="per I frame (P/B frames get their share)")
    p.add_argument("--lambda", dest="lmbda", type=float, default=1e-3)
    p.add_argument("--gop", default="ra", choices=["intra", "lowdelay", "ra"])
    p.add_argument("--gop-size", type=int, default=2)
    p.add_argument("--intra-period", type=int, default=2, help="frames per segment (the unit of work)")
    p.add_argument("--jobs", type=_ints, default=_ints("1,2"), help="local runs, comma list (1: in-process)")
    p.add_argument("--ray", action="store_true", help="also a run on a local Ray instance")
    p.add_argument("--ray-cpus", type=int, default=2)
    args = p.parse_args()

    with open_input(args.input, frames=args.frames) as source:
        pictures = list(source)
    config = EncoderConfig(preset=args.preset, iterations=args.iterations, lmbda=args.lmbda, gop=args.gop,
                           gop_size=args.gop_size, intra_period=args.intra_period, threads=1)  # fmt: skip
    n_segments = len(list(parallel.segments(pictures, parallel.segment_length(config))))
    print(f"{Path(args.input).name}: {len(pictures)} frames {pictures[0].width}x{pictures[0].height}, "
          f"{n_segments} segments of {parallel.segment_length(config)}, preset {args.preset}, "
          f"{args.iterations} iterations per I frame, {os.cpu_count()} CPUs, 1 torch thread per process", flush=True)

    runs: list[tuple[str, dict]] = [(f"jobs {j}", {"jobs": j}) for j in args.jobs]
    if args.ray:
        runs.append((f"ray ({args.ray_cpus} CPUs)", {"ray_address": parallel.LOCAL_RAY}))

    first: list[bytes] | None = None
    base: float | None = None
    print(f"{'run':<16} {'wall s':>8} {'speed-up':>9} {'bytes':>8}  identical  md5", flush=True)
    for name, options in runs:
        if "ray_address" in options:  # started only now: its own processes would load the local runs
            import ray

            start = time.perf_counter()
            ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            print(f"  (Ray: local instance started in {time.perf_counter() - start:.1f} s, not counted)", flush=True)
        packets: list = []
        start = time.perf_counter()
        parallel.encode(iter(pictures), packets.append, config, **options)
        wall = time.perf_counter() - start
        data = [pk.data for pk in packets]
        first = first if first is not None else data
        base = base if base is not None else wall
        digest = hashlib.md5(b"".join(data)).hexdigest()[:12]
        print(f"{name:<16} {wall:8.1f} {base / wall:8.2f}x {sum(map(len, data)):8d}  {str(data == first):<9}  {digest}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
