"""``jaxreg sweep --config FILE.toml``: any model x task x optimizer over seeds and init scales.

One TOML file names a factorization (a name of :data:`jaxreg.factorizations.MODELS`:
``matrix``, ``cp``, ``hierarchical``, ``deep_cp``, ``tensor_train``),
a task (``completion`` or ``sensing`` of a random low-rank target), and an optimizer
(``flow`` for exact gradient flow d theta/dt = -grad L(theta), or any optax optimizer by
name, or ``group_rmsprop``), and the grid ``init_scales`` x ``seeds``. The sweep is a
:class:`jaxreg_lab.contract.Reproduction` (``REPRODUCTION``): each run of the grid is one
run of the driver (:func:`jaxreg_lab.driver.run_reproduction`), which splits the runs over
every device of every process and checkpoints each of the ``num_chunks`` chunks, so a
killed sweep resumed (``--resume``) gives identical results. Saved per run and save
point: the training loss, the test loss, the reconstruction error
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

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import seed_keys
from jaxreg.dynamics import Status
from jaxreg.dynamics.descent import descent_init, descent_segment, finish_status
from jaxreg.metrics import effective_rank_from_singular_values
from jaxreg_lab.claims import Claim
from jaxreg_lab.contract import Final, Reproduction, Setup
from jaxreg_lab.reproductions._results import HighError, capped_at_t1, flow_segment, per_seed
from jaxreg_lab.reproductions._sweep_config import LEGACY_OPTIONS as LEGACY_OPTIONS
from jaxreg_lab.reproductions._sweep_config import MODELS as MODELS
from jaxreg_lab.reproductions._sweep_config import NAME as NAME
from jaxreg_lab.reproductions._sweep_config import TASKS as TASKS
from jaxreg_lab.reproductions._sweep_config import Config as Config
from jaxreg_lab.reproductions._sweep_config import check_optimizer as check_optimizer
from jaxreg_lab.reproductions._sweep_config import make_model, make_optimizer, make_problem
from jaxreg_lab.reproductions._sweep_report import last_finite
from jaxreg_lab.reproductions._sweep_report import plot as plot
from jaxreg_lab.reproductions._sweep_report import summary as summary

# the runs that reach their stop criterion without recovering the target, named in the
# footer of the summary (jaxreg_lab.reproductions._results.status_report); NaN (a task
# with no dense target) is never high
HIGH_ERROR = HighError.final("reconstruction_error", "rel. reconstruction error at the end")

OUTPUTS = ("loss", "test_loss", "reconstruction_error", "component_norms")  # saved per run and save point


def _norms(model, top):
    norms = jnp.sort(model.component_norms())[::-1]
    return jnp.pad(norms, (0, max(0, top - norms.shape[0])), constant_values=jnp.nan)[:top]


def _metrics(problem, top, dense):
    def fn(m):
        err = problem.reconstruction_error(m) if dense else jnp.nan
        return problem.test_loss(m), err, _norms(m, top)

    return fn


def _stop(config: Config) -> float | None:
    """The loss a run stops at, None for none."""
    return config.stop_at_loss if config.stop_at_loss > 0 else None


def _descent_status(problem, static, carry, stop):
    """A descent run's final status (:func:`jaxreg.dynamics.descent.finish_status`)."""
    params, opt_state, status, steps = carry
    return finish_status(problem.loss, eqx.combine(params, static), status, jnp.asarray(stop))


