"""Metrics of end-to-end matrices / tensors and of factorizations.

All functions are pure and jit/vmap friendly; call them at save points only
(``metrics=`` of :func:`jaxreg.gradient_flow`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from jaxtyping import Array, Float


def singular_values(w: Float[Array, "m n"]) -> Float[Array, " k"]:
    """Singular values of ``w`` in decreasing order."""
    return jnp.linalg.svd(w, compute_uv=False)


def effective_rank(w: Float[Array, "m n"]) -> Float[Array, ""]:
    """Effective rank of Roy and Vetterli (2007): exp(H(p)), p_i = s_i / sum_j s_j,
    H the Shannon entropy of the normalized singular values. 1 <= erank <= rank(w)."""
    return effective_rank_from_singular_values(singular_values(w))


def effective_rank_from_singular_values(s: Float[Array, " k"]) -> Float[Array, ""]:
    p = s / jnp.sum(s)
    safe = jnp.where(p > 0, p, 1.0)
    return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(safe), 0.0)))


def nuclear_norm(w: Float[Array, "m n"]) -> Float[Array, ""]:
    """||w||_* = sum of singular values."""
    return jnp.sum(singular_values(w))


def matricization(t: Float[Array, "..."], modes: Sequence[int]) -> Float[Array, "rows cols"]:
    """[[t; modes]]: rows indexed by ``modes`` (in the given order), columns by the rest
    (in increasing order), as in Cohen & Shashua 2017."""
    modes = tuple(int(m) for m in modes)
    if not modes or len(set(modes)) != len(modes) or any(m < 0 or m >= t.ndim for m in modes):
        raise ValueError(f"modes must be distinct axes of a tensor of order {t.ndim}, got {modes}")
    rest = tuple(m for m in range(t.ndim) if m not in modes)
    rows = 1
    for m in modes:
        rows *= t.shape[m]
    return jnp.transpose(t, modes + rest).reshape(rows, -1)


def matricization_singular_values(t, modes) -> Float[Array, " k"]:
    """Singular values of [[t; modes]]."""
    return singular_values(matricization(t, modes))


def matricization_effective_rank(t, modes) -> Float[Array, ""]:
    """Effective rank of [[t; modes]]."""
    return effective_rank(matricization(t, modes))


def numerical_rank(s: Float[Array, " k"], rtol: float = 1e-6) -> Array:
    """Number of singular values above ``rtol`` times the largest."""
    return jnp.sum(s > rtol * s[0])


def reconstruction_error(w, target) -> Float[Array, ""]:
    """Normalized Frobenius error ||w - target||_F / ||target||_F."""
    return jnp.linalg.norm((w - target).ravel()) / jnp.linalg.norm(target.ravel())


def squared_reconstruction_error(w, target) -> Float[Array, ""]:
    """||w - target||_F^2 / ||target||_F^2."""
    return reconstruction_error(w, target) ** 2


def component_norms(model):
    """The model's theorem quantity (see each factorization's ``component_norms``)."""
    return model.component_norms()


def balancedness(model):
    """Per layer (matrix) / per component (CP) deviation from balancedness."""
    return model.balancedness()
