"""How many of a segment's P/B frames the intra check is expected to code without prediction.

    source guess q₀ (before the I frame) ─► pooled share q, and per class q_c ─► rate control's plan
                     each P/B frame coded ─┘ (with or without prediction)

A P/B frame the intra check codes without prediction costs about half an I frame, one it leaves
predicted a hundredth of it (``ratecontrol``), so the plan of a segment's bits rests on how many of
its frames are expected to be either. Three sources tell:

- **The source**, before any P/B frame is coded: r = the luma MSE of a frame predicted by block flow
  from the I frame a few frames back over the I frame's spatial detail (``lookahead.motion_share``);
  q₀ = ``intra_likelihood(r)``.
- **The segment's frames so far**: the pooled share q = (n_intra + E · q₀) / (n + E) after n P/B frames
  of which n_intra were coded without prediction, E = ``INTRA_EVIDENCE`` (``pooled``).
- **Where a frame sits**: a frame far from its references fails more often than one next to them.
  Frames of class c (type, hierarchy depth) are coded without prediction with probability
  σ(a + β_c), β_c = ``INTRA_LOG_ODDS`` (measured), a the segment's level, which solves

      Σ_coded σ(a + β_c(f)) + E · mean_{c in the plan} σ(a + β_c) = n_intra + E · q₀

  (what the frames coded and the source's guess, spread over the plan's classes, say). A class's
  own frames then count: q_c = (n_intra,c + E_c · σ(a + β_c)) / (n_c + E_c), E_c = ``CLASS_EVIDENCE``
  (``for_class``).

Where the source promises prediction and none failed (q₀ = 0, no frame coded without prediction),
every q_c is 0 whatever β says.
"""

from __future__ import annotations

import math
from collections import Counter

from .types import FrameType

FrameClass = tuple[FrameType, int]  # (type, hierarchy depth)

# r measured at distance 4: 0.018 (pan), 0.07 (CIF BBB 57-), none of whose P/B frames were
# intra-coded; 1.3 (the sample), 8.4-10.5 (BBB 128² 32-): with motion pre-training at its present
# step size (e9f808f), 5 of 7 (the README's main job) and 34 of 80 (five BBB encodes at 1.6e-3 to
# 0.07), 45 % over both; 54 % on BBB before. The share grows linearly in log r from INTRA_FROM
# (none) to INTRA_AT (INTRA_LIKELY), at most INTRA_MOST.
INTRA_FROM, INTRA_AT, INTRA_LIKELY, INTRA_MOST = 0.1, 1.3, 0.45, 0.45
# The source's guess counts as INTRA_EVIDENCE frames against those the check coded with and without
# prediction. At 0.5, on BBB 128² (62.7 kbit/s), the P frame next to the I frame, coded with
# prediction, took q from 0.45 to 0.15: the plan halved, λ fell to 0.7x the I frame's for the frames
# coded without prediction after it (7 of the next 10) and the last B frames paid at 4x. Simulated,
# a segment whose source promised intra coding that never came ends 4 % under its budget at 4
# (1.1 % at 0.5; 21 % at 2 before rate control's window and source content).
INTRA_EVIDENCE = 4.0
# Log-odds of a frame being coded without prediction by its depth, against a B frame at depth 2
# (the P anchors and the segment's first P/B frame at depth <= 0): fitted with one level per encode
# on 22 BBB 128² encodes from λ ≈ 2e-3 to 0.19 (352 P/B frames, format 6.0, fast preset): P anchors 62
# of 64 coded without prediction, B frames at depth 1 41 of 61, depth 2 49 of 87, depth 3 41 of 140
# (fit: +4.4, +1.0, 0, -1.8; the anchors' held at +3, nearly all of them fail).
INTRA_LOG_ODDS = (3.0, 1.0, 0.0, -1.8)  # depth <= 0, 1, 2, 3 and deeper
# A class's own frames count for more than its place: the pooled expectation counts as
# CLASS_EVIDENCE of them.
CLASS_EVIDENCE = 1.0


def intra_likelihood(motion_share: float | None) -> float:
    """q₀: the share of P/B frames the intra check is expected to code without prediction, from the
    source's motion share r (0 when unknown)."""
    if motion_share is None or motion_share <= INTRA_FROM:
        return 0.0
    return min(INTRA_LIKELY * math.log(motion_share / INTRA_FROM) / math.log(INTRA_AT / INTRA_FROM), INTRA_MOST)


def log_odds(cls: FrameClass) -> float:
    """β_c of a P/B class (``INTRA_LOG_ODDS`` by depth)."""
    return INTRA_LOG_ODDS[min(max(cls[1], 0), len(INTRA_LOG_ODDS) - 1)]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0


class IntraExpectation:
    """The intra check's expected outcome for one segment (see the module docstring).

    ``guess``: q₀; ``plan``: the classes of the segment's P/B frames (for the guess's spread).
    """

    def __init__(self, guess: float, plan: list[FrameClass]) -> None:
        if not 0.0 <= guess <= 1.0:
            raise ValueError(f"an expected share of {guess}")
        self.guess = guess
        self._plan_odds = [log_odds(c) for c in plan] or [0.0]
        self._coded_odds: list[float] = []  # β of each P/B frame coded
        self._by_class: Counter[tuple[FrameClass, bool]] = Counter()
        self._intra = 0
        self._level = self._solve()

    def coded(self, cls: FrameClass, intra_coded: bool) -> None:
        """A P/B frame of ``cls`` was coded (without prediction: ``intra_coded``)."""
        self._coded_odds.append(log_odds(cls))
        self._by_class[(cls, intra_coded)] += 1
        self._intra += intra_coded
        self._level = self._solve()

    @property
    def pooled(self) -> float:
        """q: the share over all P/B frames, the guess worth ``INTRA_EVIDENCE`` frames."""
        return (self._intra + INTRA_EVIDENCE * self.guess) / (len(self._coded_odds) + INTRA_EVIDENCE)

    def for_class(self, cls: FrameClass) -> float:
        """q_c: the share of the class's frames left expected to be coded without prediction."""
        intra, inter = self._by_class[(cls, True)], self._by_class[(cls, False)]
        return (intra + CLASS_EVIDENCE * _sigmoid(self._level + log_odds(cls))) / (intra + inter + CLASS_EVIDENCE)

    def _solve(self) -> float:
        """a (see the module docstring), -inf/+inf where every frame is expected with/without prediction."""
        target = self._intra + INTRA_EVIDENCE * self.guess
        total = len(self._coded_odds) + INTRA_EVIDENCE
        if target <= 0.0:
            return -math.inf
        if target >= total:
            return math.inf

        def expected(level: float) -> float:
            spread = sum(_sigmoid(level + b) for b in self._plan_odds) / len(self._plan_odds)
            return sum(_sigmoid(level + b) for b in self._coded_odds) + INTRA_EVIDENCE * spread

        low, high = -40.0, 40.0
        for _ in range(60):  # expected() rises with the level: bisection
            mid = 0.5 * (low + high)
            low, high = (mid, high) if expected(mid) < target else (low, mid)
        return 0.5 * (low + high)


__all__ = ["CLASS_EVIDENCE", "INTRA_EVIDENCE", "INTRA_LOG_ODDS", "IntraExpectation", "intra_likelihood", "log_odds"]
