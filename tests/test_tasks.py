import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg as jr


def test_matrix_completion_reference_setting():
    p = jr.tasks.matrix_completion(jax.random.key(0), (100, 100), 5, 2000)
    assert float(jnp.linalg.norm(p.target)) == pytest.approx(100.0, rel=1e-10)
    assert np.linalg.matrix_rank(np.asarray(p.target)) == 5
    train = {tuple(r) for r in np.asarray(p.train.indices)}
    test = {tuple(r) for r in np.asarray(p.test.indices)}
    assert len(train) == 2000 and len(test) == 8000 and not train & test
    np.testing.assert_allclose(p.train.values, p.target[tuple(np.asarray(p.train.indices).T)])


def test_nonsquare_indices_cover_the_whole_matrix():
    """The reference's `idx // rows, idx % cols` bug would miss columns of a 3 x 7 matrix."""
    p = jr.tasks.matrix_completion(jax.random.key(1), (3, 7), 1, 10)
    allidx = np.concatenate([np.asarray(p.train.indices), np.asarray(p.test.indices)])
    assert sorted(map(tuple, allidx)) == [(i, j) for i in range(3) for j in range(7)]


def test_completion_loss_and_errors():
    p = jr.tasks.matrix_completion(jax.random.key(2), (20, 30), 2, 100)
    m = jr.MatrixFactorization(jax.random.key(3), (20, 30), 2, init_scale=0.5)
    w = m.materialize()
    idx = np.asarray(p.train.indices)
    expected = np.mean((np.asarray(w)[idx[:, 0], idx[:, 1]] - np.asarray(p.train.values)) ** 2)
    assert float(p.loss(m)) == pytest.approx(expected, rel=1e-12)
    assert float(p.end_to_end_loss(w)) == pytest.approx(expected, rel=1e-12)
    rel = np.linalg.norm(np.asarray(w - p.target)) / np.linalg.norm(np.asarray(p.target))
    assert float(p.reconstruction_error(m)) == pytest.approx(rel, rel=1e-12)
    assert float(p.squared_reconstruction_error(m)) == pytest.approx(rel**2, rel=1e-12)


def test_same_key_same_problem_and_different_key_differs():
    a = jr.tasks.matrix_completion(jax.random.key(4), (10, 10), 2, 30)
    b = jr.tasks.matrix_completion(jax.random.key(4), (10, 10), 2, 30)
    c = jr.tasks.matrix_completion(jax.random.key(5), (10, 10), 2, 30)
    np.testing.assert_array_equal(a.train.indices, b.train.indices)
    assert not np.array_equal(np.asarray(a.target), np.asarray(c.target))


def test_sensing_measurements():
    p = jr.tasks.matrix_sensing(jax.random.key(6), (8, 6), 2, 50)
    ops = np.asarray(p.train.operators)
    np.testing.assert_allclose(
        p.train.values, np.einsum("kij,ij->k", ops, np.asarray(p.target)), rtol=1e-10, atol=1e-14
    )
    assert p.test.size == 50
    t = jr.tasks.tensor_sensing(jax.random.key(7), (3, 4, 5), 2, 40)
    assert t.train.operators.shape == (40, 3, 4, 5)
    assert float(jnp.linalg.norm(t.target)) == pytest.approx(1.0, rel=1e-10)


def test_tensor_completion_cp_target():
    p = jr.tasks.tensor_completion(jax.random.key(8), (10,) * 4, 5, 2000)
    assert float(jnp.linalg.norm(p.target)) == pytest.approx(1.0, rel=1e-10)
    assert p.train.size == 2000 and p.test.size == 10**4 - 2000


def test_huge_tensor_completion_stays_factored():
    p = jr.tasks.tensor_completion(jax.random.key(9), (10,) * 12, 3, 1000, num_test=500)
    assert p.target is None and p.train.indices.shape == (1000, 12)
    flat = np.ravel_multi_index(tuple(np.asarray(p.train.indices).T), (10,) * 12)
    assert len(np.unique(flat)) == 1000
    model = jr.TensorFactorization(jax.random.key(0), (10,) * 12, 4, init_scale=0.5)
    assert np.isfinite(float(p.loss(model)))
    with pytest.raises(ValueError, match="not materialized"):
        p.reconstruction_error(model)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda k: jr.tasks.matrix_completion(k, (5, 5), 2, 25), "num_observed"),
        (lambda k: jr.tasks.matrix_completion(k, (5, 5), 6, 10), "rank"),
        (lambda k: jr.tasks.matrix_completion(k, (5, 5), 2, 0), "num_observed"),
        (lambda k: jr.tasks.matrix_completion(k, (5, 5), 2, 10, num_test=20), "num_test"),
        (lambda k: jr.tasks.tensor_completion(k, (3, 3), 2, 4, target="tucker"), "target"),
        (lambda k: jr.tasks.matrix_sensing(k, (5, 5), 2, -1), "num_measurements"),
        (lambda k: jr.tasks.matrix_completion(k, (5, 5), 2, 10, target_norm=float("inf")), "target_norm"),
    ],
)
def test_task_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call(jax.random.key(0))
