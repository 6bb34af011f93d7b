"""Incremental learning in matrix, tensor, hierarchical tensor and deep tensor factorization.

Razin, Maman, Cohen (ICML 2022), the figure beside their Theorem 1: under gradient flow
from small initialization, the singular values of a deep matrix factorization (Arora,
Cohen, Hu, Luo, NeurIPS 2019), the component norms of a CP tensor factorization (Razin,
Maman, Cohen, ICML 2021) and the local component norms of a hierarchical tensor
factorization (HTF) all obey

    d sigma/dt = K * gamma(t) * sigma^{2 - 2/K}     (K = L, N, or |children(nu)| + 1),

so each moves slowly while small and fast once large: the components are learned one
after the other. Deep tensor factorization (Hariz, Kadri, Ayache, Moakher, Artieres 2022)
puts k matrices A on every CP factor: balanced, sigma_r = ||(x)_n w_r^n|| obeys
d sigma_r/dt = N delta_r sigma_r^{2 - 2/N + k}, so larger k sharpens the rise; its panels
k = 0, 1, 2 start from one balanced draw.

The claim, per panel and seed (:func:`~jaxreg_lab.reproductions._transitions.incremental_claim`;
HTF at its first internal node and at the root, both K = 3): the R components of largest
final value (R: the target's rank there) reach half their final value in order, each
>= 1.2x later than the previous, and exactly R components ever reach 10% of the largest;
a panel passes when it holds in a majority of seeds (2 of 3); its claim in
:data:`CLAIMS` needs every seed. Control: orthonormal-factor targets with distinct
weights (``*_weights``) fix the order the components should come in (Gaussian targets,
the papers' draw, can have two nearly equal ones, which rise together), and CP and deep
CP components start at one norm (:func:`_matched`).

The weighted targets are ours, and a spread of weights alone staggers the rise times. So
every family runs a second time, from the same initialization, on the published target
type (the families in ``equal_scale``): Gaussian factors drawn at one scale, no per-component weights
(matrix: Gaussian U V^T, Arora et al. 2019; CP: Gaussian factors, Razin et al. 2021; HTF:
a plain Gaussian HT-rank target, Razin et al. 2022; deep CP: the CP draw at the deepest
``dcp_depths``). The control is a shallow model on both matrix targets: a depth-1
"factorization" (``control_depth``) from the same small init, whose singular values obey
d sigma/dt = gamma (exponent 0, no sigma^{2 - 2/L} speed-up): its rises coincide (claim:
consecutive half-times within ``COINCIDE``x of each other) where depth 3 staggers them,
so the staggering is due to depth, not to the target's spectrum. Each panel's saved
``holds`` is the verdict of its one rule (:func:`_incremental_report.panel_rules`): rises
one at a time, or, for a control, rises that coincide.

Each model of each seed runs twice from one initialization: a first flow to the cap
``*_t1``, stopped once the training loss is ``stop_fraction`` of its initial value, gives
the stop time T (its first evenly spaced save past that point); the second runs to T with
``num_saves`` evenly spaced saves in ``num_chunks`` checkpointed chunks, so the rises are
resolved and "final value" is the value at the fit. The first flow runs in the set-up
(one compiled program per model type), the second in the runs' chunks (one run per seed).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from jaxreg import validation as V
from jaxreg.dynamics import Status, gradient_flow
from jaxreg.factorizations import (
    DeepTensorFactorization,
    HierarchicalTensorFactorization,
    MatrixFactorization,
    TensorFactorization,
)
from jaxreg.factorizations.trees import TreePlan, balanced_tree, check_widths, plan_tree
from jaxreg.tasks import matrix_completion, tensor_completion, weighted_completion
from jaxreg_lab.claims import Claim
from jaxreg_lab.contract import Final, Reproduction, Setup
from jaxreg_lab.reproductions import _incremental_report as _report
from jaxreg_lab.reproductions._config import FlowTolerances, Saves, Seeds, check_scalar_fields
from jaxreg_lab.reproductions._results import initial_setups
from jaxreg_lab.reproductions._transitions import COINCIDE, LEVEL, RATIO, claim_arrays, claim_summary
from jaxreg_lab.reproductions._transitions import incremental_claim as incremental_claim
from jaxreg_lab.reproductions._transitions import transition_saves as transition_saves
from jaxreg_lab.reproductions._transitions import transition_width as transition_width

NAME = "incremental-learning"
FAMILIES = ("mf", "tf", "htf", "dcp")  # matrix, CP, HTF, deep CP: the prefixes of the fields


def _prefixed(prefix: str, **fields) -> dict:
    """``{prefix_name: value}``: one problem's preset overrides on one line."""
    return {f"{prefix}_{k}": v for k, v in fields.items()}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(Seeds, FlowTolerances, Saves):
    """Four completion problems, one per model family (``mf_``, ``tf_``, ``htf_``, ``dcp_``).

    Per family: the target's ``shape``, ``rank`` and ``weights`` (relative component norms
    of an orthonormal-factor target, one per rank; empty: Gaussian factors as in the
    papers), ``observed`` entries, the model's ``init_scale`` (per-entry std) and the cap
    ``t1`` of the first flow (deep CP: ``dcp_t1s``, one per depth in ``dcp_depths``).
    ``htf_target`` ("cp" or "ht") picks the Gaussian HTF target when ``htf_weights`` is
    empty and in the equal-scale run. ``equal_scale``: the families (of ``mf``, ``tf``,
    ``htf``, ``dcp``) also run, from the same initialization, on a Gaussian target of their
    rank with no weights (deep CP at its last depth in ``dcp_depths`` only; the tiny preset:
    the matrix only). ``control_depth`` (1 or 2: a shallow matrix model, from
    ``mf_init_scale``, flowed to at most ``control_t1``) runs on each matrix target. Both flows stop at ``stop_fraction`` times the initial loss (see the module).
    ``eta`` (the references' lr) only labels the secondary axis (GD iterations t / eta).
    Paper preset: Razin et al. 2022's comparison runs (64x64 rank-5 matrix; 16^3 CP
    rank 5, init 1e-3; HTF widths 512 on 16^3, HT rank 5, 2048 observations, init 1e-2)
    with Gaussian targets, and deep CP on a 10^3 CP-rank-5 target.
    """

    num_saves: int = 150  # evenly spaced over [0, T]; more exceed the shipped results' size
    max_steps: int = 200_000
    seeds: int = 3

    mf_shape: tuple[int, int] = (30, 30)
    tf_shape: tuple[int, ...] = (8, 8, 8)
    htf_shape: tuple[int, ...] = (8, 8, 8)
    dcp_shape: tuple[int, ...] = (8, 8, 8)
    mf_depth: int = 3
    tf_components: int = 20
    dcp_components: int = 20
    eta: float = 1e-2
    htf_widths: tuple[int, ...] = (16, 16)
    mf_rank: int = 3
    tf_rank: int = 3
    htf_rank: int = 2
    dcp_rank: int = 3
    dcp_depths: tuple[int, ...] = (0, 1, 2)
    mf_weights: tuple[float, ...] = (1.0, 0.5, 0.25)
    tf_weights: tuple[float, ...] = (1.0, 0.5, 0.25)
    htf_weights: tuple[float, ...] = (1.0, 0.1)
    dcp_weights: tuple[float, ...] = (1.0, 0.4, 0.16)
    mf_observed: int = 300
    tf_observed: int = 250
    htf_observed: int = 400
    dcp_observed: int = 300
    dcp_t1s: tuple[float, ...] = (3e5, 1e6, 2e6)
    mf_t1: float = 4000.0
    tf_t1: float = 2e6
    htf_t1: float = 1e5
    htf_target: str = "ht"
    mf_init_scale: float = 1e-3
    tf_init_scale: float = 1e-3
    htf_init_scale: float = 0.05
    dcp_init_scale: float = 0.02
    stop_fraction: float = 1e-3
    equal_scale: tuple[str, ...] = FAMILIES
    control_depth: int = 1
    control_t1: float = 4000.0

    TINY = dict(num_saves=240, num_chunks=2, equal_scale=("mf",))
    PAPER = dict(
        **_prefixed("mf", shape=(64, 64), rank=5, weights=(), observed=2048),
        **_prefixed("tf", shape=(16, 16, 16), rank=5, weights=(), observed=2048, components=512, init_scale=1e-3),
        **_prefixed("htf", shape=(16, 16, 16), rank=5, weights=(), target="ht", observed=2048, widths=(512, 512)),
        **_prefixed("htf", init_scale=1e-2),
        **_prefixed("dcp", shape=(10, 10, 10), rank=5, weights=(), observed=500, components=50),
        num_saves=400,
        num_chunks=10,
        equal_scale=(),  # the paper preset's targets are the Gaussian ones already
    )

    def __post_init__(self):
        check_scalar_fields(self)
        V.choice("htf_target", self.htf_target, ("cp", "ht"))
        V.normalize_fields(self, equal_scale=_families("equal_scale", self.equal_scale))
        if self.control_depth not in (1, 2):
            raise ValueError(f"control_depth must be 1 or 2 (a shallow matrix model), got {self.control_depth!r}")
        weights = {f"{f}_weights": getattr(self, f"{f}_weights") for f in FAMILIES}
        V.normalize_fields(
            self,
            mf_shape=V.shape_tuple("mf_shape", self.mf_shape, order=2),
            tf_shape=V.shape_tuple("tf_shape", self.tf_shape, min_order=2),
            dcp_shape=V.shape_tuple("dcp_shape", self.dcp_shape, min_order=2),
            htf_shape=V.shape_tuple("htf_shape", self.htf_shape, min_order=3),  # a node below the root
            dcp_depths=V.int_tuple("dcp_depths", self.dcp_depths, minimum=0, distinct=False),
            dcp_t1s=V.float_tuple("dcp_t1s", self.dcp_t1s, positive=True, distinct=False),
            **{k: V.float_tuple(k, v, positive=True, nonempty=False, distinct=False) for k, v in weights.items()},
        )
        V.normalize_fields(self, htf_widths=check_widths(self.htf_widths, _tree(self.htf_shape), "htf_widths"))
        if len(self.dcp_t1s) != len(self.dcp_depths):
            raise ValueError(
                f"dcp_t1s must have one entry per deep-CP depth ({len(self.dcp_depths)}), got {self.dcp_t1s!r}"
            )
        if self.stop_fraction >= 1:
            raise ValueError(
                f"stop_fraction must be below 1 (a fraction of the initial loss), got {self.stop_fraction}"
            )
        for f in FAMILIES:
            shape, rank, weights = (getattr(self, f"{f}_{k}") for k in ("shape", "rank", "weights"))
            if weights and len(weights) != rank:
                raise ValueError(f"{f}_weights must have {f}_rank = {rank} entries (or none), got {weights}")
            if rank > min(shape):
                raise ValueError(f"{f}_rank must be at most min({f}_shape) = {min(shape)}, got {rank}")
            V.below_entries(f"{f}_observed", getattr(self, f"{f}_observed"), shape)
        V.divisible("num_saves", self.num_saves, "num_chunks", self.num_chunks)
        numel = sum(math.prod(getattr(self, f"{f}_shape")) for f in FAMILIES)
        V.fits_in_memory("seeds", self.seeds, 8 * self.seeds * numel)

    def model_names(self) -> list[str]:
        """One name per model run, in the order of :func:`_setup` (weighted targets, their
        shallow control, then, with ``equal_scale``, the same on the Gaussian targets)."""
        names = ["matrix", "cp", "htf"] + [f"deep-cp k={k}" for k in self.dcp_depths]
        names.append(f"matrix depth {self.control_depth}")
        label = {"mf": "matrix", "tf": "cp", "htf": "htf", "dcp": f"deep-cp k={self.dcp_depths[-1]}"}
        label["control"] = f"matrix depth {self.control_depth}"
        return names + [f"gaussian {label[run]}" for run in _report.equal_scale_runs(self.equal_scale)]

    def horizons(self) -> list[float]:
        """The caps of the first flow, one per model of :meth:`model_names`."""
        t1 = {"mf": self.mf_t1, "tf": self.tf_t1, "htf": self.htf_t1, "dcp": self.dcp_t1s[-1]}
        t1["control"] = self.control_t1
        weighted = [self.mf_t1, self.tf_t1, self.htf_t1, *self.dcp_t1s, self.control_t1]
        return weighted + [t1[run] for run in _report.equal_scale_runs(self.equal_scale)]


