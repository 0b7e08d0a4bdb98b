"""Allocator tuning: applied once, harmless, and never changes a decoded sample."""

from __future__ import annotations

import subprocess
import sys

import pytest

from coolchic_stream import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_tune_allocator_is_accepted_once_per_process():
    code = (
        "from coolchic_stream import allocator as a; "
        "first = a.tune_allocator(); second = a.tune_allocator(); "
        "print(first, second)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True"]


def test_tune_allocator_off_linux_is_a_no_op(monkeypatch):
    monkeypatch.setattr(allocator, "_tuned", None)
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.tune_allocator() is False
