"""The factorization models: one module per model."""

from .cp import TensorFactorization as TensorFactorization
from .matrix import MatrixFactorization as MatrixFactorization
from .matrix import balanced_factors as balanced_factors
