"""jaxreg: implicit regularization in factorization models, in JAX.

Deep matrix, tensor (CP), hierarchical tensor, deep tensor and tensor-train factorizations; exact
gradient flow (diffrax) and discrete descent (optax); numerical checks of the
published theorems. ``import jaxreg`` never enables float64: do it at program start.

The public names below load on first use (the scientific-Python lazy-loading convention,
SPEC 1), so ``import jaxreg`` alone imports no JAX and ``jaxreg --help`` / ``jaxreg list``
answer at once; ``jr.gradient_flow``, ``from jaxreg import MatrixFactorization`` and the
rest work exactly as eager imports would.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the explicit re-exports, for type checkers and readers
    from . import locality as locality
    from . import metrics as metrics
    from . import results as results
    from . import tasks as tasks
    from . import theory as theory
    from .dynamics import Status as Status
    from .dynamics import Trajectory as Trajectory
    from .dynamics import gradient_descent as gradient_descent
    from .dynamics import gradient_flow as gradient_flow
    from .dynamics import group_rmsprop as group_rmsprop
    from .dynamics import vector_field as vector_field
    from .factorizations import AbstractFactorization as AbstractFactorization
    from .factorizations import DeepTensorFactorization as DeepTensorFactorization
    from .factorizations import HierarchicalTensorFactorization as HierarchicalTensorFactorization
    from .factorizations import MatrixFactorization as MatrixFactorization
    from .factorizations import RateTerms as RateTerms
    from .factorizations import TensorFactorization as TensorFactorization
    from .factorizations import TensorTrainFactorization as TensorTrainFactorization
    from .sweep import seed_keys as seed_keys
    from .sweep import sweep as sweep
    from .tasks import Problem as Problem

__version__ = "0.1.0"

# public name -> the submodule that defines it (a submodule itself when the name is one)
_SUBMODULES = ("locality", "metrics", "results", "tasks", "theory")
_NAMES = {
    **dict.fromkeys(
        ("Status", "Trajectory", "gradient_descent", "gradient_flow", "group_rmsprop", "vector_field"), ".dynamics"
    ),
    **dict.fromkeys(
        (
            "AbstractFactorization",
            "DeepTensorFactorization",
            "HierarchicalTensorFactorization",
            "MatrixFactorization",
            "RateTerms",
            "TensorFactorization",
            "TensorTrainFactorization",
        ),
        ".factorizations",
    ),
    **dict.fromkeys(("seed_keys", "sweep"), ".sweep"),
    "Problem": ".tasks",
}
__all__ = sorted((*_SUBMODULES, *_NAMES))


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'jaxreg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """The package's module type: importing the submodule ``jaxreg.sweep`` (the import
    system then sets the package attribute ``sweep`` to it) leaves ``jaxreg.sweep`` the
    function :func:`jaxreg.sweep.sweep`; the submodule stays in ``sys.modules``."""

    def __setattr__(self, name: str, value) -> None:
        if name in _NAMES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