def _families(name: str, value) -> tuple[str, ...]:
    """``value`` as a tuple of distinct names from :data:`FAMILIES`."""
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise ValueError(f"{name} must be a list of families from {FAMILIES}, got {value!r}")
    for f in value:
        V.choice(name, f, FAMILIES)
    if len(set(value)) != len(value):
        raise ValueError(f"{name} lists a family twice: {tuple(value)}")
    return tuple(value)


def _tree(shape) -> TreePlan:
    """The HTF's mode tree: the default balanced binary tree over adjacent modes."""
    return plan_tree(balanced_tree(len(shape)), len(shape))


def _problem(config: Config, family: str, key: PRNGKeyArray, norm: float, weighted: bool = True):
    """The completion problem of one family; ``norm`` is ||W*||_F of an orthonormal-factor
    target (and of the HTF's Gaussian one); ``weighted=False``: the Gaussian target."""
    shape, rank, weights, observed = (
        getattr(config, f"{family}_{k}") for k in ("shape", "rank", "weights", "observed")
    )
    if weights and weighted:
        return weighted_completion(key, shape, weights, observed, target_norm=norm)
    if family == "mf":
        return matrix_completion(key, shape, rank, observed)
    if family == "htf":
        return tensor_completion(key, shape, rank, observed, target=config.htf_target, target_norm=norm)
    return tensor_completion(key, shape, rank, observed)


