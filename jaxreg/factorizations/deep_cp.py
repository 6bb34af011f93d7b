"""Deep tensor factorization: CP factors that are products of square matrices
(Hariz, Kadri, Ayache, Moakher, Artieres 2022).

    W = sum_r (x)_n v_r^n,   v_r^n = A_k^{n,r} ... A_1^{n,r} w_r^n,   A_i^{n,r} in R^{d_n x d_n}.
"""

from __future__ import annotations

import functools
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from jaxreg import validation as V
from jaxreg._random import normal
from jaxreg.factorizations._base import AbstractFactorization, RateTerms, VerifyCase
from jaxreg.factorizations._common import checked_scale, column_norms
from jaxreg.factorizations.cp import cp_entries, cp_to_tensor


class DeepTensorFactorization(AbstractFactorization):
    r"""Deep tensor factorization W = \sum_r \otimes_n A_k^{n,r} \cdots A_1^{n,r} w_r^n.

    ``factor_depth`` = k >= 0 is the number of square matrices multiplying each CP factor
    (distinct from the depth L >= 1 of :class:`~jaxreg.MatrixFactorization`; the keyword
    ``depth=`` is a deprecated alias of ``factor_depth``). ``factors[n]`` (d_n, R): column
    r is w_r^n (the CP convention, so ``factor_depth=0`` is
    :class:`~jaxreg.TensorFactorization`); ``layers[n]`` (k, R, d_n, d_n):
    ``layers[n][i-1, r]`` is A_i^{n,r}.

    ``component_norms()`` are the norms ||(x)_n v_r^n|| of W's CP components;
    ``rate_sigma()`` the theorem's sigma_r = ||(x)_n w_r^n||.

    Init: every entry of w and of every A is N(0, init_scale^2). ``balanced=True`` then
    rescales, for each component r, every w_r^n and every A_i^{n,r} to the Frobenius norm
    s_r = geometric mean over n of ||w_r^n|| (Frobenius balancedness:
    ||A_i^{n,r}||_F = ||w_r^n|| = s_r for all i, n), exactly.

    Theorem (Hariz et al. 2022), checked in tests: gradient flow conserves
    ||w_r^n||^2 - ||w_r^m||^2 and ||A_i^{n,r}||_F^2 - ||w_r^n||^2, and with
    sigma_r = ||(x)_n w_r^n|| = prod_n ||w_r^n||, delta_r = <-grad L(W), (x)_n v_r^n> / sigma_r^{1+k}:

      d sigma_r/dt = N delta_r sigma_r^{2-2/N+k}   whenever ||w_r^n|| is equal across n
                                                   (no condition on the A's is needed), and
      ||(x)_n v_r^n|| <= sigma_r^{1+k}             under Frobenius balancedness,

    since ||A_k..A_1 w|| <= prod_i ||A_i||_2 ||w|| <= prod_i ||A_i||_F ||w||, with equality
    iff every A_i is rank one and aligned (A_i = s u_{i+1} u_i^T, u_1 = w/||w||). So
    |delta_r| <= ||grad L(W)||_F under Frobenius balancedness: the growth exponent is
    2 - 2/N + k, which sharpens incremental learning as k grows.
    """

    factors: tuple[Float[Array, "_d R"], ...]
    layers: tuple[Float[Array, "k R d d"], ...]
    shape: tuple[int, ...] = eqx.field(static=True)
    rank: int = eqx.field(static=True)
    factor_depth: int = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        shape: tuple[int, ...] = (10,) * 3,
        rank: int = 50,
        factor_depth: int | None = None,
        *,
        init_scale: float | Float[Array, ""] = 1e-1,
        balanced: bool = False,
        dtype=None,
        depth: int | None = None,
    ):
        V.prng_key("key", key)
        if depth is not None:
            warnings.warn(
                "DeepTensorFactorization(depth=...) is deprecated: use factor_depth= (the number k "
                "of matrices per factor)",
                DeprecationWarning,
                stacklevel=2,
            )
            if factor_depth is not None:
                raise ValueError("pass factor_depth only (depth is its deprecated alias), not both")
            factor_depth = depth
        factor_depth = 2 if factor_depth is None else factor_depth
        shape = V.shape_tuple("shape", shape)
        rank = V.positive_int("rank", rank)
        k = V.nonnegative_int("factor_depth", factor_depth)
        std, dtype = checked_scale(init_scale, dtype)
        scale = jnp.asarray(std, dtype)
        self.factors, self.layers = _init_params(key, scale, shape, rank, k, dtype, bool(balanced))
        self.shape, self.rank, self.factor_depth = shape, rank, k

    @property
    def depth(self) -> int:
        """Deprecated alias of :attr:`factor_depth`."""
        warnings.warn(
            "DeepTensorFactorization.depth is deprecated: use .factor_depth", DeprecationWarning, stacklevel=2
        )
        return self.factor_depth

    @property
    def order(self) -> int:
        return len(self.shape)

    def end_factors(self) -> tuple[Float[Array, "_d R"], ...]:
        """v^n (d_n, R): column r is v_r^n = A_k^{n,r} ... A_1^{n,r} w_r^n."""
        out = []
        for f, a in zip(self.factors, self.layers):
            v = f
            for i in range(self.factor_depth):
                v = jnp.einsum("rij,jr->ir", a[i], v)
            out.append(v)
        return tuple(out)

    def materialize(self) -> Float[Array, "*shape"]:
        """The dense tensor sum_r (x)_n v_r^n."""
        return cp_to_tensor(self.end_factors())

    def _entries(self, idx: Int[Array, "k N"]) -> Float[Array, " k"]:
        """W at each multi-index row: sum_r prod_n v_r^n[i_n], O(N R k d^2 + n N R)."""
        return cp_entries(self.end_factors(), idx)

    def component_norms(self) -> Float[Array, " R"]:
        """||(x)_n v_r^n|| = prod_n ||v_r^n||: the norms of W's CP components, in order r."""
        return jnp.prod(jnp.stack([column_norms(v) for v in self.end_factors()]), axis=0)

    def end_component_norms(self) -> Float[Array, " R"]:
        """The same as :meth:`component_norms` (the norms of W's CP components)."""
        return self.component_norms()

    def rate_sigma(self) -> Float[Array, " R"]:
        """sigma_r = ||(x)_n w_r^n|| = prod_n ||w_r^n||: the theorem's quantity."""
        return jnp.prod(jnp.stack([column_norms(f) for f in self.factors]), axis=0)

    @property
    def rate_exponent(self) -> float:
        """p = 2 - 2/N + k in d sigma_r/dt = N delta_r sigma_r^p."""
        return 2.0 - 2.0 / self.order + self.factor_depth

    def rate_terms(self, grad_w: Float[Array, "*shape"]) -> RateTerms:
        """sigma_r = prod_n ||w_r^n||, gamma = delta_r = <-grad L(W), (x)_n v_r^n> / sigma_r^{1+k},
        coefficient N, exponent 2 - 2/N + k (Hariz et al. 2022).

        Arguments:
            grad_w: grad L(W), of shape ``shape``.

        Returns:
            The :class:`RateTerms`, one entry per component r.
        """
        letters = "abcdefghijklmnopqrstuvwxy"[: self.order]
        spec = letters + "," + ",".join(f"{c}Z" for c in letters) + "->Z"
        sigma = self.rate_sigma()
        inner = -jnp.einsum(spec, grad_w, *self.end_factors())
        return RateTerms(sigma, inner / sigma ** (1 + self.factor_depth), self.order, self.rate_exponent)

    def _sq_norms(self):
        """(N, R) squared norms of the w_r^n and (N, k, R) squared Frobenius norms of the A's."""
        w = jnp.stack([jnp.sum(f * f, axis=0) for f in self.factors])
        a = jnp.stack([jnp.sum(x * x, axis=(2, 3)) for x in self.layers])
        return w, a

    def balancedness(self) -> Float[Array, " R"]:
        """max over {||w_r^n||^2}_n and {||A_i^{n,r}||_F^2}_{i,n} minus their min, per r
        (0 under Frobenius balancedness; conserved under gradient flow)."""
        w, a = self._sq_norms()
        allsq = jnp.concatenate([w, a.reshape(-1, self.rank)], axis=0)
        return jnp.max(allsq, axis=0) - jnp.min(allsq, axis=0)

    def conserved_quantities(self) -> dict:
        """``{"factors": ||w_r^n||^2 - ||w_r^1||^2 (N-1, R), "layers":
        ||A_i^{n,r}||_F^2 - ||w_r^n||^2 (N, k, R)}``: exactly conserved by gradient flow
        (``"layers"`` is left out when k = 0)."""
        w, a = self._sq_norms()
        out = {"factors": w[1:] - w[:1]}
        if self.factor_depth:
            out["layers"] = a - w[:, None, :]
        return out

    @classmethod
    def verify_cases(cls) -> tuple[VerifyCase, ...]:
        return tuple(
            VerifyCase(
                f"deep CP k={k}",
                (4,) * 3,
                dict(rank=4, factor_depth=k, init_scale=0.3, balanced=True),
                num_observed=32,
                target_norm=8.0,
            )
            for k in (1, 2)
        )


