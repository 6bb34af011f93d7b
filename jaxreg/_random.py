"""Gaussian draws equal to ``jax.random.normal`` bit for bit, compiled once per size class.

``jax.random.normal(key, shape)`` compiles one XLA program per shape, and most of that
program is the threefry hash: about 0.2 s of CPU compile per shape, which dominates
building a model of a new shape (a hierarchical factorization draws one matrix per
node). With JAX's default PRNG (threefry2x32, ``jax_threefry_partitionable`` on) the
value at row-major position i of a draw depends only on the key and on i, so the draw
of shape S is the first prod(S) values of any longer draw from the same key.
:func:`normal` therefore draws a flat vector whose length is rounded up to a size class
and reshapes its head: one compiled program per size class and dtype, shared by every
shape in it. Inside a trace (``jit``, ``vmap``) the draw is part of the caller's
program anyway, and :func:`normal` is plain ``jax.random.normal``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.core
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["normal", "size_class"]

# below this many values a class is the next power of two; above, the next multiple of
# 1/16 of the power of two below (at most 1/16 more values are drawn than needed)
_POWER_OF_TWO_UP_TO = 1 << 16


def size_class(n: int) -> int:
    """The length drawn for ``n`` values: the next power of two up to 2^16, then the next
    multiple of 2^(floor(log2 n) - 4).

    Arguments:
        n: the number of values needed, >= 0.

    Returns:
        An int >= n.
    """
    if n <= _POWER_OF_TWO_UP_TO:
        return 1 << max(n - 1, 0).bit_length()
    step = 1 << (n.bit_length() - 5)
    return -(-n // step) * step


@functools.partial(jax.jit, static_argnums=(1, 2))
def _flat_normal(key, length: int, dtype):
    return jax.random.normal(key, (length,), dtype)


def _prefix_stable(key) -> bool:
    """True for one concrete key whose draw's i-th value depends only on the key and i
    (threefry, partitionable): a typed key of shape (), or a raw uint32 pair."""
    partitionable = jax.config.jax_threefry_partitionable  # pyright: ignore[reportAttributeAccessIssue]  # JAX adds its flags to Config at run time
    if isinstance(key, jax.core.Tracer) or not partitionable:
        return False
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key.shape == () and str(jax.random.key_impl(key)) == "threefry2x32"
    default_impl = jax.config.jax_default_prng_impl  # pyright: ignore[reportAttributeAccessIssue]  # JAX adds its flags to Config at run time
    return key.shape == (2,) and default_impl == "threefry2x32"


def normal(key: PRNGKeyArray, shape: tuple[int, ...], dtype) -> Float[Array, "*shape"]:
    """``jax.random.normal(key, shape, dtype)``, the same values bit for bit, drawn as the
    head of a flat draw of :func:`size_class` ``(prod(shape))`` values (one compiled
    program per class and dtype instead of one per shape).

    Arguments:
        key: a PRNG key (a single key; traced keys go to ``jax.random.normal`` directly).
        shape: the shape of the draw.
        dtype: a floating dtype.

    Returns:
        An array of ``shape`` with i.i.d. N(0, 1) entries.
    """
    shape = tuple(shape)
    if not _prefix_stable(key):
        return jax.random.normal(key, shape, dtype)
    n = math.prod(shape)
    return _flat_normal(key, size_class(n), dtype)[:n].reshape(shape)
