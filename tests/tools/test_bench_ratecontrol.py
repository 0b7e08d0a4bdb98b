"""tools/bench_ratecontrol.py: the λ it runs to land at a rate."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tools.bench_ratecontrol import between_lambdas, interpolate_lambda, main, mean_point, seed_bd_rates, seeded


def test_lambda_is_interpolated_in_the_log_log_plane() -> None:
    curve = [(4e-3, 50.0), (1e-3, 100.0), (2.5e-4, 200.0)]  # rate doubles when λ quarters
    assert interpolate_lambda(curve, 100.0) == pytest.approx(1e-3)
    assert interpolate_lambda(curve, 50 * math.sqrt(2)) == pytest.approx(2e-3)
    assert interpolate_lambda(curve, 25.0) == pytest.approx(1.6e-2)  # beyond the curve: its end segment
    assert interpolate_lambda(list(reversed(curve)), 400.0) == pytest.approx(6.25e-5)


def test_the_denser_curve_spaces_its_lambdas_evenly_in_log_between_neighbours() -> None:
    assert between_lambdas([4e-3, 1e-3, 1.6e-2], 1) == pytest.approx([2e-3, 8e-3])
    assert between_lambdas([1e-3, 8e-3], 2) == pytest.approx([2e-3, 4e-3])
    assert between_lambdas([1e-3], 1) == [] and between_lambdas([1e-3, 4e-3], 0) == []


def test_a_point_of_several_seeds_is_their_mean() -> None:
    runs = [{"kbps": 10.0, "psnr": 30.0, "seconds": 4.0, "base_lambda": 1e-3, "types": "IP"},
            {"kbps": 14.0, "psnr": 31.0, "seconds": 6.0, "base_lambda": 4e-3, "types": "IPi"}]  # fmt: skip
    point = mean_point(runs)
    assert (point["kbps"], point["psnr"], point["seconds"]) == (12.0, 30.5, 5.0)
    assert point["base_lambda"] == pytest.approx(2e-3) and point["seeds"] == runs
    assert mean_point(runs[:1]) == runs[0]  # one seed: that encode


def test_each_seed_is_judged_against_its_own_lambda_encodes() -> None:
    """Seed 1's rate-controlled encodes cost 10 % more than its λ encodes at the same PSNR, seed 0's
    lie on its curve: the per-seed figures say so, whatever the other seed's curve is."""

    def point(rate: float, dearer: float, shift: float) -> dict:
        return {"kbps": rate * dearer, "psnr": 10 * math.log10(rate) + shift}

    lam = [{"seeds": [point(r, 1.0, 0.0), point(r, 1.0, 1.5)]} for r in (10.0, 20.0, 40.0, 80.0)]
    rc = [{"seeds": [point(r, 1.0, 0.0), point(r, 1.1, 1.5)]} for r in (15.0, 30.0, 60.0)]
    assert seed_bd_rates(rc, lam, []) == pytest.approx([0.0, 10.0], abs=1e-6)
    one = [{"kbps": p["seeds"][0]["kbps"], "psnr": p["seeds"][0]["psnr"]} for p in rc]  # one seed: the point itself
    assert seed_bd_rates(one, lam[:1], [(40.0, 10 * math.log10(40.0)), (80.0, 10 * math.log10(80.0))]) == pytest.approx([0.0], abs=1e-6)


def test_an_encode_at_another_seed_has_its_own_files() -> None:
    assert seeded(Path("o/rc_30k.ccv"), ["--bitrate", "30k"], 0) == (Path("o/rc_30k.ccv"), ["--bitrate", "30k"])
    assert seeded(Path("o/rc_30k.ccv"), ["--bitrate", "30k"], 2) == (Path("o/rc_30k_s2.ccv"), ["--bitrate", "30k", "--seed", "2"])


def test_the_benchmark_runs_every_point_at_each_seed(tmp_path: Path, monkeypatch, capsys) -> None:
    """Each target and λ is encoded once per seed, each point is the mean of its seeds' encodes
    (encodes replaced by a world where rate goes as λ^-1/2 and each seed lands 2 % dearer)."""
    from tools import bench_ratecontrol

    calls = []

    def fake_encode(clip, out, option, args, seed=0):
        calls.append((option[0], option[1], seed))
        return {"option": option, "seed": seed}

    def fake_measure(run, frames, fps):
        flag, value = run["option"]
        aimed = float(value[:-1]) if flag == "--bitrate" else 0.3 / math.sqrt(float(value))
        kbps = aimed * (1 + 0.02 * run["seed"])
        return {"kbps": kbps, "psnr": 20 + 10 * math.log10(kbps), "seconds": 1.0 + run["seed"],
                "base_lambda": (0.3 / kbps) ** 2, "lambdas": [], "types": "IP"}  # fmt: skip

    monkeypatch.setattr(bench_ratecontrol, "encode", fake_encode)
    monkeypatch.setattr(bench_ratecontrol, "measure", fake_measure)
    out = tmp_path / "rc"
    assert main(["--clip", "pan", "--width", "16", "--height", "16", "--frames", "1", "--targets", "30,60",
                 "--seeds", "3", "--out", str(out)]) == 0  # fmt: skip
    result = json.loads((out / "rc.json").read_text())
    lambdas = [m["lambda"] for m in result["lambda_matched"] + result["lambda_between"]]
    assert len(lambdas) == 3 and sorted(calls) == sorted(
        [("--bitrate", f"{t}k", s) for t in (30, 60) for s in range(3)] + [("--lambda", f"{lm:.4g}", s) for lm in lambdas for s in range(3)]
    )  # fmt: skip
    for point in result["rate_controlled"]:
        assert point["kbps"] == pytest.approx(point["target"] * 1.02) and len(point["seeds"]) == 3
    assert result["bd_rate_vs_lambda_pct"] == pytest.approx(0.0, abs=0.5)  # the same world: on the λ curve
    assert result["bd_rate_per_seed_pct"] == pytest.approx([0.0] * 3, abs=0.5)
    printed = capsys.readouterr().out
    assert "spread over the seeds" in printed and "each seed alone" in printed
