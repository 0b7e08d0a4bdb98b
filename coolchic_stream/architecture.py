"""Architecture of a Cool-chic, as sent in a frame header (no torch).

Both the training modules (``nn``) and the exact decoder (``recon``) build
from these descriptions, and ``parameter_shapes`` fixes the bitstream order of
the transmitted NN parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .config import Complexity
from .spec import MAX_ARM_CONTEXT, MAX_NN_PARAMETERS, MOTION_LATENT_FINEST
from .spec import ALPHA_CHANNEL, BETA_CHANNEL, FLOW_CHANNELS, PICTURE_CHANNELS, predictable
from .types import FrameType

OUTPUTS = {  # (residue outputs, motion outputs) per frame type
    FrameType.I: (PICTURE_CHANNELS, 0),
    FrameType.P: (ALPHA_CHANNEL + 1, FLOW_CHANNELS),
    FrameType.B: (BETA_CHANNEL + 1, 2 * FLOW_CHANNELS),
}


@dataclass(frozen=True)
class ArmParameter:
    context_size: int
    n_hidden_layers: int
    stabiliser: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.context_size <= MAX_ARM_CONTEXT:
            raise ValueError(f"ARM context {self.context_size} is out of range 1..{MAX_ARM_CONTEXT}")
        if not 0 <= self.n_hidden_layers <= 7:
            raise ValueError(f"ARM hidden layers {self.n_hidden_layers} is out of range 0..7")


@dataclass(frozen=True)
class SynthesisLayer:
    out_channels: int
    kernel_size: int
    residual: bool
    relu: bool

    def __post_init__(self) -> None:
        if not 1 <= self.out_channels <= 255:
            raise ValueError(f"synthesis layer width {self.out_channels} out of range 1..255")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0 or self.kernel_size > 15:
            raise ValueError(f"synthesis kernel {self.kernel_size} must be odd and at most 15")

    def describe(self) -> str:
        kind = "residual" if self.residual else "linear"
        return f"{self.out_channels}-{self.kernel_size}-{kind}-{'relu' if self.relu else 'none'}"


def parse_layers(spec: str, n_output: int) -> tuple[SynthesisLayer, ...]:
    """Parse ``<out>-<k>-<linear|residual>-<relu|none>,...``, X standing for ``n_output``."""
    layers = []
    for item in spec.split(","):
        parts = item.strip().split("-")
        if len(parts) != 4 or parts[2] not in ("linear", "residual") or parts[3] not in ("relu", "none"):
            raise ValueError(f"synthesis layer {item!r} is not <out>-<k>-<linear|residual>-<relu|none>")
        out = n_output if parts[0] == "X" else int(parts[0])
        layers.append(SynthesisLayer(out, int(parts[1]), parts[2] == "residual", parts[3] == "relu"))
    return tuple(layers)


def auto_latent_resolution(height: int, width: int, finest: int = 0) -> tuple[int, int]:
    """(finest, coarsest) log2 downsampling: Cool-chic's 6/7/8 levels, fewer for tiny frames."""
    pixels = height * width
    coarsest = 6 if pixels < 1_000_000 else 7 if pixels < 3_000_000 else 8
    coarsest = min(coarsest, max(finest, math.ceil(math.log2(max(height, width, 2)))))
    return finest, max(finest, coarsest)


