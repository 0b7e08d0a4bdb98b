"""Rate control: the λ of each frame for a target bitrate, with no frame coded twice.

    --bitrate ─► budget of the segment (one intra period, or what is left of a known stream)
        I frame: λ steered during its own training so that the period's predicted bits meet the budget
        each P/B frame: λ solved from the model of the frames still to come ─► coded ─► model updated

**Model.** A frame of class c (its type and hierarchy depth; the segment's first P/B frame, which
sends the motion networks the frames after it predict theirs from, a class of its own at depth
``FIRST_INTER``) coded at base λ (the stream's λ, before the depth scaling of
``gop.lambda_scale``) spends

    bits_c(λ) = f_c + m_c · λ^κ,   κ = KAPPA < 0,

f_c the floor a P/B frame costs whatever λ (``FLOOR_BITS``, 0 for I frames), then a straight line
in the log domain with one slope for every class and an intercept m_c, the class's *complexity*,
that the content sets. κ is measured (README, *Rate control*); the m_c are learnt: each coded
frame gives m = (bits - f_c) / λ^κ (the first observation replaces the prior, later ones are
averaged in the log domain with weight ``LEARNING_RATE``). A P/B frame is coded with prediction or,
where the intra check wins, without; the two cost an order of magnitude apart (a deep B frame a
hundredth of the I frame, one coded without prediction half of it), so they are learnt apart:

    m_c = (1 - q) · min(m_c^inter, s · m^intra) + q · s · m^intra,   s = (d / d_I)^DETAIL_EXPONENT

A frame coded without prediction is coded like an I frame, and its bits go with its picture's
detail as the I frame's prior has them: it is learnt at the detail of the segment's I frame (its m
divided by s, ``rate_prior.detail_scale``: d its picture's spatial detail, d_I the I frame's) and
planned at its own (BBB 128² 32-48, ten λ encodes: such frames of the second group, at half the
first's detail, cost 0.72-0.91x the first group's, 0.96-1.2x once divided by s; a second I frame
in the segment, at a cut, likewise). A frame coded with prediction codes a residue that motion
sets: it is neither (scaled as well, the second group's planned while the first was coded let λ
fall to 0.82x the I frame's over the first, and BBB at 62.7 kbit/s ended 14-19 % over).

m_c^inter learnt from the class's frames coded with prediction; before one is, the I frame's
complexity times the class's prior share (``PRIOR_SHARE``; the prior's constants, those named here
that this module does not define, are ``rate_prior``'s), times how much dearer this content's
motion is than the prior says: the geometric mean of m^inter / (prior share · m_I) over the classes
seen and of the source's guess

    g = clamp((r / CONTENT_FROM)^CONTENT_EXPONENT, 1, CONTENT_MOST),
    g(λ) = 1 + (g - 1) · min(1, (CONTENT_KNEE / λ)^CONTENT_TAPER)      (``source_content``)

counted as ``CONTENT_EVIDENCE`` classes, r the source's motion share (``lookahead.motion_share``,
as ``intra_expectation`` uses it), λ the I frame's (while its share is planned, the λ that share
asks for); and never above m^intra (the intra check codes a frame that
would cost more with prediction without it: on BBB 128² the B frames coded with prediction came out
at 9x their prior, and a P anchor, planned from that, at more than a frame coded without prediction).
m^intra, one for all classes, learnt from the frames coded without prediction, before one is
``INTRA_SHARE`` · m_I. q_c, the share of the class's frames left expected to be coded without
prediction (``intra_expectation``: guessed from the source before the I frame is coded, then
learnt from the frames coded, a class far from its references, a P anchor, expected to fail more
often than one next to them, a B frame at depth 3), is the q of m_c; q, the share over all P/B
frames, is the q below.

**Budget.** A segment of L frames at b̄ = bitrate / frame rate bits per frame may spend B = L·b̄.
The encoder codes a P/B frame once the pictures up to a mini-GOP after it are in, the I frame
once those its source guess looks at are (``segment_plan.look_end``). Before frame k (k frames of
the segment coded, S bits spent), the frames left are that frame, of class c(k), those the GOP
has already scheduled after it (the rest of its group and the next, as the adaptive GOP split
them: P anchors where the fixed structure has B frames), each at its picture's s, then those the
segment's fixed structure puts after them (``nominal_plan``), as many frames in all, at the mean
detail of the pictures in beyond them. The base λ that makes the predicted bits of the frames
left equal to what the budget has left, E = B - S - F, solves W · λ^κ = E, W = m_c(k) + Σ_{j>k}
m_c(j) (each at its frame's s), F the floors of those frames, B - S floored at ``MIN_LEFT`` times
what they would cost at the last λ, and E at ``MIN_LEFT`` · (B - S) (an
overshoot is paid back, not by starving a frame). A constant λ is what gives the best
rate-distortion, so λ moves only as far as the budget needs, and smoothly. λ_p, the λ the budget
asked for the previous P/B frame (λ_I after the I frame), stays while it lands the segment within
a window of its budget that narrows with the frames left, w = ``WINDOW`` · B · (L - k) / L, else
moves to the nearer edge of that window:

    λ* = clamp(λ_p, ((E + w) / W)^(1/κ), ((E - w) / W)^(1/κ))

and the frame takes λ_s = λ_p · (λ*/λ_p)^``DAMPING``, moving at most a factor ``MAX_STEP``, within
[``LAMBDA_MIN``, ``LAMBDA_MAX``] (the first after the I frame takes λ*). λ_s is what the budget
asks for (``FrameRate.solved``); a frame
coded with prediction takes min(λ_s, ``PREDICTED_ABOVE`` · λ_I), λ_I the segment's I frame's:
past that such frames stop getting cheaper (measured on CIF BBB and the pan) while their quality
keeps falling, and the power law above would raise λ into that for ever. A P/B frame that the
intra check also codes without prediction (such frames do keep getting cheaper) is coded, and judged, at

    λ_w = max(λ_s, λ_I · INTRA_BELOW^(-q))      (``without_prediction``)

q the share of such frames expected (above). Where they are the exception (q near 0), the plan
gave them no budget: one is coded like an I frame of the segment, at no λ lower than λ_I (the pan
at 26.4 kbit/s: one coded at a fifth of λ_I took over half the budget). Where they are the rule,
they are what the budget was planned on, and the I frame, one of them, must not fix the segment's
rate: they go as low as the budget says, to λ_I / INTRA_BELOW (BBB 128² at 24.9 kbit/s, held at
the I frame's λ 0.19: 48 % under). Where the frames left are planned to spend less than
``PAYBACK_SHARE`` of the budget, E is replaced by P + (E - P)·P/(``PAYBACK_SHARE``·B), P what they
are predicted to cost at λ_p: the last, cheap frames pay the error in the measure of what they
spend, not all of it, unless it leaves the segment more than ``SHORTFALL`` of its budget under
(E - P > SHORTFALL · B: they spend it all, at no cost in quality). So every frame's overshoot or
undershoot is paid back by the frames after it in the segment, and the model the payment is
planned with improves with each frame.

**The I frame** opens the segment and nothing is known of its content yet. Its share of the
budget under the prior is T_I = (B - F) / (1 + Σ_{j>0} m_c(j)/m_I), the same whatever m_I is. Its
training starts at a λ from a prior curve of I-frame bits per pixel against the picture's detail
(``PRIOR_BPP_AT``), and
from ``STEER_FROM`` to ``STEER_UNTIL`` of its main phase λ is multiplied, at each of the
``STEER_STEPS`` points spread over the phase that fall there, by (estimate / T_I)^(STEER_GAIN / -κ) (staying
within a factor ``STEER_RANGE`` of where it started), the estimate being its hard-rounded latent
rate (divided by 1 + ``DECAY``·(1 - p)², what training at a share p of the phase still takes off
it) plus its networks at ``NN_BITS_PER_PARAMETER`` and the headers: the look at the first frame
costs no extra encode. Its coded bits then give m_I, and the frames after it are planned from that,
at the λ the frame behaves as coded at: λ_eff = exp(∫₀¹ ln λ(p) dp) over the main phase
(``Steer.effective``), not the λ steering ended at: the latents lag behind a moving λ (README,
*Rate control*, measured on the pan's first frame).

**Where the guess misses.** When the source promised motion that predicts and the intra check
then codes most P/B frames without prediction, the I frame has already taken the share planned for
cheap P/B frames, and λ cannot rise far enough to pay for frames costing half an I frame each;
frames coded with prediction much dearer than the prior are paid back only as far as λ up to the
cap buys. Both end over budget, by bounds ``tests/test_ratecontrol.py`` states on simulated worlds.

**Segments.** Nothing crosses an intra period (``encoder``): each segment has its own budget and
model, so ``--jobs`` and ``--ray`` code the same stream. On an input of unknown length (stdin)
every segment plans for a full intra period: a stream that ends inside one lands above its target
by what that period's I frame took beyond its share of the frames actually sent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from .intra_expectation import FrameClass, IntraExpectation, intra_likelihood
from .rate_prior import (
    CONTENT_EVIDENCE, DETAIL_EXPONENT, FRAME_OVERHEAD_BITS, INTRA_SHARE, ITERATIONS_EXPONENT, NN_BITS_PER_PARAMETER, NN_KAPPA,
    NN_KAPPA_ABOVE, NN_KNEE, PRIOR_BPP_AT, PRIOR_DETAIL, PRIOR_ITERATIONS, PRIOR_LAMBDA, detail_scale, inter_share, source_content,
)  # fmt: skip
from .segment_plan import FIRST_INTER
from .types import FrameType

# bits ∝ λ^κ: the log-log slope of rate against λ at the fast preset (tools/rd_benchmark.py runs in
# the README: -0.46 on BBB 128², -0.34 on the pan, -0.50 on CIF BBB, λ 4e-3 to 2.5e-4).
KAPPA = -0.45
LEARNING_RATE = 0.5  # weight of a class's new observation in its log-complexity
# A P/B frame costs at least its headers, its modes and nearly empty latent streams whatever λ: the
# model's m_c·λ^κ is what it spends beyond FLOOR_BITS (the pan at 128²: 232 bits at base λ 0.02-0.05,
# where λ kept rising for nothing while the model had no floor).
FLOOR_BITS = 200
# The budget left for the frames left never goes below this share of what they would cost at the
# last λ: an overshoot is paid back by raising λ, as far as MAX_STEP lets it, not by starving them
# (a floor at a share of the average frame's budget let CIF BBB's λ fall while over budget).
MIN_LEFT = 0.25
# How far off its budget a segment may land while λ stays (the pan, two seeds: BD-rate +4.20 % -> -0.57 %;
# a budget model 5 % under at the I frame's λ had halved λ for the next B frame, which sent fresh
# networks, 3x the bits of one at λ_I, and the deep B frames paid that back at 4-13x λ_I). It narrows
# with the frames left, so that a model error seen late is still paid back: held wide to the end, it
# left BBB 128² at 24.9 kbit/s 15.6 % under (seed 1; the last seven frames, planned dearer than
# they came, held λ while the shortfall grew).
WINDOW = 0.08
# From one frame to the next, λ moves DAMPING of the way (in the log domain) to the solved value,
# and at most by MAX_STEP: chasing each frame's miss at once swung λ 8x within one pan segment,
# costing 9 % in rate at equal quality and intra checks that the swings set off.
DAMPING, MAX_STEP = 0.5, 2.0
# The frames left pay back the segment's error in full only while they are planned to spend
# PAYBACK_SHARE of the budget; after that, in the measure of what they spend. CIF BBB's last B
# frames, ~500 bits each, swung λ 8x absorbing it all; counted in frames (the last 8 paid k/8 of
# it), BBB 128²'s last five deep B frames (a tenth of the budget) paid 5/8 of 6 % at 4x the I
# frame's λ, 1.2-4 dB below the λ encode's (62.7 kbit/s, seed 0). Replayed on the recorded
# encodes of BBB and the pan (27 encodes), the spread of base λ (sd of its log) falls from 0.41 to
# 0.37 on BBB and to 0.22 on the pan, their rate errors alike; at 0.5, BBB's errors grow.
PAYBACK_SHARE = 0.25
# ... but once the frames left are headed to land the segment more than SHORTFALL of its budget under
# it, they spend all of it: a lower λ costs them no quality. BBB 128² at 24.9 kbit/s (seed 0) ended
# 10.8 % under, the second group's deep B frames planned as if some would be coded without
# prediction and coded with it at their floor (224-264 bits) while λ held; with the rule, its last
# three took λ down to 0.2x the I frame's, 424-488 bits each, and the segment ended 6.5 % under.
SHORTFALL = 0.05
LAMBDA_MIN, LAMBDA_MAX = 1e-6, 0.5
# How far below the I frame's λ frames coded without prediction may go where all P/B frames are
# expected to be (``RateController.without_prediction``).
INTRA_BELOW = 8.0
# Frames coded with prediction take no base λ above PREDICTED_ABOVE times the I frame's, where they
# stop getting cheaper (CIF BBB at 69 kbit/s: B frames at 4-19x λ_I cost 208-1 272 bits, the
# dearest at the highest λ; the pan at 17.5 kbit/s 224-760 bits at 2-17x).
PREDICTED_ABOVE = 4.0
# The latent rate keeps falling after steering stops: at a share p of the main phase it is about
# 1 + DECAY·(1-p)² times the final one (1.06-1.28 at p = 0.43-0.57 at a fixed λ).
DECAY = 0.3
# λ is steered from STEER_FROM to STEER_UNTIL of the I frame's main phase, then held: the rate of
# the first iterations says little (5-6x the final one at 3 %), and a λ moved late has no time to act.
STEER_FROM, STEER_UNTIL = 0.25, 0.6
STEER_STEPS = 20  # steering points spread over the main phase (those between STEER_FROM and STEER_UNTIL act)
STEER_GAIN = 0.5  # of the full correction per step: the latents lag behind λ, more would oscillate
MAX_STEER_STEP = 1.5
# λ stays within this factor of its start: a training too short to reach the target rate would
# otherwise drive λ far from where the frame's bits and λ agree (seen: λ 1.4e-5 for an I frame
# that then cost 17 kbit), and the frames after it are planned from that pair.
STEER_RANGE = 3.0

@dataclass(frozen=True)
class FrameRate:
    """The rate controller's decision for one P/B frame: its base λ coded with prediction, the bits
    planned for it, and the λ the budget asks for (``solved``: before ``PREDICTED_ABOVE`` caps it, what
    a frame coded without prediction starts from, see ``RateController.without_prediction``)."""

    lmbda: float
    planned_bits: float
    solved: float

    def __post_init__(self) -> None:
        if not (self.lmbda > 0 and math.isfinite(self.lmbda)) or not self.planned_bits > 0 or not self.solved >= self.lmbda:
            raise ValueError(f"a frame rate decision needs λ > 0, planned bits > 0 and solved λ >= λ, got {self}")


@dataclass
class Steer:
    """λ of an I frame's training, moved toward ``target_bits`` (see the module docstring).

    ``steps``: calls of :meth:`update` spread over the main phase; ``lmbda``: the current value,
    the frame's λ once training is done.
    """

    lmbda: float
    target_bits: float
    nn_bits: float  # the estimate of its networks' bits at PRIOR_LAMBDA
    steps: int = STEER_STEPS
    history: list[tuple[float, float]] = field(default_factory=list)  # (estimated bits, λ) per step
    start: float = 0.0  # the λ steering began at (set on the first update)
    moves: list[tuple[float, float]] = field(default_factory=list)  # (share of the phase, λ from there on)

    @staticmethod
    def acts(progress: float) -> bool:
        """Whether :meth:`update` moves λ at this share of the main phase (the caller measures the
        rate only then)."""
        return STEER_FROM <= progress <= STEER_UNTIL

    def update(self, progress: float, latent_bits: float) -> float:
        """``progress``: share of the main phase done; ``latent_bits``: hard-rounded latent rate
        now. -> the λ to train on from here."""
        if not self.acts(progress):
            return self.lmbda
        self.start = self.start or self.lmbda
        estimate = latent_bits / (1.0 + DECAY * (1.0 - progress) ** 2) + self.networks(self.lmbda)
        step = (estimate / self.target_bits) ** (STEER_GAIN / -KAPPA)
        lmbda = self.lmbda * min(max(step, 1.0 / MAX_STEER_STEP), MAX_STEER_STEP)
        self.lmbda = _clamp(min(max(lmbda, self.start / STEER_RANGE), self.start * STEER_RANGE))
        self.history.append((estimate, self.lmbda))
        self.moves.append((progress, self.lmbda))
        return self.lmbda

    @property
    def effective(self) -> float:
        """The λ the trained frame behaves as coded at: the geometric mean of the λ in force over
        the main phase, weighted by the share of the phase each held. The latents lag behind a
        moving λ (see the module docstring), so a frame steered down from a high start ends with
        the bits and quality of a λ above the one it ends at."""
        if not self.moves:
            return self.lmbda
        log_sum, at, lmbda = 0.0, 0.0, self.start
        for progress, moved in self.moves:
            log_sum += (progress - at) * math.log(lmbda)
            at, lmbda = progress, moved
        return math.exp(log_sum + (1.0 - at) * math.log(lmbda))

    def networks(self, lmbda: float) -> float:
        """Estimated bits of the frame's networks and headers at ``lmbda``."""
        below = (min(lmbda, NN_KNEE) / PRIOR_LAMBDA) ** NN_KAPPA
        return self.nn_bits * below * (max(lmbda, NN_KNEE) / NN_KNEE) ** NN_KAPPA_ABOVE + FRAME_OVERHEAD_BITS


