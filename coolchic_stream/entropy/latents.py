"""Range coding of a Cool-chic's integer latents in merged wavefront order.

A latent (y, x) of any grid belongs to wavefront step x + L*y (L from
``wavefront_lag``). The bitstream orders symbols by step, then by grid
(coarsest first), then by row, so the decoder decodes one step of *all* grids
as a single batch: one fixed-point ARM call and one range-decoder call per step::

    step t:  gather contexts of the step's latents ─► IntegerArm ─► table ─► RangeDecoder ─► scatter
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import constriction
import numpy as np

from ..errors import CorruptDataError
from ..spec import CONTEXT_PAD, LATENT_MAX, LATENT_MIN, context_offsets, wavefront_lag
from .arm_int import ArmStack, IntegerArm, laplace_parameters
from .stream import Part

_FAMILY = constriction.stream.model.QuantizedLaplace(LATENT_MIN, LATENT_MAX)


def _guarded(call, what: str):
    """Run a constriction call; its panics derive from BaseException, so catch those too."""
    try:
        return call()
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # noqa: BLE001 - pyo3 PanicException is not an Exception
        raise CorruptDataError(f"latent {what} failed: the coded latents are inconsistent", "the frame payload is corrupted") from None


@dataclass(frozen=True)
class LatentLayout:
    """Geometry of the latent grids of one Cool-chic (finest first) and its coding order."""

    grid_sizes: tuple[tuple[int, int], ...]
    context_size: int

    @cached_property
    def lag(self) -> int:
        return wavefront_lag(self.context_size)

    @cached_property
    def n_symbols(self) -> int:
        return sum(h * w for h, w in self.grid_sizes)

    @cached_property
    def _padded(self) -> tuple[np.ndarray, np.ndarray]:
        """Per grid: base offset and row stride in the flat zero-padded decode buffer."""
        bases, strides, base = [], [], 0
        for h, w in self.grid_sizes:
            bases.append(base)
            strides.append(w + 2 * CONTEXT_PAD)
            base += (h + 2 * CONTEXT_PAD) * (w + 2 * CONTEXT_PAD)
        return np.array(bases + [base]), np.array(strides)

    @cached_property
    def order(self) -> dict[str, np.ndarray]:
        """Coding order of every symbol.

        raster: index in the concatenation of raster-scanned grids (finest first);
        buffer: index in the flat padded buffer; grid: grid index;
        steps: boundaries of the wavefront steps in coding order.
        """
        n = len(self.grid_sizes)
        keys_t, keys_g, keys_y, raster, buffer, grid = [], [], [], [], [], []
        bases, strides = self._padded
        start = 0
        for g, (h, w) in enumerate(self.grid_sizes):
            yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
            yy, xx = yy.reshape(-1), xx.reshape(-1)
            keys_t.append(xx + self.lag * yy)
            keys_g.append(np.full(h * w, n - 1 - g))  # coarsest grid first within a step
            keys_y.append(yy)
            raster.append(start + np.arange(h * w))
            buffer.append(bases[g] + (yy + CONTEXT_PAD) * strides[g] + xx + CONTEXT_PAD)
            grid.append(np.full(h * w, g))
            start += h * w
        t = np.concatenate(keys_t)
        perm = np.lexsort((np.concatenate(keys_y), np.concatenate(keys_g), t))
        t_sorted = t[perm]
        steps = np.flatnonzero(np.diff(t_sorted)) + 1
        return {
            "raster": np.concatenate(raster)[perm],
            "buffer": np.concatenate(buffer)[perm],
            "grid": np.concatenate(grid)[perm],
            "steps": np.concatenate([[0], steps, [t_sorted.size]]),
        }

    @cached_property
    def neighbour_offsets(self) -> np.ndarray:
        """[n_grids, S] offsets of the context positions in the flat padded buffer."""
        _, strides = self._padded
        offs = np.array(context_offsets(self.context_size))
        return offs[None, :, 0] * strides[:, None] + offs[None, :, 1]

    def buffer_size(self) -> int:
        return int(self._padded[0][-1])

    def split(self, flat_raster: np.ndarray) -> list[np.ndarray]:
        grids, start = [], 0
        for h, w in self.grid_sizes:
            grids.append(flat_raster[start : start + h * w].reshape(h, w))
            start += h * w
        return grids


def _contexts_all(layout: LatentLayout, grids: list[np.ndarray]) -> np.ndarray:
    """[n_symbols, S] contexts in raster order, from fully known grids."""
    bases, strides = layout._padded
    buf = np.zeros(layout.buffer_size(), dtype=np.float64)
    for g, ((h, w), grid) in enumerate(zip(layout.grid_sizes, grids)):
        view = buf[bases[g] : bases[g + 1]].reshape(h + 2 * CONTEXT_PAD, w + 2 * CONTEXT_PAD)
        view[CONTEXT_PAD : CONTEXT_PAD + h, CONTEXT_PAD : CONTEXT_PAD + w] = grid
    order = layout.order
    idx = order["buffer"][:, None] + layout.neighbour_offsets[order["grid"]]
    ctx = np.empty((layout.n_symbols, layout.context_size), dtype=np.float64)
    ctx[order["raster"]] = buf[idx]
    return ctx


def encode_latents(layout: LatentLayout, grids: list[np.ndarray], arm: IntegerArm) -> Part:
    """Integer grids (finest first, values within the coder's support) as the latent part of a
    Cool-chic's stream (``stream.seal``): symbols in coding order with their Laplace parameters."""
    if layout.n_symbols == 0:
        return Part(_FAMILY, np.zeros(0, np.int32))
    flat = np.concatenate([g.reshape(-1) for g in grids]).astype(np.int64)
    if flat.min() < LATENT_MIN or flat.max() > LATENT_MAX:
        raise ValueError(f"latent value outside [{LATENT_MIN}, {LATENT_MAX}]")
    mu_q8, ls_q8 = arm(_contexts_all(layout, grids))
    mean, scale = laplace_parameters(mu_q8, ls_q8)
    raster = layout.order["raster"]
    return Part(_FAMILY, flat[raster].astype(np.int32), (mean[raster], scale[raster]))


@lru_cache(maxsize=8)
def _decode_plan(layout: LatentLayout) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]], np.ndarray]:
    """Per layout (cached across frames): buffer positions and context indices in coding order,
    the step boundaries, and the inverse map buffer -> raster."""
    order = layout.order
    pos = order["buffer"]
    ctx_index = (pos[:, None] + layout.neighbour_offsets[order["grid"]]).astype(np.int32)
    steps = order["steps"].tolist()
    bounds = list(zip(steps[:-1], steps[1:]))
    raster_pos = np.empty(layout.n_symbols, dtype=np.intp)
    raster_pos[order["raster"]] = pos
    return pos.astype(np.intp), ctx_index, bounds, raster_pos


