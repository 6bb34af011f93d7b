"""Pieces that many reproductions share: per-seed set-ups, flow and descent segments with
the Config's solver settings, status words and the grid tables of their summaries."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import TensorFactorization, seed_keys
from jaxreg.dynamics import Status, gradient_descent, gradient_flow, group_rmsprop
from jaxreg_lab.claims import coordinate_index, select


def per_seed(fn, keys, *args):
    """``fn(keys[i], *[leaf[i] of args])`` for every i, run op by op and stacked.

    For the set-up of a reproduction (problems, targets, initial models): it is cheap to
    run but, vmapped into one XLA program, slow to compile, since every random draw inside
    it is compiled anew (incremental-learning's tiny set-up: 36 s compiled as one program,
    8 s op by op on one core). Op by op, every draw reuses the program of its size class
    (:func:`jaxreg._random.normal`). Unlike :func:`jaxreg.sweep`, the result does not
    depend on the number of devices or processes: every process computes every seed.

    Arguments:
        fn: one seed's set-up, ``fn(key, *args) -> PyTree``.
        keys: (S, ...) PRNG keys.
        *args: pytrees whose leaves have leading axis S.

    Returns:
        ``fn``'s output pytree with a leading axis S on every array leaf.
    """
    return stack([fn(keys[i], *jax.tree.map(lambda a, i=i: a[i], args)) for i in range(len(keys))])


def per_seed_and_scale(make, keys, scales):
    """``make(keys[i], scales[j])`` for every seed i and init scale j, run op by op (see
    :func:`per_seed`) and stacked on two leading axes (seed, scale).

    Arguments:
        make: one initial model, ``make(key, init_scale) -> PyTree``.
        keys: (S, ...) PRNG keys.
        scales: a sequence of init scales (Python floats).

    Returns:
        ``make``'s output pytree with leading axes (S, len(scales)) on every array leaf.
    """
    return per_seed(lambda key: stack([make(key, s) for s in scales]), keys)


def cp_models_per_scale(config, keys):
    """Every (seed, init scale)'s initial CP model: ``config.rank`` components of
    ``config.shape`` at each of ``config.init_scales``, all the scales of a seed drawn from
    ``fold_in(key, 1)`` op by op (see :func:`per_seed`).

    Arguments:
        config: the frozen ``Config`` (``shape``, ``rank``, ``init_scales``).
        keys: (S,) PRNG keys, one per seed.

    Returns:
        The :class:`jaxreg.TensorFactorization` with leading axes (S, len(init_scales)).
    """
    return per_seed_and_scale(
        lambda key, s: TensorFactorization(jax.random.fold_in(key, 1), config.shape, config.rank, init_scale=s),
        keys,
        config.init_scales,
    )


def stack(trees):
    """Pytrees of one structure stacked leaf by leaf on a new leading axis.

    Arguments:
        trees: a non-empty sequence of pytrees (e.g. models of one shape).

    Returns:
        One pytree whose every array leaf is ``jnp.stack`` of the trees' leaves.
    """
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


@functools.lru_cache(maxsize=4)
def initial_setups(setup, config):
    """``setup(config, key)`` for every seed's key, stacked on a leading seed axis.

    The keys are ``jr.seed_keys(config.seed, config.seeds)``. Cached
    per (setup, configuration), both immutable, so a run resumed in the same process does
    not compile and draw the set-up again.

    Arguments:
        setup: a module-level function ``(config, key) -> pytree`` (e.g. problem and model).
        config: the frozen ``Config``.

    Returns:
        The stacked pytree (see :func:`per_seed`).
    """
    keys = seed_keys(config.seed, config.seeds)
    return per_seed(lambda k: setup(config, k), keys)


def solver_options(config) -> dict:
    """The ODE solver's keywords of :func:`jaxreg.gradient_flow` that every flow
    reproduction takes from its ``Config``: ``rtol``, ``atol`` and ``max_steps``."""
    return {"rtol": config.rtol, "atol": config.atol, "max_steps": config.max_steps}


def flow_segment(problem, model, dt, num_saves, config, **kwargs):
    """The gradient flow ``dW/dt = -grad L(W)`` of ``problem.loss`` from ``model`` over a
    time ``dt``, saved at the ``num_saves`` equally spaced times ``dt/num_saves, ..., dt``,
    with the ``Config``'s solver options (:func:`solver_options`).

    Arguments:
        problem: the task (its ``loss``).
        model: the factorization at the segment's start.
        dt: the segment's length in flow time.
        num_saves: the number of saved times in the segment.
        config: the frozen ``Config`` (``rtol``, ``atol``, ``max_steps``).
        **kwargs: further keywords of :func:`jaxreg.gradient_flow` (``metrics``, ``stop_at_loss``).

    Returns:
        The :func:`jaxreg.gradient_flow` trajectory.
    """
    ts = jnp.linspace(dt / num_saves, dt, num_saves)
    return gradient_flow(problem.loss, model, dt, ts=ts, **solver_options(config), **kwargs)


def capped_at_t1(status):
    """The status of a flow run towards a loss (``stop_at_loss``) whose time ``t1`` ended
    it first: :func:`jaxreg.gradient_flow` reports reaching ``t1`` as COMPLETED (``t1`` is
    its horizon), but a reproduction that runs to a loss sets ``t1`` as a cap, so COMPLETED
    becomes MAX_STEPS; other codes are kept.

    Arguments:
        status: status codes (any shape; JAX or NumPy).

    Returns:
        The codes with COMPLETED replaced by MAX_STEPS.
    """
    return jnp.where(status == Status.COMPLETED, Status.MAX_STEPS, status)


def rmsprop_descent(loss, model, config, *, learning_rate=None, **kwargs):
    """``config.num_steps`` steps of GroupRMSprop descent (:func:`jaxreg.group_rmsprop`
    with learning rate ``config.lr``) on ``loss`` from ``model``, stopped once the loss is
    below ``config.stop_at_loss``.

    Arguments:
        loss: the loss ``model -> scalar``.
        model: the initial factorization.
        config: the frozen ``Config`` (``lr``, ``num_steps``, ``stop_at_loss``).
        learning_rate: a number or optax schedule used instead of ``config.lr``.
        **kwargs: further keywords of :func:`jaxreg.gradient_descent` (``save_every``, ``metrics``).

    Returns:
        The :func:`jaxreg.gradient_descent` trajectory.
    """
    return gradient_descent(
        loss,
        model,
        group_rmsprop(config.lr if learning_rate is None else learning_rate),
        config.num_steps,
        stop_at_loss=config.stop_at_loss,
        **kwargs,
    )


def mean_std(values, fmt: str, std_fmt: str) -> str:
    """``"<mean> +- <std>"`` of ``values`` over seeds for a summary table, the mean right-
    and the std left-aligned (e.g. ``fmt="13.2f"``, ``std_fmt="7.2f"``); ``values``' own
    ``mean``/``std`` are used (an xarray DataArray skips NaN)."""
    return f"{values.mean():>{fmt}} +- {values.std():<{std_fmt}}"


def status_counts(status) -> str:
    """``"k/N"`` runs of ``status`` (codes or names, any shape) that reached their stop
    criterion (:meth:`jaxreg.Status.ok`), then the worst status among them, e.g.
    ``"1/3 max_steps"``: the summary tables' account of a group of runs."""
    flat = np.ravel(np.asarray(status))
    reached = sum(Status.ok(s) for s in flat.tolist())
    return f"{reached}/{flat.size} {Status.name(Status.worst(flat))}"


