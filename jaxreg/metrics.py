"""Metrics of end-to-end matrices / tensors and of factorizations.

All functions are pure and jit/vmap friendly; call them at save points only
(``metrics=`` of :func:`jaxreg.gradient_flow`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

if TYPE_CHECKING:
    from .factorizations import AbstractFactorization, TensorTrainFactorization


def singular_values(w: Float[Array, "m n"]) -> Float[Array, " k"]:
    """The singular values s_1 >= ... >= s_k of ``w``, k = min(m, n).

    Arguments:
        w: a matrix.

    Returns:
        The k singular values, in decreasing order.
    """
    return jnp.linalg.svd(w, compute_uv=False)


def effective_rank(w: Float[Array, "m n"]) -> Float[Array, ""]:
    """Effective rank of Roy and Vetterli (2007): exp(H(p)), p_i = s_i / sum_j s_j,
    H the Shannon entropy of the normalized singular values s of ``w``. Depends on W
    only (not on how it is factorized); continuous, unlike the rank.

    Arguments:
        w: a matrix.

    Returns:
        A scalar in [1, rank(w)]; NaN when ``w`` holds NaN or inf, or is the zero matrix
        (whose singular values cannot be normalized).
    """
    return effective_rank_from_singular_values(singular_values(w))


def _all_finite(x) -> Array:
    return jnp.all(jnp.isfinite(x))


def effective_rank_from_singular_values(s: Float[Array, " k"]) -> Float[Array, ""]:
    """exp(-sum_i p_i log p_i) with p_i = s_i / sum_j s_j (Roy and Vetterli 2007).

    Arguments:
        s: non-negative values (singular values or component norms).

    Returns:
        A scalar in [1, number of nonzero s_i]; NaN when ``s`` holds NaN, inf or a
        negative value, or sums to zero.
    """
    total = jnp.sum(s)
    valid = _all_finite(s) & jnp.all(s >= 0) & (total > 0)
    p = s / jnp.where(valid, total, 1.0)
    safe = jnp.where(p > 0, p, 1.0)
    value = jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(safe), 0.0)))
    return jnp.where(valid, value, jnp.nan)


def nuclear_norm(w: Float[Array, "m n"]) -> Float[Array, ""]:
    """The nuclear norm ||w||_* = sum_i s_i(w), the sum of the singular values (the
    convex surrogate of rank that Arora et al. 2019 compare deep factorizations with).

    Arguments:
        w: a matrix.

    Returns:
        The scalar ||w||_*.
    """
    return jnp.sum(singular_values(w))


def matricization(t: Float[Array, "..."], modes: Sequence[int]) -> Float[Array, "rows cols"]:
    """The matricization [[t; modes]] of Cohen & Shashua 2017: the entry t[i_1, ..., i_N]
    sits at row (i_m)_{m in modes} and column (i_m)_{m not in modes}, both multi-indices
    read row-major, rows in the order of ``modes``, columns in increasing mode order.

    Arguments:
        t: a tensor of order N.
        modes: distinct axes of ``t`` (not empty).

    Returns:
        A (prod_{m in modes} d_m) x (prod_{m not in modes} d_m) matrix.

    Raises:
        ValueError: ``modes`` is empty, repeats an axis or names one out of range.
    """
    modes = tuple(int(m) for m in modes)
    if not modes or len(set(modes)) != len(modes) or any(m < 0 or m >= t.ndim for m in modes):
        raise ValueError(f"modes must be distinct axes of a tensor of order {t.ndim}, got {modes}")
    rest = tuple(m for m in range(t.ndim) if m not in modes)
    rows = 1
    for m in modes:
        rows *= t.shape[m]
    return jnp.transpose(t, modes + rest).reshape(rows, -1)


def matricization_singular_values(t: Float[Array, "..."], modes: Sequence[int]) -> Float[Array, " k"]:
    """The singular values of the matricization [[t; modes]] (:func:`matricization`); their
    number above zero is the rank of [[t; modes]], one entry of the HT rank when ``modes``
    is a node of the mode tree (Razin, Maman, Cohen, ICML 2022).

    Arguments:
        t: a tensor.
        modes: distinct axes of ``t``, the rows of the matricization.

    Returns:
        The singular values, in decreasing order.
    """
    return singular_values(matricization(t, modes))


def matricization_effective_rank(t: Float[Array, "..."], modes: Sequence[int]) -> Float[Array, ""]:
    """The effective rank (Roy and Vetterli 2007, :func:`effective_rank`) of the
    matricization [[t; modes]]: a smooth measure of the rank of [[t; modes]], i.e. of the
    dependencies between the modes in ``modes`` and the rest (Razin, Maman, Cohen,
    ICML 2022).

    Arguments:
        t: a tensor.
        modes: distinct axes of ``t``, the rows of the matricization.

    Returns:
        A scalar in [1, rank [[t; modes]]]; NaN as :func:`effective_rank`. Depends on W
        and on the split of the modes (a set and its complement give the same value).
    """
    return effective_rank(matricization(t, modes))


def numerical_rank(s: Float[Array, " k"], rtol: float = 1e-6) -> Float[Array, ""]:
    """The numerical rank #{i : s_i > rtol * s_1}: the number of singular values above
    ``rtol`` times the largest.

    Arguments:
        s: singular values in decreasing order (s_1 = ``s[0]`` is taken as the largest).
        rtol: the threshold relative to s_1.

    Returns:
        The count, as a float: NaN when ``s`` holds NaN or inf, 0 for the zero matrix.
        Depends on W and on the threshold ``rtol``.
    """
    count = jnp.sum(s > rtol * s[0]).astype(jnp.result_type(float))
    return jnp.where(_all_finite(s), count, jnp.nan)


def reconstruction_error(w: Float[Array, "*shape"], target: Float[Array, "*shape"]) -> Float[Array, ""]:
    """The normalized Frobenius error ||w - target||_F / ||target||_F.

    Arguments:
        w: the end-to-end matrix or tensor.
        target: the ground truth W*, of the same shape (not zero).

    Returns:
        The scalar error.
    """
    return jnp.linalg.norm((w - target).ravel()) / jnp.linalg.norm(target.ravel())


def squared_reconstruction_error(w: Float[Array, "*shape"], target: Float[Array, "*shape"]) -> Float[Array, ""]:
    """||w - target||_F^2 / ||target||_F^2, the square of :func:`reconstruction_error` (for
    an entry-RMS-1 target it is the mean over all entries of (w - target)^2, the
    "reconstruction error" of Arora et al. 2019).

    Arguments:
        w: the end-to-end matrix or tensor.
        target: the ground truth W*, of the same shape (not zero).

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
    """
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
    """
    return model.balancedness()


