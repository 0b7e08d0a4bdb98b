"""SOAP: Adam run in the eigenbasis of a Shampoo preconditioner (Vyas et al., 2024).

For a weight matrix W [m, n] (conv kernels are viewed as [out, in·k·k]) with gradient G:

    L ← β·L + (1-β)·G Gᵀ   [m, m]        R ← β·R + (1-β)·Gᵀ G   [n, n]
    Q_L, Q_R = eigenvectors of L, R (refreshed by one power iteration + QR every few steps)
    G' = Q_Lᵀ G Q_R  ─► Adam moments (first in weight space, second in the rotated space)
    W ← W - lr · Q_L (m' / (√v' + ε)) Q_Rᵀ - lr·wd·W

Sides longer than ``max_dim`` (and sides of length 1) keep the identity; a tensor with no
preconditioned side is plain Adam. A 1-D tensor (bias, 1-D filter) is one row: its entries
share one preconditioner. The NNs of a Cool-chic are tiny,
so the eigen-solves cost far less than one forward pass.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class Soap(torch.optim.Optimizer):
    def __init__(
        self,
        params,
        lr: float = 1e-2,
        betas: tuple[float, float] = (0.95, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_every: int = 10,
        max_dim: int = 256,
    ) -> None:
        if lr <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or precondition_every < 1:
            raise ValueError(f"invalid SOAP settings lr={lr} betas={betas} precondition_every={precondition_every}")
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "precondition_every": precondition_every, "max_dim": max_dim}  # fmt: skip
        super().__init__(params, defaults)

    @staticmethod
    def _matrix(t: Tensor) -> Tensor:
        return t.reshape(t.shape[0], -1) if t.dim() > 1 else t.reshape(1, -1)

    def _init_state(self, p: Tensor, max_dim: int) -> dict:
        g = self._matrix(p.grad)
        m, n = g.shape
        sides = [s if 1 < s <= max_dim else 0 for s in (m, n)]
        return {
            "step": 0,
            "exp_avg": torch.zeros_like(g),
            "exp_avg_sq": torch.zeros_like(g),
            "gg": [torch.zeros(s, s, dtype=g.dtype, device=g.device) if s else None for s in sides],
            "q": [None, None],
            "has_basis": not any(sides),  # nothing to precondition: Adam from the first step
        }

    @staticmethod
    def _project(x: Tensor, q: list[Tensor | None]) -> Tensor:
        if q[0] is not None:
            x = q[0].T @ x
        if q[1] is not None:
            x = x @ q[1]
        return x

    @staticmethod
    def _unproject(x: Tensor, q: list[Tensor | None]) -> Tensor:
        if q[0] is not None:
            x = q[0] @ x
        if q[1] is not None:
            x = x @ q[1].T
        return x

    @staticmethod
    def _accumulate(state: dict, g: Tensor, beta: float) -> None:
        if state["gg"][0] is not None:
            state["gg"][0].lerp_(g @ g.T, 1.0 - beta)
        if state["gg"][1] is not None:
            state["gg"][1].lerp_(g.T @ g, 1.0 - beta)

    @staticmethod
    def _eigenbasis(gg: Tensor) -> Tensor:
        # float64 eigh: tiny matrices, and rank-deficient ones must not fail
        _, vectors = torch.linalg.eigh(gg.double() + 1e-30 * torch.eye(gg.shape[0], dtype=torch.float64, device=gg.device))
        return vectors.flip(-1).to(gg.dtype)

    @staticmethod
    def _refresh(state: dict) -> None:
        """One power iteration towards the current eigenvectors; second moments follow the
        (re-sorted) basis so that the Adam statistics stay attached to their directions."""
        sq = state["exp_avg_sq"]
        for side in (0, 1):
            gg, q = state["gg"][side], state["q"][side]
            if gg is None:
                continue
            estimate = torch.diagonal(q.T @ gg @ q)
            order = torch.argsort(estimate, descending=True)
            q = q[:, order]
            sq = sq.index_select(side, order)
            q, _ = torch.linalg.qr(gg @ q)
            state["q"][side] = q
        state["exp_avg_sq"] = sq

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(self._init_state(p, group["max_dim"]))
                g = self._matrix(p.grad)
                if not state["has_basis"]:
                    # first sight of this tensor: only build the basis (as SOAP does)
                    self._accumulate(state, g, beta2)
                    state["q"] = [self._eigenbasis(x) if x is not None else None for x in state["gg"]]
                    state["has_basis"] = True
                    continue
                state["step"] += 1
                t = state["step"]
                q = state["q"]
                state["exp_avg"].lerp_(g, 1.0 - beta1)
                rotated = self._project(g, q)
                state["exp_avg_sq"].mul_(beta2).addcmul_(rotated, rotated, value=1.0 - beta2)
                direction = self._project(state["exp_avg"], q) / (state["exp_avg_sq"].sqrt().add_(group["eps"]))
                step_size = group["lr"] * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
                p.add_(self._unproject(direction, q).view_as(p), alpha=-step_size)
                if group["weight_decay"]:
                    p.mul_(1.0 - group["lr"] * group["weight_decay"])
                if any(x is not None for x in state["gg"]):
                    self._accumulate(state, g, beta2)
                    if t % group["precondition_every"] == 0:
                        self._refresh(state)
        return loss
