"""matrix-completion-depth at its tiny preset (Arora et al. 2019): a smaller init lowers
depth 2's error, and depth 3 completes far better and at lower effective rank than depth 2
and than the nuclear-norm baseline, at both inits."""

import numpy as np
import pytest
from helpers import reproduce_tiny

from jaxreg_lab import cli, driver
from jaxreg_lab.claims import claims_of, compare, evaluate_all
from jaxreg_lab.reproductions import matrix_completion_depth as mcd
from jaxreg_lab.store.results import load_results


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return reproduce_tiny(tmp_path_factory, "matrix-completion-depth")


def test_depth_and_small_init_lower_error_and_rank(tiny_run):
    res = load_results(tiny_run)
    assert res.dims["error"] == ("num_observed", "depth", "init_scale", "seed")
    assert res.coords["init_scale"] == [1e-2, 1e-4]
    assert res.meta["status"] == ["converged", "converged"]  # every run reached stop_at_loss
    err, rank = res["error"][0], res["effective_rank"][0]  # (depth 2/3, init 1e-2/1e-4, seed)
    # measured: depth 2 error 0.18-0.24 at init 1e-2, 0.054-0.080 at 1e-4; depth 3
    # 3.5e-4-8.8e-3 and 1.8e-4-2.7e-3; effective rank 4.9-5.5 / 3.0-3.2 (depth 2) against
    # 1.97-2.38 (depth 3, target rank 2); nuclear-norm minimization 0.066-0.097.
    # Smaller init lowers depth 2's error: an init_scale that is ignored or applied with
    # the wrong exponent (so both inits start at the same ||W(0)||) fails here.
    assert np.all(err[0, 1] < err[0, 0] / 2), err[0]
    # Depth 3 beats depth 2 by over 10x at both inits, and the convex baseline; a model
    # whose depth is ignored (depth 3 built as depth 2) gives equal rows and fails.
    assert np.all(err[1] < 0.02) and np.all(err[1] < err[0] / 10), err
    assert np.all(rank[1] < 2.5) and np.all(rank[1] < rank[0] - 0.5), rank
    assert np.all(res["baseline_error"][0] > 3 * err[1].max()), res["baseline_error"]
    # every flow's own solver steps: init scales run one after another, each to its own stop
    steps = res["steps"][0]
    assert steps.shape == err.shape and np.all(steps > 10) and np.all(steps <= 50_000), steps
    cell = res.meta["findings"]["cells"]["250"]["0.0001"]
    assert cell["depth_2_over_depth_3"] > 10 and cell["runs_reached_stop_loss"] == cell["runs"] == 4


def test_claims_evaluate_on_tiny_run(tiny_run):
    """Every claim gives one value per seed on the tiny preset (NaN where it lacks what the
    claim needs: depth 4, a second count of observations) and the recorded claims agree."""
    res = load_results(tiny_run)
    records = {r["id"]: r for r in evaluate_all(claims_of(mcd), res)}  # raises on a repeated id
    assert len(records) == len(mcd.CLAIMS) == 8
    assert all(r["per_seed"] and len(r["values"]) == 2 for r in records.values())
    # the claims recorded by reproduce are the ones judged now (the tiny preset fails some
    # claims expected at the default size: only those problems are allowed)
    assert [p for p in compare(res.meta["claims"], list(records.values())) if "expected to hold" not in p] == []
    for cid in ("depth-4-beats-depth-2", "depth-4-beats-nuclear", "many-observations-all-recover"):
        assert records[cid]["values"] == [None, None], records[cid]
    # measured at tiny: smaller init 0.31-0.34x, depth 3 over depth 2 0.003-0.04x, over the
    # nuclear norm 0.004-0.13x (depth 2 beats the nuclear norm in 1 of 2 seeds only)
    for cid in ("smaller-init-helps-depth-2", "depth-3-beats-depth-2", "depth-3-beats-nuclear"):
        assert records[cid]["holds_overall"], records[cid]


def test_plot_redraws_from_saved_results(tiny_run):
    png = tiny_run / "matrix-completion-depth.png"
    assert png.stat().st_size > 10_000
    png.unlink()
    assert cli.main(["plot", str(tiny_run)]) == 0
    assert png.stat().st_size > 10_000


def test_flow_stopped_at_t1_is_max_steps():
    """A flow that reaches t1 above stop_at_loss is max_steps (it missed its stop), never completed."""
    cfg = mcd.Config(
        shape=(8, 8), rank=1, num_observed=(20,), depths=(2,), init_scales=(1e-2,), t1=1.0, baseline=False, seeds=1
    )
    assert driver.run_reproduction(mcd.REPRODUCTION, cfg, progress=False)["status"] == ["max_steps"]
