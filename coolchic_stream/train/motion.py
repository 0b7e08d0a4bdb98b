"""Motion before the joint phase: estimate a flow, then pre-train the motion Cool-chic to predict.

    refs ─► global translation per ref ─► block flow (nn.motion.estimate_flow) ─► flow prediction PSNR
    candidate "flow":  regress the block flow (short) ─► photometric pre-training
    candidate "plain": photometric pre-training only, from the same start
        ─► keep the cheaper in D_pred + RATE_GAIN·λ·R_motion ─► MotionReport (figures for --stats / benchmarks)

Why photometric: the block flow is noisy where blocks are flat or occluded, and a motion Cool-chic
that regresses it spends its bits reproducing that noise (on the shipped sample, 7<-0 regressed for
600 iterations predicted 25.3 dB against the flow's 27.1). Trained on the warped prediction's error
it keeps the vectors that predict and smooths the rest; it still lands below the flow's own
prediction (tools/bench_motion.py prints by how much). The short regression first puts it in the
flow's basin for large motions that the warp's local gradient cannot find alone; the plain
candidate wins where the block flow misleads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..nn.coolchic import CoolChicEncoder, QuantizerSettings
from ..nn.frame import FrameEncoder
from ..nn.quantizer import NoiseType, QuantizerMode
from ..spec import MOTION_BLOCK
from ..types import DataType
from .loss import Target, distortion
from .nn_prediction import ChangeRate

__all__ = [
    "FlowEstimate", "MotionReport", "estimate_motion", "flow_prediction", "matching_channels", "pretrain_iterations",
    "pretrain_motion",
]  # fmt: skip

FLOW_REGRESSION_SHARE = 4  # the flow candidate regresses the block flow for 1/4 of its iterations
PRETRAIN_SHARE = 0.3  # iterations per candidate, as a share of an I frame's
# Pre-training weighs the motion's rate this many times the frame's λ (the joint phase then uses
# λ itself). At 1x the motion Cool-chic chases the last tenth of a dB of prediction with detail
# that the joint phase cannot give back: on BBB 352x288 (tools/rd_benchmark.py, README) the B
# frames' motion streams came out 50 % larger than before photometric pre-training; at 10x the
# clip's BD-rate against format 3.0 went from -19.7 to -30.3 %.
RATE_GAIN = 10.0
# Adam's rate. 3e-2 reached 1-1.5 dB closer to the flow's prediction in 300 iterations on the
# shipped sample, but each step moves a latent by up to 3e-2 x the encoder gain (half a quantization
# step): on CIF BBB 57- both candidates ended dearer than the untrained start (P8: 11 550 and
# 14 752 bits of motion, cost 1.59e-3 and 1.99e-3 against 1.16e-3), and the depth-3 B frames, with
# the shortest joint phase, kept 3 000+ non-zero motion latents (2.2 kbit where a neighbour spent
# 240 at the same distortion). At 1e-2 the kept candidate costs 5.4e-4 there (1 127 bits).
_LR = 1e-2


@dataclass(frozen=True)
class FlowEstimate:
    """Motion found on the source before training.

    translations: integer global translation (ty, tx) per reference.
    flow: [1, 2·n_refs, ceil(H/4), ceil(W/4)] block flow per reference, relative to its translation.
    psnr: PSNR of each reference warped by translation + flow, against the frame (dB).
    """

    translations: tuple[tuple[int, int], ...]
    flow: Tensor
    psnr: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.flow.shape[1] != 2 * len(self.translations) or len(self.psnr) != len(self.translations):
            raise ValueError("one translation, flow pair and PSNR per reference")


@dataclass(frozen=True)
class MotionReport:
    """What motion pre-training reached, per reference (dB), and which candidate was kept."""

    flow_psnr: tuple[float, ...]
    pretrained_psnr: tuple[float, ...]
    candidate: str  # "flow" or "plain"
    motion_bits: float  # estimated latent bits of the kept candidate
    tried: tuple[tuple[str, tuple[float, ...], float], ...] = ()  # (candidate, PSNR per reference, bits) each

    def __post_init__(self) -> None:
        if self.candidate not in ("flow", "plain"):
            raise ValueError(f"candidate {self.candidate!r} is not flow or plain")
        if len(self.flow_psnr) != len(self.pretrained_psnr):
            raise ValueError("one flow and one pre-trained PSNR per reference")


def _grid(target: Target) -> tuple[int, int]:
    """Motion blocks per column and row: the motion output's size, cropped."""
    h, w = target.dense.shape[-2:]
    return -(-h // MOTION_BLOCK), -(-w // MOTION_BLOCK)


def _psnr(mse: float) -> float:
    return 100.0 if mse <= 0 else -10.0 * math.log10(mse)


def matching_channels(dense: Tensor, data_type: DataType) -> Tensor:
    """What motion is matched on: luma for YUV (the channel mean lets flat, low-contrast chroma
    blur the match: on the shipped sample 7<-0 predicts at 26.3 dB PSNR-YUV from a flow matched on
    the mean, 30.8 dB from one matched on luma), all channels for RGB."""
    return dense if data_type == DataType.RGB else dense[:, :1]


@torch.no_grad()
def flow_prediction(target: Tensor, reference: Tensor, data_type: DataType) -> tuple[tuple[int, int], Tensor, Tensor]:
    """Global translation, then block flow on the matching channels; both pictures [1, 3, H, W].

    Returns ((ty, tx), flow [1, 2, ceil(H/4), ceil(W/4)] relative to the translation, the
    reference warped by both [1, 3, H, W]). The encoder's motion start and the lookahead share it.
    """
    from ..nn.motion import estimate_flow, global_translation, shift_clamped
    from ..nn.warp import upsample_motion, warp

    match = matching_channels(target, data_type)
    ty, tx = global_translation(match, matching_channels(reference, data_type))
    shifted = shift_clamped(reference, int(ty), int(tx))
    flow = estimate_flow(match, matching_channels(shifted, data_type))
    return (int(ty), int(tx)), flow, warp(shifted, upsample_motion(flow, *target.shape[-2:]))


def estimate_motion(target: Target, refs: list[Tensor]) -> FlowEstimate:
    """Global translation then block flow of the frame against each (decoded) reference."""
    predictions = [flow_prediction(target.dense, ref, target.data_type) for ref in refs]
    return FlowEstimate(
        tuple(t for t, _, _ in predictions),
        torch.cat([f for _, f, _ in predictions], dim=1),
        tuple(_psnr(float(distortion(p, target))) for _, _, p in predictions),
    )


def _prediction_errors(fe: FrameEncoder, raw: Tensor, refs: list[Tensor], target: Target) -> list[Tensor]:
    """Distortion of each reference warped by its flow ([1, 2·n_refs, h4, w4] motion output)."""
    h, w = target.dense.shape[-2:]
    flows = fe.inter.flows(raw, h, w)
    from ..nn.warp import warp

    return [distortion(warp(ref, v), target) for ref, v in zip(refs, flows)]


def _train(fe: FrameEncoder, refs: list[Tensor], target: Target, flow: Tensor | None, regress: int, iterations: int,
           lmbda: float, change_rate: ChangeRate | None) -> None:
    """``regress`` iterations on the flow (λ×20 like Cool-chic's pre-training), then photometric ones."""
    motion = fe.motion
    optimizer = torch.optim.Adam(motion.parameters(), lr=_LR)
    gh, gw = _grid(target)
    n_px = target.n_pixels
    norm = float(flow.abs().max().clamp(min=1.0)) ** 2 if flow is not None else 1.0
    motion.train()
    fe.inter.train()
    for it in range(iterations):
        t = it / max(iterations - 1, 1)
        out = motion(QuantizerSettings(QuantizerMode.SOFTROUND, NoiseType.KUMARASWAMY, 2.0, 0.3 - 0.2 * t))
        raw = out.raw[..., :gh, :gw]
        bits = out.rate.sum() + (change_rate() if change_rate else 0.0)
        if it < regress and flow is not None:
            loss = ((raw - flow) ** 2).mean() / norm + 20 * lmbda * bits / n_px
        else:
            loss = torch.stack(_prediction_errors(fe, raw, refs, target)).mean() + lmbda * bits / n_px
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    motion.eval()
    fe.inter.eval()


@torch.no_grad()
def _evaluate(fe: FrameEncoder, refs: list[Tensor], target: Target, lmbda: float,
              change_rate: ChangeRate | None) -> tuple[float, list[float], float]:
    """(D_pred + λ·bpp of the motion, per-reference prediction MSE, motion bits) with quantized latents."""
    gh, gw = _grid(target)
    out = fe.motion()
    errors = [float(e) for e in _prediction_errors(fe, out.raw[..., :gh, :gw], refs, target)]
    bits = float(out.rate.sum()) + (float(change_rate()) if change_rate else 0.0)
    return sum(errors) / len(errors) + lmbda * bits / target.n_pixels, errors, bits


def pretrain_iterations(intra_iterations: int) -> int:
    """Pre-training iterations of each candidate for a stream of ``intra_iterations`` per I frame."""
    return max(int(intra_iterations * PRETRAIN_SHARE), 5)


def pretrain_motion(fe: FrameEncoder, refs: list[Tensor], target: Target, estimate: FlowEstimate, lmbda: float,
                    iterations: int, change_rate: ChangeRate | None = None) -> MotionReport:
    """Pre-train ``fe.motion`` (both candidates, ``iterations`` each) and keep the cheaper one.

    Both the training and the choice between candidates weigh the rate at ``RATE_GAIN``·λ.
    """
    lmbda = lmbda * RATE_GAIN
    motion: CoolChicEncoder = fe.motion
    start = {k: v.detach().clone() for k, v in motion.state_dict().items()}
    kept: tuple[float, list[float], float, str, dict[str, Tensor]] | None = None
    tried = []
    for name, regress in (("flow", max(iterations // FLOW_REGRESSION_SHARE, 1)), ("plain", 0)):
        motion.load_state_dict(start)
        _train(fe, refs, target, estimate.flow.to(target.dense.device), regress, iterations, lmbda, change_rate)
        cost, errors, bits = _evaluate(fe, refs, target, lmbda, change_rate)
        tried.append((name, tuple(_psnr(e) for e in errors), bits))
        if kept is None or cost < kept[0]:
            kept = (cost, errors, bits, name, {k: v.detach().clone() for k, v in motion.state_dict().items()})
    assert kept is not None
    motion.load_state_dict(kept[4])
    return MotionReport(estimate.psnr, tuple(_psnr(e) for e in kept[1]), kept[3], kept[2], tuple(tried))
