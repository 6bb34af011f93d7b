"""The generated pages of the documentation site, as text, from saved files only.

Every function here is pure: it takes what was read from disk (loaded results, a
benchmark's JSON, a docstring) and returns Markdown. ``docs/gen_pages.py`` (run by the
mkdocs-gen-files plugin at build time) reads the files, calls these functions and hands
the pages to mkdocs; nothing generated is committed.

No number on a generated page is typed here. Every number on a reproduction page is one
of (``tests/test_docs.py`` checks it):

- a number of the saved ``results.json`` (the config, coordinates, wall time, versions,
  the claims' values), at most 3 significant digits (:func:`fmt`), or a number written
  inside one of its texts (a claim's statement, paper value, rule or note), verbatim;
- a count of the records of ``results.json`` (runs, claims; how many have each status,
  how many claims hold);
- a dimension length of the saved arrays (``arrays.npz``);
- a field of the reproduction's ``Config.preset("paper")`` or ``Config.preset(size)``;
- a number written in the reproduction module's or its ``Config``'s docstring, or in
  its registry entry (:mod:`jaxreg_lab.registry`), or in the results directory's name,
  rendered verbatim.

The benchmark pages show the numbers of ``benchmarks/results/*.json`` (at most 4
significant digits) and the lengths of their lists.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from jaxreg_lab.claims import with_field_defaults
from jaxreg_lab.store.results import as_json

__all__ = [
    "fmt",
    "md_text",
    "docstring_markdown",
    "module_for",
    "preset_config",
    "config_diff",
    "reproduce_command",
    "headline",
    "claims_table",
    "documented_dirs",
    "reproduction_page",
    "reproductions_index",
    "benchmark_group",
    "benchmark_section",
    "benchmark_page",
]

# significant digits of the numbers that are measured (claims' values, wall times) and of
# the benchmarks' numbers; config values are shown exactly as saved
DIGITS = 3
BENCHMARK_DIGITS = 4
# benchmarks/results/<stem>.json goes to the scale-out page when <stem> starts with one of
# these, to the performance page otherwise
SCALE_OUT_PREFIXES = ("multiprocess", "sharding", "scale")
# a list of more numbers than this is shown as its length in a benchmark table
LONG_LIST = 8
# a benchmark table with more columns than this (and than rows) is shown transposed
WIDE_TABLE = 9

_MISSING = object()


# ---------------------------------------------------------------- formatting


def fmt(x: Any, digits: int = DIGITS) -> str:
    """A number as a page shows it: an integer exactly, a float rounded to ``digits``
    significant digits (shortest form: ``0.00231``, ``1.2e-05``, ``2550``), None as "n/a".

    Arguments:
        x: a number, a bool, None or anything else (shown with ``str``).
        digits: significant digits of a float.

    Returns:
        The text.
    """
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if x != x or x in (float("inf"), float("-inf")):
            return str(x)
        rounded = float(f"{x:.{digits}g}")
        if abs(rounded) >= 1e6:
            return f"{rounded:.{digits}g}"
        if rounded == int(rounded):
            return str(int(rounded))
        return repr(rounded)
    return str(x)


def value_text(v: Any) -> str:
    """A config value exactly as saved (JSON), as an inline code span."""
    text = json.dumps(v)
    return f"`{text}`" if "`" not in text else text


_MD_SPECIAL = re.compile(r"([\\*_\[\]{}|#])")


def md_text(text: str, *, one_line: bool = False) -> str:
    """Plain text made safe for Markdown: emphasis, link, table and attribute characters
    escaped, ``<`` and ``>`` as entities; inline code spans (between backticks) kept.

    Arguments:
        text: the text.
        one_line: newlines as spaces (for a table cell).

    Returns:
        The Markdown.
    """
    parts = re.split(r"(`[^`\n]+`)", str(text).replace("\n", " ") if one_line else str(text))
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
        else:
            part = _MD_SPECIAL.sub(r"\\\1", part)
            out.append(part.replace("<", "&lt;").replace(">", "&gt;"))
    return "".join(out)


_ROLE = re.compile(r":(?:func|mod|class|data|meth|attr|obj|exc):`~?([^`]+)`")


def docstring_markdown(doc: str | None) -> str:
    """A docstring (reStructuredText-ish, as this project writes them) as Markdown:
    ````code```` and ``:func:`name``` as code spans, ``::`` literal blocks as code blocks,
    the rest escaped (:func:`md_text`).

    Arguments:
        doc: the docstring (None: empty).

    Returns:
        The Markdown ("" when there is no docstring).
    """
    if not doc:
        return ""
    text = inspect.cleandoc(doc)
    text = _ROLE.sub(r"``\1``", text)
    lines, out, literal = text.split("\n"), [], False
    for line in lines:
        if literal:
            if line.strip() and not line.startswith(" "):
                literal = False
            else:
                out.append(line)
                continue
        if line.rstrip().endswith("::"):
            line = line.rstrip()[:-1]
            literal = True
        # ``x`` -> `x`; everything outside code spans escaped
        pieces = re.split(r"``(.+?)``", line)
        out.append("".join((f"`{p}`" if "`" not in p else p) if i % 2 else md_text(p) for i, p in enumerate(pieces)))
    return "\n".join(out)


# ---------------------------------------------------------------- reproductions


def module_for(name: str):
    """The module of the reproduction whose results are named ``name``.

    Arguments:
        name: the ``name`` saved in ``results.json`` (a registered name or ``sweep``).

    Returns:
        The module, or None when no reproduction has that name.
    """
    from jaxreg_lab.reproductions import EXPERIMENTS

    if name == "sweep":
        from jaxreg_lab.reproductions import custom_sweep

        return custom_sweep
    return EXPERIMENTS.get(name)


def preset_config(module, size: str) -> dict | None:
    """The fields of ``module.Config.preset(size)`` as JSON values (tuples as lists).

    Arguments:
        module: a reproduction module.
        size: a preset size.

    Returns:
        ``{field: value}`` in field order, or None when the module or size has no preset.
    """
    config = getattr(module, "Config", None)
    if config is None or not hasattr(config, "preset"):
        return None
    try:
        return as_json(config.preset(size))
    except (ValueError, TypeError):
        return None


def config_diff(ours: Mapping, other: Mapping | None) -> list[tuple[str, Any, Any]]:
    """The fields whose values differ between two configs, in ``other``'s field order
    then ``ours``'s.

    Arguments:
        ours: the saved config.
        other: a preset's config (None: no fields differ).

    Returns:
        ``(field, ours value, other value)``; a field missing from one side has the
        module-level sentinel there (see :func:`_cell`).
    """
    if other is None:
        return []
    fields = list(other) + [k for k in ours if k not in other]
    out = []
    for k in fields:
        a, b = ours.get(k, _MISSING), other.get(k, _MISSING)
        if a != b:
            out.append((k, a, b))
    return out


def _cell(v, missing: str) -> str:
    return missing if v is _MISSING else value_text(v)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML value for {v!r}")


def reproduce_command(name: str, size: str, overrides: Sequence[tuple[str, Any]], out_dir: str) -> str:
    """The command line that reproduces saved results: ``jaxreg reproduce NAME --size
    SIZE --set FIELD=VALUE ... --out DIR`` (for the custom sweep, ``jaxreg sweep --config
    sweep.toml`` with the TOML file below it).

    Arguments:
        name: the results' name.
        size: the preset size they were run at.
        overrides: ``(field, value)`` where the saved config differs from that preset.
        out_dir: where the results live, relative to the repository root.

    Returns:
        A fenced ``bash`` block (and a ``toml`` one for a sweep).
    """
    if name == "sweep":
        toml = "\n".join(f"{k} = {_toml_value(v)}" for k, v in overrides if v is not None and v is not _MISSING)
        return (
            f"```bash\njaxreg sweep --config sweep.toml --out {out_dir}\n```\n\n"
            f"with `sweep.toml` (the fields that differ from the defaults):\n\n```toml\n{toml}\n```"
        )
    sets = "".join(f" \\\n    --set {shlex.quote(f'{k}={_toml_value(v)}')}" for k, v in overrides if v is not _MISSING)
    return f"```bash\njaxreg reproduce {name} --size {size}{sets} \\\n    --out {out_dir}\n```"


def _claims(meta: Mapping) -> list[Mapping]:
    return list(meta.get("claims") or [])


def headline(claims: Sequence[Mapping] | None) -> str:
    """A reproduction's verdict in one line, e.g. "4 claims: 3 hold, 1 does not".

    Arguments:
        claims: the claim records of ``results.json`` (None: none recorded).

    Returns:
        The line; a claim whose outcome was not expected is named.
    """
    if not claims:
        return "no claims recorded"
    n = len(claims)
    held = sum(bool(c["holds_overall"]) for c in claims)
    failed = n - held
    noun = "claim" if n == 1 else "claims"
    if failed == 0:
        text = f"{n} {noun}: all hold" if n > 1 else f"{n} {noun}: holds"
    elif held == 0:
        text = f"{n} {noun}: none holds" if n > 1 else f"{n} {noun}: does not hold"
    else:
        text = f"{n} {noun}: {held} hold{'s' if held == 1 else ''}, {failed} do{'es' if failed == 1 else ''} not"
    unexpected = [c["id"] for c in claims if bool(c["holds_overall"]) != bool(c.get("expected", True))]
    if unexpected:
        text += " (unexpected: " + ", ".join(unexpected) + ")"
    elif failed:
        text += " (as expected)"
    return text


def _summary_line(module) -> str:
    """The first line of a module's docstring, as Markdown ("" without one)."""
    doc = getattr(module, "__doc__", None) or ""
    return docstring_markdown(doc.strip().split("\n")[0])


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _values(record: Mapping) -> str:
    return " / ".join(fmt(v) for v in record.get("values") or [])


