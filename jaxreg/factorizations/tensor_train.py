r"""Tensor-train (matrix product state) factorization (Oseledets, SIAM J. Sci. Comput. 2011).

    W[i_1, ..., i_N] = G_1[:, i_1, :] G_2[:, i_2, :] ... G_N[:, i_N, :],

with cores G_k of shape (r_{k-1}, d_k, r_k) and r_0 = r_N = 1. Bond k (1 <= k < N)
joins G_k and G_{k+1}; its rank r_k bounds the rank of the matricization of W with rows
indexed by modes 1..k (the TT-ranks).
"""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from jaxreg import validation as V
from jaxreg._random import normal
from jaxreg.factorizations._base import AbstractFactorization, RateTerms, VerifyCase
from jaxreg.factorizations._common import checked_scale

BALANCE_SWEEPS = 2000  # cap on the two-site balancing sweeps of ``balanced=True``


def _left(core) -> Array:
    """Left unfolding L_k of a core (r_{k-1}, d_k, r_k): shape (r_{k-1} d_k, r_k)."""
    return core.reshape(-1, core.shape[-1])


def _right(core) -> Array:
    """Right unfolding R_k of a core (r_{k-1}, d_k, r_k): shape (r_{k-1}, d_k r_k)."""
    return core.reshape(core.shape[0], -1)


def _bond_terms(cores, k):
    """(L_k^T L_k, R_{k+1} R_{k+1}^T) at bond k (0-based: between cores[k] and cores[k+1])."""
    left, right = _left(cores[k]), _right(cores[k + 1])
    return left.T @ left, right @ right.T


def _balance_bond(cores, k):
    """Re-split the two-site core M = L_k R_{k+1} as (U S^{1/2}, S^{1/2} V^T): W is unchanged and
    L_k^T L_k = R_{k+1} R_{k+1}^T = S exactly (requires r_k <= both sides of M)."""
    a, b = cores[k], cores[k + 1]
    r = a.shape[-1]
    u, s, vt = jnp.linalg.svd(_left(a) @ _right(b), full_matrices=False)
    root = jnp.sqrt(s[:r])
    cores = list(cores)
    cores[k] = (u[:, :r] * root).reshape(a.shape)
    cores[k + 1] = (root[:, None] * vt[:r]).reshape(b.shape)
    return tuple(cores)


def _imbalance(cores) -> Array:
    """max_k ||L_k^T L_k - R_{k+1} R_{k+1}^T||_F / ||L_k^T L_k||_F."""
    out = []
    for k in range(len(cores) - 1):
        p, q = _bond_terms(cores, k)
        out.append(jnp.linalg.norm(p - q) / jnp.linalg.norm(p))
    return jnp.max(jnp.stack(out))


@eqx.filter_jit
def _balance(cores):
    """Sweep the bonds back and forth, balancing each, until every bond is balanced to
    100 machine epsilons (relative) or ``BALANCE_SWEEPS`` sweeps ran.

    Each step lowers sum_k ||G_k||_F^2 (the SVD split attains the nuclear norm of M, the
    least ||L||^2 + ||R||^2 over all splits), whose stationary points on the gauge orbit
    are exactly the balanced cores; the sweeps are block-coordinate descent on it."""
    tol = 100 * jnp.finfo(cores[0].dtype).eps
    bonds = list(range(len(cores) - 1))

    def sweep(state):
        cs, i = state
        for k in bonds + bonds[::-1]:
            cs = _balance_bond(cs, k)
        return cs, i + 1

    cs, _ = jax.lax.while_loop(lambda s: (_imbalance(s[0]) > tol) & (s[1] < BALANCE_SWEEPS), sweep, (tuple(cores), 0))
    return cs


def _ranks(ranks, shape) -> tuple[int, ...]:
    bonds = len(shape) - 1
    if isinstance(ranks, (int, np.integer)) and not isinstance(ranks, bool):
        return (V.positive_int("ranks", ranks),) * bonds
    if not isinstance(ranks, Sequence) or isinstance(ranks, str):
        raise ValueError(f"ranks must be a positive integer or a tuple of {bonds} positive integers, got {ranks!r}")
    out = tuple(V.positive_int(f"ranks[{i}]", r) for i, r in enumerate(ranks))
    if len(out) != bonds:
        raise ValueError(
            f"ranks must have {bonds} entries (one per bond of an order-{len(shape)} tensor "
            f"train), got {len(out)}: {ranks!r}"
        )
    return out


