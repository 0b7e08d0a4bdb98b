"""Scale-out: the same bytes for --jobs 1, --jobs 2 and Ray, through dead workers, errors, Ctrl-C and pipes."""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from .conftest import encode_pictures, make_picture
from coolchic_stream import parallel
from coolchic_stream.bitstream.container import ContainerReader
from coolchic_stream.config import EncoderConfig
from coolchic_stream.encoder import Encoder
from coolchic_stream.errors import ConfigError, UnsupportedFormatError
from coolchic_stream.gop import GopScheduler
from coolchic_stream.media.y4m import Y4mWriter
from coolchic_stream.types import ChromaSiting, ColorRange, DataType, GopStructure, SequenceInfo

ROOT = Path(__file__).resolve().parents[1]
ENV = os.environ | {"OMP_NUM_THREADS": "1"}
# Four intra periods of two frames (an I and a P each), tiny frames.
CFG = dict(preset="test", iterations=10, gop="ra", gop_size=2, intra_period=2)
CLI_CFG = ["--preset", "test", "--iterations", "10", "--gop", "ra", "--gop-size", "2", "--intra-period", "2"]
FRAMES = 8


def clip(frames: int = FRAMES, width: int = 24, height: int = 18) -> list:
    return [make_picture(width, height, pts=i, shift=i) for i in range(frames)]


def run(jobs: int | None = None, ray: str | None = None, progress=None, pictures=None) -> list:
    out: list = []
    parallel.encode(iter(pictures or clip()), out.append, EncoderConfig(**CFG), jobs=jobs, ray_address=ray, progress=progress)
    return out


@pytest.fixture(scope="module")
def reference() -> list[bytes]:
    """The whole clip through one Encoder, as a library user sends it."""
    _, packets = encode_pictures(clip(), **CFG)
    return [p.data for p in packets]


def no_workers_left() -> bool:
    """No encoding worker is alive (other tests' decoder helpers may be)."""
    return not [p for p in multiprocessing.active_children() if p.name.startswith("ccv-encode")]


def killer(segment: int):
    """A progress callback that kills (SIGKILL) the worker of ``segment`` at its first event."""
    killed: list[int] = []

    def progress(update: parallel.WorkerProgress) -> None:
        if update.segment == segment and not killed and update.pid != os.getpid():
            killed.append(update.pid)
            os.kill(update.pid, signal.SIGKILL)

    return progress, killed


def test_a_segment_coded_alone_equals_its_part_of_the_stream(reference: list[bytes]) -> None:
    encoder = Encoder(EncoderConfig(**CFG), start=4)
    packets = [p for pic in clip()[4:6] for p in encoder.send(pic)] + encoder.flush()
    assert [p.data for p in packets] == reference[4:6]
    assert [(p.pts, p.dts) for p in packets] == [(4, 4), (5, 5)]


def test_a_segment_starts_at_a_multiple_of_the_intra_period() -> None:
    with pytest.raises(ValueError, match="multiple of the intra period 2"):
        GopScheduler(GopStructure.RANDOM_ACCESS, 2, 2, start=3)


def test_one_and_two_local_workers_give_the_stream_s_bytes(reference: list[bytes]) -> None:
    events: list[parallel.WorkerProgress] = []
    inline = run(jobs=1, progress=events.append)
    assert [p.data for p in inline] == reference
    assert {e.worker for e in events} == {0} and {e.segment for e in events} == {0, 1, 2, 3}
    two = run(jobs=2)
    assert [p.data for p in two] == reference
    assert [p.dts for p in two] == list(range(FRAMES))  # coding order, segment after segment
    assert {p.stats.worker for p in two} == {0, 1}
    assert no_workers_left()


def test_a_killed_worker_is_replaced_and_the_bytes_do_not_change(reference: list[bytes]) -> None:
    progress, killed = killer(segment=1)
    out = run(jobs=2, progress=progress)
    assert killed, "no worker was killed"
    assert [p.data for p in out] == reference
    assert no_workers_left()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA for a worker-side error")