def _init_params(key, init_scale, shape, rank, depth, dtype, balanced):
    """N(0, init_scale^2) entries, optionally Frobenius-balanced. The draws compile once
    per size class (:func:`jaxreg._random.normal`), the scaling and balance once per shape."""
    keys = jax.random.split(key, 2 * len(shape))
    factors = tuple(normal(k, (d, rank), dtype) for k, d in zip(keys[::2], shape))
    layers = tuple(normal(k, (depth, rank, d, d), dtype) for k, d in zip(keys[1::2], shape))
    return _scale_and_balance(init_scale, factors, layers, balanced)


@functools.partial(jax.jit, static_argnums=(3,))
def _scale_and_balance(init_scale, factors, layers, balanced):
    factors = [init_scale * f for f in factors]
    layers = [init_scale * a for a in layers]
    if balanced:
        norms = jnp.stack([column_norms(f) for f in factors])  # (N, R)
        s = jnp.exp(jnp.mean(jnp.log(norms), axis=0))  # (R,): geometric mean over n
        factors = [f * (s / n)[None, :] for f, n in zip(factors, norms)]
        layers = [a * (s[None, :] / jnp.sqrt(jnp.sum(a * a, axis=(2, 3))))[:, :, None, None] for a in layers]
    return tuple(factors), tuple(layers)
