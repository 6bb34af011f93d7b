"""``jaxreg sweep --config FILE.toml``: any model x task x optimizer over seeds and init scales.

One TOML file names a factorization (a name of :data:`jaxreg.factorizations.MODELS`:
``matrix``, ``cp``, ``hierarchical``, ``deep_cp``, ``tensor_train``),
a task (``completion`` or ``sensing`` of a random low-rank target), and an optimizer
(``flow`` for exact gradient flow d theta/dt = -grad L(theta), or any optax optimizer by
name, or ``group_rmsprop``), and the grid ``init_scales`` x ``seeds``. Every run of the
grid goes through one vmapped, sharded program (:func:`jaxreg.sweep`), in chunks that are
checkpointed, so ``run(..., resume=True)`` continues a killed sweep with identical results. Saved per
run and save point: the training loss, the test loss, the reconstruction error
||W - W*||_F / ||W*||_F (when the target is materialized) and the ``top`` largest
component norms (each model's ``component_norms()``: singular values of W; CP / deep CP
component norms; for HTF the local component norms of the root; for a tensor train the
singular values at its middle bond).

Example (``sweep.toml``)::

    model = "matrix"
    depth = 3
    shape = [30, 30]
    task = "completion"
    target_rank = 2
    num_observed = 300
    optimizer = "flow"          # or "sgd", "adam", "group_rmsprop", ...
    t1 = 500.0                  # flow time (descent: num_steps and learning_rate)
    init_scales = [1e-3, 1e-2]
    seeds = 4
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import _validation as V
from ..dynamics import Status
from ..dynamics.descent import descent_init, descent_segment, finish_status
from ..dynamics.optimizers import group_rmsprop
from ..factorizations import MODELS as MODEL_CLASSES
from ..factorizations import model_class
from ..factorizations.hierarchical import _plan as tree_plan
from ..factorizations.trees import check_widths
from ..sweep import sweep
from ..tasks import (
    DENSE_LIMIT,
    SENSING_LIMIT,
    TRACEABLE_DRAW_LIMIT,
    matrix_completion,
    matrix_sensing,
    tensor_completion,
    tensor_sensing,
)
from ._results import capped_at_t1, flow_segment
from ._runner import run_chunks, stack_chunks
from ._sweep_report import plot as plot
from ._sweep_report import summary as summary

NAME = "sweep"
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
    (0: :func:`jaxreg.sweep`'s default) is the number of runs per vmapped program: the
    runs are sharded over every device (of every process under ``jax.distributed``), and a
    fixed ``chunk_size`` gives the same bits whatever the number of devices or processes.
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
        _num_params(self)  # builds the model abstractly: it checks its options
        V.number("stop_at_loss", self.stop_at_loss, minimum=0.0)
        V.divisible("num_saves", self.num_saves, "num_chunks", self.num_chunks)
        self._check_task()
        if self.model == "hierarchical":
            check_widths(self.widths, tree_plan(self.shape, None))
        if self.optimizer != "flow":
            V.divisible("num_steps", self.num_steps, "num_saves", self.num_saves)
            check_optimizer(self)  # unknown names and bad options fail here, before any work
        V.fits_in_memory("seeds", self.seeds, len(self.init_scales) * self.seeds * _bytes_per_run(self))

    def _check_task(self):
        """The target and observations can be drawn (checked on the config, never traced)."""
        numel = int(np.prod(self.shape))
        if self.model == "matrix" and self.target_rank > min(self.shape):
            raise ValueError(f"target_rank must be at most min(shape) = {min(self.shape)}, got {self.target_rank}")
        if self.model != "matrix" and self.target == "ht":
            plan = tree_plan(self.shape, None)
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
    def preset(cls, size: str) -> "Config":
        V.choice("size", size, ("tiny", "small", "paper"))
        if size == "tiny":
            return cls(shape=(12, 12), num_observed=60, t1=200.0, num_saves=10, num_chunks=2, seeds=2)
        return cls()


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
    model = jax.eval_shape(lambda: _model(config, jax.random.key(0), 1.0))
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(model) if hasattr(x, "shape"))


def _bytes_per_run(config: Config) -> int:
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
    return 8 * (dense + observations + _num_params(config) + outputs)


def _problem(config: Config, key):
    if config.model == "matrix":
        make = matrix_completion if config.task == "completion" else matrix_sensing
        return make(key, config.shape, config.target_rank, config.num_observed)
    make = tensor_completion if config.task == "completion" else tensor_sensing
    return make(key, config.shape, config.target_rank, config.num_observed, target=config.target)


def _model(config: Config, key, init_scale):
    cls = model_class(config.model)
    options = {
        name: getattr(config, name)
        for name in LEGACY_OPTIONS
        if getattr(config, name) is not None and name in cls.option_names()
    }
    options.update(config.model_options)
    return cls.from_options(key, config.shape, init_scale=init_scale, **options)


def _norms(model, top):
    norms = jnp.sort(model.component_norms())[::-1]
    return jnp.pad(norms, (0, max(0, top - norms.shape[0])), constant_values=jnp.nan)[:top]


def _metrics(problem, top, dense):
    def fn(m):
        err = problem.reconstruction_error(m) if dense else jnp.nan
        return problem.test_loss(m), err, _norms(m, top)

    return fn


def run(config: Config, *, out_dir=None, resume=False, progress=True) -> dict:
    n_init, n_seed = len(config.init_scales), config.seeds
    keys = jax.random.split(jax.random.key(config.seed), n_seed)
    pkeys, mkeys = jax.vmap(jax.random.split, out_axes=1)(keys)
    scales = jnp.asarray(config.init_scales)
    # runs ordered (init_scale, seed); every init scale shares its seed's problem and key
    run_pkeys = jnp.tile(pkeys, (n_init,))
    run_mkeys = jnp.tile(mkeys, (n_init,))
    run_scales = jnp.repeat(scales, n_seed)
    problems, models = sweep(
        lambda pk, mk, s: (_problem(config, pk), _model(config, mk, s)),
        run_pkeys,
        run_mkeys,
        run_scales,
        chunk_size=config.chunk_size or None,
    )
    dense = problems.target is not None
    per_chunk = config.num_saves // config.num_chunks
    stop = config.stop_at_loss if config.stop_at_loss > 0 else None

    if config.optimizer == "flow":
        dt = config.t1 / config.num_chunks

        def one(problem, model, status):
            traj = flow_segment(
                problem, model, dt, per_chunk, config, stop_at_loss=stop, metrics=_metrics(problem, config.top, dense)
            )
            done = status != Status.COMPLETED  # stopped or failed in an earlier chunk: frozen
            new_model = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), model, traj.model)
            frozen = lambda x: jnp.where(done, jnp.full_like(x, jnp.inf), x)  # noqa: E731
            out = (frozen(traj.loss), *jax.tree_util.tree_map(frozen, traj.metrics))
            new_status = jnp.where(done, status, traj.status)
            return new_model, new_status, out, jnp.where(done, 0, traj.num_steps)

        state = (models, jnp.full((n_init * n_seed,), Status.COMPLETED, jnp.int32))
        batched = _swept(one, n_init * n_seed, config.chunk_size)

        def step(state, k):
            models, status = state
            models, status, (loss, test, err, norms), steps = batched(problems, models, status)
            return (models, status), {
                "loss": loss,
                "test_loss": test,
                "reconstruction_error": err,
                "component_norms": norms,
                "steps": steps,
            }
    else:
        optimizer = make_optimizer(config)
        every = config.num_steps // config.num_saves
        stop_arr = -np.inf if stop is None else stop

        def one(problem, carry, model):
            static = eqx.partition(model, eqx.is_inexact_array)[1]
            dtype = jax.tree_util.tree_leaves(carry[0])[0].dtype
            carry, (loss, (test, err, norms)) = descent_segment(
                problem.loss,
                static,
                optimizer,
                carry,
                per_chunk,
                every,
                _metrics(problem, config.top, dense),
                jnp.asarray(stop_arr, dtype),
            )
            return carry, (loss, test, err, norms)

        batched = _swept(one, n_init * n_seed, config.chunk_size)
        state = eqx.filter_vmap(lambda m: descent_init(m, optimizer))(models)

        def step(state, k):
            state, (loss, test, err, norms) = batched(problems, state, models)
            return state, {
                "loss": loss,
                "test_loss": test,
                "reconstruction_error": err,
                "component_norms": norms,
                "steps": jnp.zeros_like(state[3]),
            }

    state, outs, wall = run_chunks(
        step, state, config.num_chunks, out_dir=out_dir, resume=resume, progress=progress, desc=NAME, fingerprint=config
    )
    steps_per_chunk = [o.pop("steps") for o in outs]
    data = stack_chunks(outs, axis=1)
    if config.optimizer == "flow":
        status = np.asarray(state[1] if stop is None else capped_at_t1(state[1]))  # t1 before stop_at_loss
        steps = np.sum(steps_per_chunk, axis=0)
        times = np.linspace(config.t1 / config.num_saves, config.t1, config.num_saves)
        time_name = "flow time t"
    else:
        finish = eqx.filter_vmap(_descent_status, in_axes=(0, 0, 0, None))
        status = np.asarray(eqx.filter_jit(finish)(problems, models, state, stop_arr))
        steps = np.asarray(state[3])
        times = (np.arange(1, config.num_saves + 1) * (config.num_steps // config.num_saves)).astype(float)
        time_name = "step"

    def grid(x):  # (run, ...) -> (init_scale, seed, ...)
        return x.reshape(n_init, n_seed, *x.shape[1:])

    top = config.top
    return {
        "arrays": {
            "loss": (("init_scale", "seed", "time"), grid(data["loss"])),
            "test_loss": (("init_scale", "seed", "time"), grid(data["test_loss"])),
            "reconstruction_error": (("init_scale", "seed", "time"), grid(data["reconstruction_error"])),
            "component_norms": (("init_scale", "seed", "time", "component"), grid(data["component_norms"])),
            "solver_steps": (("init_scale", "seed"), grid(steps)),
        },
        "coords": {
            "init_scale": list(config.init_scales),
            "seed": list(range(n_seed)),
            "time": times.tolist(),
            "component": list(range(1, top + 1)),
            "time_name": time_name,
        },
        "status": Status.names(status),
    }


def _swept(one, num_runs: int, chunk_size: int):
    """``one`` over all runs through :func:`jaxreg.sweep` (sharded over every device, of
    every process under ``jax.distributed``): one compiled program reused by every chunk."""
    index = jnp.arange(num_runs)

    def fn(_, *args):
        return one(*args)

    def batched(*args):
        return sweep(fn, index, *args, chunk_size=chunk_size or None)

    return batched


def _descent_status(problem, model, carry, stop):
    params, opt_state, status, steps = carry
    final = eqx.combine(params, eqx.partition(model, eqx.is_inexact_array)[1])
    return finish_status(problem.loss, final, status, jnp.asarray(stop))
