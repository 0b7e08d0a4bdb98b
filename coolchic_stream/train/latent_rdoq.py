"""Rate-distortion optimised quantization of the latents: greedy ±1 moves, many at a time.

Training ends with every latent rounded to its nearest integer; that is rarely the best
integer once its bits are counted. Each latent of the residue Cool-chic is tried at a
candidate value (the other rounding of its trained value, then one step towards zero) and
the move is kept when the real cost D + λ·R/pixels of a hard-rounded forward goes down.

One forward tries a whole lattice of latents of one grid at once. The lattice spacing is
wider than what a single latent can reach, so every change owns a disjoint cell of the
picture (its footprint through upsampling and synthesis) and of its grid (the symbols whose
ARM context holds it), and its cost change is read exactly from that cell::

    grid i, lattice offset (oy, ox), spacing (sy, sx):
        move every lattice latent ─► forward of grid i (its ARM, its upsampled channel; the
        other channels cached) ─► synthesis ─► per-cell Δ(squared error), Δ(bits)
        ─► keep the cells where Δ(D + λ·R) < 0, restore the others

Grids and offsets are visited in a fixed order, so the result is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..nn.arm import gather_context, laplace_bits_fast
from ..nn.coolchic import CoolChicEncoder
from ..nn.frame import FrameEncoder, to_planes
from ..spec import LATENT_MAX, LATENT_MIN, context_offsets, tconv_geometry
from .loss import Target


@dataclass(frozen=True)
class Footprint:
    """Where a latent at grid position p reaches, per axis: [2^level·p + lo, 2^level·p + hi] in
    frame pixels, and ARM symbols [p + rate_lo, p + rate_hi] of its own grid (rows, columns)."""

    level: int
    lo: int
    hi: int
    rate_lo: tuple[int, int]
    rate_hi: tuple[int, int]

    def spacing(self) -> tuple[int, int]:
        """Smallest lattice step (rows, columns) in grid units keeping footprints disjoint."""
        pixels = math.ceil((self.hi - self.lo + 1) / 2**self.level)
        return tuple(max(pixels, self.rate_hi[a] - self.rate_lo[a] + 1) for a in range(2))  # type: ignore[return-value]


def footprints(cc: CoolChicEncoder) -> list[Footprint]:
    """Footprint of every grid of a Cool-chic whose finest grid is at frame resolution."""
    param = cc.param
    pad, crop = tconv_geometry(param.ups_kernel)
    pre = (param.ups_preconcat_kernel - 1) // 2
    synth = sum((layer.kernel_size - 1) // 2 for layer in param.layers_synthesis)
    offsets = context_offsets(param.arm.context_size)
    # A symbol q is affected by p when p - q is one of its context offsets.
    rate_lo = (min(-dy for dy, _ in offsets), min(-dx for _, dx in offsets))
    rate_hi = (max(-dy for dy, _ in offsets), max(-dx for _, dx in offsets))
    out = []
    for level in range(param.n_grids):
        lo, hi = -pre, pre
        for _ in range(level):
            lo, hi = 2 * lo + 2 * pad - crop, 2 * hi + 2 * pad - crop + param.ups_kernel - 1
        # One more on the low side: a 4:2:0 chroma sample pools luma rows 2y and 2y + 1.
        out.append(Footprint(level, lo - synth - 1, hi + synth, rate_lo, rate_hi))
    return out


@dataclass
class _State:
    """Per-sample squared error of every coded plane and per-latent bits of a hard-rounded forward."""

    errors: list[Tensor]
    rate: Tensor

    @staticmethod
    def of(decoded: Tensor, rate: Tensor, target: Target) -> _State:
        planes = to_planes(decoded, target.data_type)
        return _State([((a - b) ** 2).sum(1)[0] for a, b in zip(planes, target.planes)], rate)

    @staticmethod
    def measure(fe: FrameEncoder, target: Target, references: list[Tensor]) -> _State:
        with torch.no_grad():
            out = fe(references)
            return _State.of(out.decoded, out.rate.clone(), target)


class _GridForward:
    """Hard-rounded forward after a change of one grid of the residue Cool-chic: that grid's ARM
    rate, its upsampled channel (the others are cached), the synthesis and the frame.

    Rates of untouched grids are copied, so a state's bits equal a full forward's only up to
    rounding; deltas are always taken between two states of this class for the same grid."""

    def __init__(self, fe: FrameEncoder, target: Target, references: list[Tensor]) -> None:
        self.fe, self.target, self.references = fe, target, references
        self.cc = fe.residue
        with torch.no_grad():
            self.others = [cc().raw for cc in list(fe.coolchics.values())[1:]]
            self.stack = self.cc.upsampling(self._grids())

    def _grids(self) -> list[Tensor]:
        return self.cc.grids(self.cc.rounded_latents())

    def grid_rate(self, level: int, grids: list[Tensor] | None = None) -> Tensor:
        q = (grids or self._grids())[level]
        contexts = gather_context(q, self.cc.param.arm.context_size).t().contiguous()
        mu, scale = self.cc.arm.forward_columns(contexts)
        return laplace_bits_fast(q.reshape(-1), mu, scale)

    def refresh(self, level: int) -> None:
        """Bring the cached channel of ``level`` up to date with the latents."""
        with torch.no_grad():
            self.stack[:, level] = self.cc.upsampling.channel(self._grids(), level)[0]

    def __call__(self, base: _State, level: int, segment: slice) -> _State:
        with torch.no_grad():
            grids = self._grids()
            stack = self.stack.clone()
            stack[:, level] = self.cc.upsampling.channel(grids, level)[0]
            decoded = self.fe.combine([self.cc.synthesis(stack), *self.others], self.references)
            rate = base.rate.clone()
            rate[segment] = self.grid_rate(level, grids)
            return _State.of(decoded, rate, self.target)


def _in_lattice(rows: Tensor, cols: Tensor, n_rows: int, n_cols: int) -> tuple[Tensor, Tensor]:
    """(valid [h, w], flat cell index [h, w]) of a map whose rows / columns fall in the given cells."""
    valid = (rows >= 0)[:, None] & (rows < n_rows)[:, None] & (cols >= 0)[None, :] & (cols < n_cols)[None, :]
    index = rows.clamp(0, n_rows - 1)[:, None] * n_cols + cols.clamp(0, n_cols - 1)[None, :]
    return valid, index


@dataclass(frozen=True)
class Lattice:
    """The latents (offset + step·k) of one grid, tried together, and the cells they own."""

    cc: CoolChicEncoder
    level: int
    offset: tuple[int, int]
    step: tuple[int, int]
    footprint: Footprint

    @property
    def grid(self) -> Tensor:
        h, w = self.cc.param.grid_sizes[self.level]
        return self.cc.latents[self.level].data.view(h, w)

    @property
    def index(self) -> tuple[slice, slice]:
        return slice(self.offset[0], None, self.step[0]), slice(self.offset[1], None, self.step[1])

    def _plane_cells(self, plane: Tensor) -> tuple[Tensor, Tensor]:
        """Cells of a coded plane's samples; a subsampled plane's sample sits at its first frame
        pixel (the footprint's extra low-side pixel covers the second)."""
        out = []
        for axis in range(2):
            n, full = plane.shape[axis], self.cc.param.img_size[axis]
            scale = -(-full // n)
            pixels = torch.arange(n) * scale - self.offset[axis] * 2**self.level - self.footprint.lo
            out.append(torch.div(pixels, self.step[axis] * 2**self.level, rounding_mode="floor"))
        return out[0], out[1]

    def _grid_cells(self) -> tuple[Tensor, Tensor]:
        h, w = self.cc.param.grid_sizes[self.level]
        fp = self.footprint
        rows = torch.div(torch.arange(h) - self.offset[0] - fp.rate_lo[0], self.step[0], rounding_mode="floor")
        cols = torch.div(torch.arange(w) - self.offset[1] - fp.rate_lo[1], self.step[1], rounding_mode="floor")
        return rows, cols

    def segment(self) -> slice:
        sizes = self.cc.param.grid_sizes
        start = sum(h * w for h, w in sizes[: self.level])
        h, w = sizes[self.level]
        return slice(start, start + h * w)

    def deltas(self, base: _State, trial: _State, sample_weight: float, bit_weight: float) -> Tensor:
        """Change of D + λ·R/pixels owned by each lattice latent, [n_rows, n_cols] float64."""
        n_rows, n_cols = self.grid[self.index].shape
        sums = torch.zeros(n_rows * n_cols, dtype=torch.float64)
        maps = [(t - e, self._plane_cells(e), sample_weight) for e, t in zip(base.errors, trial.errors)]
        seg = self.segment()
        h, w = self.cc.param.grid_sizes[self.level]
        maps.append(((trial.rate[seg] - base.rate[seg]).view(h, w), self._grid_cells(), bit_weight))
        for values, cells, weight in maps:
            valid, index = _in_lattice(*cells, n_rows, n_cols)
            sums.index_add_(0, index[valid], values[valid].double() * weight)
        return sums.view(n_rows, n_cols)

    def accept(self, base: _State, trial: _State, keep: Tensor) -> None:
        """Take the trial's errors and bits inside the kept cells (footprints are disjoint)."""
        n_rows, n_cols = keep.shape
        for e, t in zip(base.errors, trial.errors):
            valid, index = _in_lattice(*self._plane_cells(e), n_rows, n_cols)
            mask = valid & keep.view(-1)[index]
            e[mask] = t[mask]
        valid, index = _in_lattice(*self._grid_cells(), n_rows, n_cols)
        mask = (valid & keep.view(-1)[index]).view(-1)
        seg = self.segment()
        base.rate[seg][mask] = trial.rate[seg][mask]


def lattices(cc: CoolChicEncoder) -> list[Lattice]:
    """Every lattice of every grid, finest grid first, in a fixed order."""
    out = []
    for fp, (h, w) in zip(footprints(cc), cc.param.grid_sizes):
        step = fp.spacing()
        out += [Lattice(cc, fp.level, (oy, ox), step, fp) for oy in range(min(step[0], h)) for ox in range(min(step[1], w))]
    return out


# Pass order: the other rounding of the trained value is the likeliest winner, then the cheaper value.
CANDIDATES = ("other rounding", "towards zero", "up", "down")


def _candidate(kind: str, current: Tensor, trained: Tensor) -> Tensor:
    if kind == "other rounding":
        return current + torch.where(trained > current, 1.0, -1.0)
    if kind == "towards zero":
        return current - torch.sign(current)
    if kind == "up":
        return current + 1.0
    return current - 1.0


def latent_rdoq(
    fe: FrameEncoder,
    target: Target,
    references: list[Tensor],
    lmbda: float,
    passes: int = 2,
    progress: Callable[[int, int, float, float], None] | None = None,
) -> tuple[int, float]:
    """Improve the residue Cool-chic's latents in place with the first ``passes`` candidates;
    returns (moves kept, change of D + λ·R/pixels). ``progress`` hears (lattices done, lattices
    in all, D + λ·R/pixels, D) every 16 lattices and at the end."""
    cc = fe.residue
    gain = cc.param.encoder_gain
    if cc.param.grid_sizes[0] != tuple(cc.param.img_size):
        return 0, 0.0
    fe.eval()
    base = _State.measure(fe, target, references)
    forward = _GridForward(fe, target, references)
    weights = (1.0 / target.n_samples, lmbda / target.n_pixels)
    trials = [(kind, lattice) for kind in CANDIDATES[:passes] for lattice in lattices(cc)]
    kept, gained, level = 0, 0.0, -1
    with torch.no_grad():
        trained = [g.detach().clone()[0, 0] * gain for g in cc.latents]
        for done, (kind, lattice) in enumerate(trials, start=1):
            segment = lattice.segment()
            if lattice.level != level:  # the grid's bits as _GridForward computes them
                level = lattice.level
                base.rate[segment] = forward.grid_rate(level)
            grid, index = lattice.grid, lattice.index
            current = torch.round(grid[index] * gain)
            new = _candidate(kind, current, trained[level][index]).clamp(LATENT_MIN, LATENT_MAX)
            if not bool((new == current).all()):
                grid[index] = new / gain
                trial = forward(base, level, segment)
                delta = lattice.deltas(base, trial, *weights)
                keep = delta < 0
                grid[index] = torch.where(keep, new, current) / gain
                if bool(keep.any()):
                    kept += int(keep.sum())
                    gained += float(delta[keep].sum())
                    lattice.accept(base, trial, keep)
                    forward.refresh(level)
            if progress is not None and (done % 16 == 0 or done == len(trials)):
                mse = weights[0] * sum(float(e.double().sum()) for e in base.errors)
                progress(done, len(trials), mse + weights[1] * float(base.rate.double().sum()), mse)
    return kept, gained


__all__ = ["CANDIDATES", "Footprint", "Lattice", "footprints", "latent_rdoq", "lattices"]