def grid_sizes(height: int, width: int, resolution: tuple[int, int]) -> list[tuple[int, int]]:
    """Latent grid sizes, finest first."""
    return [(-(-height // 2**i), -(-width // 2**i)) for i in range(resolution[0], resolution[1] + 1)]


@dataclass(frozen=True)
class CoolChicEncoderParameter:
    """Architecture of one Cool-chic; everything but the encoder gain is in the frame header."""

    img_size: tuple[int, int]  # (H, W) of the frame
    n_output: int
    layers_synthesis: tuple[SynthesisLayer, ...]
    arm: ArmParameter
    latent_resolution: tuple[int, int] = (0, 6)
    synthesis_stabiliser: bool = True
    ups_kernel: int = 8
    ups_preconcat_kernel: int = 7
    encoder_gain: float = field(default=16.0, compare=False)

    def __post_init__(self) -> None:
        h, w = self.img_size
        if h < 1 or w < 1:
            raise ValueError(f"image size {w}x{h} is empty")
        lo, hi = self.latent_resolution
        if not 0 <= lo <= hi <= 12:
            raise ValueError(f"latent resolution {lo}-{hi} is invalid")
        if not self.layers_synthesis:
            raise ValueError("synthesis has no layer")
        if self.layers_synthesis[-1].out_channels != self.n_output:
            raise ValueError(
                f"synthesis ends with {self.layers_synthesis[-1].out_channels} channels, expected {self.n_output}"
            )
        c = self.n_grids
        for layer in self.layers_synthesis:
            if layer.residual and layer.out_channels != c:
                raise ValueError(f"residual synthesis layer {layer.describe()} needs {c} outputs")
            c = layer.out_channels
        if self.ups_kernel < 2 or self.ups_kernel % 2 or self.ups_kernel > 16:
            raise ValueError(f"upsampling kernel {self.ups_kernel} must be even, 2..16")
        if self.ups_preconcat_kernel < 1 or self.ups_preconcat_kernel % 2 == 0 or self.ups_preconcat_kernel > 15:
            raise ValueError(f"pre-concat kernel {self.ups_preconcat_kernel} must be odd, 1..15")
        count = sum(math.prod(shape) for weights, biases in parameter_shapes(self).values() for shape in (*weights, *biases))
        if count > MAX_NN_PARAMETERS:
            raise ValueError(f"{count} NN parameters, more than the format's {MAX_NN_PARAMETERS}")

    @property
    def grid_sizes(self) -> list[tuple[int, int]]:
        return grid_sizes(*self.img_size, self.latent_resolution)

    @property
    def n_grids(self) -> int:
        return self.latent_resolution[1] - self.latent_resolution[0] + 1


Shapes = tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]


def parameter_shapes(param: CoolChicEncoderParameter) -> dict[str, Shapes]:
    """Transmitted NN parameters per module, in bitstream order: (weight shapes, bias shapes)."""
    d = param.arm.context_size
    arm_w = [(d, d)] * param.arm.n_hidden_layers + [(2, d)] + ([(2, d)] if param.arm.stabiliser else [])
    arm_b = [(d,)] * param.arm.n_hidden_layers + [(2,)] + ([(2,)] if param.arm.stabiliser else [])
    n_stages = param.n_grids - 1
    ups_w = [(param.ups_kernel // 2,)] * n_stages + [((param.ups_preconcat_kernel + 1) // 2,)] * n_stages
    syn_w, syn_b, c = [], [], param.n_grids
    for layer in param.layers_synthesis:
        syn_w.append((layer.out_channels, c, layer.kernel_size, layer.kernel_size))
        syn_b.append((layer.out_channels,))
        c = layer.out_channels
    if param.synthesis_stabiliser:
        syn_w.append((c, param.n_grids, 1, 1))
        syn_b.append((c,))
    return {
        "arm": (tuple(arm_w), tuple(arm_b)),
        "upsampling": (tuple(ups_w), ()),
        "synthesis": (tuple(syn_w), tuple(syn_b)),
    }


def module_predictable(source: CoolChicEncoderParameter, target: CoolChicEncoderParameter, name: str) -> bool:
    """Whether module ``name`` (arm, upsampling, synthesis) of ``target`` may be copied or
    delta-coded from the same module of ``source``: the same layer structure (``spec.predictable``);
    widths may differ, as the output count does between frame types."""
    (sw, sb), (tw, tb) = parameter_shapes(source)[name], parameter_shapes(target)[name]
    return predictable(sw, tw) and predictable(sb, tb)


RESIDUE_ARCHITECTURES: dict[Complexity, tuple[ArmParameter, str]] = {
    Complexity.LOP: (ArmParameter(8, 2), "8-1-linear-relu,X-1-linear-none,X-3-residual-none"),
    Complexity.MOP: (ArmParameter(14, 2), "16-1-linear-relu,X-1-linear-none,X-3-residual-relu,X-3-residual-none"),
    Complexity.HOP: (ArmParameter(14, 3), "64-1-linear-relu,X-1-linear-none,X-3-residual-relu,X-3-residual-none"),
}
MOTION_ARCHITECTURES: dict[Complexity, tuple[ArmParameter, str]] = {
    Complexity.LOP: (ArmParameter(6, 1), "8-1-linear-relu,X-1-linear-none"),
    Complexity.MOP: (ArmParameter(8, 2), "16-1-linear-relu,X-1-linear-none"),
    Complexity.HOP: (ArmParameter(8, 2), "16-1-linear-relu,X-1-linear-none"),
}


def residue_parameter(
    height: int, width: int, n_output: int, complexity: Complexity, encoder_gain: float = 16.0
) -> CoolChicEncoderParameter:
    arm, layers = RESIDUE_ARCHITECTURES[complexity]
    return CoolChicEncoderParameter(
        img_size=(height, width),
        n_output=n_output,
        layers_synthesis=parse_layers(layers, n_output),
        arm=arm,
        latent_resolution=auto_latent_resolution(height, width),
        encoder_gain=encoder_gain,
    )


def motion_parameter(height: int, width: int, n_output: int, complexity: Complexity) -> CoolChicEncoderParameter:
    arm, layers = MOTION_ARCHITECTURES[complexity]
    return CoolChicEncoderParameter(
        img_size=(height, width),
        n_output=n_output,
        layers_synthesis=parse_layers(layers, n_output),
        arm=arm,
        latent_resolution=auto_latent_resolution(height, width, finest=MOTION_LATENT_FINEST),
    )


def preset_parameter(
    motion: bool, complexity: Complexity, height: int, width: int, n_output: int
) -> CoolChicEncoderParameter:
    """The architecture a frame header names by preset (normative: streams rely on these tables)."""
    if motion:
        return motion_parameter(height, width, n_output, complexity)
    return residue_parameter(height, width, n_output, complexity)


def preset_of(param: CoolChicEncoderParameter, motion: bool) -> Complexity | None:
    """The preset that builds exactly ``param`` for its frame size, or None (spell it out)."""
    for complexity in Complexity:
        try:
            if preset_parameter(motion, complexity, *param.img_size, param.n_output) == param:
                return complexity
        except ValueError:
            continue
    return None
