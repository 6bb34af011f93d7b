"""Figures drawn from saved results only (never by re-running an experiment)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jaxreg_lab.store import files  # noqa: E402


def save_figure(fig, out_dir, stem: str) -> list[Path]:
    """Save ``fig`` as PNG and PDF under ``out_dir`` (atomic writes of the store); returns the paths."""
    paths = [
        files.save_figure(fig, Path(out_dir) / f"{stem}.{ext}", dpi=130, bbox_inches="tight") for ext in ("png", "pdf")
    ]
    plt.close(fig)
    return paths


def plot_curves(ax, ts, values, *, label_prefix="", log=True, cmap="viridis", max_lines=10):
    """One line per column of ``values`` (time x component), finite entries only."""
    ts = np.asarray(ts)
    values = np.asarray(values)
    colors = plt.get_cmap(cmap)(np.linspace(0, 0.9, min(values.shape[1], max_lines)))
    for r in range(min(values.shape[1], max_lines)):
        ok = np.isfinite(ts) & np.isfinite(values[:, r])
        ax.plot(ts[ok], values[ok, r], color=colors[r], lw=1.5, label=f"{label_prefix}{r + 1}")
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)


def style_axes(ax, *, xlabel: str, title: str, xscale=None, yscale=None, legend: bool = False, fontsize: int = 9):
    """Label ``ax`` and give it the gallery's grid; ``xscale``/``yscale`` e.g. ``"log"``."""
    if xscale:
        ax.set_xscale(xscale)
    if yscale:
        ax.set_yscale(yscale)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=fontsize)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7)


def add_iteration_axis(ax, eta: float):
    """A secondary x-axis with the equivalent GD iteration count t / eta."""
    sec = ax.secondary_xaxis("top", functions=(lambda t: t / eta, lambda k: k * eta))
    sec.set_xlabel(f"equivalent GD iterations (t / eta, eta = {eta:g})")
    return sec
