"""Countering locality in CNNs with the gradient-change regularizer.

Razin, Maman, Cohen, "Implicit Regularization in Hierarchical Tensor Factorization and
Deep Convolutional Neural Networks", ICML 2022 (docs/theory.md §8): data generators
(Is-Same-Class, Pathfinder), ResNets (equinox), the regularizer R and vmapped training.
The reproduction runs, their configs, figures and the on-disk data cache are the lab's
(:mod:`jaxreg_lab.locality`).
"""

from .._moved import moved_attribute
from .data import DataCache as DataCache
from .data import LocalityData as LocalityData
from .data import is_same_class as is_same_class
from .data import pathfinder as pathfinder
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
from .training import TrainOptions as TrainOptions
from .training import evaluate as evaluate
from .training import train_runs as train_runs

_MOVED = {
    name: f"jaxreg_lab.locality.{name}"
    for name in (
        "IsSameClassConfig",
        "ModelSpec",
        "PathfinderConfig",
        "plot_locality",
        "plot_samples",
        "run_is_same_class",
        "run_locality",
        "run_pathfinder",
        "cache_dir",
    )
}


def __getattr__(name: str):
    raise moved_attribute(__name__, name, _MOVED)
