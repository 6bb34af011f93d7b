"""Tensor rank as a measure of complexity: natural against random data (Razin, Maman, Cohen, ICML 2021).

Razin, Maman, Cohen (ICML 2021), "tensor rank as measure of complexity": a one-vs-all
image task is a tensor completion problem. An image x of N pixels, each quantized to one
of d levels, is the multi-index (x_1, ..., x_N) of an order-N tensor with dims d, and its
label y (2 for the positive class, 0 otherwise, as in their code) is the value of that
entry; the tensor is never materialized (the model is read only at the data points,
:meth:`jaxreg.TensorFactorization.entries`). Fitting a CP factorization
W = sum_{r=1}^R (x)_n w_r^n of R components is fitting the predictor
f(x) = sum_r prod_n w_r^n[x_n], whose complexity is the tensor rank R. Claim: natural
data are fitted to a given error by a much lower tensor rank than the same inputs with
random labels, or random inputs with the true labels.

Data: scikit-learn's handwritten digits (1797 images of 8 x 8 pixels, values 0..16,
shipped with the package; no download), averaged over ``pool`` x ``pool`` blocks (4 x 4
= 16 pixels by default, so the tensor has order 16) and quantized to ``levels`` levels
(round(v / 16 * (levels - 1))). Per seed: a random split into ``num_train`` training and
the rest test images; random labels permute the labels (training and test separately),
random inputs draw every pixel uniformly from the levels and keep the true labels (both
as in their data generator).

Model and fit (their runner's settings, full batch): factor entries N(init_mean,
init_std^2) with init_mean 1, init_std 1e-3, Adam on the mean squared error. A rank-r
model is the rank-``max(ranks)`` model with components r+1.. set to zero: a zero component
has zero gradient in every factor (each factor's gradient is a product of the others), so
Adam never moves it and the fit is exactly that of r components; every rank, variant and
seed thus shares one compiled program. Reported, as in their plots, on the 0/1 scale:
error = mean squared error / (2 - 0)^2, train and test (per-example test error clipped
at ``max_example_error``, their ``max_test_sample_loss``), beside the label variance
p(1 - p) (the error of the best constant predictor). One run per seed, one chunk per
data variant.
"""

from __future__ import annotations

import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Float, Int

from jaxreg import seed_keys
from jaxreg import validation as V
from jaxreg.dynamics import gradient_descent
from jaxreg.factorizations import TensorFactorization
from jaxreg_lab.claims import Claim
from jaxreg_lab.contract import Final, Reproduction, Setup
from jaxreg_lab.reproductions._config import Descent, Seeds, check_scalar_fields, increasing_tuple
from jaxreg_lab.reproductions._results import nan_per_seed, per_seed, pick

