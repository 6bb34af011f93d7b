"""benchmarks/time_to_figure.py and benchmarks/_authors_loop.py: the GroupRMSprop step of
the authors'-style loop, the compiled iteration counter, and (with torch) the eager loop
itself, each against jaxreg's ``group_rmsprop`` on tiny problems."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg as jr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _authors_loop  # noqa: E402
import time_to_figure  # noqa: E402

LR, EPS = 1e-2, 1e-4


def _quadratic_grads(params, centers):
    return [2 * (p - c) for p, c in zip(params, centers)]


def test_group_rmsprop_step_matches_jaxreg_over_20_steps():
    rng = np.random.default_rng(0)
    params = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    centers = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    opt = jr.group_rmsprop(LR, eps=EPS)
    p_jax = [jnp.asarray(p) for p in params]
    state, v = opt.init(p_jax), 0.0
    for t in range(1, 21):
        params, v = _authors_loop.group_rmsprop_step(params, _quadratic_grads(params, centers), v, t, lr=LR, eps=EPS)
        updates, state = opt.update(_quadratic_grads(p_jax, centers), state, p_jax)
        p_jax = optax.apply_updates(p_jax, updates)
    for a, b in zip(params, p_jax):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-12, atol=1e-14)


def test_iteration_counter_counts_the_steps_before_the_stop_loss():
    """The compiled counter against a numpy loop of the authors' rule: the loss is checked
    before every step, the run ends at the first loss <= stop."""
    centers = [np.array([1.0, -2.0, 0.5])]

    def loss(p):
        return float(np.mean((p[0] - centers[0]) ** 2))

    params, v, expected = [np.zeros(3)], 0.0, None
    for t in range(1, 10_000):
        if loss(params) <= 1e-3:
            expected = t - 1
            break
        grads = [2 * (params[0] - centers[0]) / 3]
        params, v = _authors_loop.group_rmsprop_step(params, grads, v, t, lr=LR, eps=EPS)
    assert expected is not None and expected > 10
    model = (jnp.zeros(3, jnp.float64),)  # float64: the suite runs with x64 on (conftest)

    def jax_loss(m):
        return jnp.mean((m[0] - jnp.asarray(centers[0])) ** 2)

    iters, final = time_to_figure.rmsprop_iterations(jax_loss, model, lr=LR, eps=EPS, stop=1e-3, cap=10_000)
    capped, _ = time_to_figure.rmsprop_iterations(jax_loss, model, lr=LR, eps=EPS, stop=1e-3, cap=5)
    assert int(iters) == expected and float(final) <= 1e-3
    assert int(capped) == 5


@pytest.mark.parametrize("case", ["matrix", "cp"])
def test_eager_loop_matches_jaxreg_descent(case):
    """20 steps of the authors'-style eager loop (float32) end where jaxreg's
    GroupRMSprop descent does, from the same parameters and observations."""
    pytest.importorskip("torch")
    key = jax.random.key(0)
    if case == "matrix":
        problem = jr.tasks.matrix_completion(key, (6, 6), 2, 20)
        model = jr.MatrixFactorization(jax.random.key(1), (6, 6), 3, init_scale=0.5)
        params = list(model.factors)
    else:
        problem = jr.tasks.tensor_completion(key, (3,) * 4, 2, 40)
        model = jr.TensorFactorization(jax.random.key(1), (3,) * 4, 4, init_scale=0.5)
        params = list(model.factors)
    spec = {
        "case": case,
        "params": [np.asarray(p) for p in params],
        "indices": np.asarray(problem.train.indices),
        "values": np.asarray(problem.train.values),
        "target": np.asarray(problem.target),
        "lr": LR,
        "eps": EPS,
        "stop": -1.0,
        "cap": 20,
    }
    report = _authors_loop.run(spec)
    traj = jr.gradient_descent(problem.loss, model, jr.group_rmsprop(LR, eps=EPS), 20, save_every=20)
    error = (
        problem.squared_reconstruction_error(traj.model)
        if case == "matrix"
        else problem.reconstruction_error(traj.model)
    )
    assert report["iterations"] == 20
    np.testing.assert_allclose(report["error"], float(error), rtol=1e-4)
    np.testing.assert_allclose(report["loss"], float(traj.loss[-1]), rtol=1e-4)
