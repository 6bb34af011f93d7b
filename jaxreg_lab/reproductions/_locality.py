"""The shared body of the two locality reproductions (thin adapters over
:mod:`jaxreg_lab.locality.experiments`): the grid through the one runner (checkpoints under
``out_dir/.checkpoint``), the accuracy / held-out R figure and the summary table, over
one range axis. With the regularizer, loss = BCE + lambda * R, test accuracy stays higher
at long range. The configs, presets and training live in :mod:`jaxreg_lab.locality.experiments`;
training runs in float32 (``Config.PRECISION``) whatever the command line's precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxreg_lab.locality.report import locality_figure, summary_table


def run_grid(runner, config, *, out_dir, resume, progress) -> dict:
    """``runner(config, ...)`` over range x lambda x seed. With ``out_dir``, per-epoch
    checkpoints go to ``out_dir/.checkpoint/<point>/<group>`` (``resume=True``
    continues them); saving the results replaces them."""
    res = runner(config, out_dir=out_dir, resume=resume and out_dir is not None, progress=progress)
    status = [str(s) for s in np.ravel(res["arrays"]["status"][1])]  # already Status names
    return {"arrays": res["arrays"], "coords": res["coords"], "status": status}


def plot_grid(results, out_dir, name: str, range_name: str) -> list[Path]:
    """Test accuracy and held-out R against ``range_name``, one line per lambda, and R over
    the epochs per range value (PNG + PDF)."""
    from jaxreg_lab.plotting import save_figure

    coords = results.coords
    fig = locality_figure(
        results["test_accuracy"],
        range_name,
        coords[range_name],
        coords["lambda"],
        results["test_R"],
        history=results["history"] if "history" in results.arrays else None,
        metrics=coords.get("metric", ()),
    )
    return save_figure(fig, out_dir, name)


def summary_grid(results, title: str, range_name: str) -> str:
    return (
        title
        + "\n"
        + summary_table(
            results["test_accuracy"],
            range_name,
            results.coords[range_name],
            results.coords["lambda"],
            test_R=results["test_R"],
            train_accuracy=results["train_accuracy"],
        )
    )


def reproduction(runner, name: str, title: str, range_name: str):
    """The ``run``, ``plot`` and ``summary`` functions of one locality reproduction.

    Arguments:
        runner: the grid's trainer (e.g. :func:`jaxreg_lab.locality.experiments.run_is_same_class`).
        name: the reproduction's ``NAME`` (the figure's file name).
        title: the summary's title line.
        range_name: the range axis ("distance" or "path_length").

    Returns:
        ``(run, plot, summary)`` with the signatures every reproduction module exposes.
    """

    def run(config, *, out_dir=None, resume=False, progress=True) -> dict:
        """Train the grid (range x lambda x seed); checkpoints as in :func:`run_grid`."""
        return run_grid(runner, config, out_dir=out_dir, resume=resume, progress=progress)

    def plot(results, out_dir) -> list[Path]:
        return plot_grid(results, out_dir, name, range_name)

    def summary(results) -> str:
        return summary_grid(results, title, range_name)

    return run, plot, summary
