"""Singular-value dynamics against depth, and the gradient's alignment (Arora et al. 2019).

Arora, Cohen, Hu, Luo (NeurIPS 2019), Fig. 3, top row (the dynamics figure).

Depths 1, 2, 3 complete the same matrix from the same balanced small init (identity,
W_j = a^{1/L} I, as in the authors' dynamics configuration). Under a balanced init the
singular values of W obey d sigma_r/dt = L (sigma_r^2)^{1-1/L} gamma_r with
gamma_r = <-grad L(W), u_r v_r^T> (their Theorem 3). For L = 1 the rate does not depend
on sigma_r and all singular values move at once; for L >= 2 the factor sigma_r^{2-2/L}
holds small ones back, so they are learned one at a time, and the larger the exponent
the sharper each rise compared with the gaps between them.

Measured here, per depth and seed: the time at which sigma_r first reaches q times its
final value (q = 0.1, 0.5, 0.9), and from it
- ``separation``: the mean gap between consecutive half-times of the top ``rank``
  singular values divided by their mean 10%-90% rise time (0 when they rise together);
- ``half_time_ratio``: the half-time of sigma_rank over that of sigma_1.
And, as their code logs it, the alignment of the gradient with W's singular vectors: the
mean of |diag(U^T grad L(W) V)| against the mean of its off-diagonal entries.

``dataset`` "synthetic" (the tiny and small presets) is the top row of the paper's
Fig. 3: the completion of a random 100x100 rank-5 matrix from 2000 observed entries, the
problem of ``matrix-dynamics``. "movielens-100k" (the paper preset) is its bottom row:
"training on 10000 entries chosen randomly from the MovieLens 100K dataset (completion
of a 943 x 1682 matrix)" (their caption), the raw ratings 1..5 as the values (their code
does not normalize them); per seed ``num_observed`` ratings drawn without replacement for
training, the other ratings held out: with no ground truth, ``test_error`` (the mean
squared error over the held-out ratings) replaces ``reconstruction_error``, and ``rank``
(5) is how many leading singular values the rise analysis follows. The ratings are read
by :mod:`jaxreg_lab.datasets` (``jaxreg data fetch movielens-100k``). Its end times ``t1``
are an estimate from the gradient's scale at the start (for 10,000 ratings of mean 3.5
spread evenly over the matrix, the top singular value of the gradient is about 6e-3, so
the leading rise of depth 2 from 1e-3 ends near t = 1000), not yet checked on the real
ratings.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import seed_keys
from jaxreg import validation as V
from jaxreg.factorizations import MatrixFactorization
from jaxreg.factorizations.matrix import INITS
from jaxreg.problem import Observations, Problem
from jaxreg.tasks import matrix_completion
from jaxreg_lab.claims import Claim
from jaxreg_lab.contract import Final, Reproduction, Setup
from jaxreg_lab.datasets import DataError
from jaxreg_lab.reproductions._config import CompletionTarget, FlowTolerances, Saves, Seeds, check_scalar_fields
from jaxreg_lab.reproductions._results import HighError, flow_segment, nan_per_seed, per_seed, pick
from jaxreg_lab.reproductions._transitions import crossing_times, separate_rises

NAME = "matrix-dynamics-depth"

# the runs that reach their stop criterion without recovering the target, named in the
# footer of the summary (jaxreg_lab.reproductions._results.status_report)
HIGH_ERROR = HighError.final("reconstruction_error", "rel. reconstruction error at t1")
LEVELS = (0.1, 0.5, 0.9)
DATASETS = ("synthetic", "movielens-100k")
MOVIELENS_SHAPE = (943, 1682)  # users x movies


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(Seeds, FlowTolerances, Saves, CompletionTarget):
    """Arora et al. 2019: 100x100, rank 5, 2000 observations, identity init 1e-3; one
    factorization per depth in ``depths``, integrated to its own time in ``t1``."""

    seeds: int = 3
    depths: tuple[int, ...] = (1, 2, 3)
    t1: tuple[float, ...] = (4000.0, 2000.0, 3000.0)
    init: str = "identity"
    dataset: str = "synthetic"

    TINY = dict(
        shape=(30, 30),
        rank=3,
        num_observed=300,
        t1=(1000.0, 600.0, 600.0),
        init_scale=1e-2,
        num_saves=60,
        num_chunks=2,
        top=5,
        seeds=1,
    )
    # the bottom row of their Fig. 3: 10,000 random MovieLens 100k ratings of the 943 x 1682 matrix
    PAPER = dict(
        seeds=5, dataset="movielens-100k", shape=MOVIELENS_SHAPE, num_observed=10_000, t1=(20000.0, 10000.0, 10000.0)
    )

    def __post_init__(self):
        V.choice("dataset", self.dataset, DATASETS)
        object.__setattr__(self, "shape", V.shape_tuple("shape", self.shape, order=2))
        if self.dataset == "movielens-100k" and self.shape != MOVIELENS_SHAPE:
            raise ValueError(f"shape must be the ratings' {MOVIELENS_SHAPE} (users x movies), got {self.shape}")
        if self.dataset == "movielens-100k" and self.num_observed >= 100_000:
            raise ValueError(f"num_observed must leave held-out ratings of the 100,000, got {self.num_observed}")
        for name in ("depths", "t1"):
            value = tuple(getattr(self, name))
            if not value:
                raise ValueError(f"{name} must not be empty")
            object.__setattr__(self, name, value)
        if len(self.t1) != len(self.depths):
            raise ValueError(f"t1 needs one end time per depth ({len(self.depths)}), got {len(self.t1)}")
        for d in self.depths:
            V.positive_int("depths", d)
        for t in self.t1:
            V.positive_float("t1", t)
        check_scalar_fields(self)
        V.choice("init", self.init, INITS)
        if self.rank > self.top:
            raise ValueError(f"top ({self.top}) must be at least rank ({self.rank})")
        if self.num_saves % self.num_chunks:
            raise ValueError(f"num_saves ({self.num_saves}) must be a multiple of num_chunks ({self.num_chunks})")
        if self.num_observed >= self.shape[0] * self.shape[1]:
            raise ValueError(f"num_observed must be below {self.shape[0] * self.shape[1]}, got {self.num_observed}")


def ratings_completion(key, users, items, ratings, shape, num_observed: int) -> Problem:
    """A completion problem on observed ratings: ``num_observed`` of them drawn without
    replacement for training, the others held out (there is no ground truth matrix).

    Arguments:
        key: PRNG key of the draw.
        users, items, ratings: (k,) arrays, 0-based row and column indices and values.
        shape: the matrix shape (rows, columns).
        num_observed: the number of training ratings.

    Returns:
        The completion :class:`~jaxreg.problem.Problem` (``target`` None).
    """
    order = jax.random.permutation(key, len(ratings))
    indices = jnp.stack([jnp.asarray(users), jnp.asarray(items)], axis=1).astype(jnp.int32)[order]
    values = jnp.asarray(ratings, dtype=jnp.result_type(float))[order]
    k = num_observed
    return Problem(
        kind="completion",
        shape=tuple(shape),
        target=None,
        train=Observations(values[:k], indices=indices[:k]),
        test=Observations(values[k:], indices=indices[k:]),
    )


def alignment(problem, model) -> tuple[jax.Array, jax.Array]:
    """Means of |diag(U^T grad L(W) V)| and of its off-diagonal entries, W = U S V^T."""
    w = model.materialize()
    g = jax.grad(problem.end_to_end_loss)(w)
    u, _, vt = jnp.linalg.svd(w, full_matrices=False)
    a = jnp.abs(u.T @ g @ vt.T)
    k = a.shape[0]
    diag = jnp.trace(a) / k
    return diag, (jnp.sum(a) - jnp.trace(a)) / (k * k - k)


def level_times(ts, sv, levels=LEVELS) -> np.ndarray:
    """(..., component, level): first save time at which sigma_r >= q sigma_r(final)."""
    sv = np.asarray(sv)  # (..., time, component)
    final = sv[..., -1:, :]
    out = []
    for q in levels:
        reached = sv >= q * final
        first = np.argmax(reached, axis=-2)
        out.append(np.where(reached.any(axis=-2), np.asarray(ts)[first], np.nan))
    return np.stack(out, axis=-1)


def separation(times, rank: int):
    """Mean gap between consecutive half-times of sigma_1..sigma_rank over their mean
    10%-90% rise time; and the half-time ratio sigma_rank / sigma_1."""
    t10, t50, t90 = times[..., :rank, 0], times[..., :rank, 1], times[..., :rank, 2]
    gaps = np.mean(np.diff(t50, axis=-1), axis=-1)
    return gaps / np.mean(t90 - t10, axis=-1), t50[..., -1] / t50[..., 0]


def _top(config: Config) -> int:
    return min(config.top, *config.shape)


def plot(results, out_dir):
    import matplotlib.pyplot as plt

    from jaxreg_lab.plotting import save_figure, style_axes

    c = results.coords
    depths = c["depth"]
    rank = results.config["rank"]
    fig, axes = plt.subplots(1, len(depths) + 1, figsize=(4.2 * (len(depths) + 1), 3.8))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(c["component"])))
    for d_i, d in enumerate(depths):
        ax = axes[d_i]
        ts = results["flow_time"][d_i]
        for r in range(len(c["component"])):
            ax.plot(
                ts,
                results["singular_values"][d_i, 0, :, r],
                color=colors[r],
                lw=1.5,
                label=f"sigma_{r + 1}" if r < rank else None,
            )
        for t in results["level_time"][d_i, 0, :rank, 1]:
            ax.axvline(t, color="0.6", lw=0.6, ls=":")
        ax.set_xlabel("gradient flow time t")
        ax.set_title(f"depth {d}: separation {results['separation'][d_i].mean():.2f}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("singular values of W (dotted: half-times)")
    axes[0].legend(fontsize=7)
    ax = axes[-1]
    dcolors = plt.get_cmap("plasma")(np.linspace(0, 0.8, len(depths)))
    for d_i, d in enumerate(depths):
        ax.plot(c["time"], results["diag_alignment"][d_i, 0], color=dcolors[d_i], lw=1.5, label=f"depth {d}: diagonal")
        ax.plot(
            c["time"],
            results["offdiag_alignment"][d_i, 0],
            color=dcolors[d_i],
            lw=1.2,
            ls="--",
            label=f"depth {d}: off-diagonal",
        )
    style_axes(
        ax,
        xlabel="t / t1 (each depth's own end time)",
        title="mean |U^T grad L(W) V|: diagonal vs off-diagonal",
        yscale="log",
        legend=True,
    )
    return save_figure(fig, out_dir, NAME)


def summary(results) -> str:
    c = results.coords
    rank = results.config["rank"]
    error = "reconstruction_error" if "reconstruction_error" in results.arrays else "test_error"
    lines = [
        f"{'depth':>5} {'separation':>10} {'t50 ratio':>9} {error.split('_')[0] + ' error':>10} {'diag/off-diag':>13}  "
        f"half-times of sigma_1..sigma_{rank} (seed 0)"
    ]
    for d_i, d in enumerate(c["depth"]):
        ratio = results["diag_alignment"][d_i] / results["offdiag_alignment"][d_i]
        half = " ".join(f"{t:7.4g}" for t in results["level_time"][d_i, 0, :rank, 1])
        lines.append(
            f"{d:>5} {results['separation'][d_i].mean():>10.3f} {results['half_time_ratio'][d_i].mean():>9.3f} "
            f"{results[error][d_i, :, -1].mean():>10.3e} {np.median(ratio):>13.3g}  {half}"
        )
    lines.append(
        "separation: mean gap between consecutive half-times / mean 10%-90% rise time (mean over seeds);"
        " diag/off-diag: median over time and seeds"
    )
    return "\n".join(lines)


def rises(results, depth: int) -> np.ndarray:
    """(seed,): how many separate rises (:func:`separate_rises`: a new one where a half-time
    is at least 1.2x the previous) the ``rank`` leading singular values make at ``depth``,
    their half-times interpolated between saves (:func:`crossing_times`); NaN without that depth."""
    sv, ts = pick(results, "singular_values", depth=depth), pick(results, "flow_time", depth=depth)
    if sv is None:
        return nan_per_seed(results)
    rank = results.config["rank"]
    return np.asarray([separate_rises(crossing_times(ts, s, rank)) for s in sv], float)


def rises_per_rank(results, depth: int) -> np.ndarray:
    """(seed,): :func:`rises` at ``depth`` over the target's rank (1: one at a time)."""
    return rises(results, depth) / results.config["rank"]


