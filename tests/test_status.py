"""Status tells the truth about caps: a descent that takes all its steps without reaching
its loss is max_steps, a group of runs (a grid cell, a seed over a grid) has the worst
status of its runs, and the summary tables count the runs that reached their stop
criterion."""

import jax
import numpy as np
import optax
import pytest

import jaxreg as jr
from jaxreg_lab.driver import run_reproduction
from jaxreg_lab.reproductions import custom_sweep
from jaxreg_lab.reproductions._results import (
    HighError,
    capped_at_t1,
    grid_table,
    high_error_runs,
    status_counts,
    status_report,
)
from jaxreg_lab.store.results import Results


@pytest.fixture(scope="module")
def setup():
    problem = jr.tasks.matrix_completion(jax.random.key(0), (6, 5), 1, 20)
    model = jr.MatrixFactorization(jax.random.key(1), (6, 5), 2, init_scale=0.3)
    return problem, model


@pytest.mark.parametrize(
    "stop_at_loss, num_steps, expected",
    [
        (1e-30, 20, jr.Status.MAX_STEPS),  # the cap ends the run before its loss is reached
        (None, 20, jr.Status.COMPLETED),  # no stop criterion: the whole horizon is the run
        (1e30, 20, jr.Status.CONVERGED),  # reached at step 0
    ],
)
def test_descent_status_at_its_step_cap(setup, stop_at_loss, num_steps, expected):
    problem, model = setup
    traj = jr.gradient_descent(problem.loss, model, optax.sgd(0.1), num_steps, stop_at_loss=stop_at_loss)
    assert jr.Status.name(traj.status) == jr.Status.NAMES[expected]
    if expected == jr.Status.MAX_STEPS:
        assert int(traj.num_steps) == num_steps and float(traj.loss[-1]) > 1e-30


def _grid(status):
    """Results of a 2 x 2 grid (rows: init scale, columns: seed) with one status per run."""
    codes = np.asarray([[jr.Status.NAMES.index(s) for s in row] for row in status])
    arrays = {"status": codes, "error": np.ones(codes.shape)}
    dims = {"status": ("init_scale", "seed"), "error": ("init_scale", "seed")}
    coords = {"init_scale": [1e-3, 1e-2], "seed": [0, 1]}
    return Results("grid", arrays, dims, coords, {}, {"status": None})


def test_a_cell_with_one_capped_seed_is_not_converged():
    status = [["converged", "max_steps"], ["converged", "converged"]]
    assert status_counts(np.asarray(status[0])) == "1/2 max_steps"
    assert status_counts(np.asarray(status[1])) == "2/2 converged"
    assert jr.Status.name(jr.Status.worst(status[0])) == "max_steps"
    # the summary table gives every cell its count and worst status, and the total
    results = _grid(status)
    table = grid_table(results, ("init_scale", "seed"), "init seed", lambda i, a, j, b: f"{a:g} {b}")
    assert table.splitlines()[0].endswith("reached stop")
    assert table.splitlines()[2].endswith("0/1 max_steps") and table.splitlines()[1].endswith("1/1 converged")
    assert status_report(results) == "runs that reached their stop criterion: 3/4 (1 max_steps)"


def test_status_report_reads_names_without_a_status_array():
    res = Results("r", {}, {}, {}, {}, {"status": ["completed", "non_finite", "max_steps"]})
    assert status_report(res) == "runs that reached their stop criterion: 1/3 (1 max_steps, 1 non_finite)"


def test_capped_at_t1_turns_only_completed_into_max_steps():
    codes = np.arange(len(jr.Status.NAMES))
    expected = ["max_steps", "converged", "max_steps", "non_finite", "failed"]
    assert jr.Status.names(capped_at_t1(codes)) == expected