# ----------------------------------------------------------------------------------
# Tensor ranks (hierarchical and CP; Razin, Maman, Cohen 2021 / 2022)


def ht_rank(tensor: Float[Array, "..."], tree=None, rtol: float = 1e-6) -> tuple[int | float, ...]:
    """Numerical HT rank (Razin, Maman, Cohen, ICML 2022): for every internal node nu of
    ``tree`` but the root, in the order of :attr:`HierarchicalTensorFactorization.nodes`
    (bottom-up, left to right), rank [[tensor; nu]] = #{i : s_i > rtol * s_1} over the
    singular values s of the matricization [[tensor; nu]] (:func:`matricization`).
    Leaves (mode-n ranks) are not included. Evaluated eagerly with numpy, at save points
    only.

    Arguments:
        tensor: a dense tensor.
        tree: a mode tree over its axes (nested tuples of mode indices); default the
            balanced binary tree of :func:`jaxreg.factorizations.balanced_tree`.
        rtol: the threshold relative to the largest singular value.

    Returns:
        One Python int per node; NaN for every node when ``tensor`` holds NaN or inf.
        Depends on W, the tree and the threshold ``rtol``.
    """
    import numpy as np

    from .factorizations.trees import balanced_tree, plan_tree

    t = np.asarray(tensor)
    plan = plan_tree(balanced_tree(t.ndim) if tree is None else tree, t.ndim)
    if not np.all(np.isfinite(t)):
        return (float("nan"),) * (len(plan.nodes) - 1)
    ranks = []
    for node in plan.nodes[:-1]:
        rest = tuple(m for m in range(t.ndim) if m not in node)
        rows = int(np.prod([t.shape[m] for m in node]))
        s = np.linalg.svd(np.transpose(t, node + rest).reshape(rows, -1), compute_uv=False)
        ranks.append(int(np.sum(s > rtol * s[0])) if s.size and s[0] > 0 else 0)
    return tuple(ranks)


