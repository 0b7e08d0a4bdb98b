"""tools/bench_motion.py: the estimators it compares, on a picture whose motion is known."""

from __future__ import annotations

import pytest
import torch

from coolchic_stream.train.loss import Target
from coolchic_stream.types import DataType
from tools.bench_motion import estimators


def _smooth_texture(h: int, w: int) -> torch.Tensor:
    """[1, 3, h, w] in [0, 1]: low-pass noise, so block matching has something to lock onto."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, h // 4, w // 4)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def test_a_translated_picture_is_found_and_its_uncovered_share_reported() -> None:
    big = _smooth_texture(64, 80)
    reference = big[..., 8:40, 8:56]  # 32 x 48
    target = big[..., 14:46, 11:59]  # the same scene 6 rows down, 3 columns right
    out = estimators(Target.from_dense(target.contiguous(), DataType.YUV444), reference.contiguous())
    assert out["new"][0] == pytest.approx(100 * (1 - (32 - 6) * (48 - 3) / (32 * 48)))
    # the global translation predicts the covered part exactly; the zero motion nothing like it
    assert out["global"][0] > out["zero"][0] + 6
    assert out["block"][0] >= out["global"][0] - 0.5
