"""Metrics of end-to-end matrices / tensors and of factorizations (public as :mod:`jaxreg.metrics`).

All functions are pure and jit/vmap friendly; call them at save points only
(``metrics=`` of :func:`jaxreg.gradient_flow`). Every function of a matrix or tensor also
takes a factorization (and materializes it), so it can be passed as ``metrics=`` itself;
those of singular values refuse one with a line naming the call that takes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeGuard

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxreg.factorizations._base import AbstractFactorization


def is_factorization(x) -> TypeGuard[AbstractFactorization]:
    """Whether ``x`` is a factorization (an :class:`~jaxreg.AbstractFactorization`)."""
    return isinstance(x, AbstractFactorization)


def dense(x: Array | np.ndarray | AbstractFactorization) -> Array | np.ndarray:
    """``x``, or the end-to-end matrix / tensor ``x.materialize()`` of a factorization."""
    return x.materialize() if isinstance(x, AbstractFactorization) else x


def matrix(function: str, w: Array | AbstractFactorization) -> Array:
    """``w``, or the end-to-end matrix of a factorization; a factorization of a tensor
    is refused with a line naming the calls that take one (an array passes unchanged)."""
    if not isinstance(w, AbstractFactorization):
        return w
    w = w.materialize()
    if w.ndim != 2:
        raise ValueError(
            f"jr.metrics.{function} takes a matrix, got an order-{w.ndim} tensor: use "
            f"jr.metrics.matricization_{'effective_rank' if 'rank' in function else 'singular_values'}(x, modes) "
            "or, for a factorization's components, jr.metrics.component_norms(model)"
        )
    return w


def not_factorization(function: str, x, instead: str) -> None:
    """Refuse a factorization where ``function`` takes derived values (singular values,
    norms), naming the call ``instead`` that takes the model."""
    if is_factorization(x):
        raise ValueError(f"jr.metrics.{function} takes an array, not a {type(x).__name__}: use {instead}")


def factorization(function: str, x, instead: str) -> None:
    """Refuse anything but a factorization where ``function`` reads its parameters,
    naming the call ``instead`` that takes an array."""
    if not is_factorization(x):
        raise ValueError(
            f"jr.metrics.{function} reads a factorization's parameters, got {type(x).__name__}: pass {instead}"
        )


def singular_values(w: Float[Array, "m n"] | AbstractFactorization) -> Float[Array, " k"]:
    """The singular values s_1 >= ... >= s_k of ``w``, k = min(m, n).

    Arguments:
        w: a matrix, or a factorization of one (``w.materialize()`` is taken).

    Returns:
        The k singular values, in decreasing order.

    Raises:
        ValueError: ``w`` is a factorization of a tensor (of order > 2).
    """
    w = matrix("singular_values", w)
    return jnp.linalg.svd(w, compute_uv=False)


def effective_rank(w: Float[Array, "m n"] | AbstractFactorization) -> Float[Array, ""]:
    """Effective rank of Roy and Vetterli (2007): exp(H(p)), p_i = s_i / sum_j s_j,
    H the Shannon entropy of the normalized singular values s of ``w``. Depends on W
    only (not on how it is factorized); continuous, unlike the rank.

    Arguments:
        w: a matrix, or a factorization of one (``w.materialize()`` is taken).

    Returns:
        A scalar in [1, rank(w)]; NaN when ``w`` holds NaN or inf, or is the zero matrix
        (whose singular values cannot be normalized).

    Raises:
        ValueError: ``w`` is a factorization of a tensor (of order > 2).
    """
    w = matrix("effective_rank", w)
    return effective_rank_from_singular_values(singular_values(w))


def all_finite(x) -> Array:
    return jnp.all(jnp.isfinite(x))


def effective_rank_from_singular_values(s: Float[Array, " k"]) -> Float[Array, ""]:
    """exp(-sum_i p_i log p_i) with p_i = s_i / sum_j s_j (Roy and Vetterli 2007).

    Arguments:
        s: non-negative values (singular values or component norms).

    Returns:
        A scalar in [1, number of nonzero s_i]; NaN when ``s`` holds NaN, inf or a
        negative value, or sums to zero.

    Raises:
        ValueError: ``s`` is a factorization (use :func:`effective_rank` of the model or
            :func:`~jaxreg.metrics.component_norm_entropy_rank` of its component norms).
    """
    not_factorization(
        "effective_rank_from_singular_values",
        s,
        "jr.metrics.effective_rank(model) (of W) or jr.metrics.component_norm_entropy_rank(model) (of its component norms)",
    )
    total = jnp.sum(s)
    valid = all_finite(s) & jnp.all(s >= 0) & (total > 0)
    p = s / jnp.where(valid, total, 1.0)
    safe = jnp.where(p > 0, p, 1.0)
    value = jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(safe), 0.0)))
    return jnp.where(valid, value, jnp.nan)


def nuclear_norm(w: Float[Array, "m n"] | AbstractFactorization) -> Float[Array, ""]:
    """The nuclear norm ||w||_* = sum_i s_i(w), the sum of the singular values (the
    convex surrogate of rank that Arora et al. 2019 compare deep factorizations with).

    Arguments:
        w: a matrix, or a factorization of one (``w.materialize()`` is taken).

    Returns:
        The scalar ||w||_*.

    Raises:
        ValueError: ``w`` is a factorization of a tensor (of order > 2).
    """
    w = matrix("nuclear_norm", w)
    return jnp.sum(singular_values(w))


def matricization(t: Float[Array, "..."] | AbstractFactorization, modes: Sequence[int]) -> Float[Array, "rows cols"]:
    """The matricization [[t; modes]] of Cohen & Shashua 2017: the entry t[i_1, ..., i_N]
    sits at row (i_m)_{m in modes} and column (i_m)_{m not in modes}, both multi-indices
    read row-major, rows in the order of ``modes``, columns in increasing mode order.

    Arguments:
        t: a tensor of order N, or a factorization of one (``t.materialize()`` is taken).
        modes: distinct axes of ``t`` (not empty).

    Returns:
        A (prod_{m in modes} d_m) x (prod_{m not in modes} d_m) matrix.

    Raises:
        ValueError: ``modes`` is empty, repeats an axis or names one out of range.
    """
    x = dense(t)
    modes = tuple(int(m) for m in modes)
    if not modes or len(set(modes)) != len(modes) or any(m < 0 or m >= x.ndim for m in modes):
        raise ValueError(f"modes must be distinct axes of a tensor of order {x.ndim}, got {modes}")
    rest = tuple(m for m in range(x.ndim) if m not in modes)
    rows = 1
    for m in modes:
        rows *= x.shape[m]
    return jnp.transpose(x, modes + rest).reshape(rows, -1)


def matricization_singular_values(
    t: Float[Array, "..."] | AbstractFactorization, modes: Sequence[int]
) -> Float[Array, " k"]:
    """The singular values of the matricization [[t; modes]] (:func:`matricization`); their
    number above zero is the rank of [[t; modes]], one entry of the HT rank when ``modes``
    is a node of the mode tree (Razin, Maman, Cohen, ICML 2022).

    Arguments:
        t: a tensor, or a factorization of one (``t.materialize()`` is taken).
        modes: distinct axes of ``t``, the rows of the matricization.

    Returns:
        The singular values, in decreasing order.
    """
    return singular_values(matricization(t, modes))


def matricization_effective_rank(
    t: Float[Array, "..."] | AbstractFactorization, modes: Sequence[int]
) -> Float[Array, ""]:
    """The effective rank (Roy and Vetterli 2007, :func:`effective_rank`) of the
    matricization [[t; modes]]: a smooth measure of the rank of [[t; modes]], i.e. of the
    dependencies between the modes in ``modes`` and the rest (Razin, Maman, Cohen,
    ICML 2022). Depends on W and on the split of the modes (the set and its complement give
    the same value).

    Arguments:
        t: a tensor, or a factorization of one (``t.materialize()`` is taken).
        modes: distinct axes of ``t``, the rows of the matricization.

    Returns:
        A scalar in [1, rank [[t; modes]]]; NaN as :func:`effective_rank`.
    """
    return effective_rank(matricization(t, modes))


def numerical_rank(s: Float[Array, " k"], rtol: float = 1e-6) -> Float[Array, ""]:
    """The numerical rank #{i : s_i > rtol * s_1}: the number of singular values above
    ``rtol`` times the largest. Depends on W and on the threshold ``rtol``.

    Arguments:
        s: singular values in decreasing order (s_1 = ``s[0]`` is taken as the largest).
        rtol: the threshold relative to s_1.

    Returns:
        The count, as a float: NaN when ``s`` holds NaN or inf, 0 for the zero matrix.

    Raises:
        ValueError: ``s`` is a factorization (pass its singular values).
    """
    not_factorization(
        "numerical_rank",
        s,
        "jr.metrics.numerical_rank(jr.metrics.singular_values(model)) (of W) or "
        "jr.metrics.numerical_component_rank(model) (of its component norms)",
    )
    count = jnp.sum(s > rtol * s[0]).astype(jnp.result_type(float))
    return jnp.where(all_finite(s), count, jnp.nan)


def reconstruction_error(
    w: Float[Array, "*shape"] | AbstractFactorization, target: Float[Array, "*shape"] | AbstractFactorization
) -> Float[Array, ""]:
    """The normalized Frobenius error ||w - target||_F / ||target||_F.

    Arguments:
        w: the end-to-end matrix or tensor, or a factorization (``w.materialize()``).
        target: the ground truth W*, of the same shape (not zero); a factorization is
            materialized too.

    Returns:
        The scalar error.
    """
    x, ref = dense(w), dense(target)
    return jnp.linalg.norm((x - ref).ravel()) / jnp.linalg.norm(ref.ravel())


def squared_reconstruction_error(
    w: Float[Array, "*shape"] | AbstractFactorization, target: Float[Array, "*shape"] | AbstractFactorization
) -> Float[Array, ""]:
    """||w - target||_F^2 / ||target||_F^2, the square of :func:`reconstruction_error` (for
    an entry-RMS-1 target it is the mean over all entries of (w - target)^2, the
    "reconstruction error" of Arora et al. 2019).

    Arguments:
        w: the end-to-end matrix or tensor, or a factorization (``w.materialize()``).
        target: the ground truth W*, of the same shape (not zero), or a factorization.

    Returns:
        The scalar error.
    """
    return reconstruction_error(w, target) ** 2


def component_norms(model: AbstractFactorization) -> Float[Array, " k"]:
    """``model.component_norms()``: the singular values of W (decreasing) for a matrix,
    sigma_r = prod_n ||w_r^n|| (unsorted) for CP, ||(x)_n v_r^n|| for deep CP, the root's
    local component norms for an HTF, the middle bond's singular values for a tensor train.

    Arguments:
        model: any factorization.

    Returns:
        A 1-D array, in the order documented by :class:`~jaxreg.AbstractFactorization`.

    Raises:
        ValueError: ``model`` is not a factorization (e.g. an array).
    """
    factorization("component_norms", model, "jr.metrics.singular_values(w)")
    return model.component_norms()


def balancedness(model: AbstractFactorization) -> Float[Array, " k"]:
    """``model.balancedness()``: deviations from the balancedness assumption of the model's
    rate identity (zero iff it holds): ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F per layer pair j
    for a matrix (Arora, Cohen, Hazan, ICML 2018); max_{n,m} | ||w_r^n||^2 - ||w_r^m||^2 |
    per component r for CP (Razin, Maman, Cohen, ICML 2021), deep CP (with the layers'
    norms) and every HTF local component; per bond for a tensor train.

    Arguments:
        model: any factorization.

    Returns:
        A 1-D array of non-negative deviations.

    Raises:
        ValueError: ``model`` is not a factorization (e.g. an array).
    """
    factorization("balancedness", model, "the factorization itself (it reads the factors, not W)")
    return model.balancedness()
