"""Random low-rank ground truths of the papers: matrices U V^T (Arora et al. 2019) and CP
tensors sum_r (x)_n w_r^n (Razin et al. 2021); :mod:`jaxreg.tasks` builds problems on them."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from jaxreg import validation as V
from jaxreg._random import normal
from jaxreg.factorizations._common import default_dtype


def low_rank_matrix(
    key: PRNGKeyArray, shape: tuple[int, int], rank: int, *, norm: float | None = None, dtype=None
) -> Float[Array, "m n"]:
    """W* = c U V^T with U (m x r), V (n x r) i.i.d. N(0, 1) and c = norm / ||U V^T||_F
    (Arora et al. 2019's targets).

    Arguments:
        key: PRNG key of U and V.
        shape: (m, n).
        rank: r, at most min(m, n).
        norm: ||W*||_F (default sqrt(m n): entry RMS 1).
        dtype: a floating dtype (default: JAX's default float).

    Returns:
        The m x n matrix W*, of rank r (almost surely).
    """
    m, n = V.shape_tuple("shape", shape, order=2)
    rank = V.positive_int("rank", rank)
    if rank > min(m, n):
        raise ValueError(f"rank must be at most min(shape) = {min(m, n)}, got {rank}")
    dtype = default_dtype(dtype)
    ku, kv = jax.random.split(key)
    w = normal(ku, (m, rank), dtype) @ normal(kv, (n, rank), dtype).T
    norm = math.sqrt(m * n) if norm is None else V.positive_float("norm", norm)
    return w * (norm / jnp.linalg.norm(w))


def cp_target(
    key: PRNGKeyArray, shape: tuple[int, ...], rank: int, *, norm: float = 1.0, dtype=None
) -> tuple[Float[Array, "_d R"], ...]:
    """Factors w_r^n = c^{1/N} g_r^n of W* = sum_r (x)_n w_r^n (Razin et al. 2021's targets):
    g_r^n i.i.d. N(0, 1), c = norm / ||sum_r (x)_n g_r^n||_F, the norm computed from Gram
    matrices, never densely: ||sum_r (x)_n g_r^n||_F^2 = sum_{r,r'} prod_n <g_r^n, g_r'^n>.

    Arguments:
        key: PRNG key of the factors.
        shape: (d_1, ..., d_N).
        rank: R, the number of components.
        norm: ||W*||_F after rescaling.
        dtype: a floating dtype (default: JAX's default float).

    Returns:
        N factors, factor n of shape (d_n, R) with column r = w_r^n
        (:func:`cp_to_tensor` gives W*).
    """
    shape = V.shape_tuple("shape", shape)
    rank = V.positive_int("rank", rank)
    norm = V.positive_float("norm", norm)
    dtype = default_dtype(dtype)
    keys = jax.random.split(key, len(shape))
    factors = [normal(k, (d, rank), dtype) for k, d in zip(keys, shape)]
    gram = jnp.ones((rank, rank), dtype)
    for f in factors:
        gram = gram * (f.T @ f)
    scale = (norm / jnp.sqrt(jnp.sum(gram))) ** (1.0 / len(shape))
    return tuple(f * scale for f in factors)
