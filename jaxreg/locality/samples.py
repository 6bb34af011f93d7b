"""The sample container of the locality tasks, and how a JAX key seeds numpy."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

__all__ = ["LocalityData", "DataCache", "key_bits", "numpy_rng"]


class LocalityData(NamedTuple):
    """images (N, C, H, W) float32 in [0, 1] (C = 1 but for colour sources); labels (N,) int32 in {0, 1};
    squares (N, 2, 4) int32 (top, left, height, width) of the two images of
    Is-Same-Class (the regularizer's patches), None for Pathfinder; info: dict of numpy
    arrays describing how each sample was made."""

    images: np.ndarray
    labels: np.ndarray
    squares: np.ndarray | None
    info: dict


# runtime_checkable: parameters annotated with it are checked (any callable passes)
@runtime_checkable
class DataCache(Protocol):
    """Where generated samples are kept between calls: ``cache(kind, config, make)``
    returns the samples stored under (``kind``, ``config``), else ``make()``'s, which it
    stores. The library never writes files; the lab's on-disk cache is one such object.
    It must be picklable when ``workers > 1``."""

    def __call__(self, kind: str, config: dict, make: Callable[[], LocalityData]) -> LocalityData: ...


def key_bits(key: PRNGKeyArray) -> list[int]:
    """The integers of a JAX PRNG key (typed or raw), as a list (a numpy seed).

    Arguments:
        key: a JAX PRNG key.

    Returns:
        The key's data as Python ints.
    """
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return [int(v) for v in np.asarray(key).ravel()]


def numpy_rng(key: PRNGKeyArray) -> np.random.Generator:
    """A numpy generator seeded by the bits of ``key``.

    Arguments:
        key: a JAX PRNG key.

    Returns:
        ``np.random.default_rng(key_bits(key))``.
    """
    return np.random.default_rng(key_bits(key))
