"""Mutation fuzzer for the decoder: field edits and damage of real ``.ccv`` streams with every CRC
recomputed (so mutations reach the parsers), each decoded by the CLI in a child under a memory limit
and a time limit.

    seed streams ─► mutate (edit a SEQ/FRAME field │ flip payload bytes │ cut │ drop/repeat/swap units)
        ─► re-frame every unit with a fresh CRC ─► ``decode -o out.y4m`` in a child (RLIMIT_AS, timeout)
        ─► outcome: exit status, first stderr line, peak RSS, and at exit 0 the y4m checked against
           the SEQ it claims to decode (header fields, frame count, frame sizes)

Failures: a crash (exit 1 "internal error", a signal), a hang (timeout), a memory blow-up (the
limit), a multi-line or leaking message (errno numbers, exception class names, construct paths),
or an exit-0 y4m that contradicts its header. ``python tools/fuzz_decode.py --mutants 10000``
prints the campaign's figures; ``tests/test_hostile.py`` runs a short campaign (a long one: ``-m slow``).
"""

from __future__ import annotations

import argparse
import collections
import io
import multiprocessing
import os
import random
import re
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from coolchic_stream.bitstream.reader import ContainerReader  # noqa: E402
from coolchic_stream.bitstream.syntax import FramePayload, SequenceHeader  # noqa: E402
from coolchic_stream.bitstream.units import (  # noqa: E402
    UNIT_END,
    UNIT_FRAME,
    UNIT_SEQ,
    file_header_bytes,
    unit_bytes,
)

MEMORY_LIMIT = 1 << 30  # address space of a decoding child: a blow-up fails instead of the machine
TIME_LIMIT_S = 60.0
# What a user must never read in a message.
LEAKS = re.compile(r"\[Errno|Error in path|Traceback|\b[A-Z][a-zA-Z]+(Error|Exception)\b|returned -?\d+|->")


# ------------------------------------------------------------------ streams as units


@dataclass
class Stream:
    """A ``.ccv`` stream as its units, re-framed (fresh CRCs) by :meth:`to_bytes`."""

    units: list[tuple[int, bytes]]  # (unit type, payload) in stream order, SEQ first
    version: tuple[int, int] | None = None

    @classmethod
    def parse(cls, data: bytes) -> "Stream":
        reader = ContainerReader(io.BytesIO(data))
        units = [(UNIT_SEQ, _sequence_payload(data))]
        units += [(u.unit_type, u.payload) for u in reader.units()]
        return cls(units, reader.version)

    def to_bytes(self) -> bytes:
        head = file_header_bytes(*self.version) if self.version else file_header_bytes()
        return head + b"".join(unit_bytes(t, p) for t, p in self.units)

    def frames(self) -> list[int]:
        """Indices (in ``units``) of the FRAME units."""
        return [i for i, (t, _) in enumerate(self.units) if t == UNIT_FRAME]


def _sequence_payload(data: bytes) -> bytes:
    """The SEQ unit's payload (the reader parses it but does not keep the bytes)."""
    from coolchic_stream.bitstream.units import FILE_HEADER_SIZE

    pos = FILE_HEADER_SIZE + 3  # SYNC, type
    length, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return data[pos : pos + length]


def edit_sequence(payload: bytes, **fields: object) -> bytes:
    """A SEQ payload with fields replaced (enum fields take their number)."""
    h = SequenceHeader.parse(payload)
    for name, value in fields.items():
        h[name] = value
    return SequenceHeader.build(h)


def edit_frame(payload: bytes, **fields: object) -> bytes:
    """A FRAME payload with header fields replaced: ``width``, ``height``, ``display_index``,
    ``coding_index``, or ``info_<name>`` for a field of the 2-byte frame info."""
    h = FramePayload.parse(payload)
    for name, value in fields.items():
        if name.startswith("info_"):
            h.info[name[5:]] = value
        else:
            h[name] = value
    return FramePayload.build(h)


# ------------------------------------------------------------------ mutations

