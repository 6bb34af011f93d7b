"""Training: exact resume, per-run failure, stopping rule. Shapes and settings equal the
"tiny" Is-Same-Class preset, so these tests share its compiled code."""

import dataclasses

import jax
import numpy as np
import pytest

from jaxreg.locality import is_same_class, train_runs
from jaxreg_lab.driver import CheckpointExists, check_resumable, checkpoints, run_reproduction
from jaxreg_lab.locality import IsSameClassConfig
from jaxreg_lab.locality.grids import IsSameClassGrid
from jaxreg_lab.store.results import ResumeMismatch

CONFIG = IsSameClassConfig.preset("tiny")


def _data():
    c = CONFIG
    tr = is_same_class(jax.random.key(0), c.num_train, 16, split="train", canvas=c.canvas)
    te = is_same_class(jax.random.key(1), c.num_test, 16, split="test", canvas=c.canvas)
    return tr, te


class Interrupt(Exception):
    pass


def test_resume_equals_uninterrupted(tmp_path):
    """The one locality resume test (2 epochs; shares the tiny preset's compiled code): the
    grid through the driver (one distance, lambda 1, seeds 0 and 1), killed after its
    first epoch's checkpoint, resumes to the uninterrupted run's arrays and checkpoint bit
    for bit; both equal the library's ``train_runs`` on the same data."""
    config = dataclasses.replace(CONFIG, distances=(16,), lambdas=(1.0,), max_epochs=2)
    grid = IsSameClassGrid()
    full = run_reproduction(grid, config, out_dir=tmp_path / "a", progress=False)

    def kill_after_first(record):
        raise Interrupt

    with pytest.raises(Interrupt):
        run_reproduction(grid, config, out_dir=tmp_path / "b", progress=False, log=kill_after_first)
    ((unit, manifest),) = checkpoints(tmp_path / "b").items()
    assert unit.parent.name == ".checkpoint" and manifest["done"] == 1
    assert manifest["fingerprint"]["precision"] == "float32"
    check_resumable(tmp_path / "b", config)  # what the command line checks before any compute
    with pytest.raises(ResumeMismatch, match="another configuration"):
        check_resumable(tmp_path / "b", dataclasses.replace(config, seeds=(0, 1, 2)))
    with pytest.raises(CheckpointExists):  # a fresh run never discards it
        run_reproduction(grid, config, out_dir=tmp_path / "b", progress=False)
    seen = []
    resumed = run_reproduction(grid, config, out_dir=tmp_path / "b", resume=True, progress=False, log=seen.append)
    assert [r["chunk"] for r in seen] == [1]  # only the second epoch was trained again
    assert full["status"] == resumed["status"] == ["max_steps", "max_steps"]
    for key, (_, value) in full["arrays"].items():
        np.testing.assert_array_equal(value, resumed["arrays"][key][1], err_msg=key)
    assert np.all(np.isfinite(full["arrays"]["history"][1]))
    (a,), (b,) = checkpoints(tmp_path / "a"), checkpoints(tmp_path / "b")
    assert (a / "state.eqx").read_bytes() == (b / "state.eqx").read_bytes()
    # the library's own loop over the same per-run functions gives the same bits
    draw, _ = grid.data(config)
    train, test = draw(*jax.random.split(jax.random.fold_in(jax.random.key(config.data_seed), 16)), 16)
    alone = train_runs(config.model_spec(), train, test, (1.0,), (0, 1), config.options())
    for key, value in alone.items():
        np.testing.assert_array_equal(value.reshape(full["arrays"][key][1].shape), full["arrays"][key][1], err_msg=key)


