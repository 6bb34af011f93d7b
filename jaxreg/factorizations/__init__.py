"""The factorization models: one module per model."""

from .cp import TensorFactorization as TensorFactorization
from .deep_cp import DeepTensorFactorization as DeepTensorFactorization
from .hierarchical import HierarchicalTensorFactorization as HierarchicalTensorFactorization
from .hierarchical import ht_target as ht_target
from .matrix import MatrixFactorization as MatrixFactorization
from .matrix import balanced_factors as balanced_factors
from .trees import balanced_tree as balanced_tree
