"""GroupRMSprop, the reference code's optimizer, as an optax transformation."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float

from jaxreg import validation as V


class GroupRMSpropState(NamedTuple):
    # number of updates so far; the name follows optax's states (it shadows tuple.count)
    count: Array  # pyright: ignore[reportIncompatibleMethodOverride]
    v: Array  # running mean of the squared gradient norm (one scalar)


def scale_by_group_rms(decay: float = 0.99, eps: float = 1e-6) -> optax.GradientTransformation:
    """Divide every gradient by one shared scalar: sqrt(v_hat) + eps, with
    v <- a v + (1 - a) sum_p ||g_p||^2 and v_hat = v / (1 - a^t).

    Arguments:
        decay: a in [0, 1), the running mean's decay.
        eps: a non-negative number added to sqrt(v_hat).

    Returns:
        An optax transformation that rescales updates by 1 / (sqrt(v_hat) + eps).
    """
    decay = V.number("decay", decay, minimum=0.0, below=1.0)
    eps = V.number("eps", eps, minimum=0.0)

    def init_fn(params):
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        return GroupRMSpropState(count=jnp.zeros((), jnp.int32), v=jnp.zeros((), dtype))

    def update_fn(updates, state, params=None):
        del params
        sq = sum(jnp.sum(g * g) for g in jax.tree_util.tree_leaves(updates))
        v = decay * state.v + (1 - decay) * sq
        count = state.count + 1
        v_hat = v / (1 - decay ** count.astype(v.dtype))
        denom = jnp.sqrt(v_hat) + eps
        return jax.tree_util.tree_map(lambda g: g / denom, updates), GroupRMSpropState(count, v)

    return optax.GradientTransformation(init_fn, update_fn)


def group_rmsprop(
    learning_rate: float | Float[Array, ""] | optax.Schedule, decay: float = 0.99, eps: float = 1e-6
) -> optax.GradientTransformation:
    """GroupRMSprop (Arora et al. 2019; Razin et al. 2021, 2022): one adaptive rate for all
    parameters, lr_t = lr / (sqrt(v_hat_t) + eps), p <- p - lr_t g_p.

    Because the rate is a scalar, descent follows the gradient-flow path re-timed (for
    small ``learning_rate``). ``eps`` is 1e-6 in Razin et al., 1e-4 in Arora et al.

    Arguments:
        learning_rate: lr > 0, finite, or an optax schedule (a callable of the step).
        decay: a in [0, 1), the running mean's decay of the squared gradient norm.
        eps: a non-negative number added to sqrt(v_hat).

    Returns:
        An ``optax.GradientTransformation``; a bad argument raises ``ValueError`` here.

    Example:
        >>> opt = group_rmsprop(1e-3)
        >>> traj = jr.gradient_descent(problem.loss, model, opt, 10_000)
    """
    if not callable(learning_rate):
        learning_rate = V.number("learning_rate", learning_rate, positive=True, traced_ok=True)
    return optax.chain(scale_by_group_rms(decay, eps), optax.scale_by_learning_rate(learning_rate))
