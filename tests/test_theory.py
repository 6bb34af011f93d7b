"""The theorems of docs/theory.md §1 and §2 and the closed forms of §6, checked along gradient flows."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg as jr
from jaxreg import theory


def _matrix_problem(kind, depth):
    key = jax.random.key(10 + depth)
    if kind == "completion":
        return jr.tasks.matrix_completion(key, (12, 10), 2, 60)
    return jr.tasks.matrix_sensing(key, (12, 10), 2, 60)


def _tensor_problem(kind, order):
    key = jax.random.key(20 + order)
    shape = (4,) * order
    if kind == "completion":
        return jr.tasks.tensor_completion(key, shape, 2, int(0.5 * 4**order), target_norm=4.0 ** (order / 2))
    return jr.tasks.tensor_sensing(key, shape, 2, 40, target_norm=4.0 ** (order / 2))


def _learning_time(problem, model, fraction=0.01):
    """Flow time at which the loss falls to ``fraction`` of its initial value."""
    level = fraction * float(problem.loss(model))
    traj = jr.gradient_flow(problem.loss, model, 1e5, stop_at_loss=level, rtol=1e-6, atol=1e-9)
    assert int(traj.status) == jr.Status.CONVERGED
    return float(traj.ts[-1])


def _relative_residual(observed, predicted):
    """|observed - predicted| relative to the rate's magnitude: |predicted|, floored at 1%
    of that component's largest |rate| along the flow (gamma may cross zero)."""
    observed, predicted = np.asarray(observed), np.asarray(predicted)
    scale = np.maximum(np.abs(predicted), 1e-2 * np.max(np.abs(predicted), axis=0, keepdims=True))
    return np.abs(observed - predicted) / scale


def _identity_along_flow(problem, model, t1, top):
    t1 = _learning_time(problem, model) if t1 is None else t1
    ts = jnp.linspace(0.0, t1, 24)

    def metric(m):
        observed, predicted = theory.rate_identity(problem.end_to_end_loss, m)
        order = jnp.argsort(-m.component_norms())[:top]
        return observed[order], predicted[order], m.component_norms()[order]

    traj = jr.gradient_flow(problem.loss, model, t1, ts=ts, metrics=metric, rtol=1e-11, atol=1e-13)
    assert int(traj.status) == jr.Status.COMPLETED
    return traj.metrics