def separation_gain(results) -> np.ndarray:
    """(seed,): separation at depth 3 minus separation at depth 2 (positive: sharper with depth)."""
    sep3, sep2 = pick(results, "separation", depth=3), pick(results, "separation", depth=2)
    return nan_per_seed(results) if sep3 is None or sep2 is None else sep3 - sep2


def alignment_ratio(results) -> np.ndarray:
    """(seed,): min over depths of the median over time of mean |diag(U^T grad L(W) V)| over
    the mean off-diagonal entry (1 for a gradient unaligned with W's singular vectors)."""
    ratio = results["diag_alignment"] / results["offdiag_alignment"]  # (depth, seed, time)
    return np.min(np.median(ratio, axis=-1), axis=0)


ARORA = "Arora et al. 2019, Fig. 3 (top row)"
SIMILAR = (
    "the value is separate rises over the rank (0.4: 2 rises of 5; each seed's value is in the table): the random "
    "target's leading singular values are close in size, so some of them rise together"
)
CLAIMS = (
    Claim(
        id="depth-1-all-at-once",
        statement="Depth 1 (the control) moves all the leading singular values at once: one rise.",
        source=ARORA,
        paper="depth 1: the singular values move together",
        quantity="separate rises of the rank leading singular values at depth 1",
        measure=functools.partial(rises, depth=1),
        op="==",
        threshold=1,
    ),
    Claim(
        id="depth-2-one-at-a-time",
        statement="Depth 2 learns the leading singular values one at a time: a separate rise each.",
        source=ARORA,
        paper="depth 2: the singular values are learned separately, one after another",
        quantity="separate rises of the rank leading singular values at depth 2, over the rank",
        measure=functools.partial(rises_per_rank, depth=2),
        op=">=",
        threshold=1,
        expected=False,
        note=SIMILAR,
    ),
    Claim(
        id="depth-3-one-at-a-time",
        statement="Depth 3 learns the leading singular values one at a time: a separate rise each.",
        source=ARORA,
        paper="depth 3: the singular values are learned separately, one after another",
        quantity="separate rises of the rank leading singular values at depth 3, over the rank",
        measure=functools.partial(rises_per_rank, depth=3),
        op=">=",
        threshold=1,
        expected=False,
        note=SIMILAR,
    ),
    Claim(
        id="sharper-with-depth",
        statement="The rises are further apart, relative to their width, at depth 3 than at depth 2.",
        source=ARORA,
        paper="the separation between the singular values' rises grows with depth",
        quantity="separation (mean gap between consecutive half-times / mean 10%-90% rise time), depth 3 minus depth 2",
        measure=separation_gain,
        op=">",
        threshold=0.0,
    ),
    Claim(
        id="gradient-aligned",
        statement="The gradient is aligned with W's singular vectors: U^T grad L(W) V is dominated by its diagonal.",
        source=ARORA,
        paper="U^T grad L(W) V is close to diagonal throughout training (right column)",
        quantity="min over depths of the median over time of mean |diagonal| / mean |off-diagonal|",
        measure=alignment_ratio,
        op=">",
        threshold=2.0,
    ),
)