def run_status(results) -> np.ndarray:
    """Every run's status of loaded ``results``: the ``"status"`` array when one is saved
    (one entry per run of a grid), else ``results.meta["status"]``."""
    if "status" in results.arrays:
        return np.asarray(results["status"])
    return np.asarray(results.meta.get("status") or [])


# A relative error ||W - W*|| / ||W*|| above this leaves more than half of the target's
# norm wrong: the run did not recover its target, whatever its status says.
HIGH_RELATIVE_ERROR = 0.5


@dataclasses.dataclass(frozen=True)
class HighError:
    """A reproduction's notion of a run that reached its stop criterion (``completed``,
    ``converged``) at a high error: ``measure(results)`` gives ``(dims, values)``, each
    run's (or grid point's) error at the end on named dimensions that include the runs'
    grid (e.g. ``("depth", "seed")``), and a value above ``threshold`` is high.

    Attributes:
        quantity: what ``measure`` gives, in words (shown in the footer).
        threshold: the value above which the error is high.
        measure: ``results -> (dims, values)``.
    """

    quantity: str
    threshold: float
    measure: Callable

    @classmethod
    def final(cls, name: str, quantity: str, threshold: float = HIGH_RELATIVE_ERROR) -> HighError:
        """The last entry along the last axis of the saved array ``name`` (e.g. the
        relative reconstruction error at the end of the flow).

        Arguments:
            name: the saved array, its last dimension the saves (time, iteration).
            quantity: the footer's words for it.
            threshold: the value above which it is high.

        Returns:
            The :class:`HighError`; its measure gives None for results without ``name``.
        """

        def measure(results):
            if name not in results.arrays:  # a setting that saves no such array (e.g. real data)
                return None
            return results.dims[name][:-1], np.asarray(results[name])[..., -1]

        return cls(quantity, threshold, measure)


def _status_on(results, dims: tuple[str, ...]) -> np.ndarray | None:
    """Each run's status code laid on ``dims`` (the worst over any run dimension not in
    ``dims``, repeated along any of ``dims`` that the runs do not span); None when the
    statuses lie on no known grid."""
    from jaxreg_lab.store.dataset import status_dims

    if "status" in results.arrays:
        codes, grid = run_status(results), tuple(results.dims["status"])
    else:
        grid = status_dims(results)
        if grid is None:
            return None
        codes = np.asarray(results.meta["status"]).reshape([len(results.coords[d]) for d in grid])
    codes = np.asarray(Status.worst(codes, axis=tuple(i for i, d in enumerate(grid) if d not in dims)))
    kept = [d for d in grid if d in dims]
    codes = np.transpose(codes, [kept.index(d) for d in dims if d in kept])  # kept axes in the order of dims
    shape = [len(results.coords[d]) if d in kept else 1 for d in dims]
    return np.broadcast_to(codes.reshape(shape), [len(results.coords[d]) for d in dims])