@pytest.mark.parametrize("kind", ["completion", "sensing"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_matrix_rate_identity(kind, depth):
    """d sigma_r/dt = L (sigma_r^2)^{1-1/L} <-grad L(W), u_r v_r^T> (Arora et al. 2019)."""
    problem = _matrix_problem(kind, depth)
    model = jr.MatrixFactorization(jax.random.key(1), (12, 10), depth, init_scale=1e-2, balanced=True)
    t1 = {1: 20.0, 2: 150.0, 3: 400.0, 4: 600.0}[depth]
    observed, predicted, sigma = _identity_along_flow(problem, model, t1, top=2)
    assert _relative_residual(observed, predicted).max() <= 1e-8
    # the window spans incremental learning: both target modes grow by >= 10x
    assert np.all(sigma[-1] >= 10 * sigma[0])


@pytest.mark.parametrize("kind", ["completion", "sensing"])
@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_cp_rate_identity(kind, order):
    """d sigma_r/dt = N gamma_r sigma_r^{2-2/N} for balanced components (Razin et al. 2021)."""
    problem = _tensor_problem(kind, order)
    init = 0.5 * 0.02 ** (1 / order)  # sigma(0) ~ 0.02 for every order
    model = jr.TensorFactorization(jax.random.key(2), (4,) * order, 6, init_scale=init, balanced=True)
    # flow time at which the loss is down to 1% (measured once with _learning_time)
    t1 = {"completion": {2: 8.1, 3: 158.0, 4: 181.0, 5: 1006.0}, "sensing": {2: 25.8, 3: 80.0, 4: 695.0, 5: 488.0}}[
        kind
    ][order]
    observed, predicted, sigma = _identity_along_flow(problem, model, t1, top=2)
    assert _relative_residual(observed, predicted).max() <= 1e-8
    assert sigma[-1, 0] >= 10 * sigma[0, 0]


def test_rate_identity_fails_for_unbalanced_model():
    """The identity is specific to balancedness: a badly unbalanced init violates it."""
    problem = _tensor_problem("completion", 3)
    model = jr.TensorFactorization(jax.random.key(3), (4,) * 3, 6, init_scale=0.3)
    observed, predicted = theory.rate_identity(problem.end_to_end_loss, model)
    assert np.max(np.abs(observed - predicted) / np.abs(predicted)) > 1e-2


@pytest.mark.parametrize("order", [2, 3, 4])
def test_cp_unbalanced_bounds_hold_along_flow(order):
    """The AM-GM lower bound (the default, not the paper's) and the upper bound of Razin et
    al. 2021, Thm 2: N gamma sigma^{2-2/N} <= dsigma/dt <= N gamma (sigma^{2/N}+eps)^{N-1}."""
    problem = _tensor_problem("completion", order)
    model = jr.TensorFactorization(jax.random.key(4), (4,) * order, 6, init_scale=0.3)
    ts = jnp.linspace(0.0, {2: 4.6, 3: 74.0, 4: 1277.0}[order], 30)

    def metric(m):
        return theory.unbalanced_bounds(problem.end_to_end_loss, m)

    traj = jr.gradient_flow(problem.loss, model, ts[-1], ts=ts, metrics=metric, rtol=1e-11, atol=1e-13)
    observed, low, high = (np.asarray(x) for x in traj.metrics)
    slack = 1e-9 * np.maximum(np.abs(low), np.abs(high))
    assert np.all(observed >= low - slack)
    assert np.all(observed <= high + slack)
    assert np.max(high - low) > 0  # the bounds are not trivially equal: the model is unbalanced


def test_paper_lower_bound_is_below_the_am_gm_one():
    """Both lower bounds of an unbalanced CP component hold, the paper's (Razin et al. 2021,
    Thm 2) is the looser one, and they differ (eps > 0): a swapped or mis-scaled form fails."""
    problem = _tensor_problem("completion", 3)
    model = jr.TensorFactorization(jax.random.key(4), (4,) * 3, 6, init_scale=0.3)
    observed, am_gm, high = (np.asarray(x) for x in theory.unbalanced_bounds(problem.end_to_end_loss, model))
    _, paper, high_paper = (
        np.asarray(x) for x in theory.unbalanced_bounds(problem.end_to_end_loss, model, lower="paper")
    )
    rising = am_gm > 0
    assert rising.any() and np.array_equal(high[rising], high_paper[rising])
    slack = 1e-12 * np.abs(high)
    assert np.all(paper[rising] <= am_gm[rising] + slack[rising])
    assert np.all(am_gm[rising] <= observed[rising] + slack[rising])
    assert np.max((am_gm - paper)[rising] / am_gm[rising]) > 1e-3
    with pytest.raises(ValueError, match="lower must be one of"):
        theory.unbalanced_bounds(problem.end_to_end_loss, model, lower="tight")


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_matrix_conservation_under_flow(depth):
    problem = _matrix_problem("completion", depth)
    model = jr.MatrixFactorization(jax.random.key(5), (12, 10), depth, init_scale=0.5)
    traj = jr.gradient_flow(problem.loss, model, 50.0, rtol=1e-11, atol=1e-13)
    drift = float(theory.conservation_drift(model, traj.model))
    assert drift <= 1e-9
    # the model moved a lot, so the check is not vacuous
    assert float(jnp.linalg.norm(traj.model.materialize() - model.materialize())) > 1.0


@pytest.mark.parametrize("order", [2, 3, 5])
def test_cp_conservation_under_flow(order):
    problem = _tensor_problem("completion", order)
    model = jr.TensorFactorization(jax.random.key(6), (4,) * order, 6, init_scale=0.4)
    traj = jr.gradient_flow(problem.loss, model, {2: 2.1, 3: 16.3, 5: 188.0}[order], rtol=1e-11, atol=1e-13)
    assert float(theory.conservation_drift(model, traj.model)) <= 1e-9
    assert float(problem.loss(traj.model)) < 0.5 * float(problem.loss(model))


@pytest.mark.parametrize("model_kind", ["matrix", "cp"])
def test_gd_conservation_drift_is_first_order_in_step(model_kind):
    """O(eta^2) drift per step, T/eta steps: over a fixed horizon drift ~ eta."""
    if model_kind == "matrix":
        problem = _matrix_problem("completion", 3)
        model = jr.MatrixFactorization(jax.random.key(7), (12, 10), 3, init_scale=0.5)
    else:
        problem = _tensor_problem("completion", 3)
        model = jr.TensorFactorization(jax.random.key(7), (4,) * 3, 6, init_scale=0.4)
    horizon = 5.0
    drifts = []
    for eta in (1e-2, 1e-3):
        traj = jr.gradient_descent(problem.loss, model, optax.sgd(eta), int(round(horizon / eta)))
        drifts.append(float(theory.conservation_drift(model, traj.model)))
    ratio = drifts[0] / drifts[1]
    assert 7.0 <= ratio <= 13.0, (drifts, ratio)


@pytest.mark.parametrize("N", [1, 2, 3])
def test_saxe_aligned_modes_match_closed_form(N):
    """Sections 5a/5c: whitened deep linear regression L = 1/2||W - S||^2, depth N, balanced
    init aligned with S: every singular value follows ds/dt = N s^{2-2/N} (a - s)."""
    key = jax.random.key(8)
    u, _ = jnp.linalg.qr(jax.random.normal(key, (6, 6)))
    v, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(9), (5, 5)))
    a = jnp.array([3.0, 2.0, 1.0, 0.5, 0.25])
    s0 = jnp.array([1e-2, 2e-2, 1e-3, 3e-3, 1e-2])
    target = (u[:, :5] * a) @ v.T
    w0 = (u[:, :5] * s0) @ v.T
    model = jr.MatrixFactorization(jax.random.key(0), (6, 5), N, init_scale=1.0)
    model = eqx.tree_at(lambda m: m.factors, model, jr.factorizations.balanced_factors(w0, N, 5))
    ts = jnp.linspace(0.0, {1: 8.0, 2: 6.0, 3: 12.0}[N], 40)

    def loss(m):
        return 0.5 * jnp.sum((m.materialize() - target) ** 2)

    traj = jr.gradient_flow(loss, model, ts[-1], ts=ts, metrics=lambda m: m.component_norms(), rtol=1e-12, atol=1e-14)
    closed = jax.vmap(lambda t: jnp.sort(jax.vmap(lambda ai, si: theory.aligned_mode(t, ai, si, N))(a, s0))[::-1])(ts)
    rel = np.abs(np.asarray(traj.metrics) - np.asarray(closed)) / np.asarray(closed)
    assert rel.max() <= 1e-9, rel.max()
    assert float(traj.metrics[-1, 0]) > 0.9 * 3.0  # the largest mode was learned