_SEQ_FIELDS = {
    "width": [0, 1, 2, 3, 23, 25, 64, 4000, 16383, 16384, 1 << 20],
    "height": [0, 1, 2, 15, 17, 64, 4000, 16383, 1 << 20],
    "data_type": [0, 1, 2, 3, 7, 255],
    "bit_depth": [0, 7, 8, 9, 10, 12, 16, 17, 255],
    "frame_rate_num": [0, 1, 1 << 40],
    "frame_rate_den": [0, 1, 1 << 40],
    "gop_structure": [0, 1, 2, 3, 255],
    "gop_size": [0, 1, 2, 3, 64, 65, 1 << 30],
    "intra_period": [0, 1, 2, 3, 1 << 30],
    "frame_count": [0, 1, 1 << 40],
}
_FRAME_FIELDS = {
    "width": [0, 1, 2, 12, 23, 25, 48, 4000, 16383, 16384, 1 << 20],
    "height": [0, 1, 2, 8, 15, 17, 32, 4000, 16383, 1 << 20],
    "display_index": [0, 1, 2, 3, 7, 1000, 1 << 40],
    "coding_index": [0, 1, 2, 1 << 40],
    "info_frame_type": [0, 1, 2, 3],
    "info_data_type": [0, 1, 2, 3],
    "info_bit_depth": [8, 9, 10, 16, 23],
    "info_depth": [0, 1, 7, 15],
    "info_warp_filter_size": [0, 4, 8, 15],
}


def mutate(stream: Stream, rng: random.Random) -> tuple[str, Stream]:
    """One random mutation (CRCs stay valid: the stream is re-framed); returns (kind, mutant)."""
    units = list(stream.units)
    frames = stream.frames()
    kind = rng.choice(["seq_field", "frame_field", "frame_field", "payload_bytes", "payload_bytes", "cut", "units"])
    if kind == "seq_field":
        name = rng.choice(list(_SEQ_FIELDS))
        value = rng.choice(_SEQ_FIELDS[name])
        units[0] = (UNIT_SEQ, edit_sequence(units[0][1], **{name: value}))
        return f"seq {name}={value}", Stream(units, stream.version)
    if kind == "frame_field" and frames:
        i = rng.choice(frames)
        name = rng.choice(list(_FRAME_FIELDS))
        value = rng.choice(_FRAME_FIELDS[name])
        try:
            units[i] = (UNIT_FRAME, edit_frame(units[i][1], **{name: value}))
        except Exception:  # noqa: BLE001 - a value the field cannot hold: damage the bytes instead
            kind = "payload_bytes"
        else:
            return f"frame {name}={value}", Stream(units, stream.version)
    if kind == "payload_bytes":
        i = rng.choice(frames + [0])
        payload = bytearray(units[i][1])
        n = rng.choice([1, 1, 2, 4, 16])
        for _ in range(n):
            if payload:
                pos = rng.randrange(len(payload))
                payload[pos] = rng.randrange(256) if rng.random() < 0.5 else payload[pos] ^ (1 << rng.randrange(8))
        if rng.random() < 0.2 and payload:  # grow or shrink a payload
            cut = rng.randrange(len(payload))
            payload = payload[:cut] + (bytes(rng.randrange(256) for _ in range(rng.randrange(8))) if rng.random() < 0.5 else b"")
        units[i] = (units[i][0], bytes(payload))
        return f"bytes x{n} in unit {i}", Stream(units, stream.version)
    if kind == "cut":
        data = stream.to_bytes()
        return "cut", _Raw(data[: rng.randrange(len(data))])
    # units: drop, repeat or swap frame units, or drop the END
    op = rng.choice(["drop", "repeat", "swap", "no_end"])
    if op == "drop" and frames:
        del units[rng.choice(frames)]
    elif op == "repeat" and frames:
        i = rng.choice(frames)
        units.insert(rng.choice(frames), units[i])
    elif op == "swap" and len(frames) > 1:
        a, b = rng.sample(frames, 2)
        units[a], units[b] = units[b], units[a]
    else:
        units = [u for u in units if u[0] != UNIT_END]
    return f"units {op}", Stream(units, stream.version)