def high_error_runs(results, high: HighError) -> list[str]:
    """The runs that reached their stop criterion at a high error, each as
    ``"depth=4 seed=2 (completed, 0.93)"``.

    Arguments:
        results: loaded results.
        high: the reproduction's :class:`HighError`.

    Returns:
        One entry per such run (or grid point), in the order of the array.
    """
    measured = high.measure(results)
    if measured is None:
        return []
    dims, values = tuple(measured[0]), np.asarray(measured[1], float)
    status = _status_on(results, dims)
    if status is None:
        return []
    found = []
    for index in zip(*np.nonzero(values > high.threshold)):
        code = int(status[index])
        if Status.ok(code):
            where = " ".join(f"{d}={results.coords[d][i]}" for d, i in zip(dims, index))
            found.append(f"{where} ({Status.name(code)}, {values[index]:.3g})")
    return found


def status_report(results, high_error: HighError | None = None) -> str:
    """The lines under every summary table: how many runs reached their stop criterion
    (loss reached, or the whole horizon run without one) and how the others ended; with
    the reproduction's ``high_error``, a second line names the runs that reached it at a
    high error (a ``completed`` run is not a successful one).

    Arguments:
        results: loaded results.
        high_error: the reproduction's :class:`HighError` (module ``HIGH_ERROR``), if any.

    Returns:
        The footer.
    """
    status = np.ravel(run_status(results))
    if status.size == 0:
        return "runs: no status recorded"
    names = [s if isinstance(s, str) else Status.name(s) for s in status.tolist()]
    others = {n: names.count(n) for n in Status.NAMES if n in names and not Status.ok(n)}
    tail = f" ({', '.join(f'{c} {n}' for n, c in others.items())})" if others else ""
    line = f"runs that reached their stop criterion: {len(names) - sum(others.values())}/{len(names)}{tail}"
    if high_error is None:
        return line
    high = high_error_runs(results, high_error)
    rule = f"{high_error.quantity} > {high_error.threshold:g}"
    if not high:
        return f"{line}\nnone of them at a high error ({rule})"
    return f"{line}\nof them, ended at a high error ({rule}), not a success: " + "; ".join(high)


def _cell_status(results, dims: tuple[str, str]):
    """The status array with ``dims`` moved first, or None when it lacks one of them."""
    if "status" not in results.arrays or not set(dims) <= set(results.dims["status"]):
        return None
    names = results.dims["status"]
    status = np.moveaxis(np.asarray(results["status"]), [names.index(d) for d in dims], [0, 1])
    return status.reshape(*status.shape[:2], -1)


def grid_table(results, dims: tuple[str, str], header: str, row) -> str:
    """A summary table over two coordinates of ``results``: the ``header`` line, then one
    line ``row(i, a, j, b)`` per cell, ``a = coords[dims[0]][i]`` (outer loop) and
    ``b = coords[dims[1]][j]`` (inner loop). When a ``"status"`` array spans both
    dimensions each line ends with the cell's :func:`status_counts` (its status is the
    worst of its runs)."""
    outer, inner = (results.coords[d] for d in dims)
    cells = _cell_status(results, dims)
    if cells is not None:
        header = f"{header}  reached stop"
    lines = [header]
    for i, a in enumerate(outer):
        for j, b in enumerate(inner):
            tail = "" if cells is None else f"  {status_counts(cells[i, j])}"
            lines.append(row(i, a, j, b) + tail)
    return "\n".join(lines)


def cell_status(codes) -> tuple[str, int]:
    """A grid cell's status over its runs' :class:`Status` codes: the worst and how many
    runs reached their stop criterion (:meth:`jaxreg.Status.ok`), the rule of
    :func:`status_counts`. The stop-at-loss grids map a horizon run out without reaching
    the loss to ``max_steps``, so for them ``ok`` means ``converged``."""
    flat = np.ravel(np.asarray(codes))
    return Status.name(Status.worst(flat)), sum(Status.ok(c) for c in flat.tolist())


def pick(results, name: str, **where) -> np.ndarray | None:
    """:func:`jaxreg_lab.claims.select` of a claim's measure, or None when a picked value is
    not among the run's coordinates (e.g. an init scale that the tiny preset lacks): the
    claim's measure then returns :func:`nan_per_seed`. A dimension that the run does not
    have at all is an error, as in ``select``.

    Arguments:
        results: loaded results.
        name: the array's name.
        **where: ``dim=value`` picks (see ``select``).

    Returns:
        The array, seed axis first and the picked dimensions removed, or None.
    """
    if any(coordinate_index(results.coords[dim], value) is None for dim, value in where.items()):
        return None
    return select(results, name, **where)


def nan_per_seed(results) -> np.ndarray:
    """One NaN per seed: the values of a claim whose coordinates are absent from the run
    (a NaN counts as not holding)."""
    return np.full(len(results.coords["seed"]), np.nan)
