"""The ``coolchic-stream`` command line: encode, decode and inspect, a thin shell over the library.

Exit status: 0 success, 2 usage error, 3 media error, 4 bitstream error, 130 interrupted.
Errors are one line on stderr (``coolchic-stream: error: …``), never a traceback. stdout
carries only data (a .ccv stream, y4m/yuv, an md5, or inspect's report).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import replace
from fractions import Fraction
from collections.abc import Iterator
from typing import Any, NoReturn

from . import __version__
from .allocator import tune_allocator
from .bitstream.container import ContainerReader, ContainerWriter
from .config import DEFAULT_LAMBDA
from .errors import BitstreamError, CoolChicStreamError, CorruptDataError, MediaError, TruncatedStreamError, UsageError
from .report import inspect_stream, print_report
from .types import FrameStats, GopStructure, Packet

PROG = "coolchic-stream"


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as UsageError (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, f"see {self.prog} --help")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Cool-chic overfitted neural video coding, FFmpeg style.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    enc = sub.add_parser("encode", help="encode a video (y4m, mp4, mkv, png… or '-') into a .ccv stream")
    enc.add_argument("input", metavar="IN", help="input file, or '-' for stdin (y4m or anything ffmpeg reads)")
    enc.add_argument("output", metavar="OUT", help="output .ccv file, or '-' for stdout")
    enc.add_argument("--preset", choices=["test", "fast", "medium", "slow"], default="medium")
    enc.add_argument("--lambda", dest="lmbda", type=float, help=f"rate weight (default {DEFAULT_LAMBDA:g})")
    enc.add_argument("--bitrate", "-b", metavar="RATE",
                     help="target bitrate instead of a λ, e.g. 300k or 1.2M (bits/s at the input's frame rate)")
    enc.add_argument("--iterations", type=_positive_int, help="training iterations per intra frame")
    enc.add_argument("--complexity", choices=["lop", "mop", "hop"], help="decoder complexity")
    enc.add_argument("--frames", type=_positive_int, help="encode at most N frames")
    enc.add_argument("--start", type=_non_negative_int, default=0, help="skip the first N input frames")
    enc.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    enc.add_argument("--gop", choices=["intra", "lowdelay", "ra"], default="ra",
                     help="intra only, low-delay P, or random-access hierarchical B (default)")
    enc.add_argument("--gop-size", type=_positive_int,
                     help="longest distance between anchor frames, i.e. frames per hierarchical-B group (default 8)")
    enc.add_argument("--fixed-gop", action="store_true",
                     help="keep every group at --gop-size and add no I frame at scene cuts (default: "
                     "shorter groups where motion is fast, I frames at cuts, from a lookahead on the input)")
    enc.add_argument("--intra-period", type=_positive_int, help="frames between I frames (default 32)")
    enc.add_argument("--intra-check", choices=["off", "auto", "always"], default="auto",
                     help="also code P/B frames without prediction: when they cost (D+λR) over half an I frame "
                     "(auto, default), always, or never; the cheaper in D+λR is kept")
    enc.add_argument("--nn-prediction", choices=["off", "copy", "all"], default="all",
                     help="P/B frames may copy their networks' modules from a reference, or also send "
                     "differences to them (all, default), or always send them whole (off)")
    enc.add_argument("--jobs", "-j", type=_positive_int,
                     help="intra periods coded side by side: local worker processes (default 1: this one), "
                     "or with --ray the most Ray tasks out at once (default: the cluster's CPUs)")
    enc.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                     help="code intra periods as Ray tasks: on a local instance (no ADDRESS), auto, or ray://HOST:PORT "
                     '(needs pip install "coolchic-stream[ray]")')
    enc.add_argument("--aside", choices=["off", "auto", "on"], default="auto",
                     help="train the intra check's alternative in a helper process beside each P/B frame's inter "
                     "coding: a second core, the same bytes (auto, default: on when one process codes, without "
                     "--jobs or --ray, on a machine with 2+ CPUs training on the CPU)")
    enc.add_argument("--threads", type=_positive_int, default=1,
                     help="torch threads per encoding process (default 1; the output depends on it, not on --jobs)")
    enc.add_argument("--seed", type=_non_negative_int, default=0,
                     help="seed of every frame's training: another seed, another encode of the same rate and quality on average")
    enc.add_argument("--stats", metavar="FILE", help="per-frame statistics as .csv or .json")
    enc.add_argument("--quiet", "-q", action="store_true", help="no progress or summary on stderr")

    dec = sub.add_parser("decode", help="decode a .ccv stream to y4m, raw yuv, png, md5 or nothing")
    dec.add_argument("input", metavar="IN", help=".ccv file, or '-' for stdin")
    dec.add_argument("-o", "--output", required=True, metavar="OUT", help="output file, or '-' for stdout (y4m)")
    dec.add_argument("--format", choices=["y4m", "yuv", "png", "md5", "null"], help="default: from OUT's extension")
    dec.add_argument("--quiet", "-q", action="store_true")

    ins = sub.add_parser("inspect", help="show the sequence header and every frame's header")
    ins.add_argument("input", metavar="IN", help=".ccv file, or '-' for stdin")
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


# ------------------------------------------------------------------ encode


def _refuse_same_file(inp: str, out: str) -> None:
    """Writing the output must never clobber the input (same path, ./ spelling or a link)."""
    if "-" in (inp, out) or not (os.path.exists(inp) and os.path.exists(out)):
        return
    if os.path.samefile(inp, out):
        raise UsageError(f"input and output {out!r} are the same file", "give the output another name")


def _stats_writer(path: str | None) -> str | None:
    if path is None:
        return None
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".csv", ".json"):
        raise UsageError(f"--stats {path!r} must end in .csv or .json")
    return ext


_STATS_FIELDS = (
    "coding_index", "display_index", "type", "intra_coded", "intra_check", "depth", "bits", "unit_bytes", "psnr_y",
    "psnr_yuv", "lambda", "train_psnr_yuv", "flow_psnr", "motion_psnr", "motion_candidate", "seconds", "worker",
    "wall_seconds",
)  # fmt: skip


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None and math.isfinite(value) else None


def _aside(args: argparse.Namespace, config: Any) -> bool:
    """Whether the intra check's alternatives train in a helper process (``--aside``)."""
    if args.aside != "auto":
        return args.aside == "on"
    alone = (args.jobs or 1) == 1 and args.ray is None
    return alone and config.device == "cpu" and (os.cpu_count() or 1) >= 2


