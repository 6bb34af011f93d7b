"""The factorization models, one module per model, and the registry of their names.

Every model subclasses :class:`AbstractFactorization`. ``MODELS`` maps a model's name
(as written in a config file) to its class; :func:`model_class` looks one up with a
clear error. Adding a model is its module plus one entry here.
"""

from types import MappingProxyType

from jaxreg.factorizations._base import AbstractFactorization as AbstractFactorization
from jaxreg.factorizations._base import RateTerms as RateTerms
from jaxreg.factorizations._base import VerifyCase as VerifyCase
from jaxreg.factorizations.cp import TensorFactorization as TensorFactorization
from jaxreg.factorizations.deep_cp import DeepTensorFactorization as DeepTensorFactorization
from jaxreg.factorizations.hierarchical import HierarchicalTensorFactorization as HierarchicalTensorFactorization
from jaxreg.factorizations.hierarchical import ht_target as ht_target
from jaxreg.factorizations.matrix import MatrixFactorization as MatrixFactorization
from jaxreg.factorizations.matrix import balanced_factors as balanced_factors
from jaxreg.factorizations.tensor_train import TensorTrainFactorization as TensorTrainFactorization
from jaxreg.factorizations.trees import balanced_tree as balanced_tree

MODELS = MappingProxyType(
    {
        "matrix": MatrixFactorization,
        "cp": TensorFactorization,
        "hierarchical": HierarchicalTensorFactorization,
        "deep_cp": DeepTensorFactorization,
        "tensor_train": TensorTrainFactorization,
    }
)


def model_class(name: str) -> type[AbstractFactorization]:
    """The class registered under ``name`` in :data:`MODELS`.

    Arguments:
        name: a registered model name, e.g. ``"matrix"``.

    Returns:
        The model class.

    Raises:
        ValueError: ``name`` is not registered (the message lists the names).
    """
    if name not in MODELS:
        raise ValueError(f"model must be one of {tuple(MODELS)}, got {name!r}")
    return MODELS[name]
