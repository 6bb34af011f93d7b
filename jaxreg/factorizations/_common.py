"""Helpers shared by the factorization modules."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from jaxreg import validation as V
from jaxreg.factorizations._base import default_dtype as default_dtype


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


def np_seed(key: PRNGKeyArray) -> int:
    """A numpy seed derived deterministically from a JAX PRNG key.

    Arguments:
        key: a JAX PRNG key.

    Returns:
        An int in [0, 2^31 - 1), a uniform draw from ``key``.
    """
    return int(np.asarray(jax.random.randint(key, (), 0, 2**31 - 1)))


DENSE_FLOPS_FACTOR = 8  # a matmul flop is this much cheaper than a gather/scatter one


def dense_route(
    shape: tuple[int, ...],
    num_indices: int,
    gathered_width: int,
    *,
    extra: int = 0,
    dense_flops: int,
    gather_flops: int,
) -> bool:
    """Whether ``entries`` should read its values from a dense W (or a matricization of it).

    The gather route forms (num_indices, width) intermediates and its backward pass is a
    scatter-add of that many numbers, which XLA runs slowly (serially on CPU, and under
    vmap even more so). Reading num_indices values out of a dense W costs one scalar
    gather (a scalar scatter backwards) plus the matmuls that build W. Take the dense
    route only when (1) W and its ``extra`` building blocks take no more memory than one
    gathered intermediate, so memory never exceeds the gather route's and huge tensors
    (the 10^12-entry completions) still never materialize, and (2) its flops are at most
    ``DENSE_FLOPS_FACTOR`` times the gather route's. The choice depends on static
    shapes only (one program per shape).
    """
    numel = math.prod(shape)
    return (
        numel < 2**31
        and numel + extra <= num_indices * gathered_width
        and dense_flops <= DENSE_FLOPS_FACTOR * gather_flops
    )


def take_entries(w: jax.Array, idx: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """``w.reshape(-1)[ravel(idx)]``: entries of the row-major dense ``w`` of ``shape``
    (or any reshape of it) at multi-indices ``idx`` (n, order), via one flat gather."""
    strides = np.cumprod((tuple(shape[1:]) + (1,))[::-1])[::-1]
    flat = jnp.asarray(idx, jnp.int32) @ jnp.asarray(strides, jnp.int32)
    return w.reshape(-1)[flat]


def checked_scale(init_scale, dtype) -> tuple[float | Array, np.dtype]:
    """The checked initialization scale (a positive finite number, as a float) and the
    parameters' dtype (``dtype``, or JAX's default float dtype when None).

    Arguments:
        init_scale: the constructor's ``init_scale``.
        dtype: the constructor's ``dtype``.

    Returns:
        ``(init_scale, dtype)``; raises ``ValueError`` naming ``init_scale``.
    """
    return V.positive_float("init_scale", init_scale), default_dtype(dtype)