def _stats_row(stats: FrameStats, unit_bytes: int, started: float) -> dict[str, Any]:
    """One --stats row; ``started``: time.time() when the encode began (wall_seconds counts from it)."""
    return {
        "coding_index": stats.dts,
        "display_index": stats.pts,
        "type": stats.frame_type.name,
        "intra_coded": stats.intra_coded,
        "intra_check": stats.intra_check,
        "depth": stats.depth,
        "bits": stats.bits,
        "unit_bytes": unit_bytes,
        "psnr_y": stats.psnr_y if math.isfinite(stats.psnr_y) else None,
        "psnr_yuv": stats.psnr_yuv if math.isfinite(stats.psnr_yuv) else None,
        "lambda": float(f"{stats.lmbda:.6g}") if stats.lmbda is not None else None,
        "train_psnr_yuv": _rounded(stats.train_psnr_yuv),
        "flow_psnr": _rounded(stats.flow_psnr),
        "motion_psnr": _rounded(stats.motion_psnr),
        "motion_candidate": stats.motion_candidate,
        "seconds": round(stats.encode_seconds, 4),
        "worker": stats.worker,
        "wall_seconds": round(stats.finished - started, 3),
    }


def _write_stats(path: str, ext: str, rows: list[dict[str, Any]], totals: dict[str, Any]) -> None:
    try:
        with open(path, "w", newline="") as f:
            if ext == ".csv":
                w = csv.DictWriter(f, fieldnames=_STATS_FIELDS)
                w.writeheader()
                w.writerows(rows)
            else:
                json.dump({"frames": rows, "totals": totals}, f, indent=2)
                f.write("\n")
    except OSError as exc:
        raise MediaError(f"cannot write --stats {path!r}: {exc.strerror}") from None


