"""Implicit regularization that no norm explains (Razin & Cohen, NeurIPS 2020).

The 2x2 completion problem of Razin & Cohen: the entries (0, 1), (1, 0), (1, 1) are
observed with values 1, 1, 0; the entry (0, 0) is not. Every zero-loss solution
[[x, 1], [1, 0]] has det = -1 and rank 2. A deep matrix factorization W = W_L ... W_1
(L >= 2) from a balanced initialization with det W(0) > 0 keeps det W(t) > 0 under
gradient flow (d det W / dt = -det(W) L tr(S^{1-2/L} U^T grad L(W) V)), so it can only
approach zero loss along W ~ [[x, 1], [1, 1/x]] with |x| -> infinity: as the loss goes
to zero, every Schatten quasi-norm ||W||_{S_p} = (sum_r sigma_r^p)^{1/p}, 0 < p <= 1
(and the nuclear norm, p = 1) grows without bound, while the effective rank falls to 1.
Implicit regularization here minimizes rank, not any norm.

Setting of the authors' code: depth 2, 3, 4, per-layer Gaussian init of std 8e-3
(their ``init_alpha``) resampled until det W(0) > 0, square loss on the three
observations, run until the loss is 1e-4. Here the flow is exact (diffrax, the implicit
Kvaerno5 solver: the flow is stiff once sigma_1 is large), the init is re-factorized to
be exactly balanced (the theorem's assumption), and det W(0) > 0 is enforced by
reflecting W(0) = U S V^T to U diag(-1, 1) S V^T when needed (the law of a Gaussian
product is invariant under left rotations, so this equals resampling). The loss is
jaxreg's mean over the three observations (the reference's sum / 2 is 1.5 times it).

Float64 limit: the smallest singular value sigma_2 = det W / sigma_1 decays in time, for
depth 2 exponentially (d sigma_2/dt = 2 sigma_2 gamma_2); once sigma_2 / sigma_1 falls
below about 1e-16 the integrator can no longer keep det W > 0 and the run falls onto a
finite zero-loss solution with det = -1. Save points after the sign of det W changed are
marked invalid (``valid``) and left out of the figure and the summary.
"""

from __future__ import annotations

import dataclasses
import functools

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import seed_keys
from jaxreg import validation as V
from jaxreg.dynamics import gradient_flow
from jaxreg.factorizations import MatrixFactorization
from jaxreg.tasks import Observations, Problem
from jaxreg_lab.claims import Claim
from jaxreg_lab.contract import Final, Reproduction, Setup
from jaxreg_lab.reproductions._config import FlowTolerances, Saves, Seeds, check_scalar_fields
from jaxreg_lab.reproductions._results import nan_per_seed, per_seed, pick, solver_options

