"""The error raised for a public name that moved from the library to the lab."""

from __future__ import annotations


def moved_attribute(module: str, name: str, moved: dict[str, str]) -> AttributeError:
    """The AttributeError for ``module.name``: it names the new home when ``name`` moved
    to the lab (``moved[name]``), else it is Python's usual message.

    Arguments:
        module: the module's name, e.g. ``"jaxreg"``.
        name: the attribute looked up.
        moved: old name -> where it lives now.

    Returns:
        The error, to be raised by the module's ``__getattr__``.
    """
    if name in moved:
        return AttributeError(
            f"{module}.{name} moved to {moved[name]}: the library no longer runs, saves or plots (see CHANGELOG.md)"
        )
    return AttributeError(f"module {module!r} has no attribute {name!r}")
