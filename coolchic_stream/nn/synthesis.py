"""Synthesis: a small convolutional network from dense latent features to output channels.

Layers are described by strings ``<out>-<kernel>-<linear|residual>-<relu|none>``,
``X`` standing for the number of outputs, e.g.
``48-1-linear-relu,X-1-linear-none,X-3-residual-relu,X-3-residual-none``::

    features ─► conv ─► conv ─► (conv + x) ─► (conv + x) ─┬─► outputs
             └────────── stabiliser: 1x1 conv ────────────┘
"""

from __future__ import annotations

import math
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..architecture import SynthesisLayer


class Synthesis(nn.Module):
    def __init__(self, in_channels: int, layers: tuple[SynthesisLayer, ...], stabiliser: bool = True) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.layers_spec = layers
        self.convs = nn.ModuleList()
        c = in_channels
        for layer in layers:
            if layer.residual and layer.out_channels != c:
                raise ValueError(f"residual synthesis layer {layer.describe()} needs {c} outputs")
            self.convs.append(nn.Conv2d(c, layer.out_channels, layer.kernel_size))
            c = layer.out_channels
        self.n_output = c
        self.stabiliser = nn.Conv2d(in_channels, c, 1) if stabiliser else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            for layer, conv in zip(self.layers_spec, self.convs):
                if layer.residual:
                    conv.weight.zero_()
                else:
                    a = math.sqrt(1.0 / (conv.in_channels * conv.kernel_size[0] ** 2)) / conv.out_channels**2
                    conv.weight.uniform_(-a, a)
                conv.bias.zero_()
            if self.stabiliser is not None:
                self.stabiliser.weight.zero_()
                self.stabiliser.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """x: [1, C_in, h, w] -> [1, n_output, h, w]."""
        inputs = x
        for layer, conv in zip(self.layers_spec, self.convs):
            p = (layer.kernel_size - 1) // 2
            y = conv(F.pad(x, (p, p, p, p), mode="replicate") if p else x)
            if layer.residual:
                y = y + x
            x = torch.relu(y) if layer.relu else y
        if self.stabiliser is not None:
            x = x + self.stabiliser(inputs)
        return x

    def macs_per_pixel(self) -> int:
        total = sum(c.in_channels * c.out_channels * c.kernel_size[0] ** 2 for c in self.convs)
        if self.stabiliser is not None:
            total += self.in_channels * self.n_output
        return total
