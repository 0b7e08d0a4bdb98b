"""Normative constants and rules of what a decoder computes: one torch-free source of truth.

The float training model (``nn``), the exact decoder (``recon``), the entropy coder
(``entropy``) and the bitstream (``bitstream``) all import from here; nothing here is restated
anywhere else. Changing a value changes the format.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

# ---------------------------------------------------------------- stream limits

# Largest frame a stream may declare, per side and in luma samples (8K UHD fits): a level limit
# that bounds what a decoder allocates per picture, whatever a stream says.
MAX_FRAME_SIDE = 16383
MAX_FRAME_SAMPLES = 8192 * 4352
MIN_FRAME_SIDE = 2
BIT_DEPTHS = range(8, 17)


def frame_size_allowed(width: int, height: int) -> bool:
    """Whether the format allows a frame of this size (``MIN/MAX_FRAME_SIDE``, ``MAX_FRAME_SAMPLES``)."""
    return (
        MIN_FRAME_SIDE <= width <= MAX_FRAME_SIDE
        and MIN_FRAME_SIDE <= height <= MAX_FRAME_SIDE
        and width * height <= MAX_FRAME_SAMPLES
    )


# Longest random-access group / low-delay GOP: bounds the frames a decoder holds in flight.
MAX_GOP_SIZE = 64

# ---------------------------------------------------------------- NN parameters

# Transmitted modules of a Cool-chic, in bitstream order; in each, every weight tensor then every
# bias tensor, in the order ``architecture.parameter_shapes`` lists them.
MODULE_NAMES = ("arm", "upsampling", "synthesis")

# Most NN parameters (weights and biases of ARM, upsampling and synthesis) one Cool-chic may have:
# an explicit architecture in a stream cannot make a decoder allocate or decode more (the largest
# preset has about 2 100).
MAX_NN_PARAMETERS = 1 << 15

# Largest magnitude of a decoded NN integer (fresh, or source + difference): bounds every product
# of the exact decoder's integer arithmetic. Encoders quantize within it; decoders refuse beyond.
NN_INT_MAX = 1 << 20


class NNMode(IntEnum):
    """How one module (ARM, upsampling or synthesis) of a P/B frame's Cool-chic is sent.

    fresh: its integers and steps, as every module of an I frame.
    copy:  its prediction (:func:`predict_tensor`) from the same module of the same-role
           Cool-chic of one of the frame's reference pictures, at that module's steps; no bins.
    delta: that prediction plus coded differences, at those steps.
    """

    FRESH = 0
    COPY = 1
    DELTA = 2


def predict_tensor(source: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A tensor of ``shape`` predicted from a source tensor of the same rank: the source's
    entries where both have one (indices from 0 on every axis), zero elsewhere (int64).

    Widths may differ where frame types differ: an I frame's residue synthesis ends in 3 output
    channels (the picture), a P frame's in 4 (+ alpha), a B frame's in 5 (+ beta); a P frame's
    motion in 2 (one flow), a B frame's in 4. Channels keep their meaning by index, so a module
    predicts the channels both have and the others start from zero.
    """
    out = np.zeros(shape, np.int64)
    overlap = tuple(slice(0, min(a, b)) for a, b in zip(shape, source.shape))
    out[overlap] = source[overlap]
    return out


def predictable(source_shapes: tuple[tuple[int, ...], ...], shapes: tuple[tuple[int, ...], ...]) -> bool:
    """Whether tensors of ``shapes`` can be predicted from tensors of ``source_shapes``: as many,
    each of the same rank, convolution kernels (the last two axes of a 4-D weight) of one size."""
    return len(source_shapes) == len(shapes) and all(
        len(a) == len(b) and (len(a) < 4 or a[2:] == b[2:]) for a, b in zip(source_shapes, shapes)
    )


# ---------------------------------------------------------------- latents

# Integer latents the range coder supports; the float model clamps its hard-rounded latents here.
LATENT_MIN = -64
LATENT_MAX = 63

# ---------------------------------------------------------------- ARM context

# Causal neighbours as (dy, dx) in decreasing usefulness; an ARM with context S uses the first S.
PRIORITY_OFFSETS: tuple[tuple[int, int], ...] = (
    (0, -1), (-1, 0), (-1, -1), (-1, 1), (0, -2), (-2, 0),
    (-3, 0), (0, -3), (-1, -2), (-2, 1),
    (-2, -1), (-1, 2), (-2, -2), (-1, -3),
    (-2, 2), (-3, 1), (0, -4), (-1, 3), (-2, -3), (-2, 3),
)  # fmt: skip
MAX_ARM_CONTEXT = len(PRIORITY_OFFSETS)
# Zero padding around a grid that holds every neighbour of every latent (Cool-chic's square window).
CONTEXT_PAD = max(max(-dy, abs(dx)) for dy, dx in PRIORITY_OFFSETS)


def context_offsets(context_size: int) -> tuple[tuple[int, int], ...]:
    """The (dy, dx) neighbours of an ARM with ``context_size`` inputs, in input order."""
    return PRIORITY_OFFSETS[:context_size]


