"""Reproductions of the CNN-locality experiments of Razin, Maman, Cohen (ICML 2022).

Claim: without the regularizer, test accuracy falls to chance as the range (distance
between the two images, or path length) grows; with loss = BCE + lambda * R, long-range
accuracy rises while short-range accuracy stays.

    config = IsSameClassConfig.preset("small")        # "tiny" (CI), "small" (CPU), "paper" (GPU)
    results = run_is_same_class(config, out_dir="runs/isc", resume=True)
    plot_locality(results, "isc.png")

A results dict holds plain numpy arrays with named dimensions:
``{"arrays": {name: (dims, array)}, "coords": {dim: values}, "config": asdict(config)}``
with arrays test_accuracy, train_accuracy, test_R, epochs, status over
(range, "lambda", "seed"), where range is "distance" or "path_length", and history over
(range, "epoch", "lambda", "seed", "metric"). Statuses are :class:`jaxreg.Status` names.

Each function runs its grid (:mod:`.grids`, on the reproduction contract) through the
one driver (:func:`jaxreg_lab.driver.run_reproduction`, one chunk per epoch). With
``out_dir``, every group of runs of a grid point is a checkpointed sub-run under
``out_dir/.checkpoint/<point>/<group>``, fingerprinted by the config (and float32);
resuming a directory of another configuration raises :class:`jaxreg_lab.store.results.ResumeMismatch`.

Configs are in :mod:`.configs`, the grids in :mod:`.grids`, figures and tables in
:mod:`.report`.

On the command line: ``jaxreg reproduce locality-is-same-class --size small`` (and
``locality-pathfinder``), via the adapters in :mod:`jaxreg_lab.reproductions`.
"""

from __future__ import annotations

import dataclasses
import os

from jaxreg import validation as _checks
from jaxreg_lab.driver import run_reproduction
from jaxreg_lab.locality.configs import SIZES, TASKS, IsSameClassConfig, ModelSpec, PathfinderConfig
from jaxreg_lab.locality.grids import IsSameClassGrid, PathfinderGrid
from jaxreg_lab.locality.report import locality_figure, plot_locality, summary_table

__all__ = [
    "IsSameClassConfig",
    "PathfinderConfig",
    "ModelSpec",
    "run_is_same_class",
    "run_pathfinder",
    "run_locality",
    "plot_locality",
    "locality_figure",
    "summary_table",
    "TASKS",
    "SIZES",
]


def _check_run_args(config, cls, out_dir, resume):
    """Validate the arguments of a run (checkpoints are the driver's: see the module docstring)."""
    if not isinstance(config, cls):
        raise ValueError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    if resume and out_dir is None:
        raise ValueError("out_dir is required when resume=True")


def _run(grid, config, out_dir, resume, progress) -> dict:
    res = run_reproduction(grid, config, out_dir=out_dir, resume=resume, progress=progress)
    return {"arrays": res["arrays"], "coords": res["coords"], "config": dataclasses.asdict(config), **res["extra"]}


def run_is_same_class(
    config: IsSameClassConfig | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train the Is-Same-Class grid (:class:`.grids.IsSameClassGrid`); see the module
    docstring for the results dict, whose ``data`` names the images and, for CIFAR-10,
    the archive's MD5. With ``out_dir``, per-epoch checkpoints go to
    ``out_dir/.checkpoint/`` and ``resume=True`` continues from them."""
    config = IsSameClassConfig.preset("small") if config is None else config
    _check_run_args(config, IsSameClassConfig, out_dir, resume)
    return _run(IsSameClassGrid(), config, out_dir, resume, progress)


def run_pathfinder(
    config: PathfinderConfig | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    cache_directory=None,
) -> dict:
    """Train the Pathfinder grid (:class:`.grids.PathfinderGrid`: path lengths x lambdas x
    seeds); data are cached on disk in ``cache_directory`` (default
    :func:`jaxreg_lab.store.data_cache.cache_dir`). Results dict as in the module
    docstring, with range dimension "path_length"."""
    config = PathfinderConfig.preset("small") if config is None else config
    _check_run_args(config, PathfinderConfig, out_dir, resume)
    return _run(PathfinderGrid(cache_directory), config, out_dir, resume, progress)


def run_locality(
    task: str, size: str = "small", *, out_dir=None, resume: bool = False, progress: bool = True, **overrides
) -> dict:
    """Dispatch by name: ``task`` in {"is_same_class", "pathfinder"}, preset ``size``,
    config fields overridden by ``overrides``."""
    _checks.choice("task", task, TASKS)
    _checks.choice("size", size, SIZES)
    if task == "is_same_class":
        return run_is_same_class(
            IsSameClassConfig.preset(size, **overrides), out_dir=out_dir, resume=resume, progress=progress
        )
    return run_pathfinder(PathfinderConfig.preset(size, **overrides), out_dir=out_dir, resume=resume, progress=progress)
