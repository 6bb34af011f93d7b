"""Deep tensor factorization (Hariz et al. 2022): structure, the conservation laws, the
polynomial-growth identity and bound along gradient flows (docs/theory.md §4)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorly

import jaxreg as jr
from jaxreg import theory
from jaxreg_lab.reproductions._results import stack

DTF = jr.DeepTensorFactorization


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_entries_match_materialize(depth):
    shape = (3, 4, 2, 5)
    m = DTF(jax.random.key(depth), shape, 6, depth, init_scale=0.6)
    rng = np.random.default_rng(0)
    idx = jnp.asarray(np.stack([rng.integers(0, d, 200) for d in shape], axis=1))
    w, e = eqx.filter_jit(lambda m, i: (m.materialize(), m.entries(i)))(m, idx)
    assert w.shape == shape and m.layers[1].shape == (depth, 6, 4, 4)
    err = float(jnp.max(jnp.abs(e - w[tuple(idx.T)])))
    assert err <= 1e-13 * float(jnp.max(jnp.abs(w))), err


def test_depth0_is_cp_and_layers_multiply():
    m = DTF(jax.random.key(0), (3, 4, 5), 7, 0, init_scale=0.5)
    cp = jr.TensorFactorization(jax.random.key(1), (3, 4, 5), 7)
    cp = eqx.tree_at(lambda t: t.factors, cp, m.factors)
    np.testing.assert_allclose(m.materialize(), cp.materialize(), rtol=1e-13)
    ref = tensorly.cp_to_tensor((np.ones(7), [np.asarray(f) for f in m.factors]))
    np.testing.assert_allclose(np.asarray(m.materialize()), ref, rtol=1e-12)
    np.testing.assert_allclose(m.component_norms(), cp.component_norms(), rtol=1e-13)
    np.testing.assert_allclose(m.rate_sigma(), cp.component_norms(), rtol=1e-13)
    # depth 2: v_r^n = A_2 A_1 w_r^n, checked for one (n, r) against plain matmuls
    d = DTF(jax.random.key(2), (3, 4, 5), 7, 2, init_scale=0.5)
    v = d.layers[1][1, 3] @ d.layers[1][0, 3] @ d.factors[1][:, 3]
    np.testing.assert_allclose(d.end_factors()[1][:, 3], v, rtol=1e-13)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_balanced_init_is_exact(depth):
    m = DTF(jax.random.key(3), (3, 4, 5), 6, depth, init_scale=0.5, balanced=True)
    s2 = float(jnp.max(jnp.sum(m.factors[0] ** 2, axis=0)))
    assert float(jnp.max(m.balancedness())) <= 1e-14 * s2
    q = m.conserved_quantities()
    assert float(jnp.max(jnp.abs(q["factors"]))) <= 1e-14 * s2
    assert ("layers" in q) == (depth > 0)
    if depth:
        assert float(jnp.max(jnp.abs(q["layers"]))) <= 1e-14 * s2
    assert float(jnp.max(DTF(jax.random.key(3), (3, 4, 5), 6, depth, init_scale=0.5).balancedness())) > 1e-2


def _problem():
    return jr.tasks.tensor_completion(jax.random.key(40), (4,) * 3, 2, 32, target_norm=8.0)


@pytest.mark.parametrize("depth,init,t1", [(1, 0.4, 30.0), (2, 0.6, 40.0), (3, 0.7, 40.0)])
def test_polynomial_growth_identity_and_bound(depth, init, t1):
    """Along gradient flow from a Frobenius-balanced init:
    d sigma_r/dt = N delta_r sigma_r^{2-2/N+k} (relative residual <= 1e-8),
    ||(x)_n v_r^n|| <= sigma_r^{1+k}, hence |delta_r| <= ||grad L(W)||_F, and the
    conservation laws hold (drift <= 1e-9). With Gaussian A's the norm bound is loose
    (ratios 1e-4 to 0.1 here), so it cannot tell a wrong exponent: the identity does not
    either, since delta absorbs any power of sigma. The exponent is pinned by
    test_rate_terms_integrate_to_the_closed_form_growth, where both bounds are attained
    and checked as equalities at sigma < 1."""
    problem = _problem()
    model = DTF(jax.random.key(1), (4,) * 3, 4, depth, init_scale=init, balanced=True)

    def metric(m):
        obs, pred = theory.rate_identity(problem.end_to_end_loss, m)
        _, delta, _ = theory.gammas(problem.end_to_end_loss, m)
        grad_norm = jnp.linalg.norm(jax.grad(problem.end_to_end_loss)(m.materialize()))
        ratio = m.component_norms() / m.rate_sigma() ** (1 + depth)
        return obs, pred, ratio, jnp.max(jnp.abs(delta)) / grad_norm, m.component_norms()

    ts = jnp.linspace(0.0, t1, 24)
    traj = jr.gradient_flow(problem.loss, model, t1, ts=ts, metrics=metric, rtol=1e-11, atol=1e-13)
    assert int(traj.status) == jr.Status.COMPLETED
    obs, pred, ratio, delta_ratio, ends = (np.asarray(x) for x in traj.metrics)
    residual = np.abs(obs - pred) / np.abs(pred)
    assert residual.max() <= 1e-8, residual.max()
    assert ratio.max() <= 1.0 and delta_ratio.max() <= 1.0
    assert ratio.max() < 0.99  # Gaussian A's: the bound is strict (equality needs rank-one A's)
    assert float(theory.conservation_drift(model, traj.model)) <= 1e-9
    assert ends[-1].max() >= 5 * ends[0].max()  # the end tensor was learned: not a vacuous window
    assert float(traj.loss[-1]) <= 0.5 * float(traj.loss[0])
    assert model.rate_exponent == 2.0 - 2.0 / 3 + depth


def test_identity_needs_equal_factor_norms():
    """Only the equality of ||w_r^n|| across n enters the identity: rescaling the A's
    keeps it exact, unbalancing the w's breaks it."""
    problem = _problem()
    model = DTF(jax.random.key(1), (4,) * 3, 4, 2, init_scale=0.6, balanced=True)
    scaled_a = eqx.tree_at(lambda m: m.layers, model, tuple(a * 1.7 for a in model.layers))
    obs, pred = theory.rate_identity(problem.end_to_end_loss, scaled_a)
    assert float(jnp.max(jnp.abs(obs - pred) / jnp.abs(pred))) <= 1e-12
    skewed = eqx.tree_at(lambda m: m.factors, model, (model.factors[0] * 2.0, model.factors[1] / 2.0, model.factors[2]))
    obs, pred = theory.rate_identity(problem.end_to_end_loss, skewed)
    assert float(jnp.max(jnp.abs(obs - pred) / jnp.abs(pred))) > 0.1