def wavefront_lag(context_size: int) -> int:
    """Smallest row lag L such that a latent's context is decoded before step x + L*y.

    A neighbour (dy<0, dx) precedes (y, x) iff dx < L*|dy|; all latents sharing
    a step are then mutually independent and decode as one batch.
    """
    lag = 1
    for dy, dx in context_offsets(context_size):
        if dy < 0:
            lag = max(lag, dx // -dy + 1)
    return lag


# ---------------------------------------------------------------- ARM outputs

# The integer ARM that the decoder runs holds activations and outputs in fixed point with
# ARM_ACT_BITS fractional bits (the ``_Q8`` values); the float ARM trains against the same clamps
# in real units, so each clamp is written once, in real units, and converted exactly.
ARM_ACT_BITS = 8
ARM_ONE = 1 << ARM_ACT_BITS


def _q8(real: float) -> int:
    """A real-unit ARM constant in Q8; it must be exactly representable."""
    q = real * ARM_ONE
    if q != int(q):
        raise ValueError(f"{real} is not a multiple of 2^-{ARM_ACT_BITS}")
    return int(q)


# log scale = clamp(raw output - shift, min, max): a raw output of 0 means a scale of e^-shift.
LOG_SCALE_SHIFT = 4.0
LOG_SCALE_MIN = -5.0
LOG_SCALE_MAX = 5.0
LOG_SCALE_SHIFT_Q8 = _q8(LOG_SCALE_SHIFT)
LOG_SCALE_MIN_Q8 = _q8(LOG_SCALE_MIN)
LOG_SCALE_MAX_Q8 = _q8(LOG_SCALE_MAX)
# The integer ARM clamps mu to the latent support widened to [LATENT_MIN, LATENT_MAX + 1), in Q8.
MU_MIN_Q8 = _q8(LATENT_MIN)
MU_MAX_Q8 = _q8(LATENT_MAX + 1) - 1

# ---------------------------------------------------------------- upsampling kernels

# A Cool-chic transmits half of each symmetric 1-D upsampling kernel (its free taps); both the
# float model and the exact decoder expand it with these index maps.


def symmetric_index(m: int, odd: bool) -> tuple[int, ...]:
    """Free tap of each position of the symmetric kernel mirrored from ``m`` free taps.

    [a, b, c] -> [a, b, c, b, a] (odd, 2m - 1 taps) or [a, b, c, c, b, a] (even, 2m taps).
    """
    k = 2 * m - 1 if odd else 2 * m
    return tuple(min(i, k - 1 - i) for i in range(k))


def tconv_geometry(kernel_size: int) -> tuple[int, int]:
    """(replicate padding, crop) that make a stride-2 transposed conv exactly double a size."""
    pad = kernel_size // 2
    crop = 2 * pad - 1 + kernel_size // 2
    return pad, crop


def phase_taps(m: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(input offset, free-tap index) of the even and odd output phases for a 2m-tap symmetric kernel.

    A stride-2 transposed conv (replicate padding and crop of ``tconv_geometry``) is two m-tap
    correlations, one per output parity.
    """
    k = 2 * m
    pad, crop = tconv_geometry(k)
    full = symmetric_index(m, odd=False)
    phases = []
    for parity in (0, 1):
        t = parity + crop  # output index o = parity, input p = 0: transposed-conv index o + crop
        taps = []
        for j in range(k):
            # y[t] = sum_i xpad[i] * k[t - 2 i]  with xpad[i] = x[i - pad]
            if (t - j) % 2 == 0:
                i = (t - j) // 2
                taps.append((i - pad, full[j]))
        phases.append(taps)
    return phases[0], phases[1]


# ---------------------------------------------------------------- motion compensation

# One motion vector per MOTION_BLOCK x MOTION_BLOCK pixels: the motion Cool-chic's finest latent
# grid is 2^-MOTION_LATENT_FINEST of the frame, and its output has that resolution.
MOTION_LATENT_FINEST = 2
MOTION_BLOCK = 1 << MOTION_LATENT_FINEST
# Decoded motion vectors are integers in 1/FLOW_FRACTION pel.
FLOW_FRACTION_BITS = 6
FLOW_FRACTION = 1 << FLOW_FRACTION_BITS
# The windowed-sinc interpolation filter: WARP_TAPS taps at integer offsets WARP_FIRST_TAP ..
# WARP_FIRST_TAP + WARP_TAPS - 1 from floor(position), window cos(pi t / WARP_TAPS).
WARP_TAPS = 8
WARP_FIRST_TAP = -3

# ---------------------------------------------------------------- residue outputs

# Output channels of an inter frame's residue Cool-chic: the picture correction (Y, U, V), then
# the prediction gate alpha (P and B frames), then the bi-prediction weight beta (B frames).
PICTURE_CHANNELS = 3
ALPHA_CHANNEL = 3
BETA_CHANNEL = 4
# alpha and beta are the raw outputs plus GATE_OFFSET, clamped to [0, 1]: a raw 0 gives 1/2
GATE_OFFSET = 0.5
# A motion Cool-chic outputs one flow (y, x) per reference.
FLOW_CHANNELS = 2
