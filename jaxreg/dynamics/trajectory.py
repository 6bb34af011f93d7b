"""The result of a gradient flow or descent run."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PyTree, Real


class Status:
    """Per-run outcome codes stored in ``Trajectory.status`` (an int array under vmap).

    - COMPLETED: reached its horizon: a flow its ``t1`` (its time horizon, also when a
      ``stop_at_loss`` was not reached by then), a descent without ``stop_at_loss`` its
      ``num_steps``;
    - CONVERGED: the loss fell to ``stop_at_loss`` (the run's stop criterion);
    - MAX_STEPS: a cap ended the run first: the ODE solver hit ``max_steps`` before
      ``t1``, or a descent took its ``num_steps`` without reaching ``stop_at_loss``;
    - NON_FINITE: the loss or the parameters became NaN/inf (divergence);
    - FAILED: any other solver failure.

    Every run of the package reports in these words (``NAMES``), the CNN training of
    :mod:`jaxreg.locality` included: a run stopped by its fit rule is CONVERGED, one
    that trained its full epoch budget COMPLETED, one whose loss turned NaN NON_FINITE.
    RUNNING (-1) marks a run not finished yet (never reported). Codes grow with
    severity, so the status of a group of runs (a grid cell, a seed over a grid) is the
    largest code of its runs (:meth:`worst`). COMPLETED and CONVERGED are the runs that
    reached their stop criterion (:meth:`ok`).
    """

    RUNNING = -1

    COMPLETED = 0
    CONVERGED = 1
    MAX_STEPS = 2
    NON_FINITE = 3
    FAILED = 4
    NAMES = ("completed", "converged", "max_steps", "non_finite", "failed")

    @classmethod
    def name(cls, code) -> str:
        code = int(code)
        if not 0 <= code < len(cls.NAMES):
            raise ValueError(f"status code must be in 0..{len(cls.NAMES) - 1}, got {code}")
        return cls.NAMES[code]

    @classmethod
    def names(cls, codes) -> list[str]:
        """The name of every code of ``codes`` (any shape, flattened in C order): the one
        mapping from codes to the words stored in results."""
        import numpy as np

        return [cls.name(c) for c in np.ravel(np.asarray(codes))]

    @classmethod
    def ok(cls, code) -> bool:
        """Whether the run reached its stop criterion (COMPLETED or CONVERGED); ``code``
        is a code or a name."""
        code = cls.NAMES.index(code) if isinstance(code, str) else int(code)
        return code in (cls.COMPLETED, cls.CONVERGED)

    @classmethod
    def worst(cls, codes, axis=None):
        """The status of a group of runs: the most severe of ``codes`` (codes or names)
        along ``axis`` (None: all), as codes (``numpy``).

        Arguments:
            codes: an array of codes, or a (nested) list of names.
            axis: the axis or axes of the runs in a group.

        Returns:
            The largest code along ``axis``.
        """
        import numpy as np

        arr = np.asarray(codes)
        if arr.dtype.kind in "US":
            arr = np.vectorize(cls.NAMES.index, otypes=[np.int64])(arr)
        return arr.max(axis=axis)


class Trajectory(eqx.Module):
    """Saved values of a run.

    ``ts``: save times (flow time for :func:`gradient_flow`, step counts for
    :func:`gradient_descent`); times after an early stop are ``inf``.
    ``loss``: the loss at each save; ``metrics``: the ``metrics`` pytree stacked along
    axis 0 (one row per save); ``model``: the final model; ``status``: a
    :class:`Status` code; ``num_steps``: solver / optimizer steps taken.
    """

    ts: Real[Array, " S"]
    loss: Float[Array, " S"]
    metrics: PyTree
    model: PyTree
    status: Int[Array, ""]
    num_steps: Int[Array, ""]

    @property
    def ok(self):
        return (self.status == Status.COMPLETED) | (self.status == Status.CONVERGED)


def finite_tree(tree) -> Array:
    import jax

    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree) if eqx.is_inexact_array(x)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)
