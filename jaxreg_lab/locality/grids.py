"""The two CNN-locality grids (Razin, Maman, Cohen, ICML 2022) on the reproduction
contract: :class:`IsSameClassGrid` and :class:`PathfinderGrid`, each an
:class:`jaxreg_lab.contract.EpochReproduction` over range x lambda x seed.

A run is one CNN trained with loss = BCE + lambda * R. Its chunk is an epoch: the
driver (:func:`jaxreg_lab.driver.run_reproduction`) draws the epoch's batches
(:meth:`LocalityGrid.plan`), dispatches one jitted, run-vmapped step per batch
(:meth:`LocalityGrid.step`), then evaluates on the held-out head and applies the stopping
rule of the reference code (:meth:`LocalityGrid.end`): a run stops ``patience`` epochs
after its running train accuracy first reaches ``fit_accuracy`` (100%), or at
``max_epochs`` (status "max_steps"); a run whose loss turns non-finite stops with status
"non_finite". The per-run functions are the library's (:mod:`jaxreg.locality.training`);
this module never jits or vmaps them.

The runs of a grid point (one range value) share its data set; its lambda = 0 runs form
one group and its lambda > 0 runs another (the plain group skips R's double backward
pass, ~4x cheaper); the driver splits the groups' programs over devices and processes
and checkpoints every run after each epoch in ``out_dir/.checkpoint``.
Training is float32 whatever the caller's x64 setting (``Config.PRECISION``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import Status
from jaxreg.locality.data import LocalityData, is_same_class, pathfinder
from jaxreg.locality.options import TrainOptions
from jaxreg.locality.training import (
    EVALUATION_KEY,
    epoch_plan,
    evaluate_run,
    evaluation_arrays,
    init_run,
    run_key,
    train_step,
    training_arrays,
)
from jaxreg_lab.contract import EpochReproduction, EpochSetup, Final, Group
from jaxreg_lab.locality.configs import HISTORY_METRICS, IsSameClassConfig, PathfinderConfig
from jaxreg_lab.locality.report import locality_figure, summary_table
from jaxreg_lab.store.data_cache import NpzCache

__all__ = ["LocalityGrid", "IsSameClassGrid", "PathfinderGrid", "is_same_class_sources"]


class LocalityGrid(EpochReproduction):
    """The body both CNN grids share; a grid declares its range axis (``range_name``,
    :meth:`range_values`), its training options and its data (:meth:`data`)."""

    range_name: ClassVar[str]
    label: ClassVar[str]  # the progress label of a grid point, e.g. "pathfinder L"

    @abc.abstractmethod
    def range_values(self, config) -> tuple:
        """The grid's range values (distances or path lengths)."""

    @abc.abstractmethod
    def train_options(self, config) -> TrainOptions:
        """The training options of ``config``."""

    @abc.abstractmethod
    def data(self, config) -> tuple[Callable, dict | None]:
        """``(draw, record)``: ``draw(train_key, test_key, v) -> (train, test)`` the data
        sets of range value ``v``, and the record of the images (None: none kept)."""

    @abc.abstractmethod
    def title(self, results) -> str:
        """The summary's title line."""

    def outputs(self, config) -> dict:
        grid = (self.range_name, "lambda", "seed")
        return {
            "test_accuracy": grid,
            "train_accuracy": grid,
            "test_R": grid,
            "epochs": grid,
            "status": grid,
            "history": (self.range_name, "epoch", "lambda", "seed", "metric"),
        }

    def setup(self, config) -> EpochSetup:
        """Per range value v: its data drawn with keys split from ``fold_in(key(data_seed),
        v)``, and two groups of (lambda, seed) runs, lambda-major: lambda = 0 and lambda > 0."""
        options = self.train_options(config)
        draw, record = self.data(config)
        values = tuple(self.range_values(config))
        lambdas, seeds = np.asarray(config.lambdas), np.asarray(config.seeds)
        shape = (len(values), len(lambdas), len(seeds))
        root = jax.random.key(config.data_seed)
        groups = []
        for p, v in enumerate(values):
            ktr, kte = jax.random.split(jax.random.fold_in(root, v))
            train, test = draw(ktr, kte, v)
            m = min(options.eval_batch_size, len(test.labels))
            head = LocalityData(
                test.images[:m], test.labels[:m], None if test.squares is None else test.squares[:m], test.info
            )
            shared = {
                "train": training_arrays(train),
                # accuracy and R after each epoch on the first eval_batch_size test samples
                "held_out": evaluation_arrays(head, options.eval_batch_size),
                "test": evaluation_arrays(test, options.eval_batch_size),
                "train_eval": evaluation_arrays(train, options.eval_batch_size),
                "key": run_key(EVALUATION_KEY),
                # the stopping rule's numbers as arrays: every config shares the compiled programs
                "fit_accuracy": jnp.asarray(options.fit_accuracy - 1e-6, jnp.float32),
                "patience": jnp.asarray(options.patience, jnp.int32),
            }
            num_steps = len(train.labels) // options.batch_size
            for tag, g in (("plain", np.flatnonzero(lambdas == 0)), ("regularized", np.flatnonzero(lambdas > 0))):
                if not len(g):
                    continue
                runs = (np.full(len(g) * len(seeds), p), np.repeat(g, len(seeds)), np.tile(range(len(seeds)), len(g)))
                groups.append(
                    Group(
                        name=f"{self.range_name}_{v}/{tag}",
                        label=f"{self.label}={v} {tag}",
                        shared={**shared, "regularize": tag == "regularized"},
                        inputs={
                            "lam": jnp.asarray(np.repeat(lambdas[g], len(seeds)), jnp.float32),
                            "seed": jnp.asarray(np.tile(seeds, len(g)), jnp.uint32),
                        },
                        index=tuple(int(i) for i in np.ravel_multi_index(runs, shape)),
                        num_steps=num_steps,
                        runs_per_program=options.runs_per_program,
                    )
                )
        coords = {
            self.range_name: list(values),
            "lambda": list(config.lambdas),
            "seed": list(config.seeds),
            "epoch": list(range(1, config.max_epochs + 1)),
            "metric": list(HISTORY_METRICS),
        }
        extra = {} if record is None else {"data": record}
        return EpochSetup(tuple(groups), config.max_epochs, shape, coords, extra)

    def init(self, config, shared, inputs) -> dict:
        """A network initialized from the run's seed, its optimizer state, the epoch its
        train accuracy first reached ``fit_accuracy`` (-1: not yet) and its epochs trained."""
        model, state, opt = init_run(inputs["seed"], config.model_spec(), self.train_options(config).step_part())
        return {
            "model": model,
            "state": state,
            "opt": opt,
            "fit_epoch": jnp.asarray(-1, jnp.int32),
            "epochs": jnp.asarray(0, jnp.int32),
        }

    def plan(self, config, shared, inputs, k):
        n_train = shared["train"][0].shape[0]
        return epoch_plan(inputs["seed"], k, n_train, n_train // config.batch_size, config.batch_size)

    def step(self, config, shared, inputs, state, plan, i):
        params, static = eqx.partition(state["model"], eqx.is_array)
        (params, norm_state, opt), metrics = train_step(
            params,
            static,
            state["state"],
            state["opt"],
            inputs["lam"],
            *plan,
            i,
            *shared["train"],
            self.train_options(config).step_part(),
            shared["regularize"],
        )
        return {**state, "model": eqx.combine(params, static), "state": norm_state, "opt": opt}, metrics

    def _evaluate(self, config, shared, state, split: str, with_R: bool):
        params, static = eqx.partition(eqx.nn.inference_mode(state["model"]), eqx.is_array)
        X, Y, SQ, n, B = shared[split]
        options = self.train_options(config).step_part()
        return evaluate_run(params, static, state["state"], X, Y, SQ, n, shared["key"], options, B, with_R)

    def end(self, config, shared, inputs, state, k, outputs):
        """The epoch's metrics (``outputs``: per batch [loss, task loss, R, accuracy]): their
        means, then held-out accuracy and R (the epoch's row of the metrics ``HISTORY``); the
        stopping rule on the running train accuracy."""
        finite = jnp.all(jnp.isfinite(outputs[:, 0]))
        means = jnp.mean(outputs, axis=0)
        held_out = jnp.stack(self._evaluate(config, shared, state, "held_out", True)).astype(jnp.float32)
        row = jnp.concatenate([means, held_out])
        fits = finite & (state["fit_epoch"] < 0) & (means[3] >= shared["fit_accuracy"])
        fit_epoch = jnp.where(fits, k, state["fit_epoch"])
        converged = (fit_epoch >= 0) & (k - fit_epoch >= shared["patience"])
        status = jnp.where(
            finite, jnp.where(converged, int(Status.CONVERGED), int(Status.RUNNING)), int(Status.NON_FINITE)
        )
        return {**state, "fit_epoch": fit_epoch, "epochs": k + 1}, status, {"metrics": row}

    def finish(self, config, shared, inputs, state) -> dict:
        """Test accuracy and R on the whole test set, train accuracy on the whole training
        set (inference mode)."""
        test_accuracy, test_R = self._evaluate(config, shared, state, "test", True)
        train_accuracy, _ = self._evaluate(config, shared, state, "train_eval", False)
        return {"test_accuracy": test_accuracy, "test_R": test_R, "train_accuracy": train_accuracy}

    def assemble(self, config, setup: EpochSetup, final: Final) -> dict:
        bad = final.status == Status.NON_FINITE
        epochs = np.asarray(final.state["epochs"])
        # each epoch's metrics row, NaN from the epoch after a run stopped
        history = np.array(final.data["metrics"])
        history[np.arange(config.max_epochs) >= epochs[..., None]] = np.nan

        def measured(name):
            x = np.array(final.data[name], dtype=np.float64)
            x[bad] = np.nan
            return x

        return {
            "test_accuracy": measured("test_accuracy"),
            "train_accuracy": measured("train_accuracy"),
            "test_R": measured("test_R"),
            "epochs": epochs,
            "status": np.array(Status.names(final.status)).reshape(final.status.shape),
            "history": np.moveaxis(history, 3, 1),
        }

    def plot(self, results, out_dir) -> list[Path]:
        """Test accuracy and held-out R against the range, one line per lambda, and the
        per-epoch history per range value (PNG + PDF)."""
        from jaxreg_lab.plotting import save_figure

        coords = results.coords
        fig = locality_figure(
            results["test_accuracy"],
            self.range_name,
            coords[self.range_name],
            coords["lambda"],
            results["test_R"],
            history=results["history"] if "history" in results.arrays else None,
            metrics=coords.get("metric", ()),
            dataset=results.config.get("dataset"),
        )
        return save_figure(fig, out_dir, self.name)

    def summary(self, results) -> str:
        table = summary_table(
            results["test_accuracy"],
            self.range_name,
            results.coords[self.range_name],
            results.coords["lambda"],
            test_R=results["test_R"],
            train_accuracy=results["train_accuracy"],
        )
        return self.title(results) + "\n" + table


class IsSameClassGrid(LocalityGrid):
    """Is-Same-Class: two images at horizontal gap ``distance`` on a blank canvas; label:
    same class? Per distance, ``num_train`` training and ``num_test`` test pairs drawn from
    disjoint halves of the digits (CIFAR-10: from its training and its test images)."""

    name = "locality-is-same-class"
    config = IsSameClassConfig
    range_name = "distance"
    label = "is_same_class d"

    def range_values(self, config) -> tuple:
        return config.distances

    def train_options(self, config) -> TrainOptions:
        return config.options()

    def data(self, config):
        sources, record = is_same_class_sources(config.dataset)
        kw = dict(scale=config.scale, canvas=config.canvas, placement=config.placement)

        def draw(ktr, kte, d):
            train = is_same_class(ktr, config.num_train, d, split="train", source=sources[0], **kw)
            test = is_same_class(kte, config.num_test, d, split="test", source=sources[1], **kw)
            return train, test

        return draw, record

    def title(self, results) -> str:
        return f"Is-Same-Class on {results.config.get('dataset', 'digits')}"


class PathfinderGrid(LocalityGrid):
    """Pathfinder: are the two markers joined by one dashed curve of ``path_length``
    paddles? The images are cached on disk (:class:`jaxreg_lab.store.data_cache.NpzCache`
    in ``cache_directory``, default :func:`jaxreg_lab.store.data_cache.cache_dir`)."""

    name = "locality-pathfinder"
    config = PathfinderConfig
    range_name = "path_length"
    label = "pathfinder L"

    def __init__(self, cache_directory=None):
        self.cache_directory = cache_directory

    def range_values(self, config) -> tuple:
        return config.path_lengths

    def train_options(self, config) -> TrainOptions:
        return config.options(patch_size=config.patch_size, patch_distance=0)

    def data(self, config):
        kw = dict(
            image_size=config.image_size,
            canvas=config.canvas,
            num_distractors=config.num_distractors,
            cache=NpzCache(self.cache_directory),
        )

        def draw(ktr, kte, n):
            return pathfinder(ktr, config.num_train, n, **kw), pathfinder(kte, config.num_test, n, **kw)

        return draw, None

    def title(self, results) -> str:
        return "Pathfinder"

    def __eq__(self, other) -> bool:
        return super().__eq__(other) and self.cache_directory == other.cache_directory

    def __hash__(self) -> int:
        return hash((type(self), self.cache_directory))


def is_same_class_sources(dataset: str) -> tuple[tuple, dict]:
    """The (train, test) ``source`` arguments of :func:`jaxreg.locality.data.is_same_class`
    for ``dataset`` (None, None for the digits' own halves) and the record of the data.

    Arguments:
        dataset: "digits" or "cifar10".

    Returns:
        ``((train source, test source), record)``.
    """
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