NAME = "tensor-rank-complexity"
VARIANTS = ("natural", "random labels", "random inputs")
IMAGE_SIDE = 8  # scikit-learn digits: 8 x 8 pixels
PIXEL_MAX = 16.0  # their values are 0..16
DTYPE = jnp.float32  # products of N factors and Adam: float64 adds nothing here and costs twice the time


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(Seeds, Descent):
    """Their runner (natural data): labels 2 / 0, init mean 1 and std 1e-3, Adam, per-example
    test loss clipped at 4, tensor ranks 1..15. Ours: scikit-learn's digits (not MNIST /
    Fashion-MNIST), pooled to 4 x 4 pixels of 3 levels (order 16, dims 3), full-batch
    Adam with lr 1e-2 for ``num_steps`` steps (theirs: lr 5e-4, batches of 5000 of
    60,000 images, 10,000 epochs). ``fit_fraction``: the summary reports the smallest
    rank whose training error is at most this fraction of the label variance."""

    seeds: int = 3
    num_steps: int = 2000

    positive_digit: int = 6
    pool: int = 2
    levels: int = 3
    num_train: int = 1000
    ranks: tuple[int, ...] = (1, 2, 3, 4, 6, 8)
    positive_value: float = 2.0
    negative_value: float = 0.0
    init_mean: float = 1.0
    init_std: float = 1e-3
    num_saves: int = 20
    max_example_error: float = 4.0
    fit_fraction: float = 0.5

    TINY = dict(num_train=400, ranks=(1, 3), num_steps=400, num_saves=4, seeds=1)
    # their ranks 1..15 on the full 8 x 8 binary images (order 64), 5 seeds
    PAPER = dict(pool=1, levels=2, num_train=1300, ranks=tuple(range(1, 16)), lr=1e-3, num_steps=20_000, seeds=5)

    def __post_init__(self):
        V.nonnegative_int("positive_digit", self.positive_digit)
        if self.positive_digit > 9:
            raise ValueError(f"positive_digit must be a digit 0..9, got {self.positive_digit!r}")
        V.positive_int("pool", self.pool)
        if IMAGE_SIDE % self.pool:
            raise ValueError(f"pool must divide the image side {IMAGE_SIDE}, got {self.pool}")
        V.positive_int("levels", self.levels)
        if self.levels < 2:
            raise ValueError(f"levels must be at least 2, got {self.levels}")
        V.positive_int("num_train", self.num_train)
        if self.num_train >= 1797:
            raise ValueError(f"num_train must leave test images of the 1797, got {self.num_train}")
        V.normalize_fields(self, ranks=increasing_tuple("ranks", self.ranks, V.positive_int))
        if self.positive_value == self.negative_value:
            raise ValueError(f"positive_value and negative_value must differ, both are {self.positive_value}")
        # positive_value, negative_value and init_mean may be 0 or negative
        check_scalar_fields(
            self, nonnegative=("positive_digit", "seed"), skip=("positive_value", "negative_value", "init_mean")
        )
        if self.num_steps % self.num_saves:
            raise ValueError(f"num_steps ({self.num_steps}) must be a multiple of num_saves ({self.num_saves})")

    @property
    def order(self) -> int:
        return (IMAGE_SIDE // self.pool) ** 2

    @property
    def scale(self) -> float:
        """(positive_value - negative_value)^2: errors are reported on the 0/1 label scale."""
        return (self.positive_value - self.negative_value) ** 2


@functools.lru_cache(maxsize=4)
def digit_tensor_entries(
    pool: int, levels: int, positive_digit: int, positive_value: float, negative_value: float
) -> tuple[Int[np.ndarray, "1797 N"], Float[np.ndarray, " 1797"]]:
    """Every digits image as a tensor multi-index, and its label as the entry's value.

    Arguments:
        pool: side of the averaged pixel blocks (8 must be a multiple).
        levels: quantization levels of a pooled pixel, the tensor's dims.
        positive_digit, positive_value, negative_value: the one-vs-all labels.
    Returns:
        (indices (1797, (8/pool)^2) int32 in [0, levels), values (1797,)) as numpy arrays.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    side = IMAGE_SIDE // pool
    pooled = digits.images.reshape(-1, side, pool, side, pool).mean(axis=(2, 4)).reshape(len(digits.images), -1)
    indices = np.rint(pooled / PIXEL_MAX * (levels - 1)).astype(np.int32)
    values = np.where(digits.target == positive_digit, positive_value, negative_value)
    return indices, values


def _datasets(config: Config, indices, values, key):
    """The three variants of one seed: (train indices, train values, test indices, test
    values), each stacked over VARIANTS."""
    k_split, k_train, k_test, k_in_train, k_in_test = jax.random.split(key, 5)
    order = jax.random.permutation(k_split, indices.shape[0])
    tr, te = order[: config.num_train], order[config.num_train :]
    x_tr, y_tr, x_te, y_te = indices[tr], values[tr], indices[te], values[te]
    rand_x_tr = jax.random.randint(k_in_train, x_tr.shape, 0, config.levels, x_tr.dtype)
    rand_x_te = jax.random.randint(k_in_test, x_te.shape, 0, config.levels, x_te.dtype)
    return (
        jnp.stack([x_tr, x_tr, rand_x_tr]),
        jnp.stack([y_tr, jax.random.permutation(k_train, y_tr), y_tr]),
        jnp.stack([x_te, x_te, rand_x_te]),
        jnp.stack([y_te, jax.random.permutation(k_test, y_te), y_te]),
    )


def _fit(config: Config, x_train, y_train, x_test, y_test, model, r):
    """The rank-``r`` fit of one data variant from ``model`` (the rank-``max(ranks)``
    draw): (training error curve, test error, status) on the 0/1 label scale."""
    r_max = max(config.ranks)
    mask = (jnp.arange(r_max) < r).astype(DTYPE)  # components r+1.. are zero and stay zero
    model = eqx.tree_at(lambda m: m.factors, model, tuple((f + config.init_mean) * mask for f in model.factors))
    tr = gradient_descent(
        lambda m: jnp.mean((m.entries(x_train) - y_train) ** 2),
        model,
        optax.adam(config.lr),
        config.num_steps,
        save_every=config.num_steps // config.num_saves,
    )
    test = jnp.mean(jnp.minimum((tr.model.entries(x_test) - y_test) ** 2, config.max_example_error))
    return tr.loss / config.scale, test / config.scale, tr.status


def rank_to_fit(results, fraction: float):
    """Per variant: the smallest rank whose mean (over seeds) training error is at most
    ``fraction`` times the mean label variance; None if no rank tried reaches it."""
    level = fraction * float(np.mean(results["label_variance"]))
    out = []
    for v in range(len(results.coords["variant"])):
        ok = np.flatnonzero(results["train_error"][v].mean(axis=-1) <= level)
        out.append(int(results.coords["rank"][ok[0]]) if ok.size else None)
    return out


def plot(results, out_dir):
    import matplotlib.pyplot as plt

    from jaxreg_lab.plotting import save_figure

    c, cfg = results.coords, results.config
    ranks = np.asarray(c["rank"])
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for v, (name, marker) in enumerate(zip(c["variant"], "o^d")):
        for key, ls, alpha in (("train_error", "-", 1.0), ("test_error", "--", 0.5)):
            e = np.asarray(results[key][v], float)
            ax.errorbar(
                ranks,
                e.mean(-1),
                yerr=e.std(-1),
                color=f"C{v}",
                marker=marker,
                ls=ls,
                alpha=alpha,
                capsize=3,
                label=f"{name} {key.split('_')[0]}",
            )
    ax.axhline(float(np.mean(results["label_variance"])), color="k", lw=1, ls=":", label="label variance")
    side = IMAGE_SIDE // cfg["pool"]
    ax.set_title(
        f"digits, {cfg['positive_digit']} vs rest: {side}x{side} pixels, {cfg['levels']} levels "
        f"(order {side * side}, dims {cfg['levels']})",
        fontsize=9,
    )
    ax.set_xlabel("tensor rank (CP components)")
    ax.set_ylabel(f"mean error (squared error / {(cfg['positive_value'] - cfg['negative_value']) ** 2:g})")
    ax.set_xticks(ranks)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, out_dir, NAME)


def summary(results) -> str:
    c = results.coords
    lines = [
        f"label variance p(1 - p): {np.mean(results['label_variance']):.4f}",
        f"{'variant':>14} {'rank':>4} {'train error (mean +- std)':>26} {'test error (mean +- std)':>25}",
    ]
    for v, name in enumerate(c["variant"]):
        for j, r in enumerate(c["rank"]):
            tr, te = results["train_error"][v, j], results["test_error"][v, j]
            lines.append(
                f"{name:>14} {r:>4} {tr.mean():>14.4f} +- {tr.std():<8.4f} {te.mean():>13.4f} +- {te.std():.4f}"
            )
    fraction = results.config["fit_fraction"]
    fits = rank_to_fit(results, fraction)
    lines.append(
        f"smallest rank with train error <= {fraction:g} x variance: "
        + ", ".join(f"{n}: {r if r is not None else '> ' + str(c['rank'][-1])}" for n, r in zip(c["variant"], fits))
    )
    return "\n".join(lines)


LOW_RANK = 2  # the paper's natural data are fitted at tensor rank 1-2


def _relative_train_error(results, variant: str) -> np.ndarray:
    """(seed, rank): the final training error of ``variant`` over the seed's label variance p(1 - p)."""
    return pick(results, "train_error", variant=variant) / results["label_variance"][:, None]


def _low_rank_fit(results, variant: str) -> np.ndarray:
    """(seed,): the lowest relative training error of ``variant`` over the ranks <= ``LOW_RANK``."""
    low = np.asarray(results.coords["rank"]) <= LOW_RANK
    rel = _relative_train_error(results, variant)
    return rel[:, low].min(axis=1) if low.any() else nan_per_seed(results)


def _natural_low_rank(results) -> np.ndarray:
    return _low_rank_fit(results, "natural")


def _random_low_rank(results) -> np.ndarray:
    return np.minimum(_low_rank_fit(results, "random labels"), _low_rank_fit(results, "random inputs"))


def _random_fall(results) -> np.ndarray:
    """(seed,): the larger over the two random variants of train error(largest rank) /
    train error(smallest rank)."""
    if len(results.coords["rank"]) < 2:
        return nan_per_seed(results)
    errors = [pick(results, "train_error", variant=v) for v in ("random labels", "random inputs")]  # (seed, rank)
    return np.max([e[:, -1] / e[:, 0] for e in errors], axis=0)


RAZIN_2021 = "Razin, Maman, Cohen 2021 (ICML), tensor rank as a measure of complexity figure"
CLAIMS = (
    Claim(
        id="natural-fits-at-low-rank",
        statement="Natural data are fitted at tensor rank at most 2: training error below half the label variance.",
        source=RAZIN_2021,
        paper="natural data (MNIST, Fashion-MNIST) are fitted at tensor rank 1-2",
        quantity="lowest training error / label variance p(1 - p) of the natural data over the ranks <= 2",
        measure=_natural_low_rank,
        op="<",
        threshold=0.5,
    ),
    Claim(
        id="random-not-fit-at-low-rank",
        statement=(
            "Control: at the same ranks (at most 2) neither random labels nor random inputs are fitted: "
            "training error above half the label variance."
        ),
        source=RAZIN_2021,
        paper="random labels and random inputs need a higher tensor rank to be fitted",
        quantity="lowest training error / label variance over the ranks <= 2 and the two random variants",
        measure=_random_low_rank,
        op=">",
        threshold=0.5,
    ),
    Claim(
        id="random-error-falls-with-rank",
        statement=(
            "The training error of random labels and of random inputs at least halves from the smallest rank "
            "to the largest."
        ),
        source=RAZIN_2021,
        paper="the training error of random data falls with the tensor rank, from about 0.09 to 0.015-0.045",
        quantity="larger over the two random variants of train error(largest rank) / train error(smallest rank)",
        measure=_random_fall,
        op="<",
        threshold=0.5,
        expected=False,
        note="the random variants' training error stays near the label variance at every rank tried: it does not fall",
    ),
)


class TensorRankComplexity(Reproduction):
    """One run per seed: its three data variants and its initial model (the inputs; the
    state carries nothing), chunk k the fits of the k'th variant at every rank (one
    vectorized program over the ranks)."""

    name = NAME
    config = Config

    def outputs(self, config: Config) -> dict:
        return {
            "train_error": ("variant", "rank", "seed"),
            "test_error": ("variant", "rank", "seed"),
            "train_error_curve": ("variant", "rank", "seed", "step"),
            "label_variance": ("seed",),
            "status": ("variant", "rank", "seed"),
        }

    def setup(self, config: Config) -> Setup:
        indices, values = digit_tensor_entries(
            config.pool,
            config.levels,
            config.positive_digit,
            float(config.positive_value),
            float(config.negative_value),
        )
        keys = seed_keys(config.seed, config.seeds)
        data = per_seed(
            lambda k: _datasets(config, jnp.asarray(indices), jnp.asarray(values, DTYPE), k), keys
        )  # (seed, variant, ...)
        shape = (config.levels,) * config.order
        # the initial models drawn op by op outside the program (see per_seed)
        models = per_seed(
            lambda key: TensorFactorization(
                jax.random.fold_in(key, 1), shape, max(config.ranks), init_scale=config.init_std, dtype=DTYPE
            ),
            keys,
        )
        coords = {
            "variant": list(VARIANTS),
            "rank": list(config.ranks),
            "seed": list(range(config.seeds)),
            "step": (np.arange(config.num_saves + 1) * (config.num_steps // config.num_saves)).tolist(),
        }
        return Setup((data, models), jnp.zeros(config.seeds), len(VARIANTS), (config.seeds,), coords)

    def chunk(self, config: Config, inputs, state, k):
        (x_tr, y_tr, x_te, y_te), model = inputs
        fit = functools.partial(_fit, config, x_tr[k], y_tr[k], x_te[k], y_te[k], model)
        curve, test, status = jax.vmap(fit)(jnp.asarray(config.ranks))  # every rank, one program
        # one entry on the variant axis: the driver concatenates the chunks along it
        return state, jnp.max(status), {"curve": curve[None], "test": test[None], "status": status[None]}

    def assemble(self, config: Config, setup: Setup, final: Final) -> dict:
        curve = final.data["curve"].transpose(1, 2, 0, 3)  # (variant, rank, seed, save)
        y_train = np.asarray(setup.inputs[0][1][:, 0])  # the natural variant's training labels (seed, image)
        p = np.asarray(y_train == config.positive_value, float).mean(axis=1)  # positive fraction per seed
        return {
            "train_error": curve[..., -1],
            "test_error": final.data["test"].transpose(1, 2, 0),
            "train_error_curve": curve,
            "label_variance": p * (1 - p),
            "status": final.data["status"].transpose(1, 2, 0),
        }

    def claims(self) -> tuple:
        return CLAIMS

    plot = staticmethod(plot)
    summary = staticmethod(summary)


REPRODUCTION = TensorRankComplexity()