def decode_latents_many(jobs: list[tuple[LatentLayout, object, IntegerArm]]) -> list[list[np.ndarray]]:
    """Decode the latents of several Cool-chics together; each job's decoder is its Cool-chic's
    stream, past the NN bins (``stream.open_decoder``, ``nn_weights.decode_nn``).

    The streams are independent, so their wavefront steps may interleave freely: Cool-chics that
    share a layout and an ARM architecture form a group whose step t is one gather, one stacked
    ARM evaluation and one decode call per stream. Same integers as :func:`decode_latents` on
    each job alone.
    """
    results: list[list[np.ndarray] | None] = [None] * len(jobs)
    groups: dict[tuple, list[int]] = {}
    decoders = []
    for i, (layout, decoder, arm) in enumerate(jobs):
        decoders.append(decoder)
        if layout.n_symbols == 0:
            results[i] = layout.split(np.zeros(0, dtype=np.int64))
            continue
        key = (layout, len(arm.hidden), arm.stabiliser is None)
        groups.setdefault(key, []).append(i)
    active = []
    for (layout, _, _), members in groups.items():
        pos, ctx_index, bounds, raster_pos = _decode_plan(layout)
        buf = np.zeros((len(members), layout.buffer_size()), dtype=np.float64)
        stack = ArmStack([jobs[i][2] for i in members])
        active.append((bounds, pos, ctx_index, buf, stack, [decoders[i] for i in members]))
    n_steps = max((len(a[0]) for a in active), default=0)
    for t in range(n_steps):
        for bounds, pos, ctx_index, buf, stack, decs in active:
            if t >= len(bounds):
                continue
            lo, hi = bounds[t]
            ctx = buf.take(ctx_index[lo:hi], axis=1)
            mean, scale = stack(ctx)
            p = pos[lo:hi]
            for k, dec in enumerate(decs):
                buf[k, p] = _guarded(lambda: dec.decode(_FAMILY, mean[k], scale[k]), "decoding")
    for ((layout, _, _), members), (_, _, _, buf, _, _) in zip(groups.items(), active):
        raster_pos = _decode_plan(layout)[3]
        for k, i in enumerate(members):
            results[i] = layout.split(buf[k, raster_pos].astype(np.int64))
    return results  # type: ignore[return-value]


def decode_latents(layout: LatentLayout, decoder, arm: IntegerArm) -> list[np.ndarray]:
    """Decode grids (finest first) one wavefront step at a time."""
    return decode_latents_many([(layout, decoder, arm)])[0]
