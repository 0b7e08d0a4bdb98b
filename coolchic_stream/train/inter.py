"""Code one P or B frame: motion initialisation, motion pre-training, joint overfitting.

    refs ─► global translation per ref ─► block-matching flow (our own estimator, no downloads)
        ─► modules started from the references' networks (nn_prediction)
        ─► pre-train the motion Cool-chic to predict (train/motion.py: flow and plain candidates)
        ─► main phase: motion + residue Cool-chics trained jointly on D + λ·R through the warp
           (R: latent bits + the estimated bits of the started modules' changes)
        ─► final hard-round phase ─► per module: fresh | copy | delta by real cost ─► integers
Fewer iterations deeper in the hierarchy; modules with nothing to start from are warm-started
from the previous frame of the same kind (a speed-up Cool-chic does not have).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..architecture import motion_parameter, residue_parameter
from ..config import Complexity, EncoderConfig, NNPrediction
from ..framecodec import OUTPUTS, FrameNetworks
from ..gop import FrameJob
from ..nn.coolchic import CoolChicEncoder
from ..nn.frame import FrameEncoder
from ..nn.intercoding import InterCodingModule
from ..nn.quantizer import NoiseType, QuantizerMode
from ..spec import ALPHA_CHANNEL, GATE_OFFSET
from ..types import CoolChicRole, FrameType, Picture
from .coding import FrameCodingResult, finish, picture_target, picture_to_dense
from .loop import Phase, ProgressFn, train_phase
from .motion import MotionReport, estimate_motion, pretrain_iterations, pretrain_motion
from .nn_prediction import ChangeRate, start_from_references

_DOWN = {Complexity.HOP: Complexity.MOP, Complexity.MOP: Complexity.LOP, Complexity.LOP: Complexity.LOP}


@dataclass(frozen=True)
class InterCodingResult(FrameCodingResult):
    translations: tuple[tuple[int, int], ...] = ()
    motion: MotionReport | None = None


def inter_iterations(intra_iterations: int, frame_type: FrameType, depth: int) -> int:
    """Budget of an inter frame: a P anchor gets 60 % of an I frame, each B level 10 % less (>= 20 %)."""
    share = 0.6 if frame_type == FrameType.P else max(0.6 - 0.1 * (depth - 1), 0.2)
    return max(int(intra_iterations * share), 10)


def inter_complexity(intra: Complexity, frame_type: FrameType, depth: int) -> Complexity:
    """P and first-level B one step below the I frame, deeper B frames at the lowest point."""
    if frame_type == FrameType.P or depth <= 1:
        return _DOWN[intra]
    return Complexity.LOP


class WarmStart:
    """NN weights of the last coded frame per (type, architecture), to initialise the next one."""

    def __init__(self) -> None:
        self._states: dict[tuple, dict[str, Tensor]] = {}

    @staticmethod
    def _key(role: str, cc: CoolChicEncoder) -> tuple:
        p = cc.param
        return (role, p.n_output, p.arm, p.layers_synthesis, p.latent_resolution, p.img_size)

    def load(self, fe: FrameEncoder) -> bool:
        used = False
        for role, cc in fe.coolchics.items():
            state = self._states.get(self._key(role, cc))
            if state is not None:
                cc.load_state_dict({**cc.state_dict(), **state})
                used = True
        return used

    def store(self, fe: FrameEncoder) -> None:
        for role, cc in fe.coolchics.items():
            self._states[self._key(role, cc)] = {k: v.detach().clone() for k, v in cc.state_dict().items() if not k.startswith("latents")}


def trust_prediction(fe: FrameEncoder) -> None:
    """Start from x̂ = pred: alpha's raw output at +1/2 (alpha = 1) instead of Cool-chic's alpha = 1/2,
    so the residue begins by correcting a good prediction rather than half of one. Only where
    alpha's bias is still 0: a new synthesis, or one started from a reference without alpha (an
    I frame's); one started from a reference's alpha keeps it."""
    synthesis = fe.residue.synthesis
    last = synthesis.stabiliser if synthesis.stabiliser is not None else synthesis.convs[-1]
    with torch.no_grad():
        if float(last.bias[ALPHA_CHANNEL]) == 0.0:
            last.bias[ALPHA_CHANNEL] += 1.0 - GATE_OFFSET


def code_inter(
    picture: Picture,
    references: list[Picture],
    job: FrameJob,
    config: EncoderConfig,
    lmbda: float,
    progress: ProgressFn | None = None,
    warm_start: WarmStart | None = None,
    reference_networks: Sequence[FrameNetworks] = (),
) -> InterCodingResult:
    """Overfit and quantize a P or B frame; its modules start from, and may be copied or
    delta-coded from, the same modules of its references' networks (``reference_networks``,
    in the order of ``job.references``)."""
    device = config.device
    target = picture_target(picture, device)
    refs = [picture_to_dense(r, device) for r in references]
    h, w = picture.height, picture.width
    estimate = estimate_motion(target, refs)
    translations = list(estimate.translations)

    complexity = inter_complexity(config.intra_complexity, job.frame_type, job.depth)
    n_res, n_mot = OUTPUTS[job.frame_type]
    torch.manual_seed(config.training_seed(job.display_index))
    fe = FrameEncoder(
        job.frame_type, picture.data_type, picture.bit_depth,
        residue_parameter(h, w, n_res, complexity),
        motion_parameter(h, w, n_mot, complexity),
        InterCodingModule(job.frame_type, translations),
    ).to(device)  # fmt: skip
    warm = warm_start.load(fe) if warm_start is not None else False
    distances = [abs(job.display_index - r) for r in job.references]
    if config.nn_prediction == NNPrediction.OFF:
        reference_networks = ()
    sources, change_rate = start_from_references(
        {CoolChicRole.RESIDUE: fe.residue, CoolChicRole.MOTION: fe.motion}, reference_networks, distances
    )
    trust_prediction(fe)
    warm = warm or bool(change_rate)
    motion_rate = ChangeRate.of(change_rate, fe.motion)

    total = inter_iterations(config.intra_iterations, job.frame_type, job.depth)
    pretrain = pretrain_iterations(config.intra_iterations)
    motion_report = pretrain_motion(fe, refs, target, estimate, lmbda, pretrain, motion_rate)
    if progress is not None:
        progress("motion", pretrain, pretrain, 0.0, 0.0)
    final = max(min(config.settings.final_iterations, total // 10), 1)
    # The main phase keeps the length it had when pre-training was a sixth of the frame's budget.
    main = max(total - total // 6 - final, 1)
    validation = min(config.settings.validation_interval, main)
    main_phase = Phase("main", main, 1e-2 if not warm else 5e-3, 1e-5, noise_start=0.25, noise_end=0.1,
                       temperature_start=0.3, temperature_end=0.1, validation_interval=validation)  # fmt: skip
    final_phase = Phase("final", final, 1e-4, 1e-5, mode=QuantizerMode.HARDROUND, noise=NoiseType.NONE,
                        train_latents=False, validation_interval=max(final // 2, 1))  # fmt: skip
    train_phase(fe, target, refs, lmbda, main_phase, progress, change_rate)
    result = train_phase(fe, target, refs, lmbda, final_phase, progress, change_rate)
    coded = finish(fe, target, refs, lmbda, result.psnr, config.training_seed(job.display_index) if config.settings.nn_rdoq else None,
                   0, progress,  # latent RDOQ: I frames only (README: no gain measured on P frames)
                   sources, True, job.frame_type == FrameType.B, config.nn_prediction == NNPrediction.ALL)  # fmt: skip
    if warm_start is not None:
        warm_start.store(fe)
    return InterCodingResult(coded.coded, coded.macs_per_pixel, coded.train_psnr, tuple(translations), motion_report)


__all__ = ["InterCodingResult", "WarmStart", "code_inter", "inter_complexity", "inter_iterations"]
