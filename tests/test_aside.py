"""The helper process that trains the intra check's alternative beside the inter coding (parallel.aside)."""

from __future__ import annotations

import argparse
import multiprocessing

import numpy as np
import pytest

from .conftest import make_picture
from coolchic_stream.config import EncoderConfig
from coolchic_stream.parallel.aside import HELPER_NAME, IntraAside, IntraRequest
from coolchic_stream.types import FrameType, Picture

CONFIG = EncoderConfig(preset="test", iterations=12)


def request(picture: Picture | None = None) -> IntraRequest:
    return IntraRequest(picture or make_picture(24, 16), CONFIG, 1e-2, CONFIG.intra_iterations, frame_type=FrameType.P)


def same(a, b) -> bool:
    return all(
        x.role == y.role and all(np.array_equal(p, q) for p, q in zip(x.latents, y.latents))
        and all(np.array_equal(m, n) for name in x.modules for m, n in zip(x.modules[name].weights, y.modules[name].weights))
        for x, y in zip(a.coded, b.coded)
    )  # fmt: skip


def helpers() -> list:
    return [p for p in multiprocessing.active_children() if p.name == HELPER_NAME]


def test_the_helper_trains_what_this_process_would_and_drops_what_is_not_wanted() -> None:
    wanted, unwanted = request(), request(make_picture(24, 16, shift=3))
    with IntraAside() as aside:
        first = aside.submit(unwanted)
        second = aside.submit(wanted)
        aside.drop(first)
        got = aside.take(second)  # the dropped result is read past
        assert got is not None and same(got, wanted.run())
        assert not aside.failed
    assert not helpers()


def test_large_requests_and_results_cross_without_blocking_either_side() -> None:
    """From CIF up a request (the picture) and a result (the latents) each outgrow the pipe: the
    encoder sending the next frame's request while the helper sent back the dropped one's result
    hung both (a CIF encode stalled forever with the default --aside auto)."""
    import threading

    big = [request(make_picture(352, 288, shift=s)) for s in range(3)]
    with IntraAside() as aside:
        def frames() -> None:
            first = aside.submit(big[0])
            aside.drop(first)
            second = aside.submit(big[1])  # sent while the first result comes back
            aside.drop(second)
            results.append(aside.take(aside.submit(big[2])))

        results: list = []
        worker = threading.Thread(target=frames, daemon=True)
        worker.start()
        worker.join(timeout=120)
        if worker.is_alive():  # hung: unblock it before failing
            aside._process.kill()
        assert not worker.is_alive(), "the encoder and its helper blocked each other"
        assert results and results[0] is not None and same(results[0], big[2].run())
    assert not helpers()


def test_a_result_skipped_without_being_dropped_is_a_bug_said_aloud() -> None:
    with IntraAside() as aside:
        aside.submit(request())
        later = aside.submit(request())
        with pytest.raises(RuntimeError, match="nobody dropped"):
            aside.take(later)


def test_a_helper_that_dies_leaves_the_training_to_the_encoder() -> None:
    with IntraAside() as aside:
        ticket = aside.submit(request())
        aside._process.kill()
        assert aside.take(ticket) is None and aside.failed
        assert aside.submit(request()) is None  # not restarted: the encoder trains alone from here
    assert not helpers()


def test_an_error_in_the_helper_reaches_the_encoder() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine where training on cuda fails")
    broken = IntraRequest(make_picture(24, 16), EncoderConfig(preset="test", device="cuda"), 1e-2, 10)
    with IntraAside() as aside:
        ticket = aside.submit(broken)
        with pytest.raises(RuntimeError):
            aside.take(ticket)
        assert not aside.failed  # the helper lives on
        assert aside.take(aside.submit(request())) is not None


def test_a_request_is_validated() -> None:
    with pytest.raises(ValueError):
        IntraRequest(make_picture(24, 16), CONFIG, 1e-2, 10, frame_type=FrameType.I)
    with pytest.raises(ValueError):
        IntraRequest(make_picture(24, 16), CONFIG, 1e-2, 10, distances=(1,))


@pytest.mark.parametrize(
    "option, jobs, ray, device, expected",
    [("auto", None, None, "cpu", True), ("auto", 2, None, "cpu", False), ("auto", None, "local", "cpu", False),
     ("auto", None, None, "cuda", False), ("on", 2, None, "cpu", True), ("off", None, None, "cpu", False)],
)  # fmt: skip
def test_the_cli_trains_aside_when_one_process_codes_on_a_machine_with_cores_to_spare(
    monkeypatch, option, jobs, ray, device, expected
) -> None:
    from coolchic_stream import cli

    monkeypatch.setattr(cli.os, "cpu_count", lambda: 2)
    args = argparse.Namespace(aside=option, jobs=jobs, ray=ray)
    assert cli._aside(args, argparse.Namespace(device=device)) is expected
    monkeypatch.setattr(cli.os, "cpu_count", lambda: 1)
    assert cli._aside(args, argparse.Namespace(device=device)) is (expected and option == "on")
