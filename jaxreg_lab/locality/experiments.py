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

With ``out_dir``, every group of runs of a grid point is a sub-run of the one runner
(:func:`jaxreg_lab.driver.run_chunks`, one chunk per epoch) checkpointed under
``out_dir/.checkpoint/<point>/<group>``, fingerprinted by the config (and float32);
resuming a directory of another configuration raises :class:`jaxreg_lab.store.results.ResumeMismatch`.

This module is the orchestration; configs are in :mod:`.configs`, figures and tables in
:mod:`.report`.

On the command line: ``jaxreg reproduce locality-is-same-class --size small`` (and
``locality-pathfinder``), via the adapters in :mod:`jaxreg_lab.reproductions`.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from jaxreg import validation as _checks
from jaxreg.locality.data import is_same_class, pathfinder
from jaxreg.locality.training import train_runs
from jaxreg_lab.driver import chunk_loop
from jaxreg_lab.locality.configs import HISTORY_METRICS, SIZES, TASKS, IsSameClassConfig, ModelSpec, PathfinderConfig
from jaxreg_lab.locality.report import locality_figure, plot_locality, summary_table
from jaxreg_lab.store.data_cache import NpzCache

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


def _train_point(spec, train, test, config, options, name, description, *, out_dir, resume, progress) -> dict:
    """Train all (lambda, seed) runs of one grid point. Runs with lambda = 0 train in a
    separate group without the double backward pass (it would cost them ~4x for
    nothing); each group is vmapped. Results are merged back in lambda order."""
    lambdas = np.asarray(config.lambdas)
    groups = [g for g in (np.flatnonzero(lambdas == 0), np.flatnonzero(lambdas > 0)) if len(g)]
    parts = []
    tags = ["plain" if lambdas[g[0]] == 0 else "regularized" for g in groups]
    for g, tag in zip(groups, tags):
        parts.append(
            (
                g,
                train_runs(
                    spec,
                    train,
                    test,
                    tuple(lambdas[g]),
                    config.seeds,
                    options,
                    loop=chunk_loop(
                        out_dir=out_dir,
                        resume=resume,
                        progress=progress,
                        desc=f"{description} {tag}",
                        fingerprint=config,
                        name=f"{name}/{tag}",
                        precision="float32",
                    ),
                ),
            )
        )
    out = {}
    for key in parts[0][1]:
        axis = 1 if key == "history" else 0
        first = parts[0][1][key]
        shape = list(first.shape)
        shape[axis] = len(lambdas)
        full = np.empty(shape, dtype=first.dtype if key != "status" else object)
        for g, res in parts:
            idx = [slice(None)] * len(shape)
            idx[axis] = g
            full[tuple(idx)] = res[key]
        out[key] = full.astype(str) if key == "status" else full
    return out


def _collect(per_point: list[dict], range_name: str, range_values, config) -> dict:
    arrays = {}
    for name in ("test_accuracy", "train_accuracy", "test_R", "epochs", "status"):
        arrays[name] = ((range_name, "lambda", "seed"), np.stack([p[name] for p in per_point]))
    arrays["history"] = ((range_name, "epoch", "lambda", "seed", "metric"), np.stack([p["history"] for p in per_point]))
    coords = {
        range_name: list(range_values),
        "lambda": list(config.lambdas),
        "seed": list(config.seeds),
        "epoch": list(range(1, config.max_epochs + 1)),
        "metric": list(HISTORY_METRICS),
    }
    return {"arrays": arrays, "coords": coords, "config": dataclasses.asdict(config)}


