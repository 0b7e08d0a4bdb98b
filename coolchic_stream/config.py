"""Encoder configuration: presets, rate-distortion trade-off, GOP structure, device.

Everything here is plain data (no torch), frozen and validated on construction,
so that a bad option is reported before any frame is read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction

from .errors import ConfigError
from .spec import MAX_GOP_SIZE
from .types import GopStructure


class Preset(str, Enum):
    """Encoding effort: iterations per frame and decoder complexity."""

    TEST = "test"
    FAST = "fast"
    MEDIUM = "medium"
    SLOW = "slow"


class Complexity(str, Enum):
    """Decoder architecture, named after Cool-chic's MAC-per-pixel operating points."""

    LOP = "lop"  # ~500 MAC/pixel
    MOP = "mop"  # ~1000 MAC/pixel
    HOP = "hop"  # ~2000 MAC/pixel


@dataclass(frozen=True)
class PresetSettings:
    """What a preset means for an intra frame; inter frames scale from it."""

    iterations: int
    complexity: Complexity
    warmup_candidates: int
    warmup_iterations: int
    final_iterations: int
    validation_interval: int
    nn_rdoq: bool  # RDOQ of the NN weights after the step search (train/rdoq.py): one forward per try
    latent_rdoq: int  # then passes of latent RDOQ on I frames (train/latent_rdoq.py, 0: off): ~1 000 forwards each


PRESETS: dict[Preset, PresetSettings] = {
    Preset.TEST: PresetSettings(120, Complexity.LOP, 2, 10, 20, 40, False, 0),
    Preset.FAST: PresetSettings(1000, Complexity.LOP, 3, 30, 100, 100, False, 0),
    Preset.MEDIUM: PresetSettings(3000, Complexity.MOP, 4, 60, 300, 100, True, 0),
    Preset.SLOW: PresetSettings(10000, Complexity.HOP, 5, 200, 500, 100, True, 4),
}


_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}
_BITRATE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmg]?)(?:bps|b/s|bit/s)?\s*$", re.IGNORECASE)


def parse_bitrate(value: object) -> float:
    """Bits per second from ``300k``, ``1.2M``, ``2.5e5`` or a number (k, M, G: powers of 1000)."""
    if isinstance(value, bool):
        raise ConfigError(f"--bitrate {value!r} is not a bitrate", "e.g. 300k, 1.2M or 250000")
    if isinstance(value, (int, float)):
        rate = float(value)
    else:
        match = _BITRATE.match(str(value))
        if match is None:
            raise ConfigError(f"--bitrate {value!r} is not a bitrate", "e.g. 300k, 1.2M or 250000 (bits per second)")
        rate = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if not (math.isfinite(rate) and rate > 0):
        raise ConfigError(f"--bitrate {value!r} must be a positive number of bits per second", "e.g. 300k")
    return rate


def _parse_enum(enum_type: type, value: object, option: str):
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(m.value for m in enum_type)
        raise ConfigError(f"{option} {value!r} is not valid", f"choose one of {choices}") from None


class IntraCheck(str, Enum):
    """When the encoder also tries coding a P or B frame without prediction.

    ``auto``: when the inter coding costs more than :data:`INTRA_CHECK_SHARE` of the D + λ·R of
    the last I frame (both at the stream's λ) (prediction has failed: scene cut, motion too fast for the anchor); the
    cheaper of the two in D + λ·R is kept. ``always``: every inter frame (twice the encode time).
    """

    OFF = "off"
    AUTO = "auto"
    ALWAYS = "always"


class NNPrediction(str, Enum):
    """Which ways a P or B frame may send its networks' modules (``spec.NNMode``) besides fresh.

    ``all``: copied from, or delta-coded against, the same module of a reference picture;
    ``copy``: copied only; ``off``: always fresh (every frame's networks self-contained).
    """

    OFF = "off"
    COPY = "copy"
    ALL = "all"


DEFAULT_LAMBDA = 1e-3
INTRA_CHECK_SHARE = 0.5  # of the last I frame's D + λ·R: an inter frame that predicts costs far less
# A P/B frame coded without prediction from fresh networks is an I frame in all but name: it costs
# about what the last I frame did, while the one trained from its references' networks costs less
# and won every time measured (D + λ·R shares of the I frame, fast preset: the sample and BBB 32-40
# at λ 1e-3, fresh 0.63-1.01 against 0.46-0.79; BBB 32-40 at 6e-4 and 2.5e-4, fresh 0.81-1.00
# against 0.72-0.91; 21 frames). The fresh one is trained only where the first costs over this share.
SCRATCH_SHARE = 0.9

# Seeds below this keep every training's torch seed (``training_seed``) within what torch accepts.
MAX_SEED = 2**32

GOP_NAMES = {"intra": GopStructure.INTRA, "lowdelay": GopStructure.LOWDELAY, "ra": GopStructure.RANDOM_ACCESS}


