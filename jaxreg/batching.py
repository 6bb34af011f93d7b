"""Runs on a leading axis, cut into compiled programs.

Many runs (seeds, lambdas, grid points) are trained or integrated at once by vmapping one
program over a leading run axis. :func:`run_slices` cuts that axis into the runs of each
program (all at once, or a fixed number at a time: a run's result then depends only on
the runs of its own program), :func:`take_runs` takes a slice of every leaf of a pytree and
:func:`concat_runs` joins the slices again. :mod:`jaxreg.locality.training` and the lab's
driver cut their runs with them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import PyTree

__all__ = ["run_slices", "take_runs", "concat_runs"]


def run_slices(runs: int, runs_per_program: int | None) -> list[slice]:
    """The runs of each compiled program: ``[0, k), [k, 2k), ...`` up to ``runs``.

    Arguments:
        runs: the number of runs, at least 1.
        runs_per_program: k, the runs of each program (the last one may hold fewer); None:
            all runs in one program.

    Returns:
        The slices of the run axis, in order, together covering ``range(runs)`` once.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a positive integer, got {runs!r}")
    if runs_per_program is not None and (
        isinstance(runs_per_program, bool) or not isinstance(runs_per_program, int) or runs_per_program < 1
    ):
        raise ValueError(f"runs_per_program must be None or a positive integer, got {runs_per_program!r}")
    k = runs_per_program or runs
    return [slice(start, min(start + k, runs)) for start in range(0, runs, k)]


def take_runs(tree: PyTree, runs: slice) -> PyTree:
    """The runs ``runs`` of every leaf of ``tree`` (each leaf an array with a leading run axis).

    Arguments:
        tree: a pytree of arrays, each with a leading run axis.
        runs: the slice of the run axis to take.

    Returns:
        ``tree`` with every leaf ``x`` replaced by ``x[runs]``.
    """
    return jax.tree.map(lambda x: x[runs], tree)


def concat_runs(trees: list[PyTree]) -> PyTree:
    """Join pytrees of the same structure along their leading run axis (the inverse of
    :func:`take_runs` over the slices of :func:`run_slices`).

    Arguments:
        trees: one or more pytrees of arrays with the same structure.

    Returns:
        The single tree as it is, else every leaf concatenated along axis 0
        (``jnp.concatenate``).
    """
    if not trees:
        raise ValueError("trees must hold at least one pytree")
    return trees[0] if len(trees) == 1 else jax.tree.map(lambda *xs: jnp.concatenate(xs), *trees)