def _setup(config: Config, key: PRNGKeyArray):
    """Problems, models and initial losses of one seed, one per model (tuples)."""
    keys = jax.random.split(key, 8)
    entry_rms_1 = math.sqrt(math.prod(config.htf_shape))  # matrix and HTF targets: entry RMS 1
    tf_m = TensorFactorization(keys[3], config.tf_shape, config.tf_components, init_scale=config.tf_init_scale)
    problems = (
        _problem(config, "mf", keys[0], math.sqrt(math.prod(config.mf_shape))),
        _problem(config, "tf", keys[2], 1.0),  # CP targets: ||W*||_F = 1
        _problem(config, "htf", keys[4], entry_rms_1),
    )
    models = (
        MatrixFactorization(keys[1], config.mf_shape, config.mf_depth, init_scale=config.mf_init_scale),
        _matched(tf_m, tf_m),
        HierarchicalTensorFactorization(
            keys[5], config.htf_shape, config.htf_widths, init_scale=config.htf_init_scale, balanced=True
        ),
    )
    # one deep-CP problem and one key for every depth k: the same directions at t = 0, and
    # every component at one end-to-end norm (k = 0's geometric mean), so the panels differ in k
    dcp_p = _problem(config, "dcp", keys[6], 1.0)
    dcp_ms = tuple(
        DeepTensorFactorization(
            keys[7], config.dcp_shape, config.dcp_components, k, init_scale=config.dcp_init_scale, balanced=True
        )
        for k in config.dcp_depths
    )
    dcp_ms = tuple(_matched(m, dcp_ms[0]) for m in dcp_ms)
    problems += (dcp_p,) * len(dcp_ms)
    models += dcp_ms
    # the shallow control: the same init draw at depth control_depth, on the matrix target
    control = MatrixFactorization(
        keys[1], config.mf_shape, config.control_depth, init_scale=config.mf_init_scale, balanced=True
    )
    problems += (problems[0],)
    models += (control,)
    # the same models (one init draw) on Gaussian targets of the same ranks
    eq_keys = dict(zip(FAMILIES, jax.random.split(jax.random.fold_in(key, 1), len(FAMILIES))))
    norms = {"mf": math.sqrt(math.prod(config.mf_shape)), "tf": 1.0, "htf": entry_rms_1, "dcp": 1.0}
    eq_models = {"mf": models[0], "tf": models[1], "htf": models[2], "dcp": dcp_ms[-1], "control": control}
    for run in _report.equal_scale_runs(config.equal_scale):
        family = "mf" if run == "control" else run
        problems += (_problem(config, family, eq_keys[family], norms[family], weighted=False),)
        models += (eq_models[run],)
    return problems, models, jnp.stack([p.loss(m) for p, m in zip(problems, models)])


