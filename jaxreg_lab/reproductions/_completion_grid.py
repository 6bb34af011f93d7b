"""The grid of deep matrix completion and sensing against depth and init scale (Arora,
Cohen, Hu, Luo, NeurIPS 2019), shared by ``matrix-completion-depth`` and ``matrix-sensing``:
gradient flow to ``stop_at_loss`` for every (count of observations, depth, init scale)
cell and seed, beside the nuclear-norm minimization baseline per count and seed."""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import seed_keys
from jaxreg import validation as V
from jaxreg.dynamics import Status, gradient_flow
from jaxreg.factorizations import MatrixFactorization
from jaxreg.metrics import effective_rank, nuclear_norm
from jaxreg_lab.contract import Final, Reproduction, Setup
from jaxreg_lab.reproductions._config import check_scalar_fields
from jaxreg_lab.reproductions._results import capped_at_t1, cell_status, per_seed, per_seed_and_scale, solver_options

# the arrays of every (count, depth, init scale, seed) cell, in the order ``_flow`` returns them
CELL_OUTPUTS = ("error", "nuclear_norm", "effective_rank", "status", "time", "steps")
BASELINE_OUTPUTS = ("baseline_error", "baseline_nuclear_norm", "baseline_effective_rank")


def check_grid_config(config, count_field: str) -> None:
    """Validate (and normalize to tuples) the fields that :class:`CompletionGrid` reads; the
    counts of observations are the tuple field ``count_field``."""
    counts = getattr(config, count_field)
    V.normalize_fields(
        config,
        shape=V.shape_tuple("shape", config.shape, order=2),
        **{count_field: V.int_tuple(count_field, counts, minimum=1, distinct=False)},
        depths=V.int_tuple("depths", config.depths, minimum=1, distinct=False),
        init_scales=V.float_tuple("init_scales", config.init_scales, positive=True, distinct=False),
    )
    check_scalar_fields(config)
    if config.rank > min(config.shape):
        raise ValueError(f"rank must be at most min(shape) = {min(config.shape)}, got {config.rank}")
    V.boolean("baseline", config.baseline)
    runs = config.seeds * len(getattr(config, count_field)) * len(config.depths) * len(config.init_scales)
    V.fits_in_memory("seeds", config.seeds, 8 * runs * config.shape[0] * config.shape[1])


@dataclasses.dataclass(frozen=True, kw_only=True)
class GridRun:
    """A field group (see :mod:`jaxreg_lab.reproductions._config`): the fields
    :class:`CompletionGrid` reads besides the grid itself: each flow runs until the
    training loss falls to ``stop_at_loss`` (status converged) or the time reaches the cap
    ``t1`` (status max_steps); ``baseline``: also
    solve the nuclear-norm minimization with tolerance ``baseline_delta`` (SCS's ``eps``:
    ``baseline_eps``). The grid: every depth in ``depths`` and init scale in ``init_scales``."""

    depths: tuple[int, ...] = (2, 3, 4)
    init_scales: tuple[float, ...] = (1e-3,)
    stop_at_loss: float = 1e-6
    t1: float = 1e7
    baseline: bool = True
    baseline_delta: float = 1e-3
    baseline_eps: float = 1e-6


def nuclear_norm_baseline(problem, delta: float, eps: float = 1e-6) -> np.ndarray:
    """argmin ||X||_* s.t. |X_ij - y_ij| <= delta on the observed entries (completion), or
    |<A_i, X> - y_i| <= delta for every measurement (sensing); cvxpy with SCS."""
    try:
        import cvxpy as cp
    except ImportError as e:  # pragma: no cover - depends on the extra
        raise RuntimeError("the nuclear-norm baseline needs cvxpy: pip install 'jaxreg[convex]'") from e
    y = np.asarray(problem.train.values)
    x = cp.Variable(problem.shape)
    if problem.kind == "completion":
        idx = np.asarray(problem.train.indices)
        fitted = x[idx[:, 0], idx[:, 1]]
    else:  # <A_i, X> = vec(A_i) . vec(X), both vectorized row-major
        a = np.asarray(problem.train.operators).reshape(len(y), -1)
        fitted = a @ cp.vec(x, order="C")
    cp.Problem(cp.Minimize(cp.normNuc(x)), [cp.abs(fitted - y) <= delta]).solve(solver=cp.SCS, eps=eps)
    return np.asarray(x.value)


def _flow(config, problem, model):
    """One flow from ``model`` to ``config.stop_at_loss`` (capped at ``t1``): the values of
    :data:`CELL_OUTPUTS`."""
    tr = gradient_flow(problem.loss, model, config.t1, stop_at_loss=config.stop_at_loss, **solver_options(config))
    w = tr.model.materialize()
    return (
        problem.squared_reconstruction_error(tr.model),
        nuclear_norm(w),
        effective_rank(w),
        capped_at_t1(tr.status),  # t1 without reaching stop_at_loss: max_steps
        tr.ts[-1],
        tr.num_steps,
    )


