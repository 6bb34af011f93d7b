"""The panels, figure and summary of :mod:`jaxreg_lab.reproductions.incremental_learning`, read from
saved results (never recomputed)."""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxreg_lab.reproductions._transitions import COINCIDE, RULE_COINCIDE, RULE_STAGGER, crossing_times, top_components


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
    rules = panel_rules(results.config, results.coords)
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
        numbers = f"seed 0: ratios {', '.join(f'{r:.2f}' for r in ratios[np.isfinite(ratios)])}"
        held = "holds" if results["holds"][0, i] else "fails"
        if rules[i] == RULE_COINCIDE:  # the shallow control's claim: the rises coincide
            verdict = f"{numbers}; rises coincide (<= {COINCIDE:g}x): {held}"
        else:
            verdict = f"{numbers}; {int(results['count_above_level'][0, i])} reach 10% (rank {rank}): {held}"
        ax.set_title(f"{title}\n{verdict}", fontsize=8)
        ax.set_xlabel("gradient flow time t", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        top_axis = add_iteration_axis(ax, results.config["eta"])
        top_axis.xaxis.set_major_locator(MaxNLocator(4))  # fewer ticks: long labels no longer collide
        top_axis.tick_params(labelsize=7)
        top_axis.xaxis.label.set_fontsize(7)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "incremental learning from small initialization (seed 0; dotted: half of final value; "
        "ratios: consecutive half-times, claim >= 1.2; the depth-1 control's: within 1.1)\n"
        "top two rows: weighted targets (ours); bottom rows: Gaussian targets (the papers' draw), same inits",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, out_dir, name)


def panel_specs(config, coords):
    """[(id, title, model index, saved array, deep-CP depth index or None, rank)] per panel:
    on the weighted targets the deep matrix, its shallow control (depth ``control_depth``),
    CP, HTF at its first internal node and at the root, deep CP per depth (by its
    end-to-end component norms); then, with ``equal_scale``, the same on the Gaussian
    targets (deep CP at its last depth). ``coords`` needs ``htf_node`` and ``dcp_depth``;
    the model indices follow :meth:`Config.model_names`."""
    cfg = config if isinstance(config, dict) else dataclasses.asdict(config)
    nodes = coords["htf_node"]
    root = len(nodes) - 1
    depths = list(coords["dcp_depth"])
    control = 3 + len(depths)  # the control's model index; the Gaussian targets' models follow

    def family(prefix, label, models, dcp):  # the panels of one target type; a model index None: no such run
        mf, tf, htf, ctrl = models
        key = prefix.replace("-", "_")
        out = [
            (f"{prefix}matrix", f"{label}matrix depth {cfg['mf_depth']}: singular values", mf,
             f"{key}mf_singular_values", None, cfg["mf_rank"]),
            (f"{prefix}matrix-control", f"{label}matrix depth {cfg.get('control_depth', 1)} (control)", ctrl,
             f"{key}mf_control_singular_values", None, cfg["mf_rank"]),
            (f"{prefix}cp", f"{label}CP order {len(cfg['tf_shape'])}: component norms", tf,
             f"{key}tf_component_norms", None, cfg["tf_rank"]),
            (f"{prefix}htf-node", f"{label}HTF node {tuple(nodes[0])}: local component norms", htf,
             f"{key}htf_node0_norms", None, cfg["htf_rank"]),
            (f"{prefix}htf-root", f"{label}HTF root {tuple(nodes[root])}: local component norms", htf,
             f"{key}htf_node{root}_norms", None, cfg["htf_rank"]),
        ]  # fmt: skip
        return [spec for spec in out if spec[2] is not None] + dcp

    weighted_dcp = [
        (f"deep-cp-k{k}", f"deep CP k={k}: ||(x)_n A..A w_r^n||", 3 + j, "dcp_end_component_norms", j, cfg["dcp_rank"])
        for j, k in enumerate(depths)
    ]
    out = family("", "", (0, 1, 2, control), weighted_dcp)
    runs = equal_scale_runs(cfg.get("equal_scale", ()))
    index = {run: control + 1 + i for i, run in enumerate(runs)}
    gaussian_dcp = [
        (f"eq-deep-cp-k{depths[-1]}", f"Gaussian: deep CP k={depths[-1]}: ||(x)_n A..A w_r^n||", index["dcp"],
         "eq_dcp_end_component_norms", None, cfg["dcp_rank"])
    ] if "dcp" in index else []  # fmt: skip
    models = tuple(index.get(run) for run in ("mf", "tf", "htf", "control"))
    return out + family("eq-", "Gaussian: ", models, gaussian_dcp)


