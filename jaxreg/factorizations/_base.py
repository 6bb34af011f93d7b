"""The interface every factorization model implements, and the pytree of its rate identity.

A model is an ``equinox.Module`` subclassing :class:`AbstractFactorization` (in the style
of diffrax's ``AbstractSolver``): its parameters are array fields, its sizes static
fields, and it implements ``materialize``, ``_entries``, ``component_norms``,
``rate_terms``, ``conserved_quantities`` and ``balancedness``. Everything model-agnostic
(input checks of ``entries``, construction from a table of options) lives here, so that
:mod:`jaxreg.theory`, :mod:`jaxreg_lab.verify` and ``jaxreg sweep`` work with any model of
the registry (:data:`jaxreg.factorizations.MODELS`) without naming its class.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Hashable
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from jaxreg.validation import indices_array


def default_dtype(dtype=None) -> np.dtype:
    """The floating dtype to build parameters in: ``dtype`` or JAX's default float.

    JAX's default float is float64 only when the program enabled x64 (the CLI, the tests
    and the notebooks do so at start; ``import jaxreg`` never does). Requesting float64
    while x64 is off raises, instead of silently building float32 parameters.

    Arguments:
        dtype: ``None`` or a floating dtype.

    Returns:
        The canonical JAX dtype.
    """
    if dtype is None:
        return jnp.zeros(()).dtype
    try:
        requested = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be a floating dtype, got {dtype!r}") from None
    if not np.issubdtype(requested, np.floating):
        raise ValueError(f"dtype must be a floating dtype, got {requested}")
    x64 = jax.config.jax_enable_x64  # pyright: ignore[reportAttributeAccessIssue]  # JAX adds its flags to Config at run time
    if requested.itemsize == 8 and not x64:
        raise ValueError(
            "dtype float64 was requested but JAX's x64 mode is off: call "
            "jax.config.update('jax_enable_x64', True) at program start"
        )
    return jax.dtypes.canonicalize_dtype(requested)


def check_entries_indices(indices, shape: tuple[int, ...]) -> Int[Array, "k order"]:
    """Validate integer multi-indices of shape (k, order) into a tensor of ``shape``.

    Concrete indices are checked eagerly (shape, integer dtype, range). Traced indices
    (e.g. the observations of problems vmapped by :func:`jaxreg.sweep`) have their shape
    and dtype checked at trace time and their range at run time with
    ``equinox.error_if``, which raises when the program runs (``EQX_ON_ERROR`` selects
    how, see equinox's documentation).

    Arguments:
        indices: integer array of shape (k, order).
        shape: the tensor's shape.

    Returns:
        ``indices`` as a JAX integer array.

    Raises:
        ValueError: wrong shape or dtype, or (concrete) an index out of range.
    """
    if isinstance(indices, jax.core.Tracer):
        if indices.ndim != 2 or indices.shape[1] != len(shape):
            raise ValueError(
                f"indices must have shape (k, {len(shape)}) for a tensor of shape {shape}, got {indices.shape}"
            )
        if not jnp.issubdtype(indices.dtype, jnp.integer):
            raise ValueError(f"indices must hold integers, got dtype {indices.dtype}")
        bad = jnp.any((indices < 0) | (indices >= jnp.asarray(shape, indices.dtype)))
        return eqx.error_if(indices, bad, f"indices has entries out of range for shape {shape}")
    indices_array("indices", indices, shape)
    return jnp.asarray(indices)


class RateTerms(eqx.Module):
    r"""The terms of a model's rate identity d sigma/dt = coefficient * gamma * sigma^exponent.

    All four arrays have one entry per quantity sigma the theorem describes (e.g. the
    singular values of W for a deep matrix factorization, every local component of every
    node for an HTF), in the order of the model's ``rate_sigma()``. ``groups`` (static)
    partitions that axis into consecutive runs ``(label, count)`` (e.g. one per HTF node),
    empty when the entries form one group; :meth:`split` maps a flat array back to them.

    Attributes:
        sigma: the quantities whose growth the theorem describes.
        gamma: their projected negative gradients (the theorem's gamma or delta).
        coefficient: the factor in front (L, N, K, ...).
        exponent: the power of sigma (2 - 2/L, 2 - 2/N, 2 - 2/K, ...).
        groups: ``((label, count), ...)`` or ``()``.
    """

    sigma: Float[Array, " k"]
    gamma: Float[Array, " k"]
    coefficient: Float[Array, " k"]
    exponent: Float[Array, " k"]
    groups: tuple[tuple[Hashable, int], ...] = eqx.field(static=True)

    def __init__(self, sigma, gamma, coefficient, exponent, groups=()):
        self.sigma = sigma
        self.gamma = gamma
        self.coefficient = jnp.broadcast_to(jnp.asarray(coefficient, sigma.dtype), sigma.shape)
        self.exponent = jnp.broadcast_to(jnp.asarray(exponent, sigma.dtype), sigma.shape)
        self.groups = tuple((label, int(n)) for label, n in groups)

    def rate(self) -> Float[Array, " k"]:
        """The identity's right-hand side, coefficient * gamma * sigma^exponent."""
        return self.coefficient * self.gamma * self.sigma**self.exponent

    def split(self, x: Float[Array, " k"]) -> dict:
        """``{label: x[run]}`` for the runs of ``groups`` (``{None: x}`` without groups).

        Arguments:
            x: an array aligned with ``sigma`` (e.g. observed or predicted rates).

        Returns:
            A dict from group label to the entries of that group.
        """
        if not self.groups:
            return {None: x}
        out, start = {}, 0
        for label, n in self.groups:
            out[label] = x[start : start + n]
            start += n
        return out


def concat_groups(parts: dict) -> tuple[Array, tuple]:
    """Flatten ``{label: 1-D array}`` into one array and its ``groups`` description."""
    return jnp.concatenate(list(parts.values())), tuple((k, v.shape[0]) for k, v in parts.items())


@dataclass(frozen=True)
class VerifyCase:
    """A small problem on which ``jaxreg verify`` checks a model's theorems.

    ``task``: ``"matrix"`` (a rank-``target_rank`` matrix, entry RMS 1) or ``"tensor"``
    (a CP-rank-``target_rank`` tensor of Frobenius norm ``target_norm``), completed from
    ``num_observed`` entries; the model is ``from_options(key, shape, **options)``.
    """

    name: str
    shape: tuple[int, ...]
    options: dict = field(default_factory=dict)
    task: str = "tensor"
    num_observed: int = 32
    target_rank: int = 2
    target_norm: float | None = None


class AbstractFactorization(eqx.Module):
    r"""A factorization W(theta) of a matrix or tensor whose gradient flow a theorem describes.

    Subclasses implement:

    - ``materialize()``: the dense W;
    - ``_entries(idx)``: W at validated integer multi-indices (k, order), without forming W
      when that would be large (``entries`` validates and calls it);
    - ``component_norms()``: a 1-D array, the norms of the components of W the model is
      built from, in a documented order (singular values for a matrix, CP component norms,
      the root's local components for an HTF, end-to-end component norms for deep CP, the
      middle bond's singular values for a tensor train);
    - ``rate_terms(grad_w)``: a :class:`RateTerms` such that, whenever the model's
      balancedness assumption holds, d sigma/dt = coefficient * gamma * sigma^exponent
      exactly under gradient flow on any loss L(W), with ``grad_w`` = grad L(W);
    - ``conserved_quantities()``: a pytree of quantities exactly conserved by gradient flow;
    - ``balancedness()``: a 1-D array of non-negative deviations from the balancedness
      assumption of ``rate_terms`` (all zero iff it holds).

    ``rate_sigma()`` (the ``sigma`` of ``rate_terms`` without a gradient) defaults to
    ``component_norms()``; models whose theorem is about other quantities override it.
    """

    def __hash__(self) -> int:
        """A model holds arrays and has no hash. ``jax.jit(m.entries)`` would need one (it
        makes the bound model a static argument): one line says what to write instead."""
        name = type(self).__name__
        raise TypeError(
            f"a {name} holds arrays and cannot be hashed (e.g. as a static argument of jax.jit, which "
            f"jax.jit(model.entries) makes of it); pass the model as an argument: "
            f"jax.jit(lambda model, indices: model.entries(indices))(model, indices), or use eqx.filter_jit"
        )

    shape: eqx.AbstractVar[tuple[int, ...]]

    # ---------------------------------------------------------------- construction
    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The keyword options of the constructor (everything but ``key``, ``shape``, ``dtype``)."""
        params = inspect.signature(cls.__init__).parameters
        return tuple(
            n
            for n, p in params.items()
            if n not in ("self", "key", "shape", "dtype") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )

    @classmethod
    def from_options(cls, key: PRNGKeyArray, shape: tuple[int, ...], **options) -> AbstractFactorization:
        """Build the model from a flat table of options (e.g. a config file's).

        Arguments:
            key: PRNG key of the initialization.
            shape: the shape of W.
            **options: constructor keywords (see :meth:`option_names`); ``dtype`` allowed.

        Returns:
            The model.

        Raises:
            ValueError: an option the model does not take (named, with the valid ones).
        """
        valid = cls.option_names()
        unknown = sorted(set(options) - set(valid) - {"dtype"})
        if unknown:
            raise ValueError(f"option(s) {unknown} do not apply to {cls.__name__}; its options are {list(valid)}")
        # every concrete factorization's __init__ takes (key, shape, **options); the checker
        # sees only this abstract class's dataclass __init__
        return cls(key, tuple(shape), **options)  # pyright: ignore[reportCallIssue]

    @classmethod
    def verify_cases(cls) -> tuple[VerifyCase, ...]:
        """Small balanced problems on which ``jaxreg verify`` checks the theorems."""
        return ()

    # ---------------------------------------------------------------- values
    @property
    def order(self) -> int:
        """The number of modes of W."""
        return len(self.shape)

    @abc.abstractmethod
    def materialize(self) -> Float[Array, "*shape"]:
        """The dense end-to-end matrix or tensor W."""

    def entries(self, indices: Int[Array | np.ndarray, "k order"]) -> Float[Array, " k"]:
        """W at each row of ``indices`` (integer multi-indices of shape (k, order)).

        Arguments:
            indices: integer array (k, order), every row within ``shape``.

        Returns:
            The k values W[i_1, ..., i_N].

        Raises:
            ValueError: wrong shape or dtype, or an index out of range (checked eagerly
                for concrete indices, at run time with ``equinox.error_if`` for traced
                ones; see :func:`check_entries_indices`).
        """
        return self._entries(check_entries_indices(indices, self.shape))

    @abc.abstractmethod
    def _entries(self, idx: Int[Array, "k order"]) -> Float[Array, " k"]:
        """``entries`` on validated indices."""

    # ---------------------------------------------------------------- theory
    @abc.abstractmethod
    def component_norms(self) -> Float[Array, " k"]:
        """The norms of W's components, a 1-D array (see the class docstring)."""

    @abc.abstractmethod
    def rate_terms(self, grad_w: Float[Array, "*shape"]) -> RateTerms:
        """The terms of the model's rate identity at ``grad_w`` = grad L(W)."""

    def rate_sigma(self) -> Float[Array, " k"]:
        """``rate_terms(grad_w).sigma`` (independent of ``grad_w``)."""
        return self.component_norms()

    @abc.abstractmethod
    def conserved_quantities(self) -> PyTree:
        """A pytree of quantities exactly conserved by gradient flow."""

    @abc.abstractmethod
    def balancedness(self) -> Float[Array, " k"]:
        """Non-negative deviations from the balancedness assumption (0 iff it holds)."""

    def conservation_scale(self) -> Float[Array, ""]:
        """The magnitude of the terms whose differences ``conserved_quantities`` holds, used to
        make a drift relative: by default the largest squared column norm of any parameter."""
        leaves = [x for x in jax.tree_util.tree_leaves(self) if eqx.is_inexact_array(x) and x.size]
        return jnp.max(jnp.stack([jnp.max(jnp.sum(x * x, axis=-2 if x.ndim >= 2 else -1)) for x in leaves]))

    def component_imbalance(self) -> Float[Array, " k"]:
        """eps per entry of ``rate_terms``: max_{i,j} | ||v_i||^2 - ||v_j||^2 | over the K
        vectors of that component (conserved), for models whose components are outer
        products of K vectors and obey the unbalanced bounds of Razin, Maman, Cohen
        (ICML 2021, Thm 2). Other models raise ``NotImplementedError``."""
        raise NotImplementedError(f"{type(self).__name__} has no per-component unbalanced-initialization bound")
