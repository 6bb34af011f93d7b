"""Discrete optimizers (any optax transformation) stepped inside ``lax.scan``."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import PyTree

from jaxreg import runtime_checks
from jaxreg import validation as V
from jaxreg.dynamics.trajectory import Status, Trajectory, finite_tree

_RUNNING = -1


def gradient_descent(
    loss: Callable,
    model: PyTree,
    optimizer: optax.GradientTransformation,
    num_steps: int,
    *,
    save_every: int = 1,
    metrics: Callable | None = None,
    stop_at_loss: float | None = None,
) -> Trajectory:
    """Run ``num_steps`` steps of ``optimizer`` on ``loss(model)`` in one ``lax.scan``.

    Saves (loss and ``metrics(model)``) at steps 0, save_every, 2 save_every, ...
    (``num_steps // save_every + 1`` rows; ``Trajectory.ts`` holds the step counts).
    With ``stop_at_loss`` the parameters freeze at the first step whose loss is at most
    that value (status CONVERGED), and a run that takes all ``num_steps`` without
    reaching it ends MAX_STEPS (without ``stop_at_loss``: COMPLETED); a non-finite loss
    freezes them too (status NON_FINITE) without touching other runs of a vmapped batch.
    Plain GD with step eta, theta_{t+1} = theta_t - eta grad L(theta_t), is
    ``optax.sgd(eta)``, the explicit-Euler discretization of gradient flow.

    Arguments:
        loss: L, a scalar function of a model (e.g. ``problem.loss``).
        model: the initial parameters (any pytree).
        optimizer: an ``optax.GradientTransformation``.
        num_steps: the number of steps, a multiple of ``save_every``.
        save_every: steps between saves.
        metrics: ``metrics(model) -> pytree``, evaluated at every save.
        stop_at_loss: freeze the parameters once the loss is at most this value.

    Returns:
        A :class:`Trajectory`: step counts, the loss and ``metrics`` at each save, the
        final model, the :class:`Status` code and the number of steps taken.
    """
    num_steps = V.nonnegative_int("num_steps", num_steps)
    save_every = V.positive_int("save_every", save_every)
    if num_steps % save_every:
        raise ValueError(f"num_steps ({num_steps}) must be a multiple of save_every ({save_every})")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(f"optimizer must be an optax.GradientTransformation, got {type(optimizer).__name__}")
    V.model_fits_loss(loss, model)
    V.metrics_function("metrics", metrics, model)
    if stop_at_loss is not None:
        V.number("stop_at_loss", stop_at_loss, minimum=0.0, traced_ok=True)
    dtype = V.model_params_dtype("model", model)
    stop = jnp.asarray(-jnp.inf if stop_at_loss is None else stop_at_loss, dtype)
    checks = runtime_checks.requested()
    return _descent(loss, model, optimizer, num_steps // save_every, save_every, metrics, stop, checks)


@eqx.filter_jit
def _descent(loss, model, optimizer, num_saves, save_every, metrics, stop, checks: bool) -> Trajectory:
    params, static = eqx.partition(model, eqx.is_inexact_array)
    carry = (params, optimizer.init(params), jnp.asarray(_RUNNING, jnp.int32), jnp.zeros((), jnp.int32))
    with runtime_checks.traced_without_checks(checks):
        first = _record(loss, metrics, eqx.combine(params, static))
        (p, _, status, steps), saved = descent_segment(
            loss, static, optimizer, carry, num_saves, save_every, metrics, stop, checks=checks
        )
        status = finish_status(loss, eqx.combine(p, static), status, stop)
    saved = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, saved)
    ts = jnp.arange(num_saves + 1) * save_every
    return Trajectory(
        ts=ts, loss=saved[0], metrics=saved[1], model=eqx.combine(p, static), status=status, num_steps=steps
    )


def _record(loss, metrics, m):
    return loss(m), (metrics(m) if metrics is not None else None)


def descent_init(model, optimizer: optax.GradientTransformation):
    """The carry ``(params, opt_state, status, steps)`` of :func:`descent_segment` at step 0."""
    params, _ = eqx.partition(model, eqx.is_inexact_array)
    return (params, optimizer.init(params), jnp.asarray(_RUNNING, jnp.int32), jnp.zeros((), jnp.int32))


def descent_segment(
    loss, static, optimizer, carry, num_saves: int, save_every: int, metrics, stop, *, checks: bool | None = None
):
    """``num_saves * save_every`` optimizer steps from ``carry`` in one ``lax.scan``.

    Returns the new carry and ``(loss, metrics)`` after every ``save_every`` steps. A
    long run split into segments (checkpointed between them, with the optimizer state in
    the carry) equals the unsplit run. Status stays ``-1`` while running; see
    :func:`finish_status`. Called while a program is traced; the steps hold no run-time
    check (host callback) unless ``checks`` (default: ``$JAXREG_RUNTIME_CHECKS``, see
    :mod:`jaxreg.runtime_checks`).
    """
    if checks is None:
        checks = runtime_checks.requested()

    def full(p):
        return eqx.combine(p, static)

    value_and_grad = jax.value_and_grad(lambda p: loss(full(p)))

    def step(carry, _):
        p, opt_state, status, steps = carry
        value, g = value_and_grad(p)
        running = status == _RUNNING
        status = jnp.where(
            running & ~jnp.isfinite(value),
            Status.NON_FINITE,
            jnp.where(running & (value <= stop), Status.CONVERGED, status),
        )
        go = status == _RUNNING
        updates, new_state = optimizer.update(g, opt_state, p)
        new_p = optax.apply_updates(p, updates)
        p = jax.tree_util.tree_map(lambda a, b: jnp.where(go, a, b), new_p, p)
        opt_state = jax.tree_util.tree_map(lambda a, b: jnp.where(go, a, b), new_state, opt_state)
        return (p, opt_state, status, steps + go.astype(jnp.int32)), None

    def chunk(carry, _):
        carry, _ = jax.lax.scan(step, carry, None, length=save_every)
        return carry, _record(loss, metrics, full(carry[0]))

    with runtime_checks.traced_without_checks(checks):
        return jax.lax.scan(chunk, carry, None, length=num_saves)


def finish_status(loss, model, status, stop):
    """The final :class:`Status` code of a descent.

    A run still running took all its steps: that is MAX_STEPS when it had a loss to reach
    (``stop`` finite) and COMPLETED when not (``stop = -inf``); a non-finite loss or
    parameter makes it NON_FINITE.

    Arguments:
        loss: the loss ``model -> scalar``.
        model: the final model.
        status: the carried code (``-1`` while running).
        stop: the ``stop_at_loss`` value, ``-inf`` for none.

    Returns:
        The int32 status code.
    """
    capped = jnp.where(jnp.isfinite(stop), Status.MAX_STEPS, Status.COMPLETED)
    status = jnp.where(status == _RUNNING, capped, status)
    finite = finite_tree(model) & jnp.isfinite(loss(model))
    return jnp.where(finite | (status == Status.NON_FINITE), status, Status.NON_FINITE).astype(jnp.int32)
