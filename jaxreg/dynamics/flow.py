"""Gradient flow d theta/dt = -grad_theta L(theta), integrated with diffrax."""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike, Float, PyTree

from jaxreg import runtime_checks
from jaxreg import validation as V
from jaxreg.dynamics.precision import warn_if_unresolvable
from jaxreg.dynamics.trajectory import Status, Trajectory, finite_tree


def vector_field(loss: Callable, model: PyTree) -> PyTree:
    """The gradient-flow vector field d theta/dt = -grad_theta L(theta) at ``model``.

    Arguments:
        loss: maps a model to a scalar.
        model: the point theta (a factorization or any pytree of parameters).

    Returns:
        -grad_theta L, a pytree of the inexact-array leaves of ``model`` (the other leaves
        None), as ``equinox.partition`` splits it.
    """
    params, static = eqx.partition(model, eqx.is_inexact_array)
    g = jax.grad(lambda p: loss(eqx.combine(p, static)))(params)
    return jax.tree_util.tree_map(jnp.negative, g)


def gradient_flow(
    loss: Callable,
    model: PyTree,
    t1: float | Float[Array, ""],
    *,
    ts: ArrayLike | None = None,
    metrics: Callable | None = None,
    solver: diffrax.AbstractSolver | None = None,
    rtol: float | Float[Array, ""] = 1e-8,
    atol: float | Float[Array, ""] = 1e-10,
    stop_at_loss: float | Float[Array, ""] | None = None,
    max_steps: int = 100_000,
    dt0: float | Float[Array, ""] | None = None,
    progress_meter: diffrax.AbstractProgressMeter | None = None,
) -> Trajectory:
    """Integrate gradient flow d theta/dt = -grad L(theta) from ``model`` up to time ``t1``.

    ``loss`` maps a model to a scalar (e.g. ``problem.loss``); ``ts`` are save times
    (default: the final time only, i.e. ``t1`` or the time ``stop_at_loss`` was reached); ``metrics`` maps a model to any pytree and is evaluated at
    each save time (the model is never stored densely). The default solver is Tsit5
    with a PID step-size controller. ``stop_at_loss`` ends the run at the time the loss
    reaches that value (a diffrax Event located by root finding); save times after it
    hold ``inf``. Tolerances, ``t1``, ``ts`` and ``stop_at_loss`` are traced values: new
    values never recompile. Works under ``jax.jit`` and ``jax.vmap``; failures are
    reported in ``Trajectory.status`` instead of raised (``throw=False``), and the
    compiled program holds no run-time check (no host callback, so JAX's persistent
    compilation cache stores it) unless ``JAXREG_RUNTIME_CHECKS=1``
    (:mod:`jaxreg.runtime_checks`).
    For the stiff phase after convergence pass an implicit solver (e.g.
    ``diffrax.Kvaerno5()``) on small models.

    Arguments are checked before anything is traced: a ``ValueError`` names the
    argument when ``ts`` is not a finite non-decreasing 1-d array in [0, t1], a
    tolerance or ``t1`` is not a positive finite number, or ``loss`` is a problem's
    bound method (``problem.loss``) and ``model`` has another shape than the problem.

    Arguments:
        loss: L, a scalar function of a model (e.g. ``problem.loss``).
        model: the initial point theta(0), any pytree of parameters.
        t1: the final time.
        ts: save times in [0, t1], non-decreasing (default: the final time only).
        metrics: ``metrics(model) -> pytree``, evaluated at every save time.
        solver: a ``diffrax.AbstractSolver`` (default ``diffrax.Tsit5()``).
        rtol, atol: the step-size controller's tolerances.
        stop_at_loss: end the run when the loss reaches this value.
        max_steps: the most solver steps (status MAX_STEPS beyond).
        dt0: the initial step (required by non-adaptive solvers).
        progress_meter: progress within the solve, e.g. ``diffrax.TqdmProgressMeter(50)``
            (a bar over flow time, the slowest run under ``vmap``; each refresh is a host
            callback, measured by ``benchmarks/progress_meter.py``); default none.

    Returns:
        A :class:`Trajectory`: save times, the loss and ``metrics`` at each, the final
        model, the :class:`Status` code and the number of solver steps.
    """
    max_steps = V.positive_int("max_steps", max_steps)
    V.model_fits_loss(loss, model)
    V.metrics_function("metrics", metrics, model)
    for name, v in (("t1", t1), ("rtol", rtol), ("atol", atol)):
        V.number(name, v, positive=True, traced_ok=True)
    if stop_at_loss is not None:
        V.number("stop_at_loss", stop_at_loss, minimum=0.0, traced_ok=True)
    if dt0 is not None:
        V.number("dt0", dt0, positive=True, traced_ok=True)
    meter = diffrax.NoProgressMeter() if progress_meter is None else progress_meter
    if not isinstance(meter, diffrax.AbstractProgressMeter):
        raise ValueError(f"progress_meter must be a diffrax.AbstractProgressMeter, got {progress_meter!r}")
    solver = diffrax.Tsit5() if solver is None else solver
    if not isinstance(solver, diffrax.AbstractSolver):
        raise ValueError(f"solver must be a diffrax.AbstractSolver, got {solver!r}")
    if not isinstance(solver, diffrax.AbstractAdaptiveSolver) and dt0 is None:
        raise ValueError(f"dt0 is required with the non-adaptive solver {type(solver).__name__}")
    dtype = V.model_params_dtype("model", model)
    warn_if_unresolvable("gradient_flow", dtype, rtol, atol, model)
    ts_arr = None if ts is None else _save_times(ts, t1, dtype)
    stop = None if stop_at_loss is None else jnp.asarray(stop_at_loss, dtype)
    dt0_arr = None if dt0 is None else jnp.asarray(dt0, dtype)
    return _flow(
        loss,
        model,
        jnp.asarray(t1, dtype),
        ts_arr,
        metrics,
        solver,
        jnp.asarray(rtol, dtype),
        jnp.asarray(atol, dtype),
        stop,
        max_steps,
        dt0_arr,
        meter,
        runtime_checks.requested(),
    )


