"""The theorems' identities, bounds and closed forms.

Every rate identity has the form d sigma/dt = coefficient * gamma * sigma^exponent, with the terms given by the
model's ``rate_terms`` (a :class:`~jaxreg.RateTerms`; see each factorization's docstring for its theorem).
:func:`rate_identity` returns both sides at a model: the left one exactly, as the directional derivative
(``jax.jvp``) of the model's ``rate_sigma`` along the gradient-flow vector field, the right one from the theorem's
formula with grad L(W) of the end-to-end loss. Everything here works for any :class:`~jaxreg.AbstractFactorization`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree

from jaxreg import validation as V
from jaxreg.factorizations import AbstractFactorization, RateTerms


def _check_model(model) -> None:
    if not isinstance(model, AbstractFactorization):
        raise ValueError(f"model must be a jaxreg factorization (an AbstractFactorization), got {type(model).__name__}")


def model_loss(end_to_end_loss: Callable, model: AbstractFactorization) -> Float[Array, ""]:
    """L(theta) = end_to_end_loss(W(theta)), W(theta) = ``model.materialize()``.

    Arguments:
        end_to_end_loss: L(W), a scalar function of the dense W.
        model: any factorization.

    Returns:
        The scalar L(W(theta)).
    """
    return end_to_end_loss(model.materialize())


def observed_rates(end_to_end_loss: Callable, model: AbstractFactorization) -> Float[Array, " k"]:
    """d/dt of ``model.rate_sigma()`` along gradient flow on end_to_end_loss(W(theta)),
    computed exactly with ``jax.jvp`` (valid where the sigmas are differentiable, e.g.
    simple singular values).

    Arguments:
        end_to_end_loss: L(W), a scalar function of the dense W.
        model: any factorization.

    Returns:
        One rate per entry of ``model.rate_terms(...)``.
    """
    _check_model(model)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def sigma(p):
        return eqx.combine(p, static).rate_sigma()

    g = jax.grad(lambda p: model_loss(end_to_end_loss, eqx.combine(p, static)))(params)
    direction = jax.tree_util.tree_map(jnp.negative, g)
    return jax.jvp(sigma, (params,), (direction,))[1]


def rate_terms(end_to_end_loss: Callable, model: AbstractFactorization) -> RateTerms:
    """``model.rate_terms(grad L(W))``: sigma, gamma, coefficient and exponent of the model's
    rate identity d sigma/dt = coefficient * gamma * sigma^exponent.

    Arguments:
        end_to_end_loss: L(W).
        model: any factorization.

    Returns:
        The model's :class:`~jaxreg.RateTerms` at the current parameters.
    """
    _check_model(model)
    grad_w = jax.grad(end_to_end_loss)(model.materialize())
    return model.rate_terms(grad_w)


def gammas(
    end_to_end_loss: Callable, model: AbstractFactorization
) -> tuple[Float[Array, " k"], Float[Array, " k"], Float[Array, " k"]]:
    """(sigma, gamma, coefficient) of d sigma/dt = coefficient * gamma * sigma^exponent
    (for scripts that unpack three values; prefer :func:`rate_terms`).

    Arguments:
        end_to_end_loss: L(W).
        model: any factorization.

    Returns:
        ``(sigma, gamma, coefficient)`` of :func:`rate_terms`, flat arrays.
    """
    terms = rate_terms(end_to_end_loss, model)
    return terms.sigma, terms.gamma, terms.coefficient


def predicted_rates(end_to_end_loss: Callable, model: AbstractFactorization) -> Float[Array, " k"]:
    """The right-hand side coefficient * gamma * sigma^exponent of the model's rate identity,
    e.g. L (sigma_r^2)^{1-1/L} <-grad L(W), u_r v_r^T> for a depth-L matrix factorization
    (Arora, Cohen, Hu, Luo, NeurIPS 2019, Theorem 3) or N gamma_r sigma_r^{2-2/N} for a
    balanced CP component (Razin, Maman, Cohen, ICML 2021, Theorem 1).

    Arguments:
        end_to_end_loss: L(W).
        model: any factorization.

    Returns:
        One predicted d sigma/dt per entry of ``model.rate_terms(...)``.
    """
    return rate_terms(end_to_end_loss, model).rate()


def rate_identity(
    end_to_end_loss: Callable, model: AbstractFactorization
) -> tuple[Float[Array, " k"], Float[Array, " k"]]:
    """Both sides of d sigma/dt = coefficient * gamma * sigma^exponent along gradient flow
    (:func:`observed_rates`, :func:`predicted_rates`): equal under balancedness.

    Arguments:
        end_to_end_loss: L(W).
        model: any factorization.

    Returns:
        ``(observed, predicted)``, flat arrays aligned with ``rate_terms``
        (``RateTerms.split`` groups them, e.g. by HTF node).
    """
    return observed_rates(end_to_end_loss, model), predicted_rates(end_to_end_loss, model)


def relative_residual(observed: PyTree[ArrayLike], predicted: PyTree[ArrayLike], floor: float = 0.0) -> PyTree[Array]:
    """|observed - predicted| / max(|predicted|, floor), elementwise.

    Arguments:
        observed: an array or a pytree of arrays.
        predicted: the same structure as ``observed``.
        floor: the smallest denominator (guards entries whose prediction is near 0).

    Returns:
        The relative residuals, with the structure of ``observed``.
    """
    return jax.tree_util.tree_map(lambda o, p: jnp.abs(o - p) / jnp.maximum(jnp.abs(p), floor), observed, predicted)


LOWER_BOUNDS = ("am_gm", "paper")


def unbalanced_bounds(end_to_end_loss: Callable, model: AbstractFactorization, *, lower: str = "am_gm"):
    """(observed, lower, upper) rate bounds of an unbalanced component, per component, for
    models whose components are outer products of K vectors (CP; HTF local components with
    K = |children| + 1). For gamma >= 0 (reversed for gamma < 0), with
    eps = ``model.component_imbalance()`` (conserved under gradient flow):

        upper:            d sigma/dt <= K gamma (sigma^{2/K} + eps)^{K-1}
        lower, "paper":   K gamma sigma^2 / (sigma^{2/K} + eps) <= d sigma/dt
        lower, "am_gm":   K gamma sigma^{2-2/K} <= d sigma/dt

    The upper bound and the "paper" lower bound are Theorem 2 of Razin, Maman, Cohen
    (ICML 2021). The "am_gm" lower bound is tighter and is not the paper's: the exact rate
    is gamma sigma^2 sum_k 1/||w_k||^2, and the arithmetic-geometric mean inequality bounds
    the sum by K sigma^{-2/K} (docs/theory.md §2).

    Arguments:
        end_to_end_loss: L(W), a function of the end-to-end tensor.
        model: a factorization with ``component_imbalance``.
        lower: which lower bound, "am_gm" (default) or "paper".

    Returns:
        (observed d sigma/dt, lower bound, upper bound), one entry per component.

    Raises:
        NotImplementedError: the model has no such bound (e.g. deep matrix factorization).
    """
    if lower not in LOWER_BOUNDS:
        raise ValueError(f"lower must be one of {LOWER_BOUNDS}, got {lower!r}")
    terms = rate_terms(end_to_end_loss, model)
    eps = model.component_imbalance()
    k = terms.coefficient
    if lower == "am_gm":
        low = k * terms.gamma * terms.sigma ** (2.0 - 2.0 / k)
    else:
        low = k * terms.gamma * terms.sigma**2 / (terms.sigma ** (2.0 / k) + eps)
    high = k * terms.gamma * (terms.sigma ** (2.0 / k) + eps) ** (k - 1)
    return observed_rates(end_to_end_loss, model), jnp.minimum(low, high), jnp.maximum(low, high)


def conserved_quantities(model: AbstractFactorization) -> PyTree[Float[Array, "..."]]:
    """``model.conserved_quantities()``: quantities exactly conserved by gradient flow, e.g.
    W_{j+1}^T W_{j+1} - W_j W_j^T for a deep matrix factorization (Arora, Cohen, Hazan,
    ICML 2018) and ||w_r^n||^2 - ||w_r^1||^2 for CP (Razin, Maman, Cohen, ICML 2021,
    Lemma 1).

    Arguments:
        model: any factorization.

    Returns:
        A pytree of arrays, structured as the model's ``conserved_quantities``.
    """
    _check_model(model)
    return model.conserved_quantities()


def conservation_drift(model0: AbstractFactorization, model1: AbstractFactorization) -> Float[Array, ""]:
    """max over the leaves of ``conserved_quantities`` of ||Q(model1) - Q(model0)||_F, divided
    by ``model1.conservation_scale()`` (the size of the terms whose difference Q is).

    Arguments:
        model0, model1: the same model at two times.

    Returns:
        The relative drift (0 for exact conservation).
    """
    q0, q1 = conserved_quantities(model0), conserved_quantities(model1)
    leaves0, leaves1 = jax.tree_util.tree_leaves(q0), jax.tree_util.tree_leaves(q1)
    if not leaves0:
        return jnp.zeros(())
    drift = jnp.max(jnp.stack([jnp.linalg.norm((a - b).ravel()) for a, b in zip(leaves0, leaves1)]))
    return drift / model1.conservation_scale()


# ----------------------------------------------------------------------------------
# Closed forms


def aligned_mode(
    t: ArrayLike, a: float | Float[Array, ""], s0: float | Float[Array, ""], N: int
) -> Float[Array, "..."]:
    """Solution of ds/dt = N s^{2-2/N} (a - s), s(0) = s0, 0 < s0 < a.

    N = 1: s = a - (a - s0) e^{-t}.  N = 2: s = a e^{2at} / (e^{2at} - 1 + a/s0).
    N = 3: with u = s^{1/3}, du/dt = u^2 (a - u^3) integrates to t = F(u) - F(u0),
    F(u) = (1/a)[-1/u + (1/(3b))(-ln(b - u) + ln(u^2 + b u + b^2)/2
           - sqrt(3) arctan((2u + b)/(b sqrt(3))))], b = a^{1/3},
    inverted by bisection to machine precision. This is the singular value of depth-N
    whitened deep linear regression L = 1/2 ||W - S||_F^2 from a balanced init aligned
    with the SVD of S (Saxe, McClelland, Ganguli 2014; the depth-N rate is Arora, Cohen,
    Hu, Luo, NeurIPS 2019, Theorem 3, with gamma = a - s).

    Arguments:
        t: the times (any shape).
        a: the target singular value, a > s0.
        s0: the initial value, 0 < s0 < a.
        N: the depth, 1, 2 or 3.

    Returns:
        s(t), with the shape of ``t``.
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


