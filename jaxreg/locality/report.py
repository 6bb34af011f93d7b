"""Figures and tables of the CNN-locality reproductions, drawn from results only:
accuracy and held-out R against the range (distance or path length), one line per
lambda, and plain-text summary tables."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

__all__ = ["locality_figure", "plot_locality", "summary_table"]


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
