"""deep-tensor-rank at its tiny preset (Hariz et al. 2022): from the same end-to-end
initial norm ||W(0)||, factor depth k = 2 completes the tensor with a lower rank and a
lower test error than plain CP (k = 0); a run that hits its step cap says so."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import reproduce_tiny
from test_repro_tensor import check_claims

from jaxreg_lab import cli, driver
from jaxreg_lab.reproductions import deep_tensor_rank as dtr
from jaxreg_lab.store.results import load_results


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return reproduce_tiny(tmp_path_factory, dtr.NAME)


def test_depth_helps_at_matched_init(tiny_run):
    res = load_results(tiny_run)
    cfg = dtr.Config.preset("tiny")
    assert res.dims["test_error"] == ("depth", "init_norm", "seed")
    assert res.coords["depth"] == [0, 2] and res.coords["init_norm"] == [0.1]
    # matched init: every run starts at ||W(0)|| = 0.1 ||W*||; the per-entry-std init
    # (no rescaling) starts k = 2 near 0.02 and k = 0 near 0.05, and fails here
    np.testing.assert_allclose(res["initial_norm"], 0.1, rtol=1e-9)
    # every run reached its stop loss before the step cap, and its status says so
    assert res.meta["status"] == ["converged", "converged"]
    assert np.all(res["loss"] <= cfg.stop_at_loss) and np.all(res["iterations"] < cfg.num_steps)
    test, rank = res["test_error"][:, 0], res["unfolding_effective_rank"][:, 0]
    # measured: test error 0.19 (k = 0) against 0.044 (k = 2), unfolding effective rank
    # 3.43 against 2.78 (target CP rank 3). A model that ignores k (k = 2 built as k = 0)
    # gives equal rows and fails.
    assert np.all(test[1] < test[0] / 2), test
    assert np.all(rank[1] < rank[0] - 0.3) and np.all(rank[1] < 3.0), rank
    assert res.meta["findings"]["test_error_over_cp"]["2"][0] < 0.5
    png = tiny_run / f"{dtr.NAME}.png"
    png.unlink()
    assert cli.main(["plot", str(tiny_run)]) == 0 and png.stat().st_size > 10_000


def test_claims(tiny_run):
    """At tiny size (k = 0 and 2 from one init norm, every run at its stop loss) every
    claim holds: k = 2 beats plain CP in test error and unfolding rank."""
    res = load_results(tiny_run)
    check_claims(res, dtr, [c.id for c in dtr.CLAIMS])


def test_step_cap_is_max_steps():
    """20 steps cannot reach the stop loss: the run is max_steps, never completed."""
    cfg = dtr.Config(shape=(4, 4, 4), rank=4, num_observed=20, depths=(1,), init_norms=(0.1,), seeds=1, num_steps=20)
    res = driver.run_reproduction(dtr.REPRODUCTION, cfg, progress=False)
    assert res["status"] == ["max_steps"]
    assert res["extra"]["findings"]["best"]["1"]["runs_reached_stop_loss"] == 0


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_matched_init_norm(depth):
    cfg = dtr.Config()
    model = dtr.matched_init(jax.random.key(depth), cfg, depth, 0.25)
    np.testing.assert_allclose(jnp.linalg.norm(model.materialize()), 0.25, rtol=1e-5)


@pytest.mark.parametrize("field, value", [("init_norms", (0.1, -1.0)), ("lr_final", 1.0)])
def test_bad_config(field, value):
    with pytest.raises(ValueError, match=field):
        dtr.Config(**{field: value})