def panel_rules(config, coords) -> list[str]:
    """The rule of each panel of :func:`panel_specs`, decided here once: a shallow control
    (its id ends in ``control``) passes when its rises coincide (``RULE_COINCIDE``), every
    other panel when its rises come one at a time (``RULE_STAGGER``)."""
    return [RULE_COINCIDE if spec[0].endswith("control") else RULE_STAGGER for spec in panel_specs(config, coords)]


def equal_scale_runs(families) -> list[str]:
    """The Gaussian-target runs, in model order: the ``families`` (of ``mf``, ``tf``,
    ``htf``, ``dcp``, in that order), then ``control`` (the shallow matrix model) with ``mf``."""
    runs = [f for f in ("mf", "tf", "htf", "dcp") if f in families]
    return runs + ["control"] * ("mf" in families)


def panel_index(config, coords, panel_id: str) -> int | None:
    """The position of the panel ``panel_id`` in :func:`panel_specs` (None: no such panel)."""
    ids = [spec[0] for spec in panel_specs(config, coords)]
    return ids.index(panel_id) if panel_id in ids else None


def panels(config, coords, get, reached):
    """[(title, model index, flow times (seed, save), norms (seed, save, R), rank, reached
    stop loss (seed,))] per panel of :func:`panel_specs`; ``get(name)`` returns a saved
    array."""
    t = get("flow_time")
    out = []
    for _, title, i, key, j, rank in panel_specs(config, coords):
        norms = get(key) if j is None else get(key)[:, :, j]
        out.append((title, i, t[:, i], norms, rank, reached[i]))
    return out


def summary(results) -> str:
    """Per panel and seed: status, stop time T, half-times, their ratios, the count of
    components reaching 10% and the saved verdict ``holds`` of the panel's rule
    (:func:`panel_rules`; a control: whether its rises coincide); then each panel's verdict."""
    lines = [f"{'panel':<52} {'seed':>4} {'status':>9} {'T':>9}  half-times | ratios | count | holds"]
    holds = np.asarray(results["holds"], bool)
    for p, title in enumerate(results.coords["panel"]):
        t_end = results["flow_time"][:, results["panel_model"][p], -1]
        for s in results.coords["seed"]:
            half, ratios = (results[k][s, p] for k in ("half_time", "half_time_ratio"))
            lines.append(
                f"{title:<52} {s:>4} {results.meta['status'][s]:>9} {t_end[s]:9.4g}  "
                f"{_numbers(half, '8.4g')} | {_numbers(ratios, '5.2f')} | {results['count_above_level'][s, p]} | "
                f"{bool(holds[s, p])}"
            )
    verdicts = [
        f"{t}: {'PASS' if 2 * holds[:, p].sum() > len(holds) else 'FAIL'}"
        for p, t in enumerate(results.coords["panel"])
    ]
    lines.append(
        f"claim (ratios >= 1.2, count == rank, stop loss reached; a control: ratios within {COINCIDE:g}x) in a "
        "majority of seeds: " + "; ".join(verdicts)
    )
    return "\n".join(lines)


def _numbers(values, fmt: str) -> str:
    return " ".join(f"{v:{fmt}}" for v in values if np.isfinite(v))


def saved_panels(results) -> list:
    """:func:`panels` of loaded results."""
    return panels(results.config, results.coords, results.__getitem__, results["reached_stop_loss"])
