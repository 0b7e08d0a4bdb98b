"""FrameEncoder: everything that codes one frame, i.e. its Cool-chic(s) and inter-coding module.

    I:    residue Cool-chic ─────────────────────────────────────────► x̂ [1, 3, H, W]
    P/B:  motion Cool-chic ─► flows ─► InterCodingModule(refs) ─► pred ─┐
          residue Cool-chic ─► (r, α[, β]) ──────────────────────────────┴► x̂ = α·pred + r

The decoded picture is dense (3 channels at luma resolution); ``to_planes``
turns it into the coded planes (chroma 2x2-averaged for 4:2:0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..architecture import CoolChicEncoderParameter
from ..spec import PICTURE_CHANNELS
from ..types import CoolChicRole, DataType, FrameType
from .coolchic import EVAL_QUANTIZER, CoolChicEncoder, QuantizerSettings


def pool_chroma(uv: Tensor) -> Tensor:
    """2x2 average of chroma at luma resolution, [1, 2, H, W] -> [1, 2, ceil(H/2), ceil(W/2)]."""
    h, w = uv.shape[-2:]
    if h % 2 or w % 2:
        uv = F.pad(uv, (0, w % 2, 0, h % 2), mode="replicate")
    return F.avg_pool2d(uv, 2)


def to_planes(dense: Tensor, data_type: DataType) -> list[Tensor]:
    """[1, 3, H, W] -> coded planes: [Y, UV] for 4:2:0, [all three] otherwise."""
    if data_type == DataType.YUV420:
        return [dense[:, :1], pool_chroma(dense[:, 1:])]
    return [dense]


@dataclass
class FrameEncoderOutput:
    decoded: Tensor  # [1, 3, H, W] dense decoded frame in [0, 1] (eval) or unclamped (train)
    rate: Tensor  # [n_latents] bits of every latent of every Cool-chic


class FrameEncoder(nn.Module):
    def __init__(
        self,
        frame_type: FrameType,
        data_type: DataType,
        bit_depth: int,
        residue: CoolChicEncoderParameter,
        motion: CoolChicEncoderParameter | None = None,
        inter: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.frame_type = frame_type
        self.data_type = data_type
        self.bit_depth = bit_depth
        self.coolchics = nn.ModuleDict({CoolChicRole.RESIDUE.name.lower(): CoolChicEncoder(residue)})
        if motion is not None:
            self.coolchics[CoolChicRole.MOTION.name.lower()] = CoolChicEncoder(motion)
        self.inter = inter

    @property
    def residue(self) -> CoolChicEncoder:
        return self.coolchics["residue"]

    @property
    def motion(self) -> CoolChicEncoder | None:
        return self.coolchics["motion"] if "motion" in self.coolchics else None

    def forward(self, references: list[Tensor] | None = None, quantizer: QuantizerSettings = EVAL_QUANTIZER) -> FrameEncoderOutput:
        """references: dense [1, 3, H, W] decoded reference frames (P: 1, B: 2)."""
        outputs = [cc(quantizer) for cc in self.coolchics.values()]
        decoded = self.combine([o.raw for o in outputs], references)
        return FrameEncoderOutput(decoded=decoded, rate=torch.cat([o.rate for o in outputs]))

    def combine(self, raws: list[Tensor], references: list[Tensor] | None = None) -> Tensor:
        """Cool-chic outputs (residue first, then motion) -> decoded frame [1, 3, H, W]
        (as the decoder's samples in eval mode)."""
        h, w = self.residue.param.img_size
        if self.frame_type == FrameType.I:
            decoded = raws[0][:, :PICTURE_CHANNELS, :h, :w]
        else:
            decoded = self.inter(raws[0][:, :, :h, :w], raws[1], references or [])
        return decoded if self.training else self._as_decoded(decoded)

    def _as_decoded(self, dense: Tensor) -> Tensor:
        """Samples as the decoder outputs them: rounded to the bit depth and clamped; 4:2:0 chroma
        averaged *before* rounding (as ``recon.frame`` does), then repeated to luma resolution so
        that ``to_planes`` gives those samples back exactly."""
        m = (1 << self.bit_depth) - 1
        if self.data_type != DataType.YUV420:
            return torch.clamp(torch.round(dense * m) / m, 0.0, 1.0)
        h, w = dense.shape[-2:]
        uv = torch.clamp(torch.round(pool_chroma(dense[:, 1:]) * m) / m, 0.0, 1.0)
        uv = uv.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)[..., :h, :w]
        return torch.cat([torch.clamp(torch.round(dense[:, :1] * m) / m, 0.0, 1.0), uv], dim=1)

    def macs_per_pixel(self) -> float:
        total = sum(cc.macs_per_pixel() for cc in self.coolchics.values())
        if self.inter is not None and hasattr(self.inter, "macs_per_pixel"):
            total += self.inter.macs_per_pixel()
        return total

    def latent_parameters(self) -> list[nn.Parameter]:
        return [p for cc in self.coolchics.values() for p in cc.latent_parameters()]

    def nn_parameters(self) -> list[nn.Parameter]:
        return [p for cc in self.coolchics.values() for p in cc.nn_parameters()]
