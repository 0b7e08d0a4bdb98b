"""The real cost of a trained frame as quantization and RDOQ see it: hard-rounded forwards that
recompute only what the NN module being tuned can change.

    focus(None)              every call: full forward ─► (D, latent bits)
    focus(cc, "arm")         D kept; that Cool-chic's ARM over its cached contexts ─► bits
    focus(cc, "upsampling")  bits kept; its upsampling + synthesis from the cached grids ─► D
    focus(cc, "synthesis")   bits kept; its synthesis from the cached upsampled stack ─► D

Latents never change while an evaluator is focused, so contexts, grids and the other
Cool-chic's output stay valid; the results equal a full forward's bit for bit (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..nn.coolchic import CoolChicEncoder
from ..nn.frame import FrameEncoder
from .loss import Target, distortion


@dataclass
class _Cached:
    q: Tensor  # [n_latents] hard-rounded scaled latents
    contexts: Tensor
    rate: Tensor  # [n_latents] bits
    upsampled: Tensor
    raw: Tensor


class FrameEvaluator:
    """Callable () -> (D, latent bits) of a FrameEncoder against its target."""

    def __init__(self, fe: FrameEncoder, target: Target, references: list[Tensor]) -> None:
        self.fe, self.target, self.references = fe, target, references
        self._focus: tuple[int, str] | None = None
        self._cache: list[_Cached] = []
        self._mse = 0.0

    def _bits(self, rates: list[Tensor]) -> float:
        return float(torch.cat(rates).sum())

    def _mse_of(self, raws: list[Tensor]) -> float:
        return float(distortion(self.fe.combine(raws, self.references), self.target))

    def focus(self, coolchic: CoolChicEncoder | None, module: str | None = None) -> None:
        """Evaluate changes of one module of one Cool-chic from now on (None: full forwards)."""
        if coolchic is None:
            self._focus, self._cache = None, []
            return
        self.fe.eval()
        coolchics = list(self.fe.coolchics.values())
        with torch.no_grad():
            self._cache = []
            for cc in coolchics:
                q = cc.rounded_latents()
                contexts = cc.contexts(q)
                upsampled = cc.upsampling(cc.grids(q))
                self._cache.append(_Cached(q, contexts, cc.rate(q, contexts), upsampled, cc.synthesis(upsampled)))
            self._mse = self._mse_of([c.raw for c in self._cache])
        self._focus = (next(i for i, cc in enumerate(coolchics) if cc is coolchic), str(module))

    def __call__(self) -> tuple[float, float]:
        self.fe.eval()
        with torch.no_grad():
            if self._focus is None:
                out = self.fe(self.references)
                return float(distortion(out.decoded, self.target)), float(out.rate.sum())
            index, module = self._focus
            cc = list(self.fe.coolchics.values())[index]
            c = self._cache[index]
            rates = [x.rate for x in self._cache]
            if module == "arm":
                rates[index] = cc.rate(c.q, c.contexts)
                return self._mse, self._bits(rates)
            upsampled = c.upsampled if module == "synthesis" else cc.upsampling(cc.grids(c.q))
            raws = [x.raw for x in self._cache]
            raws[index] = cc.synthesis(upsampled)
            return self._mse_of(raws), self._bits(rates)


__all__ = ["FrameEvaluator"]
