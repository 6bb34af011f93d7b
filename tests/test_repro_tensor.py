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
        res = _reproduce(tensor_completion_observations.NAME, out, code=0)
    return res, printed.getvalue()


def test_tensor_completion_observations(completion_run):
    res, out = completion_run
    assert res.dims["error"] == ("init_scale", "num_observed", "seed")
    assert res.dims["memorizer_cp_rank"] == ("num_observed", "seed")
    assert res.coords["num_observed"] == [50, 200] and res.coords["init_scale"] == [1e-3, 1e-2]
    err, rank = res["error"], res["cp_rank"]  # (init_scale, num_observed, seed)
    assert err.shape == rank.shape == (2, 2, 2)
    # every run met the reference's stop rule (loss below 1e-6 at 3 checks 100 iterations apart)
    assert np.all(res["status"] == jr.Status.CONVERGED) and np.all(res["loss_authors_stop"] < 1e-6)
    assert np.all(res["iterations"] % 100 == 0) and np.all(res["iterations"] >= 300)
    # the descent only lowers the loss; 2000 steps take the init-1e-3 runs of 200 entries below 1e-13
    assert np.all(res["loss"] <= res["loss_authors_stop"]) and np.all(res["loss"][0, 1] < 1e-13)
    # 200 of 512 entries: the rank-1 target is recovered at CP rank 1, init 1e-3 100x closer than 1e-2
    assert np.all(err[:, 1] < 0.01) and np.all(rank[:, 1] == 1), (err, rank)
    assert np.all(err[1, 1] / err[0, 1] > 100), err[:, 1]
    # the memorizer fits the same 200 entries exactly yet stays far from the target, at a high CP rank
    assert np.all(res["memorizer_error"][1] > 0.5) and np.all(res["memorizer_cp_rank"][1] >= 10)
    assert res.meta["status"] == ["converged", "converged"]
    assert "runs that reached their stop criterion: 8/8" in out and "memorizer" in out


def test_tensor_completion_observations_claims(completion_run):
    """At tiny size (2 seeds; 50 and 200 observations) the published claims at 200
    observations hold: recovery at CP rank 1 from both inits, init 1e-3 at least 100x closer
    than init 1e-2, and the memorizer control far from the target at a high CP rank."""
    res, _ = completion_run
    holding = (
        "recovers-rank-1-target",
        "rank-1-solution",
        "smaller-init-lower-error",
        "smaller-init-100x-lower-error",
        "smaller-init-10x-lower-error-from-200",
        "memorizer-not-recovered",
        "memorizer-high-rank",
    )
    check_claims(res, tensor_completion_observations, holding)


def test_cp_rank_bisection():
    """The reference's CP rank search: rank 1 of a rank-1 tensor, 2 of a rank-2 one (where
    every larger rank makes the plain ALS normal matrices singular), 0 of a zero tensor."""
    rng = np.random.default_rng(0)
    a, b = (np.einsum("i,j,k->ijk", *rng.normal(size=(3, 8))) for _ in range(2))
    cp_rank = tensor_completion_observations.cp_rank
    assert cp_rank(a, 64, 1e-6) == 1
    assert cp_rank(a + b, 64, 1e-6) == 2
    assert cp_rank(np.zeros((8, 8, 8)), 64, 1e-6) == 0
    assert np.isnan(cp_rank(np.full((8, 8, 8), np.nan), 64, 1e-6))


def test_memorizer_is_the_least_norm_fit():
    """The memorizer holds the first n observations exactly and zeros elsewhere."""
    problem = jr.tasks.tensor_completion(jax.random.key(1), (8, 8, 8), 1, 100)
    w = tensor_completion_observations.memorizer(problem.target, problem.train.indices, problem.train.values, 60)
    idx = np.asarray(problem.train.indices)
    np.testing.assert_array_equal(w[tuple(idx[:60].T)], np.asarray(problem.train.values)[:60])
    assert np.count_nonzero(w) == np.count_nonzero(np.asarray(problem.train.values)[:60])


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
    assert resumed["status"] == full["status"] == ["converged", "converged"]
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
