"""GroupRMSprop, the reference code's optimizer, as an optax transformation."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array


class GroupRMSpropState(NamedTuple):
    count: Array  # number of updates so far
    v: Array  # running mean of the squared gradient norm (one scalar)


def scale_by_group_rms(decay: float = 0.99, eps: float = 1e-6) -> optax.GradientTransformation:
    """Divide every gradient by one shared scalar: sqrt(v_hat) + eps, with
    v <- a v + (1 - a) sum_p ||g_p||^2 and v_hat = v / (1 - a^t)."""

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


def group_rmsprop(learning_rate: float, decay: float = 0.99, eps: float = 1e-6) -> optax.GradientTransformation:
    """GroupRMSprop (Arora et al. 2019; Razin et al. 2021, 2022): one adaptive rate for all
    parameters, lr_t = lr / (sqrt(v_hat_t) + eps), p <- p - lr_t g_p.

    Because the rate is a scalar, descent follows the gradient-flow path re-timed (for
    small ``learning_rate``). ``eps`` is 1e-6 in Razin et al., 1e-4 in Arora et al.

    Example:
        >>> opt = group_rmsprop(1e-3)
        >>> traj = jr.gradient_descent(problem.loss, model, opt, 10_000)
    """
    return optax.chain(scale_by_group_rms(decay, eps), optax.scale_by_learning_rate(learning_rate))