def cmd_encode(args: argparse.Namespace) -> int:
    from .config import EncoderConfig
    from .media import open_input
    from .ui import EncodeUI

    stats_ext = _stats_writer(args.stats)
    _refuse_same_file(args.input, args.output)
    if args.stats and not os.path.isdir(os.path.dirname(os.path.abspath(args.stats))):
        raise MediaError(f"cannot write --stats {args.stats!r}: no such directory", "create it or give another path")
    options: dict[str, Any] = {
        "preset": args.preset,
        "lmbda": args.lmbda,
        "bitrate": args.bitrate,
        # The input's frame rate comes once it is open; this one lets the options be checked first.
        "frame_rate": Fraction(1) if args.bitrate is not None else None,
        "iterations": args.iterations,
        "complexity": args.complexity,
        "device": args.device,
        "gop": args.gop,
        "intra_check": args.intra_check,
        "nn_prediction": args.nn_prediction,
        "adaptive_gop": not args.fixed_gop,
        "threads": args.threads,
        "seed": args.seed,
    }
    if args.gop_size is not None:
        options["gop_size"] = args.gop_size
    if args.intra_period is not None:
        options["intra_period"] = args.intra_period
    config = EncoderConfig(**options)  # validates before any frame is read
    if args.output == "-" and sys.stdout.isatty():
        raise UsageError("refusing to write a binary .ccv stream to a terminal", "redirect stdout or give a file name")

    source = open_input(args.input, frames=args.frames, start=args.start)
    try:
        pictures = iter(source)
        first = next(pictures, None)
        if first is None:
            raise MediaError(
                f"{source.name} holds no frame to encode" + (f" after --start {args.start}" if args.start else ""),
                "check --start/--frames and the input",
            )
        if config.bitrate is not None:
            config = replace(config, frame_rate=source.sequence.frame_rate, stream_frames=source.frame_count)
        intra = config.gop == GopStructure.INTRA
        sequence = replace(
            source.sequence,
            gop_structure=config.gop,
            gop_size=1 if intra else config.gop_size,
            intra_period=1 if intra else config.intra_period,
            encoder=f"{PROG} {__version__}",
        )
        try:
            from . import parallel
        except ImportError as exc:
            raise CoolChicStreamError(f"the codec cannot be loaded: {exc}", "check the installation") from None
        parallel.preflight(config, args.jobs, args.ray)  # before anything is written

        ui = EncodeUI(total_frames=source.frame_count, quiet=args.quiet)
        rows: list[dict[str, Any]] = []
        writer = ContainerWriter(args.output, sequence)
        interrupted = False
        started = time.time()

        def sink(packet: Packet) -> None:  # each written (and logged) as soon as its turn comes
            size = writer.write(packet)
            ui.frame_done(packet.stats, size, packet.pts)
            if packet.stats is not None:
                rows.append(_stats_row(packet.stats, size, started))

        def rest() -> Iterator[Any]:
            yield first
            yield from pictures

        try:
            with ui:
                try:
                    parallel.encode(rest(), sink, config, jobs=args.jobs, ray_address=args.ray, progress=ui.training,
                                    aside=_aside(args, config))
                except KeyboardInterrupt:
                    # Every unit already written is complete; END makes the file a valid stream.
                    interrupted = True
        finally:
            writer.close()
        totals = ui.summary(sequence.width, sequence.height, sequence.frame_rate, config.bitrate)
        if args.stats:
            _write_stats(args.stats, stats_ext, rows, totals.__dict__ | {"file_bytes": writer.offset})
        if interrupted:
            # Printed even with --quiet: the user must know the file holds only part of the input.
            _err(f"interrupted: {writer.frames_written} finished frame(s) kept in {args.output}")
            return 130
        return 0
    finally:
        source.close()


# ------------------------------------------------------------------ decode


