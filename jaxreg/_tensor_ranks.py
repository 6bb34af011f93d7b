"""Tensor ranks and the rank measures of tensor factorizations (hierarchical, CP and
tensor-train; Razin, Maman, Cohen, ICML 2021 / 2022); public as :mod:`jaxreg.metrics` (import them from there)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxreg import validation as V
from jaxreg._matrix_metrics import (
    all_finite,
    dense,
    effective_rank_from_singular_values,
    is_factorization,
    matricization,
    singular_values,
)
from jaxreg.factorizations._base import AbstractFactorization


def on_host(function: str, x) -> None:
    """Refuse a traced ``x`` (under ``jit``, ``vmap`` or as ``metrics=`` of a flow) where
    ``function`` runs on the host with NumPy, naming what to save instead."""
    if any(V.is_traced(leaf) for leaf in jax.tree_util.tree_leaves(x)):
        raise ValueError(
            f"jr.metrics.{function} runs on the host (NumPy), not under jit, vmap or as metrics=: save "
            f"metrics=lambda m: m.materialize() and call jr.metrics.{function} on the saved tensors"
        )


def norms_of(x: Array | AbstractFactorization) -> Array:
    """``x``, or the component norms ``x.component_norms()`` of a factorization."""
    return x.component_norms() if isinstance(x, AbstractFactorization) else x


def ht_rank(
    tensor: Float[Array | np.ndarray, "..."] | AbstractFactorization, tree=None, rtol: float = 1e-6
) -> tuple[int | float, ...]:
    """Numerical HT rank (Razin, Maman, Cohen, ICML 2022): for every internal node nu of
    ``tree`` but the root, in the order of :attr:`HierarchicalTensorFactorization.nodes`
    (bottom-up, left to right), rank [[tensor; nu]] = #{i : s_i > rtol * s_1} over the
    singular values s of the matricization [[tensor; nu]] (:func:`matricization`).
    Leaves (mode-n ranks) are not included. Evaluated eagerly with numpy, at save points
    only. Depends on W, the tree and the threshold ``rtol``.

    Arguments:
        tensor: a dense tensor, or a factorization (materialized; a
            :class:`~jaxreg.HierarchicalTensorFactorization` also gives the default ``tree``).
        tree: a mode tree over its axes (nested tuples of mode indices); default the
            model's tree, else the balanced binary tree of
            :func:`jaxreg.factorizations.balanced_tree`.
        rtol: the threshold relative to the largest singular value.

    Returns:
        One Python int per node; NaN for every node when ``tensor`` holds NaN or inf.

    Raises:
        ValueError: ``tensor`` is traced (under ``jit``/``vmap``, or as ``metrics=``).
    """
    import numpy as np

    from jaxreg.factorizations.trees import balanced_tree, plan_tree

    on_host("ht_rank", tensor)
    if tree is None and is_factorization(tensor):
        tree = getattr(tensor, "tree", None)
    t = np.asarray(dense(tensor))
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
    tensor: Float[Array | np.ndarray, "..."] | AbstractFactorization,
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
    Depends on W, ``tol`` and the ALS initializations: an upper bound on the tensor rank.

    Arguments:
        tensor: a dense tensor, or a factorization (materialized).
        max_rank: the largest rank tried.
        tol: the mean squared error a fit must get below (0 is returned when the mean
            of tensor^2 already is).
        n_restarts: random inits per rank.
        seed: seed of the inits (numpy).
        n_iter_max: ALS iterations per fit.

    Returns:
        The rank r; ``max_rank + 1`` if no r <= ``max_rank`` fits; NaN when ``tensor``
        holds NaN or inf.

    Raises:
        ValueError: a bad ``max_rank``, ``n_restarts`` or ``tol``, or ``tensor`` is traced
            (under ``jit``/``vmap``, or as ``metrics=``).
    """
    import numpy as np
    from tensorly.cp_tensor import cp_to_tensor as tl_cp_to_tensor
    from tensorly.decomposition import parafac

    from jaxreg import validation as V

    max_rank = V.positive_int("max_rank", max_rank)
    n_restarts = V.positive_int("n_restarts", n_restarts)
    tol = V.positive_float("tol", tol)
    on_host("cp_rank_estimate", tensor)
    t = np.asarray(dense(tensor), dtype=np.float64)
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


def component_norm_entropy_rank(norms: Float[Array, " R"] | AbstractFactorization) -> Float[Array, ""]:
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
            norms ||(x)_n v_r^n|| of W's components), or the factorization itself.

    Returns:
        The value; NaN when ``norms`` holds NaN or inf or is all zero.
    """
    return effective_rank_from_singular_values(norms_of(norms))


def component_effective_rank(norms: Float[Array, " R"] | AbstractFactorization) -> Float[Array, ""]:
    """Deprecated alias of :func:`component_norm_entropy_rank` (the name suggested a rank
    of W; the value depends on the parameterization).

    Arguments:
        norms: the component norms, or the factorization itself.

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


def numerical_component_rank(norms: Float[Array, " R"] | AbstractFactorization, rtol: float = 1e-2) -> Float[Array, ""]:
    """#{r : sigma_r > rtol * max_r' sigma_r'}: the number of CP components whose norm
    exceeds ``rtol`` times the largest (W less its smaller components has at most this
    tensor rank; Razin, Maman, Cohen, ICML 2021). Depends on the parameterization (like
    :func:`component_norm_entropy_rank`) and on ``rtol``.

    Arguments:
        norms: component norms, e.g. ``model.component_norms()`` (any order), or the
            factorization itself.
        rtol: the threshold relative to the largest norm.

    Returns:
        The count, as a float: NaN when ``norms`` holds NaN or inf, 0 if all are zero.
    """
    norms = norms_of(norms)
    count = jnp.sum(norms > rtol * jnp.max(norms)).astype(jnp.result_type(float))
    return jnp.where(all_finite(norms), count, jnp.nan)


def tt_effective_ranks(x: Float[Array, "..."] | AbstractFactorization) -> Float[Array, " N_minus_1"]:
    """Effective ranks of the tensor-train matricizations of W: for every bond k = 0..N-2
    (0-based), the effective rank (Roy and Vetterli 2007) of the matricization with rows
    indexed by modes 0..k. Their ranks are the TT-ranks (Oseledets 2011). Depends on W
    and the order of the modes.

    Arguments:
        x: a dense tensor (the matricizations are formed: small sizes), a
            :class:`~jaxreg.TensorTrainFactorization` (computed from its cores in
            O(N d r^3), W never formed), or another factorization (materialized).

    Returns:
        One effective rank per bond.
    """
    from jaxreg.factorizations import TensorTrainFactorization

    if not isinstance(x, TensorTrainFactorization):
        x = jnp.asarray(dense(x))
        values = [singular_values(matricization(x, tuple(range(k + 1)))) for k in range(x.ndim - 1)]
    else:
        values = x.bond_singular_values()
    return jnp.stack([effective_rank_from_singular_values(s) for s in values])
