"""Argument checks that raise one clear line before any data is drawn or anything compiles.

Every public constructor, task, dynamics entry point and experiment ``Config`` calls
these on concrete Python values, so a bad argument is reported as
``ValueError: <name> must be ..., got ...`` instead of a traceback from inside JAX.
The checks are strict about types: a bool is not a number (TOML ``init_scale = true``
is refused), a string is not a number, and a scalar is not a tuple. A traced value
(e.g. an init scale under ``vmap``) passes the checks that accept traced values
unchecked, since its value is unknown until run time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
from jaxtyping import Array


def is_traced(value) -> bool:
    """Whether ``value`` is a JAX tracer (its value unknown until run time)."""
    import jax.core

    return isinstance(value, jax.core.Tracer)


def _is_integer(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def _is_real(value) -> bool:
    """A Python/numpy int or float, or a 0-d non-bool numeric array (numpy or JAX)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    dtype = getattr(value, "dtype", None)
    return (
        getattr(value, "shape", None) == ()
        and dtype is not None
        and np.issubdtype(dtype, np.number)
        and not np.issubdtype(dtype, np.complexfloating)
    )


def brief(value) -> str:
    """``repr(value)`` on one line, arrays summarized (so every message stays one line)."""
    ndim = getattr(value, "ndim", 0) if hasattr(value, "__array__") else 0
    if ndim > 1:
        return f"an array of shape {tuple(value.shape)} and dtype {value.dtype}"
    if ndim == 1 and not is_traced(value):
        return np.array2string(np.asarray(value), max_line_width=10**6, threshold=8, edgeitems=3)
    text = repr(value)
    return text if len(text) <= 200 and "\n" not in text else " ".join(text.split())[:200] + " ..."


# scalars


def not_traced(name: str, value) -> None:
    """Refuse a traced ``value`` for a field that fixes array shapes or loop lengths (a
    depth, a rank, a shape, a number of steps): ``vmap`` and ``jit`` cannot batch it, so it must stay a Python value
    (``jaxreg.grid_sweep`` loops over such fields and vmaps only the float ones)."""
    if is_traced(value):
        raise ValueError(
            f"{name} must be a Python value, not a traced {type(value).__name__}: it fixes array shapes or loop "
            "lengths, which jax.vmap and jax.jit cannot batch; loop over it in Python, as jr.grid_sweep does "
            "with its integer and tuple fields"
        )


def integer(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int, refusing bools, floats and strings; optionally bounded."""
    not_traced(name, value)
    if not _is_integer(value):
        raise ValueError(f"{name} must be an integer, got {brief(value)}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v}")
    return v


def positive_int(name: str, value) -> int:
    """An integer >= 1."""
    not_traced(name, value)
    if not _is_integer(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value) -> int:
    """An integer >= 0."""
    not_traced(name, value)
    if not _is_integer(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


@overload
def number(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    below: float | None = None,
    traced_ok: Literal[False] = False,
) -> float: ...


@overload
def number(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    below: float | None = None,
    traced_ok: bool,
) -> float | Array: ...


def number(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    below: float | None = None,
    traced_ok: bool = False,
) -> float | Array:
    """A finite real number (int or float, never a bool or a string), returned as a float.

    ``positive``: > 0; ``minimum``/``maximum``: inclusive bounds; ``below``: exclusive
    upper bound. With ``traced_ok`` a JAX tracer is returned unchecked.
    """
    if traced_ok and is_traced(value):
        return value
    if not _is_real(value):
        raise ValueError(f"{name} must be a number, got {brief(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and v <= 0:
        raise ValueError(f"{name} must be > 0, got {v!r}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v!r}")
    if below is not None and v >= below:
        raise ValueError(f"{name} must be < {below}, got {v!r}")
    return v


def positive_float(name: str, value):
    """A positive finite number; a traced value (e.g. init scales under vmap) passes unchecked."""
    if is_traced(value):
        return value
    if not _is_real(value):
        raise ValueError(f"{name} must be a positive number, got {brief(value)}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def choice(name: str, value, options: Sequence[str]) -> str:
    """One of ``options`` (compared with ==, so a non-string never matches string options)."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {options}, got {brief(value)}")
    return value