def _floor(frame_type: FrameType) -> float:
    return 0.0 if frame_type == FrameType.I else FLOOR_BITS


def _clamp(lmbda: float) -> float:
    return min(max(lmbda, LAMBDA_MIN), LAMBDA_MAX)


class RateController:
    """Per-frame λ for one segment at ``bitrate`` bits/s (see the module docstring).

    ``plan``: the classes of the segment's frames in coding order (:func:`nominal_plan`: its
    intra period, or fewer frames where the stream's end is known).
    """

    def __init__(
        self,
        bitrate: float,
        frame_rate: Fraction,
        plan: tuple[FrameClass, ...],
        motion_share: float | None = None,
        detail: float | None = None,
    ) -> None:
        if not plan:
            raise ValueError("a segment of no frame")
        if not frame_rate > 0:
            raise ValueError(f"frame rate {frame_rate}")
        self.frame_bits = bitrate / float(frame_rate)
        self.frames = len(plan)
        self.plan = plan
        self.intra = intra_likelihood(motion_share)
        self._motion_share = motion_share
        self._content_at: float | None = None  # the λ the I frame's plan evaluates g at
        self._expect = IntraExpectation(self.intra, [c for c in plan if c[0] != FrameType.I])
        self.spent = 0.0
        self.coded = 0
        self._log_m: dict[tuple[FrameType, int], float] = {}  # the I frame, and P/B classes coded with prediction
        self._log_intra: float | None = None  # P/B frames coded without prediction, whatever their class
        self._inter_frames = 0  # P/B frames coded so far
        self._known: tuple[FrameClass, ...] = ()  # the classes scheduled after the frame being coded
        self._last: float | None = None  # λ the last frame was coded at
        self._path: float | None = None  # and the λ the budget had asked for it (past the cap)
        self._asked: float | None = None  # the λ solved for the frame being coded
        self._last_type: FrameType | None = None
        self.intra_lambda: float | None = None  # λ of the segment's last I frame
        self._intra_detail = detail  # the spatial detail of the segment's I frame: frames are counted against it
        self._details: tuple[float, ...] = ()  # of the frame being planned and the known ones after it
        self._ahead: float | None = None  # the detail the frames planned beyond them are planned at (segment_plan.beyond)

    @property
    def budget(self) -> float:
        return self.frames * self.frame_bits

    def _classes_left(self, cls: FrameClass) -> list[FrameClass]:
        """The next frame's class, then those planned after it."""
        return [cls, *self._later()]

    def _weights_left(self, cls: FrameClass) -> list[float]:
        """m_c of the next frame (of class ``cls``) and of those planned after it, each at its s
        (which scales what coding without prediction costs): the frames the controller was told of at
        their own detail, the others at ``ahead``."""
        classes = self._classes_left(cls)
        details = [*self._details[: len(classes)], *[self._ahead] * max(len(classes) - len(self._details), 0)]
        return [self._complexity(c, detail_scale(d, self._intra_detail)) for c, d in zip(classes, details)]

    def _later(self) -> list[FrameClass]:
        """The classes planned after the next frame: those the GOP already scheduled (``known``
        of :meth:`next_frame`), then the fixed structure's."""
        return [*self._known, *self.plan[self.coded + 1 + len(self._known) :]]

    def _left(self, cls: FrameClass) -> float:
        """Bits left for the next frame (of class ``cls``) and those planned after it: what the
        budget has left, but at least ``MIN_LEFT`` of what they would cost at the last frame's λ
        (before any frame is coded, of their average share of the budget)."""
        classes = self._classes_left(cls)
        if self._last is None:
            least = len(classes) * self.frame_bits
        else:
            least = sum(_floor(c[0]) for c in classes) + sum(self._weights_left(cls)) * self._last**KAPPA
        return max(self.budget - self.spent, MIN_LEFT * least)

    @property
    def intra_expected(self) -> float:
        """The share of the P/B frames left expected to be coded without prediction, over all
        classes (``IntraExpectation.pooled``)."""
        return self._expect.pooled

    def intra_expected_for(self, cls: FrameClass) -> float:
        """The share of a class's frames left expected to be coded without prediction
        (``IntraExpectation.for_class``)."""
        return self._expect.for_class(cls)

    def _complexity(self, cls: tuple[FrameType, int], scale: float = 1.0) -> float:
        """m_c: for the I frame, observed; for a P/B class, the mix of its complexity coded with
        prediction (observed, else its prior share of the I frame's scaled by how far the classes
        seen came out from theirs: the content's motion) and without (observed, else INTRA_SHARE of
        the I frame's), in the proportion ``intra_expected_for`` the class; the first never above the second."""
        anchor = self._log_m.get((FrameType.I, 0), 0.0)
        if cls[0] == FrameType.I:
            return math.exp(anchor) * scale
        if cls in self._log_m:
            inter = math.exp(self._log_m[cls])
        else:
            known = (FrameType.I, 0) in self._log_m
            seen = [m - anchor - math.log(inter_share(*c)) for c, m in self._log_m.items() if c[0] != FrameType.I and known]
            guess = math.log(source_content(self._motion_share, self._content_at or self.intra_lambda))
            content = (sum(seen) + CONTENT_EVIDENCE * guess) / (len(seen) + CONTENT_EVIDENCE)
            inter = inter_share(*cls) * math.exp(anchor + content)
        intra = scale * (math.exp(self._log_intra) if self._log_intra is not None else INTRA_SHARE * math.exp(anchor))
        q = self.intra_expected_for(cls)
        return (1.0 - q) * min(inter, intra) + q * intra

    def _spendable(self, cls: FrameClass) -> float:
        """What is left (``_left``) beyond the floors of the next frame and those after it."""
        bits = self._left(cls)
        floors = sum(_floor(c[0]) for c in self._classes_left(cls))
        return max(bits - floors, MIN_LEFT * bits)

    def start_intra(
        self, pixels: int, nn_parameters: int, iterations: int, detail: float = PRIOR_DETAIL, ahead: float | None = None
    ) -> Steer:
        """The segment's I frame (``nn_parameters`` in its networks, trained for ``iterations``, of
        spatial ``detail``; ``ahead``: the detail the frames after it are planned at, ``segment_plan.beyond``):
        its share of the budget and the steered training's start."""
        self._details, self._ahead = (detail,), ahead
        steer = Steer(PRIOR_LAMBDA, 0.0, nn_parameters * NN_BITS_PER_PARAMETER)
        prior_bpp = PRIOR_BPP_AT * (PRIOR_ITERATIONS / max(iterations, 1)) ** ITERATIONS_EXPONENT
        prior_bpp *= (max(detail, 1e-9) / PRIOR_DETAIL) ** DETAIL_EXPONENT
        for _ in range(4):  # its networks' bits and the source's content g depend on λ: a few fixed-point steps
            self._content_at = steer.lmbda
            weights = self._weights_left((FrameType.I, 0))
            share = weights[0] / sum(weights)
            steer.target_bits = self._spendable((FrameType.I, 0)) * share
            latent_bpp = max(steer.target_bits - steer.networks(steer.lmbda), 0.25 * steer.target_bits) / pixels
            steer.lmbda = _clamp(PRIOR_LAMBDA * (latent_bpp / prior_bpp) ** (1.0 / KAPPA))
        self._content_at = None  # from here on, g at the λ the I frame is coded at
        if self._last is not None:  # a second I frame in the segment (a scene cut): from the stream's λ
            steer.lmbda = min(max(steer.lmbda, self._last / MAX_STEP), self._last * MAX_STEP)
        return steer

    def _class(self, frame_type: FrameType, depth: int) -> FrameClass:
        """The class a frame of this type and depth is planned and learnt as: the segment's first
        P/B frame is one of its own (``FIRST_INTER``)."""
        return (frame_type, FIRST_INTER) if frame_type != FrameType.I and self._inter_frames == 0 else (frame_type, depth)

    def next_frame(
        self,
        frame_type: FrameType,
        depth: int,
        known: Sequence[FrameClass] = (),
        details: Sequence[float] = (),
        ahead: float | None = None,
    ) -> FrameRate:
        """Base λ for the next P/B frame to code (after the segment's I frame); ``known``: the
        classes the GOP has scheduled after it in the segment, in coding order (the adaptive GOP
        codes P anchors, at many times a B frame's bits, where the fixed structure has B frames);
        ``details``: the spatial detail of its picture and theirs, ``ahead``: the detail the frames
        beyond them are planned at (``segment_plan.beyond``)."""
        cls = self._class(frame_type, depth)
        self._known = tuple(known)[: max(self.frames - self.coded - 1, 0)]
        self._details, self._ahead = tuple(details), ahead
        weights = self._weights_left(cls)
        weight = sum(weights)
        spendable = self._spendable(cls)
        path = self._path
        if path is not None and self._last_type != FrameType.I:
            # near the segment's end a few cheap frames would absorb the whole error: they pay the
            # share of it that what they spend bears, the rest is left unpaid (but a shortfall past
            # SHORTFALL they spend)
            planned = weight * path**KAPPA
            short = spendable - planned > SHORTFALL * self.budget
            pay = 1.0 if short else min(1.0, planned / (PAYBACK_SHARE * self.budget))
            spendable = max(planned + (spendable - planned) * pay, MIN_LEFT * planned)
        lmbda = _clamp((spendable / weight) ** (1.0 / KAPPA)) if path is None else self._held(path, weight, spendable)
        if path is not None and self._last_type != FrameType.I:
            # after the I frame the solved value stands: the I frame's λ is where steering left it
            step = (lmbda / path) ** DAMPING
            lmbda = _clamp(path * min(max(step, 1.0 / MAX_STEP), MAX_STEP))
        solved = lmbda
        if self.intra_lambda is not None:
            lmbda = min(lmbda, PREDICTED_ABOVE * self.intra_lambda)
        self._asked = solved
        return FrameRate(lmbda, _floor(frame_type) + weights[0] * lmbda**KAPPA, solved)

    def _held(self, path: float, weight: float, spendable: float) -> float:
        """The λ nearest ``path`` at which the frames left (Σ m_c = ``weight``; ``spendable``: the
        bits that land the segment on its budget) land it within its window (``WINDOW`` of the
        budget, times the share of the segment's frames left)."""
        slack = WINDOW * self.budget * (self.frames - self.coded) / self.frames
        highest = _clamp((max(spendable - slack, MIN_LEFT * spendable) / weight) ** (1.0 / KAPPA))
        lowest = _clamp(((spendable + slack) / weight) ** (1.0 / KAPPA))
        return min(max(path, lowest), highest)

    def without_prediction(self, lmbda: float) -> float:
        """The base λ a P/B frame is coded and judged at where the intra check codes it without
        prediction, from the λ the budget asks for (``FrameRate.solved``; such a frame keeps getting
        cheaper as λ rises): no lower than λ_I · INTRA_BELOW^(-q), q = ``intra_expected``."""
        if self.intra_lambda is None:
            return lmbda
        return max(lmbda, self.intra_lambda * INTRA_BELOW ** -self.intra_expected)

    def coded_frame(
        self, frame_type: FrameType, depth: int, lmbda: float, bits: int, intra_coded: bool = False, detail: float | None = None
    ) -> None:
        """A frame of the segment (its picture of spatial ``detail``) was coded at base λ ``lmbda``
        in ``bits`` (a P/B frame: without prediction, ``intra_coded``): learn from it."""
        cls = self._class(frame_type, depth)
        observed = math.log(max(bits - _floor(frame_type), MIN_LEFT * bits, 1)) - KAPPA * math.log(lmbda)
        if intra_coded or frame_type == FrameType.I:  # what a frame coded without prediction costs goes with its detail
            observed -= math.log(detail_scale(detail, self._intra_detail))
        if frame_type != FrameType.I:
            self._inter_frames += 1
            self._expect.coded(cls, intra_coded)
        if intra_coded and frame_type != FrameType.I:
            old = self._log_intra
            self._log_intra = observed if old is None else (1 - LEARNING_RATE) * old + LEARNING_RATE * observed
        else:
            old = self._log_m.get(cls)
            self._log_m[cls] = observed if old is None else (1 - LEARNING_RATE) * old + LEARNING_RATE * observed
        self.spent += bits
        self.coded += 1
        self._last = lmbda
        # λ moves on from where the budget asked it to be, not from the cap a frame coded with
        # prediction stopped at: a frame coded without prediction after it still gets cheaper with λ
        capped = frame_type != FrameType.I and not intra_coded and self._asked is not None and lmbda < self._asked
        self._path = self._asked if capped else lmbda
        self._asked = None
        self._known, self._details, self._ahead = (), (), None
        self._last_type = frame_type
        if frame_type == FrameType.I:
            self.intra_lambda = lmbda


__all__ = ["FrameRate", "KAPPA", "RateController", "Steer"]
