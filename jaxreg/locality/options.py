"""Options of CNN training (Razin, Maman, Cohen, ICML 2022): the optimizer with its
stopping rule (:class:`Optimization`, fields the experiment configs share) and how
training samples the regularizer's patches and evaluates (:class:`TrainOptions`)."""

from __future__ import annotations

import dataclasses

import optax

from jaxreg import validation as _checks

__all__ = ["Optimization", "TrainOptions"]


@dataclasses.dataclass(frozen=True)
class Optimization:
    """The optimizer and its stopping rule; defaults are the paper's (SGD lr 1e-2, momentum
    0.9, batch 64, at most 150 epochs, stop ``patience`` epochs after 100% train accuracy).
    The experiment configs carry the same fields (:meth:`options` of their base)."""

    batch_size: int = 64
    optimizer: str = "sgd"
    learning_rate: float = 1e-2
    momentum: float = 0.9
    max_epochs: int = 150
    patience: int = 20


@dataclasses.dataclass(frozen=True)
class TrainOptions(Optimization):
    """Optimization settings (:class:`Optimization`) and how training evaluates.

    ``fit_accuracy``: the train accuracy that starts the ``patience`` count.
    ``patch_size=None``: the regularizer's patches are the data set's two squares in
    random order (Is-Same-Class); an int: a random ``patch_size`` square and a second one
    at least ``patch_distance`` px away (Pathfinder).
    ``r_mode``: how training computes the R it minimizes, "frozen" (normalization
    statistics held constant) or "train" (BatchNorm on each batch's statistics, as the
    authors' code does; :func:`jaxreg.locality.regularizer.penalty`). The held-out R is
    always computed in inference mode.
    ``runs_per_program``: None trains all runs of a call in one compiled, run-vmapped
    program; k, in programs of k runs. With 1, every run has its own program, so its
    result does not depend on which other runs train beside it: a seed run alone equals
    the same seed inside a grid, bit for bit. Vmapped runs draw their random numbers
    (initial network, batch order, patches) with batched "rbg" draws, which differ from
    a run's own, so a seed's run depends on the grid it trains in."""

    fit_accuracy: float = 1.0
    patch_size: int | None = None
    patch_distance: int = 0
    eval_batch_size: int = 256
    r_mode: str = "frozen"
    runs_per_program: int | None = None

    def __post_init__(self):
        _checks.integer("batch_size", self.batch_size, minimum=2)
        _checks.choice("optimizer", self.optimizer, ("sgd", "adam"))
        _checks.number("learning_rate", self.learning_rate, positive=True)
        _checks.number("momentum", self.momentum, minimum=0.0)
        _checks.integer("max_epochs", self.max_epochs, minimum=1)
        _checks.integer("patience", self.patience, minimum=0)
        _checks.number("fit_accuracy", self.fit_accuracy, minimum=0.0)
        if self.patch_size is not None:
            _checks.integer("patch_size", self.patch_size, minimum=1)
        _checks.integer("patch_distance", self.patch_distance, minimum=0)
        _checks.integer("eval_batch_size", self.eval_batch_size, minimum=2)
        _checks.choice("r_mode", self.r_mode, ("frozen", "train"))
        if self.runs_per_program is not None:
            _checks.integer("runs_per_program", self.runs_per_program, minimum=1)

    def step_part(self) -> "TrainOptions":
        """These options with the fields a training step ignores reset (a static jit
        argument: runs differing only in stopping rule share compiled code)."""
        return dataclasses.replace(
            self, max_epochs=1, patience=0, fit_accuracy=1.0, eval_batch_size=2, runs_per_program=None
        )

    def make_optimizer(self) -> optax.GradientTransformation:
        if self.optimizer == "sgd":
            return optax.sgd(self.learning_rate, momentum=self.momentum or None)
        return optax.adam(self.learning_rate)
