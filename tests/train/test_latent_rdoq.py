"""Latent RDOQ: a latent's footprint bounds what it changes, the cost change it predicts from
the cells is the measured one, the cost only goes down, latents stay codable integers."""

from __future__ import annotations

import pytest
import torch

from coolchic_stream.architecture import residue_parameter
from coolchic_stream.config import PRESETS, Complexity, Preset
from coolchic_stream.framecodec import OUTPUTS
from coolchic_stream.nn.frame import FrameEncoder, to_planes
from coolchic_stream.spec import LATENT_MAX, LATENT_MIN
from coolchic_stream.train.coding import picture_target
from coolchic_stream.train.latent_rdoq import footprints, latent_rdoq
from coolchic_stream.train.loop import intra_plan, run_plan
from coolchic_stream.train.loss import distortion
from coolchic_stream.types import DataType, FrameType

from ..conftest import decode_packets, encode_pictures, make_picture

LMBDA = 2e-3


def trained(width: int, height: int, data_type: DataType, complexity: Complexity = Complexity.LOP):
    picture = make_picture(width, height, data_type, seed=1)
    target = picture_target(picture)
    param = residue_parameter(height, width, OUTPUTS[FrameType.I][0], complexity)

    def make(seed: int) -> FrameEncoder:
        torch.manual_seed(seed)
        return FrameEncoder(FrameType.I, data_type, 8, param)

    fe, _ = run_plan(make, target, [], LMBDA, intra_plan(60, LMBDA, 1, 10, 10, 20))
    return fe, target


def cost(fe: FrameEncoder, target) -> float:
    fe.eval()
    with torch.no_grad():
        out = fe([])
        return float(distortion(out.decoded, target)) + LMBDA * float(out.rate.sum()) / target.n_pixels


def test_a_latent_changes_nothing_outside_its_footprint():
    fe, _ = trained(70, 66, DataType.YUV420, Complexity.HOP)
    cc = fe.residue
    fe.eval()
    with torch.no_grad():
        base = fe([])
        base_planes = to_planes(base.decoded, DataType.YUV420)
        start = 0
        for fp, (h, w) in zip(footprints(cc), cc.param.grid_sizes):
            py, px = h // 2, w // 2
            grid = cc.latents[fp.level].data.view(h, w)
            saved = grid[py, px].clone()
            grid[py, px] += 5.0 / cc.param.encoder_gain
            trial = fe([])
            grid[py, px] = saved
            touched = False
            for plane, before, after in zip(range(2), base_planes, to_planes(trial.decoded, DataType.YUV420)):
                scale = 1 if plane == 0 else 2
                ys, xs = torch.nonzero((after - before).abs().sum(1)[0] > 0, as_tuple=True)
                touched |= ys.numel() > 0
                for pos, p in ((ys, py), (xs, px)):
                    if pos.numel():
                        assert scale * int(pos.min()) + scale - 1 >= 2**fp.level * p + fp.lo
                        assert scale * int(pos.max()) <= 2**fp.level * p + fp.hi
            bits = (trial.rate - base.rate)[start : start + h * w].view(h, w)
            ys, xs = torch.nonzero(bits != 0, as_tuple=True)
            assert touched or ys.numel()  # a change of 5 steps shows somewhere
            if ys.numel():
                assert int(ys.min()) >= py + fp.rate_lo[0] and int(ys.max()) <= py + fp.rate_hi[0]
                assert int(xs.min()) >= px + fp.rate_lo[1] and int(xs.max()) <= px + fp.rate_hi[1]
            other = torch.cat([(trial.rate - base.rate)[:start], (trial.rate - base.rate)[start + h * w :]])
            assert not bool(other.any())  # contexts never cross grids
            start += h * w


@pytest.mark.parametrize("width,height,data_type", [(33, 17, DataType.RGB), (29, 23, DataType.YUV420), (24, 20, DataType.YUV444)])
def test_the_predicted_gain_is_the_measured_one_and_the_cost_drops(width, height, data_type):
    fe, target = trained(width, height, data_type)
    before = cost(fe, target)
    kept, gained = latent_rdoq(fe, target, [], LMBDA, passes=4)
    after = cost(fe, target)
    assert kept > 0 and gained < 0  # a 60-iteration model always has latents worth a step
    assert after < before
    assert after - before == pytest.approx(gained, rel=1e-4, abs=1e-9)