def _matched(model, reference):
    """``model`` (CP or deep CP) with component r's vectors (w_r^n, and deep CP's A_i^{n,r})
    scaled by one factor c_r so that every end-to-end component norm ||(x)_n A_k..A_1 w_r^n||
    (a product of N (1 + k) of them, so scaled by c_r^{N (1 + k)}) equals the geometric mean
    of ``reference``'s. Equal initial norms leave the order of the rises to the target (an
    escape time grows like sigma_r(0)^{-(1 - 2/N + k)}); one c_r per component keeps balance."""
    k, size = getattr(model, "factor_depth", 0), jnp.exp(jnp.mean(jnp.log(reference.component_norms())))
    c = (size / model.component_norms()) ** (1 / (len(model.shape) * (1 + k)))
    model = eqx.tree_at(lambda m: m.factors, model, tuple(f * c for f in model.factors))
    if not k:
        return model
    return eqx.tree_at(lambda m: m.layers, model, tuple(a * c[None, :, None, None] for a in model.layers))


def _metrics(model):
    """The saved norms: singular values, CP component norms, every HTF node's local
    component norms, or deep CP's (sigma_r of the theorem, end-to-end component norms)."""
    if isinstance(model, HierarchicalTensorFactorization):
        return tuple(model.local_component_norms().values())
    if isinstance(model, DeepTensorFactorization):
        return model.rate_sigma(), model.component_norms()
    return model.component_norms()


def _one_flow(problem, model, dt, stop, fractions, rtol, atol, max_steps: int, metrics=_metrics):
    """One run's gradient flow of ``problem.loss`` from ``model`` over ``dt``, stopped at
    the loss ``stop`` (None: never stopped, and no stop event is compiled), saving the
    loss and ``metrics`` (default :func:`_metrics`; None: the loss only) at ``fractions * dt``."""
    traj = gradient_flow(
        problem.loss, model, dt, ts=fractions * dt, stop_at_loss=stop, rtol=rtol, atol=atol,
        max_steps=max_steps, metrics=metrics,
    )  # fmt: skip
    return traj.model, traj.loss, traj.metrics, traj.status, traj.num_steps