def claims_table(claims: Sequence[Mapping] | None) -> str:
    """The claims as a Markdown table: claim | paper (source) | ours, per seed | verdict.

    Arguments:
        claims: the claim records of ``results.json``.

    Returns:
        The table (a sentence when there are none).
    """
    if not claims:
        return "No claims are recorded in these results."
    rows = ["| claim | paper (source) | ours, per seed | verdict |", "| --- | --- | --- | --- |"]
    for c in claims:
        cell = {k: md_text(c.get(k, ""), one_line=True) for k in ("id", "statement", "paper", "source", "quantity")}
        mark = "✅" if c["holds_overall"] else "❌"
        verdict = f"{mark} {md_text(c['verdict'], one_line=True)}"
        if bool(c["holds_overall"]) != bool(c.get("expected", True)):
            verdict += " **(unexpected)**"
        elif not c.get("expected", True):
            verdict += " (known not to hold here)"
        if c.get("note"):
            verdict += f"; {md_text(c['note'], one_line=True)}"
        need = "every seed" if c.get("need") == "all" else md_text(c.get("need", ""), one_line=True)
        rows.append(
            f"| **{cell['id']}**: {cell['statement']} | {cell['paper']} ({cell['source']}) "
            f"| {cell['quantity']}: {_values(c)} (rule `{c['rule']}`, needs {need}) | {verdict} |"
        )
    return "\n".join(rows)


