"""Gradient flow (diffrax) and discrete descent (optax) on any loss of a model."""

from .descent import gradient_descent as gradient_descent
from .flow import gradient_flow as gradient_flow
from .flow import vector_field as vector_field
from .optimizers import group_rmsprop as group_rmsprop
from .optimizers import scale_by_group_rms as scale_by_group_rms
from .trajectory import Status as Status
from .trajectory import Trajectory as Trajectory
