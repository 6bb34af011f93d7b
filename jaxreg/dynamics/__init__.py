"""Gradient flow (diffrax) and discrete descent (optax) on any loss of a model."""

from jaxreg.dynamics.descent import gradient_descent as gradient_descent
from jaxreg.dynamics.flow import gradient_flow as gradient_flow
from jaxreg.dynamics.flow import vector_field as vector_field
from jaxreg.dynamics.optimizers import group_rmsprop as group_rmsprop
from jaxreg.dynamics.optimizers import scale_by_group_rms as scale_by_group_rms
from jaxreg.dynamics.trajectory import Status as Status
from jaxreg.dynamics.trajectory import Trajectory as Trajectory