class Sweep(Reproduction):
    """The grid ``init_scales`` x ``seeds``, runs ordered (init scale, seed); every init
    scale shares its seed's problem and model key. Inputs: each run's problem and, for a
    descent, its model's non-trained part. State: a flow's model and status (a run that
    stopped or failed stays frozen: inf saved after it, no solver steps counted); a
    descent's carry (parameters, optimizer state, status, steps)."""

    name = NAME
    config = Config

    def outputs(self, config: Config) -> dict:
        grid = ("init_scale", "seed")
        return {
            "loss": (*grid, "time"),
            "test_loss": (*grid, "time"),
            "reconstruction_error": (*grid, "time"),
            "component_norms": (*grid, "time", "component"),
            "solver_steps": grid,
        }

    def setup(self, config: Config) -> Setup:
        n_init, n_seed = len(config.init_scales), config.seeds
        keys = seed_keys(config.seed, n_seed)
        pkeys, mkeys = jax.vmap(jax.random.split, out_axes=1)(keys)
        problems, models = per_seed(
            lambda pk, mk, s: (make_problem(config, pk), make_model(config, mk, s)),
            jnp.tile(pkeys, (n_init,)),
            jnp.tile(mkeys, (n_init,)),
            jnp.repeat(jnp.asarray(config.init_scales), n_seed),
        )
        if config.optimizer == "flow":
            inputs = (problems, None)
            state = (models, jnp.full((n_init * n_seed,), Status.COMPLETED, jnp.int32))
            times = np.linspace(config.t1 / config.num_saves, config.t1, config.num_saves)
            time_name = "flow time t"
        else:
            optimizer = make_optimizer(config)
            inputs = (problems, eqx.partition(models, eqx.is_inexact_array)[1])
            state = eqx.filter_vmap(lambda m: descent_init(m, optimizer))(models)
            times = (np.arange(1, config.num_saves + 1) * (config.num_steps // config.num_saves)).astype(float)
            time_name = "step"
        coords = {
            "init_scale": list(config.init_scales),
            "seed": list(range(n_seed)),
            "time": times.tolist(),
            "component": list(range(1, config.top + 1)),
            "time_name": time_name,
        }
        # the default on several CPU devices, as jr.sweep's: every run unbatched (XLA's CPU
        # backend runs unbatched matmuls faster, and a flow stops at its own last step)
        devices = jax.devices()
        multi_cpu = len(devices) > 1 and all(d.platform == "cpu" for d in devices)
        chunk_size = config.chunk_size or (1 if multi_cpu else None)
        return Setup(inputs, state, config.num_chunks, (n_init, n_seed), coords, chunk_size=chunk_size)

    def chunk(self, config: Config, inputs, state, k):
        problem, static = inputs
        per_chunk = config.num_saves // config.num_chunks
        metrics = _metrics(problem, config.top, problem.target is not None)
        stop = _stop(config)
        if config.optimizer == "flow":
            model, status = state
            traj = flow_segment(
                problem, model, config.t1 / config.num_chunks, per_chunk, config, stop_at_loss=stop, metrics=metrics
            )
            done = status != Status.COMPLETED  # stopped or failed in an earlier chunk: frozen
            model = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), model, traj.model)
            frozen = lambda x: jnp.where(done, jnp.full_like(x, jnp.inf), x)  # noqa: E731
            values = (frozen(traj.loss), *jax.tree_util.tree_map(frozen, traj.metrics))
            status = jnp.where(done, status, traj.status)
            # a run towards a loss that reaches t1 at the last chunk ends max_steps (t1 is its cap)
            last = k == config.num_chunks - 1
            reported = status if stop is None else jnp.where(last, capped_at_t1(status), status)
            outputs = {**dict(zip(OUTPUTS, values)), "steps": jnp.where(done, 0, traj.num_steps)}
            return (model, status), reported, outputs
        stop_value = -np.inf if stop is None else stop
        dtype = jax.tree_util.tree_leaves(state[0])[0].dtype
        every = config.num_steps // config.num_saves
        carry, (loss, other) = descent_segment(
            problem.loss,
            static,
            make_optimizer(config),
            state,
            per_chunk,
            every,
            metrics,
            jnp.asarray(stop_value, dtype),
        )
        # the finish status is known at the last chunk only; the earlier ones report
        # COMPLETED, the least code, so the driver's worst status is the finish status
        finished = _descent_status(problem, static, carry, stop_value)
        reported = jnp.where(k == config.num_chunks - 1, finished, Status.COMPLETED)
        return carry, reported, dict(zip(OUTPUTS, (loss, *other)))

    def assemble(self, config: Config, setup: Setup, final: Final) -> dict:
        data = final.data
        steps = data["steps"] if config.optimizer == "flow" else np.asarray(final.state[3])
        return {**{name: data[name] for name in OUTPUTS}, "solver_steps": steps}

    def claims(self) -> tuple:
        return CLAIMS

    plot = staticmethod(plot)
    summary = staticmethod(summary)