NAME = "norms-counterexample"
SHAPE = (2, 2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(Seeds, FlowTolerances, Saves):
    """Razin & Cohen 2020 (noamrazin/imp_reg_dl_not_norms): depths 2/3/4, per-layer
    init std 8e-3 (the paper preset; 0.1 by default, which shortens the initial plateau).
    They stopped at loss 1e-4 in their sum / 2 (6.7e-5 in jaxreg's mean); here every run
    goes to ``t1`` (save times log-spaced from ``t_first``), which reaches ~1e-6."""

    seeds: int = 3
    num_saves: int = 120
    num_chunks: int = 4
    rtol: float = 1e-8
    atol: float = 1e-12

    depths: tuple[int, ...] = (2, 3, 4)
    init_std: float = 0.1
    t_first: float = 1.0
    t1: float = 1e6
    schatten_p: tuple[float, ...] = (1.0, 0.5, 0.25)
    loss_from: float = 1e-2
    positive_det: bool = True

    TINY = dict(depths=(3,), seeds=2, t1=1e5, num_saves=40, num_chunks=2)
    PAPER = dict(init_std=8e-3, seeds=5, t1=1e8, num_saves=200, max_steps=400_000)

    def __post_init__(self):
        for name in ("depths", "schatten_p"):
            value = tuple(getattr(self, name))
            if not value:
                raise ValueError(f"{name} must not be empty")
            object.__setattr__(self, name, value)
        for d in self.depths:
            if V.positive_int("depths", d) < 2:
                raise ValueError(f"depths must be >= 2 (depth 1 fits [[x, 1], [1, 0]] at finite norm), got {d}")
        for p in self.schatten_p:
            if not 0 < float(p) <= 1:
                raise ValueError(f"schatten_p must lie in (0, 1], got {p}")
        check_scalar_fields(self)
        if self.t_first >= self.t1:
            raise ValueError(f"t_first ({self.t_first}) must be below t1 ({self.t1})")
        if self.num_saves % self.num_chunks:
            raise ValueError(f"num_saves ({self.num_saves}) must be a multiple of num_chunks ({self.num_chunks})")


def problem() -> Problem:
    """Observed W[0, 1] = W[1, 0] = 1, W[1, 1] = 0; the test entry is W[0, 0] (value 0)."""
    target = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    train = Observations(jnp.array([1.0, 1.0, 0.0]), indices=jnp.array([[0, 1], [1, 0], [1, 1]]))
    test = Observations(jnp.array([0.0]), indices=jnp.array([[0, 0]]))
    return Problem("completion", SHAPE, target, train, test)


def initial_model(key, depth: int, init_std: float, positive_det: bool) -> MatrixFactorization:
    """Balanced factorization of a product of Gaussian layers of std ``init_std``, with
    det W(0) of the requested sign (W_1's first row negated: W(0) -> U D S V^T)."""
    scale = init_std**depth * 2.0 ** (depth / 2)  # jaxreg's init_scale for per-layer std init_std
    model = MatrixFactorization(key, SHAPE, depth, init_scale=scale, balanced=True)
    det = jnp.linalg.det(model.materialize())
    flip = (det > 0) != positive_det
    first = model.factors[0]
    first = first.at[0].set(jnp.where(flip, -first[0], first[0]))
    return eqx.tree_at(lambda m: m.factors[0], model, first)


def save_times(config: Config) -> np.ndarray:
    return np.geomspace(config.t_first, config.t1, config.num_saves)


def growth(results, d_i: int, s_i: int, p_i: int = 0):
    """For one run: (loss, ||W||_{S_p}, effective rank) where the loss first fell below
    ``loss_from`` and at the last valid save point; None if the run never got there."""
    loss = results["loss"][d_i, s_i]
    ok = results["valid"][d_i, s_i].astype(bool)
    below = np.flatnonzero(ok & (loss <= results.config["loss_from"]))
    if below.size == 0:
        return None
    first, last = below[0], np.flatnonzero(ok)[-1]
    norm = results["schatten_norm"][d_i, s_i, :, p_i]
    erank = results["effective_rank"][d_i, s_i]
    return (loss[first], norm[first], erank[first]), (loss[last], norm[last], erank[last])


def plot(results, out_dir):
    import matplotlib.pyplot as plt

    from jaxreg_lab.plotting import save_figure, style_axes

    c = results.coords
    depths, ps = c["depth"], c["p"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.85, len(depths)))
    styles = ["-", "--", ":", "-."]
    for d_i, d in enumerate(depths):
        for s_i in range(len(c["seed"])):
            ok = results["valid"][d_i, s_i].astype(bool)
            loss = results["loss"][d_i, s_i][ok]
            label = s_i == 0
            for p_i, p in enumerate(ps):
                axes[0].plot(
                    loss,
                    results["schatten_norm"][d_i, s_i, ok, p_i],
                    color=colors[d_i],
                    ls=styles[p_i % len(styles)],
                    lw=1.2,
                    label=f"depth {d}, p = {p:g}" if label else None,
                )
            axes[1].plot(
                loss,
                np.abs(results["matrix"][d_i, s_i, ok, 0, 0]),
                color=colors[d_i],
                lw=1.2,
                label=f"depth {d}" if label else None,
            )
            axes[2].plot(
                loss,
                results["effective_rank"][d_i, s_i][ok] - 1.0,
                color=colors[d_i],
                lw=1.2,
                label=f"depth {d}" if label else None,
            )
    titles = [
        "Schatten-p quasi-norms (p = 1: nuclear)",
        "|unobserved entry W[0, 0]|",
        "effective rank - 1 (its minimum is 1)",
    ]
    for ax, title in zip(axes, titles):
        style_axes(ax, xlabel="train loss (decreasing)", title=title, xscale="log", yscale="log", legend=True)
        ax.invert_xaxis()
    fig.suptitle("2x2 completion, det W(0) > 0: loss -> 0 drives every norm up and the rank down", fontsize=10)
    return save_figure(fig, out_dir, NAME)


