"""Is-Same-Class: the gradient-change regularizer restores long-range accuracy (Razin et al. 2022).

Two digits at horizontal gap ``distance`` on a blank canvas; label: same class? Without
the regularizer (lambda = 0) test accuracy falls towards chance as the gap grows; with
loss = BCE + lambda * R it stays higher at long range. A thin adapter over
:mod:`jaxreg.locality.experiments` (config, presets and training live there).
Training runs in float32 (``Config.PRECISION``) whatever the command line's precision.
"""

from __future__ import annotations

from ..locality.experiments import IsSameClassConfig, run_is_same_class
from ._locality import plot_grid, run_grid, summary_grid

NAME = "locality-is-same-class"
Config = IsSameClassConfig  # frozen; preset("tiny" | "small" | "paper"); seeds: a count or a tuple of seeds


def run(config: Config, *, out_dir=None, resume=False, progress=True) -> dict:
    """Train the grid (distance x lambda x seed); checkpoints as in :func:`._locality.run_grid`."""
    return run_grid(run_is_same_class, config, out_dir=out_dir, resume=resume, progress=progress)


def plot(results, out_dir):
    return plot_grid(results, out_dir, NAME, "distance")


def summary(results) -> str:
    return summary_grid(results, "Is-Same-Class", "distance")