# ---------------------------------------------------------------- claims
# The example (examples/sweep_matrix_flow.toml) is a demo of the tool, not a paper's figure:
# its claims are what it is offered to show, the implicit bias of a small initialization
# (Arora et al. 2019: deep matrix completion from a smaller init ends at lower rank and
# generalizes better), on runs that fitted their observations. Every sweep is judged by
# them: a sweep with one init scale, or without a dense target, gets NaN (does not hold).


def _final(results, name: str) -> np.ndarray:
    """(init_scale, seed): the last finite value of ``name`` over time."""
    return last_finite(results[name])


def _smallest_over_largest(values) -> np.ndarray:
    """(seed,): ``values`` (init_scale, seed, ...) at the smallest init scale over its
    value at the largest; NaN for every seed when the sweep has a single init scale."""
    return values[0] / values[-1] if len(values) > 1 else np.full(values.shape[1:], np.nan)


def _by_init_scale(results, values) -> np.ndarray:
    """``values`` (init_scale, seed, ...) with the init scales in ascending order."""
    return values[np.argsort(results.coords["init_scale"], kind="stable")]


def _largest_final_loss(results) -> np.ndarray:
    """(seed,): max over the init scales of the final training loss."""
    return np.max(_final(results, "loss"), axis=0)


def _error_ratio(results) -> np.ndarray:
    """(seed,): final reconstruction error at the smallest init / at the largest."""
    return _smallest_over_largest(_by_init_scale(results, _final(results, "reconstruction_error")))


def _final_effective_rank(results) -> np.ndarray:
    """(init_scale, seed): the effective rank exp(H(p)), p_i = s_i / sum_j s_j, of the
    saved top component norms s at the end (the NaN padding dropped)."""
    norms = last_finite(np.moveaxis(results["component_norms"], 2, -1))  # (init_scale, seed, component)
    erank = [[float(effective_rank_from_singular_values(jnp.asarray(s[np.isfinite(s)]))) for s in row] for row in norms]
    return np.asarray(erank)


def _effective_rank_ratio(results) -> np.ndarray:
    """(seed,): final effective rank at the smallest init / at the largest."""
    return _smallest_over_largest(_by_init_scale(results, _final_effective_rank(results)))


EXAMPLE = "jaxreg example examples/sweep_matrix_flow.toml (implicit bias of Arora et al. 2019)"
CLAIMS = (
    Claim(
        id="runs-fit",
        statement="Every run fits its observations: the final training loss is below 1e-5 for every init scale.",
        source=EXAMPLE,
        paper="gradient flow reaches a near-zero training loss (the observations are fitted) from every init",
        quantity="largest final training loss over the init scales (the target's entries have RMS 1)",
        measure=_largest_final_loss,
        op="<",
        threshold=1e-5,
    ),
    Claim(
        id="smaller-init-lower-error",
        statement="The smallest init scale ends at a lower reconstruction error than the largest.",
        source=EXAMPLE,
        paper="a smaller initialization generalizes better (lower error on the unobserved entries)",
        quantity="final ||W - W*||_F / ||W*||_F at the smallest init over that at the largest",
        measure=_error_ratio,
        op="<",
        threshold=1.0,
    ),
    Claim(
        id="smaller-init-lower-effective-rank",
        statement="The smallest init scale ends at a lower effective rank than the largest.",
        source=EXAMPLE,
        paper="a smaller initialization finds a lower-rank solution",
        quantity="final effective rank of the top component norms at the smallest init over that at the largest",
        measure=_effective_rank_ratio,
        op="<",
        threshold=1.0,
    ),
)


REPRODUCTION = Sweep()
