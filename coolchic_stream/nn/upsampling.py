"""Learned cascaded upsampling of the latent pyramid to a dense feature tensor.

Coarsest grid first; each stage doubles the stack with one separable symmetric
transposed convolution shared by all channels, then concatenates the next finer
grid filtered by a separable symmetric odd filter with a residual connection::

    g_n ─► T_n ─► crop ─┐
    g_{n-1} ─► (+ P_{n-1}) ─► concat ─► T_{n-1} ─► ... ─► [g_0', ..., g_n'↑]   (finest first)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# 2x bicubic (a = -0.75) interpolation taps at distances 1.75, 1.25, 0.75, 0.25.
BICUBIC_HALF = (-0.03515625, -0.10546875, 0.26171875, 0.87890625)
BILINEAR_HALF = (0.25, 0.75)


def symmetric_kernel(half: Tensor, odd: bool) -> Tensor:
    """Mirror free taps into a symmetric 1-D kernel: [a, b, c] -> [a, b, c, b, a] (odd) or [a, b, c, c, b, a]."""
    mirrored = torch.flip(half[:-1] if odd else half, dims=(0,))
    return torch.cat([half, mirrored])


def tconv_geometry(kernel_size: int) -> tuple[int, int]:
    """(replicate padding, crop) that make a stride-2 transposed conv exactly double a size."""
    pad = kernel_size // 2
    crop = 2 * pad - 1 + kernel_size // 2
    return pad, crop


def upsample2x_1d(x: Tensor, kernel: Tensor, dim: int) -> Tensor:
    """Stride-2 transposed conv of every channel along one spatial dim. x: [C, 1, h, w]."""
    k = kernel.numel()
    pad, crop = tconv_geometry(k)
    if dim == 3:
        x = F.pad(x, (pad, pad, 0, 0), mode="replicate")
        y = F.conv_transpose2d(x, kernel.view(1, 1, 1, k), stride=(1, 2))
        return y[..., crop : y.shape[-1] - crop]
    x = F.pad(x, (0, 0, pad, pad), mode="replicate")
    y = F.conv_transpose2d(x, kernel.view(1, 1, k, 1), stride=(2, 1))
    return y[..., crop : y.shape[-2] - crop, :]


def filter_1d(x: Tensor, kernel: Tensor, dim: int) -> Tensor:
    """Same-size odd filtering along one spatial dim with replicate padding. x: [C, 1, h, w]."""
    k = kernel.numel()
    p = (k - 1) // 2
    if dim == 3:
        return F.conv2d(F.pad(x, (p, p, 0, 0), mode="replicate"), kernel.view(1, 1, 1, k))
    return F.conv2d(F.pad(x, (0, 0, p, p), mode="replicate"), kernel.view(1, 1, k, 1))


class Upsampling(nn.Module):
    """Cascaded learned upsampling with ``n_stages`` = number of grids - 1."""

    def __init__(self, n_stages: int, kernel_size: int = 8, preconcat_kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size < 4 or kernel_size % 2:
            raise ValueError(f"upsampling kernel {kernel_size} must be even and >= 4")
        if preconcat_kernel_size < 1 or preconcat_kernel_size % 2 == 0:
            raise ValueError(f"pre-concat kernel {preconcat_kernel_size} must be odd")
        self.kernel_size = kernel_size
        self.preconcat_kernel_size = preconcat_kernel_size
        # Stage i upsamples towards grid i (0 = finest); parameters listed finest first.
        self.tconv = nn.ParameterList(nn.Parameter(torch.zeros(kernel_size // 2)) for _ in range(n_stages))
        self.preconcat = nn.ParameterList(
            nn.Parameter(torch.zeros((preconcat_kernel_size + 1) // 2)) for _ in range(n_stages)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init = BICUBIC_HALF if self.kernel_size >= 8 else BILINEAR_HALF
        with torch.no_grad():
            for p in self.tconv:
                p.zero_()
                p[-len(init) :] = torch.tensor(init[-p.numel() :])
            for p in self.preconcat:
                p.zero_()  # with the residual connection: identity at start

    def forward(self, grids: list[Tensor]) -> Tensor:
        """grids: finest first, each [1, 1, h_i, w_i] -> [1, n_grids, h_0, w_0]."""
        x = grids[-1][0].unsqueeze(1)  # [C=1, 1, h, w]
        for i in range(len(grids) - 2, -1, -1):
            k = symmetric_kernel(self.tconv[i], odd=False)
            x = upsample2x_1d(upsample2x_1d(x, k, dim=3), k, dim=2)
            h, w = grids[i].shape[-2:]
            x = x[..., :h, :w]
            g = grids[i][0].unsqueeze(1)
            p = symmetric_kernel(self.preconcat[i], odd=True)
            g = g + filter_1d(filter_1d(g, p, dim=3), p, dim=2)
            x = torch.cat([g, x], dim=0)
        return x.transpose(0, 1)

    def macs_per_pixel(self, grid_sizes: list[tuple[int, int]]) -> float:
        """Multiply-accumulates per finest-grid sample (two 1-D passes per filter)."""
        h0, w0 = grid_sizes[0]
        total = 0
        for i in range(len(grid_sizes) - 1):
            h, w = grid_sizes[i]
            channels_below = len(grid_sizes) - 1 - i
            total += channels_below * h * w * self.kernel_size  # k/2 taps per output per pass
            total += h * w * 2 * self.preconcat_kernel_size
        return total / (h0 * w0)
