"""Configurations of the CNN-locality reproductions (Razin, Maman, Cohen, ICML 2022):
the Is-Same-Class and Pathfinder grids with their "tiny", "small" and "paper" presets,
and the hashable model factory :class:`ModelSpec`.

Both grids train in float32 whatever the caller's x64 setting (``PRECISION``, recorded
in the run's fingerprint).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import ClassVar

import numpy as np

from jaxreg import validation as _checks
from jaxreg.locality.data import DIGIT_SIDE
from jaxreg.locality.models import ACTIVATIONS, ARCHITECTURES, NORMS, architecture_receptive_field, make_model
from jaxreg.locality.options import Optimization, TrainOptions
from jaxreg.locality.pathfinder_images import check_fits
from jaxreg.locality.training import HISTORY
from jaxreg_lab.registry import SIZES as SIZES

__all__ = ["IsSameClassConfig", "PathfinderConfig", "ModelSpec", "TASKS", "SIZES", "HISTORY_METRICS"]

TASKS = ("is_same_class", "pathfinder")
IS_SAME_CLASS_DATASETS = ("digits", "cifar10")  # cifar10: read by jaxreg_lab.datasets from the data directory
IMAGE_SIDES = {"digits": DIGIT_SIDE, "cifar10": 32}
HISTORY_METRICS = HISTORY  # the metric axis of every saved ``history``


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A hashable model factory: ``spec(key) -> (model, state)`` (equal specs share
    compiled code across calls)."""

    architecture: str = "small"
    kwargs: tuple = ()

    def __call__(self, key):
        return make_model(key, self.architecture, **dict(self.kwargs))


@dataclasses.dataclass(frozen=True, kw_only=True)
class LocalityGrid:
    """The fields and checks both CNN reproductions share (a field group: a config lists
    it beside :class:`jaxreg.locality.options.Optimization`, one level deep)."""

    PRECISION: ClassVar[str] = "float32"  # CNN training is float32 whatever the x64 setting

    lambdas: tuple = (0.0,)
    seeds: tuple = (0,)
    num_train: int = 1000
    num_test: int = 1000
    architecture: str = "small"
    width: int = 8
    stages: int = 4
    blocks_per_stage: int = 1
    norm: str = "layer"
    activation: str = "relu"
    data_seed: int = 0
    size: str = "small"

    def _check_common(self):
        object.__setattr__(self, "lambdas", _checks.float_tuple("lambda", self.lambdas, minimum=0.0))
        seeds = self.seeds
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):  # a count: seeds 0 .. n-1
            seeds = range(_checks.integer("seeds", seeds, minimum=1))
        # every (lambda, seed) run is vmapped: at least the first 3x3 conv's weights, their
        # gradient and two Adam moments in float32 per run
        _checks.fits_in_memory("seeds", len(seeds), len(seeds) * len(self.lambdas) * 4 * 4 * 9 * self.width)
        object.__setattr__(self, "seeds", _checks.int_tuple("seeds", seeds, minimum=0))
        _checks.integer("num_train", self.num_train, minimum=2)
        _checks.integer("num_test", self.num_test, minimum=2)
        _checks.choice("architecture", self.architecture, tuple(ARCHITECTURES))
        _checks.integer("width", self.width, minimum=1)
        _checks.integer("stages", self.stages, minimum=1)
        _checks.integer("blocks_per_stage", self.blocks_per_stage, minimum=1)
        _checks.choice("norm", self.norm, NORMS)
        _checks.choice("activation", self.activation, ACTIVATIONS)
        _checks.integer("batch_size", self.batch_size, minimum=2)
        if self.batch_size > self.num_train:
            raise ValueError(f"batch_size must be <= num_train {self.num_train}, got {self.batch_size}")
        _checks.integer("data_seed", self.data_seed, minimum=0)
        _checks.choice("size", self.size, SIZES)
        self.options()  # checks optimizer, learning_rate, epochs, ...

    @classmethod
    def _preset(cls, size, overrides, *, tiny, paper, tiny_images=None, paper_images=None):
        """The config of preset ``size``: the grid's own ``tiny``/``paper`` settings (and
        image settings) over the training settings both grids' presets share, then
        ``overrides``; "small" is the field defaults."""
        _checks.choice("size", size, SIZES)
        base = {
            "tiny": {**_TINY_TRAINING, **tiny, **(tiny_images or {})},
            "small": {},
            "paper": {**_PAPER_TRAINING, **paper, **(paper_images or {})},
        }[size]
        return cls(**{**base, "size": size, **overrides})

    def options(self, **overrides) -> TrainOptions:
        """The training options of this config (``overrides`` replace fields)."""
        kw = {f.name: getattr(self, f.name) for f in dataclasses.fields(Optimization)}
        return TrainOptions(**{**kw, **overrides})

    def model_spec(self) -> ModelSpec:
        kw = {"norm": self.norm, "activation": self.activation}
        if self.architecture == "small":
            kw.update(width=self.width, stages=self.stages, blocks_per_stage=self.blocks_per_stage)
        return ModelSpec(self.architecture, tuple(sorted(kw.items())))

    def receptive_field(self) -> int:
        """Receptive field (px per side) of this config's network."""
        return architecture_receptive_field(
            self.architecture, stages=self.stages, blocks_per_stage=self.blocks_per_stage
        )

    def _warn_rf(self, width: int):
        if self.receptive_field() <= width:
            warnings.warn(
                f"the model's receptive field ({self.receptive_field()} px) does not exceed the image "
                f"width ({width} px): R can be exactly 1 and the regularizer cannot help",
                stacklevel=3,
            )