def aligned_mode_time(s: ArrayLike, a: float | Float[Array, ""], s0: float | Float[Array, ""]) -> Float[Array, "..."]:
    """The flow time t = F(s^{1/3}) - F(s0^{1/3}) at which the N = 3 aligned mode reaches s
    (F as in :func:`aligned_mode`).

    Arguments:
        s: the values reached, s0 <= s < a (any shape).
        a: the target singular value.
        s0: the initial value, 0 < s0 < a.

    Returns:
        The times, with the shape of ``s``.
    """
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


def constant_gamma(
    t: ArrayLike, c: float | Float[Array, ""], s0: float | Float[Array, ""], N: int
) -> Float[Array, "..."]:
    """Solution of ds/dt = N c s^{2-2/N}, s(0) = s0: the rate identity of an order-N
    component (Razin, Maman, Cohen, ICML 2021, Theorem 1) with gamma held at c.

    N = 1: s0 + c t.  N = 2: s0 e^{2ct}.  N >= 3: (s0^{-(N-2)/N} - c (N-2) t)^{-N/(N-2)},
    which blows up at :func:`blowup_time` when c > 0.

    Arguments:
        t: the times (any shape).
        c: the constant gamma.
        s0: the initial value, s0 > 0.
        N: the order (number of factors), a positive integer.

    Returns:
        s(t), with the shape of ``t``; ``inf`` from :func:`blowup_time` on.
    """
    t, N = jnp.asarray(t), V.positive_int("N", N)
    if N == 1:
        return s0 + c * t
    if N == 2:
        return s0 * jnp.exp(2 * c * t)
    q = (N - 2) / N
    base = s0 ** (-q) - c * (N - 2) * t
    return jnp.where(base > 0, jnp.abs(base) ** (-1.0 / q), jnp.inf)  # inf from the blow-up time on


def blowup_time(c: float, s0: float, N: int) -> float:
    """t* = s0^{-(N-2)/N} / (c (N - 2)): the blow-up time of :func:`constant_gamma`.

    Arguments:
        c: the constant gamma.
        s0: the initial value, s0 > 0.
        N: the order.

    Returns:
        t*, or ``inf`` when N < 3 or c <= 0 (no blow-up).
    """
    s0 = V.positive_float("s0", s0)
    if N < 3 or c <= 0:
        return math.inf
    return s0 ** (-(N - 2) / N) / (c * (N - 2))


def rate_exponent(model: AbstractFactorization) -> Float[Array, " k"]:
    """p in d sigma/dt = c gamma sigma^p, per entry of the model's ``rate_terms``:
    2-2/L (matrix), 2-2/N (CP), 2-2/K (HTF node), 2-2/N+k (deep CP), 1 (tensor train).

    Arguments:
        model: any factorization.

    Returns:
        The exponent of every entry of ``model.rate_terms(...)``.
    """
    _check_model(model)
    return model.rate_terms(jnp.zeros(model.shape, model.rate_sigma().dtype)).exponent
