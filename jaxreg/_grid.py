"""A labelled grid of experiments: :func:`sweep` over every setting of named fields, as an
``xarray.Dataset`` with one dimension per field plus ``seed``."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Shaped

from jaxreg._sweep import sweep

_SCALARS = (bool, int, float, str, np.bool_, np.integer, np.floating, np.str_)


def grid_sweep(
    fn: Callable,
    grid: Mapping[str, Sequence | np.ndarray | Array],
    keys: Shaped[Array | np.ndarray, "S ..."],
    *,
    dims: Mapping[str, Sequence[str]] | None = None,
    loop: Sequence[str] = (),
    devices=None,
    chunk_size: int | None = None,
    gather: str = "all",
):
    """Run ``fn(key, **setting)`` for every setting of the grid and every key, and label
    the results: a ``xarray.Dataset`` with one dimension per field of ``grid`` (in its
    order, coordinates its values) plus ``seed`` (0 .. S-1).

    The fields split in two, automatically:

    - vmapped: every value a float (Python, NumPy or JAX; a 0-d or larger float array):
      init scales, step sizes, times, tolerances. Their settings and the seeds run in one
      :func:`sweep` (one compiled program, vmapped and sharded over ``devices``); ``fn``
      receives each as a traced array.
    - looped: anything else (ints, bools, strings, tuples): depths, ranks, widths,
      shapes, numbers of observations, names. They fix array shapes or Python control
      flow, which ``vmap`` cannot batch, so each of their combinations is one
      :func:`sweep` of its own (one compilation each); ``fn`` receives each as the
      Python value. ``loop`` forces float fields into this group too.

    Every run of a setting uses the same keys (common random numbers: the settings
    differ in the setting only). ``fn`` returns a pytree of arrays, e.g. a dict (its keys
    name the variables) or a :class:`~jaxreg.Trajectory` (variables ``loss``,
    ``metrics``, ``status``, ...; nested names are joined with ``.``; ``None`` leaves
    are dropped). A leaf's own axes get the dimensions named in ``dims`` (default
    ``<name>_dim_<i>``), and must have the same shape in every looped setting.

    Example:
        ``grid_sweep(experiment, {"depth": [2, 3], "init_scale": [1e-1, 1e-3]},
        seed_keys(0, 4))`` compiles two programs (depth 2, depth 3), each vmapped over
        2 init scales x 4 seeds, and returns variables of dimensions
        (depth, init_scale, seed).

    Arguments:
        fn: one run, ``fn(key, **setting) -> pytree of arrays``.
        grid: field name -> a non-empty sequence (or 1-d array) of its values.
        keys: (S, ...) PRNG keys, one per seed (e.g. :func:`seed_keys`).
        dims: a variable's name -> names of its own axes (after the grid's and ``seed``).
        loop: float fields to loop over in Python instead of vmapping.
        devices, chunk_size, gather: passed to :func:`sweep`.

    Returns:
        An ``xarray.Dataset`` of dimensions (*grid, "seed", *the leaf's own), attributes
        ``looped`` and ``vmapped`` (the fields of each kind, comma-separated); ``None``
        on processes other than 0 with ``gather="process0"`` across processes.

    Raises:
        ValueError: ``fn`` is not callable, ``grid`` is empty or a field has no values,
            a name is not a string or is ``seed``, a ``loop`` name is no field, or ``fn``
            returns something other than arrays, or of another shape in another setting.
    """
    import xarray as xr

    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    fields = _fields(grid)
    loop = tuple(loop)
    for name in loop:
        if name not in fields:
            raise ValueError(f"loop names {name!r}, which is not a field of grid ({', '.join(fields)})")
    dims = dict(dims or {})
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    if keys.ndim == 0 or keys.shape[0] == 0:
        raise ValueError(f"keys must have a non-empty leading seed axis, got shape {keys.shape}")
    num_seeds = keys.shape[0]
    vmapped = [n for n, values in fields.items() if n not in loop and all(_is_float(v) for v in values)]
    looped = [n for n in fields if n not in vmapped]
    # the vmapped settings times the seeds, flattened: setting-major, seed-minor
    inner = [len(fields[n]) for n in vmapped]
    count = math.prod(inner)
    batch_keys = jnp.concatenate([keys] * count) if count > 1 else keys
    batch_args = tuple(
        _tile_repeat(jnp.stack([jnp.asarray(v) for v in fields[n]]), inner, i, num_seeds) for i, n in enumerate(vmapped)
    )

    blocks = {}
    for combo in itertools.product(*(fields[n] for n in looped)):
        fixed = {n: _python(v) for n, v in zip(looped, combo)}

        def run(key, *values, fixed=fixed):
            return fn(key, **fixed, **dict(zip(vmapped, values)))

        out = sweep(run, batch_keys, *batch_args, devices=devices, chunk_size=chunk_size, gather=gather)
        if out is None:
            return None
        blocks[combo] = _named_leaves(out, fixed)

    names = list(next(iter(blocks.values())))
    grid_shape = [len(fields[n]) for n in looped] + inner + [num_seeds]
    variables = {}
    for name in names:
        first = blocks[next(iter(blocks))][name]
        own = first.shape[1:]
        stacked = np.empty((len(blocks), *first.shape), first.dtype)
        for i, (combo, block) in enumerate(blocks.items()):
            leaf = block.get(name)
            if leaf is None or leaf.shape != first.shape:
                got = "nothing" if leaf is None else f"shape {leaf.shape[1:]}"
                raise ValueError(
                    f"fn's output {name!r} has shape {own} at {_where(looped, next(iter(blocks)))} but {got} at "
                    f"{_where(looped, combo)}: return arrays of one shape in every setting"
                )
            stacked[i] = block[name]
        # (looped combos, vmapped settings x seeds, own) -> (*looped, *vmapped, seed, own)
        array = stacked.reshape(*grid_shape, *own)
        names_own = tuple(dims.get(name, ())) or tuple(f"{name}_dim_{i}" for i in range(len(own)))
        if len(names_own) != len(own):
            raise ValueError(f"dims[{name!r}] names {len(names_own)} axes, but {name!r} has {len(own)}: shape {own}")
        order = [*looped, *vmapped, "seed", *names_own]
        variables[name] = xr.Variable(order, array).transpose(*fields, "seed", *names_own)
    coords = {n: c for n in fields if (c := _coordinate(fields[n])) is not None}
    coords["seed"] = np.arange(num_seeds)
    return xr.Dataset(variables, coords=coords, attrs={"looped": ",".join(looped), "vmapped": ",".join(vmapped)})


def _tile_repeat(values, inner, i, num_seeds):
    """Field ``i``'s values laid on the flattened (inner settings, seed) batch: each value
    repeated for the fields after it and the seeds, the whole tiled for the fields before."""
    after = math.prod(inner[i + 1 :]) * num_seeds
    before = math.prod(inner[:i])
    return jnp.tile(jnp.repeat(values, after, 0), (before,) + (1,) * (values.ndim - 1))


def _fields(grid) -> dict[str, list]:
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty mapping of field name -> values, got {grid!r}")
    fields = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name.isidentifier() or name == "seed":
            raise ValueError(f"grid field names must be identifiers other than 'seed' (fn's keywords), got {name!r}")
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, np.ndarray, jax.Array)):
            raise ValueError(f"grid[{name!r}] must be a sequence of values, got {values!r}")
        values = list(values)
        if not values:
            raise ValueError(f"grid[{name!r}] must hold at least one value")
        fields[name] = values
    return fields


def _is_float(value) -> bool:
    """A float scalar or a float array: a value ``vmap`` can batch."""
    if isinstance(value, (bool, np.bool_, int, np.integer, str)):
        return False
    if isinstance(value, (float, np.floating)):
        return True
    dtype = getattr(value, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.floating)


def _python(value):
    """A looped value as a Python scalar where it is a 0-d array or NumPy scalar."""
    if isinstance(value, (np.generic, np.ndarray, jax.Array)) and np.ndim(value) == 0:
        return np.asarray(value).item()
    return value


def _coordinate(values: list):
    """The coordinate of a field: its values where they are scalars, their ``str`` where
    they are tuples (or other objects), none where they are arrays (positions then)."""
    values = [_python(v) for v in values]
    if all(isinstance(v, _SCALARS) for v in values):
        return np.asarray(values)
    if any(isinstance(v, (np.ndarray, jax.Array)) for v in values):
        return None
    return np.asarray([str(v) for v in values])


def _where(looped, combo) -> str:
    return ", ".join(f"{n}={v!r}" for n, v in zip(looped, combo)) or "the only setting"


def _named_leaves(out, fixed) -> dict[str, np.ndarray]:
    """``fn``'s output as name -> host array; names from the pytree paths."""
    named = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(out)[0]:
        name = ".".join(_key_name(k) for k in path) or "value"
        if not eqx.is_array(leaf):
            raise ValueError(f"fn must return a pytree of arrays, but its output {name!r} is {leaf!r} at {fixed}")
        if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        named[name] = np.asarray(leaf)
    return named


def _key_name(key) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)