# training settings shared by the "tiny" presets (a small CNN memorizing a few images
# on CPU) and by the "paper" presets (ResNet18 with BatchNorm, SGD, up to 150 epochs)
_TINY_TRAINING = dict(seeds=(0, 1), width=8, stages=3, batch_size=32, learning_rate=3e-3, patience=20)
_PAPER_TRAINING = dict(
    seeds=(0, 1, 2),
    architecture="resnet18",
    norm="batch",
    optimizer="sgd",
    learning_rate=1e-2,
    max_epochs=150,
    patience=20,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class IsSameClassConfig(Optimization, LocalityGrid):
    """Is-Same-Class grid: ``distances`` (px gap) x ``lambdas`` x ``seeds`` (a tuple of
    seeds, or a count n meaning seeds 0 .. n-1).

    Images of ``dataset`` ("digits": scikit-learn's, 8 px, shipped; "cifar10": CIFAR-10's
    32 px colour images, its training images for the training pairs and its test images
    for the test pairs, read from the data directory by :mod:`jaxreg_lab.datasets`) of
    side 8 * ``scale`` (32 * ``scale``) on a ``canvas`` (H, W). Defaults: the "small" preset, the
    paper's geometry at a quarter of its size: a canvas 7 digits wide (the paper's 224 px
    for 32 px images), the shortest gap and the longest one it allows (0 and 40, the
    paper's 0 and 160 scaled), and a network shaped like ResNet18 relative to the canvas
    (two blocks per stage, a final feature map 7 columns wide, receptive field 103 px,
    about twice the canvas). Its normalization is ``"channel"`` (per position: nothing
    but the convolutions connects distant pixels); ``"layer"``, whose statistics span the
    whole image, lets the network learn gap 32 of a 48 px canvas (see the README). 4000
    training pairs, at most 40 epochs."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    max_epochs: int = 40
    patience: int = 2
    num_train: int = 4000
    num_test: int = 500
    stages: int = 3
    blocks_per_stage: int = 2
    norm: str = "channel"

    distances: tuple = (0, 40)
    lambdas: tuple = (0.0, 0.1)
    seeds: tuple = (0, 1, 2)
    dataset: str = "digits"
    scale: int = 1
    canvas: tuple = (8, 56)

    def __post_init__(self):
        self._check_common()
        _checks.choice("dataset", self.dataset, IS_SAME_CLASS_DATASETS)
        _checks.integer("scale", self.scale, minimum=1)
        a = self.image_side * self.scale
        if len(self.canvas) != 2:
            raise ValueError(f"canvas must be (height, width), got {self.canvas!r}")
        object.__setattr__(
            self,
            "canvas",
            (
                _checks.integer("canvas[0]", self.canvas[0], minimum=a),
                _checks.integer("canvas[1]", self.canvas[1], minimum=2 * a),
            ),
        )
        object.__setattr__(self, "distances", _checks.int_tuple("distance", self.distances, minimum=0))
        for d in self.distances:
            if 2 * a + d > self.canvas[1]:
                raise ValueError(
                    f"distance must be <= {self.canvas[1] - 2 * a} for a {self.canvas[1]} px wide canvas, got {d}"
                )
        self._warn_rf(self.canvas[1])

    @property
    def image_side(self) -> int:
        """The side of a source image: 8 px for the digits, 32 px for CIFAR-10."""
        return IMAGE_SIDES[self.dataset]

    def model_spec(self) -> ModelSpec:
        spec = super().model_spec()
        if self.dataset == "cifar10":  # colour images: three input channels
            return ModelSpec(spec.architecture, tuple(sorted({**dict(spec.kwargs), "in_channels": 3}.items())))
        return spec

    @classmethod
    def preset(cls, size: str = "small", **overrides) -> "IsSameClassConfig":
        """ "tiny": for tests (about a minute on one core, half of it compilation): 64 pairs
        memorized in 24 epochs, 64 test pairs, lambda 0.3 (lambda 1 slows fitting too much
        at this size);
        "small": the CPU default (2,551 s on 2 cores); "paper": the paper's grid (CIFAR-10's
        32 px images on a 224 px canvas, gaps 0..160, ResNet18 with BatchNorm, SGD,
        5000/10000 pairs, up to 150 epochs) for a GPU; it needs CIFAR-10 in the data
        directory (``jaxreg data fetch cifar10``)."""
        return cls._preset(
            size,
            overrides,
            tiny=dict(
                distances=(0, 16),
                lambdas=(0.0, 0.3),
                num_train=64,
                num_test=64,
                canvas=(8, 32),
                max_epochs=24,
                norm="layer",
                blocks_per_stage=1,
            ),
            paper=dict(distances=(0, 40, 80, 120, 160), lambdas=(0.0, 0.1, 1.0), num_train=5000, num_test=10000),
            paper_images=dict(dataset="cifar10", scale=1, canvas=(224, 224)),
        )


@dataclasses.dataclass(frozen=True, kw_only=True)
class PathfinderConfig(Optimization, LocalityGrid):
    """Pathfinder grid: ``path_lengths`` (paddles) x ``lambdas`` x ``seeds`` (a tuple, or
    a count n meaning 0 .. n-1) on ``image_size`` px images: the generator's whole
    ``canvas`` (reference px; :mod:`jaxreg.locality.pathfinder_images`) rendered and resized,
    ``num_distractors`` short snakes (None: the generator's ceil(90 / path_length) scaled
    by the canvas area); the regularizer's patches are ``patch_size`` squares (second one
    uniform among non-overlapping positions)."""

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    max_epochs: int = 12

    path_lengths: tuple = (3, 9)
    lambdas: tuple = (0.0, 3.0, 9.0)
    seeds: tuple = (0, 1, 2)
    image_size: int = 48
    canvas: float = 300.0
    num_distractors: int | None = None
    patch_size: int = 4

    def __post_init__(self):
        self._check_common()
        object.__setattr__(self, "path_lengths", _checks.int_tuple("path_length", self.path_lengths, minimum=1))
        _checks.integer("image_size", self.image_size, minimum=8)
        _checks.number("canvas", self.canvas, positive=True)
        if self.num_distractors is not None:
            _checks.integer("num_distractors", self.num_distractors, minimum=0)
        _checks.integer("patch_size", self.patch_size, minimum=1, maximum=self.image_size // 2)
        for n in self.path_lengths:
            check_fits(n, self.canvas)
        self._warn_rf(self.image_size)

    @classmethod
    def preset(cls, size: str = "small", **overrides) -> "PathfinderConfig":
        """ "tiny": for tests (mostly compilation): a 120 px canvas resized to 24 px, path
        lengths 2 and 4, 6 px patches (with 2 px patches most pairs are blank, R stays ~1
        and the regularizer has nothing to act on), lambda 1, 64/64 images, 20 epochs;
        "small": the CPU default (the generator's 300 px canvas resized to 48 px, path
        lengths 3 and 9, 4 px patches); "paper": the 300 px canvas resized to 150 px (as
        the paper resizes its renders), path lengths 3/5/7/9, 10k/10k, ResNet18, SGD, up
        to 150 epochs, 2 px patches, for a GPU."""
        return cls._preset(
            size,
            overrides,
            tiny=dict(path_lengths=(2, 4), lambdas=(0.0, 1.0), num_train=64, num_test=64, max_epochs=20),
            tiny_images=dict(image_size=24, canvas=120.0, patch_size=6),
            paper=dict(path_lengths=(3, 5, 7, 9), num_train=10000, num_test=10000),
            paper_images=dict(image_size=150, patch_size=2),
        )
