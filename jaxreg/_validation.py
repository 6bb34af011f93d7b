"""Argument checks that raise clear errors before any compilation.

Every public constructor and task calls these on concrete Python values, so a bad
argument is reported as ``ValueError: <name> must be ..., got ...`` instead of a
traceback from deep inside JAX.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def nonnegative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def positive_float(name: str, value) -> float:
    """A positive finite number; a traced value (e.g. init scales under vmap) passes unchecked."""
    import jax

    if isinstance(value, jax.core.Tracer):
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def shape_tuple(name: str, value, *, order: int | None = None, min_order: int = 1) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a tuple of positive integers, got {value!r}")
    out = tuple(positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))
    if order is not None and len(out) != order:
        raise ValueError(f"{name} must have {order} entries, got {len(out)}: {value!r}")
    if len(out) < min_order:
        raise ValueError(f"{name} must have at least {min_order} entries, got {value!r}")
    return out


def finite_array(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def indices_array(name: str, indices, shape: tuple[int, ...]) -> None:
    """Check integer multi-indices of shape (n, order) against ``shape`` when concrete."""
    try:
        arr = np.asarray(indices)
    except Exception:  # a tracer: checked by the caller's shapes only
        return
    if arr.ndim != 2 or arr.shape[1] != len(shape):
        raise ValueError(
            f"{name} must have shape (n, {len(shape)}) for a tensor of shape {shape}, got {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.size and (np.any(arr < 0) or np.any(arr >= np.asarray(shape))):
        raise ValueError(f"{name} has entries out of range for shape {shape}")


def choice(name: str, value, options: Sequence[str]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value
