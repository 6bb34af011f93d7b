"""jaxreg: implicit regularization in factorization models, in JAX.

Deep matrix, tensor (CP), hierarchical tensor, deep tensor and tensor-train factorizations; exact
gradient flow (diffrax) and discrete descent (optax); numerical checks of the
published theorems. ``import jaxreg`` never enables float64: do it at program start.
"""

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


def __getattr__(name: str):
    # jr.locality (the CNN application) is imported on first use: it loads the image and
    # data libraries that the factorization code does not need
    if name == "locality":
        import importlib

        return importlib.import_module(".locality", __name__)
    raise AttributeError(f"module 'jaxreg' has no attribute {name!r}")