def _status_text(status: Sequence[str] | None) -> str:
    if not status:
        return "no statuses recorded"
    counts: dict[str, int] = {}
    for s in status:
        counts[s] = counts.get(s, 0) + 1
    parts = ", ".join(f"{k} {v}" for k, v in counts.items())
    return f"{len(status)} run{'s' if len(status) != 1 else ''}: {parts}"


def _indent(text: str) -> str:
    return "\n".join(("    " + line) if line else "" for line in text.split("\n"))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def documented_dirs(shipped: Mapping[str, Any]) -> list:
    """The results directories that get a page: every shipped one (``docs/results/``),
    the registered reproductions first, in the registry's order, then the others by name.

    Arguments:
        shipped: ``{directory name: path}`` of ``docs/results/``.

    Returns:
        The paths, in page order.
    """
    from jaxreg_lab.registry import NAMES

    order = {n: i for i, n in enumerate(NAMES)}
    return [shipped[n] for n in sorted(shipped, key=lambda n: (order.get(n, len(order)), n))]


def reproduction_page(results, *, out_dir: str, link: str, files: Sequence[str]) -> str:
    """The page of one saved reproduction.

    Arguments:
        results: its loaded results (:func:`jaxreg_lab.store.results.load_results`).
        out_dir: the results directory relative to the repository root (the command's ``--out``).
        link: the results directory relative to the page (for the figure and downloads).
        files: the names of the files in the results directory.

    Returns:
        The Markdown page.
    """
    from jaxreg_lab.registry import DEFAULT_SIZE, REPRODUCTIONS

    name, meta, config = results.name, results.meta, results.config
    module = module_for(name)
    entry = {r.name: r for r in REPRODUCTIONS}.get(name)
    size = meta.get("size") or DEFAULT_SIZE
    title = out_dir.rstrip("/").rsplit("/", 1)[-1]
    out = [f"# {title}", ""]
    if entry is not None:
        out += [f"{md_text(_sentence(entry.description))}. *{md_text(entry.reference)}*.", ""]
    elif module is not None and module.__doc__:
        out += [_summary_line(module), ""]
    out += [f"**Verdict:** {md_text(headline(_claims(meta)))}.", ""]

    out += ["## Reproduce", ""]
    ours_preset = preset_config(module, size) if module is not None else None
    # fields the saved config lacks ran at their defaults (the command sets them where the
    # preset differs); a field the current Config lacks cannot be set
    config = with_field_defaults(getattr(module, "Config", None), config)
    diff = config_diff(config, ours_preset)
    overrides = [(k, a) for k, a, b in diff if b is not _MISSING or ours_preset is None]
    out += [reproduce_command(name, size, overrides, out_dir), ""]
    again = f"`jaxreg plot {out_dir}` redraws the figure from the saved results"
    if _claims(meta):
        again += f" and `jaxreg check {out_dir}` judges the claims again from the saved arrays"
    out += [again + ".", ""]
    stale = [f"`{k}`" for k, _, b in diff if b is _MISSING]
    unsaved = [f"`{k}`" for k in config if k not in results.config]
    if stale:
        out += [
            f"The saved config has fields that the current `Config` lacks: {', '.join(stale)}. The command "
            "sets every other field as saved; the current code cannot run these as they were.",
            "",
        ]
    if unsaved:
        out += [
            f"The current `Config` has fields that the saved config lacks (the results predate them and "
            f"ran at their defaults; the command sets those where the preset differs): {', '.join(unsaved)}.",
            "",
        ]

    out += ["## Settings: ours and the paper's", ""]
    paper = preset_config(module, "paper") if module is not None and entry is not None else None
    if paper is None:
        out += ["These results reproduce no registered paper setting (no paper preset).", ""]
    else:
        diff = config_diff(config, paper)
        if diff:
            out += [
                f"The fields where our saved config (size `{size}`) differs from "
                '`Config.preset("paper")`, the published setting:',
                "",
                _table(
                    ["field", "ours", "paper preset"],
                    [(f"`{k}`", _cell(a, "(not saved)"), _cell(b, "(not a field)")) for k, a, b in diff],
                ),
                "",
            ]
        else:
            out += ['Our saved config equals `Config.preset("paper")`.', ""]
    out += ['??? note "The saved config, every field"', ""]
    out += [_indent(_table(["field", "value"], [(f"`{k}`", value_text(v)) for k, v in results.config.items()])), ""]

    figures = sorted(f for f in files if f.endswith(".png"))
    out += ["## Figure", ""]
    if figures:
        out += [f"![{title}]({link}/{f})" for f in figures] + [""]
    else:
        out += ["No figure was saved.", ""]

    out += ["## Claims", "", claims_table(_claims(meta)), ""]

    out += ["## What differs from the paper" if entry is not None else "## What it runs", ""]
    docs = []
    if module is not None:
        docs.append(("The module", docstring_markdown(module.__doc__)))
        cdoc = getattr(getattr(module, "Config", None), "__doc__", None)
        if cdoc and not cdoc.startswith(f"{module.Config.__name__}("):  # a dataclass's generated signature
            docs.append(("Its `Config`", docstring_markdown(cdoc)))
    for what, text in docs:
        if text:
            out += [f"{what} (`{module.__name__}`):" if what == "The module" else f"{what}:", "", text, ""]
    if not docs:
        out += ["No reproduction module is registered under this name.", ""]

    out += ["## Run", ""]
    versions = meta.get("versions") or {}
    rows = [
        ("size", f"`{size}`"),
        ("precision", f"`{meta.get('precision', 'n/a')}`"),
        ("wall time", f"{fmt(meta.get('wall_time_s'))} s"),
        ("statuses", md_text(_status_text(meta.get("status")))),
        ("created", f"`{meta.get('created', 'n/a')}`"),
        ("versions", ", ".join(f"{k} `{v}`" for k, v in versions.items())),
    ]
    out += [_table(["run", ""], rows), ""]

    out += ["## Saved files", ""]
    arrays = [
        (f"`{k}`", ", ".join(f"`{d}`" for d in results.dims[k]), " x ".join(str(n) for n in v.shape))
        for k, v in results.arrays.items()
    ]
    out += [_table(["array", "dimensions", "shape"], arrays), ""]
    downloads = [f for f in files if f.endswith((".json", ".npz", ".pdf"))]
    out += [", ".join(f"[{f}]({link}/{f})" for f in sorted(downloads)), ""]
    return "\n".join(out)


