"""What the command-line tests share: running the CLI in a subprocess, the one-line error check, a tiny clip."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

from coolchic_stream.media import open_input
from coolchic_stream.media.y4m import Y4mWriter
from coolchic_stream.types import ChromaSiting, ColorRange, DataType, Picture, SequenceInfo

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "bbb_128x128_8f.y4m"
FAST = ["--preset", "test", "--iterations", "10", "--quiet"]
# One torch thread per process: on a shared 2-core box, torch's default thread pool spins
# against other processes and made a 5 s encode take over a minute.
ENV = os.environ | {"OMP_NUM_THREADS": "1"}


def run_cli(*args: str, stdin: bytes | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "coolchic_stream", *args],
        input=stdin, capture_output=True, cwd=ROOT, timeout=timeout, env=ENV,
    )


def assert_one_line_error(stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("coolchic-stream: error: ")
    assert "Traceback" not in stderr


def tiny_clip(path: Path, frames: int = 2) -> list[Picture]:
    """frames x 24x16 crops of the Big Buck Bunny sample, with tags that must survive a round trip."""
    seq = SequenceInfo(24, 16, DataType.YUV420, 8, Fraction(30000, 1001), Fraction(1, 1), ColorRange.FULL, ChromaSiting.LEFT)
    pics = []
    with open_input(str(SAMPLE), frames=frames) as src:
        for p in src:
            y, u, v = p.planes
            pics.append(Picture((y[48:64, 52:76].copy(), u[24:32, 26:38].copy(), v[24:32, 26:38].copy()), 8, DataType.YUV420, p.pts))
    with open(path, "wb") as f:
        w = Y4mWriter(f, seq)
        for p in pics:
            w.write(p)
    return pics
