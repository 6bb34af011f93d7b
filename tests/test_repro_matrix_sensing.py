"""matrix-sensing at its tiny preset (Arora et al. 2019, appendix): from Gaussian
measurements, depth 3 recovers the low-rank target far better and at lower effective rank
than depth 2, and beats the nuclear-norm minimization baseline."""

import numpy as np
import pytest
from helpers import reproduce_tiny

from jaxreg_lab import cli
from jaxreg_lab.claims import claims_of, compare, evaluate_all
from jaxreg_lab.reproductions import matrix_sensing as ms
from jaxreg_lab.store.results import load_results


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return reproduce_tiny(tmp_path_factory, ms.NAME)


def test_depth_beats_depth_two_and_nuclear_norm(tiny_run):
    res = load_results(tiny_run)
    assert res.dims["error"] == ("num_measurements", "depth", "init_scale", "seed")
    assert res.meta["status"] == ["converged", "converged"]  # every run reached stop_at_loss
    err2, err3 = res["error"][0, 0, 0], res["error"][0, 1, 0]  # depths 2 and 3, both seeds
    rank2, rank3 = res["effective_rank"][0, 0, 0], res["effective_rank"][0, 1, 0]
    # With init scale 1 instead of 1e-2 (no implicit low-rank bias) depth 3 ends at error
    # 0.55-0.65 (depth 2: 0.65-0.76): these fail.
    assert np.all(err3 < 0.02) and np.all(err3 < err2 / 10), (err2, err3)
    assert np.all(rank3 < 2.6) and np.all(rank3 < rank2 - 1.0), (rank2, rank3)  # target rank 2
    base = res["baseline_error"][0]
    assert np.all(base > 3 * err3) and np.all(base < 1.0), (base, err3)  # a real solve, well behind depth 3
    assert "yes" in ms.summary(res).splitlines()[2]  # the depth-3 row says it beats the baseline


def test_claims_evaluate_on_tiny_run(tiny_run):
    """Every claim gives one value per seed on the tiny preset (NaN where it lacks what the
    claim needs: depth 4, a second init scale or count) and the recorded claims agree."""
    res = load_results(tiny_run)
    records = {r["id"]: r for r in evaluate_all(claims_of(ms), res)}  # raises on a repeated id
    assert len(records) == len(ms.CLAIMS) == 10
    assert all(r["per_seed"] and len(r["values"]) == 2 for r in records.values())
    # the claims recorded by reproduce are the ones judged now (the tiny preset fails some
    # claims expected at the default size: only those problems are allowed)
    assert [p for p in compare(res.meta["claims"], list(records.values())) if "expected to hold" not in p] == []
    for cid in (
        "depth-4-beats-depth-2",
        "smaller-init-helps-depth-2",
        "many-measurements-all-recover",
        "many-measurements-within-tolerance",
        "many-measurements-depth-2-set-by-init",
    ):
        assert records[cid]["values"] == [None, None], records[cid]
    # measured at tiny: depth 3 over depth 2 0.015-0.032x, over the nuclear norm 0.05-0.11x
    for cid in ("depth-3-beats-depth-2", "depth-3-beats-nuclear"):
        assert records[cid]["holds_overall"], records[cid]


def test_plot_redraws_from_saved_results(tiny_run):
    png = tiny_run / f"{ms.NAME}.png"
    png.unlink()
    assert cli.main(["plot", str(tiny_run)]) == 0
    assert png.stat().st_size > 10_000


def test_rejects_rank_above_shape():
    with pytest.raises(ValueError, match="rank must be at most"):
        ms.Config(shape=(4, 4), rank=5)


def _grid_results(counts, inits, error):
    """Results of a sensing grid with depth 2 only and every flow converged."""
    from jaxreg.dynamics import Status
    from jaxreg_lab.store.results import Results

    error = np.asarray(error, float)  # (count, depth, init_scale, seed)
    dims = ("num_measurements", "depth", "init_scale", "seed")
    coords = {"num_measurements": counts, "depth": [2], "init_scale": inits, "seed": list(range(error.shape[-1]))}
    arrays = {"error": error, "status": np.full(error.shape, Status.CONVERGED)}
    return Results(ms.NAME, arrays, {k: dims for k in arrays}, coords, {}, {})


def test_set_by_init_claim_compares_the_largest_init_with_the_smallest_at_many_measurements():
    # errors at (few, many) x (init 1e-6, 1e-3), two seeds: the many column's ratio is 50 and 5
    err = [[[[1.0, 1.0], [2.0, 2.0]]], [[[1e-8, 1e-8], [5e-7, 5e-8]]]]
    res = _grid_results([320, 800], [1e-6, 1e-3], err)
    np.testing.assert_allclose(ms.many_depth_2_init_ratio(res), [50.0, 5.0])
    record = evaluate_all([ms.SET_BY_INIT_CLAIM], res)[0]
    assert record["holds"] == [True, False] and record["rule"] == "> 10"
    res.arrays["status"][1, 0, 1, 0] = 0  # the first seed's init-1e-3 flow missed its stop loss
    assert np.isnan(ms.many_depth_2_init_ratio(res)[0])
    one_count = _grid_results([320], [1e-6, 1e-3], err[:1])
    assert np.all(np.isnan(ms.many_depth_2_init_ratio(one_count)))


def test_paper_size_run_is_shipped_with_both_columns():
    """docs/results/matrix-sensing-paper: the paper's two columns (20% and 50% of the
    entries), at least 3 seeds, the many-measurement column run to a lower stop loss, and
    the claims judged from its arrays: depth 2 from the smallest init against the nuclear
    norm and the control that the init, not the stop loss, sets depth 2's many-measurement
    error."""
    from pathlib import Path

    res = load_results(Path(__file__).resolve().parents[1] / "docs" / "results" / f"{ms.NAME}-paper")
    m, n = res.config["shape"]
    assert res.coords["num_measurements"] == [m * n // 5, m * n // 2]
    assert len(res.coords["seed"]) >= 3 and res.coords["depth"] == [2, 3, 4]
    few_stop, many_stop = res.config["stop_at_losses"]
    assert many_stop < few_stop
    assert res.meta["wall_time_s"] > 0
    records = {r["id"]: r for r in evaluate_all(claims_of(ms), res)}
    assert compare(res.meta["claims"], list(records.values()), judge_expected=False) == []
    for cid in ("depth-2-beats-nuclear-small-init", "many-measurements-depth-2-set-by-init"):
        assert all(v is not None for v in records[cid]["values"]), records[cid]