class TensorTrainFactorization(AbstractFactorization):
    r"""Tensor-train factorization W[i_1..i_N] = G_1[:, i_1, :] \cdots G_N[:, i_N, :].

    ``cores[k]`` has shape (r_{k-1}, d_k, r_k) with r_0 = r_N = 1 and
    (r_1, ..., r_{N-1}) = ``ranks``. Every core entry is N(0, init_scale^2).

    Conservation laws: W depends on G_k and G_{k+1} only through the two-site core
    M_k = L_k R_{k+1} (L_k the left unfolding (r_{k-1} d_k, r_k) of G_k, R_{k+1} the right
    unfolding (r_k, d_{k+1} r_{k+1}) of G_{k+1}), which is invariant under
    (L_k, R_{k+1}) -> (L_k A, A^{-1} R_{k+1}). Hence gradient flow conserves
    L_k^T L_k - R_{k+1} R_{k+1}^T at every bond, as a deep linear network conserves
    W_{j+1}^T W_{j+1} - W_j W_j^T. ``balanced=True`` re-splits the initial cores (same W)
    so that every bond is balanced, L_k^T L_k = R_{k+1} R_{k+1}^T, to 100 machine epsilons
    (needs r_k <= r_{k-1} d_k and r_k <= d_{k+1} r_{k+1}).

    Rate identity (exact, no claim beyond it): with E_k = dL/dM_k the gradient of the loss
    with respect to the two-site core (the other cores fixed), gradient flow gives
    dM_k/dt = -E_k R_{k+1}^T R_{k+1} - L_k L_k^T E_k, and a balanced bond has
    L_k L_k^T = (M_k M_k^T)^{1/2}, R_{k+1}^T R_{k+1} = (M_k^T M_k)^{1/2}: M_k follows
    the end-to-end dynamics of a balanced depth-2 matrix factorization (Arora et al.
    2018), so its singular values obey
        d sigma_{k,r}/dt = 2 gamma_{k,r} sigma_{k,r},   gamma_{k,r} = <-E_k, u_r v_r^T>.
    For N = 2, M_1 = W and this is Arora, Cohen, Hu, Luo (NeurIPS 2019), Thm 3 with L = 2.
    For N > 2, sigma_{k,r} are singular values of a two-site core, not of a matricization
    of W: they depend on the gauge of the neighbouring bonds, and no identity of this
    form is known for the singular values of W's matricizations.

    ``component_norms()`` are the singular values of the matricization of W at the middle
    bond (rows: modes 0..N//2 - 1, 0-based), computed from the cores;
    :meth:`bond_singular_values` gives every bond's (the TT-ranks' singular values).
    """

    cores: tuple[Float[Array, "r_prev d r_next"], ...]
    shape: tuple[int, ...] = eqx.field(static=True)
    ranks: tuple[int, ...] = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        shape: tuple[int, ...],
        ranks,
        *,
        init_scale: float | Float[Array, ""],
        balanced: bool = False,
        dtype=None,
    ):
        V.prng_key("key", key)
        shape = V.shape_tuple("shape", shape, min_order=2)
        ranks = _ranks(ranks, shape)
        std, dtype = checked_scale(init_scale, dtype)
        full = (1,) + ranks + (1,)
        if balanced:
            for k, r in enumerate(ranks):
                if r > full[k] * shape[k] or r > shape[k + 1] * full[k + 2]:
                    raise ValueError(
                        f"ranks[{k}] = {r} is too large for balanced=True: a balanced bond needs "
                        f"r_k <= r_(k-1) d_k = {full[k] * shape[k]} and r_k <= d_(k+1) r_(k+1) = "
                        f"{shape[k + 1] * full[k + 2]}"
                    )
        keys = jax.random.split(key, len(shape))
        cores = tuple(std * normal(kk, (full[n], d, full[n + 1]), dtype) for n, (kk, d) in enumerate(zip(keys, shape)))
        self.cores = _balance(cores) if balanced else cores
        self.shape = shape
        self.ranks = ranks

    # ---------------------------------------------------------------- values
    def materialize(self) -> Float[Array, "*shape"]:
        """The dense tensor W, contracted core by core from the left."""
        t = self.cores[0].reshape(self.shape[0], -1)
        for core in self.cores[1:]:
            t = (t @ _right(core)).reshape(-1, core.shape[-1])
        return t.reshape(self.shape)

    def _entries(self, idx: Int[Array, "k N"]) -> Float[Array, " k"]:
        """W at each multi-index row: the product of the k selected core slices, O(k N r^2);
        W is never formed."""
        v = self.cores[0][0, idx[:, 0], :]
        for n in range(1, self.order):
            v = jnp.einsum("ka,akb->kb", v, self.cores[n][:, idx[:, n], :])
        return v[:, 0]

    def bond_singular_values(self) -> tuple[Float[Array, " q"], ...]:
        """For every bond k, the singular values of the matricization of W with rows indexed
        by modes 0..k, computed from the cores in O(N d r^3) (W is never formed).

        With QR factorizations from the left, Left_k = Q A_k with Q of orthonormal columns;
        from the right, Right_{k+1} = B_k Q' with Q' of orthonormal rows; so the
        matricization Q (A_k B_k) Q' has the singular values of the small A_k B_k.
        """
        lefts, a = [], jnp.ones((1, 1), self.cores[0].dtype)
        for core in self.cores[:-1]:
            x = _left(jnp.einsum("ab,bdc->adc", a, core))
            a = jnp.linalg.qr(x, mode="r") if x.shape[0] >= x.shape[1] else x
            lefts.append(a)
        rights, b = [], jnp.ones((1, 1), self.cores[0].dtype)
        for core in self.cores[:0:-1]:
            y = _right(jnp.einsum("adc,cb->adb", core, b))
            b = jnp.linalg.qr(y.T, mode="r").T if y.shape[1] >= y.shape[0] else y
            rights.append(b)
        rights = rights[::-1]
        return tuple(jnp.linalg.svd(a @ b, compute_uv=False) for a, b in zip(lefts, rights))

    def component_norms(self) -> Float[Array, " q"]:
        """Singular values of the matricization of W at the middle bond (rows: modes
        0..N//2 - 1), decreasing; for N = 2 the singular values of W."""
        return self.bond_singular_values()[self.order // 2 - 1]

    # ---------------------------------------------------------------- theory
    def _two_site(self, k: int) -> Array:
        return _left(self.cores[k]) @ _right(self.cores[k + 1])

    def _bond_width(self, k: int) -> int:
        full = (1,) + self.ranks + (1,)
        return min(full[k + 1], full[k] * self.shape[k], self.shape[k + 1] * full[k + 2])

    def rate_sigma(self) -> Float[Array, " q"]:
        """The singular values of every two-site core M_k (the top min(r_k, rows, columns)),
        bonds in order."""
        return jnp.concatenate(
            [jnp.linalg.svd(self._two_site(k), compute_uv=False)[: self._bond_width(k)] for k in range(self.order - 1)]
        )

    def rate_terms(self, grad_w: Float[Array, "*shape"]) -> RateTerms:
        """sigma_{k,r} = singular values of the two-site cores M_k, gamma_{k,r} = <-E_k, u_r v_r^T>
        with E_k = dL/dM_k, coefficient 2, exponent 1: exact on every balanced bond (see the
        class docstring), grouped by bond k (0-based).

        Arguments:
            grad_w: grad L(W), of shape ``shape``.

        Returns:
            The :class:`RateTerms`; ``groups`` = ((k, q_k), ...).
        """
        n = self.order
        prefix = [jnp.ones((1, 1), grad_w.dtype)]  # prefix[k]: modes 0..k-1 contracted, (prod d, r_{k-1})
        for core in self.cores[:-1]:
            prefix.append((prefix[-1] @ _right(core)).reshape(-1, core.shape[-1]))
        suffix = [jnp.ones((1, 1), grad_w.dtype)]  # suffix[j]: the last j cores contracted, (r, prod d)
        for core in self.cores[:0:-1]:
            suffix.append((_left(core) @ suffix[-1]).reshape(core.shape[0], -1))
        sigma, gamma, groups = [], [], []
        for k in range(n - 1):
            left, right = prefix[k], suffix[n - k - 2]
            g = grad_w.reshape(left.shape[0], self.shape[k], self.shape[k + 1], right.shape[1])
            e = jnp.einsum("xa,xijy,by->aijb", left, g, right).reshape(-1, self.shape[k + 1] * right.shape[0])
            u, s, vt = jnp.linalg.svd(self._two_site(k), full_matrices=False)
            q = self._bond_width(k)
            sigma.append(s[:q])
            gamma.append(-jnp.einsum("ir,ij,rj->r", u[:, :q], e, vt[:q]))
            groups.append((k, q))
        return RateTerms(jnp.concatenate(sigma), jnp.concatenate(gamma), 2.0, 1.0, tuple(groups))

    def conserved_quantities(self) -> tuple[Float[Array, "r r"], ...]:
        """L_k^T L_k - R_{k+1} R_{k+1}^T for every bond k: exactly conserved by gradient flow."""
        return tuple(p - q for p, q in (_bond_terms(self.cores, k) for k in range(self.order - 1)))

    def conservation_scale(self) -> Float[Array, ""]:
        """max_k max(||L_k^T L_k||_F, ||R_{k+1} R_{k+1}^T||_F)."""
        terms = [t for k in range(self.order - 1) for t in _bond_terms(self.cores, k)]
        return jnp.max(jnp.stack([jnp.linalg.norm(t) for t in terms]))

    def balancedness(self) -> Float[Array, " N_minus_1"]:
        """||L_k^T L_k - R_{k+1} R_{k+1}^T||_F for every bond k (0 on a balanced bond)."""
        return jnp.stack([jnp.linalg.norm(q) for q in self.conserved_quantities()])

    @classmethod
    def verify_cases(cls) -> tuple[VerifyCase, ...]:
        return (VerifyCase("TT order 3", (4,) * 3, dict(ranks=(3, 3), init_scale=0.4, balanced=True), target_norm=8.0),)