def test_latents_stay_codable_integers_and_the_result_is_deterministic():
    runs = []
    for _ in range(2):
        fe, target = trained(26, 19, DataType.RGB)
        latent_rdoq(fe, target, [], LMBDA, passes=2)
        runs.append([g.detach() * fe.residue.param.encoder_gain for g in fe.residue.latents])
    for a, b in zip(*runs):
        assert torch.equal(a, b)
        assert torch.equal(torch.round(a), torch.round(a).clamp(LATENT_MIN, LATENT_MAX))
        assert torch.allclose(a, torch.round(a), atol=1e-4)  # exactly on the integer grid


def test_only_the_slower_presets_use_it():
    assert [PRESETS[p].latent_rdoq for p in Preset] == [0, 0, 0, 4]


def test_footprints_are_exact_where_nothing_cancels():
    """All weights and latents positive: every path carries the change, so a latent reaches
    exactly its footprint (the bound is tight, not merely safe)."""
    param = residue_parameter(96, 96, OUTPUTS[FrameType.I][0], Complexity.HOP)
    torch.manual_seed(0)
    fe = FrameEncoder(FrameType.I, DataType.RGB, 8, param)
    cc = fe.residue
    with torch.no_grad():
        for p in cc.nn_parameters():
            p.copy_(torch.rand_like(p) * 0.1 + 0.05)
        for g in cc.latents:
            g.fill_(3.0 / param.encoder_gain)
    fe.train()  # no output rounding or clamping that could hide a change
    with torch.no_grad():
        base = fe([])
        start = 0
        checked = 0
        for fp, (h, w) in zip(footprints(cc), param.grid_sizes):
            p = h // 2
            reach = (2**fp.level * p + fp.lo + 1, 2**fp.level * p + fp.hi)  # + 1: the 4:2:0 slack
            grid = cc.latents[fp.level].data.view(h, w)
            grid[p, p] += 2.0 / param.encoder_gain
            trial = fe([])
            grid[p, p] -= 2.0 / param.encoder_gain
            if reach[0] >= 0 and reach[1] < 96:
                ys, xs = torch.nonzero((trial.decoded - base.decoded).abs().sum(1)[0] > 0, as_tuple=True)
                assert (int(ys.min()), int(ys.max())) == reach and (int(xs.min()), int(xs.max())) == reach
                checked += 1
            if p + fp.rate_hi[0] < h and p + fp.rate_lo[1] >= 0 and p + fp.rate_hi[1] < w:
                ys, xs = torch.nonzero((trial.rate - base.rate)[start : start + h * w].view(h, w) != 0, as_tuple=True)
                assert (int(ys.min()) - p, int(ys.max()) - p) == (fp.rate_lo[0], fp.rate_hi[0])
                assert (int(xs.min()) - p, int(xs.max()) - p) == (fp.rate_lo[1], fp.rate_hi[1])
            start += h * w
        assert checked >= 3