@eqx.filter_jit
def _flow(problem, model, dt, stop, fractions, rtol, atol, max_steps: int):
    """:func:`_one_flow` for every seed (vmapped; ``dt`` and ``stop`` per seed): the first
    flow of the set-up, which needs the loss only (no metrics are traced). Module-level:
    one compiled program per model type, shared by every run of one configuration."""

    def one(problem, model, dt, stop):
        return _one_flow(problem, model, dt, stop, fractions, rtol, atol, max_steps, metrics=None)

    return eqx.filter_vmap(one)(problem, model, dt, stop)


def _stop_times(config: Config, problems, models, loss0, fractions):
    """The first flow of every model: ``(stop times (model, seed), statuses (model, seed))``.
    The stop time is the first save (at ``fractions * t1``) past the stop loss, or t1."""
    seeds, tol = jnp.ones(config.seeds), (jnp.asarray(config.rtol), jnp.asarray(config.atol))
    stops, statuses = [], []
    for i, (p, m, t1) in enumerate(zip(problems, models, config.horizons())):
        _, loss, _, st, _ = _flow(
            p, m, t1 * seeds, config.stop_fraction * loss0[:, i], fractions, *tol, config.max_steps
        )
        past = ~np.isfinite(np.asarray(loss))  # saves after the stop hold inf
        first = np.where(past.any(axis=1), past.argmax(axis=1), len(fractions) - 1)
        stops.append(t1 * np.asarray(fractions)[first])
        statuses.append(np.asarray(st))
    return np.stack(stops), np.stack(statuses)


def _fractions(config: Config):
    """The saves of one chunk (and of the first flow) as fractions of its length."""
    per_chunk = config.num_saves // config.num_chunks
    return jnp.arange(1, per_chunk + 1) / per_chunk


def _panels(config: Config, setup: Setup, arrays) -> list:
    """The claim's panels (:func:`_incremental_report.panels`) of the assembled arrays."""
    return _report.panels(config, setup.coords, arrays.__getitem__, reached=arrays["reached_stop_loss"])


def plot(results, out_dir):
    return _report.draw(results, out_dir, NAME)


summary = _report.summary


def _panel(results, panel_id: str):
    """(index in :func:`_incremental_report.panel_specs`, rank) of the panel ``panel_id``;
    (None, 0) when the run has no such panel."""
    index = _report.panel_index(results.config, results.coords, panel_id)
    if index is None:
        return None, 0
    return index, _report.panel_specs(results.config, results.coords)[index][-1]


def _min_ratio(results, panel_id: str) -> np.ndarray:
    """(seed,): the claim's number of one panel (its id in
    :func:`_incremental_report.panel_specs`, e.g. ``"matrix"``, ``"eq-htf-root"``) from the
    saved ``half_time_ratio``, ``count_above_level`` and ``reached_stop_loss``: min_r
    t_{r+1} / t_r over the half-times of the R leading components (R: the target's rank
    there), where exactly R components reach ``LEVEL`` of the largest and the first flow
    reached its stop loss; NaN elsewhere, and for every seed when the run has no such
    panel or R < 2 (nothing to order). ``value >= RATIO`` is the saved ``holds``."""
    seeds = len(results.coords["seed"])
    panel, rank = _panel(results, panel_id)
    if panel is None or rank < 2:
        return np.full(seeds, np.nan)
    ratio = np.min(results["half_time_ratio"][:, panel, : rank - 1], axis=1)  # a NaN (never reached) stays
    model = int(results["panel_model"][panel])
    counted = (results["count_above_level"][:, panel] == rank) & results["reached_stop_loss"][model]
    return np.where(counted, ratio, np.nan)


def _largest_ratio(results, panel_id: str) -> np.ndarray:
    """(seed,): the control's number: max_r max(t_{r+1} / t_r, t_r / t_{r+1}) over the
    half-times of the R leading components of panel ``panel_id`` (1: they coincide), where
    the first flow reached its stop loss; NaN elsewhere and without such a panel.
    ``value <= COINCIDE`` is the saved ``holds`` of a control panel (its rule,
    :func:`~jaxreg_lab.reproductions._transitions.coincide`)."""
    seeds = len(results.coords["seed"])
    panel, rank = _panel(results, panel_id)
    if panel is None or rank < 2:
        return np.full(seeds, np.nan)
    ratio = np.asarray(results["half_time_ratio"][:, panel, : rank - 1], float)
    spread = np.max(np.maximum(ratio, 1 / ratio), axis=1)  # a NaN (never reached) stays
    model = int(results["panel_model"][panel])
    return np.where(results["reached_stop_loss"][model], spread, np.nan)