class _Raw(Stream):
    """Bytes that are no longer a unit list (a cut stream)."""

    def __init__(self, data: bytes) -> None:
        super().__init__([])
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


# ------------------------------------------------------------------ one decode in a child


@dataclass
class Outcome:
    status: int  # exit status; -N: killed by signal N; 124: timed out
    message: str  # stderr, as written
    rss_bytes: int  # peak resident set of the child
    seconds: float
    problem: str | None = None  # why this outcome is a failure (None: fine)


# Each mutant is decoded in a child forked from a clean, single-threaded fork server that has the
# decoder loaded: forking the caller itself (pytest, after other tests ran decoders with threads)
# can copy a lock some thread holds and hang the child.
_PRELOAD = ["coolchic_stream.cli", "coolchic_stream.decoder", "coolchic_stream.framecodec", "coolchic_stream.media"]


def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def _decode_child(src: str, out: str, err: str, rss: str, memory_limit: int) -> None:
    """The child: ``coolchic-stream decode src -o out`` under RLIMIT_AS, stderr to ``err``; writes
    its peak RSS (KiB) to ``rss`` and exits with the command's status (99: something escaped it)."""
    status = 99
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 2)
        sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 - the real fd 2
        from coolchic_stream.cli import main

        status = main(["decode", src, "-o", out])
    except BaseException:  # noqa: BLE001 - anything escaping main is a crash
        import traceback

        traceback.print_exc()
    finally:
        try:
            Path(rss).write_text(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
        except BaseException:  # noqa: BLE001 - out of memory even here: the RSS stays unknown
            pass
        sys.stderr.flush()
        os._exit(status)


def decode_in_child(data: bytes, workdir: Path, memory_limit: int = MEMORY_LIMIT, time_limit: float = TIME_LIMIT_S) -> Outcome:
    """Run ``coolchic-stream decode`` on ``data`` in a child under RLIMIT_AS and a timeout."""
    src, out, err, rss = workdir / "in.ccv", workdir / "out.y4m", workdir / "stderr", workdir / "rss"
    src.write_bytes(data)
    for f in (out, err, rss):
        f.unlink(missing_ok=True)
    t0 = time.perf_counter()
    child = _context().Process(target=_decode_child, args=(str(src), str(out), str(err), str(rss), memory_limit))
    child.start()
    child.join(time_limit)
    if child.is_alive():
        child.kill()
        child.join()
        return Outcome(124, _read(err), 0, time.perf_counter() - t0, "hang")
    seconds = time.perf_counter() - t0
    try:
        rss_bytes = int(rss.read_text()) * 1024
    except (OSError, ValueError):
        rss_bytes = memory_limit  # died before it could say: count it at the limit
    outcome = Outcome(int(child.exitcode), _read(err), rss_bytes, seconds)
    outcome.problem = judge(outcome, out)
    return outcome


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def judge(outcome: Outcome, y4m: Path) -> str | None:
    """Why an outcome is a failure, or None."""
    if outcome.status < 0:
        return f"killed by signal {-outcome.status}"
    if outcome.status not in (0, 4):
        return f"exit {outcome.status}"
    lines = [line for line in outcome.message.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("coolchic-stream: warning:")]
    if len(errors) > 1:
        return "more than one error line"
    leak = next((line for line in lines if LEAKS.search(line)), None)
    if leak is not None:
        return f"message leaks internals: {leak[:120]}"
    if outcome.status == 0:
        return check_y4m(y4m)
    return None


def check_y4m(path: Path) -> str | None:
    """None if the y4m's frames all have the size its header announces."""
    try:
        data = path.read_bytes()
    except OSError:
        return "exit 0 without output"
    head, _, rest = data.partition(b"\n")
    tokens = dict((t[:1].decode(), t[1:].decode()) for t in head.split()[1:] if t)
    try:
        w, h = int(tokens["W"]), int(tokens["H"])
    except (KeyError, ValueError):
        return f"exit 0 with a bad y4m header {head[:60]!r}"
    chroma = tokens.get("C", "420jpeg")
    depth = int(re.search(r"p(\d+)", chroma).group(1)) if re.search(r"p(\d+)", chroma) else 8
    sample = 2 if depth > 8 else 1
    cw, ch = ((w + 1) // 2, (h + 1) // 2) if chroma.startswith("420") else (w, h)
    size = (w * h + 2 * cw * ch) * sample
    pos, frames = 0, 0
    while pos < len(rest):
        if not rest.startswith(b"FRAME", pos):
            return f"exit 0, y4m frame {frames} does not start where its header's size says"
        pos = rest.index(b"\n", pos) + 1 + size
        frames += 1
    if pos != len(rest):
        return f"exit 0, y4m frame {frames - 1} is cut"
    return None


# ------------------------------------------------------------------ campaign


@dataclass
class Campaign:
    mutants: int = 0
    statuses: collections.Counter = field(default_factory=collections.Counter)
    kinds: collections.Counter = field(default_factory=collections.Counter)
    failures: list[tuple[str, Outcome]] = field(default_factory=list)
    max_rss: int = 0
    max_seconds: float = 0.0


def run_campaign(seeds: list[bytes], mutants: int, seed: int = 0, workdir: Path | None = None,
                 keep: Path | None = None, progress: bool = False) -> Campaign:
    rng = random.Random(seed)
    streams = [Stream.parse(s) for s in seeds]
    result = Campaign()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        for n in range(mutants):
            kind, mutant = mutate(rng.choice(streams), rng)
            data = mutant.to_bytes()
            outcome = decode_in_child(data, work)
            result.mutants += 1
            result.statuses[outcome.status] += 1
            result.kinds[kind.split()[0] + " " + kind.split()[1].split("=")[0] if " " in kind else kind] += 1
            result.max_rss = max(result.max_rss, outcome.rss_bytes)
            result.max_seconds = max(result.max_seconds, outcome.seconds)
            if outcome.problem is not None:
                result.failures.append((kind, outcome))
                if keep is not None:
                    keep.mkdir(parents=True, exist_ok=True)
                    stem = keep / f"failure_{len(result.failures):04d}"
                    stem.with_suffix(".ccv").write_bytes(data)
                    stem.with_suffix(".txt").write_text(
                        f"{kind}\n{outcome.problem}\nexit {outcome.status}, {outcome.seconds:.2f} s, "
                        f"{outcome.rss_bytes / 2**20:.0f} MiB\n{outcome.message}"
                    )
            if progress and (n + 1) % 100 == 0:
                print(f"  {n + 1} mutants, {len(result.failures)} failures, max RSS {result.max_rss / 2**20:.0f} MiB", file=sys.stderr)
    return result


def seed_streams() -> list[bytes]:
    """The conformance vector (I, P and B frames; NN modules fresh, copied and delta-coded)."""
    return [(ROOT / "tests" / "golden" / "conformance.ccv").read_bytes()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mutants", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", nargs="*", default=None, help=".ccv files to mutate (default: the conformance vector)")
    p.add_argument("--keep", default=None, help="folder for the mutants that fail")
    args = p.parse_args(argv)
    seeds = [Path(s).read_bytes() for s in args.seeds] if args.seeds else seed_streams()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    c = run_campaign(seeds, args.mutants, args.seed, keep=Path(args.keep) if args.keep else None, progress=True)
    wall = time.perf_counter() - t0
    print(f"mutants: {c.mutants} ({wall:.0f} s, seed {args.seed})")
    print("exit statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(c.statuses.items())))
    print("mutation kinds: " + ", ".join(f"{k}: {v}" for k, v in sorted(c.kinds.items())))
    print(f"peak RSS of a decode: {c.max_rss / 2**20:.0f} MiB; slowest decode: {c.max_seconds:.2f} s")
    print(f"failures: {len(c.failures)}")
    problems = collections.Counter(o.problem for _, o in c.failures)
    for problem, count in problems.most_common(20):
        example = next(k for k, o in c.failures if o.problem == problem)
        print(f"  {count:5d}  {problem}   (e.g. {example})")
    return 0 if not c.failures else 1


if __name__ == "__main__":
    sys.exit(main())