def _save_times(ts, t1, dtype):
    """``ts`` as an array of ``dtype``, checked (when concrete) in that dtype, the one the
    solver compares with ``t1``; converted with numpy so that nothing compiles."""
    if V.is_traced(ts) or V.is_traced(t1):
        return jnp.asarray(ts, dtype)
    try:
        arr = np.asarray(ts, dtype)
    except (TypeError, ValueError):
        raise ValueError(f"ts must be a 1-d array of save times, got {ts!r}") from None
    V.save_times("ts", arr, np.asarray(t1, dtype))
    return jnp.asarray(arr)


@eqx.filter_jit
def _flow(loss, model, t1, ts, metrics, solver, rtol, atol, stop, max_steps, dt0, meter, checks: bool) -> Trajectory:
    # no host callback unless checks: JAX's persistent compilation cache stores the program
    with runtime_checks.traced_without_checks(checks):
        return _solve(loss, model, t1, ts, metrics, solver, rtol, atol, stop, max_steps, dt0, meter)


def _solve(loss, model, t1, ts, metrics, solver, rtol, atol, stop, max_steps, dt0, meter) -> Trajectory:
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def full(p):
        return eqx.combine(p, static)

    def rhs(t, p, args):
        g = jax.grad(lambda q: loss(full(q)))(p)
        return jax.tree_util.tree_map(jnp.negative, g)

    def save_fn(t, p, args):
        m = full(p)
        return loss(m), (metrics(m) if metrics is not None else None)

    event = None
    if stop is not None:
        # the stop time within the last step: bisection on the dense interpolant, bracketed by
        # the step's ends, meets the same tolerances as Newton without differentiating the
        # interpolant, so the program compiles about a third faster. flip=True: the loss falls
        # through the stop loss, so loss - stop goes from >= 0 at the step's start to < 0 at its end
        bisection = optx.Bisection(rtol=1e-10, atol=1e-12, flip=True)
        event = diffrax.Event(cond_fn=lambda t, y, args, **kw: loss(full(y)) - stop, root_finder=bisection)
    first = diffrax.SubSaveAt(t1=True, fn=save_fn) if ts is None else diffrax.SubSaveAt(ts=ts, fn=save_fn)
    saveat = diffrax.SaveAt(subs=[first, diffrax.SubSaveAt(t1=True)])
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        solver,
        t0=jnp.zeros_like(t1),
        t1=t1,
        dt0=dt0,
        y0=params,
        saveat=saveat,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol)
        if isinstance(solver, diffrax.AbstractAdaptiveSolver)
        else diffrax.ConstantStepSize(),
        event=event,
        max_steps=max_steps,
        throw=False,
        progress_meter=meter,
    )
    # both are set whenever saveat saves something, as it always does here
    assert sol.ys is not None and sol.ts is not None
    (saved_loss, saved_metrics), final = sol.ys
    final_params = jax.tree_util.tree_map(lambda x: x[-1], final)
    final_model = full(final_params)
    final_loss = loss(final_model)
    res = sol.result
    status = jnp.where(
        res == diffrax.RESULTS.successful,
        Status.COMPLETED,
        jnp.where(
            res == diffrax.RESULTS.event_occurred,
            Status.CONVERGED,
            jnp.where(res == diffrax.RESULTS.max_steps_reached, Status.MAX_STEPS, Status.FAILED),
        ),
    )
    finite = finite_tree(final_params) & jnp.isfinite(final_loss)
    status = jnp.where(finite, status, Status.NON_FINITE)
    # A PID controller meeting NaNs shrinks its step until it fails: report that as non-finite.
    status = jnp.where((status == Status.FAILED) & ~jnp.isfinite(final_loss), Status.NON_FINITE, status)
    return Trajectory(
        ts=sol.ts[0],
        loss=saved_loss,
        metrics=saved_metrics,
        model=final_model,
        status=status.astype(jnp.int32),
        num_steps=jnp.asarray(sol.stats["num_steps"], jnp.int32),
    )
