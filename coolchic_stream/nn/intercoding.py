"""InterCodingModule: turns motion and residue Cool-chic outputs into a predicted + corrected frame.

    motion raw [1, 2·n_refs, h/4, w/4] ─► nearest ×4 ─► + global translation ─► (eval: 1/64 pel)
        ─► warp(ref_i, v_i) ─► pred = P: w0 | B: β·w0 + (1-β)·w1
    residue raw [1, 3+α(+β), H, W] ─► x̂ = α·pred + r,   α = clamp(raw_α + ½, 0, 1)

Float twin of ``recon.frame.assemble``, used for training.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..spec import ALPHA_CHANNEL, BETA_CHANNEL, GATE_OFFSET, MOTION_BLOCK, PICTURE_CHANNELS, WARP_TAPS
from ..types import FrameType
from .warp import quantize_flow, upsample_motion, warp


def gate(raw: Tensor) -> Tensor:
    return torch.clamp(raw + GATE_OFFSET, 0.0, 1.0)


class InterCodingModule(nn.Module):
    def __init__(self, frame_type: FrameType, translations: list[tuple[int, int]]) -> None:
        super().__init__()
        if frame_type == FrameType.I:
            raise ValueError("an I frame has no inter-coding module")
        self.frame_type = frame_type
        self.translations = list(translations)

    def flows(self, motion: Tensor, height: int, width: int) -> list[Tensor]:
        """Per-reference dense flows [1, 2, H, W] in pixels (x first), translation included."""
        out = []
        for i, (ty, tx) in enumerate(self.translations):
            v = upsample_motion(motion[:, 2 * i : 2 * i + 2], height, width)
            v = v + torch.tensor([tx, ty], dtype=v.dtype, device=v.device).view(1, 2, 1, 1)
            out.append(v if self.training else quantize_flow(v))
        return out

    def predict(self, motion: Tensor, references: list[Tensor], height: int, width: int, beta: Tensor | None) -> Tensor:
        warped = [warp(ref, v) for ref, v in zip(references, self.flows(motion, height, width))]
        if self.frame_type == FrameType.P:
            return warped[0]
        return beta * warped[0] + (1.0 - beta) * warped[1]

    def forward(self, residue: Tensor, motion: Tensor, references: list[Tensor]) -> Tensor:
        """residue: [1, 4|5, H, W]; motion: [1, 2|4, h4, w4]; references: [1, 3, H, W] each."""
        h, w = residue.shape[-2:]
        beta = gate(residue[:, BETA_CHANNEL : BETA_CHANNEL + 1]) if self.frame_type == FrameType.B else None
        pred = self.predict(motion, references, h, w, beta)
        return gate(residue[:, ALPHA_CHANNEL : ALPHA_CHANNEL + 1]) * pred + residue[:, :PICTURE_CHANNELS]

    def macs_per_pixel(self) -> float:
        """Separable sinc warp per channel: (N^2 - N) / block + 2N, for each picture channel of each reference."""
        per_channel = (WARP_TAPS**2 - WARP_TAPS) / MOTION_BLOCK + 2 * WARP_TAPS
        return per_channel * PICTURE_CHANNELS * len(self.translations)
