"""CoolChicEncoder: latent pyramid + ARM + upsampling + synthesis, overfitted to one frame.

    latents y_i (zero init) ─► × gain ─► quantize ─► ŷ_i ─┬─► ARM(causal ctx) ─► rate (bits)
                                                         └─► upsampling ─► synthesis ─► output
                                                                         [n_output, h_0, w_0]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..architecture import CoolChicEncoderParameter
from .arm import Arm, gather_contexts, laplace_bits_fast
from .quantizer import NoiseType, QuantizerMode, quantize
from .synthesis import Synthesis
from .upsampling import Upsampling


@dataclass
class CoolChicOutput:
    raw: Tensor  # [1, n_output, h_0, w_0] at the finest latent resolution
    rate: Tensor  # [n_latents] bits per latent


@dataclass(frozen=True)
class QuantizerSettings:
    mode: QuantizerMode = QuantizerMode.SOFTROUND
    noise: NoiseType = NoiseType.GAUSSIAN
    noise_parameter: float = 0.2
    temperature: float = 0.3


EVAL_QUANTIZER = QuantizerSettings(QuantizerMode.HARDROUND, NoiseType.NONE, 0.0, 1.0)


class CoolChicEncoder(nn.Module):
    def __init__(self, param: CoolChicEncoderParameter) -> None:
        super().__init__()
        self.param = param
        self.latents = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, h, w)) for h, w in param.grid_sizes)
        self.arm = Arm(param.arm)
        self.upsampling = Upsampling(param.n_grids - 1, param.ups_kernel, param.ups_preconcat_kernel)
        self.synthesis = Synthesis(param.n_grids, param.layers_synthesis, param.synthesis_stabiliser)

    # ------------------------------------------------------------------ forward
    def scaled_latents(self) -> list[Tensor]:
        return [y * self.param.encoder_gain for y in self.latents]

    def forward(self, quantizer: QuantizerSettings = EVAL_QUANTIZER) -> CoolChicOutput:
        """Fast path: all grids quantized, context-gathered and ARM-ed as one column-major batch.

        ``reference.reference_forward`` is the straightforward twin (same math, same parameters).
        """
        flat = torch.cat([g.reshape(-1) for g in self.latents]) * self.param.encoder_gain
        q = quantize(flat, quantizer.mode, quantizer.noise, quantizer.noise_parameter, quantizer.temperature)
        grids = self.grids(q)  # views before the ARM: fixes the order autograd sums q's two gradients in
        rate = self.rate(q, self.contexts(q))
        return CoolChicOutput(raw=self.synthesis(self.upsampling(grids)), rate=rate)

    # The pieces of ``forward``, for callers that reuse what an NN change cannot affect.
    def rounded_latents(self) -> Tensor:
        """[n_latents] scaled latents hard-rounded as an evaluation forward does (not clamped)."""
        with torch.no_grad():
            return torch.round(torch.cat([g.reshape(-1) for g in self.latents]) * self.param.encoder_gain)

    def grids(self, q: Tensor) -> list[Tensor]:
        """Flat quantized latents [n_latents] -> one [1, 1, h_i, w_i] view per grid."""
        grids, start = [], 0
        for h, w in self.param.grid_sizes:
            grids.append(q[start : start + h * w].view(1, 1, h, w))
            start += h * w
        return grids

    def contexts(self, q: Tensor) -> Tensor:
        return gather_contexts(q, self.param.grid_sizes, self.param.arm.context_size)

    def rate(self, q: Tensor, contexts: Tensor) -> Tensor:
        """Bits of every latent [n_latents] under the ARM's Laplace model."""
        mu, scale = self.arm.forward_columns(contexts)
        return laplace_bits_fast(q, mu, scale)

    # ------------------------------------------------------------ bookkeeping
    def nn_modules(self) -> dict[str, tuple[list[Tensor], list[Tensor]]]:
        """Transmitted parameters per module in bitstream order: (weights, biases)."""
        arm_layers = [*self.arm.hidden, self.arm.out] + ([self.arm.stabiliser] if self.arm.stabiliser is not None else [])
        synth_layers = [*self.synthesis.convs] + ([self.synthesis.stabiliser] if self.synthesis.stabiliser is not None else [])
        return {
            "arm": ([m.weight for m in arm_layers], [m.bias for m in arm_layers]),
            "upsampling": ([*self.upsampling.tconv, *self.upsampling.preconcat], []),
            "synthesis": ([m.weight for m in synth_layers], [m.bias for m in synth_layers]),
        }

    def latent_parameters(self) -> list[nn.Parameter]:
        return list(self.latents)

    def nn_parameters(self) -> list[nn.Parameter]:
        return [*self.arm.parameters(), *self.upsampling.parameters(), *self.synthesis.parameters()]

    def n_latents(self) -> int:
        return sum(h * w for h, w in self.param.grid_sizes)

    def macs_per_pixel(self) -> float:
        """Decoder multiply-accumulates per frame pixel: ARM + upsampling + synthesis."""
        h, w = self.param.img_size
        h0, w0 = self.param.grid_sizes[0]
        arm = self.arm.macs_per_latent() * self.n_latents()
        ups = self.upsampling.macs_per_pixel(self.param.grid_sizes) * h0 * w0
        syn = self.synthesis.macs_per_pixel() * h0 * w0
        return (arm + ups + syn) / (h * w)
