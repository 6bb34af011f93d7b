"""Run one experiment over many seeds (and settings) in one vmapped, sharded program."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Key, PyTree, Shaped

GATHER = ("all", "process0")


def sweep(
    fn: Callable,
    keys: Shaped[Array | np.ndarray, "S ..."],
    *args: PyTree,
    devices=None,
    chunk_size: int | None = None,
    gather: str = "all",
) -> PyTree:
    """``vmap(fn)(keys, *args)``, with the batch axis sharded over ``devices``.

    ``fn(key, *args)`` runs one experiment (e.g. builds a problem and a model from the key
    and returns a :class:`~jaxreg.Trajectory`). ``keys`` has shape (S, ...) and every leaf
    of ``args`` a leading axis of size S (e.g. init scales of a grid). A setting that fixes
    array shapes (a depth, a rank) cannot be vmapped: :func:`~jaxreg.grid_sweep` loops
    over such fields and labels the results.

    Across processes (JAX's multi-controller runtime: every process runs the same
    program after ``jax.distributed.initialize()``, see :mod:`jaxreg.distributed`): the
    default ``devices`` is ``jax.devices()``, every device of every process. Every
    process passes the same ``keys`` and ``args`` (checked: a checksum is compared, and
    a difference raises ``ValueError`` on every process); each process places only its own
    devices' part of them (``jax.make_array_from_callback``), runs its share of the
    chunks, and the results are all-gathered: with ``gather="all"`` every process gets
    the whole result as host (NumPy) arrays, with ``gather="process0"`` process 0 gets
    them and every other process gets ``None`` (the device-side collective is the same
    all-gather; JAX has no cross-host gather to one device, but only process 0 copies the
    result to host memory). With one process the result stays a ``jax.Array`` on the
    devices (sharded over them), as before, whatever ``gather`` says.

    Reproducible across device counts: the batch is cut into chunks of ``chunk_size``
    runs (default: ceil(S / number of visible devices), the per-device share), padded
    with copies of the first run to a whole number of chunks per device, and every
    device runs ``lax.map`` over its chunks of ``vmap(fn)`` (of ``fn`` itself when
    ``chunk_size`` is 1). The program XLA compiles therefore has the same batch size
    (``chunk_size``) whatever the number of devices: with the same ``chunk_size``, a run
    on 1 device and one sharded over 4 gave identical bits for matrix completion, and a
    few functions differ in the last bits only (a CP sweep with Adam: 1.7e-18 absolute
    between 1 and 2 devices, as the loop over chunks has another trip count). The same
    devices split over several processes (one process with 2 devices, or 2 processes
    with 1 each) run the same programs and give identical bits. A plain vmap over all S
    runs differs in the last bits (e.g. 3e-15), since XLA's code depends on the batch
    size. The padding is cut off again.

    Several CPU devices (one per core, via
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``: XLA runs one CPU device's
    small batched matmuls on a single core, so this is how a sweep uses every core): the
    default ``chunk_size`` is then 1, a ``lax.map`` over single runs. Batched LAPACK
    kernels of jaxlib's CPU backend (``svd``, ``eigh`` under vmap) split their batch over
    the intra-op thread pool and wait for it; when every pool thread is running such a
    kernel for one device they wait on each other forever (observed with jaxlib 0.10.2,
    2 devices on 2 cores). Unbatched kernels do not split, and for problems of about
    100 x 100 and up single runs are also the fastest on CPU (one run's working set stays
    in cache). An explicit ``chunk_size`` > 1 on several CPU devices risks that hang
    when ``fn`` calls batched decompositions.

    Arguments:
        fn: one run, ``fn(key, *args) -> PyTree``.
        keys: (S, ...) PRNG keys (or any array with the batch axis first).
        *args: pytrees whose leaves have leading axis S.
        devices: the devices to shard over (default ``jax.devices()``, all processes').
        chunk_size: runs per vmapped chunk (default: see above).
        gather: ``"all"`` or ``"process0"``: which processes receive the result when the
            devices span several processes.

    Returns:
        ``fn``'s output pytree with a leading axis S on every array leaf (``None`` on
        processes other than 0 with ``gather="process0"`` across processes).
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
    if not devices:
        raise ValueError("devices must not be empty")
    if gather not in GATHER:
        raise ValueError(f"gather must be one of {GATHER}, got {gather!r}")
    if chunk_size is None:
        multi_cpu = len(devices) > 1 and all(d.platform == "cpu" for d in devices)
        chunk_size = 1 if multi_cpu else -(-size // len(jax.devices()))
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    chunk_size = int(min(chunk_size, size))
    per_device = -(-size // (chunk_size * len(devices)))  # chunks per device
    pad = per_device * chunk_size * len(devices) - size

    def padded(x):
        x = jnp.asarray(x)
        return jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]) if pad else x

    if not _local(devices):
        _check_same_inputs(keys, args)
    keys_p, args_p = jax.tree_util.tree_map(padded, (keys, args))
    out = _run(fn, chunk_size, tuple(devices), keys_p, args_p)
    if not _local(devices):
        out = _gathered(out, devices, to_host=gather == "all" or jax.process_index() == 0)
        if out is None:
            return None
    return jax.tree_util.tree_map(lambda x: x[:size] if eqx.is_array(x) and x.ndim else x, out)


