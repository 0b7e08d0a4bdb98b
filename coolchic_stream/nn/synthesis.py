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
from .arm import pointwise_chain


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
        """x: [1, C_in, h, w] -> [1, n_output, h, w].

        1x1 layers run as one addmm on the [C, h*w] view, residual layers fold
        the identity into the kernel's centre tap (conv(x, W) + x = conv(x, W + I)),
        and ReLUs are applied in place.
        """
        if x.shape[0] != 1:
            return self.forward_plain(x)
        h, w = x.shape[-2:]
        inputs = x.reshape(x.shape[1], h * w)
        flat = inputs  # [C, h*w] while 1x1 layers follow each other, else None
        run: list[tuple[Tensor, Tensor, bool]] = []  # pending 1x1 layers, applied as one fused chain
        for layer, conv in zip(self.layers_spec, self.convs):
            k = layer.kernel_size
            weight = conv.weight
            if layer.residual:
                eye = torch.eye(conv.out_channels, dtype=weight.dtype, device=weight.device)
                weight = weight + F.pad(eye.view(conv.out_channels, conv.in_channels, 1, 1), ((k - 1) // 2,) * 4)
            if k == 1:
                if flat is None:
                    flat = x.reshape(x.shape[1], h * w)
                run.append((weight.flatten(1), conv.bias, layer.relu))
                continue
            if run:
                flat, run = pointwise_chain(flat, run), []
            if flat is not None:
                x, flat = flat.view(1, -1, h, w), None
            p = (k - 1) // 2
            padded = F.pad(x, (p, p, p, p), mode="replicate").contiguous(memory_format=torch.channels_last)
            y = F.conv2d(padded, weight, conv.bias)  # channels-last: much cheaper backward on CPU
            x = y.relu_() if layer.relu else y
        if run:
            flat = pointwise_chain(flat, run)
        if flat is None:
            flat = x.contiguous().view(self.n_output, h * w)
        if self.stabiliser is not None:
            c_in = inputs.shape[0]
            flat = torch.addmm(flat, self.stabiliser.weight.view(self.n_output, c_in), inputs) + self.stabiliser.bias.unsqueeze(1)
        return flat.view(1, self.n_output, h, w)

    def forward_plain(self, x: Tensor) -> Tensor:
        """Layer by layer as described (any batch size)."""
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
