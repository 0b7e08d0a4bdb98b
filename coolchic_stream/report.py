"""Stream report of ``coolchic-stream inspect``: a JSON-able dict of every unit, and its rich tables."""

from __future__ import annotations

import sys
from typing import Any

from .architecture import CoolChicEncoderParameter
from .bitstream.container import ContainerReader, UnitInfo
from .bitstream.frame import parse_frame
from .bitstream.sections import nn_information_bits
from .bitstream.units import UNIT_END, UNIT_FRAME, UNIT_INDEX, UNIT_SEQ
from .errors import CorruptDataError, TruncatedStreamError
from .spec import MODULE_NAMES
from .types import SequenceInfo


def synthesis_string(layers: list) -> str:
    """Cool-chic's layer notation, e.g. ``48-1-linear-relu,3-3-residual-none``."""
    return ",".join(
        f"{l.out_channels}-{l.kernel_size}-{'residual' if l.residual else 'linear'}-{'relu' if l.relu else 'none'}"
        for l in layers
    )


def _sequence_json(seq: SequenceInfo) -> dict[str, Any]:
    sar = seq.sample_aspect_ratio
    return {
        "width": seq.width,
        "height": seq.height,
        "data_type": seq.data_type.name.lower(),
        "bit_depth": seq.bit_depth,
        "frame_rate": f"{seq.frame_rate.numerator}/{seq.frame_rate.denominator}",
        "sample_aspect_ratio": f"{sar.numerator}:{sar.denominator}" if sar else "0:0",
        "color_range": seq.color_range.name.lower(),
        "chroma_siting": seq.chroma_siting.name.lower(),
        "gop_structure": seq.gop_structure.name.lower(),
        "gop_size": seq.gop_size,
        "intra_period": seq.intra_period,
        "frame_count": seq.frame_count,
        "encoder": seq.encoder,
    }


def _architecture_json(param: CoolChicEncoderParameter) -> dict[str, Any]:
    """What a Cool-chic's architecture is (a named preset resolved for the frame)."""
    return {
        "n_output": param.n_output,
        "latent_resolutions": list(param.latent_resolution),
        "arm_context": param.arm.context_size,
        "arm_hidden_layers": param.arm.n_hidden_layers,
        "upsampling_kernels": [param.ups_kernel, param.ups_preconcat_kernel],
        "synthesis": synthesis_string(param.layers_synthesis),
        "n_symbols": _symbols(param.grid_sizes),
    }


def _symbols(grids: list[tuple[int, int]]) -> int:
    return sum(h * w for h, w in grids)


def _module_bits(c: Any, param: CoolChicEncoderParameter) -> dict[str, float | None] | None:
    """What the section's stream spends on each module's bins (None where that does not decode)."""
    try:
        return {name: None if bits is None else round(bits, 1) for name, bits in nn_information_bits(c, param).items()}
    except CorruptDataError:
        return None


def _modules_json(c: Any, h: Any, bits: dict[str, float] | None) -> dict[str, Any]:
    """Each module's mode, the display index it is predicted from, its steps, orders and bits."""
    out = {}
    for name in MODULE_NAMES:
        m = c.networks[name]
        mode = "fresh" if m.mode is None else str(m.mode)
        index = m.reference or 0
        source = None
        if mode in ("copy", "delta"):
            source = h.references[index].display_index if index < len(h.references) else None
        out[name] = {
            "mode": mode,
            "source": source,
            **{k: m[k] for k in ("weight_log2_step", "bias_log2_step", "weight_expgolomb_order", "bias_expgolomb_order")},
            "bits": 0.0 if mode == "copy" else None if bits is None else bits[name],  # a copy has no bins
        }
    return out


def _frame_json(unit: UnitInfo, sequence: SequenceInfo) -> dict[str, Any]:
    frame = parse_frame(unit.payload, sequence)  # the decoder's own parse and checks
    h = frame.fields
    coolchics = []
    for section in frame.sections:
        c = section.fields
        arch = _architecture_json(section.param)
        n_symbols = arch.pop("n_symbols")  # not in the stream: the architecture and frame size give it
        bits = _module_bits(c, section.param)
        coolchics.append(
            {
                "role": section.role.name.lower(),
                "architecture": str(c.architecture),
                **arch,
                "modules": _modules_json(c, h, bits),
                "n_symbols": n_symbols,
                "stream_bytes": len(c.data),  # NN bins then latents, one range-coder stream
                # the latents take the rest
                "nn_bits": None if bits is None or None in bits.values() else round(sum(bits.values()), 1),
            }
        )
    return {
        "coding_index": h.coding_index,
        "display_index": h.display_index,
        "type": str(h.info.frame_type).upper(),
        # a P/B frame coded without prediction: residue alone, no warp
        "intra_coded": str(h.info.frame_type) != "i" and len(h.coolchics) == 1,
        "depth": h.info.depth,
        "data_type": str(h.info.data_type),
        "bit_depth": h.info.bit_depth,
        "width": h.width,
        "height": h.height,
        "references": [
            {
                "display_index": r.display_index,
                "translation_y": r.translation_y,
                "translation_x": r.translation_x,
            }
            for r in h.references
        ],
        "warp_filter_size": h.info.warp_filter_size,
        "coolchics": coolchics,
        "offset": unit.offset,
        "payload_bytes": len(unit.payload),
        "unit_bytes": unit.size,
    }


