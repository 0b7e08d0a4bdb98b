"""Rate-distortion loss: plane-size weighted MSE + lambda * bits per pixel, and PSNR."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..nn.frame import to_planes
from ..types import DataType


@dataclass(frozen=True)
class Target:
    """A frame to fit: dense [1, 3, H, W] in [0, 1] and its coded planes."""

    dense: Tensor
    planes: tuple[Tensor, ...]
    data_type: DataType

    @staticmethod
    def from_dense(dense: Tensor, data_type: DataType) -> "Target":
        return Target(dense, tuple(to_planes(dense, data_type)), data_type)

    @property
    def n_pixels(self) -> int:
        return int(self.dense.shape[-2] * self.dense.shape[-1])

    @property
    def n_samples(self) -> int:
        return int(sum(p.numel() for p in self.planes))


def distortion(decoded: Tensor, target: Target) -> Tensor:
    """MSE over every coded sample: (4Y+U+V)/6 for 4:2:0, plain mean otherwise."""
    planes = to_planes(decoded, target.data_type)
    sse = sum(((a - b) ** 2).sum() for a, b in zip(planes, target.planes))
    return sse / target.n_samples


def rd_loss(decoded: Tensor, rate_bits: Tensor, target: Target, lmbda: float) -> tuple[Tensor, Tensor, Tensor]:
    """(loss, mse, bpp) with bpp = latent bits / luma pixels."""
    mse = distortion(decoded, target)
    bpp = rate_bits.sum() / target.n_pixels
    return mse + lmbda * bpp, mse, bpp


def psnr(mse: float) -> float:
    return 10.0 * math.log10(1.0 / max(float(mse), 1e-12))


def psnr_luma(decoded: Tensor, target: Target) -> float:
    with torch.no_grad():
        return psnr(float(((decoded[:, :1] - target.dense[:, :1]) ** 2).mean()))
