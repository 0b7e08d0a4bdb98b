"""CoolChicSection fields <-> architectures, and what a section's stream spends on its NN.

Torch-free, so that ``inspect`` reads sections without loading the reconstruction.
"""

from __future__ import annotations

import numpy as np

from ..architecture import (
    ArmParameter,
    CoolChicEncoderParameter,
    SynthesisLayer,
    parameter_shapes,
    preset_parameter,
)
from ..config import Complexity
from ..entropy.nn_bins import MAX_ORDER, GroupDecoder, encode_groups
from ..entropy.nn_weights import header_mode
from ..entropy.stream import open_decoder
from ..errors import CorruptDataError
from ..spec import MODULE_NAMES, MOTION_LATENT_FINEST, NNMode
from ..types import CoolChicRole


def bad(message: str) -> CorruptDataError:
    return CorruptDataError(message, "the frame payload is corrupted or from an incompatible encoder")


def section_param(section, height: int, width: int, role: CoolChicRole, n_output: int) -> CoolChicEncoderParameter:
    """Validate a parsed CoolChicSection and turn it into an architecture."""
    motion = role == CoolChicRole.MOTION
    if str(section.architecture) != "explicit":
        try:
            return preset_parameter(motion, Complexity(str(section.architecture)), height, width, n_output)
        except ValueError:
            raise bad(f"architecture preset {section.architecture} does not apply to this frame") from None
    arch = section.explicit
    if arch.n_output != n_output:
        raise bad(f"{role.name.lower()} Cool-chic has {arch.n_output} outputs, expected {n_output}")
    lo, hi = arch.latent_resolution_min, arch.latent_resolution_max
    expected_lo = MOTION_LATENT_FINEST if motion else 0
    if lo != expected_lo or hi < lo or hi > 12 or (1 << lo) > 4 * max(height, width):
        raise bad(f"latent resolution {lo}-{hi} is invalid for a {role.name.lower()} Cool-chic")
    try:
        return CoolChicEncoderParameter(
            img_size=(height, width),
            n_output=n_output,
            layers_synthesis=tuple(
                SynthesisLayer(layer.out_channels, layer.kernel_size, layer.residual, layer.relu)
                for layer in arch.synthesis_layers
            ),
            arm=ArmParameter(arch.arm_context, arch.arm_hidden_layers, arch.arm_stabiliser),
            latent_resolution=(lo, hi),
            synthesis_stabiliser=arch.synthesis_stabiliser,
            ups_kernel=arch.ups_kernel,
            ups_preconcat_kernel=arch.ups_preconcat_kernel,
        )
    except ValueError as exc:
        raise bad(f"invalid {role.name.lower()} Cool-chic architecture: {exc}") from None


def explicit_architecture(p: CoolChicEncoderParameter) -> dict:
    """The ExplicitArchitecture fields that spell out ``p``."""
    return {
        "n_output": p.n_output,
        "latent_resolution_min": p.latent_resolution[0],
        "latent_resolution_max": p.latent_resolution[1],
        "arm_context": p.arm.context_size,
        "arm_hidden_layers": p.arm.n_hidden_layers,
        "arm_stabiliser": p.arm.stabiliser,
        "ups_kernel": p.ups_kernel,
        "ups_preconcat_kernel": p.ups_preconcat_kernel,
        "synthesis_layers": [
            {"out_channels": layer.out_channels, "kernel_size": layer.kernel_size, "residual": layer.residual, "relu": layer.relu}
            for layer in p.layers_synthesis
        ],
        "synthesis_stabiliser": p.synthesis_stabiliser,
    }


def nn_information_bits(section, param: CoolChicEncoderParameter) -> dict[str, float | None]:
    """Information the section's stream spends on each module's bins: -sum log2 p over the bins as
    coded (0 for a copied module; the latents take the rest of the stream, its flush included).
    Needs no reference: a delta module's differences decode on their own. A module whose bins do
    not decode, and every module after it but the copied ones, get None."""
    shapes = parameter_shapes(param)
    groups = GroupDecoder(open_decoder(bytes(section.data)))
    out: dict[str, float | None] = {}
    failed = False
    for name in MODULE_NAMES:
        h = section.networks[name]
        if header_mode(h) == NNMode.COPY:
            out[name] = 0.0
            continue
        carried = []
        try:
            if failed:
                raise bad("an earlier module's bins do not decode")
            for group_shapes, order in zip(shapes[name], (h.weight_expgolomb_order, h.bias_expgolomb_order)):
                if order > MAX_ORDER:
                    raise bad(f"exp-Golomb order {order} above {MAX_ORDER} in module {name}")
                carried.append((groups.group(sum(int(np.prod(s)) for s in group_shapes), order), order))
        except CorruptDataError:
            out[name], failed = None, True
            continue
        bins = encode_groups(carried)
        if bins.symbols.size == 0:
            out[name] = 0.0
            continue
        p1 = bins.params[0]
        out[name] = float(-np.log2(np.where(bins.symbols == 1, p1, 1.0 - p1)).sum())
    return out


__all__ = ["bad", "explicit_architecture", "nn_information_bits", "section_param"]