def test_closed_form_depth3_time_inverts():
    s = jnp.array([0.01, 0.3, 1.5, 2.9])
    t = theory.aligned_mode_time(s, 3.0, 1e-3)
    back = jax.vmap(lambda ti: theory.aligned_mode(ti, 3.0, 1e-3, 3))(t)
    np.testing.assert_allclose(back, s, rtol=1e-12)


@pytest.mark.parametrize("N", [2, 3, 4])
def test_constant_gamma_closed_form_cp(N):
    """Section 5b: a rank-1 CP component aligned with G under L(W) = -<G, W>, G = c (x) e_n,
    has gamma = c and follows ds/dt = N c s^{2-2/N}."""
    c, s0 = 0.7, 0.2
    e = jnp.zeros(3).at[0].set(1.0)
    g = c
    for _ in range(N - 1):
        g = jnp.multiply.outer(g, e)
    g = jnp.multiply.outer(g, e) if N > 0 else g
    g = c * jnp.reshape(jnp.ravel(g) / c, (3,) * N)
    model = jr.TensorFactorization(jax.random.key(0), (3,) * N, 1, init_scale=1.0)
    model = eqx.tree_at(
        lambda m: m.factors, model, tuple(jnp.full((3, 1), 0.0).at[0, 0].set(s0 ** (1 / N)) for _ in range(N))
    )
    t_end = 0.8 * theory.blowup_time(c, s0, N) if N >= 3 else 2.0
    ts = jnp.linspace(0.0, t_end, 30)
    traj = jr.gradient_flow(
        lambda m: -jnp.sum(g * m.materialize()),
        model,
        t_end,
        ts=ts,
        metrics=lambda m: m.component_norms()[0],
        rtol=1e-12,
        atol=1e-14,
    )
    closed = theory.constant_gamma(ts, c, s0, N)
    rel = np.abs(np.asarray(traj.metrics) - np.asarray(closed)) / np.asarray(closed)
    assert rel.max() <= 1e-9, rel.max()
    assert float(closed[-1]) > 2 * s0


