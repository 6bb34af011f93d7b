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
(range, "epoch", "lambda", "seed", "metric"). With ``out_dir`` the config is recorded in
``out_dir/config.json`` and resuming a directory of another configuration raises.

On the command line: ``jaxreg reproduce locality-is-same-class --size small`` (and
``locality-pathfinder``), via the adapters in :mod:`jaxreg.experiments`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path

import jax
import numpy as np

from . import _checks
from ..results import ResumeMismatch
from .data import DIGIT_SIDE, is_same_class, pathfinder
from .models import ARCHITECTURES, NORMS, ACTIVATIONS, make_model
from .training import TrainOptions, train_runs

__all__ = ["IsSameClassConfig", "PathfinderConfig", "ModelSpec", "run_is_same_class", "run_pathfinder",
           "run_locality", "plot_locality", "locality_figure", "summary_table", "run_statuses", "TASKS",
           "SIZES"]

TASKS = ("is_same_class", "pathfinder")
SIZES = ("tiny", "small", "paper")
HISTORY_METRICS = ("loss", "task_loss", "R", "train_accuracy")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A hashable model factory: ``spec(key) -> (model, state)`` (equal specs share
    compiled code across calls)."""

    architecture: str = "small"
    kwargs: tuple = ()

    def __call__(self, key):
        return make_model(key, self.architecture, **dict(self.kwargs))


def _small_rf(stem_stride: int, stages: int) -> int:
    r, jump = 3, stem_stride
    for s in range(stages):
        for stride in ((2 if s else 1), 1):
            r += 2 * jump
            jump *= stride
    return r


@dataclasses.dataclass(frozen=True)
class _Common:
    lambdas: tuple = (0.0,)
    seeds: tuple = (0,)
    num_train: int = 1000
    num_test: int = 1000
    architecture: str = "small"
    width: int = 8
    stages: int = 4
    norm: str = "layer"
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 64
    max_epochs: int = 12
    patience: int = 20
    data_seed: int = 0
    size: str = "small"

    def _check_common(self):
        object.__setattr__(self, "lambdas", _checks.float_tuple("lambda", self.lambdas, minimum=0.0))
        seeds = self.seeds
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):  # a count: seeds 0 .. n-1
            seeds = range(_checks.integer("seeds", seeds, minimum=1))
        # every (lambda, seed) run is vmapped: at least the first 3x3 conv's weights, their
        # gradient and two Adam moments in float32 per run
        _checks.fits_in_memory("seeds", len(seeds), len(seeds) * len(self.lambdas) * 4 * 4 * 9 * self.width)
        object.__setattr__(self, "seeds", _checks.int_tuple("seeds", seeds, minimum=0))
        _checks.integer("num_train", self.num_train, minimum=2)
        _checks.integer("num_test", self.num_test, minimum=2)
        _checks.choice("architecture", self.architecture, tuple(ARCHITECTURES))
        _checks.integer("width", self.width, minimum=1)
        _checks.integer("stages", self.stages, minimum=1)
        _checks.choice("norm", self.norm, NORMS)
        _checks.choice("activation", self.activation, ACTIVATIONS)
        _checks.integer("batch_size", self.batch_size, minimum=2)
        if self.batch_size > self.num_train:
            raise ValueError(f"batch_size must be <= num_train {self.num_train}, got {self.batch_size}")
        _checks.integer("data_seed", self.data_seed, minimum=0)
        _checks.choice("size", self.size, SIZES)
        self.options()  # checks optimizer, learning_rate, epochs, ...

    def options(self, **overrides) -> TrainOptions:
        """The training options of this config (``overrides`` replace fields)."""
        kw = dict(batch_size=self.batch_size, optimizer=self.optimizer, learning_rate=self.learning_rate,
                  momentum=self.momentum, max_epochs=self.max_epochs, patience=self.patience)
        return TrainOptions(**{**kw, **overrides})

    def model_spec(self) -> ModelSpec:
        kw = {"norm": self.norm, "activation": self.activation}
        if self.architecture == "small":
            kw.update(width=self.width, stages=self.stages)
        return ModelSpec(self.architecture, tuple(sorted(kw.items())))

    def receptive_field(self) -> int:
        return _small_rf(2, self.stages) if self.architecture == "small" else 435

    def _warn_rf(self, width: int):
        if self.receptive_field() <= width:
            warnings.warn(f"the model's receptive field ({self.receptive_field()} px) does not exceed the image "
                          f"width ({width} px): R can be exactly 1 and the regularizer cannot help", stacklevel=3)


@dataclasses.dataclass(frozen=True)
class IsSameClassConfig(_Common):
    """Is-Same-Class grid: ``distances`` (px gap) x ``lambdas`` x ``seeds`` (a tuple of
    seeds, or a count n meaning seeds 0 .. n-1).

    Digits of side 8 * ``scale`` on a ``canvas`` (H, W). Defaults: the "small" preset."""

    distances: tuple = (0, 16, 32)
    lambdas: tuple = (0.0, 0.1, 1.0)
    seeds: tuple = (0, 1)
    scale: int = 1
    canvas: tuple = (8, 48)

    def __post_init__(self):
        self._check_common()
        _checks.integer("scale", self.scale, minimum=1)
        a = DIGIT_SIDE * self.scale
        if len(self.canvas) != 2:
            raise ValueError(f"canvas must be (height, width), got {self.canvas!r}")
        object.__setattr__(self, "canvas", (_checks.integer("canvas[0]", self.canvas[0], minimum=a),
                                            _checks.integer("canvas[1]", self.canvas[1], minimum=2 * a)))
        object.__setattr__(self, "distances", _checks.int_tuple("distance", self.distances, minimum=0))
        for d in self.distances:
            if 2 * a + d > self.canvas[1]:
                raise ValueError(f"distance must be <= {self.canvas[1] - 2 * a} for a {self.canvas[1]} px wide canvas, got {d}")
        self._warn_rf(self.canvas[1])

    @classmethod
    def preset(cls, size: str = "small", **overrides) -> "IsSameClassConfig":
        """"tiny": for tests (about a minute, mostly compilation): 64 pairs memorized in
        30 epochs, lambda 0.3 (lambda 1 slows fitting too much at this size);
        "small": the CPU default (< 20 min on 2 cores); "paper": the paper's grid (32 px
        images on a 224 px canvas, gaps 0..160, ResNet18 with BatchNorm, SGD, 5000/10000
        pairs, up to 150 epochs) for a GPU."""
        _checks.choice("size", size, SIZES)
        base = {
            "tiny": dict(distances=(0, 16), lambdas=(0.0, 0.3), seeds=(0, 1), num_train=64, num_test=128,
                         canvas=(8, 32), width=8, stages=3, batch_size=32, learning_rate=3e-3, max_epochs=30),
            "small": dict(),
            "paper": dict(distances=(0, 40, 80, 120, 160), lambdas=(0.0, 0.1, 1.0), seeds=(0, 1, 2), num_train=5000,
                          num_test=10000, scale=4, canvas=(224, 224), architecture="resnet18", norm="batch",
                          optimizer="sgd", learning_rate=1e-2, max_epochs=150),
        }[size]
        return cls(**{**base, "size": size, **overrides})


@dataclasses.dataclass(frozen=True)
class PathfinderConfig(_Common):
    """Pathfinder grid: ``path_lengths`` (paddles) x ``lambdas`` x ``seeds`` (a tuple, or
    a count n meaning 0 .. n-1) on
    ``image_size`` px images; the regularizer's patches are ``patch_size`` squares
    (second one uniform among non-overlapping positions)."""

    path_lengths: tuple = (2, 6)
    lambdas: tuple = (0.0, 3.0, 9.0)
    seeds: tuple = (0, 1)
    image_size: int = 24
    num_distractors: int = 1
    patch_size: int = 2

    def __post_init__(self):
        self._check_common()
        object.__setattr__(self, "path_lengths", _checks.int_tuple("path_length", self.path_lengths, minimum=1))
        _checks.integer("image_size", self.image_size, minimum=8)
        _checks.integer("num_distractors", self.num_distractors, minimum=0)
        _checks.integer("patch_size", self.patch_size, minimum=1, maximum=self.image_size // 2)
        longest = max(self.path_lengths) * self.image_size / 14
        if longest > 4 * self.image_size:
            raise ValueError(f"path_length must be <= {int(4 * 14)} for {self.image_size} px images, got {max(self.path_lengths)}")
        self._warn_rf(self.image_size)

    @classmethod
    def preset(cls, size: str = "small", **overrides) -> "PathfinderConfig":
        """"tiny": for tests (about a minute, mostly compilation): 16 px images, 6 px
        patches (with 2 px patches most pairs are blank, R stays ~1 and the regularizer
        has nothing to act on), lambda 1 (9 stops fitting at this size), 128 images
        memorized in 20 epochs; "small": the CPU default (24 px, path lengths 2 and 6; with
        lengths 2, 4, 6 the grid was on course for ~28 CPU-minutes, over the 20 min budget
        on 2 cores); "paper": 150 px images, path lengths 3/5/7/9, 10k/10k, ResNet18, SGD,
        up to 150 epochs, for a GPU."""
        _checks.choice("size", size, SIZES)
        base = {
            "tiny": dict(path_lengths=(2, 4), lambdas=(0.0, 1.0), seeds=(0, 1), num_train=128, num_test=128,
                         image_size=16, num_distractors=1, patch_size=6, width=8, stages=3, batch_size=32,
                         learning_rate=3e-3, max_epochs=20),
            "small": dict(),
            "paper": dict(path_lengths=(3, 5, 7, 9), seeds=(0, 1, 2), num_train=10000, num_test=10000,
                          image_size=150, num_distractors=2, architecture="resnet18", norm="batch",
                          optimizer="sgd", learning_rate=1e-2, max_epochs=150),
        }[size]
        return cls(**{**base, "size": size, **overrides})


def _train_point(spec, train, test, config, options, out_dir, name, resume, progress, description) -> dict:
    """Train all (lambda, seed) runs of one grid point. Runs with lambda = 0 train in a
    separate group without the double backward pass (it would cost them ~4x for
    nothing); each group is vmapped. Results are merged back in lambda order."""
    lambdas = np.asarray(config.lambdas)
    groups = [g for g in (np.flatnonzero(lambdas == 0), np.flatnonzero(lambdas > 0)) if len(g)]
    parts = []
    tags = ["plain" if lambdas[g[0]] == 0 else "regularized" for g in groups]
    for g, tag in zip(groups, tags):
        ckpt = None if out_dir is None else Path(out_dir) / name / tag
        parts.append((g, train_runs(spec, train, test, tuple(lambdas[g]), config.seeds, options, checkpoint_dir=ckpt,
                                    resume=resume, progress=progress, description=f"{description} {tag}")))
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
    coords = {range_name: list(range_values), "lambda": list(config.lambdas), "seed": list(config.seeds),
              "epoch": list(range(1, config.max_epochs + 1)), "metric": list(HISTORY_METRICS)}
    return {"arrays": arrays, "coords": coords, "config": dataclasses.asdict(config)}


def _check_run_args(config, cls, out_dir, resume):
    """Validate, and with ``out_dir`` record the config there (``config.json``): resuming
    a directory that holds another configuration raises instead of mixing two runs."""
    if not isinstance(config, cls):
        raise ValueError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    if resume and out_dir is None:
        raise ValueError("out_dir is required when resume=True")
    if out_dir is None:
        return
    from ..results import atomic_write_bytes

    path = Path(out_dir) / "config.json"
    fingerprint = json.dumps(dataclasses.asdict(config), sort_keys=True)
    if resume and path.exists() and path.read_text() != fingerprint:
        raise ResumeMismatch(f"resume: {out_dir} holds a run of another configuration ({path}); "
                         "use another out_dir or start afresh without resume")
    atomic_write_bytes(path, fingerprint.encode())


def run_is_same_class(config: IsSameClassConfig | None = None, *, out_dir: str | os.PathLike | None = None,
                      resume: bool = False, progress: bool = True) -> dict:
    """Train the Is-Same-Class grid; see the module docstring for the results dict.

    Per distance: ``num_train`` training and ``num_test`` test pairs drawn from
    disjoint halves of the digits; all (lambda, seed) runs of
    a distance train together (vmapped). With ``out_dir``, per-epoch checkpoints go to
    ``out_dir/distance_<d>/`` and ``resume=True`` continues from them."""
    with jax.enable_x64(False):  # CNN training is float32, whatever the caller's x64 setting
        config = IsSameClassConfig.preset("small") if config is None else config
        _check_run_args(config, IsSameClassConfig, out_dir, resume)
        options = config.options()
        spec = config.model_spec()
        root = jax.random.key(config.data_seed)
        points = []
        for d in config.distances:
            ktr, kte = jax.random.split(jax.random.fold_in(root, d))
            train = is_same_class(ktr, config.num_train, d, split="train", scale=config.scale, canvas=config.canvas)
            test = is_same_class(kte, config.num_test, d, split="test", scale=config.scale, canvas=config.canvas)
            points.append(_train_point(spec, train, test, config, options, out_dir, f"distance_{d}", resume, progress,
                                       f"is_same_class d={d}"))
        return _collect(points, "distance", config.distances, config)


def run_pathfinder(config: PathfinderConfig | None = None, *, out_dir: str | os.PathLike | None = None,
                   resume: bool = False, progress: bool = True, cache_directory=None) -> dict:
    """Train the Pathfinder grid (path lengths x lambdas x seeds); data are cached on
    disk (see :func:`jaxreg.locality.data.cache_dir`). Results dict as in the module
    docstring, with range dimension "path_length"."""
    with jax.enable_x64(False):  # CNN training is float32, whatever the caller's x64 setting
        config = PathfinderConfig.preset("small") if config is None else config
        _check_run_args(config, PathfinderConfig, out_dir, resume)
        options = config.options(patch_size=config.patch_size, patch_distance=0)
        spec = config.model_spec()
        root = jax.random.key(config.data_seed)
        points = []
        for n in config.path_lengths:
            ktr, kte = jax.random.split(jax.random.fold_in(root, n))
            kw = dict(image_size=config.image_size, num_distractors=config.num_distractors, cache_directory=cache_directory)
            train = pathfinder(ktr, config.num_train, n, **kw)
            test = pathfinder(kte, config.num_test, n, **kw)
            points.append(_train_point(spec, train, test, config, options, out_dir, f"path_length_{n}", resume,
                                       progress, f"pathfinder L={n}"))
        return _collect(points, "path_length", config.path_lengths, config)


def run_locality(task: str, size: str = "small", *, out_dir=None, resume: bool = False, progress: bool = True,
                 **overrides) -> dict:
    """Dispatch by name: ``task`` in {"is_same_class", "pathfinder"}, preset ``size``,
    config fields overridden by ``overrides``."""
    _checks.choice("task", task, TASKS)
    _checks.choice("size", size, SIZES)
    if task == "is_same_class":
        return run_is_same_class(IsSameClassConfig.preset(size, **overrides), out_dir=out_dir, resume=resume,
                                 progress=progress)
    return run_pathfinder(PathfinderConfig.preset(size, **overrides), out_dir=out_dir, resume=resume,
                          progress=progress)


def locality_figure(test_accuracy: np.ndarray, range_name: str, range_values, lambdas,
                    test_R: np.ndarray | None = None):
    """A matplotlib ``Figure``: test accuracy (and, given ``test_R``, the held-out R)
    against the range, one line per lambda, mean +- std over seeds (NaN = failed run,
    skipped). Arrays are (range, lambda, seed); ``range_name`` is "distance" or "path_length"."""
    from matplotlib.figure import Figure

    xs = np.asarray(range_values)
    panels = [("test accuracy", np.asarray(test_accuracy, float))]
    if test_R is not None:
        panels.append(("held-out R (1 = no interaction)", np.asarray(test_R, float)))
    fig = Figure(figsize=(5 * len(panels), 3.5))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    task = "Is-Same-Class" if range_name == "distance" else "Pathfinder"
    for ax, (label, values) in zip(axes, panels):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for j, lam in enumerate(lambdas):
                mean = np.nanmean(values[:, j, :], axis=-1)
                std = np.nanstd(values[:, j, :], axis=-1)
                ax.plot(xs, mean, marker="o", label=f"lambda = {lam:g}")
                ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
        ax.set_xlabel(range_name.replace("_", " "))
        ax.set_ylabel(label)
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].axhline(0.5, color="gray", lw=0.8, ls="--")
    axes[0].set_ylim(0.4, 1.02)
    axes[0].set_title(f"{task}: accuracy vs range (mean +- std over seeds)", fontsize=9)
    if test_R is not None:
        axes[1].set_ylim(0.0, 1.02)
        axes[1].set_title(f"{task}: held-out R (lower = more interaction)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_locality(results: dict, path: str | os.PathLike) -> Path:
    """Test accuracy and held-out R against distance / path length, one line per lambda,
    mean +- std over seeds (failed runs are NaN and skipped). Writes a PNG to ``path``."""
    dims, acc = results["arrays"]["test_accuracy"]
    range_name = dims[0]
    fig = locality_figure(acc, range_name, results["coords"][range_name], results["coords"]["lambda"],
                          results["arrays"]["test_R"][1])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


# How the training statuses read in the command line's terms ("completed"/"converged" = success).
RUN_STATUS = {"fit": "converged", "max_epochs": "completed", "nan": "non_finite"}


def run_statuses(status: np.ndarray) -> list[str]:
    """One status per run, (range, lambda, seed) flattened in C order: "converged" (the
    stopping rule fired after 100% train accuracy), "completed" (trained ``max_epochs``),
    "non_finite" (the loss turned NaN/inf)."""
    return [RUN_STATUS[str(s)] for s in np.asarray(status).ravel()]


def summary_table(test_accuracy: np.ndarray, range_name: str, range_values, lambdas, *,
                  test_R: np.ndarray | None = None, train_accuracy: np.ndarray | None = None) -> str:
    """Plain-text tables over range x lambda of arrays shaped (range, lambda, seed): test
    accuracy mean +- std over seeds, then the means of held-out R and train accuracy
    (failed runs are NaN and left out; "n/a" when all seeds failed)."""
    def cell(v, with_std):
        v = v[np.isfinite(v)]
        if not v.size:
            return "n/a"
        return f"{v.mean():.3f} ± {v.std():.3f}" if with_std else f"{v.mean():.3f}"

    lambdas = list(lambdas)
    n_seeds = np.shape(test_accuracy)[-1]
    blocks = [(f"test accuracy, mean ± std over {n_seeds} seed(s)", test_accuracy, True)]
    if test_R is not None:
        blocks.append(("held-out R (mean; 1 = no interaction between the patches)", test_R, False))
    if train_accuracy is not None:
        blocks.append(("train accuracy (mean)", train_accuracy, False))
    head = f"{range_name:>12s}" + "".join(f"{'lambda=' + format(lam, 'g'):>17s}" for lam in lambdas)
    lines = []
    for title, values, with_std in blocks:
        values = np.asarray(values, dtype=float)
        lines += [title, head]
        for i, r in enumerate(range_values):
            lines.append(f"{r!s:>12s}" + "".join(f"{cell(values[i, j], with_std):>17s}" for j in range(len(lambdas))))
        lines.append("")
    return "\n".join(lines[:-1])