def _chunked(fn, chunk_size, static_out: list):
    """(n * chunk_size, ...) -> lax.map over n chunks of vmap(fn); array outputs only
    (the non-array part of fn's output is recorded in ``static_out`` at trace time)."""
    if chunk_size == 1:
        # one run unbatched: a vmap of size 1 would make every matmul a batched one, which
        # XLA's CPU backend runs slower (order-4 CP completion, 50 GD steps: 137 ms
        # against 24 ms per run)
        def batched(keys, *args):
            one = fn(keys[0], *jax.tree_util.tree_map(lambda x: x[0], args))
            return jax.tree_util.tree_map(lambda x: x[None] if eqx.is_array(x) else x, one)
    else:
        batched = eqx.filter_vmap(fn)

    def body(chunk):
        keys, args = chunk
        arrays, static = eqx.partition(batched(keys, *args), eqx.is_array)
        static_out[:] = [static]
        return arrays

    def run(keys, args):
        n = keys.shape[0] // chunk_size
        split = jax.tree_util.tree_map(lambda x: x.reshape(n, chunk_size, *x.shape[1:]), (keys, args))
        out = jax.lax.map(body, split)
        return jax.tree_util.tree_map(lambda x: x.reshape(n * chunk_size, *x.shape[2:]), out)

    return run


def _local(devices) -> bool:
    """Whether every device belongs to this process."""
    return all(d.process_index == jax.process_index() for d in devices)


def _check_same_inputs(keys, args) -> None:
    """Across processes every process must pass the same inputs (each places only its
    own devices' rows of them): compare a CRC32 of their bytes, one small collective."""
    from jaxreg.distributed import agree

    crc = 0
    for x in jax.tree_util.tree_leaves((keys, args)):
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        crc = zlib.crc32(np.ascontiguousarray(np.asarray(x)).tobytes(), crc)
    agree(crc, "a checksum of jr.sweep's keys and args (every process must pass the same)")


def _run(fn, chunk_size, devices, keys, args):
    if len(devices) == 1 and _local(devices):
        with jax.default_device(devices[0]):
            return _program(fn, chunk_size, devices, keys, args)
    sharding = NamedSharding(Mesh(np.asarray(devices), ("batch",)), PartitionSpec("batch"))
    if _local(devices):
        place = lambda x: jax.device_put(x, sharding)  # noqa: E731
    else:  # every process holds the same x and places the rows of its own devices
        place = lambda x: jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])  # noqa: E731
    keys, args = jax.tree_util.tree_map(place, (keys, args))
    return _program(fn, chunk_size, devices, keys, args)


def _identity(tree):
    return tree


def _gathered(out, devices, to_host: bool):
    """All-gather the array leaves of ``out`` (sharded over ``devices`` of several
    processes) into a replicated array, then, where ``to_host``, copy it to a NumPy array
    (key arrays stay ``jax.Array`` on this process's device); ``None`` elsewhere. Every
    process must call this (it is a collective)."""
    arrays, static = eqx.partition(out, eqx.is_array)
    replicated = NamedSharding(Mesh(np.asarray(devices), ("batch",)), PartitionSpec())
    arrays = jax.jit(_identity, out_shardings=replicated)(arrays)
    if not to_host:
        return None

    def local(x):
        x = x.addressable_data(0)
        return x if jnp.issubdtype(x.dtype, jax.dtypes.extended) else np.asarray(x)

    return eqx.combine(jax.tree_util.tree_map(local, arrays), static)


@eqx.filter_jit
def _program(fn, chunk_size, devices, keys, args):
    """The whole sweep as one jitted program. ``fn``, ``chunk_size`` and ``devices`` are
    static, so calling :func:`sweep` again with the same ``fn`` object (and shapes)
    reuses the compiled program instead of compiling it anew."""
    static_out: list = []
    run = _chunked(fn, chunk_size, static_out)
    if len(devices) == 1:
        arrays = run(keys, args)
    else:
        mesh = Mesh(np.asarray(devices), ("batch",))
        arrays = jax.shard_map(
            run, mesh=mesh, in_specs=PartitionSpec("batch"), out_specs=PartitionSpec("batch"), check_vma=False
        )(keys, args)
    return eqx.combine(arrays, static_out[0])


def seed_keys(seed: int, num_seeds: int) -> Key[Array, " num_seeds"]:
    """``num_seeds`` independent keys from one integer seed:
    ``jax.random.split(jax.random.key(seed), num_seeds)``.

    Arguments:
        seed: an integer seed.
        num_seeds: the number of keys.

    Returns:
        A key array of shape (num_seeds,), one key per run of :func:`sweep`.
    """
    return jax.random.split(jax.random.key(seed), num_seeds)
