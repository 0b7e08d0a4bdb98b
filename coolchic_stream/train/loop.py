"""Overfitting a FrameEncoder: phased training with validation and best-parameter reload.

    warm-up: N candidates ─► keep best 2 ─► keep best 1
          ─► main phase (cosine LR, soft-round temperature and noise annealed)
          ─► final phase (hard rounding, NN weights only, low LR)
    every ``validation_interval`` iterations: hard-rounded forward, keep the best parameters
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from torch import Tensor

from ..nn.coolchic import QuantizerSettings
from ..nn.frame import FrameEncoder
from ..nn.quantizer import NoiseType, QuantizerMode
from .loss import Target, psnr, rd_loss
from .soap import Soap

ProgressFn = Callable[[str, int, int, float, float], None]  # phase, iteration, total, loss, psnr


@dataclass(frozen=True)
class Phase:
    """One training phase; quantizer parameters are annealed linearly from start to end."""

    name: str
    iterations: int
    lr_start: float
    lr_end: float
    mode: QuantizerMode = QuantizerMode.SOFTROUND
    noise: NoiseType = NoiseType.GAUSSIAN
    noise_start: float = 0.2
    noise_end: float = 0.15
    temperature_start: float = 0.3
    temperature_end: float = 0.1
    train_latents: bool = True
    validation_interval: int = 100
    use_rate: bool = True
    soap: bool = True

    def quantizer(self, progress: float) -> QuantizerSettings:
        return QuantizerSettings(
            self.mode,
            self.noise,
            self.noise_start + (self.noise_end - self.noise_start) * progress,
            self.temperature_start + (self.temperature_end - self.temperature_start) * progress,
        )

    def lr(self, iteration: int) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * iteration / max(self.iterations, 1)))
        return self.lr_end + (self.lr_start - self.lr_end) * cosine


@dataclass
class Evaluation:
    loss: float
    mse: float
    bpp: float

    @property
    def psnr(self) -> float:
        return psnr(self.mse)


ChangeRateFn = Callable[[], Tensor]  # bits the NN changes from their start will cost (nn_prediction.ChangeRate)


class LambdaSteer(Protocol):
    """Moves λ during a phase from the frame's running rate (rate control: ``ratecontrol.Steer``)."""

    steps: int  # updates spread over a phase
    lmbda: float  # the λ to train on; after training, the frame's λ

    def acts(self, progress: float) -> bool: ...

    def update(self, progress: float, latent_bits: float) -> float: ...


def _with_changes(loss: Tensor, change_rate: ChangeRateFn | None, lmbda: float, target: Target) -> Tensor:
    return loss if not change_rate else loss + lmbda * change_rate() / target.n_pixels


def evaluate(
    fe: FrameEncoder, target: Target, references: list[Tensor], lmbda: float, change_rate: ChangeRateFn | None = None
) -> Evaluation:
    """Hard-rounded forward, as the decoder will see it (up to NN quantization)."""
    was_training = fe.training
    fe.eval()
    with torch.no_grad():
        out = fe(references)
        loss, mse, bpp = rd_loss(out.decoded, out.rate, target, lmbda)
        loss = _with_changes(loss, change_rate, lmbda, target)
    fe.train(was_training)
    return Evaluation(float(loss), float(mse), float(bpp))


class Optimizers:
    """SOAP for the NN weights, fused Adam for the latents, stepped together (Cool-chic 5's split)."""

    def __init__(self, nn_params: list[Tensor], latents: list[Tensor], lr: float, use_soap: bool) -> None:
        self.parts: list[torch.optim.Optimizer] = []
        if use_soap:
            self.parts.append(Soap(nn_params, lr=lr))
        else:
            latents = [*nn_params, *latents]
        if latents:
            try:
                self.parts.append(torch.optim.Adam(latents, lr=lr, fused=True))
            except (RuntimeError, TypeError, ValueError):
                self.parts.append(torch.optim.Adam(latents, lr=lr))

    def set_lr(self, lr: float) -> None:
        for opt in self.parts:
            for g in opt.param_groups:
                g["lr"] = lr

    def zero_grad(self) -> None:
        for opt in self.parts:
            opt.zero_grad(set_to_none=True)

    def step(self) -> None:
        for opt in self.parts:
            opt.step()


def _snapshot(fe: FrameEncoder) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in fe.state_dict().items()}


def _store(snapshot: dict[str, Tensor], fe: FrameEncoder) -> None:
    """Copy the current parameters into a snapshot's preallocated tensors (no deepcopy)."""
    with torch.no_grad():
        for k, v in fe.state_dict().items():
            snapshot[k].copy_(v)