def test_rank_one_aligned_layers_attain_the_bound():
    """||(x) v|| = sigma^{1+k} when every A_i = s u_{i+1} u_i^T with u_1 = w/||w||, s = ||w||."""
    model = DTF(jax.random.key(5), (3, 3), 1, 2, init_scale=1.0, balanced=True)
    layers = []
    for n, w in enumerate(model.factors):
        s = jnp.linalg.norm(w[:, 0])
        u = [w[:, 0] / s] + [jax.random.normal(jax.random.key(10 + n + i), (3,)) for i in range(2)]
        u = [x / jnp.linalg.norm(x) for x in u]
        layers.append(jnp.stack([s * jnp.outer(u[i + 1], u[i]) for i in range(2)])[:, None])
    aligned = eqx.tree_at(lambda m: m.layers, model, tuple(layers))
    assert float(jnp.max(aligned.balancedness())) <= 1e-14
    np.testing.assert_allclose(aligned.component_norms(), aligned.rate_sigma() ** 3, rtol=1e-13)


def test_deeper_factors_lower_tensor_rank():
    """Hariz et al. 2022: at equal init, larger k ends at a lower effective tensor rank
    (effective rank of the end component norms), mean over 4 seeds."""
    problem = jr.tasks.tensor_completion(jax.random.key(50), (5,) * 3, 2, 60, target_norm=5.0**1.5)

    def run(depth):
        keys = jr.seed_keys(0, 4)
        # the inits drawn outside the vmapped program (draws inside it triple its compile time)
        models = stack([DTF(k, (5,) * 3, 8, depth, init_scale=0.3) for k in keys])

        def one(key, model):
            traj = jr.gradient_descent(problem.loss, model, jr.group_rmsprop(1e-2), 4000, save_every=4000)
            return jr.metrics.component_norm_entropy_rank(traj.model.end_component_norms()), traj.loss[-1]

        return jr.sweep(one, keys, models)

    erank0, loss0 = run(0)
    erank3, loss3 = run(3)
    assert float(jnp.max(loss0)) < 0.05 and float(jnp.max(loss3)) < 0.05  # both fit the data
    assert float(jnp.mean(erank3)) < float(jnp.mean(erank0)) - 0.5, (erank0, erank3)