def reproductions_index(pages: Sequence[tuple[str, Any]]) -> str:
    """The index of the reproduction pages, with each one's verdict.

    Arguments:
        pages: ``(page file name relative to the index, loaded results)`` per page.

    Returns:
        The Markdown page.
    """
    from jaxreg_lab.registry import REPRODUCTIONS

    entries = {r.name: r for r in REPRODUCTIONS}
    rows = []
    for page, results in pages:
        entry = entries.get(results.name)
        what = md_text(entry.description) if entry else _summary_line(module_for(results.name))
        ref = md_text(entry.reference) if entry else "none"
        label = page.rsplit("/", 1)[-1].removesuffix(".md")
        rows.append(
            (
                f"[{label}]({page})",
                what,
                ref,
                md_text(headline(_claims(results.meta))),
                f"{fmt(results.meta.get('wall_time_s'))} s",
            )
        )
    out = [
        "# Reproductions",
        "",
        "Each page is generated from the results shipped in the repository: the command that made them, "
        "our settings beside the paper's, the figure, the claims judged on the saved arrays, "
        "what differs from the paper, and the run's wall time and statuses.",
        "",
        _table(["reproduction", "what it shows", "paper", "verdict", "wall time"], rows),
        "",
    ]
    return "\n".join(out)


# ---------------------------------------------------------------- benchmarks


