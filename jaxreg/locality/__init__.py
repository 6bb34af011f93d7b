"""Countering locality in CNNs with the gradient-change regularizer.

Razin, Maman, Cohen, "Implicit Regularization in Hierarchical Tensor Factorization and
Deep Convolutional Neural Networks", ICML 2022 (docs/theory.md §8): data (Is-Same-
Class, Pathfinder), ResNets (equinox), the regularizer R, vmapped training and the
reproduction runs.
"""

from .data import LocalityData as LocalityData
from .data import cache_dir as cache_dir
from .data import is_same_class as is_same_class
from .data import pathfinder as pathfinder
from .experiments import IsSameClassConfig as IsSameClassConfig
from .experiments import ModelSpec as ModelSpec
from .experiments import PathfinderConfig as PathfinderConfig
from .experiments import plot_locality as plot_locality
from .experiments import run_is_same_class as run_is_same_class
from .experiments import run_locality as run_locality
from .experiments import run_pathfinder as run_pathfinder
from .models import BasicBlock as BasicBlock
from .models import ChannelNorm as ChannelNorm
from .models import ResNet as ResNet
from .models import architecture_receptive_field as architecture_receptive_field
from .models import batch_logits as batch_logits
from .models import make_model as make_model
from .models import receptive_field as receptive_field
from .models import resnet18 as resnet18
from .models import resnet34 as resnet34
from .models import small_resnet as small_resnet
from .regularizer import distant_patches as distant_patches
from .regularizer import fixed_pair_patches as fixed_pair_patches
from .regularizer import grad_change_penalty as grad_change_penalty
from .report import plot_samples as plot_samples
from .training import TrainOptions as TrainOptions
from .training import evaluate as evaluate
from .training import train_runs as train_runs