def boolean(name: str, value) -> bool:
    """A bool (True/False), never a number or a string."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def callable_or_none(name: str, value, what: str) -> None:
    """``value`` is None or a callable (``what`` describes the expected callable)."""
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be {what} or None, got {value!r}")


def metrics_function(name: str, metrics, model) -> None:
    """``metrics`` is None or a callable of ``model``, traced once on its shapes here
    (``equinox.filter_eval_shape``), so that a metric refusing the model (the
    ``jr.metrics`` functions raise one line naming the right call) fails before the
    dynamics are traced."""
    callable_or_none(name, metrics, "a callable mapping a model to a pytree")
    if metrics is not None:
        import equinox as eqx

        eqx.filter_eval_shape(metrics, model)


# sequences


def _sequence(name: str, values, what: str) -> Sequence | np.ndarray:
    """A list/tuple (or other non-string sequence); a scalar or a string is refused."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a sequence of {what}, got {brief(values)}")
    return values


def _finish_tuple(name: str, out: tuple, values, nonempty: bool, distinct: bool) -> tuple:
    if nonempty and not out:
        raise ValueError(f"{name} must not be empty")
    if distinct and len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat values, got {brief(tuple(values))}")
    return out


def int_tuple(
    name: str, values, *, minimum: int | None = None, nonempty: bool = True, distinct: bool = True
) -> tuple[int, ...]:
    """A tuple of integers (each >= ``minimum``), by default non-empty and without repeats."""
    out = tuple(integer(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(_sequence(name, values, "integers")))
    return _finish_tuple(name, out, values, nonempty, distinct)


def float_tuple(
    name: str,
    values,
    *,
    minimum: float | None = None,
    positive: bool = False,
    nonempty: bool = True,
    distinct: bool = True,
) -> tuple[float, ...]:
    """A tuple of finite numbers as floats, by default non-empty and without repeats."""
    out = tuple(
        number(f"{name}[{i}]", v, minimum=minimum, positive=positive)
        for i, v in enumerate(_sequence(name, values, "numbers"))
    )
    return _finish_tuple(name, out, values, nonempty, distinct)


def shape_tuple(name: str, value, *, order: int | None = None, min_order: int = 1) -> tuple[int, ...]:
    """A tensor shape: a tuple of positive integers with ``order`` (or >= ``min_order``) entries."""
    not_traced(name, value)
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a tuple of positive integers, got {brief(value)}")
    out = tuple(positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))
    if order is not None and len(out) != order:
        raise ValueError(f"{name} must have {order} entries, got {len(out)}: {value!r}")
    if len(out) < min_order:
        raise ValueError(f"{name} must have at least {min_order} entries, got {value!r}")
    return out


# frozen dataclass configs


def config_fields(
    config,
    *,
    positive_ints: Sequence[str] = (),
    nonnegative_ints: Sequence[str] = (),
    positive_floats: Sequence[str] = (),
    choices: dict | None = None,
) -> None:
    """Check the named fields of a (frozen dataclass) ``config`` in one call.

    Arguments:
        config: the instance; each field is read with ``getattr``.
        positive_ints, nonnegative_ints, positive_floats: field names checked with
            :func:`positive_int`, :func:`nonnegative_int` and :func:`positive_float`.
        choices: field name -> allowed values (:func:`choice`).
    """
    for name in positive_ints:
        positive_int(name, getattr(config, name))
    for name in nonnegative_ints:
        nonnegative_int(name, getattr(config, name))
    for name in positive_floats:
        positive_float(name, getattr(config, name))
    for name, options in (choices or {}).items():
        choice(name, getattr(config, name), options)