def benchmark_group(stem: str) -> str:
    """The page a benchmark's JSON belongs to: "scale-out" or "performance".

    Arguments:
        stem: the JSON file's name without ``.json``.

    Returns:
        The page's name.
    """
    return "scale-out" if stem.startswith(SCALE_OUT_PREFIXES) else "performance"


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _short_list(v) -> bool:
    return isinstance(v, list) and len(v) <= LONG_LIST and all(_scalar(x) for x in v)


def _bcell(v) -> str:
    if isinstance(v, str):
        return md_text(v, one_line=True)
    if _scalar(v):
        return fmt(v, BENCHMARK_DIGITS)
    if _short_list(v):
        return ", ".join(_bcell(x) for x in v) if v else "(empty)"
    if isinstance(v, list):
        return f"({len(v)} values)"
    if isinstance(v, Mapping) and not v:
        return "(empty)"
    return ""


def _flat(v) -> bool:
    """A value shown in one cell: a scalar, a list (short ones in full) or an empty dict."""
    return _scalar(v) or (isinstance(v, list) and not any(isinstance(x, Mapping) for x in v)) or v == {}


def _label(key, record: Mapping) -> str:
    """A record's name: its key in a dict of records, else its first two text fields
    (else its index)."""
    if isinstance(key, str):
        return key
    texts = [v for v in record.values() if isinstance(v, str)][:2]
    return ", ".join(texts) if texts else str(key)


def _records_table(title: str, records: Sequence[tuple[Any, Mapping]], level: int) -> list[str]:
    """One row per record: its flat values and its dicts of flat values (as ``key.sub``
    columns); deeper values get their own tables after it."""
    columns: list[str] = []
    rows: list[tuple[str, dict[str, str]]] = []
    deeper: list[tuple[str, Any]] = []
    for key, rec in records:
        label = _label(key, rec)
        cells: dict[str, str] = {}
        for k, v in rec.items():
            if _flat(v):
                cells[k] = _bcell(v)
            elif isinstance(v, Mapping) and all(_flat(x) for x in v.values()):
                cells.update({f"{k}.{kk}": _bcell(x) for kk, x in v.items()})
            else:
                deeper.append((f"{title}[{label}].{k}", v))
                continue
        for c in cells:
            if c not in columns:
                columns.append(c)
        rows.append((label, cells))
    out = [f"{'#' * level} {md_text(title)}", ""]
    keyed = all(isinstance(key, str) for key, _ in records)  # a dict of records: its keys label the rows
    if keyed:  # a field that only repeats the key
        columns = [c for c in columns if any(cells.get(c) != md_text(label, one_line=True) for label, cells in rows)]
    if len(columns) > WIDE_TABLE and len(rows) < len(columns):
        header = ["field"] + [md_text(label, one_line=True) for label, _ in rows]
        body = [[f"`{c}`"] + [cells.get(c, "") for _, cells in rows] for c in columns]
    elif keyed:
        header = [""] + [f"`{c}`" for c in columns]
        body = [[md_text(label, one_line=True)] + [cells.get(c, "") for c in columns] for label, cells in rows]
    else:
        header = [f"`{c}`" for c in columns]
        body = [[cells.get(c, "") for c in columns] for _, cells in rows]
    out += [_table(header, body), ""]
    for sub, v in deeper:
        out += _render(sub, v, level)
    return out