def inspect_stream(source: Any) -> dict[str, Any]:
    """Everything ``inspect --json`` prints, for a path, '-' or a binary file object."""
    errors: list[str] = []
    reader = ContainerReader(source, on_corrupt=lambda e: errors.append(e.message))
    frames: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    other_bytes = 0
    try:
        try:
            for unit in reader.units():
                if unit.unit_type == UNIT_FRAME:
                    try:
                        frames.append(_frame_json(unit, reader.sequence))
                    except CorruptDataError as exc:
                        errors.append(
                            f"FRAME unit at byte {unit.offset}: {exc.message}"
                        )
                else:
                    other_bytes += unit.size
                    if unit.unit_type not in (UNIT_SEQ, UNIT_INDEX, UNIT_END):
                        skipped.append(
                            {
                                "type": unit.unit_type,
                                "offset": unit.offset,
                                "unit_bytes": unit.size,
                            }
                        )
        except TruncatedStreamError as exc:
            errors.append(exc.message)
        end = reader.bytes_read
    finally:
        reader.close()
    payload = sum(f["payload_bytes"] for f in frames)
    units = sum(f["unit_bytes"] for f in frames)
    return {
        "file": reader.name,
        "version": f"{reader.version[0]}.{reader.version[1]}",
        "sequence": _sequence_json(reader.sequence),
        "frames": frames,
        "index": reader.index,
        "skipped_units": skipped,
        "ended": reader.ended,
        "errors": errors,
        "totals": {
            "frames": len(frames),
            "frame_payload_bytes": payload,
            "frame_framing_bytes": units - payload,
            "stream_bytes": sum(c["stream_bytes"] for f in frames for c in f["coolchics"]),
            "nn_bits": round(sum(c["nn_bits"] or 0.0 for f in frames for c in f["coolchics"]), 1),
            "bytes_to_end": end,
        },
    }


def _module_cell(m: dict[str, Any]) -> str:
    """``fresh 412``, ``delta←4 37``, ``copy←0``: mode, source display index, bits."""
    where = f"←{m['source']}" if m["source"] is not None else ""
    bits = "" if m["mode"] == "copy" else " ?" if m["bits"] is None else f" {m['bits']:.0f}"
    return f"{m['mode']}{where}{bits}"


def print_report(report: dict[str, Any]) -> None:
    """Write the report's tables to stdout. Rendered first, then written in one go: rich turns a
    closed pipe into SystemExit(1), a plain write lets ``| head`` end the command quietly."""
    import io
    import shutil

    from rich.console import Console
    from rich.table import Table

    tty = sys.stdout.isatty()
    text = io.StringIO()
    out = Console(file=text, highlight=False, force_terminal=tty, width=shutil.get_terminal_size().columns if tty else 160)
    seq = Table(title=f"{report['file']}  (.ccv {report['version']})", show_header=True)
    seq.add_column("sequence field")
    seq.add_column("value")
    for key, value in report["sequence"].items():
        seq.add_row(key, str(value))
    out.print(seq)

    frames = Table(title="frames (coding order)")
    for col in (
        "coding",
        "display",
        "type",
        "depth",
        "refs",
        "cool-chic",
        "arm",
        "upsampling",
        "synthesis",
        "stream B",
        "NN bits",
        "symbols",
        "unit B",
        "offset",
    ):
        frames.add_column(
            col, justify="right" if col not in ("type", "refs", "cool-chic", "arm", "upsampling", "synthesis") else "left"
        )
    for f in report["frames"]:
        refs = (
            " ".join(
                f"{r['display_index']}"
                + (
                    f"({r['translation_y']:+d},{r['translation_x']:+d})"
                    if r["translation_y"] or r["translation_x"]
                    else ""
                )
                for r in f["references"]
            )
            or "-"
        )
        ccs = f["coolchics"] or [None]
        for i, c in enumerate(ccs):
            first = i == 0
            frames.add_row(
                str(f["coding_index"]) if first else "",
                str(f["display_index"]) if first else "",
                (f["type"] + (" (intra)" if f["intra_coded"] else "")) if first else "",
                str(f["depth"]) if first else "",
                refs if first else "",
                c["role"] if c else "-",
                *(_module_cell(c["modules"][name]) if c else "-" for name in MODULE_NAMES),
                str(c["stream_bytes"]) if c else "-",
                (f"{c['nn_bits']:.0f}" if c["nn_bits"] is not None else "?") if c else "-",
                str(c["n_symbols"]) if c else "-",
                str(f["unit_bytes"]) if first else "",
                str(f["offset"]) if first else "",
            )
    out.print(frames)
    t = report["totals"]
    idx = report["index"]
    out.print(
        f"{t['frames']} frames, {t['frame_payload_bytes']} payload bytes ({t['stream_bytes']} in NN + latent streams, NN ≈ {t['nn_bits'] / 8:.0f} of them), "
        f"{t['frame_framing_bytes']} framing bytes; "
        + (
            f"index: {len(idx['random_access_points'])} random-access point(s)"
            if idx
            else "no index (streamed)"
        ),
        markup=False,
    )
    if report["skipped_units"]:
        out.print(
            f"skipped {len(report['skipped_units'])} unit(s) of unknown type",
            markup=False,
        )
    sys.stdout.write(text.getvalue())
    sys.stdout.flush()
