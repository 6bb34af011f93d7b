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
    norms = [float(jnp.linalg.norm(jr.MatrixFactorization(jax.random.key(s), (60, 60), depth,
                                                          init_scale=1e-2).materialize())) for s in range(8)]
    assert 0.7 <= np.mean(norms) / (1e-2 * np.sqrt(60)) <= 1.3


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
    [(dict(shape=(3, 3), rank=0), "rank"), (dict(shape=(), rank=2), "shape"), (dict(shape=(3, 3), rank=2, init_scale=0), "init_scale")],
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
