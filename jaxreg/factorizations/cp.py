"""Tensor (CP) factorization W = sum_r w_r^1 (x) ... (x) w_r^N (Razin, Maman, Cohen, ICML 2021)."""

from __future__ import annotations

import string

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .. import _validation as V
from ._common import balance_columns, check_entries_indices, column_norms, default_dtype


def cp_to_tensor(factors) -> Array:
    """sum_r (x)_n factors[n][:, r] as a dense tensor (tensorly's CP convention)."""
    letters = string.ascii_letters
    order = len(factors)
    spec = ",".join(f"{letters[n]}Z" for n in range(order)) + "->" + letters[:order]
    return jnp.einsum(spec, *factors)


def cp_entries(factors, idx) -> Array:
    """Entries of the CP tensor at multi-indices ``idx`` (k, N): O(k N R), no dense tensor."""
    prod = factors[0][idx[:, 0]]
    for n in range(1, len(factors)):
        prod = prod * factors[n][idx[:, n]]
    return jnp.sum(prod, axis=-1)


class TensorFactorization(eqx.Module):
    r"""CP tensor factorization W = \sum_{r=1}^R w_r^1 \otimes \cdots \otimes w_r^N.

    ``factors[n]`` has shape (d_n, R) and its column r is w_r^n (tensorly's convention:
    ``tensorly.cp_to_tensor((ones, factors))`` equals :meth:`materialize`).
    Entries of every factor are N(0, init_scale^2) (the reference code's ``std``).

    Component norm sigma_r = prod_n ||w_r^n||. Under gradient flow with a balanced
    component, d sigma_r/dt = N gamma_r sigma_r^{2-2/N} with
    gamma_r = <-grad L(W), (x)_n w_r^n/||w_r^n||> (Razin, Maman, Cohen, ICML 2021, Thm 1).
    ``balanced=True`` rescales each component so its N factor norms are equal.
    """

    factors: tuple[Float[Array, "d R"], ...]
    shape: tuple[int, ...] = eqx.field(static=True)
    rank: int = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        shape: tuple[int, ...] = (10,) * 4,
        rank: int = 1000,
        *,
        init_scale: float = 5e-3,
        balanced: bool = False,
        dtype=None,
    ):
        shape = V.shape_tuple("shape", shape)
        rank = V.positive_int("rank", rank)
        init_scale = V.positive_float("init_scale", init_scale)
        dtype = default_dtype(dtype)
        keys = jax.random.split(key, len(shape))
        factors = tuple(init_scale * jax.random.normal(k, (d, rank), dtype) for k, d in zip(keys, shape))
        if balanced:
            factors = balance_columns(factors)
        self.factors = factors
        self.shape = shape
        self.rank = rank

    @property
    def order(self) -> int:
        return len(self.shape)

    def materialize(self) -> Float[Array, "*shape"]:
        """The dense tensor sum_r (x)_n w_r^n."""
        return cp_to_tensor(self.factors)

    def entries(self, indices: Int[Array, "k N"]) -> Float[Array, " k"]:
        """W at each multi-index row of ``indices``: sum_r prod_n w_r^n[i_n], O(k N R)."""
        return cp_entries(self.factors, check_entries_indices(indices, self.shape))

    def factor_norms(self) -> Float[Array, "N R"]:
        """||w_r^n|| for every mode n and component r."""
        return jnp.stack([column_norms(f) for f in self.factors])

    def component_norms(self) -> Float[Array, " R"]:
        """sigma_r = prod_n ||w_r^n|| for every component r (not sorted)."""
        return jnp.prod(self.factor_norms(), axis=0)

    @property
    def rate_exponent(self) -> float:
        """p = 2 - 2/N in d sigma_r/dt = N gamma_r sigma_r^p."""
        return 2.0 - 2.0 / self.order

    def rate_terms(self, grad_w: Float[Array, "*shape"]):
        """(sigma, gamma, N): sigma_r, gamma_r = <-grad L(W), (x)_n w_r^n/||w_r^n||>, order."""
        units = [f / column_norms(f)[None, :] for f in self.factors]
        letters = string.ascii_letters[: self.order]
        spec = letters + "," + ",".join(f"{c}Z" for c in letters) + "->Z"
        return self.component_norms(), -jnp.einsum(spec, grad_w, *units), self.order

    def balancedness(self) -> Float[Array, " R"]:
        """eps_r = max_{n,m} | ||w_r^n||^2 - ||w_r^m||^2 | (conserved under gradient flow)."""
        sq = self.factor_norms() ** 2
        return jnp.max(sq, axis=0) - jnp.min(sq, axis=0)
