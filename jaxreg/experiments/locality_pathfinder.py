"""Pathfinder: the gradient-change regularizer helps on long paths (Razin et al. 2022).

Are the two markers joined by one dashed curve of ``path_length`` paddles? Without
the regularizer (lambda = 0) test accuracy falls as the paths get longer; with
loss = BCE + lambda * R it stays higher at long range. A thin adapter over
:mod:`jaxreg.locality.experiments` (config, presets and training live there).
Training runs in float32 (``Config.PRECISION``) whatever the command line's precision.
"""

from __future__ import annotations

from ..locality.experiments import PathfinderConfig, run_pathfinder
from ._locality import plot_grid, run_grid, summary_grid

NAME = "locality-pathfinder"
Config = PathfinderConfig  # frozen; preset("tiny" | "small" | "paper"); seeds: a count or a tuple of seeds


def run(config: Config, *, out_dir=None, resume=False, progress=True) -> dict:
    """Train the grid (path length x lambda x seed); checkpoints as in :func:`._locality.run_grid`."""
    return run_grid(run_pathfinder, config, out_dir=out_dir, resume=resume, progress=progress)


def plot(results, out_dir):
    return plot_grid(results, out_dir, NAME, "path_length")


def summary(results) -> str:
    return summary_grid(results, "Pathfinder", "path_length")
