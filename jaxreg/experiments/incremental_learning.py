"""Incremental learning in matrix, tensor, hierarchical tensor and deep tensor factorization.

Razin, Maman, Cohen (ICML 2022), the figure beside their Theorem 1: under gradient flow
from small initialization, the singular values of a deep matrix factorization (Arora,
Cohen, Hu, Luo, NeurIPS 2019), the component norms of a CP tensor factorization (Razin,
Maman, Cohen, ICML 2021) and the local component norms of a hierarchical tensor
factorization all obey

    d sigma/dt = K * gamma(t) * sigma^{2 - 2/K}     (K = L, N, or |children(nu)| + 1),

so each moves slowly while small and fast once large: the components are learned one
after the other. A fourth panel adds deep tensor factorization (Hariz, Kadri, Ayache,
Moakher, Artieres 2022): under Frobenius balancedness (||A_i^{n,r}||_F = ||w_r^n||, equal
across n), sigma_r = ||(x)_n w_r^n|| obeys d sigma_r/dt = N delta_r sigma_r^{2 - 2/N + k},
so deeper factors (larger k) make the transition sharper. Its three panels (k = 0, 1, 2)
start from ONE balanced initialization (the same w_r^n for every k, A's of the same norm),
plot the theorem's sigma_r, and compare the relative widths (t_90% - t_10%) / t_50% of the
leading component's rise (:func:`transition_width`). The time to escape the plateau grows
like sigma_0^{-(p-1)} (docs/theory.md §4, §6b), so each k has its own horizon ``dcp_t1s``, ended
shortly after the rise: past it the learned component makes the flow stiff and Tsit5 crawls.

The models of one seed are integrated as two gradient flows (matrix, CP and HTF; the
deep CP factorizations), each over the tuple of its models' parameters, with model i's
time rescaled to its own horizon T_i: in the flow time s in [0, 1] the loss is
sum_i T_i L_i(theta_i), so theta_i(s) = GF_i(T_i s) exactly (the models share no
parameters). Two compiled programs serve every model and seed: one joint program of
all six models cost as much to compile as the two together (about 18 s), so splitting
halves the largest compile, and each group gets its own step sizes.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from .. import _validation as V
from ..dynamics import Status, gradient_flow
from ..factorizations import (
    DeepTensorFactorization,
    HierarchicalTensorFactorization,
    MatrixFactorization,
    TensorFactorization,
)
from ..factorizations.trees import TreePlan, balanced_tree, check_widths, plan_tree
from ..tasks import matrix_completion, tensor_completion
from ._config import FlowRun, check_scalar_fields, defaults
from ._results import initial_setups, run_flow_chunks
from ._transitions import crossing_times as crossing_times
from ._transitions import top_components as top_components
from ._transitions import transition_saves as transition_saves
from ._transitions import transition_times as transition_times
from ._transitions import transition_width as transition_width

NAME = "incremental-learning"


@dataclasses.dataclass(frozen=True)
@defaults(num_saves=600, max_steps=200_000)
class Config(FlowRun):
    """Four completion problems, one per model family (``mf_``, ``tf_``, ``htf_``, ``dcp_``).

    Paper preset: Razin et al. 2022's comparison runs, 64x64 rank-5
    matrix, 16^3 CP-rank-5 tensor (init 1e-3), HTF of widths 512 (init 1e-2) on a 16^3
    tensor with 2048 observations. ``*_t1`` are each model's flow-time horizons;
    ``eta`` (the references' lr) only labels the secondary axis (GD iterations t / eta).
    ``htf_target``: "cp" (CP rank ``htf_rank``) or "ht" (HT rank ``htf_rank`` at every node).
    Deep CP: one Frobenius-balanced init of entry scale ``dcp_init_scale`` for every depth;
    ``dcp_t1s`` were tuned for the default problem and seed 0 (leading component's t_50%
    about 640, 3.2e4, 1.12e6 for k = 0, 1, 2; widths 1.10, 0.15, 0.059). Other problems or
    seeds may need other horizons: the summary's ``saves`` column flags a poorly resolved rise.
    """

    mf_shape: tuple[int, int] = (30, 30)
    mf_rank: int = 3
    mf_observed: int = 300
    mf_depth: int = 3
    mf_init_scale: float = 1e-3
    mf_t1: float = 800.0
    tf_shape: tuple[int, ...] = (8, 8, 8)
    tf_rank: int = 3
    tf_observed: int = 250
    tf_components: int = 20
    tf_init_scale: float = 1e-2
    tf_t1: float = 1e5
    htf_shape: tuple[int, ...] = (8, 8, 8)
    htf_rank: int = 3
    htf_target: str = "cp"
    htf_observed: int = 256
    htf_widths: tuple[int, ...] = (16, 16)
    htf_init_scale: float = 1e-1
    htf_t1: float = 5000.0
    dcp_shape: tuple[int, ...] = (8, 8, 8)
    dcp_rank: int = 3
    dcp_observed: int = 250
    dcp_components: int = 20
    dcp_depths: tuple[int, ...] = (0, 1, 2)
    dcp_init_scale: float = 0.15
    dcp_t1s: tuple[float, ...] = (1500.0, 4e4, 1.3e6)
    eta: float = 1e-2

    # the small problems (horizons tuned to them), fewer saves and chunks
    TINY = dict(num_saves=300, num_chunks=2)
    PAPER = dict(
        mf_shape=(64, 64),
        mf_rank=5,
        mf_observed=2048,
        tf_shape=(16, 16, 16),
        tf_rank=5,
        tf_observed=2048,
        tf_components=512,
        tf_init_scale=1e-3,
        htf_shape=(16, 16, 16),
        htf_rank=5,
        htf_observed=2048,
        htf_widths=(512, 512),
        htf_init_scale=1e-2,
        dcp_shape=(10, 10, 10),
        dcp_rank=5,
        dcp_observed=500,
        dcp_components=50,
        num_saves=400,
        num_chunks=10,
        seeds=3,
    )

    def __post_init__(self):
        V.normalize_fields(
            self,
            mf_shape=V.shape_tuple("mf_shape", self.mf_shape, order=2),
            **{
                name: V.shape_tuple(name, getattr(self, name), min_order=2)
                for name in ("tf_shape", "htf_shape", "dcp_shape")
            },
        )
        check_scalar_fields(self)
        V.choice("htf_target", self.htf_target, ("cp", "ht"))
        V.normalize_fields(
            self,
            htf_widths=check_widths(self.htf_widths, _tree(self.htf_shape), "htf_widths"),
            dcp_depths=V.int_tuple("dcp_depths", self.dcp_depths, minimum=0, distinct=False),
            dcp_t1s=V.float_tuple("dcp_t1s", self.dcp_t1s, positive=True, distinct=False),
        )
        if len(self.dcp_t1s) != len(self.dcp_depths):
            raise ValueError(
                f"dcp_t1s must have one entry per deep-CP depth ({len(self.dcp_depths)}), got {self.dcp_t1s!r}"
            )
        if self.mf_rank > min(self.mf_shape):
            raise ValueError(f"mf_rank must be at most min(mf_shape) = {min(self.mf_shape)}, got {self.mf_rank}")
        numel = 0
        for prefix in ("mf", "tf", "htf", "dcp"):
            shape = getattr(self, f"{prefix}_shape")
            V.below_entries(f"{prefix}_observed", getattr(self, f"{prefix}_observed"), shape)
            numel += math.prod(shape)
        V.divisible("num_saves", self.num_saves, "num_chunks", self.num_chunks)
        V.fits_in_memory("seeds", self.seeds, 8 * self.seeds * numel)

    def model_names(self) -> list[str]:
        return ["matrix", "cp", "htf"] + [f"deep-cp k={k}" for k in self.dcp_depths]

    def horizons(self) -> list[float]:
        return [self.mf_t1, self.tf_t1, self.htf_t1, *self.dcp_t1s]


def _tree(shape) -> TreePlan:
    """The HTF's mode tree: the default balanced binary tree over adjacent modes."""
    return plan_tree(balanced_tree(len(shape)), len(shape))


def _setup(config: Config, key: PRNGKeyArray):
    """Problems and models of one seed: (problems tuple, models tuple), one per panel."""
    keys = jax.random.split(key, 8)
    mf_p = matrix_completion(keys[0], config.mf_shape, config.mf_rank, config.mf_observed)
    mf_m = MatrixFactorization(keys[1], config.mf_shape, config.mf_depth, init_scale=config.mf_init_scale)
    tf_p = tensor_completion(keys[2], config.tf_shape, config.tf_rank, config.tf_observed)
    tf_m = TensorFactorization(keys[3], config.tf_shape, config.tf_components, init_scale=config.tf_init_scale)
    htf_p = tensor_completion(
        keys[4],
        config.htf_shape,
        config.htf_rank,
        config.htf_observed,
        target=config.htf_target,
        target_norm=math.sqrt(math.prod(config.htf_shape)),
    )
    htf_m = HierarchicalTensorFactorization(
        keys[5], config.htf_shape, config.htf_widths, init_scale=config.htf_init_scale
    )
    # one deep-CP problem shared by every depth k, so the panels differ only in k
    dcp_p = tensor_completion(keys[6], config.dcp_shape, config.dcp_rank, config.dcp_observed)
    # one key for every depth: the same w_r^n at t = 0 (same sigma_r(0)), only the A's are added
    dcp_ms = tuple(
        DeepTensorFactorization(
            keys[7], config.dcp_shape, config.dcp_components, k, init_scale=config.dcp_init_scale, balanced=True
        )
        for k in config.dcp_depths
    )
    problems = (mf_p, tf_p, htf_p) + (dcp_p,) * len(dcp_ms)
    return problems, (mf_m, tf_m, htf_m) + dcp_ms


def _base_metrics(models):
    mf, tf, htf = models
    return {"mf": mf.component_norms(), "tf": tf.component_norms(), "htf": tuple(htf.local_component_norms().values())}


def _deep_metrics(dcps):
    return {"dcp": jnp.stack([m.rate_sigma() for m in dcps]), "dcp_end": jnp.stack([m.component_norms() for m in dcps])}


GROUPS = ((slice(0, 3), _base_metrics), (slice(3, None), _deep_metrics))  # one flow each


@eqx.filter_jit
def _chunk(problems, models, horizons, ts, ds, rtol, atol, max_steps: int, group_metrics):
    """One chunk for every seed (vmapped): the joint flow of ``models`` over s in [0, ds],
    saving the losses and ``group_metrics`` at ``ts``. Module-level, so that runs of one
    configuration in one process share the compiled programs."""

    def one(problems, models):
        def loss(ms):  # flow time s: model i runs at speed T_i, theta_i(s) = GF_i(T_i s)
            return sum(horizons[i] * p.loss(m) for i, (p, m) in enumerate(zip(problems, ms)))

        def metrics(ms):
            return jnp.stack([p.loss(m) for p, m in zip(problems, ms)]), group_metrics(ms)

        traj = gradient_flow(loss, models, ds, ts=ts, rtol=rtol, atol=atol, max_steps=max_steps, metrics=metrics)
        return traj.model, traj.metrics, traj.status, traj.num_steps

    return eqx.filter_vmap(one)(problems, models)


def run(config: Config, *, out_dir=None, resume=False, progress=True) -> dict:
    problems, models = initial_setups(_setup, config)  # cached: a resumed run reuses them
    per_chunk = config.num_saves // config.num_chunks
    ds = 1.0 / config.num_chunks
    horizons = config.horizons()
    ts = jnp.linspace(ds / per_chunk, ds, per_chunk)

    def step(state, k):
        models, status = state
        new_models, losses, m, steps = (), [], {}, 0
        for group, group_metrics in GROUPS:
            ms, (ls, mg), st, n = _chunk(
                problems[group],
                models[group],
                jnp.asarray(horizons[group]),
                ts,
                jnp.asarray(ds),
                jnp.asarray(config.rtol),
                jnp.asarray(config.atol),
                config.max_steps,
                group_metrics,
            )
            new_models, steps = new_models + tuple(ms), steps + n
            losses.append(ls)
            m.update(mg)
            status = jnp.maximum(status, st)  # worst status so far (codes grow with severity)
        models = new_models
        out = {
            "loss": jnp.concatenate(losses, axis=-1),
            "mf": m["mf"],
            "tf": m["tf"],
            "dcp": m["dcp"],
            "dcp_end": m["dcp_end"],
            "steps": steps,
        }
        out.update({f"htf{i}": v for i, v in enumerate(m["htf"])})
        return (models, status), out

    models, status, steps, data, wall = run_flow_chunks(
        step, models, config, out_dir=out_dir, resume=resume, progress=progress, desc=NAME
    )  # every output is (seed, save, ...)
    s = np.linspace(1.0 / config.num_saves, 1.0, config.num_saves)
    nodes = _tree(config.htf_shape).nodes
    arrays = {
        "flow_time": (("model", "save"), np.outer(horizons, s)),
        "loss": (("seed", "save", "model"), data["loss"]),
        "mf_singular_values": (("seed", "save", "mf_component"), data["mf"]),
        "tf_component_norms": (("seed", "save", "tf_component"), data["tf"]),
        "dcp_component_norms": (("seed", "save", "dcp_depth", "dcp_component"), data["dcp"]),
        "dcp_end_component_norms": (("seed", "save", "dcp_depth", "dcp_component"), data["dcp_end"]),
        "solver_steps": (("seed",), steps),
    }
    for i in range(len(nodes)):
        arrays[f"htf_node{i}_norms"] = (("seed", "save", f"htf_node{i}_component"), data[f"htf{i}"])
    return {
        "arrays": arrays,
        "coords": {
            "seed": list(range(config.seeds)),
            "save": s.tolist(),
            "model": config.model_names(),
            "dcp_depth": list(config.dcp_depths),
            "htf_node": [list(n) for n in nodes],
        },
        "status": Status.names(status),
        "wall_time": wall,
    }


def _panels(results):
    """[(title, flow times, norms (seed, time, R), number of target components)]."""
    c, cfg = results.coords, results.config
    t = results["flow_time"]
    node = len(c["htf_node"]) - 1  # the root
    out = [
        (f"matrix depth {cfg['mf_depth']}: singular values", t[0], results["mf_singular_values"], cfg["mf_rank"]),
        (
            f"tensor (CP) order {len(cfg['tf_shape'])}: component norms",
            t[1],
            results["tf_component_norms"],
            cfg["tf_rank"],
        ),
        (
            f"HTF root {tuple(c['htf_node'][node])}: local component norms",
            t[2],
            results[f"htf_node{node}_norms"],
            cfg["htf_rank"],
        ),
    ]
    for i, k in enumerate(c["dcp_depth"]):
        out.append(
            (f"deep CP k={k}: ||(x)_n w_r^n||", t[3 + i], results["dcp_component_norms"][:, :, i], cfg["dcp_rank"])
        )
    return out


def plot(results, out_dir):
    import matplotlib.pyplot as plt

    from ..plotting import add_iteration_axis, plot_curves, save_figure

    panels = _panels(results)
    eta = results.config["eta"]
    ncols = max(3, len(panels) - 3)
    fig, axes = plt.subplots(2, ncols, figsize=(4.2 * ncols, 7.6), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    for i, (title, ts, norms, k) in enumerate(panels):
        ax = axes[i // 3, i % 3] if i < 3 else axes[1, i - 3]
        top = top_components(norms[0], max(k + 2, 5))
        plot_curves(ax, ts, norms[0][:, top], label_prefix="#", max_lines=len(top))
        for t in crossing_times(ts, norms[0], k):
            ax.axvline(t, color="0.6", lw=0.6, ls=":")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("gradient flow time t")
        add_iteration_axis(ax, eta).xaxis.label.set_fontsize(7)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle("incremental learning from small initialization (dotted: half of final value reached)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_dir, NAME)


def summary(results) -> str:
    lines = [
        f"{'panel':<44} {'seed':>4} {'status':>9} {'width':>6} {'saves':>6}  "
        "times to half of final value (top components)"
    ]
    for title, ts, norms, k in _panels(results):
        for s in range(norms.shape[0]):
            times = " ".join(f"{t:9.4g}" for t in crossing_times(ts, norms[s], k))
            lines.append(
                f"{title:<44} {s:>4} {results.meta['status'][s]:>9} "
                f"{transition_width(ts, norms[s]):6.3f} {transition_saves(ts, norms[s]):6.1f}  {times}"
            )
    lines.append(
        "width = (t_90% - t_10%) / t_50% of the leading component, levels 10/50/90% of its rise in log "
        "scale (smaller: sharper); saves = save intervals within t_10%..t_90%"
    )
    return "\n".join(lines)
