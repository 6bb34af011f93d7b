import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorly as tl

import jaxreg as jr


@pytest.mark.parametrize("shape", [(7, 5), (5, 9), (6, 6)])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("init", ["gaussian", "identity", "orthogonal"])
def test_matrix_balanced_init_is_exact(shape, depth, init):
    m = jr.MatrixFactorization(jax.random.key(0), shape, depth, init_scale=0.3, init=init, balanced=True)
    unbalanced = jr.MatrixFactorization(jax.random.key(0), shape, depth, init_scale=0.3, init=init)
    np.testing.assert_allclose(m.materialize(), unbalanced.materialize(), atol=1e-13)
    scale = max(float(jnp.linalg.norm(f @ f.T)) for f in m.factors)
    if depth > 1:
        assert float(jnp.max(m.balancedness())) <= 1e-13 * scale
    assert m.factors[0].shape[1] == shape[1] and m.factors[-1].shape[0] == shape[0]


def test_matrix_unbalanced_gaussian_is_not_balanced():
    m = jr.MatrixFactorization(jax.random.key(0), (8, 8), 3, init_scale=1.0)
    assert float(jnp.min(m.balancedness())) > 1e-2


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_matrix_init_scale_convention(depth):
    """||W(0)||_F ~ init_scale * sqrt(n) (Arora et al. 2019), averaged over keys."""
    norms = [
        float(
            jnp.linalg.norm(jr.MatrixFactorization(jax.random.key(s), (60, 60), depth, init_scale=1e-2).materialize())
        )
        for s in range(8)
    ]
    assert 0.7 <= np.mean(norms) / (1e-2 * np.sqrt(60)) <= 1.3


@pytest.mark.parametrize("depth", [1, 3])
def test_matrix_orthogonal_init_scales(depth):
    """Init "orthogonal": every singular value of W(0) is init_scale (||W(0)||_F = a sqrt(n), as
    the other inits); "orthogonal_reference": a sqrt(n) each (Arora et al. 2019's code)."""
    n, a = 9, 1e-2
    for init, sv in (("orthogonal", a), ("orthogonal_reference", a * np.sqrt(n))):
        w = jr.MatrixFactorization(jax.random.key(depth), (n, n), depth, init_scale=a, init=init).materialize()
        np.testing.assert_allclose(np.linalg.svd(np.asarray(w), compute_uv=False), sv, rtol=1e-12)


def test_matrix_entries_match_materialize_nonsquare():
    m = jr.MatrixFactorization(jax.random.key(1), (7, 11), 3, width=4, init_scale=1.0)
    idx = jnp.array([[0, 0], [6, 10], [3, 7], [6, 0]])
    np.testing.assert_allclose(m.entries(idx), m.materialize()[idx[:, 0], idx[:, 1]], rtol=1e-12)
    assert m.factors[0].shape == (4, 11) and m.factors[1].shape == (4, 4) and m.factors[2].shape == (7, 4)


def test_matrix_component_norms_and_exponent():
    m = jr.MatrixFactorization(jax.random.key(2), (6, 4), 4, init_scale=1.0)
    s = np.linalg.svd(np.asarray(m.materialize()), compute_uv=False)
    np.testing.assert_allclose(m.component_norms(), s, rtol=1e-10)
    assert m.rate_exponent == pytest.approx(1.5)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_cp_matches_tensorly_and_entries(order):
    shape = (3, 4, 5, 2)[:order]
    t = jr.TensorFactorization(jax.random.key(3), shape, 6, init_scale=1.0)
    dense = tl.cp_to_tensor((np.ones(6), [np.asarray(f) for f in t.factors]))
    np.testing.assert_allclose(t.materialize(), dense, rtol=1e-12)
    idx = jnp.stack([jax.random.randint(jax.random.key(i), (20,), 0, d) for i, d in enumerate(shape)], axis=1)
    np.testing.assert_allclose(t.entries(idx), dense[tuple(np.asarray(idx).T)], rtol=1e-12)
    assert t.rate_exponent == pytest.approx(2 - 2 / order)


def test_cp_balanced_keeps_tensor_and_equalizes_norms():
    a = jr.TensorFactorization(jax.random.key(4), (3, 4, 5), 7, init_scale=0.5)
    b = jr.TensorFactorization(jax.random.key(4), (3, 4, 5), 7, init_scale=0.5, balanced=True)
    np.testing.assert_allclose(a.materialize(), b.materialize(), atol=1e-14)
    np.testing.assert_allclose(a.component_norms(), b.component_norms(), rtol=1e-12)
    assert float(jnp.max(b.balancedness())) <= 1e-14
    assert float(jnp.max(a.balancedness())) > 1e-3


def test_cp_init_std():
    t = jr.TensorFactorization(jax.random.key(5), (10,) * 4, 1000, init_scale=5e-3)
    assert np.std(np.asarray(t.factors[0])) == pytest.approx(5e-3, rel=0.05)