def test_nan_run_is_reported_without_losing_the_other(tmp_path):
    tr, te = _data()
    spec, options = CONFIG.model_spec(), CONFIG.options(max_epochs=2)
    ok = train_runs(spec, tr, te, (1.0,), (0, 1), options)
    # lambda = 1e38 overflows the gradient: that run turns NaN; vmapped runs are independent
    mixed = train_runs(spec, tr, te, (1.0, 1e38), (0,), options)
    assert mixed["status"].tolist() == [["max_steps"], ["non_finite"]]  # 2 epochs: the cap, not the fit rule
    assert np.isnan(mixed["test_accuracy"][1, 0]) and np.isnan(mixed["test_R"][1, 0])
    np.testing.assert_allclose(mixed["test_accuracy"][0, 0], ok["test_accuracy"][0, 0], atol=1e-6)
    np.testing.assert_allclose(mixed["test_R"][0, 0], ok["test_R"][0, 0], atol=1e-5)
    assert mixed["epochs"][1, 0] == 1  # frozen after the epoch in which it failed


def test_stopping_rule_counts_epochs_after_fit():
    tr, te = _data()
    # fit_accuracy 0: "fitted" after the first epoch; patience 1 stops one epoch later
    options = CONFIG.options(max_epochs=6, patience=1)
    options = dataclasses.replace(options, fit_accuracy=0.0)
    out = train_runs(CONFIG.model_spec(), tr, te, (1.0,), (0, 1), options)
    assert out["epochs"].tolist() == [[2, 2]]
    assert out["status"].tolist() == [["converged", "converged"]]
    assert np.all(np.isnan(out["history"][2:])) and np.all(np.isfinite(out["history"][:2]))


def test_training_on_R_lowers_R_while_the_task_loss_falls():
    """200 steps (100 epochs of 2 batches; the tiny preset's shapes and compiled code):
    the run trained on BCE + 0.3 R ends with a training R well below the lambda = 0 run's,
    and its task loss still falls. Measured (seed 0), mean of the last 10 epochs: training
    R 0.447 at lambda 0.3 (0.693 over its first 10 epochs) against 0.707 at lambda 0;
    task loss 0.68 -> 0.004; held-out R (64 test pairs) 0.587 against 0.815."""
    tr, te = _data()
    options = CONFIG.options(max_epochs=100, patience=100)  # no early stop
    out = train_runs(CONFIG.model_spec(), tr, te, (0.0, 0.3), (0,), options)
    task, R = out["history"][..., 0, 1], out["history"][..., 0, 2]  # (epoch, lambda)
    late = slice(-10, None)
    assert np.mean(R[late, 1]) < np.mean(R[late, 0]) - 0.15, R[late]
    assert np.mean(R[late, 1]) < np.mean(R[:10, 1]) - 0.1, R  # R itself fell during training
    assert np.mean(task[late, 1]) < 0.1 * np.mean(task[:5, 1]), task[:, 1]
    assert out["test_R"][1, 0] < out["test_R"][0, 0] - 0.1, out["test_R"]  # held out too


def test_a_run_alone_equals_the_same_run_inside_a_grid():
    """With ``runs_per_program=1`` every run has its own compiled program: seed 1 at
    lambda 0.3 trained alone equals seed 1 at lambda 0.3 inside a (lambda 0, 0.3) x
    (seed 0, 1) grid, bit for bit. With the runs vmapped (the default) they differ:
    batched draws of the "rbg" generator differ from a run's own, so its initial network,
    batch order and patches depend on the grid (measured after 3 epochs in a grid of
    seeds 0, 1, 2: train accuracy 0.641 inside the grid, 0.812 alone; with threefry
    draws the histories differ by 8e-5, the rounding of batched convolutions)."""
    tr, te = _data()
    options = CONFIG.options(max_epochs=2, runs_per_program=1)
    grid = train_runs(CONFIG.model_spec(), tr, te, (0.0, 0.3), (0, 1), options)
    alone = train_runs(CONFIG.model_spec(), tr, te, (0.3,), (1,), options)
    for key in ("test_accuracy", "train_accuracy", "test_R", "epochs"):
        np.testing.assert_array_equal(grid[key][1, 1], alone[key][0, 0], err_msg=key)
    np.testing.assert_array_equal(grid["history"][:, 1, 1], alone["history"][:, 0, 0])