class CompletionGrid(Reproduction):
    """One run per seed: its problems, one per count (their observations differ in
    number, hence in shape), and its initial models, one per depth stacked over the init
    scales, are the inputs; nothing is carried. Every cell changes an array shape (the
    count the problem's, the depth the model's), so no traced chunk index can pick one:
    one chunk runs the seed's whole grid, each cell's init scales one after another.
    The nuclear-norm baseline (cvxpy, host side) is solved in :meth:`assemble`.

    A subclass sets ``name``, ``config``, ``count_dim`` (the config's tuple of counts,
    also the dimension's name) and :meth:`problem`."""

    count_dim: ClassVar[str]

    @abc.abstractmethod
    def problem(self, config, key, count: int):
        """One seed's problem with ``count`` observations, drawn from ``key``."""

    def outputs(self, config) -> dict:
        out = {k: (self.count_dim, "depth", "init_scale", "seed") for k in CELL_OUTPUTS}
        if config.baseline:
            out.update({k: (self.count_dim, "seed") for k in BASELINE_OUTPUTS})
        return out

    def setup(self, config) -> Setup:
        keys = seed_keys(config.seed, config.seeds)
        counts = getattr(config, self.count_dim)
        # every seed's problem per count, shared by every depth, and every (seed, init
        # scale)'s initial model per depth, shared by every count; drawn op by op (see per_seed)
        problems = tuple(per_seed(lambda k, n=n: self.problem(config, k, n), keys) for n in counts)
        models = tuple(
            per_seed_and_scale(
                lambda key, s, d=d: MatrixFactorization(jax.random.fold_in(key, 1), config.shape, d, init_scale=s),
                keys,
                config.init_scales,
            )
            for d in config.depths
        )
        coords = {
            self.count_dim: list(counts),
            "depth": list(config.depths),
            "init_scale": list(config.init_scales),
            "seed": list(range(config.seeds)),
        }
        return Setup((problems, models), jnp.zeros(config.seeds), 1, (config.seeds,), coords)

    def chunk(self, config, inputs, state, k):
        problems, models = inputs
        # one flow after another over the init scales: a vmapped solve would run every init
        # scale for as many steps as the slowest one (init 1e-6), a sequential one runs each
        # for its own
        cells = [[jax.lax.map(lambda m, p=p: _flow(config, p, m), ms) for ms in models] for p in problems]
        # each (count, depth, init_scale); the run's status is its worst cell's
        out = {
            name: jnp.stack([jnp.stack([c[i] for c in row]) for row in cells]) for i, name in enumerate(CELL_OUTPUTS)
        }
        return state, jnp.max(out["status"]), out

    def assemble(self, config, setup: Setup, final: Final) -> dict:
        arrays = {k: np.moveaxis(final.data[k], 0, -1) for k in CELL_OUTPUTS}  # seed last
        if config.baseline:
            problems, _ = setup.inputs
            per_count = [_baseline(config, p) for p in problems]
            arrays.update({k: np.stack([b[i] for b in per_count]) for i, k in enumerate(BASELINE_OUTPUTS)})
        return arrays

    def extra(self, config, setup: Setup, arrays) -> dict:
        return {"findings": findings(arrays, setup.coords, self.count_dim)} if config.baseline else {}


