"""The reproduction contract: what a named reproduction declares, and what the driver does.

A reproduction is a set of independent runs (seeds, and settings such as init scales)
that each carry a state (e.g. a factorization) through ``num_chunks`` chunks (e.g.
segments of a gradient flow). It declares:

- ``name`` and ``config``: its registered name and its frozen ``Config`` class (with
  ``preset(size)``);
- :meth:`Reproduction.outputs`: every saved array's name -> its dimension names;
- :meth:`Reproduction.setup`: the runs' inputs and initial states, stacked on one
  leading run axis (:class:`Setup`);
- :meth:`Reproduction.chunk`: ONE run's chunk, a pure function ``(config, inputs, state,
  k) -> (state, status, outputs)``. It never calls jit or vmap on itself: the driver
  (:func:`jaxreg_lab.driver.run_reproduction`) vmaps and jits it, and splits the runs
  over every device of every process;
- :meth:`Reproduction.assemble`: the saved arrays, from the final states and the
  chunks' stacked outputs (host side, NumPy);
- optionally :meth:`Reproduction.extra`: scalars derived from the saved arrays (e.g.
  findings), recorded at the top level of ``results.json``;
- :meth:`Reproduction.claims`: the published statements it is named for, each decided
  on the saved arrays (:class:`jaxreg_lab.claims.Claim`);
- :meth:`Reproduction.plot` and :meth:`Reproduction.summary`, from saved results only.

A chunk of a :class:`Reproduction` is one compiled program. A chunk of an
:class:`EpochReproduction` is an epoch: a loop of steps that the driver dispatches one
by one (a CNN's training set does not fit one ``lax.scan``, and XLA's CPU backend runs a
step as a top-level program faster than as a loop body). It declares per-run pure
functions that the driver vmaps over the runs of a :class:`Group` and jits: ``init``,
``plan`` (once per epoch), ``step`` (each of the epoch's ``num_steps`` steps) and ``end``
(after the epoch: its outputs and the run's status, :data:`jaxreg.Status.RUNNING` while it
trains on), and ``finish`` (after the last epoch). The driver freezes the runs that
stopped, ends a group when none runs, and marks a run still running after the last
epoch :data:`jaxreg.Status.MAX_STEPS`.

The driver owns everything else, once: chunking, checkpoint units, resume, each run's
worst status, the fingerprint and the layout of the arrays on their dimensions.
A reproduction never calls the driver or the store and never imports another
reproduction (shared pieces live in lab modules such as
:mod:`jaxreg_lab.reproductions._results`).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from jaxtyping import PyTree

__all__ = ["AbstractReproduction", "Reproduction", "EpochReproduction", "Setup", "EpochSetup", "Group", "Final"]


@dataclasses.dataclass(frozen=True)
class Setup:
    """The runs of a reproduction before the first chunk.

    Attributes:
        inputs: per-run constants (e.g. the problems), every array leaf with a leading
            run axis of size ``prod(run_shape)``.
        state: the per-run initial carried state (e.g. the models), likewise.
        num_chunks: the number of chunks (each one checkpointed).
        run_shape: the run axis unflattened, e.g. ``(seeds,)`` or ``(init_scales, seeds)``:
            the statuses and every output's leading axes take this shape.
        coords: the coordinates of the output dimensions (name -> values; a string
            value, e.g. the sweep's ``time_name``, names an axis for the figures).
        extra: scalars recorded at the top level of ``results.json``.
        chunk_size: runs per vmapped program (a hint to the driver): None (the default)
            runs each device's slice of the runs as one vmapped program; a positive
            integer runs it as a ``lax.map`` over chunks of ``chunk_size`` runs (each
            vmapped, unbatched when 1), padded with copies of run 0 to whole chunks. With
            a fixed ``chunk_size`` XLA compiles the same batch size whatever the number of
            devices or processes, and a device holds the intermediates of ``chunk_size``
            runs at a time, not of its whole share.
    """

    inputs: PyTree
    state: PyTree
    num_chunks: int
    run_shape: tuple[int, ...]
    coords: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    chunk_size: int | None = None

    def __post_init__(self):
        size = self.chunk_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise ValueError(f"chunk_size must be None or a positive integer, got {size!r}")

    @property
    def num_runs(self) -> int:
        """The number of runs, ``prod(run_shape)``."""
        return math.prod(self.run_shape)


@dataclasses.dataclass(frozen=True)
class Group:
    """Runs of an :class:`EpochReproduction` that train together: the same shared inputs
    (e.g. one data set) and the same compiled programs, vmapped over the runs.

    Attributes:
        name: the group's name, in error messages.
        label: the group's label, listed beside the progress bar while it trains.
        shared: what every run of the group reads (no run axis), e.g. the data set; its
            non-array leaves (e.g. options) are static in the compiled programs.
        inputs: per-run constants (e.g. seed and lambda), every leaf with a leading run axis.
        index: each run's flat position in ``EpochSetup.run_shape``.
        num_steps: the steps of every epoch.
        runs_per_program: None vmaps all the group's runs in one program; k, programs of
            k runs (each run's results then do not depend on the runs beside it when 1).
            The programs of every group are what the driver splits over devices and
            processes: a program runs whole on one device.
    """

    name: str
    label: str
    shared: PyTree
    inputs: PyTree
    index: tuple[int, ...]
    num_steps: int
    runs_per_program: int | None = None

    def __post_init__(self):
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be a positive integer, got {self.num_steps!r}")
        size = self.runs_per_program
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise ValueError(f"runs_per_program must be None or a positive integer, got {size!r}")


@dataclasses.dataclass(frozen=True)
class EpochSetup:
    """The runs of an :class:`EpochReproduction`, in groups.

    Attributes:
        groups: the :class:`Group` s, together holding every run of ``run_shape`` once.
        num_chunks: the most epochs (each one checkpointed).
        run_shape: the runs' grid, e.g. ``(ranges, lambdas, seeds)``: the statuses and every
            final array's leading axes take this shape.
        coords: the coordinates of the output dimensions.
        extra: scalars recorded at the top level of ``results.json``.
    """

    groups: tuple[Group, ...]
    num_chunks: int
    run_shape: tuple[int, ...]
    coords: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        index = sorted(i for group in self.groups for i in group.index)
        if index != list(range(math.prod(self.run_shape))):
            raise ValueError(f"the groups must hold every run of run_shape {self.run_shape} once")

    @property
    def num_runs(self) -> int:
        """The number of runs, ``prod(run_shape)``."""
        return math.prod(self.run_shape)


@dataclasses.dataclass(frozen=True)
class Final:
    """What the driver hands :meth:`Reproduction.assemble` after the last chunk.

    Attributes:
        state: every run's final state (leading axes ``run_shape``).
        status: every run's worst status code, shape ``run_shape``.
        data: every chunk output, the chunks concatenated along the first axis after the
            run axes (an output ``"steps"``, solver steps per chunk, is summed instead);
            for an :class:`EpochReproduction`, the outputs of its ``finish`` and those of
            its ``end``, stacked on an epoch axis after the run axes (``num_chunks`` long;
            NaN, or 0 for integers, after a group stopped; a stopped run's own outputs are
            its frozen state's).
    """

    state: PyTree
    status: np.ndarray
    data: Mapping[str, np.ndarray]


class AbstractReproduction(abc.ABC):
    """What every named reproduction declares (see the module docstring), whatever its
    chunk: :class:`Reproduction` or :class:`EpochReproduction`. Subclasses are stateless:
    their instances compare equal when their classes do, so the driver's compiled
    programs are reused by every run of the same class and config."""

    name: ClassVar[str]
    config: ClassVar[type]

    @abc.abstractmethod
    def outputs(self, config) -> Mapping[str, tuple[str, ...]]:
        """The saved arrays' schema.

        Arguments:
            config: the frozen ``Config`` (some schemas depend on it, e.g. one array per
                tree node).

        Returns:
            ``{array name: dimension names}``.
        """

    def extra(self, config, setup: Setup | EpochSetup, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """Scalars derived from the saved arrays (e.g. what a grid finds), recorded
        beside ``setup.extra`` at the top level of ``results.json``.

        Arguments:
            config: the frozen ``Config``.
            setup: the :class:`Setup` (or :class:`EpochSetup`) of the run.
            arrays: the arrays :meth:`assemble` returned.

        Returns:
            ``{name: JSON-serializable value}``; none by default.
        """
        return {}

    def claims(self) -> tuple:
        """The published claims this reproduction is named for, and their controls.

        Returns:
            A tuple of :class:`jaxreg_lab.claims.Claim`; each decides itself on saved
            results (``results.config`` gives the settings it ran at).
        """
        return ()

    @abc.abstractmethod
    def plot(self, results, out_dir):
        """Draw the figures of saved ``results`` into ``out_dir``.

        Arguments:
            results: loaded results (:class:`jaxreg_lab.store.results.Results`).
            out_dir: the results directory.

        Returns:
            The figure paths.
        """

    @abc.abstractmethod
    def summary(self, results) -> str:
        """The plain-text summary table of saved ``results``.

        Arguments:
            results: loaded results.

        Returns:
            The table.
        """

    def __eq__(self, other) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class Reproduction(AbstractReproduction):
    """A reproduction whose chunk is one compiled program per run (see the module docstring)."""

    @abc.abstractmethod
    def setup(self, config) -> Setup:
        """The runs' inputs and initial states.

        Arguments:
            config: the frozen ``Config``.

        Returns:
            A :class:`Setup`.
        """

    @abc.abstractmethod
    def chunk(self, config, inputs: PyTree, state: PyTree, k) -> tuple[PyTree, Any, dict]:
        """One run's chunk ``k`` (a traced integer), pure and unbatched.

        Arguments:
            config: the frozen ``Config``.
            inputs: this run's inputs (no run axis).
            state: this run's state before the chunk.
            k: the chunk's index.

        Returns:
            ``(state, status, outputs)``: the state after the chunk, its
            :class:`jaxreg.Status` code and a dict of arrays (e.g. saved metrics).
        """

    @abc.abstractmethod
    def assemble(self, config, setup: Setup, final: Final) -> dict[str, np.ndarray]:
        """The saved arrays, each laid out on its ``outputs`` dimensions.

        Arguments:
            config: the frozen ``Config``.
            setup: the :class:`Setup` of the run.
            final: the final states, statuses and stacked outputs.

        Returns:
            ``{name: array}`` for every name of :meth:`outputs`.
        """


class EpochReproduction(AbstractReproduction):
    """A reproduction whose chunk is an epoch of steps dispatched one by one (see the
    module docstring). Its ``init``, ``plan``, ``step``, ``end`` and ``finish`` are pure
    and unbatched, for ONE run: the driver vmaps them over a group's runs and jits them,
    and never calls them otherwise. A run's state may hold non-array leaves (e.g. a
    model's activation functions): the driver carries and checkpoints its arrays. Every
    group's programs (``runs_per_program`` slices of its runs) are split over every
    device of every process, all groups advancing epoch by epoch together; a run's
    program, and so its bits, do not depend on the numbers of devices and processes.
    Every group's :meth:`end` (and :meth:`finish`) outputs have the same shape per run."""

    @abc.abstractmethod
    def setup(self, config) -> EpochSetup:
        """The groups of runs, their shared and per-run inputs (host side: e.g. the data).

        Arguments:
            config: the frozen ``Config``.

        Returns:
            An :class:`EpochSetup`.
        """

    @abc.abstractmethod
    def init(self, config, shared: PyTree, inputs: PyTree) -> PyTree:
        """One run's initial state.

        Arguments:
            config: the frozen ``Config``.
            shared: its group's shared inputs.
            inputs: this run's inputs (no run axis).

        Returns:
            The state.
        """

    @abc.abstractmethod
    def plan(self, config, shared: PyTree, inputs: PyTree, k) -> PyTree:
        """What one run's epoch ``k`` (a traced integer) needs before its first step, e.g.
        its batches.

        Arguments:
            config, shared, inputs: as in :meth:`init`.
            k: the epoch's index.

        Returns:
            The plan, handed to every :meth:`step` of the epoch.
        """

    @abc.abstractmethod
    def step(self, config, shared: PyTree, inputs: PyTree, state: PyTree, plan: PyTree, i) -> tuple[PyTree, Any]:
        """One run's step ``i`` (a traced integer) of an epoch.

        Arguments:
            config, shared, inputs: as in :meth:`init`.
            state: the run's state before the step.
            plan: the epoch's :meth:`plan`.
            i: the step's index in the epoch.

        Returns:
            ``(state, outputs)``; the driver stacks each output over the epoch's steps.
        """

    @abc.abstractmethod
    def end(
        self, config, shared: PyTree, inputs: PyTree, state: PyTree, k, outputs: PyTree
    ) -> tuple[PyTree, Any, dict]:
        """One run's end of epoch ``k``: e.g. evaluate, record, decide whether it stops.

        Arguments:
            config, shared, inputs: as in :meth:`init`.
            state: the run's state after the epoch's steps.
            k: the epoch's index.
            outputs: the steps' outputs, each stacked on a leading step axis.

        Returns:
            ``(state, status, outputs)``: the state, :data:`jaxreg.Status.RUNNING` to train
            on or the run's final status, and the epoch's outputs (a dict of arrays, saved
            in the checkpoint, logged and handed to :meth:`assemble`).
        """

    @abc.abstractmethod
    def finish(self, config, shared: PyTree, inputs: PyTree, state: PyTree) -> dict:
        """One run's final measurements after its last epoch.

        Arguments:
            config, shared, inputs: as in :meth:`init`.
            state: the run's final state.

        Returns:
            A dict of arrays: :attr:`Final.data` of :meth:`assemble`.
        """

    @abc.abstractmethod
    def assemble(self, config, setup: EpochSetup, final: Final) -> dict[str, np.ndarray]:
        """The saved arrays, each laid out on its ``outputs`` dimensions.

        Arguments:
            config: the frozen ``Config``.
            setup: the :class:`EpochSetup` of the run.
            final: every run's final state (its arrays), status, :meth:`finish` outputs
                and stacked :meth:`end` outputs, on leading axes ``setup.run_shape``.

        Returns:
            ``{name: array}`` for every name of :meth:`outputs`.
        """
