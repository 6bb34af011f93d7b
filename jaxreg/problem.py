"""A completion or sensing problem: observations of a target and the training loss
(mean squared error over them), built by :mod:`jaxreg.tasks`."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from jaxreg import runtime_checks
from jaxreg import validation as V
from jaxreg.factorizations._base import AbstractFactorization

DENSE_LIMIT = 2**24  # targets with more entries are kept in factored form only


class Observations(eqx.Module):
    """Observed values of a target: entries at ``indices`` (completion) or
    inner products with ``operators`` (sensing)."""

    values: Float[Array, " k"]
    indices: Int[Array, "k order"] | None = None
    operators: Float[Array, " k *shape"] | None = None

    @property
    def size(self) -> int:
        return int(self.values.shape[0])


def _mse(pred, values):
    return jnp.mean((pred - values) ** 2)


class Problem(eqx.Module):
    """A completion or sensing problem: ``loss(model)`` is the training objective.

    ``target`` is the dense ground truth W* (None for tensors over ``DENSE_LIMIT``
    entries, where ``ground_truth`` -- the target's factors -- gives its entries).

    A completion problem's observed indices are checked when it is built: their shape
    and integer dtype always, their range when concrete (a ``ValueError`` names them).
    ``loss`` and ``test_loss`` then read a factorization's entries without a run-time
    range check, so the programs they enter hold no host callback
    (``JAXREG_RUNTIME_CHECKS=1`` keeps the check, see :mod:`jaxreg.runtime_checks`).
    """

    kind: str = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    target: Float[Array, "*shape"] | None
    train: Observations
    test: Observations
    ground_truth: eqx.Module | tuple | None = None

    def __check_init__(self):
        if self.kind != "completion":
            return
        for name, obs in (("train", self.train), ("test", self.test)):
            idx = obs.indices
            if idx is None:
                raise ValueError(f"{name}.indices of a completion problem must be given")
            if idx.ndim != 2 or idx.shape[1] != len(self.shape):
                raise ValueError(
                    f"{name}.indices must have shape (k, {len(self.shape)}) for a tensor of shape "
                    f"{self.shape}, got {idx.shape}"
                )
            if not jnp.issubdtype(idx.dtype, jnp.integer):
                raise ValueError(f"{name}.indices must hold integers, got dtype {idx.dtype}")
            if not V.is_traced(idx):
                V.indices_array(f"{name}.indices", idx, self.shape)

    def check_model(self, model, name: str = "model") -> None:
        """Raise ``ValueError`` unless ``model`` factorizes a tensor of this problem's shape.

        Models without a ``shape`` attribute (user-defined callables of other kinds) pass:
        their shape is only known once evaluated.
        """
        shape = getattr(model, "shape", None)
        if shape is not None and tuple(shape) != self.shape:
            raise ValueError(f"{name} has shape {tuple(shape)} but the {self.kind} problem has shape {self.shape}")

    def _predict(self, model, obs: Observations):
        self.check_model(model)  # static shapes: raised while tracing, before compilation
        if self.kind == "completion":
            assert obs.indices is not None  # a completion problem's observations are indices
            if isinstance(model, AbstractFactorization) and not runtime_checks.requested():
                return model._entries(obs.indices)  # checked when the problem was built
            return model.entries(obs.indices)
        return self._measure(model.materialize(), obs)

    def _measure(self, w, obs: Observations):
        if self.kind == "completion":
            assert obs.indices is not None  # a completion problem's observations are indices
            return w[tuple(obs.indices.T)]
        assert obs.operators is not None  # a sensing problem's observations are operators
        return jnp.tensordot(obs.operators, w, axes=len(self.shape))

    def loss(self, model) -> Float[Array, ""]:
        """Mean over training observations of (prediction - value)^2."""
        return _mse(self._predict(model, self.train), self.train.values)

    def test_loss(self, model) -> Float[Array, ""]:
        """Mean squared error over the held-out observations."""
        return _mse(self._predict(model, self.test), self.test.values)

    def end_to_end_loss(self, w: Float[Array, "*shape"]) -> Float[Array, ""]:
        """The loss as a function of the end-to-end tensor W (its gradient is grad L(W))."""
        return _mse(self._measure(w, self.train), self.train.values)

    def _target(self):
        if self.target is None:
            raise ValueError(
                f"the target of shape {self.shape} has more than {DENSE_LIMIT} entries and is "
                "not materialized: use test_loss instead of reconstruction errors"
            )
        return self.target

    def reconstruction_error(self, model) -> Float[Array, ""]:
        """Normalized Frobenius error ||W - W*||_F / ||W*||_F."""
        t = self._target()
        return jnp.linalg.norm((model.materialize() - t).ravel()) / jnp.linalg.norm(t.ravel())

    def squared_reconstruction_error(self, model) -> Float[Array, ""]:
        """||W - W*||_F^2 / ||W*||_F^2 (Arora et al. 2019's "reconstruction error" equals
        this for entry-RMS-1 targets: the mean over all entries of (W - W*)^2)."""
        return self.reconstruction_error(model) ** 2