RAZIN = "Razin et al. 2022, incremental learning figure (MF, TF and HTF norms over iterations)"
HARIZ = "Hariz et al. 2022 (component norms over iterations against factor depth)"
ONE_AT_A_TIME = (
    f"min ratio of consecutive half-times of the rank leading components (NaN unless exactly rank of them "
    f"reach {LEVEL:g} of the largest and the flow reached its stop loss)"
)
WEIGHTED = "weighted target (orthonormal factors, weights {})"
GAUSSIAN = "Gaussian target (the papers' draw, no weights)"
SPLIT_NOTE = "in one seed a target component splits across two components that rise together"
DEEP_CP_K0_FAILS = dict(
    expected=False, note="in one seed an extra component reaches the level and the rises are out of order"
)
GAUSSIAN_MATRIX_FAILS = dict(
    expected=False,
    note="not in every seed: where the Gaussian target's 2nd and 3rd singular values are close they rise nearly "
    "together (the per-seed ratios are in the table); the shallow control's coinciding rises on the same targets "
    "rule out the spectrum as the cause of the staggering where it shows",
)
GAUSSIAN_CP_FAILS = dict(
    expected=False,
    note="not in every seed: Gaussian components of similar norm rise nearly together at this size (8^3, rank 3, "
    "20 components), and where a fourth component reaches the level the seed's value is NaN",
)
GAUSSIAN_HTF = (
    "not shown: on the plain Gaussian HT-rank-2 target (8^3, widths 16, 400 observations, init 0.05) {}: the "
    "staggered rises of the paper's figure (16^3, HT rank 5, widths 512, init 1e-2) are not reproduced at this size"
)
GAUSSIAN_HTF_NODE_FAILS = dict(
    expected=False,
    note=GAUSSIAN_HTF.format("the two local components rise together (half-time ratios near 1, in the table)"),
)
GAUSSIAN_HTF_ROOT_FAILS = dict(
    expected=False,
    note=GAUSSIAN_HTF.format(
        "the two local components rise together (half-time ratios near 1, in the table), or only one reaches 10% of "
        "the largest (NaN)"
    ),
)
GAUSSIAN_DCP_FAILS = dict(
    expected=False,
    note="not in every seed: in a seed whose value is below 1 the second and third components rise out of order",
)
MATRIX_PAPER = "singular values learned one at a time from small init (64x64, rank 5, init 1e-3)"
CP_PAPER = "component norms learned one at a time from small init (16^3, CP rank 5, init 1e-3)"
HTF_PAPER = "local component norms learned one at a time (16^3, plain Gaussian HT rank (5, 5), widths 512, init 1e-2)"
DCP_PAPER = "component norms learned one at a time, the rises sharper as k grows (d sigma/dt ~ sigma^{2-2/N+k})"


def _panel_claim(id, model: str, paper: str, panel_id: str, source=RAZIN, **kw) -> Claim:
    """The claim of one panel: its rank leading components rise one at a time."""
    return Claim(
        id=id,
        statement=(
            f"{model}: the target-rank leading components reach half their final value one at a time, "
            f"each at least {RATIO:g}x later than the previous, and no other component reaches {LEVEL:g} "
            "of the largest."
        ),
        source=source,
        paper=paper,
        quantity=ONE_AT_A_TIME,
        measure=functools.partial(_min_ratio, panel_id=panel_id),
        op=">=",
        threshold=RATIO,
        **kw,
    )


def _control_claim(id, target: str, panel_id: str, **kw) -> Claim:
    """The shallow control's claim on one matrix target: its rises coincide."""
    return Claim(
        id=id,
        statement=(
            f"Control, {target}: the shallow matrix model (depth 1, same small init) raises the target-rank leading "
            f"singular values together, consecutive half-times within {COINCIDE:g}x, on the target where depth 3 "
            "staggers them: the staggering is due to depth, not to the target's spectrum."
        ),
        source="Arora et al. 2019, Sec. 3 (depth 1 has no sigma^{2-2/L} speed-up); the control is ours",
        paper="depth 1 (no factorization) moves every singular value at one rate; depth >= 2 separates them",
        quantity="max ratio (either way) of consecutive half-times of the rank leading singular values at depth 1 "
        "(NaN unless the flow reached its stop loss)",
        measure=functools.partial(_largest_ratio, panel_id=panel_id),
        op="<=",
        threshold=COINCIDE,
        **kw,
    )


