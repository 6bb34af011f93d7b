"""Deep matrix factorization W = W_L ... W_1 (Arora, Cohen, Hu, Luo, NeurIPS 2019)."""

from __future__ import annotations

from functools import reduce

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from jaxreg import validation as V
from jaxreg._random import normal
from jaxreg.factorizations._base import AbstractFactorization, RateTerms, VerifyCase
from jaxreg.factorizations._common import default_dtype, dense_route, take_entries

INITS = ("gaussian", "identity", "orthogonal", "orthogonal_reference")


def _chain(mats) -> Array:
    """mats[-1] @ ... @ mats[0]."""
    return reduce(lambda acc, w: w @ acc, mats[1:], mats[0])


def balanced_factors(w: Float[Array, "m n"], depth: int, width: int) -> tuple[Array, ...]:
    """Factors W_1..W_L with W_L ... W_1 = w and W_{j+1}^T W_{j+1} = W_j W_j^T exactly.

    With the SVD w = U S V^T truncated to k = min(m, n, width) terms:
    W_1 = [S^{1/L} V^T; 0], W_j = diag(S^{1/L}, 0) for 1 < j < L, W_L = [U S^{1/L}, 0]
    (Arora, Cohen, Hazan, ICML 2018, balanced initialization). Every balancedness
    matrix is then diag(S^{2/L}, 0) on both sides, to machine precision.

    Arguments:
        w: the end-to-end matrix (m, n).
        depth: L >= 1.
        width: the inner size; w is reproduced exactly when width >= rank(w).

    Returns:
        ``(W_1, ..., W_L)``: W_1 is (width, n), W_L is (m, width), the others
        (width, width); ``(w,)`` when L = 1.
    """
    m, n = w.shape
    if depth == 1:
        return (w,)
    u, s, vt = jnp.linalg.svd(w, full_matrices=False)
    k = min(m, n, width)
    u, s, vt = u[:, :k], s[:k], vt[:k]
    root = s ** (1.0 / depth)
    first = jnp.zeros((width, n), w.dtype).at[:k].set(root[:, None] * vt)
    last = jnp.zeros((m, width), w.dtype).at[:, :k].set(u * root[None, :])
    middle = jnp.zeros((width, width), w.dtype).at[jnp.arange(k), jnp.arange(k)].set(root)
    return (first,) + (middle,) * (depth - 2) + (last,)


