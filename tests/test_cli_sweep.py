"""`jaxreg sweep --config FILE.toml`: model x task x optimizer over seeds and init scales."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg as jr
from jaxreg_lab import cli
from jaxreg_lab.claims import claims_of, evaluate_all
from jaxreg_lab.driver import run_reproduction
from jaxreg_lab.reproductions import custom_sweep
from jaxreg_lab.store.results import load_results

FLOW = """
model = "matrix"
shape = [10, 10]
depth = 3
target_rank = 1
num_observed = 50
t1 = 150.0
num_saves = 6
num_chunks = 2
init_scales = [1e-2, 1e-1]
seeds = 2
"""


@pytest.fixture(scope="module")
def flow_sweep(tmp_path_factory):
    """The FLOW sweep through the command line: its results directory."""
    tmp = tmp_path_factory.mktemp("flow_sweep")
    cfg = tmp / "s.toml"
    cfg.write_text(FLOW)
    out = tmp / "out"
    assert cli.main(["sweep", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    return out


def test_flow_sweep_saves_grid_and_replots(flow_sweep):
    out = flow_sweep
    res = load_results(out)
    assert res.name == "sweep"
    assert res.dims["component_norms"] == ("init_scale", "seed", "time", "component")
    assert res["loss"].shape == (2, 2, 6)
    assert res.meta["status"] == ["completed"] * 4
    # every run fits the observations; from the small init the rank-1 matrix is recovered
    assert np.all(res["loss"][:, :, -1] < 1e-3) and np.all(res["loss"][:, :, -1] < res["loss"][:, :, 0])
    assert np.all(res["reconstruction_error"][0, :, -1] < 5e-2)
    # the grid equals a direct gradient flow of the run (init 1e-1, seed 1)
    config = custom_sweep.Config(
        **{**res.config, "shape": (10, 10), "init_scales": (1e-2, 1e-1), "widths": tuple(res.config["widths"])}
    )
    pk, mk = jax.random.split(jax.random.split(jax.random.key(config.seed), 2)[1])
    problem = custom_sweep.make_problem(config, pk)
    model = custom_sweep.make_model(config, mk, 1e-1)
    traj = jr.gradient_flow(problem.loss, model, 150.0, ts=jnp.array([150.0]), rtol=config.rtol, atol=config.atol)
    np.testing.assert_allclose(res["loss"][1, 1, -1], traj.loss[-1], rtol=1e-5)
    (out / "sweep.png").unlink()
    assert cli.main(["plot", str(out)]) == 0
    assert (out / "sweep.png").exists()


def test_flow_sweep_claims_per_seed(flow_sweep):
    """The sweep's claims, recorded by the command: one value per seed; from init 1e-2 the
    rank-1 target is recovered with a lower error and effective rank than from 1e-1
    (measured ratios 0.06-0.18 and 0.67-0.84); at t1 = 150 the runs from 1e-1 have not
    reached the 1e-5 training loss. The comparison does not depend on the order of
    ``init_scales``; a single init scale gives NaN."""
    res = load_results(flow_sweep)
    records = {r["id"]: r for r in evaluate_all(claims_of(custom_sweep), res)}
    assert [r["id"] for r in res.meta["claims"]] == list(records) == [c.id for c in custom_sweep.CLAIMS]
    assert all(r["per_seed"] and len(r["values"]) == 2 for r in records.values())
    assert records["smaller-init-lower-error"]["holds_overall"]
    assert records["smaller-init-lower-effective-rank"]["holds_overall"]
    np.testing.assert_allclose(records["runs-fit"]["values"], res["loss"][:, :, -1].max(axis=0))
    assert not records["runs-fit"]["holds_overall"]
    flipped = dataclasses.replace(
        res,
        arrays={k: v[::-1] for k, v in res.arrays.items()},
        coords={**res.coords, "init_scale": res.coords["init_scale"][::-1]},
    )
    assert evaluate_all(claims_of(custom_sweep), flipped) == list(records.values())
    single = dataclasses.replace(
        res, arrays={k: v[:1] for k, v in res.arrays.items()}, coords={**res.coords, "init_scale": [1e-2]}
    )
    for r in evaluate_all(claims_of(custom_sweep), single)[1:]:
        assert r["values"] == [None, None] and not r["holds_overall"]


def test_descent_chunks_carry_optimizer_state():
    """Adam's moments survive the checkpointed chunks: 1 chunk == 4 chunks, bit for bit-ish."""
    base = custom_sweep.Config(
        model="cp",
        shape=(4, 4, 4),
        rank=3,
        target_rank=1,
        num_observed=20,
        optimizer="adam",
        learning_rate=1e-2,
        optimizer_options={"b1": 0.8},
        num_steps=80,
        num_saves=8,
        num_chunks=1,
        init_scales=(1e-1,),
        seeds=2,
    )
    one = run_reproduction(custom_sweep.REPRODUCTION, base, progress=False)
    four = run_reproduction(custom_sweep.REPRODUCTION, dataclasses.replace(base, num_chunks=4), progress=False)
    np.testing.assert_allclose(one["arrays"]["loss"][1], four["arrays"]["loss"][1], rtol=1e-12)
    # and equals jr.gradient_descent with the same optimizer (fresh state, one scan)
    pk, mk = jax.random.split(jax.random.split(jax.random.key(0), 2)[0])
    problem = custom_sweep.make_problem(base, pk)
    model = custom_sweep.make_model(base, mk, 1e-1)
    gd = jr.gradient_descent(problem.loss, model, optax.adam(1e-2, b1=0.8), 80, save_every=10)
    np.testing.assert_allclose(four["arrays"]["loss"][1][0, 0], gd.loss[1:], rtol=1e-10)
    assert np.all(np.asarray(one["arrays"]["solver_steps"][1]) == 80)


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('model = "tucker"', "model must be one of"),
        ('optimizer = "nosuchopt"', "optimizer must be"),
        ('optimizer = "sgd"\noptimizer_options = {nesterov_typo = true}', "optimizer_options"),
        ("init_scales = []", "init_scales"),
        ("seeds = -1", "seeds must be a positive integer"),
        ("shape = [10, 10, 10]", "shape must have 2 entries"),
    ],
)
def test_bad_sweep_config_one_line_exit_2(tmp_path, capsys, body, fragment):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(body + "\n")
    assert cli.main(["sweep", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
