"""Hierarchical tensor factorization (Razin, Maman, Cohen, ICML 2022): structure, tasks,
and the local-component theorems checked along gradient flows (docs/theory.md §3)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorly

import jaxreg as jr
from jaxreg import theory
from jaxreg.factorizations import balanced_tree

HTF = jr.HierarchicalTensorFactorization

TREES = [  # (shape, widths, tree)
    ((3, 4, 5, 2), (3, 4), None),  # default binary tree
    ((2, 3, 2, 3, 2), (2, 3, 4), None),  # odd order: mode 4 is carried up
    ((2,) * 6, (3, 2), balanced_tree(6, 3)),  # pool size 3
    ((3, 2, 4, 2), (3, 2), ((2, 0), (1, 3))),  # non-adjacent, unsorted modes
    ((2, 3, 2), (3, 2), ((0, 1), (2,))),  # a single-child node (the reference's odd pooling)
]


def _random_indices(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(np.stack([rng.integers(0, d, n) for d in shape], axis=1))


@pytest.mark.parametrize("shape,widths,tree", TREES)
def test_entries_match_materialize(shape, widths, tree):
    m = HTF(jax.random.key(0), shape, widths, tree=tree, init_scale=0.7)
    idx = _random_indices(shape, 200)
    w, e, g = eqx.filter_jit(lambda m, i: (m.materialize(), m.entries(i), m.gram_norm()))(m, idx)
    assert w.shape == shape
    err = float(jnp.max(jnp.abs(e - w[tuple(idx.T)])))
    assert err <= 1e-13 * float(jnp.max(jnp.abs(w))), err
    # the Gram-matrix norm used by ht_target equals the dense one
    np.testing.assert_allclose(float(g), float(jnp.linalg.norm(w)), rtol=1e-12)


def test_materialize_matches_explicit_einsum():
    m = HTF(jax.random.key(1), (3, 4, 2, 5), (3, 2), init_scale=0.8)
    l0, l1, l2, l3 = m.leaf_matrices
    m01, m23 = m.node_matrices
    ref = jnp.einsum("ar,br,rs,cu,du,us,s->abcd", l0, l1, m01, l2, l3, m23, m.output)
    np.testing.assert_allclose(m.materialize(), ref, rtol=1e-12, atol=1e-15)
    assert m.nodes == ((0, 1), (2, 3), (0, 1, 2, 3))


def test_flat_tree_is_weighted_cp():
    """A one-level tree (0, 1, 2) is a CP factorization with weights w_out (tensorly)."""
    m = HTF(jax.random.key(2), (3, 4, 5), (6,), tree=(0, 1, 2), init_scale=0.9)
    ref = tensorly.cp_to_tensor((np.asarray(m.output), [np.asarray(f) for f in m.leaf_matrices]))
    np.testing.assert_allclose(np.asarray(m.materialize()), ref, rtol=1e-12, atol=1e-15)
    assert m.rate_exponent == {(0, 1, 2): 2.0 - 2.0 / 4}


@pytest.mark.parametrize("shape,widths,tree", TREES)
def test_balanced_init_is_exact(shape, widths, tree):
    m = HTF(jax.random.key(3), shape, widths, tree=tree, init_scale=0.5, balanced=True)
    sq = {n: v.max() for n, v in m.local_component_norms().items()}
    for node, eps in m.local_balancedness().items():
        # eps is a difference of squared norms; sigma^(2/K) is the common squared norm
        assert float(jnp.max(eps)) <= 1e-14 * float(sq[node]) ** (2 / m.local_orders()[node]) + 1e-300, node
    unbalanced = HTF(jax.random.key(3), shape, widths, tree=tree, init_scale=0.5)
    assert float(jnp.max(unbalanced.balancedness())) > 1e-2


def test_ht_target_norm_and_rank():
    """ht_target has the requested Frobenius norm and HT rank min(widths[0], widths[1]) at
    the two level-1 nodes of a 4-mode binary tree ([[W; (0, 1)]] = (L_0 kr L_1) M_01
    diag(w_out) (...)^T, and the Khatri-Rao product has widths[0] columns)."""
    for rank, expected in [((5, 5), (5, 5)), ((2, 3), (2, 2)), ((4, 3), (3, 3))]:
        model = jr.factorizations.ht_target(jax.random.key(4), (8,) * 4, rank, norm=64.0)
        w = model.materialize()
        np.testing.assert_allclose(float(jnp.linalg.norm(w)), 64.0, rtol=1e-12)
        assert jr.metrics.ht_rank(w) == expected
    assert jr.metrics.ht_rank(jr.factorizations.ht_target(jax.random.key(5), (4,) * 4, 2).materialize()) == (2, 2)


def test_ht_tasks():
    problem = jr.tasks.tensor_completion(jax.random.key(6), (16,) * 4, (5, 5), 500, target="ht", num_test=100)
    truth = problem.ground_truth
    assert isinstance(truth, HTF)
    np.testing.assert_allclose(float(jnp.linalg.norm(problem.target)), 256.0, rtol=1e-12)  # entry RMS 1
    assert float(problem.loss(truth)) <= 1e-24 and float(problem.test_loss(truth)) <= 1e-24
    sensing = jr.tasks.tensor_sensing(jax.random.key(7), (3,) * 4, 2, 30, target="ht", tree=((0, 2), (1, 3)))
    assert jr.metrics.ht_rank(sensing.target, ((0, 2), (1, 3))) == (2, 2)
    # across the tree the target is not low rank: the default tree's matricizations see more
    assert min(jr.metrics.ht_rank(sensing.target)) > 2


# --------------------------------------------------------------------------- theorems
def _problem(order, dim, pool, num_observed):
    tree = balanced_tree(order, pool)
    problem = jr.tasks.tensor_completion(
        jax.random.key(30 + order + pool), (dim,) * order, 2, num_observed, target="ht", tree=tree
    )
    return problem, tree


# (order, dim, pool, widths, observed, init, t1): windows in which the largest root local
# component grows >= 5x, ending before the stiff phase that follows convergence.
IDENTITY_CASES = [
    (3, 3, 2, (3, 3), 14, 0.3, 120.0),
    (4, 3, 2, (3, 3), 40, 0.3, 1120.0),
    (8, 2, 3, (3, 3), 128, 0.5, 1000.0),
]


@pytest.mark.parametrize("order,dim,pool,widths,observed,init,t1", IDENTITY_CASES)
def test_local_component_rate_identity(order, dim, pool, widths, observed, init, t1):
    """d sigma_{nu,r}/dt = K gamma_{nu,r} sigma_{nu,r}^{2-2/K} for every balanced local
    component, at every node, along the flow (Razin et al. 2022, Thm 1)."""
    problem, tree = _problem(order, dim, pool, observed)
    model = HTF(jax.random.key(0), (dim,) * order, widths, tree=tree, init_scale=init, balanced=True)

    def metric(m):
        observed_rate, predicted = theory.rate_identity(problem.end_to_end_loss, m)
        return observed_rate, predicted, m.component_norms()  # the root's local components

    ts = jnp.linspace(0.0, t1, 24)
    traj = jr.gradient_flow(problem.loss, model, t1, ts=ts, metrics=metric, rtol=1e-11, atol=1e-13)
    assert int(traj.status) == jr.Status.COMPLETED
    obs, pred, sigma_root = traj.metrics
    assert obs.shape[1] == sum(model.widths[h - 1] for h in model.plan.heights)  # every node's components
    worst = float(np.max(np.abs(obs - pred) / np.abs(pred)))
    assert worst <= 1e-8, worst
    assert float(jnp.max(sigma_root[-1])) >= 5 * float(jnp.max(sigma_root[0]))
    assert set(model.rate_exponent) == set(model.nodes)


def test_rate_identity_fails_unbalanced():
    problem, tree = _problem(4, 3, 2, 40)
    model = HTF(jax.random.key(1), (3,) * 4, (3, 3), init_scale=0.4)
    obs, pred = theory.rate_identity(problem.end_to_end_loss, model)
    assert float(np.max(np.abs(obs - pred) / np.abs(pred))) > 1e-2


# (order, dim, pool, widths, observed, init, t1)
BOUND_CASES = [(3, 3, 2, (3, 3), 14, 0.4, 60.0), (8, 2, 3, (3, 3), 128, 0.5, 1800.0)]


@pytest.mark.parametrize("order,dim,pool,widths,observed,init,t1", BOUND_CASES)
def test_unbalanced_bounds_and_conservation(order, dim, pool, widths, observed, init, t1):
    """The upper bound of Razin et al. 2021 Thm 2 and the AM-GM lower bound (the default),
    with K for N, per local component, along an unbalanced flow; the K - 1 norm
    differences of every local component are conserved."""
    problem, tree = _problem(order, dim, pool, observed)
    model = HTF(jax.random.key(order % 2), (dim,) * order, widths, tree=tree, init_scale=init)

    def metric(m):
        return theory.unbalanced_bounds(problem.end_to_end_loss, m)

    ts = jnp.linspace(0.0, t1, 24)
    traj = jr.gradient_flow(problem.loss, model, t1, ts=ts, metrics=metric, rtol=1e-11, atol=1e-13)
    assert int(traj.status) == jr.Status.COMPLETED
    obs, low, high = traj.metrics
    slack = 1e-9 * np.maximum(np.abs(low), np.abs(high))
    assert np.all(obs >= low - slack)
    assert np.all(obs <= high + slack)
    assert float(np.max(high - low)) > 0
    drift = float(theory.conservation_drift(model, traj.model))
    assert drift <= 1e-9, drift
    s0, s1 = model.local_component_norms(), traj.model.local_component_norms()
    assert max(float(jnp.max(s1[n] / s0[n])) for n in model.nodes) >= 1.5  # the model moved


def test_incremental_learning_of_root_components():
    """Razin et al. 2022 (Fig. 1 setting, 16^4, HT rank (5, 5), small init, GroupRMSprop):
    the root's local components reach half their final norm one at a time."""
    problem = jr.tasks.tensor_completion(jax.random.key(0), (16,) * 4, (5, 5), 2000, target="ht")
    model = HTF(jax.random.key(1), (16,) * 4, (8, 8), init_scale=0.05)
    traj = jr.gradient_descent(
        problem.loss, model, jr.group_rmsprop(0.1), 8000, save_every=40, metrics=lambda m: m.component_norms()
    )  # the root's local components
    s = np.asarray(traj.metrics)  # (201, 8)
    final = s[-1]
    learned = np.flatnonzero(final >= 0.05 * final.max())
    assert len(learned) >= 3, final
    assert np.all(s[0, learned] <= 0.01 * final[learned])  # all started small
    crossing = np.sort([int(np.argmax(s[:, r] >= 0.5 * final[r])) for r in learned])
    assert crossing[0] > 0
    assert np.all(np.diff(crossing) >= 5), crossing  # one at a time: >= 200 steps apart
    assert float(traj.loss[-1]) <= 0.2 * float(traj.loss[0])


