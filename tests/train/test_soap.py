"""SOAP optimizer: Adam where nothing is preconditioned, faster than Adam on a rotated ill-conditioned problem."""

from __future__ import annotations

import pytest
import torch

from coolchic_stream.train.soap import Soap


def _least_squares(opt_factory, steps: int) -> float:
    """min ||W X - Y||² with inputs whose covariance is ill-conditioned in a rotated basis."""
    g = torch.Generator().manual_seed(3)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=g))
    x = rotation @ torch.diag(torch.logspace(0, -2, 6)) @ torch.randn(6, 256, generator=g)
    w_true = torch.randn(5, 6, generator=g)
    y = w_true @ x
    w = torch.nn.Parameter(torch.zeros(5, 6))
    opt = opt_factory([w])
    for _ in range(steps):
        loss = ((w @ x - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(((w.detach() @ x - y) ** 2).mean())


def test_soap_beats_adam_on_rotated_ill_conditioned_least_squares() -> None:
    soap = _least_squares(lambda p: Soap(p, lr=3e-2, weight_decay=0.0, precondition_every=5), 300)
    adam = _least_squares(lambda p: torch.optim.Adam(p, lr=3e-2, betas=(0.95, 0.95)), 300)
    assert soap < 0.5 * adam


def test_unpreconditioned_tensor_follows_adam() -> None:
    """A tensor with no side in 2..max_dim is plain Adam (bias-corrected, same betas)."""
    torch.manual_seed(0)
    start = torch.randn(5, 1)
    targets = [torch.randn(5, 1) for _ in range(20)]
    a = torch.nn.Parameter(start.clone())
    b = torch.nn.Parameter(start.clone())
    soap = Soap([a], lr=1e-2, betas=(0.9, 0.99), eps=1e-12, weight_decay=0.0, max_dim=4)
    adam = torch.optim.Adam([b], lr=1e-2, betas=(0.9, 0.99), eps=1e-12)
    for t in targets:
        for p, opt in ((a, soap), (b, adam)):
            opt.zero_grad()
            ((p - t) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_weight_decay_shrinks_weights_without_gradient_signal() -> None:
    w = torch.nn.Parameter(torch.ones(3, 3))
    opt = Soap([w], lr=1e-1, weight_decay=0.5)
    for _ in range(5):
        opt.zero_grad()
        (w * 0).sum().backward()
        opt.step()
    assert float(w.detach().abs().max()) < 1.0


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="SOAP"):
        Soap([torch.nn.Parameter(torch.zeros(2))], lr=0.0)