CLAIMS = (
    _panel_claim("matrix-one-at-a-time", "Deep matrix factorization, " + WEIGHTED.format("1 : 0.5 : 0.25"),
                 MATRIX_PAPER, "matrix"),
    _control_claim("matrix-control-together", WEIGHTED.format("1 : 0.5 : 0.25"), "matrix-control"),
    _panel_claim("cp-one-at-a-time", "CP tensor factorization, " + WEIGHTED.format("1 : 0.5 : 0.25"), CP_PAPER, "cp"),
    _panel_claim("htf-node-one-at-a-time", "HTF, first internal node, " + WEIGHTED.format("1 : 0.1"), HTF_PAPER,
                 "htf-node", expected=False, note=SPLIT_NOTE),
    _panel_claim("htf-root-one-at-a-time", "HTF, root, " + WEIGHTED.format("1 : 0.1"), HTF_PAPER, "htf-root"),
    *(
        _panel_claim(f"deep-cp-k{k}-one-at-a-time", f"Deep CP, factor depth k = {k}, "
                     + WEIGHTED.format("1 : 0.4 : 0.16"), DCP_PAPER, f"deep-cp-k{k}", source=HARIZ, **extra)
        for k, extra in ((0, DEEP_CP_K0_FAILS), (1, {}), (2, {}))
    ),
    _panel_claim("gaussian-matrix-one-at-a-time", "Deep matrix factorization, " + GAUSSIAN, MATRIX_PAPER, "eq-matrix",
                 **GAUSSIAN_MATRIX_FAILS),
    _control_claim("gaussian-matrix-control-together", GAUSSIAN, "eq-matrix-control"),
    _panel_claim("gaussian-cp-one-at-a-time", "CP tensor factorization, " + GAUSSIAN, CP_PAPER, "eq-cp",
                 **GAUSSIAN_CP_FAILS),
    _panel_claim("gaussian-htf-node-one-at-a-time", "HTF, first internal node, " + GAUSSIAN, HTF_PAPER, "eq-htf-node",
                 **GAUSSIAN_HTF_NODE_FAILS),
    _panel_claim("gaussian-htf-root-one-at-a-time", "HTF, root, " + GAUSSIAN, HTF_PAPER, "eq-htf-root",
                 **GAUSSIAN_HTF_ROOT_FAILS),
    _panel_claim("gaussian-deep-cp-k2-one-at-a-time", "Deep CP, factor depth k = 2, " + GAUSSIAN, DCP_PAPER,
                 "eq-deep-cp-k2", source=HARIZ, **GAUSSIAN_DCP_FAILS),
)  # fmt: skip


def _gaussian_arrays(config: Config, with_sources: bool = False):
    """The saved arrays of the Gaussian-target runs: ``{name: dims after (seed, save)}``, or
    with ``with_sources`` ``[(name, dims, run index among them, metric leaf)]`` (the
    leaves of :func:`_metrics`: deep CP's end-to-end norms, leaf 1; HTF's nodes)."""
    nodes = len(_tree(config.htf_shape).nodes)
    per_run = {
        "mf": [("eq_mf_singular_values", ("mf_component",), 0)],
        "tf": [("eq_tf_component_norms", ("tf_component",), 0)],
        "htf": [(f"eq_htf_node{i}_norms", (f"htf_node{i}_component",), i) for i in range(nodes)],
        "dcp": [("eq_dcp_end_component_norms", ("dcp_component",), 1)],  # the panel's norms only
        "control": [("eq_mf_control_singular_values", ("mf_component",), 0)],
    }
    out = [
        (name, dims, i, leaf)
        for i, run in enumerate(_report.equal_scale_runs(config.equal_scale))
        for name, dims, leaf in per_run[run]
    ]
    return out if with_sources else {name: dims for name, dims, _, _ in out}


