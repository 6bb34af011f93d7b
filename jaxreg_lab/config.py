"""A reproduction's configuration from the command line: the preset of ``--size``, then
the fields of ``--config FILE.toml``, then each ``--set FIELD=VALUE`` (the last word
wins), then ``--seeds``; validated by the ``Config``'s own checks before any compute."""

from __future__ import annotations

import dataclasses
import tomllib

from jaxreg_lab.errors import UsageError as UsageError
from jaxreg_lab.store.toml import read_toml


def parse_set(text: str) -> tuple[str, object]:
    """``FIELD=VALUE`` of ``--set``, the value typed as TOML types it (``3`` an int,
    ``1e-3`` a float, ``true`` a bool, ``[1, 2]`` a list, ``"cp"`` a string); a value
    that is not a TOML value (``adam``, ``cp``) is the string as written.

    Arguments:
        text: the argument of one ``--set``.

    Returns:
        ``(field, value)``; raises :class:`UsageError` naming ``--set`` without ``=``
        or a field name.
    """
    field, sep, raw = text.partition("=")
    field = field.strip()
    if not sep or not field:
        raise UsageError(f"--set expects FIELD=VALUE (e.g. --set depth=3), got {text!r}")
    if any(c in text for c in "\n\r\x00"):  # TOML would read only the first line of the value
        raise UsageError(f"--set {field}: the value holds a line break or NUL, got {text!r}; one line per --set")
    try:
        return field, tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        return field, raw.strip()


def build_config(module, args):
    """``module.Config`` of ``args.size`` with the overrides of ``--config``, ``--set``
    and ``--seeds``, built once (the Config checks its own fields and their cross-field
    facts); a :class:`UsageError` names the field at fault (an unknown one: the option too).

    Arguments:
        module: the reproduction's module (its ``Config`` and ``NAME``).
        args: the parsed command line (``size``, ``config``, ``set``, ``seeds``).

    Returns:
        The frozen ``Config``.
    """
    fields = sorted(f.name for f in dataclasses.fields(module.Config))
    overrides = {}
    sources = {}
    if args.config is not None:
        overrides = read_toml(args.config)
        sources = dict.fromkeys(overrides, "--config")
    for text in args.set or ():
        field, value = parse_set(text)
        overrides[field], sources[field] = value, "--set"
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        option = sources[unknown[0]]
        raise UsageError(f"{option}: unknown field(s) {unknown} for {module.NAME}; known: {fields}")
    if args.seeds is not None:
        overrides["seeds"] = args.seeds
    try:
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return module.Config.preset(args.size, **fixed)
    except (ValueError, TypeError) as e:  # the Config's checks name the field
        from_option = args.seeds is not None and str(e).startswith("seeds ")
        raise UsageError(f"--seeds: {e}" if from_option else str(e)) from None