@dataclass(frozen=True)
class EncoderConfig:
    """All knobs of an encode.

    lmbda: rate weight of the loss D + lmbda * bpp (Cool-chic's lambda); ``DEFAULT_LAMBDA`` when
        neither it nor ``bitrate`` is given.
    bitrate: target bits per second instead of a λ (``300k``, ``1.2M`` or a number): every frame's
        λ then comes from :mod:`coolchic_stream.ratecontrol`. Needs ``frame_rate``, the input's;
        ``stream_frames``, the input's length where it is known, lets the last intra period plan
        for the frames it really has.
    iterations / complexity: override the preset's budget and architecture.
    gop_size: distance between anchor frames (random access) or GOP length (low delay).
    intra_period: frames between two I frames (a multiple of gop_size for random access).
    intra_check: when a P/B frame is also tried without prediction (:class:`IntraCheck`).
    nn_prediction: how P/B frames may send their networks (:class:`NNPrediction`).
    adaptive_gop: split groups into shorter mini-GOPs where motion is fast and put I frames at
        scene cuts, from a lookahead on the source (``gop_size`` is then the longest anchor
        distance); False keeps the fixed structure.
    threads: torch intra-op threads of each encoding process. Float training adds in another
        order on another thread count, so the bytes depend on it (and not on how many processes
        or machines share the work).
    """

    preset: Preset = Preset.MEDIUM
    lmbda: float | None = None
    iterations: int | None = None
    complexity: Complexity | None = None
    device: str = "cpu"
    gop: GopStructure = GopStructure.RANDOM_ACCESS
    gop_size: int = 8
    intra_period: int = 32
    seed: int = 0
    intra_check: IntraCheck = IntraCheck.AUTO
    nn_prediction: NNPrediction = NNPrediction.ALL
    adaptive_gop: bool = True
    threads: int = 1
    bitrate: float | str | None = None
    frame_rate: Fraction | None = None
    stream_frames: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nn_prediction", _parse_enum(NNPrediction, self.nn_prediction, "--nn-prediction"))
        object.__setattr__(self, "preset", _parse_enum(Preset, self.preset, "--preset"))
        object.__setattr__(self, "intra_check", _parse_enum(IntraCheck, self.intra_check, "--intra-check"))
        if self.complexity is not None:
            object.__setattr__(self, "complexity", _parse_enum(Complexity, self.complexity, "--complexity"))
        if isinstance(self.gop, str):
            if self.gop not in GOP_NAMES:
                raise ConfigError(f"--gop {self.gop!r} is not valid", "choose one of intra, lowdelay, ra")
            object.__setattr__(self, "gop", GOP_NAMES[self.gop])
        if self.bitrate is not None:
            if self.lmbda is not None:
                raise ConfigError(f"--lambda {self.lmbda} and --bitrate {self.bitrate} exclude each other", "give one of them")
            object.__setattr__(self, "bitrate", parse_bitrate(self.bitrate))
            if self.frame_rate is None:
                raise ConfigError(f"--bitrate {self.bitrate:g} needs the input's frame rate", "pass frame_rate=Fraction(25)")
            try:
                object.__setattr__(self, "frame_rate", Fraction(self.frame_rate))
            except (TypeError, ValueError, ZeroDivisionError):
                raise ConfigError(f"frame rate {self.frame_rate!r} is not a number", "e.g. Fraction(30000, 1001)") from None
            if not self.frame_rate > 0:
                raise ConfigError(f"frame rate {self.frame_rate} must be positive", "e.g. 25")
        else:
            if self.lmbda is None:
                object.__setattr__(self, "lmbda", DEFAULT_LAMBDA)
            if isinstance(self.lmbda, bool) or not isinstance(self.lmbda, (int, float)) or not (0 < self.lmbda < 1):
                raise ConfigError(f"--lambda {self.lmbda} is out of range", "use a value in (0, 1), e.g. 1e-3")
        if self.stream_frames is not None and (
            isinstance(self.stream_frames, bool) or not isinstance(self.stream_frames, int) or self.stream_frames < 1
        ):
            raise ConfigError(f"stream length {self.stream_frames!r} must be a positive frame count", "or None when unknown")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < MAX_SEED:
            raise ConfigError(f"--seed {self.seed!r} is out of range", f"use an integer from 0 to {MAX_SEED - 1}")
        if self.iterations is not None and self.iterations < 1:
            raise ConfigError(f"--iterations {self.iterations} must be positive", "e.g. 1000")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise ConfigError(f"--device {self.device!r} is not valid", "use cpu or cuda")
        if self.gop_size < 1 or self.gop_size > MAX_GOP_SIZE:
            raise ConfigError(f"--gop-size {self.gop_size} is out of range", f"use 1 to {MAX_GOP_SIZE}")
        if self.intra_period < 1:
            raise ConfigError(f"--intra-period {self.intra_period} must be positive", "e.g. 32")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigError(f"--threads {self.threads!r} must be a positive integer", "e.g. 1")

    @property
    def settings(self) -> PresetSettings:
        return PRESETS[self.preset]

    def training_seed(self, index: int) -> int:
        """Torch seed of one training: the stream's ``seed`` mixed with ``index`` (an inter frame's
        display index, an intra training's warm-up candidate), so that it does not depend on what
        else ran before it in the process (``--jobs``, ``--aside`` give the same bytes)."""
        return self.seed * 7919 + index

    @property
    def intra_iterations(self) -> int:
        return self.iterations if self.iterations is not None else self.settings.iterations

    @property
    def intra_complexity(self) -> Complexity:
        return self.complexity if self.complexity is not None else self.settings.complexity
