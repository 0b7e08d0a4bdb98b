"""Code one frame: overfit its FrameEncoder, quantize the NNs, produce the transmitted integers.

    Picture + references ─► Target ─► run_plan (warm-up, main, final) ─► NN step search
        ─► [NN RDOQ] ─► [latent RDOQ] ─► hard latents (round(gain·y), clamped) ─► list[CodedCoolChic]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..architecture import residue_parameter
from ..config import EncoderConfig, NNPrediction
from ..framecodec import OUTPUTS, CodedCoolChic, FrameNetworks
from ..nn.frame import FrameEncoder
from ..nn.quantizer import hard_latents
from ..types import CoolChicRole, DataType, FrameType, Picture
from .evaluate import FrameEvaluator
from .latent_rdoq import latent_rdoq
from .loop import LambdaSteer, ProgressFn, intra_plan, run_plan
from .loss import Target, psnr
from .nn_prediction import Source, start_from_references
from .quantize_nn import quantize_coolchics
from .rdoq import rdoq


def picture_to_dense(picture: Picture, device: str = "cpu") -> Tensor:
    """[1, 3, H, W] float in [0, 1]; 4:2:0 chroma repeated to luma resolution."""
    m = float((1 << picture.bit_depth) - 1)
    h, w = picture.height, picture.width
    planes = []
    for i, plane in enumerate(picture.planes):
        t = torch.from_numpy(plane.astype(np.float32)) / m
        if i and picture.data_type == DataType.YUV420:
            t = t.repeat_interleave(2, 0).repeat_interleave(2, 1)[:h, :w]
        planes.append(t)
    return torch.stack(planes).unsqueeze(0).to(device)


def picture_target(picture: Picture, device: str = "cpu") -> Target:
    dense = picture_to_dense(picture, device)
    m = float((1 << picture.bit_depth) - 1)
    if picture.data_type == DataType.YUV420:
        uv = torch.stack([torch.from_numpy(p.astype(np.float32)) for p in picture.planes[1:]]).unsqueeze(0) / m
        return Target(dense, (dense[:, :1], uv.to(device)), picture.data_type)
    return Target(dense, (dense,), picture.data_type)


def encoder_gain(frame_type: FrameType, lmbda: float) -> float:
    """Cool-chic's latent gain: larger for intra frames at high quality."""
    if frame_type == FrameType.I and lmbda < 2e-4:
        return 24.0
    if frame_type == FrameType.I and lmbda < 5e-4:
        return 20.0
    return 16.0


