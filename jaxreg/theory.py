"""The theorems' identities, bounds and closed forms (SCIENCE.md sections 1, 2, 5).

Every rate identity has the form d sigma/dt = c * gamma * sigma^p. :func:`rate_identity`
returns both sides at a model: the left one exactly, as the directional derivative
(``jax.jvp``) of the model's ``component_norms`` along the gradient-flow vector field,
the right one from the theorem's formula with grad L(W) of the end-to-end loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .factorizations.matrix import MatrixFactorization


def model_loss(end_to_end_loss: Callable, model) -> Array:
    """L(theta) = end_to_end_loss(W(theta))."""
    return end_to_end_loss(model.materialize())


def observed_rates(end_to_end_loss: Callable, model):
    """d/dt of ``model.component_norms()`` along gradient flow on end_to_end_loss(W(theta)),
    computed exactly with ``jax.jvp`` (valid where the norms are differentiable, e.g.
    simple singular values)."""
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def norms(p):
        return eqx.combine(p, static).component_norms()

    g = jax.grad(lambda p: model_loss(end_to_end_loss, eqx.combine(p, static)))(params)
    direction = jax.tree_util.tree_map(jnp.negative, g)
    return jax.jvp(norms, (params,), (direction,))[1]


def gammas(end_to_end_loss: Callable, model):
    """(sigma, gamma, K) of the model's rate identity d sigma/dt = K gamma sigma^{2-2/K}.

    Delegates to ``model.rate_terms(grad_w)`` with grad_w = grad L(W):
    matrix (Arora et al. 2019): sigma = singular values, gamma_r = <-grad L(W), u_r v_r^T>,
    K = depth; CP (Razin et al. 2021): sigma_r = prod_n ||w_r^n||,
    gamma_r = <-grad L(W), (x)_n w_r^n / ||w_r^n||>, K = order N; hierarchical and deep
    tensor factorizations return dicts / their own exponents (see their docstrings).
    """
    if not hasattr(model, "rate_terms"):
        raise ValueError(f"model must be a jaxreg factorization with rate_terms, got {type(model).__name__}")
    grad_w = jax.grad(end_to_end_loss)(model.materialize())
    return model.rate_terms(grad_w)


def predicted_rates(end_to_end_loss: Callable, model):
    """The right-hand side K gamma sigma^{2-2/K} of the rate identity (balanced case)."""
    sigma, gamma, k = gammas(end_to_end_loss, model)
    return _tree_rate(sigma, gamma, k)


def _tree_rate(sigma, gamma, k, p=None):
    if isinstance(sigma, dict):
        return {n: _tree_rate(sigma[n], gamma[n], k[n]) for n in sigma}
    if isinstance(k, tuple):  # (coefficient, exponent) for models whose p is not 2 - 2/K
        return k[0] * gamma * sigma ** k[1]
    return k * gamma * sigma ** (2.0 - 2.0 / k)


def rate_identity(end_to_end_loss: Callable, model):
    """(observed d sigma/dt, predicted K gamma sigma^{2-2/K}): equal for balanced models."""
    return observed_rates(end_to_end_loss, model), predicted_rates(end_to_end_loss, model)


def relative_residual(observed, predicted, floor: float = 0.0):
    """|observed - predicted| / max(|predicted|, floor), elementwise (pytrees allowed)."""
    return jax.tree_util.tree_map(
        lambda o, p: jnp.abs(o - p) / jnp.maximum(jnp.abs(p), floor), observed, predicted
    )


def unbalanced_bounds(end_to_end_loss: Callable, model):
    """(observed, lower, upper) of Razin et al. 2021, Theorem 2, for a CP model (or any
    model with ``balancedness()`` per component):
    gamma >= 0: K gamma sigma^{2-2/K} <= d sigma/dt <= K gamma (sigma^{2/K} + eps)^{K-1},
    reversed for gamma < 0, with eps = max_{n,m} | ||w^n||^2 - ||w^m||^2 | (conserved)."""
    sigma, gamma, k = gammas(end_to_end_loss, model)
    eps = model.balancedness()
    return _bounds(observed_rates(end_to_end_loss, model), sigma, gamma, k, eps)


def _bounds(observed, sigma, gamma, k, eps):
    if isinstance(sigma, dict):
        parts = {n: _bounds(observed[n], sigma[n], gamma[n], k[n], eps[n]) for n in sigma}
        return tuple({n: parts[n][i] for n in parts} for i in range(3))
    low = k * gamma * sigma ** (2.0 - 2.0 / k)
    high = k * gamma * (sigma ** (2.0 / k) + eps) ** (k - 1)
    return observed, jnp.minimum(low, high), jnp.maximum(low, high)


def conserved_quantities(model):
    """Quantities exactly conserved by gradient flow.

    Matrix: W_{j+1}^T W_{j+1} - W_j W_j^T for j = 1..L-1 (Arora et al. 2018).
    CP: ||w_r^n||^2 - ||w_r^1||^2 for n = 2..N, every r (Razin et al. 2021, Lemma 1).
    """
    if isinstance(model, MatrixFactorization):
        f = model.factors
        return tuple(f[j + 1].T @ f[j + 1] - f[j] @ f[j].T for j in range(model.depth - 1))
    if hasattr(model, "conserved_quantities"):
        return model.conserved_quantities()
    sq = jnp.stack([jnp.sum(f * f, axis=0) for f in model.factors])
    return sq[1:] - sq[:1]


def conservation_drift(model0, model1) -> Array:
    """max over conserved quantities of ||Q(model1) - Q(model0)|| / scale, where scale is the
    norm of the terms (||W_j W_j^T||_F, resp. ||w_r^n||^2) at ``model1``."""
    q0, q1 = conserved_quantities(model0), conserved_quantities(model1)
    if isinstance(model1, MatrixFactorization):
        f = model1.factors
        scale = jnp.max(jnp.stack([jnp.linalg.norm(w @ w.T) for w in f]))
        return jnp.max(jnp.stack([jnp.linalg.norm(a - b) for a, b in zip(q0, q1)])) / scale
    leaves0, leaves1 = jax.tree_util.tree_leaves(q0), jax.tree_util.tree_leaves(q1)
    scale = _norm_scale(model1)
    return jnp.max(jnp.stack([jnp.max(jnp.abs(a - b)) for a, b in zip(leaves0, leaves1)])) / scale


def _norm_scale(model):
    leaves = [x for x in jax.tree_util.tree_leaves(model) if eqx.is_inexact_array(x) and x.size]
    return jnp.max(jnp.stack([jnp.max(jnp.sum(x * x, axis=-2 if x.ndim >= 2 else -1)) for x in leaves]))


# ----------------------------------------------------------------------------------
# Closed forms (SCIENCE.md section 5)


def aligned_mode(t: ArrayLike, a: float, s0: float, N: int) -> Float[Array, "..."]:
    """Solution of ds/dt = N s^{2-2/N} (a - s), s(0) = s0, 0 < s0 < a.

    N = 1: s = a - (a - s0) e^{-t}.  N = 2: s = a e^{2at} / (e^{2at} - 1 + a/s0).
    N = 3: with u = s^{1/3}, du/dt = u^2 (a - u^3) integrates to t = F(u) - F(u0),
    F(u) = (1/a)[-1/u + (1/(3b))(-ln(b - u) + ln(u^2 + b u + b^2)/2
           - sqrt(3) arctan((2u + b)/(b sqrt(3))))], b = a^{1/3},
    inverted by bisection to machine precision. This is the singular value of depth-N
    whitened deep linear regression from a balanced aligned init (Saxe et al. 2014).
    """
    t = jnp.asarray(t)
    if N == 1:
        return a - (a - s0) * jnp.exp(-t)
    if N == 2:
        e = jnp.exp(2 * a * t)
        return a * e / (e - 1 + a / s0)
    if N == 3:
        return _aligned_mode_depth3(t, a, s0)
    raise ValueError(f"N must be 1, 2 or 3 for a closed form, got {N}")


def aligned_mode_time(s: ArrayLike, a: float, s0: float) -> Array:
    """The flow time at which the N = 3 aligned mode reaches s (see :func:`aligned_mode`)."""
    return _f3(jnp.cbrt(jnp.asarray(s)), a) - _f3(jnp.cbrt(jnp.asarray(s0)), a)


def _f3(u, a):
    b = jnp.cbrt(jnp.asarray(a, u.dtype))
    r3 = math.sqrt(3.0)
    inner = -jnp.log(b - u) + 0.5 * jnp.log(u * u + b * u + b * b) - r3 * jnp.arctan((2 * u + b) / (b * r3))
    return (-1.0 / u + inner / (3 * b)) / a


def _aligned_mode_depth3(t, a, s0):
    dtype = jnp.result_type(t.dtype, float)
    b = jnp.cbrt(jnp.asarray(a, dtype))
    u0 = jnp.cbrt(jnp.asarray(s0, dtype))
    target = _f3(u0, a) + t

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = _f3(mid, a) < target
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo = jnp.broadcast_to(u0, t.shape).astype(dtype)
    hi = jnp.broadcast_to(b, t.shape).astype(dtype)
    lo, hi = jax.lax.fori_loop(0, 200, body, (lo, hi))
    return (0.5 * (lo + hi)) ** 3


def constant_gamma(t: ArrayLike, c: float, s0: float, N: int) -> Float[Array, "..."]:
    """Solution of ds/dt = N c s^{2-2/N}, s(0) = s0.

    N = 1: s0 + c t.  N = 2: s0 e^{2ct}.  N >= 3: (s0^{-(N-2)/N} - c (N-2) t)^{-N/(N-2)},
    which blows up at :func:`blowup_time` when c > 0.
    """
    t = jnp.asarray(t)
    if N == 1:
        return s0 + c * t
    if N == 2:
        return s0 * jnp.exp(2 * c * t)
    q = (N - 2) / N
    return (s0 ** (-q) - c * (N - 2) * t) ** (-1.0 / q)


def blowup_time(c: float, s0: float, N: int) -> float:
    """t* = s0^{-(N-2)/N} / (c (N - 2)) for N >= 3, c > 0 (inf otherwise)."""
    if N < 3 or c <= 0:
        return math.inf
    return s0 ** (-(N - 2) / N) / (c * (N - 2))


def rate_exponent(model) -> float | dict:
    """p in d sigma/dt = c gamma sigma^p: 2-2/L, 2-2/N, {node: 2-2/K}, 2-2/N+k."""
    return model.rate_exponent