def test_no_x64_on_import():
    import subprocess
    import sys

    code = "import jaxreg, jax.numpy as jnp; print(jnp.zeros(1).dtype)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "float32"


@pytest.mark.unchecked_types  # wrong types on purpose: the library's own ValueErrors
@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(shape=(10,), depth=2), "shape"),
        (dict(shape=(10, 0), depth=2), "shape[1]"),
        (dict(shape=(10, 10), depth=0), "depth"),
        (dict(shape=(10, 10), depth=2, init_scale=-1.0), "init_scale"),
        (dict(shape=(10, 10), depth=2, init_scale=float("nan")), "init_scale"),
        (dict(shape=(10, 10), depth=2, width=0), "width"),
        (dict(shape=(10, 10), depth=2, init="zeros"), "init"),
    ],
)
def test_matrix_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        jr.MatrixFactorization(jax.random.key(0), **kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(shape=(3, 3), rank=0), "rank"),
        (dict(shape=(), rank=2), "shape"),
        (dict(shape=(3, 3), rank=2, init_scale=0), "init_scale"),
    ],
)
def test_cp_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        jr.TensorFactorization(jax.random.key(0), **kwargs)


def test_entries_out_of_range():
    m = jr.MatrixFactorization(jax.random.key(0), (4, 5), 2)
    with pytest.raises(ValueError, match="indices"):
        m.entries(jnp.array([[0, 5]]))
    t = jr.TensorFactorization(jax.random.key(0), (3, 3, 3), 2)
    with pytest.raises(ValueError, match="indices"):
        t.entries(jnp.array([[0, 1]]))


def _many_indices(shape, k, seed=0):
    return jnp.stack([jax.random.randint(jax.random.key(seed + i), (k,), 0, d) for i, d in enumerate(shape)], axis=1)


@pytest.mark.parametrize("shape", [(3, 4, 5), (3, 4, 5, 2), (4, 5), (2, 33, 2, 3)])
def test_cp_dense_route_equals_gather_route_and_gradients(shape):
    """With many observations ``entries`` reads a dense matricization (dense_route);
    values and gradients must equal the gather route's."""
    from jaxreg.factorizations.cp import cp_dense_route, cp_entries_gather

    t = jr.TensorFactorization(jax.random.key(3), shape, 6, init_scale=1.0)
    idx = _many_indices(shape, 200)
    assert cp_dense_route(shape, 6, 200) and not cp_dense_route(shape, 6, 5)
    np.testing.assert_allclose(t.entries(idx), cp_entries_gather(t.factors, idx), rtol=1e-12, atol=1e-14)
    g1 = jax.grad(lambda mm: jnp.sum(mm.entries(idx) ** 2))(t).factors
    g2 = jax.grad(lambda f: jnp.sum(cp_entries_gather(f, idx) ** 2))(t.factors)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_cp_dense_route_second_derivatives():
    """The Khatri-Rao product's derivative rule (custom JVP) supports forward mode: the
    Hessian of a dense-route loss equals the gather route's."""
    from jaxreg.factorizations.cp import cp_dense_route, cp_entries, cp_entries_gather

    shape = (3, 4, 2, 3)
    t = jr.TensorFactorization(jax.random.key(5), shape, 2, init_scale=1.0)
    idx = _many_indices(shape, 60)
    assert cp_dense_route(shape, 2, 60)
    h1 = jax.hessian(lambda f: jnp.sum(jnp.sin(cp_entries(f, idx))))(t.factors)
    h2 = jax.hessian(lambda f: jnp.sum(jnp.sin(cp_entries_gather(f, idx))))(t.factors)
    for a, b in zip(jax.tree_util.tree_leaves(h1), jax.tree_util.tree_leaves(h2)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_matrix_dense_route_equals_gather_route():
    m = jr.MatrixFactorization(jax.random.key(1), (7, 11), 3, width=4, init_scale=1.0)
    idx = _many_indices((7, 11), 60)
    assert m._dense_route(60) and not m._dense_route(4)
    np.testing.assert_allclose(m.entries(idx), m._entries_gather(idx), rtol=1e-12, atol=1e-14)
    g1 = jax.grad(lambda mm: jnp.sum(mm.entries(idx) ** 2))(m)
    g2 = jax.grad(lambda mm: jnp.sum(mm._entries_gather(idx) ** 2))(m)
    for a, b in zip(g1.factors, g2.factors):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_dense_route_rule():
    from jaxreg.factorizations._common import dense_route

    def matrix(shape, k, w):
        return dense_route(shape, k, w, dense_flops=shape[0] * shape[1] * w, gather_flops=k * w)

    assert matrix((100, 100), 2000, 100)  # Arora et al.'s completion: W is smaller
    assert not matrix((100, 100), 20, 100)  # few observations: gather
    assert not matrix((10**6, 10**6), 10**6, 1000)  # 10^12 entries: never dense
    assert not matrix((1000, 1000), 10**4, 200)  # fits in memory, but 100x the flops