def _render(title: str, node: Any, level: int) -> list[str]:
    if isinstance(node, list):
        if node and all(isinstance(x, Mapping) for x in node):
            return _records_table(title, list(enumerate(node)), level)
        return [f"{'#' * level} {md_text(title)}", "", _bcell(node), ""]
    if not isinstance(node, Mapping):
        return [f"{'#' * level} {md_text(title)}", "", _bcell(node), ""]
    if title and node and all(isinstance(x, Mapping) for x in node.values()):
        return _records_table(title, list(node.items()), level)
    flat = {k: v for k, v in node.items() if _flat(v)}
    rest = {k: v for k, v in node.items() if k not in flat}
    out = []
    if flat:
        out += [f"{'#' * level} {md_text(title)}", ""] if title else []
        out += [_table(["field", "value"], [(f"`{k}`", _bcell(v)) for k, v in flat.items()]), ""]
    for k, v in rest.items():
        out += _render(f"{title}.{k}" if title else k, v, level)
    return out


def benchmark_section(
    stem: str, data: Any, *, script: str | None = None, doc: str | None = None, figure: str | None = None
) -> str:
    """One benchmark's JSON as a section: what measured it, then its values as tables (the
    top-level values first; a list or dict of records as one table, a row per record).

    Arguments:
        stem: the JSON file's name without ``.json``.
        data: its parsed contents.
        script: the benchmark script that writes it (repository path), if known.
        doc: that script's docstring.
        figure: a figure to show, relative to the page.

    Returns:
        The Markdown section (an ``##`` heading, ``###`` sub-tables).
    """
    out = [
        f"## {md_text(stem)}",
        "",
        f"`benchmarks/results/{stem}.json`" + (f", written by `{script}`" if script else ""),
    ]
    out.append("")
    if doc:
        first = inspect.cleandoc(doc).split("\n\n")[0]
        out += [docstring_markdown(first), ""]
    if figure:
        out += [f"![{stem}]({figure})", ""]
    out += _render("", data, 3) if isinstance(data, Mapping) else _render("values", data, 3)
    return "\n".join(out)


def benchmark_page(title: str, intro: str, sections: Sequence[str]) -> str:
    """A page of benchmark sections.

    Arguments:
        title: the page title.
        intro: a paragraph (Markdown) before the sections.
        sections: :func:`benchmark_section` texts.

    Returns:
        The Markdown page.
    """
    return "\n".join([f"# {title}", "", intro, "", *sections])


# ---------------------------------------------------------------- README

README_BEGIN = "<!-- reproductions:begin -->"
README_END = "<!-- reproductions:end -->"


def readme_table(results_by_name: Mapping[str, Any]) -> str:
    """The README's list of reproductions: one line each with the verdict of its claims
    on the shipped default-size results (``docs/results/<name>/``).

    Arguments:
        results_by_name: ``{registered name: loaded results}`` (a name without shipped
            results is listed as such).

    Returns:
        The Markdown table, the lines between :data:`README_BEGIN` and :data:`README_END`.
    """
    from jaxreg_lab.registry import REPRODUCTIONS

    rows = []
    for r in REPRODUCTIONS:
        results = results_by_name.get(r.name)
        verdict = headline(_claims(results.meta)) if results is not None else "no shipped results"
        rows.append((f"`{r.name}`", md_text(r.description), md_text(r.reference), md_text(verdict)))
    if "sweep-example" in results_by_name:
        rows.append(
            (
                "`sweep-example`",
                "`jaxreg sweep --config examples/sweep_matrix_flow.toml`: a depth-3 flow over init scales and seeds",
                "none (a tool demo)",
                md_text(headline(_claims(results_by_name["sweep-example"].meta))),
            )
        )
    return _table(["reproduction", "what it runs", "paper", "claims on the shipped results"], rows)


def replace_readme_block(readme: str, table: str) -> str:
    """``readme`` with the text between :data:`README_BEGIN` and :data:`README_END`
    replaced by ``table``.

    Arguments:
        readme: the README's text (it holds both markers, in order).
        table: the generated block (:func:`readme_table`).

    Returns:
        The new text.
    """
    start, end = readme.index(README_BEGIN), readme.index(README_END)
    if end < start:
        raise ValueError(f"{README_END} comes before {README_BEGIN}")
    return readme[: start + len(README_BEGIN)] + "\n" + table + "\n" + readme[end:]