def summary(results) -> str:
    c, lf = results.coords, results.config["loss_from"]
    lines = [
        f"{'depth':>5} {'seed':>4} {'loss range':>21} {'nuclear norm':>19} {'growth':>8} {'eff. rank - 1':>21}  "
        "other Schatten-p growth"
    ]
    for d_i, d in enumerate(c["depth"]):
        for s_i in range(len(c["seed"])):
            g = growth(results, d_i, s_i)
            if g is None:
                lines.append(f"{d:>5} {s_i:>4}  never reached loss {lf:g}")
                continue
            (l0, n0, e0), (l1, n1, e1) = g
            others = [growth(results, d_i, s_i, p_i) for p_i in range(1, len(c["p"]))]
            rest = " ".join(f"p={p:g}: {b[1] / a[1]:.3g}x" for p, (a, b) in zip(c["p"][1:], others))
            cut = "" if results["valid"][d_i, s_i, -1] else "  (det W changed sign in float64 after this loss)"
            lines.append(
                f"{d:>5} {s_i:>4} {l0:9.2e} -> {l1:9.2e} {n0:8.3g} -> {n1:8.3g} {n1 / n0:7.3g}x "
                f"{e0 - 1:9.2e} -> {e1 - 1:9.2e}  {rest}{cut}"
            )
    return "\n".join(lines)


def last_decade(results, depth: int) -> list[tuple[int, int] | None]:
    """Per seed, the save indices (i0, i1) of the run's last decade of loss below
    ``loss_from``: i1 its last valid save, i0 the last valid save before it with
    loss_from >= loss >= 10 loss[i1]; None where the valid run spans no such decade (the
    loss did not go to zero) or lacks ``depth``.

    Arguments:
        results: loaded results.
        depth: the depth.

    Returns:
        One (i0, i1) or None per seed.
    """
    loss, valid = pick(results, "loss", depth=depth), pick(results, "valid", depth=depth)
    if loss is None:
        return [None] * len(results.coords["seed"])
    spans = []
    for loss_s, valid_s in zip(loss, valid):
        ok = np.flatnonzero(valid_s.astype(bool) & np.isfinite(loss_s))
        if ok.size == 0:
            spans.append(None)
            continue
        i1 = ok[-1]
        before = ok[(ok < i1) & (loss_s[ok] >= 10 * loss_s[i1]) & (loss_s[ok] <= results.config["loss_from"])]
        spans.append((before[-1], i1) if before.size else None)
    return spans


def norm_exponent(results, depth: int) -> np.ndarray:
    """(seed,): the exponent k of ||W||_{S_p} ~ loss^{-k} over each run's last decade of
    loss (:func:`last_decade`), k = log(n1 / n0) / log(l0 / l1), the smallest over the
    Schatten p's; NaN where there is no such decade. Along W ~ [[x, 1], [1, 1/x]] the
    mean loss is 1 / (3 x^2), so every norm grows like |x| = (3 loss)^{-1/2}: k -> 1/2."""
    out = nan_per_seed(results)
    for s, span in enumerate(last_decade(results, depth)):
        if span is not None:
            (i0, i1), d_i = span, results.coords["depth"].index(depth)
            loss, norms = results["loss"][d_i, s], results["schatten_norm"][d_i, s]  # norms: (time, p)
            out[s] = np.min(np.log(norms[i1] / norms[i0])) / np.log(loss[i0] / loss[i1])
    return out


def final_rank_excess(results, depth: int) -> np.ndarray:
    """(seed,): effective rank - 1 (its minimum is 0) at the end of each run's last decade
    of loss (:func:`last_decade`); NaN where there is no such decade."""
    out = nan_per_seed(results)
    for s, span in enumerate(last_decade(results, depth)):
        if span is not None:
            out[s] = results["effective_rank"][results.coords["depth"].index(depth), s, span[1]] - 1.0
    return out


RAZIN = "Razin & Cohen 2020, Theorem 1 and the 2x2 experiment"
FLOAT64 = (
    "undefined: depth 2's sigma_2 / sigma_1 reaches float64 round-off and det W flips sign before "
    "the loss falls a decade below loss_from, so no valid decade is left (the module's float64 limit)"
)


def _depth_claims(depth: int) -> tuple[Claim, ...]:
    """Depth ``depth``'s two claims: the norms grow without bound, the effective rank falls to 1."""
    known = {"expected": False, "note": FLOAT64} if depth == 2 else {}  # the float64 limit above
    return (
        Claim(
            id=f"norms-grow-depth-{depth}",
            statement=f"At depth {depth}, every Schatten quasi-norm of W still grows as a power of 1/loss as the loss goes to zero.",
            source=RAZIN,
            paper="as the loss goes to zero, every norm and quasi-norm of W grows towards infinity (depths 2, 3, 4)",
            quantity="min over the Schatten p of k in ||W||_{S_p} ~ loss^{-k} over the last decade of the loss",
            measure=functools.partial(norm_exponent, depth=depth),
            op=">",
            threshold=0.25,  # half the 1/2 of W ~ [[x, 1], [1, 1/x]]: the norm keeps growing
            **known,
        ),
        Claim(
            id=f"rank-falls-depth-{depth}",
            statement=f"At depth {depth}, the effective rank of W falls to its minimum 1 as the loss goes to zero.",
            source=RAZIN,
            paper="the effective rank of W tends to its infimum 1 (rank minimization, not norm minimization)",
            quantity="effective rank - 1 at the end of the last decade of the loss",
            measure=functools.partial(final_rank_excess, depth=depth),
            op="<",
            threshold=0.01,  # within 1% of its minimum
            **known,
        ),
    )


