"""Tensor completion against the number of observations (Razin, Cohen, NeurIPS 2020).

Razin & Cohen (NeurIPS 2020), "Implicit Regularization in Deep Learning May Not Be
Explainable by Norms", tensor completion experiment (their code:
noamrazin/imp_reg_dl_not_norms, ``tc_multiple_experiments_runner.py``).

A CP tensor factorization W = sum_{r=1}^R w_r^1 (x) w_r^2 (x) w_r^3 (order 3, dims 8,
R = 64 components, the reference's default: the product of the dims but the largest,
an upper bound on the rank of any 8 x 8 x 8 tensor; factor entries N(0, init_scale^2),
init 1e-3 and 1e-2) is fitted to a rank-1 target W* (||W*||_F = 1) from n uniformly
drawn entries, n = 50, 100, ..., 450, 511, by minimizing
L(W) = (1/n) sum_{(i,j,k) observed} (W_ijk - W*_ijk)^2 in two phases:

1. the reference's runner: GroupRMSprop, lr 1e-2 (:func:`jaxreg.group_rmsprop`; one
   scalar adaptive rate, so it follows the gradient-flow path re-timed and crosses the
   long plateaus of small init in hundreds of iterations), the loss checked every 100
   iterations, stopped once it was below 1e-6 at 3 checks in a row (the reference's
   ``StopOnZeroTrainLoss``, patience 2), at most 10^6 iterations. Its end is the run's
   status (converged: the rule was met) and ``error_authors_stop``;
2. ours: plain gradient descent (step ``descent_lr`` = 20, below 2 / the largest Hessian
   eigenvalue at the solutions of 3 draws: 36-210) from there until the loss is at most
   ``descent_loss`` = 1e-14, at most ``descent_steps`` iterations. GroupRMSprop cannot
   get there: as the gradient vanishes its rate grows toward lr / eps = 10^4 and the
   iterate hovers at a loss between 1e-16 and 1e-7 that depends on the run, so where the
   rule happens to stop sets the small init's error (in the shipped run, seed 2 at 200
   observations stops at loss 1e-9 with error 3e-3, 2.5x below init 1e-2; the descent
   takes it to loss 3e-13 and error 4e-5, 83x below). The paper's 5e-6 at init 1e-3 needs
   a loss below about 1e-13. Many runs approach their limit sublinearly (a second
   component shrinking slowly, the error falling with the loss) and end this phase at
   the step cap with a loss of 4e-14 to 1e-7; ``descent_status`` records which (every
   init-1e-2 run, at a loss of 5e-11 to 1e-8).

Reported per init scale, n and seed: the normalized reconstruction error
||W - W*||_F / ||W*||_F after each phase, and the CP rank of the final W: the smallest r
whose CP-ALS fit (one random init, 1000 iterations, as in the reference) reaches mean
squared error < 1e-6, searched as the reference does by bisection over 1..64 (r = 1
tried first). The control is the reference's "memorizer" (the "linear" curve of its
figure): the unfactorized model that fits the same observations with the least norm,
observed entries exact and zeros elsewhere, with its error and CP rank. Claim: beyond a
modest number of observations the rank-1 target is recovered (rank 1, error near zero),
and init 1e-3 ends 100-1000x closer to it than init 1e-2, while the memorizer, which fits
the same observations, stays far from it at a high CP rank.

Differences from the reference: it draws one target and one order of the entries and
repeats the runs 5 times with fresh inits; here every seed draws its own target, order
and inits (the seeds differ in the target as well). The second phase is ours (see
above). Both inits of a seed share one draw of the factors, scaled. CP-ALS here is
tensorly's ``parafac`` with an l2 regularization of 1e-12 (the reference's own ALS
returns -1 when a normal matrix is singular; the memorizer at 511 observations, W*
minus one entry, has CP rank at most 2 and makes larger ranks singular).

The observation sets are nested: for each seed the entries are one uniform permutation,
and n observations are its first n entries (exactly the training set that
``jaxreg.tasks.tensor_completion(key, shape, 1, n)`` draws). The loss weights the first
n of the permuted entries by 1/n and the rest by 0, so every n shares one compiled,
vmapped program (n is a traced scalar, not a shape).
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from jaxreg import Status, gradient_descent, group_rmsprop, seed_keys
from jaxreg import validation as V
from jaxreg.metrics import component_norm_entropy_rank
from jaxreg.tasks import tensor_completion
from jaxreg_lab.claims import Claim
from jaxreg_lab.contract import Final, Reproduction, Setup
from jaxreg_lab.reproductions._config import Descent, Seeds, StopAtLoss, check_scalar_fields
from jaxreg_lab.reproductions._results import cp_models_per_scale, grid_table, nan_per_seed, per_seed, pick

NAME = "tensor-completion-observations"


# the saved arrays of the factorization, each (init_scale, num_observed, seed)
OUTPUTS = (
    "error",
    "error_authors_stop",
    "cp_rank",
    "component_norm_entropy_rank",
    "loss",
    "loss_authors_stop",
    "status",
    "iterations",
    "descent_status",
    "descent_steps",
)
# the memorizer control's, each (num_observed, seed)
MEMORIZER_OUTPUTS = ("memorizer_error", "memorizer_cp_rank")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(Seeds, Descent, StopAtLoss):
    """Defaults: Razin & Cohen 2020's runner (``tc_multiple_experiments_runner.py``):
    order 3, dims 8, rank-1 target, R = 64, 50..511 observations, init 1e-3 and 1e-2,
    5 repetitions; GroupRMSprop lr 1e-2 (``lr``) stopped once the train loss was below
    1e-6 (``stop_at_loss``) at ``stop_checks`` = 3 checks ``check_every`` = 100
    iterations apart, at most ``num_steps`` = 10^6 iterations; CP rank by CP-ALS at MSE
    < 1e-6 (``cp_tol``) over ranks up to 64 (``cp_max_rank``), one init of 1000
    iterations. Ours: the second phase, gradient descent with step ``descent_lr`` to
    train loss ``descent_loss`` = 1e-14 in at most ``descent_steps`` iterations (20,000
    here for the 5-minute budget, 200,000 in the paper preset), and a target per seed
    (the reference repeats one target with fresh inits)."""

    seeds: int = 5

    shape: tuple[int, ...] = (8, 8, 8)
    target_rank: int = 1
    rank: int = 64
    num_observed: tuple[int, ...] = (50, 100, 150, 200, 250, 300, 350, 400, 450, 511)
    init_scales: tuple[float, ...] = (1e-3, 1e-2)
    num_steps: int = 1_000_000
    stop_at_loss: float = 1e-6
    check_every: int = 100
    stop_checks: int = 3
    descent_lr: float = 20.0
    descent_loss: float = 1e-14
    descent_steps: int = 20_000
    cp_max_rank: int = 64
    cp_tol: float = 1e-6
    cp_restarts: int = 1
    cp_iter_max: int = 1000

    TINY = dict(num_observed=(50, 200), seeds=2, descent_steps=2000, cp_max_rank=32, cp_iter_max=300)
    PAPER = dict(descent_steps=200_000)

    def __post_init__(self):
        V.normalize_fields(
            self,
            shape=V.shape_tuple("shape", self.shape),
            num_observed=V.int_tuple("num_observed", self.num_observed, minimum=1),
            init_scales=V.float_tuple("init_scales", self.init_scales, positive=True, distinct=False),
        )
        for n in self.num_observed:
            V.below_entries("num_observed", n, self.shape)
        check_scalar_fields(self)
        V.divisible("num_steps", self.num_steps, "check_every", self.check_every)
        runs = self.seeds * len(self.num_observed) * len(self.init_scales)
        V.fits_in_memory("seeds", self.seeds, 8 * runs * (math.prod(self.shape) + self.rank * sum(self.shape)))


def masked_loss(
    model, indices: Int[Array, "k N"], values: Float[Array, " k"], num_observed: Int[Array, ""]
) -> Float[Array, ""]:
    """(1/n) sum_{i < n} (W[indices_i] - values_i)^2 with n = ``num_observed`` (traced):
    the completion loss over the first n observations, one program for every n."""
    weights = (jnp.arange(values.shape[0]) < num_observed) / num_observed
    return jnp.sum(weights * (model.entries(indices) - values) ** 2)


def authors_descent(loss, model, config: Config):
    """The reference's runner on ``loss`` from ``model``: GroupRMSprop (lr ``config.lr``),
    the loss checked every ``config.check_every`` iterations, stopped once it was below
    ``config.stop_at_loss`` at ``config.stop_checks`` checks in a row, or after
    ``config.num_steps`` iterations, or at a non-finite loss.

    Returns:
        ``(model, loss, status, iterations)``: status CONVERGED when the rule was met,
        MAX_STEPS at the cap, NON_FINITE on divergence.
    """
    optimizer = group_rmsprop(config.lr)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    grad = jax.grad(lambda p: loss(eqx.combine(p, static)))

    def step(carry, _):
        p, state = carry
        updates, state = optimizer.update(grad(p), state, p)
        return (optax.apply_updates(p, updates), state), None

    def body(carry):
        p, state, streak, steps, _ = carry
        (p, state), _ = jax.lax.scan(step, (p, state), None, length=config.check_every)
        value = loss(eqx.combine(p, static))
        streak = jnp.where(value < config.stop_at_loss, streak + 1, 0)
        return p, state, streak, steps + config.check_every, value

    def running(carry):
        _, _, streak, steps, value = carry
        return (streak < config.stop_checks) & (steps < config.num_steps) & jnp.isfinite(value)

    zero = jnp.zeros((), jnp.int32)
    start = (params, optimizer.init(params), zero, zero, loss(model))
    p, _, streak, steps, value = jax.lax.while_loop(running, body, start)
    status = jnp.where(
        ~jnp.isfinite(value),
        Status.NON_FINITE,
        jnp.where(streak >= config.stop_checks, Status.CONVERGED, Status.MAX_STEPS),
    )
    return eqx.combine(p, static), value, status.astype(jnp.int32), steps


def cp_rank(tensor, max_rank: int, tol: float, *, n_restarts: int = 1, seed: int = 0, n_iter_max: int = 1000):
    """The reference's CP rank of a tensor: the smallest r <= ``max_rank`` whose CP-ALS fit
    (tensorly's ``parafac`` from a random init, l2 regularization 1e-12) reaches mean
    squared error < ``tol`` in one of ``n_restarts`` inits, searched by bisection (r = 1
    first). Bisection assumes that a fit at rank r implies one at every larger rank, as
    the reference's search does; it is an upper estimate (the fits depend on the inits).

    Returns:
        r; ``max_rank + 1`` if no rank fits, 0 for a tensor of mean square below ``tol``,
        NaN for a non-finite tensor.
    """
    from tensorly.cp_tensor import cp_to_tensor
    from tensorly.decomposition import parafac

    t = np.asarray(tensor, dtype=np.float64)
    if not np.all(np.isfinite(t)):
        return float("nan")
    if float(np.mean(t**2)) < tol:
        return 0
    rng = np.random.default_rng(seed)

    def fits(r):
        for _ in range(n_restarts):
            state = int(rng.integers(2**31 - 1))
            cp = parafac(t, r, n_iter_max=n_iter_max, init="random", tol=1e-12, random_state=state, l2_reg=1e-12)
            if float(np.mean((cp_to_tensor(cp) - t) ** 2)) < tol:
                return True
        return False

    if fits(1):
        return 1
    low, high = 2, max_rank + 1  # the answer lies in [low, high]; high = max_rank + 1: none fits
    while low < high:
        mid = (low + high) // 2
        if fits(mid):
            high = mid
        else:
            low = mid + 1
    return low


def memorizer(target, indices, values, n: int) -> np.ndarray:
    """The reference's "memorizer": the observed entries (the first ``n``) exact, zeros
    elsewhere, the least-norm tensor that fits them (an unfactorized linear model)."""
    w = np.zeros(np.shape(target))
    idx = np.asarray(indices)[:n]
    w[tuple(idx.T)] = np.asarray(values)[:n]
    return w


def _problems(config: Config, keys: PRNGKeyArray):
    """Per seed: the target and a permutation of max(num_observed) observations (stacked)."""
    n_max = max(config.num_observed)
    problems = per_seed(lambda k: tensor_completion(k, config.shape, config.target_rank, n_max), keys)
    return problems.target, problems.train.indices, problems.train.values


def _quartiles(v: np.ndarray):
    """The median and its distances to the 25th and 75th percentiles over the last axis
    (NaN skipped), the reference figure's bars."""
    lo, med, hi = np.nanpercentile(v, [25, 50, 75], axis=-1)
    return med, np.stack([med - lo, hi - med])


def plot(results, out_dir):
    import matplotlib.pyplot as plt

    from jaxreg_lab.plotting import save_figure

    c, cfg = results.coords, results.config
    n = np.asarray(c["num_observed"], float)
    scales = list(c["init_scale"])
    converged = np.asarray(results["status"]) == Status.CONVERGED
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax_err, ax_ratio, ax_rank = axes
    mem_err = np.asarray(results["memorizer_error"], float)
    mem_rank = np.asarray(results["memorizer_cp_rank"], float)
    for ax, v in ((ax_err, mem_err), (ax_rank, mem_rank)):
        med, bars = _quartiles(v)
        ax.errorbar(n, med, yerr=bars, marker="o", ls="--", capsize=3, color="C0", label="memorizer (linear model)")
    for i, s in enumerate(scales):
        color = f"C{i + 1}"
        err = np.asarray(results["error"][i], float)
        med, bars = _quartiles(err)
        ax_err.errorbar(n, med, yerr=bars, marker="^", capsize=3, color=color, label=f"CP, init {s:g}")
        ax_err.plot(np.repeat(n, err.shape[-1]), err.ravel(), ".", color=color, alpha=0.35, ms=4)
        stop_med, _ = _quartiles(np.asarray(results["error_authors_stop"][i], float))
        ax_err.plot(n, stop_med, ls=":", color=color, alpha=0.8, label=f"init {s:g} at the reference's stop")
        rank = np.where(converged[i], np.asarray(results["cp_rank"][i], float), np.nan)
        med, bars = _quartiles(rank)
        ax_rank.errorbar(n, med, yerr=bars, marker="^", capsize=3, color=color, label=f"CP, init {s:g}")
    ratio = _init_error_ratios(results)  # (seed, num_observed) or None
    if ratio is not None:
        small_done = pick(results, "descent_status", init_scale=SMALL_INIT) == Status.CONVERGED
        for s, r in enumerate(ratio):
            (line,) = ax_ratio.plot(n, r, marker="o", ms=4, lw=1, label=f"seed {s}")
            short = ~small_done[s]
            ax_ratio.plot(n[short], r[short], "o", ms=8, mfc="none", color=line.get_color())
        ax_ratio.plot(
            [], [], "o", ms=8, mfc="none", color="gray", label=f"init {SMALL_INIT:g} above loss {cfg['descent_loss']:g}"
        )
        ax_ratio.axhline(10, color="k", ls="--", lw=1, label="10x")
        ax_ratio.axhline(100, color="gray", ls=":", lw=1, label="100x")
        ax_ratio.set_yscale("log")
        ax_ratio.legend(fontsize=7, ncol=2)
    else:
        ax_ratio.text(
            0.5, 0.5, f"needs init {SMALL_INIT:g} and {LARGE_INIT:g}", ha="center", transform=ax_ratio.transAxes
        )
    ax_ratio.set_ylabel(f"error(init {LARGE_INIT:g}) / error(init {SMALL_INIT:g})")
    ax_ratio.set_title(
        f"per seed: error ratio of the two inits\n(circled: init {SMALL_INIT:g} stopped above loss "
        f"{cfg['descent_loss']:g}, at the step cap)",
        fontsize=8,
    )
    ax_err.set_yscale("log")
    ax_err.set_ylabel("reconstruction error ||W - W*|| / ||W*||")
    ax_err.set_title(
        f"median, quartiles and each of {len(c['seed'])} seeds (dots)\nafter at most "
        f"{cfg['descent_steps']:,} descent steps toward loss {cfg['descent_loss']:g}",
        fontsize=8,
    )
    lowest = np.nanmin(np.asarray(results["error"], float))
    ax_err.set_ylim(bottom=lowest / 1000)  # room for the legend under the curves
    ax_err.legend(fontsize=7, loc="lower left")
    ax_rank.axhline(cfg["target_rank"], color="C3", lw=3, alpha=0.6, label="target rank")
    ax_rank.set_ylabel(f"CP rank (CP-ALS, MSE < {cfg['cp_tol']:g})")
    ax_rank.set_ylim(bottom=0)
    ax_rank.set_title("CP rank: median and quartiles\n(runs that met the reference's stop rule)", fontsize=8)
    ax_rank.legend(fontsize=7)
    shape = "x".join(str(d) for d in cfg["shape"])
    fig.suptitle(f"{shape} tensor completion, rank-{cfg['target_rank']} target, R = {cfg['rank']}", fontsize=10, y=1.03)
    for ax in axes:
        ax.set_xlabel("number of observed entries")
        ax.grid(alpha=0.3)
    return save_figure(fig, out_dir, NAME)


def _range(v, fmt: str) -> str:
    v = np.asarray(v, float)
    return f"{np.nanmedian(v):{fmt}} [{np.nanmin(v):{fmt}}, {np.nanmax(v):{fmt}}]"


def summary(results) -> str:
    def row(i, s, j, n):
        ranks = ",".join(str(int(r)) if np.isfinite(r) else "nan" for r in np.asarray(results["cp_rank"][i, j], float))
        descended = np.asarray(results["descent_status"][i, j]) == Status.CONVERGED
        return (
            f"{s:>7.0e} {n:>5} {_range(results['error'][i, j], '9.1e')} "
            f"{_range(results['error_authors_stop'][i, j], '9.1e')} {ranks:>12} "
            f"{np.max(results['loss'][i, j]):>9.1e} {np.max(results['iterations'][i, j]):>7} "
            f"{descended.sum()}/{descended.size} {np.max(results['descent_steps'][i, j]):>7}"
        )

    header = (
        f"{'init':>7} {'obs':>5} {'rel. error: median [min, max]':>33} {'at the reference stop':>33} "
        f"{'CP ranks':>12} {'max loss':>9} {'iters':>7} {'to 1e-14':>8}"
    )
    table = grid_table(results, ("init_scale", "num_observed"), header, row)
    mem = [f"{'memorizer':>13} {'rel. error: median [min, max]':>33} {'CP ranks':>16}"]
    for j, n in enumerate(results.coords["num_observed"]):
        ranks = ",".join(str(int(r)) for r in np.asarray(results["memorizer_cp_rank"][j]))
        mem.append(f"{n:>13} {_range(results['memorizer_error'][j], '9.2e')} {ranks:>16}")
    return table + "\n\n" + "\n".join(mem)


# the claims: the paper's number of observations for its published errors, and its two init scales
PAPER_OBSERVED = 200
SMALL_INIT, LARGE_INIT = 1e-3, 1e-2


def _converged_only(results, name: str, **where):
    """``pick`` of ``name`` with NaN where the run did not meet the reference's stop rule."""
    v = pick(results, name, **where)
    status = pick(results, "status", **where)
    return None if v is None else np.where(status == Status.CONVERGED, np.asarray(v, float), np.nan)


def _worst_at_paper_count(v, results) -> np.ndarray:
    """(seed,): the largest of ``v`` (seed, init_scale) over the init scales (NaN when absent)."""
    return nan_per_seed(results) if v is None else v.max(axis=1)


def _recovery_error(results) -> np.ndarray:
    return _worst_at_paper_count(pick(results, "error", num_observed=PAPER_OBSERVED), results)


def _recovery_rank(results) -> np.ndarray:
    return _worst_at_paper_count(_converged_only(results, "cp_rank", num_observed=PAPER_OBSERVED), results)


def _init_error_ratios(results) -> np.ndarray | None:
    """(seed, num_observed): error(init 1e-2) / error(init 1e-3), or None without both inits."""
    small = pick(results, "error", init_scale=SMALL_INIT)
    large = pick(results, "error", init_scale=LARGE_INIT)
    return None if small is None or large is None else large / small


def _init_error_ratio(results) -> np.ndarray:
    """(seed,): error(init 1e-2) / error(init 1e-3) at ``PAPER_OBSERVED`` observations."""
    ratios = _init_error_ratios(results)
    if ratios is None or PAPER_OBSERVED not in results.coords["num_observed"]:
        return nan_per_seed(results)
    return ratios[:, results.coords["num_observed"].index(PAPER_OBSERVED)]


def _init_error_ratio_from_paper_count(results) -> np.ndarray:
    """(seed,): the smallest error(init 1e-2) / error(init 1e-3) over the counts from
    ``PAPER_OBSERVED`` on (NaN when the run has none)."""
    ratios = _init_error_ratios(results)
    counts = np.asarray(results.coords["num_observed"])
    if ratios is None or not np.any(counts >= PAPER_OBSERVED):
        return nan_per_seed(results)
    return ratios[:, counts >= PAPER_OBSERVED].min(axis=1)


def _init_rank_gap(results) -> np.ndarray:
    """(seed,): the mean over the observation counts where both runs met the reference's
    stop rule of CP rank(init 1e-2) - CP rank(init 1e-3) (NaN when none did)."""
    small = _converged_only(results, "cp_rank", init_scale=SMALL_INIT)  # (seed, num_observed)
    large = _converged_only(results, "cp_rank", init_scale=LARGE_INIT)
    if small is None or large is None:
        return nan_per_seed(results)
    gap = large - small
    both = np.isfinite(gap)
    return np.array([g[b].mean() if b.any() else np.nan for g, b in zip(gap, both)])


def _few_observations_error(results) -> np.ndarray:
    """(seed,): the smallest error over the init scales at the fewest observations of the run."""
    fewest = min(results.coords["num_observed"])
    return pick(results, "error", num_observed=fewest).min(axis=1)


def _memorizer_at_paper_count(name: str):
    def measure(results) -> np.ndarray:
        v = pick(results, name, num_observed=PAPER_OBSERVED)
        return nan_per_seed(results) if v is None else np.asarray(v, float)

    return measure


RAZIN_COHEN = "Razin & Cohen 2020 (NeurIPS), tensor completion figure (order 3, rank-1 target)"
CLAIMS = (
    Claim(
        id="recovers-rank-1-target",
        statement=(
            "With 200 observations the rank-1 target is recovered from every init scale: relative error below 0.1."
        ),
        source=RAZIN_COHEN,
        paper="at 200 observations: median error about 8e-3 at init 1e-2 and 5e-6 at init 1e-3 (5 repetitions)",
        quantity="largest ||W - W*|| / ||W*|| over the init scales at 200 observations",
        measure=_recovery_error,
        op="<",
        threshold=0.1,
    ),
    Claim(
        id="rank-1-solution",
        statement="With 200 observations the solution has the target's CP rank, 1, from every init scale.",
        source=RAZIN_COHEN,
        paper="CP rank 1 (the target's) at both inits from 100 observations on",
        quantity="largest CP rank (CP-ALS, MSE < cp_tol) over the init scales at 200 observations, converged runs",
        measure=_recovery_rank,
        op="<=",
        threshold=1,
    ),
    Claim(
        id="smaller-init-lower-error",
        statement="At 200 observations init 1e-3 ends with a lower reconstruction error than init 1e-2.",
        source=RAZIN_COHEN,
        paper="about 5e-6 at init 1e-3 against 8e-3 at init 1e-2 (about 1600x)",
        quantity="error(init 1e-2) / error(init 1e-3) at 200 observations",
        measure=_init_error_ratio,
        op=">",
        threshold=1.0,
    ),
    Claim(
        id="smaller-init-100x-lower-error",
        statement="At 200 observations init 1e-3 ends with an error at least 100 times below that of init 1e-2.",
        source=RAZIN_COHEN,
        paper="about 5e-6 at init 1e-3 against 8e-3 at init 1e-2 (about 1600x)",
        quantity="error(init 1e-2) / error(init 1e-3) at 200 observations",
        measure=_init_error_ratio,
        op=">=",
        threshold=100.0,
        expected=False,
        note=(
            "seed 2's init-1e-3 run (83x) ends its descent at the step cap with loss 3e-13, its "
            "error still falling with the loss (a second component shrinking sublinearly); at the reference's "
            "own stop the ratios are 2.5-320. A longer descent does not settle it: it lowers both inits' errors, "
            "init 1e-2's most (median at 200 observations 1.2e-3 -> 7.7e-4), and the paper preset "
            "(`jaxreg reproduce tensor-completion-observations --size paper`, 200,000 descent steps, about 15 min) gives 43-208x (3/5)"
        ),
    ),
    Claim(
        id="smaller-init-10x-lower-error-from-200",
        statement=(
            "At every count from 200 to 511 observations init 1e-3 ends with an error at least 10 times below "
            "that of init 1e-2."
        ),
        source=RAZIN_COHEN,
        paper="medians 100-1600x apart at every count from 200 to 511 (15-25x at 100 and 150, about 8x at 50)",
        quantity="smallest error(init 1e-2) / error(init 1e-3) over the counts from 200 on",
        measure=_init_error_ratio_from_paper_count,
        op=">=",
        threshold=10.0,
        expected=False,
        note=(
            "at every count where a seed fails (ratio 2-9) its init-1e-3 run ended the descent at "
            "the step cap with loss 7e-12 to 3.5e-10 and error 6e-5 to 1.1e-3, still approaching its limit "
            "sublinearly (the module docstring); the paper preset (`jaxreg reproduce tensor-completion-observations --size paper`) gives 1.9-71 (2/5)"
        ),
    ),
    Claim(
        id="smaller-init-lower-rank",
        statement=(
            "Init 1e-3 ends at a lower CP rank than init 1e-2, on average over the observation counts where both "
            "runs met the reference's stop rule."
        ),
        source=RAZIN_COHEN,
        paper="rank 4 at init 1e-2 against 1 at init 1e-3 at 50 observations, both 1 from 100 on (mean gap 0.3)",
        quantity="mean over observation counts of CP rank(init 1e-2) - CP rank(init 1e-3), converged runs",
        measure=_init_rank_gap,
        op=">",
        threshold=0.0,
        expected=False,
        note=(
            "both inits find rank 1 from 100 observations on, as published, so the gap lies at 50 "
            "observations alone, where it varies with each seed's target (ranks 1-5 at init 1e-3, 1-6 at init "
            "1e-2; seed 4 has rank 2 at both inits at 100); the published gap, 4 against 1, is one target's"
        ),
    ),
    Claim(
        id="few-observations-not-recovered",
        statement=(
            "From the fewest observations (50) no init scale recovers the target (error above 0.1, the line of "
            "recovers-rank-1-target): the implicit bias needs enough observations."
        ),
        source=RAZIN_COHEN,
        paper="at 50 observations: median error about 0.13 at init 1e-3 and about 1 at init 1e-2",
        quantity="smallest ||W - W*|| / ||W*|| over the init scales at the fewest observations",
        measure=_few_observations_error,
        op=">",
        threshold=0.1,
        expected=False,
        note=(
            "at 50 observations init 1e-3 recovers the target in seed 4 (error 2e-5) and nearly in "
            "seed 1 (0.06): 50 entries can determine a rank-1 8x8x8 tensor (22 parameters) and the small init "
            "often finds it; the published median at init 1e-3, 0.13, is itself near the rule's 0.1"
        ),
    ),
    Claim(
        id="memorizer-not-recovered",
        statement=(
            "Control: the memorizer (the least-norm unfactorized fit of the same 200 observations, zeros elsewhere) "
            "does not recover the target: error above 0.5."
        ),
        source=RAZIN_COHEN,
        paper="the linear model's error is about 0.75 at 200 observations (about 0.9 at 50 falling to 0.3 at 450, 0.07 at 511)",
        quantity="memorizer ||W - W*|| / ||W*|| at 200 observations",
        measure=_memorizer_at_paper_count("memorizer_error"),
        op=">",
        threshold=0.5,
    ),
    Claim(
        id="memorizer-high-rank",
        statement=(
            "Control: the memorizer of 200 observations has a high CP rank, at least 10, where the factorization "
            "finds rank 1."
        ),
        source=RAZIN_COHEN,
        paper="the linear model's CP rank is 17 at 200 observations (12-17 from 50 to 450, 2 at 511)",
        quantity="memorizer CP rank (CP-ALS, MSE < cp_tol) at 200 observations",
        measure=_memorizer_at_paper_count("memorizer_cp_rank"),
        op=">=",
        threshold=10,
    ),
)


class TensorCompletionObservations(Reproduction):
    """One run per seed: its target, its permuted observations and its initial models,
    one per init scale, are the inputs; nothing is carried. Chunk k runs the k'th number
    of observations (a traced scalar of :func:`masked_loss`), the init scales vmapped:
    the reference's runner, then the descent to ``descent_loss``. The CP ranks (CP-ALS,
    host side) and the memorizer control are computed in :meth:`assemble`."""

    name = NAME
    config = Config

    def outputs(self, config: Config) -> dict:
        return {
            **{k: ("init_scale", "num_observed", "seed") for k in OUTPUTS},
            **{k: ("num_observed", "seed") for k in MEMORIZER_OUTPUTS},
        }

    def setup(self, config: Config) -> Setup:
        keys = seed_keys(config.seed, config.seeds)
        targets, indices, values = _problems(config, keys)
        models = cp_models_per_scale(config, keys)
        coords = {
            "init_scale": list(config.init_scales),
            "num_observed": list(config.num_observed),
            "seed": list(range(config.seeds)),
        }
        inputs = (targets, indices, values, models)
        return Setup(inputs, jnp.zeros(config.seeds), len(config.num_observed), (config.seeds,), coords)

    def chunk(self, config: Config, inputs, state, k):
        target, idx, vals, models = inputs
        n = jnp.asarray(config.num_observed)[k]

        def loss(m):
            return masked_loss(m, idx, vals, n)

        def error(m):
            return jnp.linalg.norm((m.materialize() - target).ravel()) / jnp.linalg.norm(target.ravel())

        def one(model):
            fitted, fit_loss, status, iters = authors_descent(loss, model, config)
            tr = gradient_descent(
                loss,
                fitted,
                optax.sgd(config.descent_lr),
                config.descent_steps,
                save_every=config.descent_steps,
                stop_at_loss=config.descent_loss,
            )
            erank = component_norm_entropy_rank(tr.model.component_norms())
            out = {
                "w": tr.model.materialize(),
                "error": error(tr.model),
                "error_authors_stop": error(fitted),
                "component_norm_entropy_rank": erank,
                "loss": tr.loss[-1],
                "loss_authors_stop": fit_loss,
                "status": status,
                "iterations": iters,
                "descent_status": tr.status,
                "descent_steps": tr.num_steps,
            }
            return out

        out = eqx.filter_vmap(one)(models)
        # each (1, init_scale, ...): the driver concatenates the chunks along the observation counts
        out = {name: x[None] for name, x in out.items()}
        return state, jnp.max(out["status"]), out

    def assemble(self, config: Config, setup: Setup, final: Final) -> dict:
        w = final.data["w"]  # (seed, num_observed, init_scale, *shape)
        targets, indices, values, _ = setup.inputs

        def rank(t, seed):
            kw = dict(n_restarts=config.cp_restarts, seed=seed, n_iter_max=config.cp_iter_max)
            return cp_rank(t, config.cp_max_rank, config.cp_tol, **kw)

        cp_ranks = np.array(
            [[[rank(w_i, config.seed + s) for w_i in w_n] for w_n in w_s] for s, w_s in enumerate(w)], float
        )
        data = {**final.data, "cp_rank": cp_ranks}
        # (seed, num_observed, init_scale) -> (init_scale, num_observed, seed)
        arrays = {k: np.transpose(data[k], (2, 1, 0)) for k in OUTPUTS}
        mem_err = np.zeros((len(config.num_observed), config.seeds))
        mem_rank = np.zeros_like(mem_err)
        for s in range(config.seeds):
            t = np.asarray(targets[s])
            for j, n in enumerate(config.num_observed):
                m = memorizer(t, indices[s], values[s], n)
                mem_err[j, s] = np.linalg.norm(m - t) / np.linalg.norm(t)
                mem_rank[j, s] = rank(m, config.seed + s)
        return {**arrays, "memorizer_error": mem_err, "memorizer_cp_rank": mem_rank}

    def claims(self) -> tuple:
        return CLAIMS

    plot = staticmethod(plot)
    summary = staticmethod(summary)


REPRODUCTION = TensorCompletionObservations()