def normalize_fields(config, **converted) -> None:
    """Store checked, normalized values (e.g. lists turned into tuples) on a frozen dataclass."""
    for name, value in converted.items():
        object.__setattr__(config, name, value)


def below_entries(name: str, value: int, shape: tuple[int, ...]) -> int:
    """A number of observed entries that leaves at least one entry of ``shape`` for testing."""
    total = math.prod(shape)
    if value >= total:
        raise ValueError(f"{name} must be below the {total} entries of shape {shape}, got {value}")
    return value


def divisible(name: str, value: int, by_name: str, by: int) -> None:
    """``value`` is a multiple of ``by`` (e.g. ``num_saves`` of ``num_chunks``)."""
    if value % by:
        raise ValueError(f"{name} ({value}) must be a multiple of {by_name} ({by})")


# memory


def memory_limit_bytes() -> int:
    """The physical memory of this machine in bytes (every result passes through host memory)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # platforms without sysconf: no limit known
        return 2**63 - 1


def fits_in_memory(name: str, value: int, bytes_needed: float, *, fraction: float = 0.5) -> None:
    """Refuse ``name = value`` when its estimated memory exceeds ``fraction`` of this machine's.

    Arguments:
        name: the argument that sets the size (e.g. ``seeds``).
        value: its value, quoted in the message.
        bytes_needed: a lower-bound estimate of the bytes the run holds at once.
        fraction: the share of physical memory a run may use.
    """
    limit = memory_limit_bytes()
    if bytes_needed > fraction * limit:
        raise ValueError(
            f"{name}={value} needs about {bytes_needed / 2**30:.3g} GiB, more than "
            f"{fraction:.0%} of this machine's {limit / 2**30:.3g} GiB of memory; use fewer {name}"
        )


# arrays


def finite_array(name: str, value) -> np.ndarray:
    """A numpy array without NaN or inf."""
    arr = np.asarray(value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def indices_array(name: str, indices, shape: tuple[int, ...]) -> None:
    """Check integer multi-indices of shape (k, order) against ``shape`` when concrete."""
    try:
        arr = np.asarray(indices)
    except Exception:  # a tracer: checked by the caller's shapes only
        return
    if arr.ndim != 2 or arr.shape[1] != len(shape):
        raise ValueError(f"{name} must have shape (k, {len(shape)}) for a tensor of shape {shape}, got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.size and (np.any(arr < 0) or np.any(arr >= np.asarray(shape))):
        raise ValueError(f"{name} has entries out of range for shape {shape}")


def save_times(name: str, ts, t1) -> None:
    """Save times: a 1-d, finite, non-decreasing array within [0, t1] (checked when concrete)."""
    if is_traced(ts) or is_traced(t1):
        return
    arr = np.asarray(ts)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of save times, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_):
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one save time")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {brief(arr)}")
    if np.any(np.diff(arr) < 0):
        raise ValueError(f"{name} must be non-decreasing, got {brief(arr)}")
    if arr[0] < 0 or arr[-1] > float(t1):
        raise ValueError(f"{name} must lie in [0, t1] = [0, {float(t1):g}], got [{arr[0]:g}, {arr[-1]:g}]")


# models and losses


def model_params_dtype(name: str, model):
    """The dtype of the first floating-point array of ``model`` (its trained parameters)."""
    import equinox as eqx
    import jax

    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    if not leaves:
        raise ValueError(f"{name} must hold at least one floating-point array (its parameters), got {model!r}")
    return leaves[0].dtype


def model_fits_loss(loss, model, name: str = "model") -> None:
    """When ``loss`` is a bound method of a problem (e.g. ``problem.loss``), check that
    ``model`` has the problem's shape (the problem's ``check_model``)."""
    if not callable(loss):
        raise ValueError(f"loss must be a callable mapping a model to a scalar, got {loss!r}")
    check = getattr(getattr(loss, "__self__", None), "check_model", None)
    if callable(check):
        check(model, name)
