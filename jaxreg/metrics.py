"""Metrics of end-to-end matrices / tensors and of factorizations.

All functions are pure and jit/vmap friendly; call them at save points only
(``metrics=`` of :func:`jaxreg.gradient_flow`). Matrix metrics (singular values,
effective rank, nuclear norm, errors) and tensor ranks (hierarchical, CP, tensor-train).
"""

from ._matrix_metrics import balancedness as balancedness
from ._matrix_metrics import component_norms as component_norms
from ._matrix_metrics import effective_rank as effective_rank
from ._matrix_metrics import effective_rank_from_singular_values as effective_rank_from_singular_values
from ._matrix_metrics import matricization as matricization
from ._matrix_metrics import matricization_effective_rank as matricization_effective_rank
from ._matrix_metrics import matricization_singular_values as matricization_singular_values
from ._matrix_metrics import nuclear_norm as nuclear_norm
from ._matrix_metrics import numerical_rank as numerical_rank
from ._matrix_metrics import reconstruction_error as reconstruction_error
from ._matrix_metrics import singular_values as singular_values
from ._matrix_metrics import squared_reconstruction_error as squared_reconstruction_error
from ._tensor_ranks import component_effective_rank as component_effective_rank
from ._tensor_ranks import component_norm_entropy_rank as component_norm_entropy_rank
from ._tensor_ranks import cp_rank_estimate as cp_rank_estimate
from ._tensor_ranks import ht_rank as ht_rank
from ._tensor_ranks import numerical_component_rank as numerical_component_rank
from ._tensor_ranks import tt_effective_ranks as tt_effective_ranks