def test_sweep_flow_run_to_a_loss_that_reaches_t1_is_max_steps():
    """A chunked flow towards a loss: the end of a chunk is no cap, the last chunk's t1 is."""

    def run(stop_at_loss):
        config = custom_sweep.Config(
            model="matrix", shape=(4, 4), num_observed=10, target_rank=1, t1=2.0, num_saves=2, num_chunks=2,
            init_scales=(0.5,), seeds=1, stop_at_loss=stop_at_loss,
        )  # fmt: skip
        return run_reproduction(custom_sweep.REPRODUCTION, config, progress=False)

    capped = run(1e-30)
    assert capped["status"] == ["max_steps"]
    loss = capped["arrays"]["loss"][1][0, 0]  # (time,): it ran through both chunks
    assert np.all(np.isfinite(loss)) and loss[1] < loss[0]
    assert run(float(loss[0]))["status"] == ["converged"]  # a loss reached within t1


def _depth_run(status, error):
    """Results of depths 3, 4 x 3 seeds, one status per seed (the depths loop inside each
    seed's run, as matrix-dynamics-depth) and a relative error per (depth, seed, time)."""
    err = np.stack([np.linspace(1, e, 5) for e in np.ravel(error)]).reshape(2, 3, 5)
    arrays = {"reconstruction_error": err}
    dims = {"reconstruction_error": ("depth", "seed", "time")}
    coords = {"depth": [3, 4], "seed": [0, 1, 2], "time": [1, 2, 3, 4, 5]}
    return Results("demo", arrays, dims, coords, {}, {"status": status})


HIGH = HighError.final("reconstruction_error", "rel. error at t1")


def test_the_footer_names_completed_runs_that_ended_at_a_high_error():
    """The issue's case: a depth-4 seed ended completed at relative error 0.93; the footer
    counts it as having reached its stop criterion and then names it as no success."""
    results = _depth_run(["completed"] * 3, [[0.01, 0.02, 0.03], [0.05, 0.93, 0.4]])
    assert high_error_runs(results, HIGH) == ["depth=4 seed=1 (completed, 0.93)"]
    assert status_report(results, HIGH).splitlines() == [
        "runs that reached their stop criterion: 3/3",
        "of them, ended at a high error (rel. error at t1 > 0.5), not a success: depth=4 seed=1 (completed, 0.93)",
    ]
    assert status_report(results) == "runs that reached their stop criterion: 3/3"  # without a HIGH_ERROR


def test_a_high_error_of_a_run_that_did_not_reach_its_criterion_is_not_named_again():
    results = _depth_run(["completed", "max_steps", "converged"], [[0.9, 0.9, 0.9], [0.01, 0.9, 0.01]])
    assert high_error_runs(results, HIGH) == ["depth=3 seed=0 (completed, 0.9)", "depth=3 seed=2 (converged, 0.9)"]
    results = _depth_run(["completed"] * 3, [[0.5, 0.1, 0.1], [0.1, 0.1, 0.1]])
    assert status_report(results, HIGH).splitlines()[1] == "none of them at a high error (rel. error at t1 > 0.5)"


def test_a_status_array_on_a_grid_is_matched_to_the_error_by_dimension_name():
    """A saved status array over (seed, init_scale), an error over (init_scale, seed): each
    error meets its own run's status."""
    codes = np.asarray([[0, 2], [1, 0]])  # seed 0: completed, max_steps; seed 1: converged, completed
    err = np.asarray([[0.9, 0.9], [0.9, 0.1]])[..., None]  # (init_scale, seed, time)
    results = Results(
        "grid",
        {"status": codes, "reconstruction_error": err},
        {"status": ("seed", "init_scale"), "reconstruction_error": ("init_scale", "seed", "time")},
        {"init_scale": [1e-3, 1e-2], "seed": [0, 1], "time": [1]},
        {},
        {"status": None},
    )
    assert high_error_runs(results, HIGH) == [
        "init_scale=0.001 seed=0 (completed, 0.9)",
        "init_scale=0.001 seed=1 (converged, 0.9)",
    ]
