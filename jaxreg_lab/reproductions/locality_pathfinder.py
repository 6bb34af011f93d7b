"""Pathfinder: the gradient-change regularizer helps on long paths (Razin et al. 2022).

Are the two markers joined by one dashed curve of ``path_length`` paddles? Without the
regularizer (lambda = 0) test accuracy falls as the paths get longer.
An adapter (:mod:`._locality`) over :func:`jaxreg_lab.locality.experiments.run_pathfinder`.
"""

from __future__ import annotations

from jaxreg_lab.locality.experiments import PathfinderConfig, run_pathfinder
from jaxreg_lab.reproductions._locality import reproduction

NAME = "locality-pathfinder"
Config = PathfinderConfig  # frozen; preset("tiny" | "small" | "paper"); seeds: a count or a tuple of seeds

# run(config, *, out_dir, resume, progress) trains the grid (path_length x lambda x seed)
run, plot, summary = reproduction(run_pathfinder, NAME, "Pathfinder", "path_length")