# --------------------------------------------------------------------------- scale
def test_order12_completion_steps_without_materializing():
    """10^12-entry completion: CP and HTF (rank / width 32) take GD steps on the observed
    entries only; the loss decreases."""
    shape = (10,) * 12
    problem = jr.tasks.tensor_completion(jax.random.key(8), shape, 3, 2000, num_test=100)
    assert problem.target is None
    models = [
        jr.TensorFactorization(jax.random.key(9), shape, 32, init_scale=0.5),
        HTF(jax.random.key(9), shape, (32,) * 4, init_scale=0.3),
    ]
    for model in models:
        traj = jr.gradient_descent(problem.loss, model, jr.group_rmsprop(1e-3), 20, save_every=20)
        assert int(traj.status) == jr.Status.COMPLETED
        assert float(traj.loss[-1]) < float(traj.loss[0])
    ht = jr.tasks.tensor_completion(jax.random.key(10), shape, 2, 1000, target="ht", num_test=10)
    np.testing.assert_allclose(float(jnp.mean(ht.train.values**2)), 1.0, rtol=0.5)  # entry RMS 1


# --------------------------------------------------------------------------- errors
@pytest.mark.unchecked_types  # wrong types on purpose: the library's own ValueErrors
@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(tree=((0, 1), (2, 2))), "tree"),  # repeated mode
        (dict(tree=((0, 1), (2,))), "tree"),  # mode 3 missing
        (dict(tree=((0, 1), (2, 3, 4))), "tree"),  # mode out of range
        (dict(tree=((0, 1), (), (2, 3))), "tree"),  # empty node
        (dict(tree=(((0, 1, 2, 3),),)), "tree"),  # single child node chain
        (dict(tree=((0, 1), "23")), "tree"),
        (dict(widths=(4,)), "widths"),
        (dict(widths=(4, 4, 4)), "widths"),
        (dict(widths=(4, 0)), "widths"),
        (dict(widths=4), "widths"),
        (dict(init_scale=0.0), "init_scale"),
        (dict(init_scale=-1.0), "init_scale"),
    ],
)
def test_bad_input(kwargs, name):
    args = dict(shape=(3,) * 4, widths=(4, 4))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        HTF(jax.random.key(0), **args)


