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

from ..spec import phase_taps, symmetric_index, tconv_geometry

# 2x bicubic (a = -0.75) interpolation taps at distances 1.75, 1.25, 0.75, 0.25.
BICUBIC_HALF = (-0.03515625, -0.10546875, 0.26171875, 0.87890625)
BILINEAR_HALF = (0.25, 0.75)


def symmetric_kernel(half: Tensor, odd: bool) -> Tensor:
    """Mirror free taps into the symmetric 1-D kernel of ``spec.symmetric_index``."""
    index = torch.tensor(symmetric_index(half.numel(), odd), device=half.device)
    return half[index]


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


def _shift(x: Tensor, dim: int, offset: int, n: int, pad: int) -> Tensor:
    return x.narrow(dim, pad + offset, n)


def fast_upsample2x(x: Tensor, half: Tensor, dim: int) -> Tensor:
    """Same as ``upsample2x_1d(x, symmetric_kernel(half, odd=False), dim)``, in polyphase form.

    A stride-2 transposed convolution followed by the crop of ``tconv_geometry``
    is two m-tap correlations, one per output parity (``phase_taps``), e.g. for
    k = 8 with free taps [a, b, c, d]: even[p] = a x[p-2] + c x[p-1] + d x[p] + b x[p+1]
    and odd[p] = b x[p-1] + d x[p] + c x[p+1] + a x[p+2]. Written with shifted
    slices (single-channel convolutions are slow to differentiate on CPU).
    x: [C, h, w], ``dim`` 1 or 2 -> doubled along ``dim``.
    """
    r = half.numel() // 2  # reach of the phases on each side
    n = x.shape[dim]
    shape = list(x.shape)
    xp = F.pad(x, (r, r, 0, 0) if dim == x.dim() - 1 else (0, 0, r, r), mode="replicate")
    # Phase taps for the even output (offset -> tap index into the full kernel k): derived from
    # out[o] = y[o + crop], y[2q + s] = sum_t k[s + 2t] xpad[q - t] (stride-2 transposed conv).
    even, odd = phase_taps(half.numel())
    ye = None
    yo = None
    for off, j in even:
        term = _shift(xp, dim, off, n, r) * half[j]
        ye = term if ye is None else ye + term
    for off, j in odd:
        term = _shift(xp, dim, off, n, r) * half[j]
        yo = term if yo is None else yo + term
    y = torch.stack([ye, yo], dim=dim + 1)
    shape[dim] = 2 * n
    return y.reshape(shape)


def fast_filter(x: Tensor, half: Tensor, dim: int) -> Tensor:
    """Same as ``filter_1d(x, symmetric_kernel(half, odd=True), dim)`` with shifted slices."""
    m = half.numel()
    r = m - 1
    if r == 0:
        return x * half[0]
    n = x.shape[dim]
    xp = F.pad(x, (r, r, 0, 0) if dim == x.dim() - 1 else (0, 0, r, r), mode="replicate")
    y = _shift(xp, dim, 0, n, r) * half[r]
    for d in range(1, r + 1):
        y = y + (_shift(xp, dim, -d, n, r) + _shift(xp, dim, d, n, r)) * half[r - d]
    return y


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
        """grids: finest first, each [1, 1, h_i, w_i] -> [1, n_grids, h_0, w_0].

        Training path: polyphase shifted-slice filters (same math as the two
        1-D transposed convolutions of ``forward_conv``, which the exact
        decoder mirrors), several times cheaper to differentiate on CPU.
        """
        x = grids[-1][0]  # [C=1, h, w]
        for i in range(len(grids) - 2, -1, -1):
            x = fast_upsample2x(fast_upsample2x(x, self.tconv[i], dim=2), self.tconv[i], dim=1)
            h, w = grids[i].shape[-2:]
            x = x[:, :h, :w]
            g = grids[i][0]
            p = self.preconcat[i]
            g = g + fast_filter(fast_filter(g, p, dim=2), p, dim=1)
            x = torch.cat([g, x], dim=0)
        return x.unsqueeze(0)

    def channel(self, grids: list[Tensor], index: int) -> Tensor:
        """Channel ``index`` of ``forward(grids)`` alone, [1, h_0, w_0]: it depends on grid
        ``index`` only (every operation is per channel), and equals that channel bit for bit."""
        x = grids[index][0]
        if index < len(grids) - 1:
            p = self.preconcat[index]
            x = x + fast_filter(fast_filter(x, p, dim=2), p, dim=1)
        for i in range(index - 1, -1, -1):
            x = fast_upsample2x(fast_upsample2x(x, self.tconv[i], dim=2), self.tconv[i], dim=1)
            h, w = grids[i].shape[-2:]
            x = x[:, :h, :w]
        return x

    def forward_conv(self, grids: list[Tensor]) -> Tensor:
        """Convolution form of ``forward`` (the exact decoder's structure)."""
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
