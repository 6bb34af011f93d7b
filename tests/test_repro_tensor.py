"""The tensor reproductions at tiny size, through the CLI: Razin & Cohen 2020 (completion
against the number of observations); Razin et al. 2021 (dynamics, tensor rank as
complexity) is in test_repro_tensor_new.py, Hariz et al. 2022 (tensor rank against depth)
in test_repro_deep_tensor_rank.py. :func:`check_claims` is their claims' common check."""

import contextlib
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import interrupt_chunks

import jaxreg as jr
from jaxreg_lab import driver
from jaxreg_lab.claims import claims_of, compare, evaluate_all
from jaxreg_lab.cli import main
from jaxreg_lab.driver import checkpoints
from jaxreg_lab.reproductions import deep_tensor_rank, tensor_completion_observations
from jaxreg_lab.store.results import load_results


def _reproduce(name, out, code=None):
    """Run NAME at tiny size. The exit code is 1 exactly when a run did not reach its stop
    criterion (``code``: the one expected)."""
    got = main(["reproduce", name, "--size", "tiny", "--out", str(out), "--no-progress"])
    res = load_results(out)
    assert got == (0 if all(jr.Status.ok(s) for s in res.meta["status"]) else 1)
    assert code is None or got == code
    assert res.name == name
    png = out / f"{name}.png"
    assert png.stat().st_size > 10_000 and (out / f"{name}.pdf").exists()
    png.unlink()
    assert main(["plot", str(out)]) == 0 and png.exists()  # redrawing succeeds whatever the statuses
    assert not (out / ".checkpoint").exists()
    return res


def check_claims(res, module, holding=()) -> dict:
    """The claims of ``module`` on its tiny run ``res``: each gives one value per seed, the
    ids are unique, ``reproduce`` recorded them as judged now (a recorded claim may only
    differ by being expected to hold where it does not: a coordinate the tiny preset
    lacks), and those in ``holding`` hold.

    Returns:
        The records by id.
    """
    records = evaluate_all(claims_of(module), res)
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids) == len(claims_of(module)) > 0
    seeds = len(res.coords["seed"])
    for r in records:
        assert r["per_seed"] and len(r["values"]) == seeds, r
    problems = compare(res.meta["claims"], records)
    assert all("expected to hold" in p for p in problems), problems
    by_id = {r["id"]: r for r in records}
    for cid in holding:
        assert by_id[cid]["holds_overall"], by_id[cid]
    return by_id


@pytest.fixture(scope="module")
def completion_run(tmp_path_factory):
    """tensor-completion-observations at tiny size, and what the command printed."""
    out = tmp_path_factory.mktemp(tensor_completion_observations.NAME)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        res = _reproduce(tensor_completion_observations.NAME, out, code=1)
    return res, printed.getvalue()


def test_tensor_completion_observations(completion_run):
    res, out = completion_run
    assert res.dims["error"] == ("init_scale", "num_observed", "seed")
    assert res.coords["num_observed"] == [15, 200]
    err, rank = res["error"][0], res["cp_rank"][0]  # init 1e-2: (num_observed, seed)
    assert err.shape == rank.shape == (2, 2)
    assert np.all(res["loss"] < 1e-6)  # every run fitted its observations (target mean square: 2e-3)
    # 200 of 512 entries: the rank-1 target is recovered, and the solution has CP rank 1
    assert np.all(err[1] < 0.02), err
    assert np.all(rank[1] == 1), rank
    # 15 entries: the observations are fitted but the target is not recovered
    assert np.all(err[0] > 0.5), err
    # seed 0 takes all 4000 iterations on 15 entries without reaching loss 1e-8: max_steps, and so
    # is that seed over the grid and its cell; the table counts the runs that reached the loss
    assert res["iterations"][0, 0, 0] == res.config["num_steps"] and res["loss"][0, 0, 0] > 1e-8
    assert res["status"][0, 0].tolist() == [jr.Status.MAX_STEPS, jr.Status.CONVERGED]
    assert res.meta["status"] == ["max_steps", "converged"]
    assert "1/2 max_steps" in out and "2/2 converged" in out
    assert "runs that reached their stop criterion: 3/4 (1 max_steps)" in out


def test_tensor_completion_observations_claims(completion_run):
    """At tiny size (init 1e-2 alone; 15 and 200 observations) the rank-1 target is
    recovered at CP rank 1 from 200 observations and not from 15; the claims that compare
    init 1e-3 with 1e-2 have no init 1e-3 to read: NaN in every seed."""
    res, _ = completion_run
    holding = ("recovers-rank-1-target", "rank-1-solution", "few-observations-not-recovered")
    claims = check_claims(res, tensor_completion_observations, holding)
    for cid in ("smaller-init-lower-error", "smaller-init-100x-lower-error", "smaller-init-lower-rank"):
        assert claims[cid]["values"] == [None, None], claims[cid]


def test_tensor_completion_observations_resume_equals_uninterrupted(tmp_path, monkeypatch):
    """Killed after its first count (chunk) and resumed, the run saves the arrays of an
    uninterrupted one, the CP ranks estimated from the checkpointed solutions."""
    repro, config = tensor_completion_observations.REPRODUCTION, tensor_completion_observations.Config.preset("tiny")
    full = driver.run_reproduction(repro, config, progress=False)
    real = interrupt_chunks(monkeypatch, driver, at=1)  # the driver's chunk loop
    with pytest.raises(KeyboardInterrupt):
        driver.run_reproduction(repro, config, out_dir=tmp_path, progress=False)
    monkeypatch.setattr(driver, "run_chunks", real)
    assert [m["done"] for m in checkpoints(tmp_path).values()] == [1]
    resumed = driver.run_reproduction(repro, config, out_dir=tmp_path, resume=True, progress=False)
    assert resumed["status"] == full["status"] == ["max_steps", "converged"]
    for key, (dims, value) in full["arrays"].items():
        assert resumed["arrays"][key][0] == dims
        np.testing.assert_array_equal(resumed["arrays"][key][1], value)


def test_masked_loss_is_the_completion_loss_of_the_first_n():
    """Nested observation sets: the masked loss over max(n) permuted entries equals
    ``tensor_completion(key, shape, 1, n).loss`` for every n."""
    key = jax.random.key(3)
    full = jr.tasks.tensor_completion(key, (8, 8, 8), 1, 100)
    model = jr.TensorFactorization(jax.random.key(4), (8, 8, 8), 4, init_scale=0.5)
    for n in (23, 100):
        expected = jr.tasks.tensor_completion(key, (8, 8, 8), 1, n).loss(model)
        got = tensor_completion_observations.masked_loss(model, full.train.indices, full.train.values, jnp.asarray(n))
        np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "module, field", [(tensor_completion_observations, "num_observed"), (deep_tensor_rank, "num_observed")]
)
def test_bad_config(module, field):
    value = (-5,) if module is tensor_completion_observations else -5
    with pytest.raises(ValueError, match=field):
        module.Config(**{field: value})
    with pytest.raises(ValueError, match="seeds"):
        module.Config(seeds=0)
