"""A reproduction's configuration from the command line: the preset of ``--size``, then
the fields of ``--config FILE.toml``, then each ``--set FIELD=VALUE`` (the last word
wins), then ``--seeds``; validated by the ``Config``'s own checks before any compute."""

from __future__ import annotations

import copy
import dataclasses
import tomllib

from jaxreg_lab.errors import UsageError as UsageError
from jaxreg_lab.store.toml import read_toml


def parse_set(text: str) -> tuple[str, object]:
    """``FIELD=VALUE`` of ``--set`` (``FIELD`` may be dotted, ``TABLE.KEY``, to set one
    entry of a table field), the value typed as TOML types it (``3`` an int,
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
    try:
        return field, tomllib.loads(f"value = {raw.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        return field, raw.strip()


def _set_entry(module, head: str, overrides: dict, path: str, value, text: str) -> dict:
    """The table field ``head`` with the entry at the dotted ``path`` set to ``value``
    (``--set model_options.depth=4``): the table as ``--config`` or an earlier ``--set``
    gave it, else the field's default, copied, with only that entry changed."""
    fields = {f.name: f for f in dataclasses.fields(module.Config)}
    if head not in fields:
        known = sorted(fields)
        raise UsageError(f"--set: unknown field(s) [{head!r}] for {module.NAME}; known: {known}")
    if head in overrides:
        table = overrides[head]
    else:
        f = fields[head]
        table = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if not isinstance(table, dict):
        raise UsageError(f"--set {text}: {head} is not a table (a dotted key sets one entry of a table field)")
    table = copy.deepcopy(table)
    node = table
    *parents, last = path.split(".")
    for i, key in enumerate(parents):
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            where = ".".join([head, *parents[: i + 1]])
            raise UsageError(f"--set {text}: {where} is not a table")
    node[last] = value
    return table


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
        head, _, rest = field.partition(".")
        if rest:
            value = _set_entry(module, head, overrides, rest, value, text)
        overrides[head], sources[head] = value, "--set"
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


def _toml_value(value) -> str:
    """One TOML value: strings quoted (JSON's escapes are TOML's), tuples and lists as
    arrays, mappings as inline tables."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # Python's repr is a TOML float: 3.0, 1e-07, inf, nan
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise UsageError(f"--print-config: the value {value!r} has no TOML form")


def _toml_key(key) -> str:
    key = str(key)
    return key if key and all(c.isalnum() or c in "-_" for c in key) else _toml_value(key)


def config_toml(config) -> str:
    """The resolved ``config`` as a TOML document, one ``field = value`` line per field in
    declaration order (``None`` fields, which TOML cannot write, as comments): what
    ``--print-config`` prints, and a file ``--config`` reads back to the same ``Config``.

    Arguments:
        config: a frozen ``Config`` dataclass.

    Returns:
        The TOML text, ending in a newline.
    """
    lines = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None:
            lines.append(f"# {f.name} is unset (None)")
        else:
            lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
