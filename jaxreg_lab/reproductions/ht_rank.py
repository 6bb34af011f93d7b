"""Implicit hierarchical tensor rank minimization in tensor completion.

Razin, Maman, Cohen (ICML 2022), Section 4: gradient flow over a hierarchical tensor factorization (HTF) from small
initialization lowers the HT rank of the end tensor W, the tuple of ranks of its matricizations [[W; nu]] (rows: the
modes of nu, columns: the rest) over the nodes nu of the mode tree. The rank of a matricization over modes that are
NOT a node of the tree is not constrained by the factorization, and need not be lowered. Both are tracked by the
effective rank (Roy and Vetterli 2007)

    erank(A) = exp(H(p)),  p_i = s_i(A) / sum_j s_j(A),  H(p) = -sum_i p_i log p_i,

over gradient-flow time; the ground truth's values are kept for reference.

The regime is under-determined: the widths let the model reach every rank of the tree's matricizations, so the
observed entries are well below the model's degrees of freedom
(:func:`~jaxreg.factorizations.trees.ht_degrees_of_freedom`), and fitting them does not force low rank. The control
is the same flow from a large initialization (the same Gaussian draw, rescaled): it fits the observations too, while
its tree matricizations keep a high effective rank. The gap between the two is the implicit regularization of the
small initialization.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import validation as V
from jaxreg.dynamics import gradient_flow
from jaxreg.factorizations import HierarchicalTensorFactorization
from jaxreg.factorizations.trees import TreePlan, balanced_tree, check_widths, ht_degrees_of_freedom, plan_tree
from jaxreg.metrics import effective_rank_from_singular_values, matricization_singular_values
from jaxreg.tasks import tensor_completion
from jaxreg_lab.claims import Claim, select
from jaxreg_lab.contract import Final, Reproduction, Setup
from jaxreg_lab.reproductions._config import FlowTolerances, Saves, Seeds, check_scalar_fields
from jaxreg_lab.reproductions._results import initial_setups

NAME = "ht-rank"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(Seeds, FlowTolerances, Saves):
    """HT-rank-``rank`` target of entry RMS 1 on the balanced binary mode tree ((0, 1), (2, 3)), completed from
    ``num_observed`` entries by an HTF of ``widths``, from ``init_scale`` and, as the control, from
    ``large_init_scale`` (every parameter N(0, scale^2); the same draw rescaled). ``non_tree``: mode sets that are
    not nodes of the tree (default {0, 2}: modes 0 and 2 lie in different subtrees, so their matricization's rank is
    not bounded by the HT rank). The default widths (64 = 8 x 8) let the model reach full rank at every tree
    matricization: its degrees of freedom are all 4096 entries, against 1000 observations. The control's init puts
    W(0)'s entry RMS near the target's 1 (0.67-0.87 at 0.4; every preset's large init does the same; at 0.5, entry
    RMS 4, one seed of three fell to a low rank as well). The small init, 0.1 against the paper's 1e-2, is as small as
    the small preset's time allows: W(0)'s entry RMS falls like init^7 (6e-3 at 0.2, 4.7e-5 at 0.1; the paper's 1e-2 with
    widths 512 on 16^4 gives 1e-10) and the time to leave the plateau grows like init^-5 (measured on seed 0: about 200
    at 0.2, 6000 at 0.1, 35000 at 0.07, where one seed alone took 466 s on a loaded machine). At ``t1`` = 15000
    seeds 0 and 2 fit below the paper's stopping loss; seed 1's small init sits on a second plateau near 6e-4 (falling
    about 7% per 1000 time units, so about 3x the horizon would be needed). Paper preset: Razin et al. 2022's order-4 setting (dims
    16, HT rank 5, widths 512, init 1e-2); the observation count, 16384 (a quarter of the entries), and the
    control's init are our choice: the paper gives 2048 observations only for order 3, and has no large-init
    control."""

    num_saves: int = 150
    max_steps: int = 200_000
    seeds: int = 3

    # tiny: a 5^4 problem (problem fields first, then the run's)
    TINY = dict(shape=(5, 5, 5, 5), rank=2, num_observed=150, widths=(25, 25), init_scale=0.25, large_init_scale=0.5)
    TINY.update(t1=250.0, num_saves=20, num_chunks=2, seeds=1, top=10)
    PAPER = dict(
        shape=(16, 16, 16, 16),
        rank=5,
        num_observed=16384,
        widths=(512, 512),
        init_scale=1e-2,
        large_init_scale=0.25,
        t1=1e5,
        num_saves=300,
        num_chunks=10,
        seeds=3,
    )

    shape: tuple[int, ...] = (8, 8, 8, 8)
    rank: int = 3
    num_observed: int = 1000
    widths: tuple[int, ...] = (64, 64)
    init_scale: float = 0.1
    large_init_scale: float = 0.4
    non_tree: tuple[tuple[int, ...], ...] = ((0, 2),)
    t1: float = 15000.0
    eta: float = 1e-2
    top: int = 20

    def __post_init__(self):
        check_scalar_fields(self)
        V.normalize_fields(self, shape=V.shape_tuple("shape", self.shape, min_order=3))
        plan = plan_tree(balanced_tree(len(self.shape)), len(self.shape))
        V.normalize_fields(self, widths=check_widths(self.widths, plan))
        if self.large_init_scale <= self.init_scale:
            raise ValueError(
                f"large_init_scale must exceed init_scale ({self.init_scale}), got {self.large_init_scale}"
            )
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
            if modes in sets or rest in sets:
                raise ValueError(
                    f"non_tree set {modes} is listed twice (a set and its complement are one matricization)"
                )
            sets.append(modes)
        V.normalize_fields(self, non_tree=tuple(sets))
        V.below_entries("num_observed", self.num_observed, self.shape)
        V.divisible("num_saves", self.num_saves, "num_chunks", self.num_chunks)
        V.fits_in_memory("seeds", self.seeds, 16 * self.seeds * (math.prod(self.shape) + self.num_observed))

    def plan(self) -> TreePlan:
        """The validated mode tree."""
        return plan_tree(balanced_tree(len(self.shape)), len(self.shape))

    def matricizations(self) -> list[tuple[int, ...]]:
        """The tree's internal nodes but the root (bottom-up), one of each complementary pair ([[W; nu]] and
        [[W; complement]] are transposes, with the same singular values), then the non-tree sets."""
        order = len(self.shape)
        tree = []
        for nu in self.plan().nodes[:-1]:
            if tuple(m for m in range(order) if m not in nu) not in tree:
                tree.append(nu)
        return tree + list(self.non_tree)


def _setup(config: Config, key):
    """The problem and the two models (small init, large init: one draw, rescaled)."""
    kp, km = jax.random.split(key)
    problem = tensor_completion(kp, config.shape, config.rank, config.num_observed, target="ht")
    models = [
        HierarchicalTensorFactorization(km, config.shape, config.widths, init_scale=s)
        for s in (config.init_scale, config.large_init_scale)
    ]
    return problem, jax.tree.map(lambda *a: jnp.stack(a), *models)


def _spectra(w, sets, top):
    """(effective ranks (M,), top singular values (M, top)) of [[w; modes]] per set."""
    svs = [matricization_singular_values(w, modes) for modes in sets]
    erank = jnp.stack([effective_rank_from_singular_values(s) for s in svs])
    return erank, jnp.stack([s[:top] for s in svs])


@eqx.filter_jit
def _initial(problems, models, sets: tuple, top: int):
    """Per (init, seed): the effective ranks, singular values, loss, test loss and entry
    RMS of W(0); per seed: the target's effective ranks and singular values."""

    def one(problem, model):
        w = model.materialize()
        return (*_spectra(w, sets, top), problem.loss(model), problem.test_loss(model), jnp.sqrt(jnp.mean(w**2)))

    per_init = eqx.filter_vmap(eqx.filter_vmap(one), in_axes=(None, 0))(problems, models)
    return per_init, eqx.filter_vmap(lambda p: _spectra(p.target, sets, top))(problems)


