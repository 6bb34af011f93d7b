"""Fields that many reproductions' frozen ``Config`` dataclasses share, and their checks.

A ``Config`` composes flat field groups one level deep: ``class Config(Seeds,
FlowTolerances, Saves)``. Every group declares its fields keyword-only, so a ``Config``
declares its own fields with defaults in any order, and gives a group's field another
default by declaring it again (``seeds: int = 3``). The field names are the ones TOML
overrides and saved fingerprints use, so they never change here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from jaxreg import validation as V
from jaxreg_lab.registry import SIZES


@dataclasses.dataclass(frozen=True, kw_only=True)
class Seeds:
    """``seeds`` independent runs whose PRNG keys derive from ``seed``: the one base of
    every ``Config``, with its presets."""

    seeds: int = 1
    seed: int = 0

    # preset("tiny") and preset("paper"): the overrides of the defaults (class attributes, not fields)
    TINY = {}
    PAPER = {}

    @classmethod
    def preset(cls, size: str, **overrides):
        """The configuration of a named size: "small" (the defaults), "tiny" (the defaults
        with ``TINY``) or "paper" (with ``PAPER``), then ``overrides``; built once.

        Arguments:
            size: "tiny", "small" or "paper".
            overrides: fields that replace the preset's.

        Returns:
            The ``Config``.
        """
        V.choice("size", size, SIZES)
        return cls(**{**{"tiny": cls.TINY, "small": {}, "paper": cls.PAPER}[size], **overrides})


# Field groups: each declares its fields and nothing else (no base), and a ``Config``
# lists the groups it has beside ``Seeds``, one level deep; a ``Config`` that needs another
# default for a group's field declares that field again in its own body.


@dataclasses.dataclass(frozen=True, kw_only=True)
class Descent:
    """``num_steps`` steps of an optimizer with learning rate ``lr``."""

    lr: float = 1e-2
    num_steps: int = 20_000


@dataclasses.dataclass(frozen=True, kw_only=True)
class StopAtLoss:
    """A run that stops once the training loss is at most ``stop_at_loss``."""

    stop_at_loss: float = 1e-8


@dataclasses.dataclass(frozen=True, kw_only=True)
class FlowTolerances:
    """Gradient flows integrated with diffrax's step-size controller tolerances
    ``rtol``/``atol`` and at most ``max_steps`` steps per integration."""

    rtol: float = 1e-7
    atol: float = 1e-9
    max_steps: int = 100_000


@dataclasses.dataclass(frozen=True, kw_only=True)
class Saves:
    """A run saved at ``num_saves`` times and integrated in ``num_chunks`` checkpointed
    chunks (``num_saves`` a multiple of ``num_chunks``)."""

    num_saves: int = 300
    num_chunks: int = 5


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompletionTarget:
    """A matrix completion problem, Arora et al. 2019's setting by default: a ``shape``
    target of rank ``rank`` (entry RMS 1) with ``num_observed`` observed entries, factors
    initialized at scale ``init_scale``; the ``top`` largest singular values of the
    end-to-end matrix are saved."""

    shape: tuple[int, int] = (100, 100)
    rank: int = 5
    num_observed: int = 2000
    init_scale: float = 1e-3
    top: int = 10


def check_scalar_fields(config, *, nonnegative: Sequence[str] = ("seed",), skip: Sequence[str] = ()) -> None:
    """Check every ``int`` and ``float`` field of a ``Config`` by its annotation, in field order.

    An ``int`` field must be a positive integer (a non-negative one if named in
    ``nonnegative``), a ``float`` field a positive finite number; fields of other types
    (tuples, strings, bools, optionals) are the caller's to check.

    Arguments:
        config: the dataclass instance.
        nonnegative: ``int`` fields that may be 0.
        skip: scalar fields checked elsewhere (e.g. values that may be 0 or negative).

    Returns:
        None; raises ``ValueError`` naming the first bad field.
    """
    for field in dataclasses.fields(config):
        kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        if field.name in skip:
            continue
        value = getattr(config, field.name)
        if kind == "int":
            (V.nonnegative_int if field.name in nonnegative else V.positive_int)(field.name, value)
        elif kind == "float":
            V.positive_float(field.name, value)


def increasing_tuple(name: str, values, check) -> tuple:
    """``values`` as a non-empty tuple, increasing without repeats, each passing ``check(name, value)``
    (e.g. :func:`jaxreg.validation.positive_int`).

    Arguments:
        name: the field's name, for the error message.
        values: the sequence.
        check: the per-value check.

    Returns:
        The tuple of the values as given; raises ``ValueError`` naming ``name``.
    """
    out = tuple(values)
    if not out:
        raise ValueError(f"{name} must not be empty")
    for v in out:
        check(name, v)
    if list(out) != sorted(set(out)):
        raise ValueError(f"{name} must be increasing without repeats, got {out}")
    return out
