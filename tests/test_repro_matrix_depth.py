"""matrix-completion-depth at its tiny preset: deeper factorizations complete better and
at lower effective rank than depth 2 and than the nuclear-norm baseline (Arora et al. 2019)."""

import numpy as np
import pytest
from helpers import reproduce_tiny

from jaxreg import cli
from jaxreg.results import load_results


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return reproduce_tiny(tmp_path_factory, "matrix-completion-depth")


def test_depth_lowers_error_and_rank(tiny_run):
    res = load_results(tiny_run)
    assert res.dims["error"] == ("num_observed", "depth", "init_scale", "seed")
    assert res.meta["status"] == ["converged", "converged"]  # every run reached stop_at_loss
    err2, err3 = res["error"][0, 0, 0], res["error"][0, 1, 0]  # depths 2 and 3, both seeds
    rank2, rank3 = res["effective_rank"][0, 0, 0], res["effective_rank"][0, 1, 0]
    assert np.all(err3 < 0.05) and np.all(err3 < err2 / 10), (err2, err3)
    assert np.all(rank3 < 3.0) and np.all(rank3 < rank2 - 1.0), (rank2, rank3)  # target rank 2
    assert np.all(res["baseline_error"][0] > err3) and np.all(res["baseline_effective_rank"][0] > rank3)


def test_plot_redraws_from_saved_results(tiny_run):
    png = tiny_run / "matrix-completion-depth.png"
    assert png.stat().st_size > 10_000
    png.unlink()
    assert cli.main(["plot", str(tiny_run)]) == 0
    assert png.stat().st_size > 10_000