@pytest.mark.parametrize("data_type", [DataType.YUV420, DataType.RGB])
def test_each_cell_holds_exactly_the_cost_change_of_its_own_latent(data_type):
    """A lattice tried in one forward = each of its latents tried alone (odd sizes, every grid)."""
    from coolchic_stream.train.latent_rdoq import _State, lattices

    fe, target = trained(71, 45, data_type, Complexity.MOP)
    cc = fe.residue
    gain = cc.param.encoder_gain
    weights = (1.0 / target.n_samples, LMBDA / target.n_pixels)
    fe.eval()
    base = _State.measure(fe, target, [])
    picked = {}
    for lattice in lattices(cc):  # the first lattice of each grid with two or more latents
        if lattice.level not in picked and lattice.grid[lattice.index].numel() >= 2:
            picked[lattice.level] = lattice
    assert len(picked) >= 3
    with torch.no_grad():
        for lattice in picked.values():
            grid, index = lattice.grid, lattice.index
            saved = grid.clone()
            grid[index] = (torch.round(grid[index] * gain) + 1) / gain
            batched = lattice.deltas(base, _State.measure(fe, target, []), *weights)
            moved = grid.clone()
            rows, cols = torch.nonzero(torch.ones_like(batched, dtype=torch.bool), as_tuple=True)
            for r, c in zip(rows.tolist(), cols.tolist()):
                y, x = lattice.offset[0] + r * lattice.step[0], lattice.offset[1] + c * lattice.step[1]
                grid.copy_(saved)
                grid[y, x] = moved[y, x]
                alone = _State.measure(fe, target, [])
                expected = weights[0] * sum(float((t - e).double().sum()) for e, t in zip(base.errors, alone.errors))
                expected += weights[1] * float((alone.rate - base.rate).double().sum())
                assert float(batched[r, c]) == pytest.approx(expected, rel=1e-6, abs=1e-12)
            grid.copy_(saved)


@pytest.mark.parametrize("gop", ["intra", "lowdelay"])
def test_streams_with_latent_rdoq_decode_to_the_encoders_reconstruction(gop, monkeypatch):
    """(On I frames only: the P frame of the low-delay stream skips it.)"""
    import coolchic_stream.train.coding as coding

    runs = []
    monkeypatch.setattr(coding, "latent_rdoq", lambda fe, *a, **k: runs.append(fe.frame_type) or latent_rdoq(fe, *a, **k))
    pictures = [make_picture(18, 13, pts=i, shift=i) for i in range(2)]
    enc, packets = encode_pictures(pictures, preset="slow", iterations=30, complexity="lop", gop=gop, intra_period=4, intra_check="off")
    out = decode_packets(packets)
    assert [p.pts for p in out] == [0, 1]
    assert all(p.same_samples(enc.reconstructions[p.pts]) for p in out)
    assert runs == ([FrameType.I, FrameType.I] if gop == "intra" else [FrameType.I])


def test_progress_counts_every_lattice_and_ends_on_the_real_cost():
    from coolchic_stream.train.latent_rdoq import lattices

    fe, target = trained(30, 21, DataType.RGB)
    calls = []
    latent_rdoq(fe, target, [], LMBDA, passes=2, progress=lambda *a: calls.append(a))
    total = 2 * len(lattices(fe.residue))
    assert [c[1] for c in calls] == [total] * len(calls)
    done = [c[0] for c in calls]
    assert done == sorted(done) and done[-1] == total and len(calls) >= total // 16
    costs = [c[2] for c in calls]
    assert all(b <= a + 1e-15 for a, b in zip(costs, costs[1:]))  # only improving moves are kept
    assert costs[-1] == pytest.approx(cost(fe, target), rel=1e-6)


def test_the_one_grid_forward_matches_a_full_forward():
    """Cached channels + that grid's ARM: same samples bit for bit, same bits up to rounding."""
    from coolchic_stream.train.latent_rdoq import _GridForward, _State, lattices

    fe, target = trained(45, 31, DataType.YUV420, Complexity.MOP)
    cc = fe.residue
    fe.eval()
    forward = _GridForward(fe, target, [])
    base = _State.measure(fe, target, [])
    with torch.no_grad():
        for lattice in lattices(cc)[:: max(len(lattices(cc)) // 12, 1)]:
            grid, index = lattice.grid, lattice.index
            grid[index] = (torch.round(grid[index] * cc.param.encoder_gain) - 1) / cc.param.encoder_gain
            partial = forward(base, lattice.level, lattice.segment())
            full = _State.measure(fe, target, [])
            assert all(torch.equal(a, b) for a, b in zip(partial.errors, full.errors))
            seg = lattice.segment()
            assert torch.allclose(partial.rate[seg], full.rate[seg], rtol=1e-5, atol=1e-5)
            forward.refresh(lattice.level)  # keep the move: later lattices build on it
            base = full
