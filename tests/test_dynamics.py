import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg as jr


@pytest.fixture(scope="module")
def setup():
    problem = jr.tasks.matrix_completion(jax.random.key(0), (10, 8), 2, 40)
    model = jr.MatrixFactorization(jax.random.key(1), (10, 8), 2, init_scale=0.1)
    return problem, model


def test_stop_at_loss_is_exact_and_saves_inf_after(setup):
    problem, model = setup
    ts = jnp.linspace(0, 1000, 11)
    traj = jr.gradient_flow(problem.loss, model, 1000.0, ts=ts, stop_at_loss=1e-3, rtol=1e-9, atol=1e-12)
    assert int(traj.status) == jr.Status.CONVERGED
    assert float(problem.loss(traj.model)) == pytest.approx(1e-3, rel=1e-6)
    assert np.isinf(np.asarray(traj.ts)).any() and np.isfinite(np.asarray(traj.ts)).any()


def test_max_steps_status(setup):
    problem, model = setup
    traj = jr.gradient_flow(problem.loss, model, 1000.0, max_steps=5)
    assert int(traj.status) == jr.Status.MAX_STEPS


def test_vmap_over_seeds_reports_status_per_seed(setup):
    problem, _ = setup

    def run(key, scale):
        m = jr.MatrixFactorization(key, (10, 8), 2, init_scale=0.1)
        m = jax.tree_util.tree_map(lambda x: x * scale, m)
        return jr.gradient_descent(problem.loss, m, optax.sgd(0.5), 50)

    keys = jax.random.split(jax.random.key(2), 3)
    traj = jax.vmap(run)(keys, jnp.array([1.0, 200.0, 1.0]))  # the middle one diverges
    status = np.asarray(traj.status)
    assert status[1] == jr.Status.NON_FINITE
    assert status[0] == status[2] == jr.Status.COMPLETED
    assert np.all(np.isfinite(np.asarray(traj.loss[0]))) and float(traj.loss[0, -1]) < float(traj.loss[0, 0])


def test_flow_no_recompile_for_new_tolerances_and_times(setup):
    problem, model = setup
    traces = []

    def loss(m):
        traces.append(1)
        return problem.loss(m)

    jr.gradient_flow(loss, model, 1.0, rtol=1e-6, atol=1e-8)
    n = len(traces)
    jr.gradient_flow(loss, model, 2.0, rtol=1e-7, atol=1e-9, ts=None)
    assert len(traces) == n  # same loss function, new values: no new trace


def test_flow_under_jit_and_vmap_matches_loop(setup):
    problem, _ = setup

    def run(key):
        m = jr.MatrixFactorization(key, (10, 8), 2, init_scale=0.1)
        return jr.gradient_flow(problem.loss, m, 20.0, rtol=1e-9, atol=1e-12).model.materialize()

    keys = jax.random.split(jax.random.key(3), 3)
    batched = jax.jit(jax.vmap(run))(keys)
    for i in range(3):
        np.testing.assert_allclose(batched[i], run(keys[i]), rtol=1e-7, atol=1e-10)


def test_descent_saves_and_stops(setup):
    problem, model = setup
    traj = jr.gradient_descent(
        problem.loss, model, optax.sgd(0.2), 400, save_every=100, metrics=lambda m: m.component_norms()
    )
    assert traj.ts.tolist() == [0, 100, 200, 300, 400]
    assert traj.metrics.shape == (5, 8)
    first = float(traj.loss[0])
    stop = jr.gradient_descent(problem.loss, model, optax.sgd(0.2), 400, stop_at_loss=0.5 * first)
    assert int(stop.status) == jr.Status.CONVERGED
    assert float(problem.loss(stop.model)) <= 0.5 * first
    assert int(stop.num_steps) < 400


def test_group_rmsprop_update_rule():
    opt = jr.group_rmsprop(0.1, decay=0.9, eps=1e-6)
    params = {"a": jnp.array([1.0, 2.0]), "b": jnp.array([[3.0]])}
    g = {"a": jnp.array([0.3, -0.4]), "b": jnp.array([[1.2]])}
    state = opt.init(params)
    updates, state = opt.update(g, state, params)
    sq = 0.09 + 0.16 + 1.44
    v_hat = (0.1 * sq) / (1 - 0.9)
    expected = -0.1 * 0.3 / (np.sqrt(v_hat) + 1e-6)
    assert float(updates["a"][0]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(t1=-1.0), "t1"),
        (dict(t1=1.0, rtol=0.0), "rtol"),
        (dict(t1=1.0, max_steps=0), "max_steps"),
        (dict(t1=1.0, ts=jnp.ones((2, 2))), "ts"),
    ],
)
def test_flow_bad_input(setup, kwargs, name):
    problem, model = setup
    with pytest.raises(ValueError, match=name):
        jr.gradient_flow(problem.loss, model, **kwargs)


@pytest.mark.unchecked_types  # wrong types on purpose: the library's own ValueErrors
def test_descent_bad_input(setup):
    problem, model = setup
    with pytest.raises(ValueError, match="save_every"):
        jr.gradient_descent(problem.loss, model, optax.sgd(0.1), 10, save_every=3)
    with pytest.raises(ValueError, match="optimizer"):
        jr.gradient_descent(problem.loss, model, "sgd", 10)