@pytest.mark.parametrize("N", [3, 4, 6])
def test_constant_gamma_is_infinite_from_the_blow_up_on(N):
    """Past t* the closed form's base s0^{-(N-2)/N} - c (N-2) t is negative: a fractional
    power of it is not s(t) (it gave -8 at N = 3 and 0.25 at N = 4), so s(t) = inf there."""
    c, s0 = 1.0, 1.0
    t_star = theory.blowup_time(c, s0, N)
    s = np.asarray(theory.constant_gamma(jnp.array([0.5, 0.99, 1.01, 1.5, 3.0]) * t_star, c, s0, N))
    assert np.all(np.isfinite(s[:2])) and s[1] > 10 * s0
    assert np.all(s[2:] == np.inf), s
    with pytest.raises(ValueError, match="N must be"):
        theory.constant_gamma(1.0, c, s0, 0)


def test_euler_equals_sgd():
    """Section 5d: diffrax Euler with dt = eta is optax.sgd(eta), step for step."""
    problem = _matrix_problem("completion", 3)
    model = jr.MatrixFactorization(jax.random.key(11), (12, 10), 3, init_scale=0.5)
    eta = 1e-2
    flow = jr.gradient_flow(problem.loss, model, 100 * eta, solver=diffrax.Euler(), dt0=eta)
    gd = jr.gradient_descent(problem.loss, model, optax.sgd(eta), 100)
    assert int(flow.num_steps) == 100 and int(gd.num_steps) == 100
    for a, b in zip(flow.model.factors, gd.model.factors):
        assert float(jnp.max(jnp.abs(a - b))) <= 1e-12 * max(1.0, float(jnp.max(jnp.abs(b))))
    assert float(jnp.max(jnp.abs(gd.model.factors[0] - model.factors[0]))) > 1e-3


def test_group_rmsprop_follows_flow_path():
    """GroupRMSprop rescales the gradient by one scalar: with a small rate it traces the
    flow's path, so at equal loss it is at the same end-to-end matrix."""
    problem = _matrix_problem("completion", 2)
    model = jr.MatrixFactorization(jax.random.key(12), (12, 10), 2, init_scale=0.1, balanced=True)
    gd = jr.gradient_descent(problem.loss, model, jr.group_rmsprop(1e-3), 20000, save_every=20000, stop_at_loss=0.05)
    assert int(gd.status) == jr.Status.CONVERGED
    level = float(problem.loss(gd.model))
    flow = jr.gradient_flow(problem.loss, model, 1e4, stop_at_loss=level, rtol=1e-11, atol=1e-13)
    assert int(flow.status) == jr.Status.CONVERGED
    w_gd, w_flow = gd.model.materialize(), flow.model.materialize()
    rel = float(jnp.linalg.norm(w_gd - w_flow) / jnp.linalg.norm(w_flow))
    assert rel <= 1e-3, rel
    assert float(jnp.linalg.norm(w_flow - model.materialize()) / jnp.linalg.norm(w_flow)) > 0.5


def test_incremental_learning_depth3_completion():
    """Arora et al. 2019 setting: singular values reach half their final value one at a
    time, in order (100x100, rank 5, 2000 observations, depth 3, init 1e-3)."""
    problem = jr.tasks.matrix_completion(jax.random.key(0), (100, 100), 5, 2000)
    model = jr.MatrixFactorization(jax.random.key(1), (100, 100), 3, init_scale=1e-3)
    ts = jnp.linspace(0.0, 2500.0, 251)
    traj = jr.gradient_flow(
        problem.loss, model, 2500.0, ts=ts, metrics=lambda m: m.component_norms()[:5], rtol=1e-7, atol=1e-9
    )
    s = np.asarray(traj.metrics)
    crossing = [int(np.argmax(s[:, r] >= 0.5 * s[-1, r])) for r in range(5)]
    assert all(c > 0 for c in crossing)
    assert all(b - a >= 2 for a, b in zip(crossing, crossing[1:])), crossing
