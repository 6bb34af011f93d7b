"""Figures and tables of the CNN-locality reproductions: accuracy and held-out R against
the range (distance or path length), one line per lambda, and plain-text summary tables,
drawn from results only; and a figure of data samples (:func:`plot_samples`)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from jaxreg import validation as _checks
from jaxreg.locality.data import is_same_class, pathfinder
from jaxreg_lab.store import files
from jaxreg_lab.store.data_cache import NpzCache

__all__ = ["locality_figure", "plot_locality", "plot_samples", "summary_table"]


def locality_figure(
    test_accuracy: np.ndarray,
    range_name: str,
    range_values,
    lambdas,
    test_R: np.ndarray | None = None,
    history: np.ndarray | None = None,
    metrics=(),
    dataset: str | None = None,
):
    """A matplotlib ``Figure``: test accuracy (and, given ``test_R``, the held-out R)
    against the range, one line per lambda, mean +- std over seeds (NaN = failed run,
    skipped). Arrays are (range, lambda, seed); ``range_name`` is "distance" or "path_length".

    Given ``history`` (range, epoch, lambda, seed, metric) with metric names ``metrics``,
    a second row shows, per range value, the training R (dashed, mean over the epoch's
    batches) and the held-out R (solid, after each epoch) against the epoch, one color
    per lambda, mean over seeds (``dataset``: the Is-Same-Class images, for the title); a third row every seed's held-out test accuracy after
    each epoch (on the first evaluation batch of the test set)."""
    from matplotlib.figure import Figure

    xs = np.asarray(range_values)
    panels = [("test accuracy", np.asarray(test_accuracy, float))]
    if test_R is not None:
        panels.append(("held-out R (1 = no interaction)", np.asarray(test_R, float)))
    metrics = list(metrics)
    extra = []
    if history is not None and "R" in metrics:
        extra.append(_r_over_epochs)
    if history is not None and "test_accuracy" in metrics:
        extra.append(_accuracy_over_epochs)
    rows = 1 + len(extra)
    cols = max(len(panels), len(xs) if extra else 0)
    fig = Figure(figsize=(4.5 * cols, 3.5 * rows))
    grid = fig.subplots(rows, cols, squeeze=False)
    axes = grid[0]
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for row, draw in zip(grid[1:], extra):
        draw(row, np.asarray(history, float), metrics, range_name, xs, lambdas)
    task = "Is-Same-Class" if range_name == "distance" else "Pathfinder"
    for ax, (label, values) in zip(axes, panels):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for j, lam in enumerate(lambdas):
                mean = np.nanmean(values[:, j, :], axis=-1)
                std = np.nanstd(values[:, j, :], axis=-1)
                ax.errorbar(xs, mean, yerr=std, marker="o", capsize=3, label=f"lambda = {lam:g}")
                ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
        ax.set_xlabel(range_name.replace("_", " "))
        ax.set_ylabel(label)
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].axhline(0.5, color="gray", lw=0.8, ls="--")
    axes[0].set_ylim(0.4, 1.02)
    axes[0].set_title(f"{task}: test accuracy (mean +- std over seeds)", fontsize=9)
    if test_R is not None:
        axes[1].set_ylim(0.0, 1.02)
        axes[1].set_title(f"{task}: held-out R (lower = more interaction)", fontsize=9)
    if range_name == "distance":
        on = "CIFAR-10" if dataset == "cifar10" else "scikit-learn digits (in place of the paper's CIFAR-10)"
        fig.suptitle(f"Is-Same-Class on {on}", fontsize=10)
    fig.tight_layout()
    return fig


def _r_over_epochs(axes, history, metrics, range_name, xs, lambdas):
    """Training R (dashed) and held-out R (solid, when recorded) against the epoch, one
    panel per range value, one color per lambda, mean over seeds."""
    epochs = np.arange(1, history.shape[1] + 1)
    for i, (ax, x) in enumerate(zip(axes, xs)):
        for j, lam in enumerate(lambdas):
            color = f"C{j}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                train = np.nanmean(history[i, :, j, :, metrics.index("R")], axis=-1)
                ax.plot(epochs, train, ls="--", color=color, label=f"lambda = {lam:g}, train")
                if "test_R" in metrics:
                    held = np.nanmean(history[i, :, j, :, metrics.index("test_R")], axis=-1)
                    ax.plot(epochs, held, ls="-", color=color, label=f"lambda = {lam:g}, held-out")
        _epoch_panel(ax, (0.0, 1.02), "R", f"{range_name.replace('_', ' ')} = {x}: R over training")
    for ax in axes[len(xs) :]:
        ax.set_visible(False)


def _epoch_panel(ax, ylim, ylabel: str, title: str) -> None:
    """The axes, title, grid and legend of a panel against the epoch."""
    ax.set_ylim(*ylim)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _accuracy_over_epochs(axes, history, metrics, range_name, xs, lambdas):
    """Every seed's held-out test accuracy against the epoch, one panel per range value,
    one color per lambda (a thin line per seed): when each run leaves chance."""
    epochs = np.arange(1, history.shape[1] + 1)
    k = metrics.index("test_accuracy")
    for i, (ax, x) in enumerate(zip(axes, xs)):
        for j, lam in enumerate(lambdas):
            for s in range(history.shape[3]):
                ax.plot(
                    epochs,
                    history[i, :, j, s, k],
                    color=f"C{j}",
                    lw=1.0,
                    alpha=0.8,
                    label=f"lambda = {lam:g}" if s == 0 else None,
                )
        ax.axhline(0.5, color="gray", lw=0.8, ls="--")
        title = f"{range_name.replace('_', ' ')} = {x}: every seed's test accuracy"
        _epoch_panel(ax, (0.3, 1.02), "held-out test accuracy", title)
    for ax in axes[len(xs) :]:
        ax.set_visible(False)


def plot_locality(results: dict, path: str | os.PathLike) -> Path:
    """Test accuracy and held-out R against distance / path length, one line per lambda,
    mean +- std over seeds (failed runs are NaN and skipped). Writes a PNG to ``path``."""
    dims, acc = results["arrays"]["test_accuracy"]
    range_name = dims[0]
    coords = results["coords"]
    fig = locality_figure(
        acc,
        range_name,
        coords[range_name],
        coords["lambda"],
        results["arrays"]["test_R"][1],
        history=results["arrays"]["history"][1] if "history" in results["arrays"] else None,
        metrics=coords.get("metric", ()),
    )
    return files.save_figure(fig, Path(path), dpi=120)


def summary_table(
    test_accuracy: np.ndarray,
    range_name: str,
    range_values,
    lambdas,
    *,
    test_R: np.ndarray | None = None,
    train_accuracy: np.ndarray | None = None,
) -> str:
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


def plot_samples(
    path: str | os.PathLike,
    key: PRNGKeyArray,
    *,
    distances=(0, 20, 40),
    path_lengths=(3, 6, 9),
    per_row: int = 4,
    scale: int = 1,
    canvas=(8, 56),
    image_size: int = 48,
    pathfinder_canvas: float = 300.0,
    num_distractors: int | None = None,
    cache: bool = False,
) -> Path:
    """Draw ``per_row`` samples of Is-Same-Class for each distance and of Pathfinder for
    each path length (one row per setting, titles show the label) to a PNG at ``path``.
    The defaults are the "small" presets' canvases (``canvas`` for Is-Same-Class,
    ``pathfinder_canvas`` for Pathfinder), image size and distances, with path lengths
    3, 6, 9 (``jaxreg samples`` draws them)."""
    from matplotlib.figure import Figure

    per_row = _checks.integer("per_row", per_row, minimum=1)
    rows = [("Is-Same-Class", "distance", d) for d in distances] + [
        ("Pathfinder", "path_length", p) for p in path_lengths
    ]
    # row heights follow the images' aspect ratios (0.5 in for the titles, images at most 1.5 in tall)
    aspects = [canvas[0] / canvas[1] if task == "Is-Same-Class" else 1.0 for task, _, _ in rows]
    heights = [0.5 + min(1.5, 2.4 * a) for a in aspects]
    fig = Figure(figsize=(2.6 * per_row, sum(heights)))
    axes = fig.subplots(len(rows), per_row, squeeze=False, gridspec_kw={"height_ratios": heights})
    keys = jax.random.split(key, len(rows))
    for r, ((task, arg, value), k) in enumerate(zip(rows, keys)):
        if task == "Is-Same-Class":
            data = is_same_class(k, per_row, value, scale=scale, canvas=canvas)
        else:
            data = pathfinder(
                k,
                per_row,
                value,
                image_size=image_size,
                canvas=pathfinder_canvas,
                num_distractors=num_distractors,
                cache=NpzCache() if cache else None,
            )
        for c in range(per_row):
            ax = axes[r, c]
            ax.imshow(data.images[c, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{task} {arg}={value}\nlabel {int(data.labels[c])}", fontsize=7)
    fig.tight_layout()
    return files.save_figure(fig, Path(path), dpi=100)
