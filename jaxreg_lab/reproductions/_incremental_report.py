"""The panels, figure and summary of :mod:`jaxreg_lab.reproductions.incremental_learning`, read from
saved results (never recomputed)."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxreg_lab.reproductions._transitions import crossing_times, top_components


def draw(results, out_dir, name: str) -> list:
    """One panel per model (and HTF node): seed 0's leading components over flow time,
    dotted lines at their half-times, the claim's numbers of that seed in the title.

    Arguments:
        results: the loaded results (the :func:`panels`; (``half_time_ratio``, ``count_above_level``, ``holds``
            per seed and panel; ``eta`` in the config).
        out_dir: where the PNG and PDF go.
        name: the figure's file name.

    Returns:
        The written paths.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from jaxreg_lab.plotting import add_iteration_axis, plot_curves, save_figure

    panels = saved_panels(results)
    ncols = 4
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.3 * ncols, 3.9 * nrows), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    for i, (title, _, ts, norms, rank, _) in enumerate(panels):
        ax = axes.ravel()[i]
        top = top_components(norms[0], rank + 2)
        plot_curves(ax, ts[0], norms[0][:, top], label_prefix="#", max_lines=len(top))
        for t in crossing_times(ts[0], norms[0], rank):
            ax.axvline(t, color="0.6", lw=0.6, ls=":")
        ratios = results["half_time_ratio"][0, i]
        verdict = "holds" if results["holds"][0, i] else "fails"
        ax.set_title(
            f"{title}\nseed 0: ratios {', '.join(f'{r:.2f}' for r in ratios[np.isfinite(ratios)])}; "
            f"{int(results['count_above_level'][0, i])} reach 10% (rank {rank}): {verdict}",
            fontsize=8,
        )
        ax.set_xlabel("gradient flow time t", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        top_axis = add_iteration_axis(ax, results.config["eta"])
        top_axis.xaxis.set_major_locator(MaxNLocator(4))  # fewer ticks: long labels no longer collide
        top_axis.tick_params(labelsize=7)
        top_axis.xaxis.label.set_fontsize(7)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "incremental learning from small initialization (seed 0; dotted: half of final value; "
        "ratios: consecutive half-times, claim >= 1.2)",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, out_dir, name)


def panel_specs(config, coords):
    """[(title, model index, saved array, deep-CP depth index or None, rank)] per panel:
    HTF at its first internal node and at the root, deep CP by its end-to-end component
    norms (the target's weights); ``coords`` needs ``htf_node`` and ``dcp_depth``."""
    cfg = config if isinstance(config, dict) else dataclasses.asdict(config)
    nodes = coords["htf_node"]
    root = len(nodes) - 1
    out = [
        (f"matrix depth {cfg['mf_depth']}: singular values", 0, "mf_singular_values", None, cfg["mf_rank"]),
        (f"CP order {len(cfg['tf_shape'])}: component norms", 1, "tf_component_norms", None, cfg["tf_rank"]),
        (f"HTF node {tuple(nodes[0])}: local component norms", 2, "htf_node0_norms", None, cfg["htf_rank"]),
        (f"HTF root {tuple(nodes[root])}: local component norms", 2, f"htf_node{root}_norms", None, cfg["htf_rank"]),
    ]
    for j, k in enumerate(coords["dcp_depth"]):
        out.append((f"deep CP k={k}: ||(x)_n A..A w_r^n||", 3 + j, "dcp_end_component_norms", j, cfg["dcp_rank"]))
    return out


def panels(config, coords, get, reached):
    """[(title, model index, flow times (seed, save), norms (seed, save, R), rank, reached
    stop loss (seed,))] per panel of :func:`panel_specs`; ``get(name)`` returns a saved
    array."""
    t = get("flow_time")
    out = []
    for title, i, key, j, rank in panel_specs(config, coords):
        norms = get(key) if j is None else get(key)[:, :, j]
        out.append((title, i, t[:, i], norms, rank, reached[i]))
    return out


def summary(results) -> str:
    """Per panel and seed: status, stop time T, half-times, their ratios, the count of
    components reaching 10% and whether the claim holds; then each panel's verdict."""
    lines = [f"{'panel':<46} {'seed':>4} {'status':>9} {'T':>9}  half-times | ratios | count | holds"]
    holds = results["holds"]
    for p, title in enumerate(results.coords["panel"]):
        t_end = results["flow_time"][:, results["panel_model"][p], -1]
        for s in results.coords["seed"]:
            half, ratios = (results[k][s, p] for k in ("half_time", "half_time_ratio"))
            lines.append(
                f"{title:<46} {s:>4} {results.meta['status'][s]:>9} {t_end[s]:9.4g}  "
                f"{_numbers(half, '8.4g')} | {_numbers(ratios, '5.2f')} | {results['count_above_level'][s, p]} | "
                f"{bool(holds[s, p])}"
            )
    verdicts = [
        f"{t}: {'PASS' if 2 * holds[:, p].sum() > len(holds) else 'FAIL'}"
        for p, t in enumerate(results.coords["panel"])
    ]
    lines.append(
        "claim (ratios >= 1.2, count == rank, stop loss reached) in a majority of seeds: " + "; ".join(verdicts)
    )
    return "\n".join(lines)


def _numbers(values, fmt: str) -> str:
    return " ".join(f"{v:{fmt}}" for v in values if np.isfinite(v))


def saved_panels(results) -> list:
    """:func:`panels` of loaded results."""
    return panels(results.config, results.coords, results.__getitem__, results["reached_stop_loss"])