def _run_grid(config, options, range_name, range_values, data, label, **run) -> dict:
    """Train every point ``v`` of ``range_values`` (all its (lambda, seed) runs, see
    :func:`_train_point`) on ``data(train_key, test_key, v) -> (train, test)``, the keys
    split from ``fold_in(key(config.data_seed), v)``; checkpoints under
    ``<range_name>_<v>``, progress labelled ``"<label>=<v>"``; ``run``: ``out_dir``,
    ``resume``, ``progress``. Returns the results dict
    (:func:`_collect`)."""
    spec = config.model_spec()
    root = jax.random.key(config.data_seed)
    points = []
    for v in range_values:
        ktr, kte = jax.random.split(jax.random.fold_in(root, v))
        train, test = data(ktr, kte, v)
        points.append(_train_point(spec, train, test, config, options, f"{range_name}_{v}", f"{label}={v}", **run))
    return _collect(points, range_name, range_values, config)


def _check_run_args(config, cls, out_dir, resume):
    """Validate the arguments of a run (checkpoints are the runner's: see the module docstring)."""
    if not isinstance(config, cls):
        raise ValueError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    if resume and out_dir is None:
        raise ValueError("out_dir is required when resume=True")


def run_is_same_class(
    config: IsSameClassConfig | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train the Is-Same-Class grid; see the module docstring for the results dict.

    Per distance: ``num_train`` training and ``num_test`` test pairs drawn from
    disjoint halves of the digits (CIFAR-10: from its training and its test images); all
    (lambda, seed) runs of a distance train together (vmapped). With ``out_dir``,
    per-epoch checkpoints go to ``out_dir/.checkpoint/distance_<d>/`` and ``resume=True``
    continues from them. The results dict's ``data`` names the images and, for CIFAR-10,
    the archive's MD5."""
    with jax.enable_x64(False):  # CNN training is float32, whatever the caller's x64 setting
        config = IsSameClassConfig.preset("small") if config is None else config
        _check_run_args(config, IsSameClassConfig, out_dir, resume)
        sources, record = _is_same_class_sources(config.dataset)

        def data(ktr, kte, d):
            kw = dict(scale=config.scale, canvas=config.canvas)
            train = is_same_class(ktr, config.num_train, d, split="train", source=sources[0], **kw)
            test = is_same_class(kte, config.num_test, d, split="test", source=sources[1], **kw)
            return train, test

        run = dict(out_dir=out_dir, resume=resume, progress=progress)
        res = _run_grid(config, config.options(), "distance", config.distances, data, "is_same_class d", **run)
        return {**res, "data": record}


def _is_same_class_sources(dataset: str) -> tuple[tuple, dict]:
    """The (train, test) ``source`` arguments of :func:`jaxreg.locality.data.is_same_class`
    for ``dataset`` (None, None for the digits' own halves) and the record of the data."""
    if dataset == "digits":
        import sklearn

        return (None, None), {
            "name": "digits",
            "source": f"sklearn.datasets.load_digits (scikit-learn {sklearn.__version__})",
        }
    from jaxreg_lab.datasets import load_cifar10

    images = load_cifar10()
    scaled = [
        (x.astype(np.float32) / np.float32(255.0), y)
        for x, y in ((images.train_images, images.train_labels), (images.test_images, images.test_labels))
    ]
    return tuple(scaled), images.record


def run_pathfinder(
    config: PathfinderConfig | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    cache_directory=None,
) -> dict:
    """Train the Pathfinder grid (path lengths x lambdas x seeds); data are cached on
    disk (see :func:`jaxreg_lab.store.data_cache.cache_dir`). Results dict as in the module
    docstring, with range dimension "path_length"."""
    with jax.enable_x64(False):  # CNN training is float32, whatever the caller's x64 setting
        config = PathfinderConfig.preset("small") if config is None else config
        _check_run_args(config, PathfinderConfig, out_dir, resume)
        options = config.options(patch_size=config.patch_size, patch_distance=0)
        kw = dict(
            image_size=config.image_size,
            canvas=config.canvas,
            num_distractors=config.num_distractors,
            cache=NpzCache(cache_directory),
        )

        def data(ktr, kte, n):
            return pathfinder(ktr, config.num_train, n, **kw), pathfinder(kte, config.num_test, n, **kw)

        run = dict(out_dir=out_dir, resume=resume, progress=progress)
        return _run_grid(config, options, "path_length", config.path_lengths, data, "pathfinder L", **run)


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