def train_phase(
    fe: FrameEncoder,
    target: Target,
    references: list[Tensor],
    lmbda: float,
    phase: Phase,
    progress: ProgressFn | None = None,
    change_rate: ChangeRateFn | None = None,
    steer: LambdaSteer | None = None,
) -> Evaluation:
    """Run one phase; returns the best validation and leaves the best parameters loaded.
    ``change_rate``: the NN's rate as changes from a reference's networks, counted in the loss.
    ``steer``: λ is moved at ``steer.steps`` points of the phase from the hard-rounded latent rate
    (the phase then starts from ``steer.lmbda``, and the best parameters are judged at the λ in
    force: a move restarts the comparison from the current ones)."""
    if steer is not None:
        lmbda = steer.lmbda
    params_nn = fe.nn_parameters()
    if not phase.train_latents:
        for p in fe.latent_parameters():
            p.requires_grad_(False)
    latents = fe.latent_parameters() if phase.train_latents else []
    optimizer = Optimizers(params_nn, latents, phase.lr_start, phase.soap)
    best = evaluate(fe, target, references, lmbda, change_rate)
    best_state = _snapshot(fe)
    fe.train()
    rd_lambda = lmbda if phase.use_rate else 0.0
    steer_every = max(phase.iterations // steer.steps, 1) if steer is not None else 0
    for it in range(1, phase.iterations + 1):
        optimizer.set_lr(phase.lr(it - 1))
        out = fe(references, phase.quantizer((it - 1) / max(phase.iterations - 1, 1)))
        loss, _, _ = rd_loss(out.decoded, out.rate, target, rd_lambda)
        loss = _with_changes(loss, change_rate, rd_lambda, target)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params_nn, 1e-1)
        optimizer.step()
        if steer is not None and it % steer_every == 0 and it < phase.iterations and steer.acts(it / phase.iterations):
            now = evaluate(fe, target, references, lmbda, change_rate)
            moved = steer.update(it / phase.iterations, now.bpp * target.n_pixels)
            if moved != lmbda:
                lmbda = moved
                rd_lambda = lmbda if phase.use_rate else 0.0
                best = evaluate(fe, target, references, lmbda, change_rate)
                _store(best_state, fe)
        if it % phase.validation_interval == 0 or it == phase.iterations:
            current = evaluate(fe, target, references, lmbda, change_rate)
            if current.loss < best.loss:
                best = current
                _store(best_state, fe)
            if progress is not None:
                progress(phase.name, it, phase.iterations, best.loss, best.psnr)
    fe.load_state_dict(best_state)
    for p in fe.latent_parameters():
        p.requires_grad_(True)
    fe.eval()
    return best


@dataclass(frozen=True)
class TrainingPlan:
    """Whole recipe of one frame: warm-up, main and final phases."""

    warmup_candidates: int
    warmup: Phase
    main: Phase
    final: Phase


def intra_plan(
    total_iterations: int, lmbda: float, warmup_candidates: int, warmup_iterations: int,
    final_iterations: int, validation_interval: int,
) -> TrainingPlan:  # fmt: skip
    """Cool-chic 5's intra recipe scaled to a total iteration budget."""
    sigma0 = max((-0.432 * math.log10(lmbda) + 0.747) / 10.0, 0.05)
    candidates = max(warmup_candidates, 1)
    warm_total = (candidates + min(candidates, 2)) * warmup_iterations if candidates > 1 else 0
    final = min(final_iterations, max(total_iterations // 10, 1))
    main = max(total_iterations - warm_total - final, 1)
    return TrainingPlan(
        warmup_candidates=candidates,
        warmup=Phase("warm-up", warmup_iterations, 1e-2, 1e-2, noise_start=sigma0, noise_end=sigma0,
                     temperature_start=0.35, temperature_end=0.35,
                     validation_interval=max(warmup_iterations, 1)),  # fmt: skip
        main=Phase("main", main, 1e-2, 1e-5, noise_start=sigma0 * 1.1, noise_end=sigma0 * 0.75,
                   temperature_start=0.35, temperature_end=0.08,
                   validation_interval=min(validation_interval, main)),  # fmt: skip
        final=Phase("final", final, 1e-4, 1e-5, mode=QuantizerMode.HARDROUND, noise=NoiseType.NONE,
                    train_latents=False, validation_interval=max(final // 2, 1)),  # fmt: skip
    )


def run_plan(
    make: Callable[[int], FrameEncoder],
    target: Target,
    references: list[Tensor],
    lmbda: float,
    plan: TrainingPlan,
    progress: ProgressFn | None = None,
    change_rate: ChangeRateFn | None = None,
    steer: LambdaSteer | None = None,
) -> tuple[FrameEncoder, Evaluation]:
    """Warm-up candidates (``make(seed)`` builds one), then main and final phases on the best.
    ``change_rate``: see :func:`train_phase`; it watches the parameters of one FrameEncoder, so it
    goes with a plan of a single candidate (``make(0)``). ``steer``: moves λ through the main
    phase (:func:`train_phase`); the final phase keeps the λ it reached."""
    if change_rate and plan.warmup_candidates > 1:
        raise ValueError("a change rate applies to a single candidate")
    if plan.warmup_candidates > 1:
        pool = []
        for seed in range(plan.warmup_candidates):
            fe = make(seed)
            pool.append((train_phase(fe, target, references, lmbda, plan.warmup), seed, fe))
            if progress is not None:
                progress("warm-up", seed + 1, plan.warmup_candidates, min(p[0].loss for p in pool), max(p[0].psnr for p in pool))
        pool.sort(key=lambda p: p[0].loss)
        pool = pool[:2]
        pool = [(train_phase(fe, target, references, lmbda, plan.warmup), seed, fe) for _, seed, fe in pool]
        pool.sort(key=lambda p: p[0].loss)
        fe = pool[0][2]
    else:
        fe = make(0)
    train_phase(fe, target, references, lmbda, plan.main, progress, change_rate, steer)
    if steer is not None:
        lmbda = steer.lmbda
    result = train_phase(fe, target, references, lmbda, plan.final, progress, change_rate)
    return fe, result