def test_an_error_in_a_worker_stops_the_encode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent's device check is bypassed: each worker's own Encoder refuses --device cuda."""
    import coolchic_stream.encoder as encoder_module

    monkeypatch.setattr(encoder_module, "check_device", lambda device: None)
    out: list = []
    with pytest.raises(ConfigError, match="--device 'cuda' is not available"):
        parallel.encode(iter(clip()), out.append, EncoderConfig(**{**CFG, "device": "cuda"}), jobs=2)
    assert out == [] and no_workers_left()


def test_a_failing_sink_stops_the_workers() -> None:
    def sink(packet) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        parallel.encode(iter(clip()), sink, EncoderConfig(**CFG), jobs=2)
    assert no_workers_left()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_picture_of_another_format_is_refused_whatever_segment_it_opens(jobs: int) -> None:
    pictures = clip(4) + [make_picture(26, 18, pts=4)]
    out: list = []
    with pytest.raises(UnsupportedFormatError, match="picture 4 is 26x18 yuv420 8-bit, the stream is 24x18"):
        parallel.encode(iter(pictures), out.append, EncoderConfig(**CFG), jobs=jobs)
    assert no_workers_left()


@pytest.mark.parametrize("jobs", [0, -1, True, 1.5])
def test_jobs_must_be_a_positive_integer(jobs: object) -> None:
    with pytest.raises(ConfigError, match="--jobs"):
        parallel.encode(iter(clip(1)), list().append, EncoderConfig(**CFG), jobs=jobs)  # type: ignore[arg-type]


def test_intra_only_streams_split_frame_by_frame() -> None:
    assert parallel.segment_length(EncoderConfig(gop="intra", intra_period=8)) == 1
    assert [s.start for s in parallel.segments(clip(5), 2)] == [0, 2, 4]


# ------------------------------------------------------------------ Ray


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_stream_s_bytes_even_when_a_worker_dies(reference: list[bytes], ray_cluster) -> None:
    events: list[parallel.WorkerProgress] = []
    out = run(ray=parallel.LOCAL_RAY, progress=events.append)
    assert [p.data for p in out] == reference
    assert events and {e.segment for e in events} == {0, 1, 2, 3}
    progress, killed = killer(segment=2)
    out = run(ray=parallel.LOCAL_RAY, progress=progress)
    assert killed, "no Ray worker was killed"
    assert [p.data for p in out] == reference


# ------------------------------------------------------------------ command line


def write_y4m(path: Path, pictures: list) -> bytes:
    seq = SequenceInfo(pictures[0].width, pictures[0].height, DataType.YUV420, 8, Fraction(25, 1), Fraction(1, 1),
                       ColorRange.LIMITED, ChromaSiting.LEFT)  # fmt: skip
    buffer = io.BytesIO()
    writer = Y4mWriter(buffer, seq)
    for picture in pictures:
        writer.write(picture)
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def cli(*args: str, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coolchic_stream", *args], input=stdin, capture_output=True,
                          cwd=ROOT, timeout=600, env=env or ENV)  # fmt: skip


@pytest.mark.parametrize("spread", [["--jobs", "2"], ["--ray"]], ids=["jobs2", "ray"])
def test_stdin_to_stdout_gives_the_stream_s_bytes_with_stats(spread: list[str], reference: list[bytes], tmp_path: Path) -> None:
    if spread == ["--ray"]:
        pytest.importorskip("ray")
    y4m = write_y4m(tmp_path / "in.y4m", clip())
    stats = tmp_path / "s.csv"
    proc = cli("encode", "-", "-", *CLI_CFG, *spread, "--quiet", "--stats", str(stats), stdin=y4m)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""  # --quiet: nothing from Ray either
    with ContainerReader(io.BytesIO(proc.stdout)) as reader:
        assert [p.data for p in reader] == reference
    rows = list(csv.DictReader(stats.open()))
    assert [int(r["coding_index"]) for r in rows] == list(range(FRAMES))
    workers = {r["worker"] for r in rows}
    assert len(workers) == 2 if spread[0] == "--jobs" else workers  # Ray: as many as the CPUs
    assert all(float(r["wall_seconds"]) > 0 for r in rows)


def test_ray_missing_gives_the_install_hint(tmp_path: Path) -> None:
    fake = tmp_path / "noray" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    write_y4m(tmp_path / "in.y4m", clip(2))
    proc = cli("encode", str(tmp_path / "in.y4m"), str(tmp_path / "o.ccv"), *CLI_CFG, "--ray",
               env=ENV | {"PYTHONPATH": str(fake.parent)})  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and 'pip install "coolchic-stream[ray]"' in lines[0], proc.stderr


def test_ctrl_c_keeps_every_segment_finished_in_order(tmp_path: Path) -> None:
    """SIGINT to the whole process group (what a terminal sends) while two workers code: what was
    written is kept (segments in order), the file is a valid stream, no worker survives, no traceback."""
    write_y4m(tmp_path / "in.y4m", clip(16))
    out = tmp_path / "o.ccv"
    proc = subprocess.Popen([sys.executable, "-m", "coolchic_stream", "encode", str(tmp_path / "in.y4m"), str(out),
                             *CLI_CFG, "--jobs", "2"], stderr=subprocess.PIPE, cwd=ROOT, env=ENV,
                            start_new_session=True,
                            # a shell's background job inherits SIGINT ignored: give the CLI a terminal's default
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:  # one line per written frame off a terminal
        lines.append(line)
        if sum(b" pts " in x for x in lines) == 2:  # the first segment is written
            os.killpg(proc.pid, signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, rest
    assert b"Traceback" not in rest
    for _ in range(100):  # no worker outlives the command (the group empties within moments)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("a process of the interrupted encode is still running")
    with ContainerReader(out) as reader:
        kept = [p.pts for p in reader]
        assert reader.ended
    # A prefix in coding order (here display order: I, P per segment), at least the first segment;
    # Ctrl-C may land between two packets of a segment being written: a prefix is still a stream.
    assert 2 <= len(kept) < 16 and kept == list(range(len(kept)))
    assert f"interrupted: {len(kept)} finished frame(s) kept".encode() in rest
    decoded = cli("decode", str(out), "-o", "-")
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.count(b"FRAME") == len(kept)


def test_the_progress_shows_a_line_per_active_worker() -> None:
    from rich.console import Console

    from coolchic_stream.types import FrameType, TrainingProgress
    from coolchic_stream.ui import EncodeUI

    ui = EncodeUI(total_frames=4, console=Console(file=io.StringIO(), force_terminal=True, width=120))

    def event(worker: int, pts: int, phase: str, iteration: int) -> parallel.WorkerProgress:
        return parallel.WorkerProgress(worker, 100 + worker, worker, TrainingProgress(pts, FrameType.P, phase, iteration, 10, 0.1, 30.0))

    def lines() -> list[str]:
        return sorted(t.description.strip() for t in ui._progress.tasks if t.description != "frames")

    with ui:
        ui.training(event(0, 1, "main", 3))
        ui.training(event(1, 3, "motion", 2))
        assert lines() == ["P pts 1 main", "w1 P pts 3 motion"]
        ui.training(event(1, 3, "main", 1))  # the worker's next phase replaces its line
        assert lines() == ["P pts 1 main", "w1 P pts 3 main"]
        ui.training(event(0, 1, "main", 10))  # a phase's last iteration ends its line
        assert lines() == ["w1 P pts 3 main"]


@pytest.mark.parametrize("check", ["always", "auto"])
def test_the_intra_alternative_trained_aside_gives_the_same_bytes(check) -> None:
    """--aside: the intra check's first alternative trains in a helper process while the inter
    coding trains here; the packets equal the one-process encode's, and the helper is gone after."""
    from coolchic_stream.parallel.aside import HELPER_NAME

    config = EncoderConfig(preset="test", iterations=20, gop="lowdelay", gop_size=1, intra_period=8, intra_check=check)
    pictures = clip(3)
    alone, beside = [], []
    parallel.encode(pictures, alone.append, config)
    parallel.encode(pictures, beside.append, config, aside=True)
    assert [p.data for p in beside] == [p.data for p in alone]
    if check == "always":
        assert [p.stats.intra_check for p in beside] == ["", "always", "always"]
    assert not [p for p in multiprocessing.active_children() if p.name == HELPER_NAME]
