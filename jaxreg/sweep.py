"""Run one experiment over many seeds (and settings) in one vmapped, sharded program."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, PRNGKeyArray, PyTree


def sweep(fn: Callable, keys: PRNGKeyArray, *args: PyTree, devices=None) -> PyTree:
    """``vmap(fn)(keys, *args)``, with the batch axis sharded over ``devices``.

    ``fn(key, *args)`` runs one experiment (e.g. builds a problem and a model from the key
    and returns a :class:`~jaxreg.Trajectory`). ``keys`` has shape (S, ...) and every leaf
    of ``args`` a leading axis of size S (e.g. init scales of a grid). The batch is
    padded to a multiple of the device count (default: all visible devices), placed
    along a one-axis mesh, and the padding is cut off again, so results equal the
    unsharded ``vmap`` (and a per-seed loop). Across hosts, call
    ``jax.distributed.initialize()`` first: the mesh then spans every process's devices.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    if keys.ndim == 0 or keys.shape[0] == 0:
        raise ValueError(f"keys must have a non-empty leading batch axis, got shape {keys.shape}")
    size = keys.shape[0]
    for leaf in jax.tree_util.tree_leaves(args):
        if jnp.shape(leaf)[:1] != (size,):
            raise ValueError(f"every leaf of args must have leading axis {size}, got shape {jnp.shape(leaf)}")
    devices = jax.devices() if devices is None else list(devices)
    batched = eqx.filter_jit(eqx.filter_vmap(fn))
    if len(devices) == 1:
        return batched(keys, *args)
    pad = (-size) % len(devices)

    def padded(x):
        return jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]) if pad else x

    mesh = Mesh(np.asarray(devices), ("batch",))
    sharding = NamedSharding(mesh, PartitionSpec("batch"))
    keys_p, args_p = jax.tree_util.tree_map(lambda x: jax.device_put(padded(x), sharding), (keys, args))
    out = batched(keys_p, *args_p)
    return jax.tree_util.tree_map(lambda x: x[:size] if eqx.is_array(x) and x.ndim else x, out)


def seed_keys(seed: int, num_seeds: int) -> Array:
    """``num_seeds`` independent keys from one integer seed."""
    return jax.random.split(jax.random.key(seed), num_seeds)
