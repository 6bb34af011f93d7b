"""Is-Same-Class: the gradient-change regularizer restores long-range accuracy (Razin et al. 2022).

Two digits at horizontal gap ``distance`` on a blank canvas; label: same class? Without
the regularizer (lambda = 0) test accuracy falls towards chance as the gap grows; with
loss = BCE + lambda * R it stays higher at long range. A thin adapter over
:mod:`jaxreg.locality.experiments` (config, presets and training live there).
Training runs in float32 (``FLOAT32``) whatever the command line's precision.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..locality.experiments import IsSameClassConfig, locality_figure, run_is_same_class, run_statuses, summary_table
from ._runner import CHECKPOINT

NAME = "locality-is-same-class"
FLOAT32 = True  # CNN training: the command line leaves x64 off for this reproduction
Config = IsSameClassConfig  # frozen; preset("tiny" | "small" | "paper"); seeds: a count or a tuple of seeds


def run(config: Config, *, out_dir=None, resume=False, progress=True) -> dict:
    """Train the grid (distance x lambda x seed). With ``out_dir``, per-epoch checkpoints
    go to ``out_dir/.checkpoint`` (``resume=True`` continues them) and are removed once
    the grid is done."""
    ckpt = None if out_dir is None else Path(out_dir) / CHECKPOINT
    res = run_is_same_class(config, out_dir=ckpt, resume=resume and ckpt is not None, progress=progress)
    if ckpt is not None:
        shutil.rmtree(ckpt, ignore_errors=True)
    return {"arrays": res["arrays"], "coords": res["coords"], "status": run_statuses(res["arrays"]["status"][1])}


def plot(results, out_dir) -> list[Path]:
    """Test accuracy and held-out R against distance, one line per lambda (PNG + PDF)."""
    from ..plotting import save_figure

    fig = locality_figure(results["test_accuracy"], "distance", results.coords["distance"], results.coords["lambda"],
                          results["test_R"])
    return save_figure(fig, out_dir, NAME)


def summary(results) -> str:
    return "Is-Same-Class\n" + summary_table(results["test_accuracy"], "distance", results.coords["distance"],
                                             results.coords["lambda"], test_R=results["test_R"],
                                             train_accuracy=results["train_accuracy"])