def _baseline(config, stacked) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nuclear-norm solution's error, nuclear norm and effective rank for every seed's
    problem of ``stacked`` (one count)."""
    problems = [jax.tree_util.tree_map(lambda x: x[i], stacked) for i in range(config.seeds)]
    base = [nuclear_norm_baseline(p, config.baseline_delta, config.baseline_eps) for p in problems]
    tgt = [np.asarray(p.target) for p in problems]
    return (
        np.array([np.sum((b - t) ** 2) / np.sum(t**2) for b, t in zip(base, tgt)]),
        np.array([np.linalg.norm(b, "nuc") for b in base]),
        np.array([float(effective_rank(jnp.asarray(b))) for b in base]),
    )


def findings(arrays, coords, count_dim: str) -> dict:
    """Per (count, init scale) cell, from the errors ``e`` (seed means unless said):
    ``depth_D_beats_nuclear_norm`` (D = the first depth): e_D below the nuclear-norm
    solution's error in every seed; ``nuclear_over_depth_D`` = e_nuc / e_D (above 1: depth
    D is better); ``depth_D_over_depth_d`` = e_D / e_d for every deeper d (the factor by
    which depth d beats depth D); ``runs_reached_stop_loss`` and ``runs``, over every depth
    and seed of the cell.

    Arguments:
        arrays: name -> array, ``error`` and ``status`` (count, depth, init_scale, seed),
            ``baseline_error`` (count, seed).
        coords: the coordinates of ``count_dim``, ``depth``, ``init_scale`` and ``seed``.
        count_dim: the name of the count dimension.

    Returns:
        ``{"cells": {count: {init_scale: {...}}}}`` with string keys (``f"{x:g}"``).
    """
    err, base = np.asarray(arrays["error"]), np.asarray(arrays["baseline_error"])
    reached = (np.asarray(arrays["status"]) == Status.CONVERGED).sum(axis=(1, 3))
    d0 = coords["depth"][0]
    cells = {}
    for i, n in enumerate(coords[count_dim]):
        row = cells[str(n)] = {}
        for j, s in enumerate(coords["init_scale"]):
            e0 = err[i, 0, j]
            cell = {
                f"depth_{d0}_beats_nuclear_norm": bool(np.all(e0 < base[i])),
                f"nuclear_over_depth_{d0}": float(base[i].mean() / e0.mean()),
            }
            for d_i, d in enumerate(coords["depth"][1:], 1):
                cell[f"depth_{d0}_over_depth_{d}"] = float(e0.mean() / err[i, d_i, j].mean())
            cell["runs_reached_stop_loss"] = int(reached[i, j])
            cell["runs"] = int(err.shape[1] * err.shape[3])
            row[f"{s:g}"] = cell
    return {"cells": cells}


def plot_grid(results, out_dir, count_dim: str, count_label: str, name: str):
    """Error, nuclear norm and effective rank against init scale, one row per count."""
    import matplotlib.pyplot as plt

    from jaxreg_lab.plotting import save_figure

    c = results.coords
    scales = np.asarray(c["init_scale"], float)
    names = [
        ("error", "reconstruction error (mean sq.)"),
        ("nuclear_norm", "nuclear norm"),
        ("effective_rank", "effective rank"),
    ]
    fig, axes = plt.subplots(len(c[count_dim]), 3, figsize=(13, 3.6 * len(c[count_dim])), squeeze=False)
    for i, n in enumerate(c[count_dim]):
        for j, (key, label) in enumerate(names):
            ax = axes[i, j]
            for d_i, d in enumerate(c["depth"]):
                v = results[key][i, d_i]
                ax.errorbar(scales, v.mean(-1), yerr=v.std(-1), marker="o", capsize=3, label=f"depth {d}")
            if "baseline_" + key in results.arrays:
                b = results["baseline_" + key][i]
                ax.axhline(b.mean(), color="k", ls="--", label="nuclear norm min.")
            ax.set_xscale("log")
            if key == "error":
                ax.set_yscale("log")
            ax.set_xlabel("init scale")
            ax.set_title(f"{label}, {n} {count_label}", fontsize=9)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_dir, name)


def summary_grid(results, count_dim: str) -> str:
    """One line per (count, depth, init scale) cell: error, nuclear norm and effective
    rank (seed means), ``vs first`` = the first depth's mean error over this depth's, the
    cell's worst status and how many seeds reached ``stop_at_loss``; with the baseline,
    ``beats nuc.`` says whether the cell's error is below the nuclear-norm solution's in
    every seed."""
    c = results.coords
    base = "baseline_error" in results.arrays
    first = f"vs d{c['depth'][0]}"
    lines = [
        f"{'count':>6} {'depth':>8} {'init':>8} {'error (mean +- std)':>24} {'nuclear':>9} {'eff. rank':>9}"
        + (f" {'beats nuc.':>10}" if base else "")
        + f" {first:>8} {'status':>10} {'reached':>7}"
    ]
    for i, n in enumerate(c[count_dim]):
        for d_i, d in enumerate(c["depth"]):
            for s_i, s in enumerate(c["init_scale"]):
                e = results["error"][i, d_i, s_i]
                beats = f" {'yes' if np.all(e < results['baseline_error'][i]) else 'no':>10}" if base else ""
                worst, reached = cell_status(results["status"][i, d_i, s_i])
                lines.append(
                    f"{n:>6} {d:>8} {s:>8.0e} {e.mean():>12.3e} +- {e.std():<9.2e} "
                    f"{results['nuclear_norm'][i, d_i, s_i].mean():>9.1f} "
                    f"{results['effective_rank'][i, d_i, s_i].mean():>9.2f}"
                    + beats
                    + f" {results['error'][i, 0, s_i].mean() / e.mean():>7.1f}x {worst:>10} {reached:>3}/{len(e)}"
                )
        if base:
            e = results["baseline_error"][i]
            lines.append(
                f"{n:>6} {'nuc.min':>8} {'-':>8} {e.mean():>12.3e} +- {e.std():<9.2e} "
                f"{results['baseline_nuclear_norm'][i].mean():>9.1f} "
                f"{results['baseline_effective_rank'][i].mean():>9.2f}"
            )
    return "\n".join(lines)
