"""The configuration of ``jaxreg sweep`` (:class:`Config`), checked on construction: model
options, task sizes, optimizer names and options, and memory are validated before any
work, each error one line naming the field."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxreg import validation as V
from jaxreg.dynamics.optimizers import group_rmsprop
from jaxreg.factorizations import MODELS as MODEL_CLASSES
from jaxreg.factorizations import model_class
from jaxreg.factorizations.trees import balanced_tree, check_widths, plan_tree
from jaxreg.tasks import (
    DENSE_LIMIT,
    SENSING_LIMIT,
    TRACEABLE_DRAW_LIMIT,
    matrix_completion,
    matrix_sensing,
    tensor_completion,
    tensor_sensing,
)
from jaxreg_lab.registry import SIZES

NAME = "sweep"  # the name of the sweep command's results (``jaxreg sweep``)

MODELS = tuple(MODEL_CLASSES)
LEGACY_OPTIONS = ("depth", "rank", "widths")  # top-level fields passed to the models that take them
TASKS = ("completion", "sensing")


@dataclasses.dataclass(frozen=True)
class Config:
    """A sweep: model x task x optimizer over ``init_scales`` x ``seeds`` (see module doc).

    Model fields: ``model_options``, a table of the model's constructor options (e.g.
    ``{ranks = [3, 3]}`` for ``tensor_train``, ``{factor_depth = 2}`` for ``deep_cp``), and,
    passed to every model that takes them unless ``model_options`` sets them, ``depth``
    (matrix: number of factors L, unset: 3; for deep_cp the deprecated alias of
    ``factor_depth``), ``rank`` (CP / deep CP components), ``widths`` (HTF local
    components per level).
    Task fields: ``target_rank``, ``target`` ("cp" or "ht" for tensors),
    ``num_observed`` (entries or measurements). Optimizer: ``flow`` integrates to ``t1``
    with tolerances ``rtol``/``atol``; any other name runs ``num_steps`` steps of
    ``optax.<name>(learning_rate, **optimizer_options)`` (``group_rmsprop``: jaxreg's).
    ``stop_at_loss`` (0: never) stops a run once its loss reaches it (status converged;
    a run with one that does not reach it by ``t1`` or ``num_steps`` ends max_steps). ``chunk_size``
    is the number of runs per vmapped program: the driver splits the runs over every
    device (of every process under ``jax.distributed``) and runs each device's slice as a
    ``lax.map`` over chunks of ``chunk_size`` runs (1: every run unbatched), so a fixed
    ``chunk_size`` compiles the same batch size whatever the number of devices or
    processes; 0 (the default): 1 on several CPU devices (as :func:`jaxreg.sweep`), else
    each device's whole slice in one vmapped program (``Setup.chunk_size`` of
    :mod:`jaxreg_lab.contract`).
    """

    model: str = "matrix"
    shape: tuple[int, ...] = (30, 30)
    depth: int | None = None
    rank: int = 10
    widths: tuple[int, ...] = (8, 8)
    model_options: dict = dataclasses.field(default_factory=dict)
    task: str = "completion"
    target: str = "cp"
    target_rank: int = 2
    num_observed: int = 300
    optimizer: str = "flow"
    learning_rate: float = 1e-2
    optimizer_options: dict = dataclasses.field(default_factory=dict)
    num_steps: int = 10_000
    t1: float = 500.0
    rtol: float = 1e-7
    atol: float = 1e-9
    max_steps: int = 100_000
    stop_at_loss: float = 0.0
    init_scales: tuple[float, ...] = (1e-3, 1e-2)
    seeds: int = 4
    seed: int = 0
    num_saves: int = 50
    num_chunks: int = 5
    top: int = 5
    chunk_size: int = 0

    def __post_init__(self):
        V.config_fields(self, choices={"model": MODELS, "task": TASKS, "target": ("cp", "ht")})
        if not isinstance(self.optimizer, str):
            raise ValueError(f"optimizer must be a string ('flow' or an optimizer's name), got {self.optimizer!r}")
        if not isinstance(self.optimizer_options, dict):
            raise ValueError(f"optimizer_options must be a table, got {self.optimizer_options!r}")
        order = 2 if self.model == "matrix" else None
        V.normalize_fields(
            self,
            shape=V.shape_tuple("shape", self.shape, order=order, min_order=2),
            widths=V.int_tuple("widths", self.widths, minimum=1, distinct=False),
            init_scales=V.float_tuple("init_scales", self.init_scales, positive=True, distinct=False),
        )
        if self.model == "hierarchical" and len(self.shape) < 3:
            raise ValueError(f"shape must have at least 3 modes for model 'hierarchical', got {self.shape}")
        V.config_fields(
            self,
            positive_ints=(
                "rank",
                "target_rank",
                "num_observed",
                "num_steps",
                "max_steps",
                "seeds",
                "num_saves",
                "num_chunks",
                "top",
            ),
            nonnegative_ints=("seed", "chunk_size"),
            positive_floats=("learning_rate", "t1", "rtol", "atol"),
        )
        if self.depth is not None:
            if self.model == "deep_cp":
                V.nonnegative_int("depth", self.depth)
            else:
                V.positive_int("depth", self.depth)
        if not isinstance(self.model_options, dict):
            raise ValueError(f"model_options must be a table, got {self.model_options!r}")
        num_params = _num_params(self)  # builds the model abstractly: it checks its options
        V.number("stop_at_loss", self.stop_at_loss, minimum=0.0)
        V.divisible("num_saves", self.num_saves, "num_chunks", self.num_chunks)
        self._check_task()
        if self.model == "hierarchical":
            check_widths(self.widths, plan_tree(balanced_tree(len(self.shape)), len(self.shape)))
        if self.optimizer != "flow":
            V.divisible("num_steps", self.num_steps, "num_saves", self.num_saves)
            check_optimizer(self)  # unknown names and bad options fail here, before any work
        V.fits_in_memory("seeds", self.seeds, len(self.init_scales) * self.seeds * _bytes_per_run(self, num_params))

    def _check_task(self):
        """The target and observations can be drawn (checked on the config, never traced)."""
        numel = int(np.prod(self.shape))
        if self.model == "matrix" and self.target_rank > min(self.shape):
            raise ValueError(f"target_rank must be at most min(shape) = {min(self.shape)}, got {self.target_rank}")
        if self.model != "matrix" and self.target == "ht":
            plan = plan_tree(balanced_tree(len(self.shape)), len(self.shape))
            check_widths((self.target_rank,) * plan.depth, plan, name="target_rank")
        if self.task == "completion":
            V.below_entries("num_observed", self.num_observed, self.shape)
            if numel > TRACEABLE_DRAW_LIMIT:
                raise ValueError(
                    f"shape {self.shape} has {numel} entries; a sweep draws its observations "
                    f"under vmap, for at most {TRACEABLE_DRAW_LIMIT} entries"
                )
            return
        if self.model != "matrix" and numel > DENSE_LIMIT:
            raise ValueError(
                f"shape {self.shape} has {numel} entries, too many for dense sensing (at most {DENSE_LIMIT})"
            )
        if 2 * self.num_observed * numel > SENSING_LIMIT:
            raise ValueError(
                f"num_observed={self.num_observed} sensing operators (and as many for testing) "
                f"of shape {self.shape} need {2 * self.num_observed * numel} numbers, more than "
                f"{SENSING_LIMIT}"
            )

    @classmethod
    def preset(cls, size: str, **overrides) -> "Config":
        V.choice("size", size, SIZES)
        tiny = dict(shape=(12, 12), num_observed=60, t1=200.0, num_saves=10, num_chunks=2, seeds=2)
        return cls(**{**(tiny if size == "tiny" else {}), **overrides})


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """``optax.<optimizer>(learning_rate, **optimizer_options)`` or jaxreg's GroupRMSprop."""
    opts = dict(config.optimizer_options)
    for k, v in opts.items():
        if not isinstance(v, (bool, int, float, str)):
            raise ValueError(f"optimizer_options.{k} must be a number, a boolean or a string, got {v!r}")
    if config.optimizer == "group_rmsprop":
        factory = group_rmsprop
    else:
        factory = getattr(optax, config.optimizer, None)
        if not callable(factory) or config.optimizer.startswith("_"):
            raise ValueError(
                f"optimizer must be 'flow', 'group_rmsprop' or the name of an optax optimizer "
                f"(e.g. 'sgd', 'adam'), got {config.optimizer!r}"
            )
    try:
        opt = factory(config.learning_rate, **opts)
    except TypeError as e:
        raise ValueError(f"optimizer_options {opts} do not fit optax.{config.optimizer}: {e}") from None
    if not isinstance(opt, optax.GradientTransformation):
        raise ValueError(f"optimizer {config.optimizer!r} is not an optax optimizer")
    return opt


