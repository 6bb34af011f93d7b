"""Dataclass helpers shared by the configuration classes (reproductions, CNN training)."""

from __future__ import annotations

import dataclasses


def defaults(**values):
    """Class decorator, placed under ``@dataclasses.dataclass``: the inherited fields named
    in ``values`` take these defaults in this class (their type and position stay the base's).

    Arguments:
        values: inherited field name -> default.

    Returns:
        The decorator; it raises ``TypeError`` for a name that no base declares.
    """

    def apply(cls):
        inherited = {
            f.name: f for base in cls.__mro__[1:] if dataclasses.is_dataclass(base) for f in dataclasses.fields(base)
        }
        annotations = dict(cls.__dict__.get("__annotations__", {}))
        for name, value in values.items():
            if name not in inherited:
                raise TypeError(f"{cls.__name__} inherits no field {name!r}")
            annotations[name] = inherited[name].type
            setattr(cls, name, dataclasses.field(default=value, kw_only=True))
        cls.__annotations__ = annotations
        return cls

    return apply