class IncrementalLearning(Reproduction):
    """One run per seed: its problems, the first flow's stop times and statuses (the
    inputs, from :meth:`setup`) and one model per panel (the state), each flowed to its
    stop time T in ``num_chunks`` segments of length T / ``num_chunks``."""

    name = NAME
    config = Config

    def outputs(self, config: Config) -> dict:
        schema = {
            "flow_time": ("seed", "model", "save"),
            "stop_time": ("model", "seed"),
            "reached_stop_loss": ("model", "seed"),
            "loss": ("seed", "save", "model"),
            "mf_singular_values": ("seed", "save", "mf_component"),
            "tf_component_norms": ("seed", "save", "tf_component"),
            "dcp_component_norms": ("seed", "save", "dcp_depth", "dcp_component"),
            "dcp_end_component_norms": ("seed", "save", "dcp_depth", "dcp_component"),
            "solver_steps": ("seed",),
        }
        nodes = range(len(_tree(config.htf_shape).nodes))
        for i in nodes:
            schema[f"htf_node{i}_norms"] = ("seed", "save", f"htf_node{i}_component")
        schema["mf_control_singular_values"] = ("seed", "save", "mf_component")
        for name, dims in _gaussian_arrays(config).items():
            schema[name] = ("seed", "save", *dims)
        schema.update(
            half_time=("seed", "panel", "order"),
            half_time_ratio=("seed", "panel", "gap"),
            count_above_level=("seed", "panel"),
            holds=("seed", "panel"),
            panel_model=("panel",),
        )
        return schema

    def setup(self, config: Config) -> Setup:
        problems, models, loss0 = initial_setups(_setup, config)  # cached: a resumed run reuses them
        stop_t, first_status = _stop_times(config, problems, models, loss0, _fractions(config))
        inputs = {
            "problems": problems,
            "stop_time": jnp.asarray(stop_t.T),  # (seed, model)
            "first_status": jnp.asarray(first_status.T),
        }
        coords = {
            "seed": list(range(config.seeds)),
            "save": np.linspace(1.0 / config.num_saves, 1.0, config.num_saves).tolist(),
            "model": config.model_names(),
            "dcp_depth": list(config.dcp_depths),
            "htf_node": [list(n) for n in _tree(config.htf_shape).nodes],
        }
        specs = _report.panel_specs(config, coords)
        order = list(range(max(spec[-1] for spec in specs)))  # the claim's arrays, padded to the largest rank
        coords.update(panel=[spec[1] for spec in specs], order=order, gap=order[:-1])
        return Setup(inputs, models, config.num_chunks, (config.seeds,), coords)

    def chunk(self, config: Config, inputs, models, k):
        fractions = _fractions(config)
        tol = (jnp.asarray(config.rtol), jnp.asarray(config.atol))
        new, out, sts = [], {"steps": 0}, []
        for i, (p, m) in enumerate(zip(inputs["problems"], models)):
            dt = inputs["stop_time"][i] / config.num_chunks
            # the second flow runs to T: no stop loss (and no stop event to compile)
            ms, loss, metrics, st, n = _one_flow(p, m, dt, None, fractions, *tol, config.max_steps)
            new.append(ms)
            out.update({f"m{i}_{j}": leaf for j, leaf in enumerate(jax.tree_util.tree_leaves(metrics))})
            out.update({f"loss{i}": loss, "steps": out["steps"] + n})
            sts.append(st)
        # a first flow that failed (max_steps or worse) is the run's status as well
        first = inputs["first_status"]
        failed = jnp.max(jnp.where(first >= Status.MAX_STEPS, first, 0))
        return tuple(new), jnp.maximum(jnp.max(jnp.stack(sts)), failed), out

    def assemble(self, config: Config, setup: Setup, final: Final) -> dict:
        data = final.data  # every output (seed, save, ...)
        stop_t = np.asarray(setup.inputs["stop_time"]).T  # (model, seed)
        first_status = np.asarray(setup.inputs["first_status"]).T
        # deep CP's sigma_r (j = 0) and end-to-end component norms (j = 1), the depths on axis 2
        dcp = [np.stack([data[f"m{3 + i}_{j}"] for i in range(len(config.dcp_depths))], axis=2) for j in (0, 1)]
        arrays = {
            "flow_time": stop_t.T[:, :, None] * np.asarray(setup.coords["save"]),
            "stop_time": stop_t,
            "reached_stop_loss": first_status == Status.CONVERGED,
            "loss": np.stack([data[f"loss{i}"] for i in range(len(stop_t))], axis=-1),
            "mf_singular_values": data["m0_0"],
            "tf_component_norms": data["m1_0"],
            "dcp_component_norms": dcp[0],
            "dcp_end_component_norms": dcp[1],
            "solver_steps": data["steps"],
        }
        nodes = range(len(setup.coords["htf_node"]))
        for i in nodes:
            arrays[f"htf_node{i}_norms"] = data[f"m2_{i}"]
        control = 3 + len(config.dcp_depths)  # the shallow control's model index, then the Gaussian targets'
        arrays["mf_control_singular_values"] = data[f"m{control}_0"]
        for name, _, model, leaf in _gaussian_arrays(config, with_sources=True):
            arrays[name] = data[f"m{control + 1 + model}_{leaf}"]
        claim = claim_arrays(_panels(config, setup, arrays), _report.panel_rules(config, setup.coords))
        return {**arrays, **{name: array for name, (_, array) in claim.items()}}

    def extra(self, config: Config, setup: Setup, arrays) -> dict:
        summary = claim_summary(_panels(config, setup, arrays), _report.panel_rules(config, setup.coords))
        return {"claim": summary}

    def claims(self) -> tuple:
        return CLAIMS

    plot = staticmethod(plot)
    summary = staticmethod(summary)


REPRODUCTION = IncrementalLearning()
