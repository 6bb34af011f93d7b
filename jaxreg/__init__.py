"""jaxreg: implicit regularization in factorization models, in JAX.

Deep matrix, tensor (CP), hierarchical tensor, deep tensor and tensor-train
factorizations; exact gradient flow (diffrax) and discrete descent (optax); numerical
checks of the published theorems; the CNN locality regularizer (:mod:`jaxreg.locality`).

The library is pure: it never opens a file. Running, saving, plotting and the named
reproductions live in the companion package :mod:`jaxreg_lab` (the ``jaxreg`` command).
``import jaxreg`` never enables float64: do it at program start.
"""

from . import locality as locality
from . import metrics as metrics
from . import tasks as tasks
from . import theory as theory
from ._grid import grid_sweep as grid_sweep
from ._moved import moved_attribute
from ._sweep import seed_keys as seed_keys
from ._sweep import sweep as sweep
from .dynamics import Status as Status
from .dynamics import Trajectory as Trajectory
from .dynamics import gradient_descent as gradient_descent
from .dynamics import gradient_flow as gradient_flow
from .dynamics import group_rmsprop as group_rmsprop
from .dynamics import vector_field as vector_field
from .dynamics.precision import PrecisionWarning as PrecisionWarning
from .factorizations import AbstractFactorization as AbstractFactorization
from .factorizations import DeepTensorFactorization as DeepTensorFactorization
from .factorizations import HierarchicalTensorFactorization as HierarchicalTensorFactorization
from .factorizations import MatrixFactorization as MatrixFactorization
from .factorizations import RateTerms as RateTerms
from .factorizations import TensorFactorization as TensorFactorization
from .factorizations import TensorTrainFactorization as TensorTrainFactorization
from .tasks import Problem as Problem

__version__ = "0.2.0"
__all__ = [
    "AbstractFactorization",
    "DeepTensorFactorization",
    "HierarchicalTensorFactorization",
    "MatrixFactorization",
    "PrecisionWarning",
    "Problem",
    "RateTerms",
    "Status",
    "TensorFactorization",
    "TensorTrainFactorization",
    "Trajectory",
    "gradient_descent",
    "gradient_flow",
    "grid_sweep",
    "group_rmsprop",
    "locality",
    "metrics",
    "seed_keys",
    "sweep",
    "tasks",
    "theory",
    "vector_field",
]

# names that moved to the lab (jaxreg_lab); the library never imports it
_MOVED = {"results": "jaxreg_lab.results"}


def __getattr__(name: str):
    raise moved_attribute(__name__, name, _MOVED)
