"""Helpers shared by the factorization modules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def default_dtype(dtype=None):
    """The floating dtype to build parameters in: ``dtype`` or JAX's default float.

    JAX's default float is float64 only when the program enabled x64 (the CLI, the
    tests and the notebooks do so at start; ``import jaxreg`` never does).
    """
    if dtype is None:
        return jnp.zeros(()).dtype
    return jax.dtypes.canonicalize_dtype(dtype)


def check_entries_indices(indices, shape: tuple[int, ...]) -> jax.Array:
    """Validate concrete multi-indices of shape (n, order) and return them as an array."""
    from .._validation import indices_array

    indices_array("indices", indices, shape)
    idx = jnp.asarray(indices)
    if idx.ndim != 2 or idx.shape[1] != len(shape):
        raise ValueError(f"indices must have shape (n, {len(shape)}), got {idx.shape}")
    return idx


def column_norms(a: jax.Array) -> jax.Array:
    """Euclidean norm of each column of ``a`` (axis 0 summed)."""
    return jnp.sqrt(jnp.sum(a * a, axis=0))


def balance_columns(factors: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
    """Rescale column r of every factor to the geometric mean of their norms.

    The CP component prod_n w_r^n is unchanged, and afterwards ||w_r^n|| is equal
    across n for every r (the balancedness assumption of Razin et al. 2021, Thm 1).
    """
    norms = jnp.stack([column_norms(f) for f in factors])  # (N, R)
    target = jnp.exp(jnp.mean(jnp.log(norms), axis=0))  # geometric mean, (R,)
    return tuple(f * (target / n)[None, :] for f, n in zip(factors, norms))


def np_seed(key) -> int:
    """A numpy seed derived deterministically from a JAX PRNG key."""
    return int(np.asarray(jax.random.randint(key, (), 0, 2**31 - 1)))
