"""The figure and the summary table of the sweep command (:mod:`jaxreg_lab.reproductions.custom_sweep`):
train loss, reconstruction error and top component norms over time, per init scale."""

from __future__ import annotations

import numpy as np

from jaxreg.dynamics import Status
from jaxreg_lab.reproductions._sweep_config import NAME


def plot(results, out_dir):
    import matplotlib.pyplot as plt

    from jaxreg_lab.plotting import save_figure

    cfg = results.config
    ts = np.asarray(results.coords["time"])
    scales = results.coords["init_scale"]
    # constrained layout keeps the suptitle above the panel titles and every tick label inside
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(scales)))
    for i, s in enumerate(scales):
        for name, ax in (("loss", axes[0]), ("reconstruction_error", axes[1])):
            y = results[name][i]
            for j in range(y.shape[0]):
                ok = np.isfinite(y[j])
                ax.plot(ts[ok], y[j][ok], color=colors[i], lw=1, alpha=0.7, label=f"init {s:g}" if j == 0 else None)
        norms = results["component_norms"][i, 0]
        for r in range(norms.shape[1]):
            ok = np.isfinite(norms[:, r])
            axes[2].plot(ts[ok], norms[ok, r], color=colors[i], lw=1.2, label=f"init {s:g}" if r == 0 else None)
    for ax, title in zip(axes, ("train loss", "rel. reconstruction error", "top component norms (seed 0)")):
        ax.set_yscale("log")
        ax.set_xlabel(results.coords.get("time_name", "time"))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{cfg['model']} {tuple(cfg['shape'])} {cfg['task']}, {cfg['optimizer']}")
    return save_figure(fig, out_dir, NAME)


def last_finite(x) -> np.ndarray:
    """The last finite value along the last axis (NaN where there is none): a run
    stopped by ``stop_at_loss`` or a failure saves inf after its stop.

    Arguments:
        x: values over time on the last axis.

    Returns:
        ``x`` without its last axis.
    """
    x = np.where(np.isfinite(x), x, np.nan)
    idx = np.where(np.isfinite(x).any(-1), np.isfinite(x).cumsum(-1).argmax(-1), 0)
    return np.take_along_axis(x, idx[..., None], -1)[..., 0]


def summary(results) -> str:
    scales = results.coords["init_scale"]
    status = np.asarray(results.meta["status"]).reshape(len(scales), -1)
    lines = [f"{'init':>8} {'reached stop':>12} {'train loss':>22} {'rel. error':>22} {'top norm':>10}"]

    for i, s in enumerate(scales):
        ok = sum(Status.ok(st) for st in status[i])
        loss = last_finite(results["loss"][i])
        err = last_finite(results["reconstruction_error"][i])
        norm = last_finite(results["component_norms"][i][..., 0])
        lines.append(
            f"{s:8.1e} {ok:>6}/{status.shape[1]:<5} {np.nanmean(loss):11.3e} ± {np.nanstd(loss):8.1e} "
            f"{np.nanmean(err):11.3e} ± {np.nanstd(err):8.1e} {np.nanmean(norm):10.3g}"
        )
    return "\n".join(lines)
