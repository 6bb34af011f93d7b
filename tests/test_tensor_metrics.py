"""Tensor rank metrics: HT rank, CP rank by CP-ALS, entropy rank of component norms."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg as jr


def test_ht_rank_follows_the_tree():
    """A tensor u (x) v with u over modes {0, 1} and v over {2, 3} of ranks 3, 2 has
    rank 1 across the root split and the node ranks of its pieces."""
    k = jax.random.split(jax.random.key(0), 5)
    x = jnp.einsum("ir,jr->ij", jax.random.normal(k[1], (4, 3)), jax.random.normal(k[2], (4, 3)))  # rank 3
    y = jnp.einsum("ir,jr->ij", jax.random.normal(k[3], (4, 2)), jax.random.normal(k[4], (4, 2)))  # rank 2
    t = jnp.einsum("ab,cd->abcd", x, y)
    # nodes (0,1) and (2,3): [[t; (0,1)]] = vec(x) vec(y)^T has rank 1
    assert jr.metrics.ht_rank(t) == (1, 1)
    # tree ((0,2),(1,3)): [[t; (0,2)]] = x (x) y as a Kronecker product: rank 3 * 2
    assert jr.metrics.ht_rank(t, ((0, 2), (1, 3))) == (6, 6)
    # a tolerance above the smallest kept singular value drops it
    s = jr.metrics.matricization_singular_values(t, (0, 2))
    assert jr.metrics.ht_rank(t, ((0, 2), (1, 3)), rtol=float(s[5] / s[0]) * 1.01) == (5, 5)


def test_ht_rank_order_matches_model_nodes():
    m = jr.HierarchicalTensorFactorization(jax.random.key(1), (3, 3, 3, 3, 3), (2, 2, 2), init_scale=1.0)
    ranks = jr.metrics.ht_rank(m.materialize())
    assert len(ranks) == len(m.nodes) - 1
    # nodes (0,1), (2,3): rank <= widths[1] = 2; node (0,1,2,3): rank <= widths[2] = 2
    assert ranks == (2, 2, 2)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_cp_rank_estimate_recovers_rank(rank):
    factors = jr.tasks.cp_target(jax.random.key(rank), (5, 5, 5), rank, norm=5.0)
    t = jr.factorizations.cp.cp_to_tensor(factors)
    assert jr.metrics.cp_rank_estimate(t, max_rank=5, seed=0) == rank


def test_cp_rank_estimate_edges():
    assert jr.metrics.cp_rank_estimate(jnp.zeros((3, 3, 3)), max_rank=3) == 0
    noise = jax.random.normal(jax.random.key(0), (4, 4, 4))
    assert jr.metrics.cp_rank_estimate(noise, max_rank=2, n_restarts=1) == 3  # none fits: max_rank + 1
    with pytest.raises(ValueError, match="max_rank"):
        jr.metrics.cp_rank_estimate(noise, max_rank=0)


def test_component_norm_entropy_rank():
    rank = jr.metrics.component_norm_entropy_rank
    np.testing.assert_allclose(float(rank(jnp.ones(7))), 7.0, rtol=1e-12)
    one = jnp.zeros(7).at[2].set(3.0)
    np.testing.assert_allclose(float(rank(one)), 1.0, rtol=1e-12)
    two = jnp.array([1.0, 1.0, 1e-9, 0.0])
    assert 2.0 - 1e-6 < float(rank(two)) <= 2.0 + 1e-6
    with pytest.warns(DeprecationWarning, match="component_norm_entropy_rank"):
        assert float(jr.metrics.component_effective_rank(two)) == float(rank(two))
    assert int(jr.metrics.numerical_component_rank(two)) == 2
    assert int(jr.metrics.numerical_component_rank(two, rtol=1e-10)) == 3


def test_component_norm_entropy_rank_depends_on_the_parameterization():
    """One rank-one W as one CP component or as two parallel halves: W's matricization
    ranks agree, the component-norm entropy rank goes from 1 to 2 (it is no rank of W)."""
    one = jr.TensorFactorization(jax.random.key(0), (3, 4, 5), 1, init_scale=1.0)
    half = 0.5 ** (1 / 3)
    two = jr.TensorFactorization(jax.random.key(0), (3, 4, 5), 2, init_scale=1.0)
    two = eqx.tree_at(lambda m: m.factors, two, tuple(jnp.concatenate([f, f], axis=1) * half for f in one.factors))
    np.testing.assert_allclose(two.materialize(), one.materialize(), rtol=1e-12)
    er = [float(jr.metrics.matricization_effective_rank(m.materialize(), (0,))) for m in (one, two)]
    np.testing.assert_allclose(er[0], er[1], rtol=1e-9)
    np.testing.assert_allclose(float(jr.metrics.component_norm_entropy_rank(one.component_norms())), 1.0, rtol=1e-12)
    np.testing.assert_allclose(float(jr.metrics.component_norm_entropy_rank(two.component_norms())), 2.0, rtol=1e-12)