class MatrixFactorization(AbstractFactorization):
    r"""Deep matrix factorization W = W_L \cdots W_1 (a depth-L linear network).

    ``factors[j-1]`` is W_j; W_1 has n columns, W_L has m rows and the inner sizes are
    ``width`` (default min(m, n), so that every rank is reachable).

    Under gradient flow with a balanced initialization the singular values of W obey
    d sigma_r/dt = L (sigma_r^2)^{1-1/L} <-grad L(W), u_r v_r^T>
    (Arora, Cohen, Hu, Luo, NeurIPS 2019, Theorem 3): ``rate_exponent`` = 2 - 2/L.

    Initializations (``init_scale`` = a, following Arora et al. 2019, so that
    ||W(0)||_F ~ a sqrt(n)):
    - ``"gaussian"``: i.i.d. N(0, s^2) entries with s^{2L} = a^2 / (m width^{L-1})
      (for square width-n layers s = a^{1/L} / sqrt(n), the reference convention);
    - ``"identity"``: W_j = a^{1/L} I (rectangular identities);
    - ``"orthogonal"``: W_j = a^{1/L} Q_j with Q_j random (semi-)orthogonal, so that for
      square layers every singular value of W(0) is a and ||W(0)||_F = a sqrt(n), the
      same Frobenius norm as the other two;
    - ``"orthogonal_reference"``: W_j = (a sqrt(m))^{1/L} Q_j, the scale of Arora et al.
      2019's public code: every singular value of a square W(0) is a sqrt(n) and
      ||W(0)||_F = a n, sqrt(n) times the other inits' (choose it to match their
      orthogonal-init runs).
    ``balanced=True`` re-factorizes the initial product with :func:`balanced_factors`,
    so W_{j+1}^T W_{j+1} = W_j W_j^T holds exactly (same W(0)).
    """

    factors: tuple[Float[Array, "..."], ...]
    shape: tuple[int, int] = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    width: int = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        shape: tuple[int, int] = (100, 100),
        depth: int = 3,
        *,
        width: int | None = None,
        init_scale: float | Float[Array, ""] = 1e-3,
        init: str = "gaussian",
        balanced: bool = False,
        dtype=None,
    ):
        V.prng_key("key", key)
        m, n = V.shape_tuple("shape", shape, order=2)
        shape = (m, n)
        depth = V.positive_int("depth", depth)
        width = min(m, n) if width is None else V.positive_int("width", width)
        init_scale = V.positive_float("init_scale", init_scale)
        V.choice("init", init, INITS)
        dtype = default_dtype(dtype)
        dims = [n] + [width] * (depth - 1) + [m]  # W_j maps dims[j-1] -> dims[j]
        keys = jax.random.split(key, depth)
        if init == "gaussian":
            s = (init_scale**2 / (m * width ** (depth - 1))) ** (1.0 / (2 * depth))
            mats = [s * normal(k, (dims[j + 1], dims[j]), dtype) for j, k in enumerate(keys)]
        elif init == "identity":
            c = init_scale ** (1.0 / depth)
            mats = [c * jnp.eye(dims[j + 1], dims[j], dtype=dtype) for j in range(depth)]
        else:
            c = (init_scale * (m**0.5 if init == "orthogonal_reference" else 1.0)) ** (1.0 / depth)
            mats = []
            for j, k in enumerate(keys):
                rows, cols = dims[j + 1], dims[j]
                a = normal(k, (max(rows, cols), min(rows, cols)), dtype)
                q, r = jnp.linalg.qr(a)
                q = q * jnp.sign(jnp.diagonal(r))[None, :]
                mats.append(c * (q if rows >= cols else q.T))
        if balanced:
            mats = list(balanced_factors(_chain(mats), depth, width))
        self.factors = tuple(mats)
        self.shape = shape
        self.depth = depth
        self.width = width

    def materialize(self) -> Float[Array, "*batch m n"]:
        """The end-to-end matrix W = W_L ... W_1 (a stack of them for a model whose factors
        carry leading batch axes, as a sweep returns it)."""
        return _chain(self.factors)

    def _entries(self, idx: Int[Array, "k 2"]) -> Float[Array, " k"]:
        """W[i, j] for each row (i, j) of ``idx``, without forming W.

        Computes P = W_L ... W_2 (m x width) and W[i, j] = <P[i, :], W_1[:, j]>, so the
        backward pass of a completion loss only ever forms m x width and width x n
        gradients, never a dense m x n one. When m n <= k width (e.g. 100 x 100 with
        2000 observations), W itself is no larger than those k x width gathers, and
        W = P W_1 followed by one scalar gather is much faster (matmuls instead of a
        row scatter-add backwards): see :func:`~jaxreg.factorizations._common.dense_route`.
        """
        if self.depth == 1 or self._dense_route(idx.shape[0]):
            return take_entries(self.materialize(), idx, self.shape)
        return self._entries_gather(idx)

    def _dense_route(self, k: int) -> bool:
        m, n = self.shape
        return dense_route(self.shape, k, self.width, dense_flops=m * n * self.width, gather_flops=k * self.width)

    def _entries_gather(self, idx) -> Array:
        left = _chain(self.factors[1:])
        return jnp.sum(left[idx[:, 0]] * self.factors[0][:, idx[:, 1]].T, axis=-1)

    def component_norms(self) -> Float[Array, " k"]:
        """The singular values of W, in decreasing order (the theorem's sigma_r)."""
        return jnp.linalg.svd(self.materialize(), compute_uv=False)

    @property
    def rate_exponent(self) -> float:
        """p = 2 - 2/L in d sigma/dt = L gamma sigma^p."""
        return 2.0 - 2.0 / self.depth

    def rate_terms(self, grad_w: Float[Array, "m n"]) -> RateTerms:
        """sigma_r = singular values, gamma_r = <-grad L(W), u_r v_r^T>, coefficient L,
        exponent 2 - 2/L (Arora, Cohen, Hu, Luo, NeurIPS 2019, Theorem 3).

        Arguments:
            grad_w: grad L(W), shape (m, n).

        Returns:
            The :class:`RateTerms`, one entry per singular value (decreasing).
        """
        u, s, vt = jnp.linalg.svd(self.materialize(), full_matrices=False)
        gamma = -jnp.einsum("ir,ij,rj->r", u, grad_w, vt)
        return RateTerms(s, gamma, self.depth, self.rate_exponent)

    def conserved_quantities(self) -> tuple[Float[Array, "width width"], ...]:
        """W_{j+1}^T W_{j+1} - W_j W_j^T for j = 1..L-1: exactly conserved by gradient flow
        (Arora, Cohen, Hazan, ICML 2018)."""
        f = self.factors
        return tuple(f[j + 1].T @ f[j + 1] - f[j] @ f[j].T for j in range(self.depth - 1))

    def conservation_scale(self) -> Float[Array, ""]:
        """max_j ||W_j W_j^T||_F: the size of the terms of the conserved differences."""
        return jnp.max(jnp.stack([jnp.linalg.norm(w @ w.T) for w in self.factors]))

    def balancedness(self) -> Float[Array, " L_minus_1"]:
        """||W_{j+1}^T W_{j+1} - W_j W_j^T||_F for j = 1..L-1 (conserved under gradient flow)."""
        if self.depth == 1:
            return jnp.zeros((0,), self.factors[0].dtype)
        return jnp.stack([jnp.linalg.norm(q) for q in self.conserved_quantities()])

    @classmethod
    def verify_cases(cls) -> tuple[VerifyCase, ...]:
        return tuple(
            VerifyCase(
                f"matrix depth {depth}",
                (12, 10),
                dict(depth=depth, init_scale=1e-2, balanced=True),
                task="matrix",
                num_observed=60,
            )
            for depth in (2, 3, 4)
        )