def warmup_iterations(total: int) -> int:
    """Iterations per warm-up candidate for a total budget (Cool-chic 5's table, scaled below 1000)."""
    if total >= 12000:
        return 400
    if total >= 9000:
        return 200
    if total >= 4000:
        return 100
    return max(min(50, total // 20), 1)


@dataclass(frozen=True)
class FrameCodingResult:
    coded: list[CodedCoolChic]
    macs_per_pixel: float
    train_psnr: float


def code_intra(
    picture: Picture,
    config: EncoderConfig,
    lmbda: float,
    iterations: int,
    progress: ProgressFn | None = None,
    references: Sequence[FrameNetworks] = (),
    distances: Sequence[int] = (),
    frame_type: FrameType = FrameType.I,
    start: bool = True,
    steer: LambdaSteer | None = None,
) -> FrameCodingResult:
    """Overfit and quantize the Cool-chic of an I frame, or of a P/B frame (``frame_type``) coded
    without prediction: ``references`` (with their display ``distances``) are then its
    references' networks, which its modules may be copied or delta-coded from (as far as
    ``config.nn_prediction`` allows) and, with ``start``, start from (else they train from the
    warm-up's random candidates, as an I frame's). ``steer`` (rate control): λ starts at
    ``steer.lmbda`` and moves through the main phase; the networks are quantized at the λ it
    ends at, ``steer.lmbda`` after the call."""
    device = config.device
    if steer is not None:
        lmbda = steer.lmbda
    if config.nn_prediction == NNPrediction.OFF:
        references = ()
    target = picture_target(picture, device)
    param = residue_parameter(
        picture.height, picture.width, OUTPUTS[FrameType.I][0], config.intra_complexity,
        encoder_gain(FrameType.I, lmbda),
    )  # fmt: skip
    sources: list[dict[str, list[Source]]] = []
    change_rate = None

    def make(seed: int) -> FrameEncoder:
        nonlocal sources, change_rate
        torch.manual_seed(config.training_seed(seed))
        fe = FrameEncoder(FrameType.I, picture.data_type, picture.bit_depth, param).to(device)
        if references:
            sources, change_rate = start_from_references({CoolChicRole.RESIDUE: fe.residue}, references, distances, start)
        return fe

    s = config.settings
    warmup = min(s.warmup_iterations, warmup_iterations(iterations))
    first = make(0)
    if change_rate:  # started from its references' networks: that one candidate replaces the warm-up's random ones
        plan = intra_plan(iterations, lmbda, 1, warmup, s.final_iterations, s.validation_interval)
        fe, result = run_plan(lambda seed: first, target, [], lmbda, plan, progress, change_rate, steer)
    else:
        plan = intra_plan(iterations, lmbda, s.warmup_candidates, warmup, s.final_iterations, s.validation_interval)
        fe, result = run_plan(make, target, [], lmbda, plan, progress, steer=steer)
    if steer is not None:
        lmbda = steer.lmbda
    return finish(fe, target, [], lmbda, result.psnr, config.seed if s.nn_rdoq else None, s.latent_rdoq, progress,
                  sources, frame_type != FrameType.I, frame_type == FrameType.B,
                  config.nn_prediction == NNPrediction.ALL)  # fmt: skip


def finish(
    fe: FrameEncoder,
    target: Target,
    references: list[Tensor],
    lmbda: float,
    train_psnr: float,
    rdoq_seed: int | None = None,
    latent_passes: int = 0,
    progress: ProgressFn | None = None,
    sources: list[dict[str, list[Source]]] | None = None,
    predicted: bool = False,
    two_references: bool = False,
    delta: bool = True,
) -> FrameCodingResult:
    """Quantize the NNs of a trained FrameEncoder, each module in its cheapest mode (``sources``
    per Cool-chic: what it may be copied or delta-coded from; ``predicted``, ``two_references``,
    ``delta``: see ``quantize_nn``), then RDOQ them unless ``rdoq_seed`` is None, RDOQ the
    residue latents against those quantized NNs (``latent_passes``), and take the integer latents."""

    evaluator = FrameEvaluator(fe, target, references)

    roles = [CoolChicRole[name.upper()] for name in fe.coolchics.keys()]
    ccs = list(fe.coolchics.values())

    def stage(name: str) -> Callable[[int, int, float, float], None] | None:
        if progress is None:
            return None
        return lambda done, total, cost, mse: progress(name, done, total, cost, psnr(mse))

    networks = quantize_coolchics(ccs, evaluator, lmbda, target.n_pixels, sources, predicted, two_references, delta)
    if rdoq_seed is not None:
        networks = rdoq(ccs, networks, evaluator, lmbda, target.n_pixels, rdoq_seed, stage("NN RDOQ"))
    if latent_passes:
        latent_rdoq(fe, target, references, lmbda, latent_passes, stage("latent RDOQ"))
    coded = []
    for role, cc, q in zip(roles, ccs, networks):
        with torch.no_grad():
            latents = [hard_latents(g).cpu().numpy().astype(np.int64)[0, 0] for g in cc.scaled_latents()]
        coded.append(CodedCoolChic(role, cc.param, q.modules, latents, q.predictions))
    return FrameCodingResult(coded, fe.macs_per_pixel(), train_psnr)