def cp_rank_estimate(
    tensor: Float[Array, "..."],
    max_rank: int,
    tol: float = 1e-6,
    *,
    n_restarts: int = 3,
    seed: int = 0,
    n_iter_max: int = 2000,
) -> int | float:
    """An upper estimate of the tensor (CP) rank, min{r : some rank-r CP fit has mean squared
    error < ``tol``} (Razin et al. 2021's "CP rank of the solution"): the smallest
    r <= ``max_rank`` whose CP-ALS fit (``tensorly.decomposition.parafac``, numpy backend)
    reaches it in one of ``n_restarts`` random inits. Runs on the host, not jit-able.

    Arguments:
        tensor: a dense tensor.
        max_rank: the largest rank tried.
        tol: the mean squared error a fit must get below (0 is returned when the mean
            of tensor^2 already is).
        n_restarts: random inits per rank.
        seed: seed of the inits (numpy).
        n_iter_max: ALS iterations per fit.

    Returns:
        The rank r; ``max_rank + 1`` if no r <= ``max_rank`` fits; NaN when ``tensor``
        holds NaN or inf. Depends on W, ``tol`` and the ALS initializations.
    """
    import numpy as np
    from tensorly.cp_tensor import cp_to_tensor as tl_cp_to_tensor
    from tensorly.decomposition import parafac

    from . import _validation as V

    max_rank = V.positive_int("max_rank", max_rank)
    n_restarts = V.positive_int("n_restarts", n_restarts)
    tol = V.positive_float("tol", tol)
    t = np.asarray(tensor, dtype=np.float64)
    if not np.all(np.isfinite(t)):
        return float("nan")
    if float(np.mean(t**2)) < tol:
        return 0
    rng = np.random.default_rng(seed)
    for r in range(1, max_rank + 1):
        for _ in range(n_restarts):
            cp = parafac(
                t, r, n_iter_max=n_iter_max, init="random", tol=1e-12, random_state=int(rng.integers(2**31 - 1))
            )
            if float(np.mean((tl_cp_to_tensor(cp) - t) ** 2)) < tol:
                return r
    return max_rank + 1


def component_norm_entropy_rank(norms: Float[Array, " R"]) -> Float[Array, ""]:
    """exp(H(p)), p_r = norms_r / sum_r' norms_r', H(p) = -sum_r p_r log p_r, of CP
    component norms: the entropy of the component norms, exponentiated, between 1 and the
    number of nonzero components (the form of Roy and Vetterli 2007's effective rank,
    applied to component norms instead of singular values).

    It depends on the parameterization, not on W alone: CP components are not
    orthogonal, so two factorizations of the same tensor (e.g. a component split in two
    parallel halves) give different values. It measures how many of the model's
    components are active, and is no rank of W (docs/theory.md §7).

    Arguments:
        norms: the component norms, e.g. ``model.component_norms()`` (CP; deep CP: the
            norms ||(x)_n v_r^n|| of W's components).

    Returns:
        The value; NaN when ``norms`` holds NaN or inf or is all zero.
    """
    return effective_rank_from_singular_values(norms)


def component_effective_rank(norms: Float[Array, " R"]) -> Float[Array, ""]:
    """Deprecated alias of :func:`component_norm_entropy_rank` (the name suggested a rank
    of W; the value depends on the parameterization).

    Arguments:
        norms: the component norms.

    Returns:
        ``component_norm_entropy_rank(norms)``.
    """
    import warnings

    warnings.warn(
        "jaxreg.metrics.component_effective_rank is deprecated: use component_norm_entropy_rank "
        "(the entropy of the CP component norms, which depends on the parameterization)",
        DeprecationWarning,
        stacklevel=2,
    )
    return component_norm_entropy_rank(norms)


def numerical_component_rank(norms: Float[Array, " R"], rtol: float = 1e-2) -> Float[Array, ""]:
    """#{r : sigma_r > rtol * max_r' sigma_r'}: the number of CP components whose norm
    exceeds ``rtol`` times the largest (W less its smaller components has at most this
    tensor rank; Razin, Maman, Cohen, ICML 2021).

    Arguments:
        norms: component norms, e.g. ``model.component_norms()`` (any order).
        rtol: the threshold relative to the largest norm.

    Returns:
        The count, as a float: NaN when ``norms`` holds NaN or inf, 0 if all are zero.
        Depends on the parameterization (like :func:`component_norm_entropy_rank`) and
        on ``rtol``.
    """
    count = jnp.sum(norms > rtol * jnp.max(norms)).astype(jnp.result_type(float))
    return jnp.where(_all_finite(norms), count, jnp.nan)


def tt_effective_ranks(x: Float[Array, "..."] | TensorTrainFactorization) -> Float[Array, " N-1"]:
    """Effective ranks of the tensor-train matricizations of W: for every bond k = 0..N-2
    (0-based), the effective rank (Roy and Vetterli 2007) of the matricization with rows
    indexed by modes 0..k. Their ranks are the TT-ranks (Oseledets 2011). Depends on W
    and the order of the modes.

    Arguments:
        x: a dense tensor (the matricizations are formed: small sizes), or a
            :class:`~jaxreg.TensorTrainFactorization` (computed from its cores in
            O(N d r^3), W never formed).

    Returns:
        One effective rank per bond.
    """
    if isinstance(x, (jax.Array, np.ndarray)):
        x = jnp.asarray(x)
        values = [singular_values(matricization(x, tuple(range(k + 1)))) for k in range(x.ndim - 1)]
    else:
        values = x.bond_singular_values()
    return jnp.stack([effective_rank_from_singular_values(s) for s in values])