class MatrixDynamicsDepth(Reproduction):
    """One run per seed: its problem (the input) and one model per depth (the state),
    each depth integrated in ``num_chunks`` segments of its own flow time ``t1 / num_chunks``."""

    name = NAME
    config = Config

    def _flow_outputs(self, config: Config) -> tuple[str, ...]:
        error = "reconstruction_error" if config.dataset == "synthetic" else "test_error"
        return ("loss", "singular_values", error, "diag_alignment", "offdiag_alignment")

    def outputs(self, config: Config) -> dict:
        return {
            "singular_values": ("depth", "seed", "time", "component"),
            "loss": ("depth", "seed", "time"),
            self._flow_outputs(config)[2]: ("depth", "seed", "time"),
            "diag_alignment": ("depth", "seed", "time"),
            "offdiag_alignment": ("depth", "seed", "time"),
            "flow_time": ("depth", "time"),
            "level_time": ("depth", "seed", "component", "level"),
            "separation": ("depth", "seed"),
            "half_time_ratio": ("depth", "seed"),
        }

    def setup(self, config: Config) -> Setup:
        keys = seed_keys(config.seed, config.seeds)
        if config.dataset == "synthetic":
            problems = per_seed(lambda k: matrix_completion(k, config.shape, config.rank, config.num_observed), keys)
            record = {"name": "synthetic", "source": "jaxreg.tasks.matrix_completion"}
        else:
            from jaxreg_lab.datasets import load_movielens_100k

            data = load_movielens_100k()
            if (int(data.users.max()) + 1, int(data.items.max()) + 1) != MOVIELENS_SHAPE:
                raise DataError(f"{data.record['name']}: the ratings do not span {MOVIELENS_SHAPE} users x movies")
            problems = per_seed(
                lambda k: ratings_completion(
                    k, data.users, data.items, data.ratings, config.shape, config.num_observed
                ),
                keys,
            )
            record = data.record
        models = tuple(
            per_seed(
                lambda k, d=d: MatrixFactorization(
                    jax.random.fold_in(k, 1),
                    config.shape,
                    d,
                    init=config.init,
                    init_scale=config.init_scale,
                    balanced=True,
                ),
                keys,
            )
            for d in config.depths
        )
        coords = {
            "depth": list(config.depths),
            "seed": list(range(config.seeds)),
            "time": np.linspace(1.0 / config.num_saves, 1.0, config.num_saves).tolist(),
            "component": list(range(1, _top(config) + 1)),
            "level": list(LEVELS),
        }
        return Setup(problems, models, config.num_chunks, (config.seeds,), coords, {"data": record})

    def chunk(self, config: Config, problem, models, k):
        top = _top(config)
        # no ground truth for ratings: the error on the held-out ones
        error = problem.reconstruction_error if config.dataset == "synthetic" else problem.test_loss

        def metrics(m):
            return (m.component_norms()[:top], error(m), *alignment(problem, m))

        per_chunk = config.num_saves // config.num_chunks
        new, outs, status = [], [], []
        for model, t1 in zip(models, config.t1):
            traj = flow_segment(problem, model, t1 / config.num_chunks, per_chunk, config, metrics=metrics)
            new.append(traj.model)
            outs.append((traj.loss, *traj.metrics))
            status.append(traj.status)
        # (time, depth, ...): the driver concatenates the chunks along the saved times
        data = {n: jnp.stack([o[i] for o in outs], axis=1) for i, n in enumerate(self._flow_outputs(config))}
        return tuple(new), jnp.max(jnp.stack(status)), data  # the run's worst over its depths

    def assemble(self, config: Config, setup: Setup, final: Final) -> dict:
        data = {n: np.moveaxis(final.data[n], 2, 0) for n in self._flow_outputs(config)}  # (depth, seed, time, ...)
        ts = np.asarray(config.t1)[:, None] * np.asarray(setup.coords["time"])[None, :]
        times = np.stack([level_times(ts[d], data["singular_values"][d]) for d in range(len(config.depths))])
        sep, ratio = separation(times, config.rank)
        return {**data, "flow_time": ts, "level_time": times, "separation": sep, "half_time_ratio": ratio}

    def claims(self) -> tuple:
        return CLAIMS

    plot = staticmethod(plot)
    summary = staticmethod(summary)


REPRODUCTION = MatrixDynamicsDepth()
