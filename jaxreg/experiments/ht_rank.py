"""Implicit hierarchical tensor rank minimization in tensor completion.

Razin, Maman, Cohen (ICML 2022), Section 4: gradient flow over a hierarchical tensor
factorization (HTF) from small initialization lowers the HT rank of the end tensor W,
the tuple of ranks of its matricizations [[W; nu]] (rows: the modes of nu, columns: the
rest) over the nodes nu of the mode tree. The rank of a matricization over modes that
are NOT a node of the tree is not constrained by the factorization, and need not be
lowered. Both are tracked by the effective rank (Roy and Vetterli 2007)

    erank(A) = exp(H(p)),  p_i = s_i(A) / sum_j s_j(A),  H(p) = -sum_i p_i log p_i,

over gradient-flow time; the ground truth's values are kept for reference.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _validation as V
from ..dynamics import Status, gradient_flow
from ..factorizations import HierarchicalTensorFactorization
from ..factorizations.trees import balanced_tree, check_widths, plan_tree
from ..metrics import effective_rank_from_singular_values, matricization_singular_values
from ..tasks import tensor_completion
from ._config import FlowRun, check_scalar_fields, defaults
from ._results import initial_setups, run_flow_chunks

NAME = "ht-rank"


@dataclasses.dataclass(frozen=True)
@defaults(num_saves=150, max_steps=200_000)
class Config(FlowRun):
    """HT-rank-``rank`` target of entry RMS 1 on the balanced binary mode tree
    ((0, 1), (2, 3)); ``non_tree``: mode sets that are not nodes of the tree (default
    {0, 2}: modes 0 and 2 lie in different subtrees, so their matricization's rank is
    not bounded by the HT rank). Paper preset: Razin et al. 2022's order-4 setting
    (dims 16, HT rank 5, widths 512, init 1e-2); the observation count, 16384 (a quarter
    of the entries), is our choice: the paper gives 2048 only for order 3."""

    shape: tuple[int, ...] = (8, 8, 8, 8)
    rank: int = 3
    num_observed: int = 1500
    widths: tuple[int, ...] = (16, 16)
    init_scale: float = 0.2
    non_tree: tuple[tuple[int, ...], ...] = ((0, 2),)
    t1: float = 3000.0
    eta: float = 1e-2
    top: int = 10

    TINY = dict(
        shape=(5, 5, 5, 5),
        rank=2,
        num_observed=400,
        widths=(8, 8),
        init_scale=0.25,
        t1=1000.0,
        num_saves=60,
        num_chunks=2,
    )
    PAPER = dict(
        shape=(16, 16, 16, 16),
        rank=5,
        num_observed=16384,
        widths=(512, 512),
        init_scale=1e-2,
        t1=1e5,
        num_saves=300,
        num_chunks=10,
        seeds=3,
    )

    def __post_init__(self):
        V.normalize_fields(self, shape=V.shape_tuple("shape", self.shape, min_order=3))
        plan = plan_tree(balanced_tree(len(self.shape)), len(self.shape))
        V.normalize_fields(self, widths=check_widths(self.widths, plan))
        check_scalar_fields(self)
        if isinstance(self.non_tree, (str, bytes)) or not isinstance(self.non_tree, Sequence):
            raise ValueError(f"non_tree must be a list of mode sets, got {self.non_tree!r}")
        sets = []
        for i, modes in enumerate(self.non_tree):
            modes = tuple(sorted(V.int_tuple(f"non_tree[{i}]", modes, minimum=0)))
            rest = tuple(m for m in range(len(self.shape)) if m not in modes)
            if modes[-1] >= len(self.shape):
                raise ValueError(f"non_tree sets must hold distinct modes of range({len(self.shape)}), got {modes}")
            if modes in plan.nodes or rest in plan.nodes or len(modes) == 1 or len(rest) <= 1:
                raise ValueError(f"non_tree set {modes} is (the complement of) a node of the tree {plan.tree}")
            sets.append(modes)
        V.normalize_fields(self, non_tree=tuple(sets))
        V.below_entries("num_observed", self.num_observed, self.shape)
        V.divisible("num_saves", self.num_saves, "num_chunks", self.num_chunks)
        V.fits_in_memory("seeds", self.seeds, 8 * self.seeds * (math.prod(self.shape) + self.num_observed))

    def matricizations(self) -> list[tuple[int, ...]]:
        """The tree's internal nodes but the root (bottom-up), then the non-tree sets."""
        plan = plan_tree(balanced_tree(len(self.shape)), len(self.shape))
        return list(plan.nodes[:-1]) + list(self.non_tree)


def _setup(config: Config, key):
    kp, km = jax.random.split(key)
    problem = tensor_completion(kp, config.shape, config.rank, config.num_observed, target="ht")
    model = HierarchicalTensorFactorization(km, config.shape, config.widths, init_scale=config.init_scale)
    return problem, model


def _spectra(w, sets, top):
    """(effective ranks (M,), top singular values (M, top)) of [[w; modes]] per set."""
    svs = [matricization_singular_values(w, modes) for modes in sets]
    erank = jnp.stack([effective_rank_from_singular_values(s) for s in svs])
    return erank, jnp.stack([s[:top] for s in svs])


@eqx.filter_jit
def _target_spectra(problems, sets: tuple, top: int):
    return eqx.filter_vmap(lambda p: _spectra(p.target, sets, top))(problems)