def _top(config: Config, sets) -> int:
    total = math.prod(config.shape)
    return min(config.top, *(min(n, total // n) for n in (math.prod(config.shape[m] for m in s) for s in sets)))


def _label(modes, in_tree):
    return "{" + ",".join(map(str, modes)) + "}" + (" (tree)" if in_tree else " (non-tree)")


INIT_COLORS = ("tab:blue", "tab:orange")


def plot(results, out_dir):
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from jaxreg_lab.plotting import add_iteration_axis, save_figure

    c = results.coords
    ts = np.asarray(c["time"])
    inits = [f"init {s:g}" for s in c["init_scale"]]
    styles = ["-" if t else "--" for t in c["in_tree"]]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    er, er0 = results["effective_rank"], results["initial_effective_rank"]
    for i, color in enumerate(INIT_COLORS):
        for j, ls in enumerate(styles):
            curve = np.concatenate([er0[i, :, j, None], er[i, :, :, j]], axis=1)  # (seed, time 0..)
            t = np.concatenate([[0.0], ts])
            axes[0].plot(t, np.median(curve, 0), color=color, ls=ls, lw=1.8)
            if curve.shape[0] > 1:
                axes[0].fill_between(t, curve.min(0), curve.max(0), color=color, alpha=0.15, lw=0)
    for j, ls in enumerate(styles):
        axes[0].axhline(np.median(results["target_effective_rank"][:, j]), color="k", ls=ls, lw=0.9, alpha=0.6)
    axes[0].set_ylabel("effective rank of [[W; modes]]")
    axes[0].set_title("effective rank over time (median, band: seeds; grey: ground truth)", fontsize=9)
    keys = [Line2D([], [], color=col, lw=2, label=name) for col, name in zip(INIT_COLORS, inits)]
    keys += [
        Line2D([], [], color="k", ls=ls, label=_label(m, t))
        for m, t, ls in zip(c["matricization"], c["in_tree"], styles)
    ]
    axes[0].legend(handles=keys, fontsize=8)
    axes[0].set_ylim(bottom=0)

    # final spectra of seed 0: index vs singular value, clipped well above round-off
    sv, target = results["singular_values"][:, 0, -1], results["target_singular_values"][0]
    floor = 1e-5 * max(float(np.nanmax(sv)), float(np.nanmax(target)))
    sv, target = (np.where(x >= floor, x, np.nan) for x in (sv, target))  # round-off: not drawn
    idx = np.asarray(c["index"])
    for j, ls in enumerate(styles):
        for i, color in enumerate(INIT_COLORS):
            axes[1].plot(idx, sv[i, j], color=color, ls=ls, marker=".", lw=1.4)
        axes[1].plot(idx, target[j], color="k", ls=ls, marker="x", lw=0.9, alpha=0.6)
    axes[1].set_yscale("log")
    axes[1].set_ylim(floor, floor * 2e5)
    axes[1].set_xlabel("index i")
    axes[1].set_ylabel("s_i([[W; modes]]) at the end (seed 0)")
    axes[1].set_title("end spectra (x: ground truth; values below 1e-5 x the largest clipped)", fontsize=9)
    axes[1].legend(handles=keys + [Line2D([], [], color="k", marker="x", alpha=0.6, label="ground truth")], fontsize=8)
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))

    for i, color in enumerate(INIT_COLORS):
        for key, ls in (("loss", "-"), ("test_loss", "--")):
            init_key = "initial_loss" if key == "loss" else "initial_test_loss"
            curve = np.concatenate([results[init_key][i, :, None], results[key][i]], axis=1)
            axes[2].plot(np.concatenate([[0.0], ts]), np.median(curve, 0), color=color, ls=ls, lw=1.6)
    axes[2].set_yscale("log")
    axes[2].set_ylabel("mean squared error (median over seeds)")
    axes[2].set_title("train (observed entries) and test (the rest) error", fontsize=9)
    axes[2].legend(
        handles=keys[:2] + [Line2D([], [], color="k", label="train"), Line2D([], [], color="k", ls="--", label="test")],
        fontsize=8,
    )
    for ax in (axes[0], axes[2]):
        ax.set_xlabel("gradient flow time t")
        add_iteration_axis(ax, results.config["eta"]).xaxis.label.set_fontsize(7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out_dir, NAME)


def summary(results) -> str:
    c, m = results.coords, results.meta
    names = [_label(s, t) for s, t in zip(c["matricization"], c["in_tree"])]
    lines = [
        f"{m['num_observed']} observations, {m['degrees_of_freedom']} model degrees of freedom "
        f"({m['observed_per_degree_of_freedom']:.2f} per degree of freedom), {m['num_parameters']} parameters",
        f"{'init':>6} {'seed':>4} {'status':>9} {'train loss':>16} {'test loss':>10}  "
        "effective rank at start -> end (ground truth)",
    ]
    er, er0, tgt = results["effective_rank"], results["initial_effective_rank"], results["target_effective_rank"]
    seeds = len(c["seed"])
    for i, scale in enumerate(c["init_scale"]):
        for s in range(seeds):
            cells = "  ".join(
                f"{n}: {er0[i, s, j]:.2f} -> {er[i, s, -1, j]:.2f} ({tgt[s, j]:.2f})" for j, n in enumerate(names)
            )
            lines.append(
                f"{scale:>6g} {s:>4} {m['status'][i * seeds + s]:>9} "
                f"{results['initial_loss'][i, s]:7.2e}->{results['loss'][i, s, -1]:7.2e} "
                f"{results['test_loss'][i, s, -1]:10.2e}  {cells}"
            )
    return "\n".join(lines)


def _final_erank(results, init: str, in_tree: bool) -> np.ndarray:
    """(seed, matricization): the effective rank at the end, over the HT rank ``rank`` of
    the ground truth, for the init ``"init_scale"`` (small) or ``"large_init_scale"`` (the
    control), of the tree's matricizations or of the others; NaN (one column) where the
    run lacks that init scale or has no such matricization."""
    seeds = len(results.coords["seed"])
    keep = np.asarray(results.coords["in_tree"], bool) == in_tree
    try:
        erank = select(results, "effective_rank", init_scale=float(results.config[init]))[:, -1]
    except KeyError:
        return np.full((seeds, 1), np.nan)
    return erank[:, keep] / results.config["rank"] if keep.any() else np.full((seeds, 1), np.nan)


def _small_tree_erank(results) -> np.ndarray:
    return np.max(_final_erank(results, "init_scale", True), axis=1)


def _large_tree_erank(results) -> np.ndarray:
    return np.min(_final_erank(results, "large_init_scale", True), axis=1)


def _small_non_tree_erank(results) -> np.ndarray:
    return np.min(_final_erank(results, "init_scale", False), axis=1)


def _matched_loss_ratio(results) -> np.ndarray:
    """(seed,): at a matched training loss, the large init's smallest tree effective rank
    over the small init's largest. The matched loss L* is the larger of the two final
    losses; each init is read at its first save with loss <= L*. NaN where a run lacks
    an init scale."""
    seeds = len(results.coords["seed"])
    tree = np.asarray(results.coords["in_tree"], bool)
    try:
        small, large = (float(results.config[k]) for k in ("init_scale", "large_init_scale"))
        loss = {k: select(results, "loss", init_scale=v) for k, v in (("small", small), ("large", large))}
        erank = {k: select(results, "effective_rank", init_scale=v) for k, v in (("small", small), ("large", large))}
    except KeyError:
        return np.full(seeds, np.nan)
    out = np.empty(seeds)
    for s in range(seeds):
        level = max(loss["small"][s, -1], loss["large"][s, -1])
        at = {k: int(np.argmax(loss[k][s] <= level)) for k in loss}
        out[s] = erank["large"][s, at["large"], tree].min() / erank["small"][s, at["small"], tree].max()
    return out


def _largest_final_loss(results) -> np.ndarray:
    """(seed,): max over both inits of the final training loss (mean squared error over
    the observed entries; the target's entries have RMS 1)."""
    return np.max(results["loss"][:, :, -1], axis=0)


RAZIN = "Razin et al. 2022, Sec. 4 (implicit HT rank minimization)"
CLAIMS = (
    Claim(
        id="small-init-low-tree-rank",
        statement="From the small init, every tree matricization ends at an effective rank at most the ground truth's "
        "HT rank.",
        source=RAZIN,
        paper="gradient descent from small init lowers the HT rank: the tree's matricizations end at low rank "
        "(orders 3 and 4, dims 16, HT rank 5, widths 512, init 1e-2)",
        quantity="largest final effective rank over the tree's matricizations (small init) / ground truth's HT rank",
        measure=_small_tree_erank,
        op="<=",
        threshold=1.0,
    ),
    Claim(
        id="large-init-high-tree-rank",
        statement="Control: from the large init, no tree matricization ends at an effective rank as low as the ground "
        "truth's HT rank.",
        source=RAZIN + "; the large-init control is ours",
        paper="the low rank is due to the small init (the paper's analysis needs small init; it has no large-init run)",
        quantity="smallest final effective rank over the tree's matricizations (large init) / ground truth's HT rank",
        measure=_large_tree_erank,
        op=">",
        threshold=1.0,
    ),
    Claim(
        id="lower-tree-rank-at-matched-loss",
        statement="At a matched training loss (the level both inits reach), the small init's tree matricizations are "
        "at a lower effective rank than the large init's: the low rank is not a matter of having trained longer.",
        source=RAZIN + "; the matched-loss comparison is ours",
        paper="the low HT rank comes with fitting from a small init, not from where training stops",
        quantity="large init's smallest tree effective rank / small init's largest, each at its first save with "
        "training loss <= the larger final loss",
        measure=_matched_loss_ratio,
        op=">",
        threshold=1.0,
    ),
    Claim(
        id="both-fit",
        statement="Both inits fit the observations: the final training loss is below the paper's stopping value.",
        source=RAZIN,
        paper="training runs until the train MSE is below 5e-5 (targets of entry RMS 1)",
        quantity="largest final training loss over the two inits",
        measure=_largest_final_loss,
        op="<",
        threshold=5e-5,
        expected=False,
        note="needs a longer horizon: a seed whose small init is still on a later plateau at t1 ends above the "
        "paper's stopping value (its final loss is in the table); a horizon that lets every seed fit runs beyond the "
        "small preset's 5 minutes, and the matched-loss claim above compares the inits at a loss both reach",
    ),
    Claim(
        id="non-tree-not-lowered",
        statement="A matricization that is not a node of the tree is not lowered the same way: from the small init "
        "it ends above the ground truth's HT rank.",
        source=RAZIN,
        paper="the HT rank constrains only the tree's matricizations; other matricizations need not be low rank",
        quantity="smallest final effective rank over the non-tree matricizations (small init) / ground truth's HT rank",
        measure=_small_non_tree_erank,
        op=">",
        threshold=1.0,
    ),
)


class HTRank(Reproduction):
    """One run per (init scale, seed): the seed's problem (the input, shared by both
    inits) and a model (the state), integrated in ``num_chunks`` segments of flow time
    ``t1 / num_chunks``."""

    name = NAME
    config = Config

    def outputs(self, config: Config) -> dict:
        return {
            "effective_rank": ("init_scale", "seed", "time", "matricization"),
            "singular_values": ("init_scale", "seed", "time", "matricization", "index"),
            "initial_effective_rank": ("init_scale", "seed", "matricization"),
            "initial_singular_values": ("init_scale", "seed", "matricization", "index"),
            "target_effective_rank": ("seed", "matricization"),
            "target_singular_values": ("seed", "matricization", "index"),
            "loss": ("init_scale", "seed", "time"),
            "test_loss": ("init_scale", "seed", "time"),
            "initial_loss": ("init_scale", "seed"),
            "initial_test_loss": ("init_scale", "seed"),
            "initial_entry_rms": ("init_scale", "seed"),
            "solver_steps": ("init_scale", "seed"),
        }

    def setup(self, config: Config) -> Setup:
        problems, models = initial_setups(_setup, config)  # cached: a resumed run reuses them
        # runs in (init, seed) order: every seed's problem serves both of its inits
        models = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1).reshape(-1, *a.shape[2:]), models)
        problems = jax.tree.map(lambda a: jnp.concatenate([a, a]), problems)
        sets = tuple(config.matricizations())
        n_tree = len(sets) - len(config.non_tree)
        dof = ht_degrees_of_freedom(config.shape, config.widths, config.plan())
        params = sum(x.size for x in jax.tree.leaves(eqx.filter(models, eqx.is_array))) // (2 * config.seeds)
        coords = {
            "init_scale": [config.init_scale, config.large_init_scale],
            "seed": list(range(config.seeds)),
            "time": np.linspace(config.t1 / config.num_saves, config.t1, config.num_saves).tolist(),
            "matricization": [list(s) for s in sets],
            "in_tree": [i < n_tree for i in range(len(sets))],
            "index": list(range(1, _top(config, sets) + 1)),
        }
        extra = {
            "num_observed": config.num_observed,
            "degrees_of_freedom": dof,
            "num_parameters": int(params),
            "observed_per_degree_of_freedom": config.num_observed / dof,
        }
        return Setup(problems, models, config.num_chunks, (2, config.seeds), coords, extra)

    def chunk(self, config: Config, problem, model, k):
        sets = tuple(config.matricizations())
        top = _top(config, sets)
        per_chunk = config.num_saves // config.num_chunks
        dt = config.t1 / config.num_chunks
        ts = jnp.linspace(dt / per_chunk, dt, per_chunk)

        def metrics(m):
            erank, sv = _spectra(m.materialize(), sets, top)
            return erank, sv, problem.test_loss(m)

        traj = gradient_flow(
            problem.loss,
            model,
            jnp.asarray(dt),
            ts=ts,
            rtol=jnp.asarray(config.rtol),
            atol=jnp.asarray(config.atol),
            max_steps=config.max_steps,
            metrics=metrics,
        )
        erank, sv, test = traj.metrics
        outputs = dict(loss=traj.loss, test_loss=test, effective_rank=erank, singular_values=sv, steps=traj.num_steps)
        return traj.model, traj.status, outputs

    def assemble(self, config: Config, setup: Setup, final: Final) -> dict:
        sets = tuple(config.matricizations())
        S = config.seeds
        problems = jax.tree.map(lambda a: a[:S], setup.inputs)
        models = jax.tree.map(lambda a: a.reshape(2, S, *a.shape[1:]), setup.state)  # (init, seed, ...)
        (er0, sv0, loss0, test0, rms0), (target_erank, target_sv) = _initial(problems, models, sets, _top(config, sets))
        data = final.data
        return {
            "effective_rank": data["effective_rank"],
            "singular_values": data["singular_values"],
            "initial_effective_rank": np.asarray(er0),
            "initial_singular_values": np.asarray(sv0),
            "target_effective_rank": np.asarray(target_erank),
            "target_singular_values": np.asarray(target_sv),
            "loss": data["loss"],
            "test_loss": data["test_loss"],
            "initial_loss": np.asarray(loss0),
            "initial_test_loss": np.asarray(test0),
            "initial_entry_rms": np.asarray(rms0),
            "solver_steps": data["steps"],
        }

    def claims(self) -> tuple:
        return CLAIMS

    plot = staticmethod(plot)
    summary = staticmethod(summary)


REPRODUCTION = HTRank()
