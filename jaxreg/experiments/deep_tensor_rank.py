"""Tensor rank and test error against factor depth k (Hariz, Kadri, Ayache, Moakher,
Artieres 2022, "Implicit regularization with polynomial growth in deep tensor factorization").

Deep tensor factorization W = sum_{r=1}^R (x)_n v_r^n with v_r^n = A_k^{n,r} ... A_1^{n,r} w_r^n
(:class:`jaxreg.DeepTensorFactorization`; k = 0 is plain CP) completes a low CP-rank
tensor by minimizing L, the mean squared error over the observed entries, with
GroupRMSprop (:func:`jaxreg.group_rmsprop`: one scalar adaptive rate, so it follows the
gradient-flow path d theta/dt = -grad L(theta) re-timed) until L <= ``stop_at_loss`` or
``num_steps`` iterations. Under gradient flow, with sigma_r = ||(x)_n w_r^n|| and
balanced factors, d sigma_r/dt = N delta_r sigma_r^{2-2/N+k}: the growth exponent rises with k, so
components are learned more incrementally and the solution's tensor rank falls.
Reported per k and init scale, over seeds: the effective rank exp(H(p)), p_r =
||(x)_n v_r^n|| / sum_s ||(x)_n v_s^n||, of W's component norms
(:func:`jaxreg.metrics.component_effective_rank`); the estimated rank, the number of
components above 1e-2 of the largest (:func:`jaxreg.metrics.numerical_component_rank`);
and the test error ||W - W*||_F / ||W*||_F over
the unobserved entries. Claim: deeper factors (larger k) give lower effective rank and no
worse test error.

The paper publishes no settings for this experiment; the defaults below are ours
(order 3, dims 8, CP rank 3 target with entry RMS 1, 250 observed entries, R = 16,
init std 0.3 for every entry of every w and A at every depth, GroupRMSprop lr 1e-2 for
10^4 iterations). At k = 3 the effective rank reaches the target's rank 3.
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import _validation as V
from ..factorizations import DeepTensorFactorization
from ..metrics import component_effective_rank, numerical_component_rank
from ..sweep import sweep
from ..tasks import tensor_completion
from ._config import DescentToLoss, check_scalar_fields, defaults
from ._results import grid_results, grid_table, mean_std, rmsprop_descent, run_grid_chunks

NAME = "deep-tensor-rank"


# the outputs of one run, in the order ``one`` returns them
OUTPUTS = ("test_error", "error", "effective_rank", "component_rank", "loss", "status", "iterations")


@dataclasses.dataclass(frozen=True)
@defaults(seeds=4, stop_at_loss=1e-6, num_steps=10_000)
class Config(DescentToLoss):
    shape: tuple[int, ...] = (8, 8, 8)
    target_rank: int = 3
    rank: int = 16
    num_observed: int = 250
    depths: tuple[int, ...] = (0, 1, 2, 3)
    init_scales: tuple[float, ...] = (0.3,)
    component_rtol: float = 1e-2

    TINY = dict(depths=(0, 3), seeds=2, rank=8, num_steps=4000)
    PAPER = dict(
        shape=(10, 10, 10),
        num_observed=300,
        rank=50,
        depths=(0, 1, 2, 3, 4),
        init_scales=(0.1, 0.3),
        seeds=10,
        num_steps=50_000,
    )

    def __post_init__(self):
        V.normalize_fields(
            self,
            shape=V.shape_tuple("shape", self.shape),
            depths=V.int_tuple("depths", self.depths, minimum=0, distinct=False),
            init_scales=V.float_tuple("init_scales", self.init_scales, positive=True, distinct=False),
        )
        check_scalar_fields(self)
        V.below_entries("num_observed", self.num_observed, self.shape)
        runs = self.seeds * len(self.depths) * len(self.init_scales)
        V.fits_in_memory("seeds", self.seeds, 8 * runs * (math.prod(self.shape) + self.rank * sum(self.shape)))


def run(config: Config, *, out_dir=None, resume=False, progress=True) -> dict:
    keys = jax.random.split(jax.random.key(config.seed), config.seeds)
    norm = math.sqrt(math.prod(config.shape))  # entry RMS 1
    problems = sweep(
        lambda k: tensor_completion(k, config.shape, config.target_rank, config.num_observed, target_norm=norm), keys
    )
    scales = jnp.asarray(config.init_scales)

    def one(problem, key, scale, depth):
        model = DeepTensorFactorization(jax.random.fold_in(key, 1), config.shape, config.rank, depth, init_scale=scale)
        tr = rmsprop_descent(problem.loss, model, config, save_every=config.num_steps)
        norms = tr.model.end_component_norms()
        test = problem.test
        pred = tr.model.entries(test.indices)
        return (
            jnp.linalg.norm(pred - test.values) / jnp.linalg.norm(test.values),
            problem.reconstruction_error(tr.model),
            component_effective_rank(norms),
            numerical_component_rank(norms, config.component_rtol),
            tr.loss[-1],
            tr.status,
            tr.num_steps,
        )

    def step(state, k):  # chunk k: depth k, all init scales and seeds in one vmapped program
        depth = config.depths[k]
        fn = jax.vmap(lambda p, key, s: one(p, key, s, depth), in_axes=(None, None, 0))
        outputs = eqx.filter_jit(eqx.filter_vmap(fn, in_axes=(0, 0, None)))(problems, keys, scales)
        return state, dict(zip(OUTPUTS, outputs))

    outs, wall = run_grid_chunks(
        step, len(config.depths), config, out_dir=out_dir, resume=resume, progress=progress, desc=NAME
    )

    # chunks of (seed, init_scale) -> (depth, init_scale, seed)
    coords = {"depth": list(config.depths), "init_scale": list(config.init_scales), "seed": list(range(config.seeds))}
    return grid_results(outs, wall, order=(0, 2, 1), names=OUTPUTS, coords=coords)


def plot(results, out_dir):
    import matplotlib.pyplot as plt

    from ..plotting import save_figure

    c = results.coords
    cfg = results.config
    depths = np.asarray(c["depth"], float)
    panels = [
        ("effective_rank", "effective rank of W's component norms"),
        ("component_rank", f"components above {cfg['component_rtol']:g} x largest"),
        ("test_error", "test error ||W - W*|| / ||W*|| (unobserved)"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (key, label) in zip(axes, panels):
        for i, s in enumerate(c["init_scale"]):
            v = np.asarray(results[key][:, i], float)
            ax.errorbar(depths, v.mean(-1), yerr=v.std(-1), marker="o", capsize=3, label=f"init {s:g}")
        if key in ("effective_rank", "component_rank"):
            ax.axhline(cfg["target_rank"], color="k", ls="--", lw=1, label="target rank")
        if key == "test_error":
            ax.set_yscale("log")
        ax.set_xticks(depths)
        ax.set_xlabel("factor depth k")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    shape = "x".join(str(d) for d in cfg["shape"])
    fig.suptitle(
        f"deep tensor factorization: {shape}, rank-{cfg['target_rank']} target, "
        f"{cfg['num_observed']} observations, R = {cfg['rank']}",
        fontsize=10,
    )
    return save_figure(fig, out_dir, NAME)


def summary(results) -> str:
    header = (
        f"{'k':>3} {'init':>7} {'eff. rank (mean +- std)':>24} {'est. rank (mean +- std)':>24} "
        f"{'test error (mean +- std)':>26} {'train loss':>10} {'iters':>6}"
    )

    def row(d_i, d, i, s):
        cell = {k: results[k][d_i, i] for k in ("effective_rank", "test_error", "loss", "iterations")}
        est_rank = np.asarray(results["component_rank"][d_i, i], float)
        return (
            f"{d:>3} {s:>7.2g} {mean_std(cell['effective_rank'], '13.2f', '7.2f')} "
            f"{mean_std(est_rank, '13.2f', '7.2f')} {mean_std(cell['test_error'], '13.3e', '9.2e')} "
            f"{cell['loss'].max():>10.1e} {cell['iterations'].max():>6}"
        )

    return grid_table(results, ("depth", "init_scale"), header, row)
