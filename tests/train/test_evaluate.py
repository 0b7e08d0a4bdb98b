"""FrameEvaluator: a focused evaluation equals a full forward bit for bit, for every module of
every Cool-chic of I, P and B frames."""

from __future__ import annotations

import pytest
import torch

from coolchic_stream.architecture import motion_parameter, residue_parameter
from coolchic_stream.config import Complexity
from coolchic_stream.entropy.nn_weights import MODULE_NAMES
from coolchic_stream.framecodec import OUTPUTS
from coolchic_stream.nn.frame import FrameEncoder
from coolchic_stream.nn.intercoding import InterCodingModule
from coolchic_stream.train.coding import picture_target
from coolchic_stream.train.evaluate import FrameEvaluator
from coolchic_stream.types import DataType, FrameType

from ..conftest import make_picture


def frame_encoder(frame_type: FrameType, data_type: DataType, width: int = 29, height: int = 21) -> FrameEncoder:
    torch.manual_seed(1)
    n_res, n_mot = OUTPUTS[frame_type]
    if frame_type == FrameType.I:
        fe = FrameEncoder(frame_type, data_type, 8, residue_parameter(height, width, n_res, Complexity.MOP))
    else:
        n_refs = 1 if frame_type == FrameType.P else 2
        fe = FrameEncoder(
            frame_type, data_type, 8, residue_parameter(height, width, n_res, Complexity.MOP),
            motion_parameter(height, width, n_mot, Complexity.MOP), InterCodingModule(frame_type, [(0, 0)] * n_refs),
        )  # fmt: skip
    with torch.no_grad():  # no all-zero layer, and latents that round to a spread of integers
        for p in fe.nn_parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        for g in fe.latent_parameters():
            g.copy_(torch.randn_like(g) * 0.3)
    return fe


@pytest.mark.parametrize(
    "frame_type,data_type",
    [(FrameType.I, DataType.RGB), (FrameType.I, DataType.YUV420), (FrameType.P, DataType.YUV420), (FrameType.B, DataType.YUV444)],
)
def test_focused_evaluations_equal_full_forwards(frame_type, data_type):
    fe = frame_encoder(frame_type, data_type)
    target = picture_target(make_picture(29, 21, data_type, seed=2))
    n_refs = {FrameType.I: 0, FrameType.P: 1, FrameType.B: 2}[frame_type]
    refs = [picture_target(make_picture(29, 21, data_type, seed=3 + i)).dense for i in range(n_refs)]
    focused = FrameEvaluator(fe, target, refs)
    full = FrameEvaluator(fe, target, refs)
    baseline = full()
    tries = moved = 0
    for cc in fe.coolchics.values():
        for name in MODULE_NAMES:
            focused.focus(cc, name)
            assert focused() == full()
            weights, biases = cc.nn_modules()[name]
            for p in (*weights, *biases):
                saved = p.detach().clone()
                with torch.no_grad():
                    p.add_(torch.randn_like(p) * 0.05)
                changed = focused()
                assert changed == full()  # exact, not close
                tries, moved = tries + 1, moved + (changed != baseline)
                with torch.no_grad():
                    p.copy_(saved)
    assert moved > 0.8 * tries  # the perturbations do reach the cost
    focused.focus(None)
    assert focused() == full()