CLAIMS = _depth_claims(2) + _depth_claims(3) + _depth_claims(4)


class NormsCounterexample(Reproduction):
    """One run per seed: one model per depth (the state; the problem is the same for
    every run), integrated through the save times in ``num_chunks`` segments."""

    name = NAME
    config = Config

    def outputs(self, config: Config) -> dict:
        return {
            "loss": ("depth", "seed", "time"),
            "matrix": ("depth", "seed", "time", "row", "col"),
            "singular_values": ("depth", "seed", "time", "component"),
            "schatten_norm": ("depth", "seed", "time", "p"),
            "effective_rank": ("depth", "seed", "time"),
            "determinant": ("depth", "seed", "time"),
            "valid": ("depth", "seed", "time"),
        }

    def setup(self, config: Config) -> Setup:
        keys = seed_keys(config.seed, config.seeds)
        models = tuple(
            per_seed(lambda k, d=d: initial_model(k, d, config.init_std, config.positive_det), keys)
            for d in config.depths
        )
        coords = {
            "depth": list(config.depths),
            "seed": list(range(config.seeds)),
            "time": save_times(config).tolist(),
            "row": [0, 1],
            "col": [0, 1],
            "component": [1, 2],
            "p": [float(x) for x in config.schatten_p],
        }
        return Setup(None, models, config.num_chunks, (config.seeds,), coords)

    def chunk(self, config: Config, inputs, models, k):
        prob = problem()
        ts = save_times(config)
        per_chunk = config.num_saves // config.num_chunks
        starts = jnp.asarray(np.concatenate([[0.0], ts[per_chunk - 1 :: per_chunk][:-1]]))
        chunk_ts = jax.lax.dynamic_slice(jnp.asarray(ts), (k * per_chunk,), (per_chunk,))
        t0 = starts[k]

        def metrics(m):
            return m.materialize(), prob.loss(m)

        new, ws, losses, status = [], [], [], []
        for model in models:
            tr = gradient_flow(
                prob.loss,
                model,
                chunk_ts[-1] - t0,
                ts=chunk_ts - t0,
                metrics=metrics,
                solver=diffrax.Kvaerno5(),
                **solver_options(config),
            )
            new.append(tr.model)
            ws.append(tr.metrics[0])
            losses.append(tr.metrics[1])
            status.append(tr.status)
        # (time, depth, ...): the driver concatenates the chunks along the saved times
        outputs = {"matrix": jnp.stack(ws, axis=1), "loss": jnp.stack(losses, axis=1)}
        return tuple(new), jnp.max(jnp.stack(status)), outputs  # the run's worst over its depths

    def assemble(self, config: Config, setup: Setup, final: Final) -> dict:
        w, loss = (np.moveaxis(final.data[n], 2, 0) for n in ("matrix", "loss"))  # (depth, seed, time, ...)
        sv = np.linalg.svd(np.where(np.isfinite(w), w, 0.0), compute_uv=False)
        det = np.linalg.det(np.where(np.isfinite(w), w, 0.0))
        det0 = np.stack([np.linalg.det(np.asarray(m.materialize())) for m in setup.state])  # (depth, seed)
        # valid while finite and det W keeps the sign of det W(0) (numerically lost, see above)
        valid = np.isfinite(loss) & (np.sign(det) == np.sign(det0)[..., None])
        valid = np.logical_and.accumulate(valid, axis=-1)
        p = np.asarray(config.schatten_p)
        schatten = np.sum(sv[..., None, :] ** p[:, None], axis=-1) ** (1.0 / p)  # (depth, seed, time, p)
        q = sv / np.sum(sv, axis=-1, keepdims=True)
        erank = np.exp(-np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0), axis=-1))
        return {
            "loss": loss,
            "matrix": w,
            "singular_values": sv,
            "schatten_norm": schatten,
            "effective_rank": erank,
            "determinant": det,
            "valid": valid,
        }

    def claims(self) -> tuple:
        return CLAIMS

    plot = staticmethod(plot)
    summary = staticmethod(summary)


REPRODUCTION = NormsCounterexample()