def check_optimizer(config: Config) -> None:
    """Build the optimizer and trace one update on a 2-vector (abstractly: nothing is compiled
    or computed), so options of the wrong type fail as one line naming ``optimizer_options``."""
    opt = make_optimizer(config)
    params = jax.ShapeDtypeStruct((2,), jnp.float32)

    def one_update(p):
        return opt.update(p, opt.init(p), p)

    try:
        jax.eval_shape(one_update, params)
    except Exception as e:  # any failure here is a bad option value
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"optimizer_options {dict(config.optimizer_options)} do not fit {config.optimizer}: {msg}"
        ) from None


def _num_params(config: Config) -> int:
    """The number of trained parameters of the configured model (from its abstract shape:
    nothing is allocated)."""
    model = jax.eval_shape(lambda: make_model(config, jax.random.key(0), 1.0))
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(model) if hasattr(x, "shape"))


def _bytes_per_run(config: Config, num_params: int) -> int:
    """A lower bound on the bytes one run of the grid holds: its problem (target,
    observations), its model and its saved outputs, in float64."""
    numel = int(np.prod(config.shape))
    dense = numel if numel <= DENSE_LIMIT else 0
    if config.task == "completion":
        rest = numel - config.num_observed
        observations = (config.num_observed + (rest if numel <= 10**6 else min(rest, 10_000))) * (1 + len(config.shape))
    else:
        observations = 2 * config.num_observed * (numel + 1)
    outputs = config.num_saves * (3 + config.top)
    return 8 * (dense + observations + num_params + outputs)


def make_problem(config: Config, key):
    if config.model == "matrix":
        make = matrix_completion if config.task == "completion" else matrix_sensing
        return make(key, config.shape, config.target_rank, config.num_observed)
    make = tensor_completion if config.task == "completion" else tensor_sensing
    return make(key, config.shape, config.target_rank, config.num_observed, target=config.target)


def make_model(config: Config, key, init_scale):
    cls = model_class(config.model)
    options = {
        name: getattr(config, name)
        for name in LEGACY_OPTIONS
        if getattr(config, name) is not None and name in cls.option_names()
    }
    options.update(config.model_options)
    return cls.from_options(key, config.shape, init_scale=init_scale, **options)
