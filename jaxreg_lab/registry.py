"""The names, one-line descriptions and paper references of the reproductions, and the
preset sizes, as plain data: ``jaxreg --help`` and ``jaxreg list`` read them without
importing JAX or any experiment module. :data:`jaxreg_lab.reproductions.EXPERIMENTS` maps the
same names to their modules (each module's ``NAME`` is its name here)."""

from __future__ import annotations

from typing import NamedTuple

# the sizes every reproduction's Config.preset(size) accepts; "small" is the default
SIZES = ("tiny", "small", "paper")
DEFAULT_SIZE = "small"
# the real data sets `jaxreg data fetch` knows (their files: jaxreg_lab.datasets.DATASETS)
DATA_SETS = ("cifar10", "mnist", "fashion-mnist", "movielens-100k")


class Reproduction(NamedTuple):
    """One registered reproduction."""

    name: str  # the CLI name (``jaxreg reproduce NAME``)
    module: str  # its module in :mod:`jaxreg_lab.reproductions`
    description: str  # what it shows, one line
    reference: str  # the paper it reproduces


ARORA_2019 = "Arora, Cohen, Hu, Luo, NeurIPS 2019"
RAZIN_2020 = "Razin, Cohen, NeurIPS 2020"
RAZIN_2021 = "Razin, Maman, Cohen, ICML 2021"
RAZIN_2022 = "Razin, Maman, Cohen, ICML 2022"

REPRODUCTIONS = (
    Reproduction(
        "matrix-dynamics",
        "matrix_dynamics",
        "singular-value dynamics of deep matrix completion under exact gradient flow (published: one at a time)",
        ARORA_2019,
    ),
    Reproduction(
        "matrix-dynamics-depth",
        "matrix_dynamics_depth",
        "singular-value dynamics for depths 1, 2, 3 from one balanced init, and the gradient's alignment",
        ARORA_2019,
    ),
    Reproduction(
        "matrix-sensing",
        "matrix_sensing",
        "deep matrix sensing against depth and init scale, beside nuclear-norm minimization",
        ARORA_2019,
    ),
    Reproduction(
        "incremental-learning",
        "incremental_learning",
        "components learned one at a time in matrix, CP, hierarchical and deep tensor factorization, weighted and Gaussian targets, with a depth-1 control",
        RAZIN_2022,
    ),
    Reproduction(
        "matrix-completion-depth",
        "matrix_completion_depth",
        "deep matrix completion against depth and init scale, beside nuclear-norm minimization",
        ARORA_2019,
    ),
    Reproduction(
        "norms-counterexample",
        "norms_counterexample",
        "a 2x2 completion where every norm grows without bound while the effective rank falls to 1",
        RAZIN_2020,
    ),
    Reproduction(
        "tensor-completion-observations",
        "tensor_completion_observations",
        "CP tensor completion of a rank-1 target against the number of observed entries",
        RAZIN_2020,
    ),
    Reproduction(
        "tensor-dynamics",
        "tensor_dynamics",
        "component-norm dynamics of CP tensor completion across init scales",
        RAZIN_2021,
    ),
    Reproduction(
        "tensor-rank-complexity",
        "tensor_rank_complexity",
        "tensor rank as a measure of complexity: natural against randomized image data",
        RAZIN_2021,
    ),
    Reproduction(
        "deep-tensor-rank",
        "deep_tensor_rank",
        "tensor rank and test error of deep tensor factorization against factor depth k",
        "Hariz, Kadri, Ayache, Moakher, Artieres 2022",
    ),
    Reproduction(
        "ht-rank",
        "ht_rank",
        "hierarchical tensor factorization lowers the ranks of its tree's matricizations, not of others",
        RAZIN_2022,
    ),
    Reproduction(
        "locality-is-same-class",
        "locality_is_same_class",
        "Is-Same-Class: the gradient-change regularizer restores a CNN's long-range accuracy",
        RAZIN_2022,
    ),
    Reproduction(
        "locality-pathfinder",
        "locality_pathfinder",
        "Pathfinder: a CNN's test accuracy against path length, with and without the gradient-change regularizer",
        RAZIN_2022,
    ),
)
NAMES = tuple(r.name for r in REPRODUCTIONS)