def test_bad_ht_target_rank():
    with pytest.raises(ValueError, match="rank"):
        jr.factorizations.ht_target(jax.random.key(0), (3,) * 4, (2, 2, 2))
    with pytest.raises(ValueError, match="rank"):
        jr.tasks.tensor_completion(jax.random.key(0), (3,) * 4, 0, 10, target="ht")


@pytest.mark.parametrize(
    "shape, widths, tree",
    [
        ((4, 5, 3, 4), (6, 5), None),
        ((3, 4, 5), (4, 3), None),
        ((4, 5, 3, 4), (6, 5), ((0, 2), (3, 1))),  # modes out of order
        ((3, 4, 5), (4,), (0, 1, 2)),
    ],
)  # three children at the root
def test_dense_entries_route_equals_gather_route(shape, widths, tree):
    """Many observations: ``entries`` contracts W densely (dense_route); values and
    gradients equal the tree-gather route's."""
    h = jr.HierarchicalTensorFactorization(jax.random.key(2), shape, widths, tree=tree, init_scale=1.0)
    idx = jnp.stack([jax.random.randint(jax.random.key(i), (300,), 0, d) for i, d in enumerate(shape)], axis=1)
    assert h._dense_route(300) and not h._dense_route(4)
    np.testing.assert_allclose(h.entries(idx), h._entries_gather(idx), rtol=1e-12, atol=1e-13)
    g1 = jax.grad(lambda m: jnp.sum(m.entries(idx) ** 2))(h)
    g2 = jax.grad(lambda m: jnp.sum(m._entries_gather(idx) ** 2))(h)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
