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
from jaxreg_lab.reproductions._results import capped_at_t1, grid_table, status_counts, status_report
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