@pytest.mark.unchecked_types  # wrong types on purpose: the library's own ValueErrors
@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(factor_depth=-1), "factor_depth"),
        (dict(factor_depth=1.5), "factor_depth"),
        (dict(rank=0), "rank"),
        (dict(init_scale=0.0), "init_scale"),
        (dict(shape=(3, 0)), "shape"),
    ],
)
def test_bad_input(kwargs, name):
    args = dict(shape=(3, 3, 3), rank=4, factor_depth=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        DTF(jax.random.key(0), **args)


def test_rate_terms_integrate_to_the_closed_form_growth():
    """A rank-one aligned component (w_r^n = x e_1, A_i^{n,r} = x e_1 e_1^T, Frobenius
    balanced, attaining ||(x)_n v|| = sigma^{1+k}) under L(W) = -<G, W>, G = c (x)_n e_1,
    stays aligned, so delta = c exactly and sigma follows ds/dt = N c s^p, p = 2 - 2/N + k:
    s(t) = (s0^{1-p} - (p-1) N c t)^{1/(1-p)}. The closed form is built from the model's
    own rate_terms at t = 0, at sigma < 1: a wrong exponent with a delta normalization
    that absorbs it (the identity alone cannot tell) gives delta(0) != c and another curve.
    The component attains both bounds, ||(x)_n v|| = sigma^{1+k} and |delta| = ||grad L||_F,
    along the flow: checked as equalities at sigma < 1, where sigma^{1+k} differs from any
    other power (a wrong exponent, in the model or in the bound, fails them)."""
    n_modes, k, c, s0 = 3, 2, 0.5, 0.3
    x = s0 ** (1.0 / n_modes)
    e = jnp.zeros((2, 1)).at[0, 0].set(1.0)
    model = DTF(jax.random.key(0), (2,) * n_modes, 1, k, init_scale=1.0)
    model = eqx.tree_at(
        lambda m: (m.factors, m.layers),
        model,
        ((x * e,) * n_modes, (x * jnp.broadcast_to((e @ e.T)[None, None], (k, 1, 2, 2)),) * n_modes),
    )
    g = c * jnp.einsum("i,j,l->ijl", e[:, 0], e[:, 0], e[:, 0])

    def loss_w(w):
        return -jnp.sum(g * w)

    terms = theory.rate_terms(loss_w, model)
    np.testing.assert_allclose(terms.sigma, [s0], rtol=1e-14)
    a, p = float(terms.coefficient[0] * terms.gamma[0]), float(terms.exponent[0])
    t_end = 0.8 * s0 ** (1 - p) / ((p - 1) * a)  # 80% of the blow-up time
    ts = jnp.linspace(0.0, t_end, 12)
    traj = jr.gradient_flow(
        lambda m: loss_w(m.materialize()),
        model,
        t_end,
        ts=ts,
        rtol=1e-12,
        atol=1e-14,
        metrics=lambda m: (m.rate_sigma()[0], theory.rate_terms(loss_w, m).gamma[0], m.component_norms()[0]),
    )
    sigma, delta, end_norm = (np.asarray(v) for v in traj.metrics)
    closed = (s0 ** (1 - p) - (p - 1) * a * np.asarray(ts)) ** (1 / (1 - p))
    assert np.max(np.abs(sigma - closed) / closed) <= 1e-8
    np.testing.assert_allclose(delta, c, rtol=1e-10)
    # the bounds are tight here: ||(x)_n v|| = sigma^{1+k}, |delta| = ||grad L(W)||_F = ||G||_F
    np.testing.assert_allclose(end_norm, sigma ** (1 + k), rtol=1e-10)
    np.testing.assert_allclose(np.abs(delta), float(jnp.linalg.norm(g)), rtol=1e-10)
    assert sigma[-1] >= 1.5 * s0 and sigma[-1] < 1.0  # real growth, and sigma < 1 throughout