@eqx.filter_jit
def _chunk(problems, models, ts, t1, rtol, atol, sets: tuple, top: int, max_steps: int):
    """One chunk for every seed (vmapped): gradient flow over [0, t1] from ``models``,
    saving at ``ts``. Module-level, so that runs of one configuration in one process
    (e.g. an interrupted run and its resumption) share the compiled program."""

    def one(problem, model):
        def metrics(m):
            erank, sv = _spectra(m.materialize(), sets, top)
            return erank, sv, problem.test_loss(m)

        traj = gradient_flow(problem.loss, model, t1, ts=ts, rtol=rtol, atol=atol, max_steps=max_steps, metrics=metrics)
        return traj.model, (traj.loss, *traj.metrics), traj.status, traj.num_steps

    return eqx.filter_vmap(one)(problems, models)


def run(config: Config, *, out_dir=None, resume=False, progress=True) -> dict:
    problems, models = initial_setups(_setup, config)  # cached: a resumed run reuses them
    sets = tuple(config.matricizations())
    top = min(
        config.top,
        *(
            min(math.prod(config.shape[m] for m in s), math.prod(config.shape) // math.prod(config.shape[m] for m in s))
            for s in sets
        ),
    )
    target_erank, target_sv = _target_spectra(problems, sets, top)
    per_chunk = config.num_saves // config.num_chunks
    dt = config.t1 / config.num_chunks
    ts = jnp.linspace(dt / per_chunk, dt, per_chunk)

    def batched(problems, models):
        return _chunk(
            problems,
            models,
            ts,
            jnp.asarray(dt),
            jnp.asarray(config.rtol),
            jnp.asarray(config.atol),
            sets,
            top,
            config.max_steps,
        )

    def step(state, k):
        models, status = state
        models, (loss, erank, sv, test), st, steps = batched(problems, models)
        status = jnp.maximum(status, st)  # worst status so far (codes grow with severity)
        return (models, status), {
            "loss": loss,
            "test_loss": test,
            "effective_rank": erank,
            "singular_values": sv,
            "steps": steps,
        }

    models, status, steps, data, wall = run_flow_chunks(
        step, models, config, out_dir=out_dir, resume=resume, progress=progress, desc=NAME
    )
    ts = np.linspace(config.t1 / config.num_saves, config.t1, config.num_saves)
    n_tree = len(sets) - len(config.non_tree)
    return {
        "arrays": {
            "effective_rank": (("seed", "time", "matricization"), data["effective_rank"]),
            "singular_values": (("seed", "time", "matricization", "index"), data["singular_values"]),
            "target_effective_rank": (("seed", "matricization"), np.asarray(target_erank)),
            "target_singular_values": (("seed", "matricization", "index"), np.asarray(target_sv)),
            "loss": (("seed", "time"), data["loss"]),
            "test_loss": (("seed", "time"), data["test_loss"]),
            "solver_steps": (("seed",), steps),
        },
        "coords": {
            "seed": list(range(config.seeds)),
            "time": ts.tolist(),
            "matricization": [list(s) for s in sets],
            "in_tree": [i < n_tree for i in range(len(sets))],
            "index": list(range(1, top + 1)),
        },
        "status": Status.names(status),
        "wall_time": wall,
    }


def _label(modes, in_tree):
    return "{" + ",".join(map(str, modes)) + "}" + (" (tree)" if in_tree else " (non-tree)")


def plot(results, out_dir):
    import matplotlib.pyplot as plt

    from ..plotting import add_iteration_axis, save_figure

    c = results.coords
    ts = np.asarray(c["time"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    colors = plt.get_cmap("tab10")
    for j, (modes, in_tree) in enumerate(zip(c["matricization"], c["in_tree"])):
        ls = "-" if in_tree else "--"
        er = results["effective_rank"][:, :, j]
        axes[0].plot(ts, er.mean(0), color=colors(j), ls=ls, lw=1.6, label=_label(modes, in_tree))
        if er.shape[0] > 1:
            axes[0].fill_between(ts, er.min(0), er.max(0), color=colors(j), alpha=0.2)
        axes[0].axhline(results["target_effective_rank"][:, j].mean(), color=colors(j), ls=":", lw=1)
        sv = results["singular_values"][0, :, j]
        axes[1].plot(ts, sv, color=colors(j), ls=ls, lw=1)
    axes[0].set_ylabel("effective rank of [[W; modes]]")
    axes[0].set_title("tree matricizations get low rank (dotted: ground truth)", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("singular values of [[W; modes]] (seed 0)")
    axes[1].set_title("solid: tree nodes, dashed: non-tree", fontsize=9)
    axes[2].plot(ts, results["loss"].T, color="k", lw=1, alpha=0.7)
    axes[2].plot(ts, results["test_loss"].T, color="tab:red", lw=1, alpha=0.7)
    axes[2].set_yscale("log")
    axes[2].legend(["train loss", "test loss"], fontsize=8)
    for ax in axes:
        ax.set_xlabel("gradient flow time t")
        ax.grid(alpha=0.3)
        add_iteration_axis(ax, results.config["eta"]).xaxis.label.set_fontsize(7)
    fig.tight_layout()
    return save_figure(fig, out_dir, NAME)


def summary(results) -> str:
    c = results.coords
    names = [_label(m, t) for m, t in zip(c["matricization"], c["in_tree"])]
    lines = [
        f"{'seed':>4} {'status':>9} {'train loss':>10} {'test loss':>10}  effective rank at start -> end (ground truth)"
    ]
    er, tgt = results["effective_rank"], results["target_effective_rank"]
    for s in range(er.shape[0]):
        cells = "  ".join(
            f"{n}: {er[s, 0, j]:.2f} -> {er[s, -1, j]:.2f} ({tgt[s, j]:.2f})" for j, n in enumerate(names)
        )
        lines.append(
            f"{s:>4} {results.meta['status'][s]:>9} {results['loss'][s, -1]:10.2e} "
            f"{results['test_loss'][s, -1]:10.2e}  {cells}"
        )
    return "\n".join(lines)