def _err(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def cmd_decode(args: argparse.Namespace) -> int:
    from .media import open_output, output_format

    fmt = output_format(args.output, args.format)  # usage errors before reading anything
    if args.output == "-" and fmt in ("y4m", "yuv") and sys.stdout.isatty():
        raise UsageError("refusing to write binary video to a terminal", "pipe it (| ffplay -) or give a file name with -o")
    _refuse_same_file(args.input, args.output)
    reader = ContainerReader(args.input)
    # Packets are read a group at a time so that their latents entropy-decode together; a damaged
    # unit met while reading is queued in stream order, between the packets around it.
    queue: list[Packet | CorruptDataError] = []
    reader.on_corrupt = queue.append
    try:
        from .decoder import DropCause, Decoder, prefetch_group
    except ImportError as exc:
        reader.close()
        raise CoolChicStreamError(f"the codec cannot be loaded: {exc}", "check the installation") from None

    # The decoder recovers from damage itself (skips to the next I frame, lists what it dropped);
    # this command only reports.
    decoder = Decoder(reader.sequence)
    group = prefetch_group(reader.sequence)
    sink = open_output(args.output, fmt, reader.sequence)
    failure: CoolChicStreamError | None = None

    def decode(item: Packet | CorruptDataError) -> None:
        reported = len(decoder.dropped)
        if isinstance(item, CorruptDataError):
            decoder.lost(item)
        else:
            for picture in decoder.send(item):
                sink.write(picture)
        for drop in decoder.dropped[reported:]:
            if drop.cause != DropCause.AFTER_LOSS:
                _err(f"warning: {drop.message}; resuming at the next I frame")

    def read_group() -> list[Packet | CorruptDataError]:
        """The next ``group`` packets, with the damaged units met between them, in stream order."""
        nonlocal failure
        while failure is None and sum(isinstance(x, Packet) for x in queue) < group:
            try:
                queue.append(next(packets))
            except StopIteration:
                break
            except TruncatedStreamError as exc:
                failure = exc  # keep every complete frame: decode and flush first, report after
        items, queue[:] = list(queue), []
        decoder.prefetch([x for x in items if isinstance(x, Packet)])
        return items

    # From a file, the next group is read (and entropy-decoded in the background) while this one
    # reconstructs; from a pipe, only this group, so that pictures leave as soon as it has arrived.
    ahead = args.input != "-" and os.path.isfile(args.input)
    try:
        packets = iter(reader)
        current = read_group()
        while current:
            following = read_group() if ahead else []
            for item in current:
                decode(item)
            current = following if ahead else read_group()
        for picture in decoder.flush():
            sink.write(picture)
    finally:
        sink.close()
        reader.close()
    if failure is not None:
        raise failure
    if decoder.dropped:
        damaged = sum(d.cause != DropCause.AFTER_LOSS for d in decoder.dropped)
        raise CorruptDataError(
            f"{damaged} damaged unit(s) or frame(s); "
            f"{len(decoder.dropped) - damaged} frame(s) dropped until the next I frame",
            "the other frames were decoded",
        )
    return 0



# ------------------------------------------------------------------ inspect


def cmd_inspect(args: argparse.Namespace) -> int:
    report = inspect_stream(args.input)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        sys.stdout.flush()
    else:
        print_report(report)
    if report["errors"]:
        raise BitstreamError(f"{len(report['errors'])} problem(s): {report['errors'][0]}")
    return 0


# ------------------------------------------------------------------ entry point


def _silence_stdout() -> None:
    """After a closed pipe: point stdout at /dev/null so the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        command = {"encode": cmd_encode, "decode": cmd_decode, "inspect": cmd_inspect}[args.command]
        tune_allocator()
        return command(args)
    except CoolChicStreamError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except BrokenPipeError:
        # The reader went away (ffplay closed, `| head`): end quietly, as ffmpeg does.
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        return 130
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:  # a bug, not bad input: still one line, unless asked for the traceback
        if os.environ.get("COOLCHIC_STREAM_TRACEBACK") == "1":
            raise
        print(
            f"{PROG}: error: internal error: {type(exc).__name__}: {exc} "
            "(hint: please report it; COOLCHIC_STREAM_TRACEBACK=1 shows the traceback)",
            file=sys.stderr,
            flush=True,
        )
        return 1


__all__ = ["build_parser", "inspect_stream", "main"]
