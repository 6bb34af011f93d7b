"""The generated documentation pages (jaxreg_lab.docs): what they show comes from saved files.

A number on a generated page is *sourced* when it is one of these (``sources``):

- a number of the saved ``results.json`` (any depth: config, coordinates, wall time,
  claims' values, ...), as saved or rounded to 3 significant digits;
- a number written inside a text of ``results.json`` (a claim's statement, paper value,
  rule or note, a version, the creation date, a key), as written;
- a count of the records of ``results.json``: the length of a list, how many entries of a
  list have each value, how many records of a list have each value of a field (runs per
  status, claims that hold);
- a dimension length of an array of ``arrays.npz``;
- a number of the reproduction's ``Config.preset("paper")`` or ``Config.preset(size)``;
- a number written in the reproduction module's docstring, its ``Config``'s docstring,
  its registry entry (description, paper) or the results directory's name.

Numbers are read with one regular expression (``NUMBER``) from the page and from every
text source; a page number matches a source number when their absolute values are equal
(a hyphen before a number reads as a minus sign, so the sign is not compared). The
benchmark pages are held to the same rule with their JSON and benchmark scripts'
docstrings as sources, rounded to 4 significant digits.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import math
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from jaxreg_lab import docs
from jaxreg_lab.claims import with_field_defaults
from jaxreg_lab.config import build_config
from jaxreg_lab.registry import NAMES, REPRODUCTIONS
from jaxreg_lab.store.results import load_results, results_dirs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLE = DOCS / "results" / "matrix-dynamics"

NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def numbers_in(text: str) -> list[str]:
    """Every number written in ``text`` (not the digits inside a word such as ``x1`` or ``sigma_2``)."""
    return NUMBER.findall(text)


def documented() -> list[Path]:
    """The directories docs/gen_pages.py makes pages of."""
    return docs.documented_dirs(results_dirs(DOCS / "results"))


def page_of(path: Path) -> str:
    return docs.reproduction_page(
        load_results(path),
        out_dir=path.relative_to(ROOT).as_posix(),
        link=f"../{path.relative_to(DOCS).as_posix()}",
        files=sorted(p.name for p in path.iterdir() if p.is_file()),
    )


class Sources:
    """The absolute values of the numbers a page may show."""

    def __init__(self, digits: int = 3):
        self.digits = digits
        self.values: set[float] = set()

    def number(self, x) -> None:
        if isinstance(x, bool) or x is None:
            return
        x = float(x)
        if math.isfinite(x):
            self.values |= {abs(x), abs(float(f"{x:.{self.digits}g}"))}

    def text(self, text: str | None) -> None:
        for token in numbers_in(text or ""):
            self.values.add(abs(float(token)))

    def tree(self, node) -> None:
        """Every number and text of a JSON tree, and the counts of its records."""
        if isinstance(node, dict):
            for k, v in node.items():
                self.text(str(k))
                self.tree(v)
        elif isinstance(node, list):
            self.number(len(node))
            scalars = [json.dumps(x) for x in node if not isinstance(x, (dict, list))]
            for s in set(scalars):
                self.number(scalars.count(s))
            records = [x for x in node if isinstance(x, dict)]
            for key in {k for r in records for k in r}:
                vals = [json.dumps(r.get(key)) for r in records]
                for s in set(vals):
                    self.number(vals.count(s))
            for v in node:
                self.tree(v)
        elif isinstance(node, str):
            self.text(node)
        else:
            self.number(node)

    def unsourced(self, page: str) -> list[str]:
        return [t for t in numbers_in(page) if abs(float(t)) not in self.values]


def reproduction_sources(path: Path) -> Sources:
    src = Sources()
    src.tree(json.loads((path / "results.json").read_text()))
    with np.load(path / "arrays.npz") as arrays:
        for name in arrays.files:
            for n in arrays[name].shape:
                src.number(n)
    src.text(path.name)
    meta = json.loads((path / "results.json").read_text())
    module = docs.module_for(meta["name"])
    entry = {r.name: r for r in REPRODUCTIONS}.get(meta["name"])
    if entry is not None:
        src.text(entry.description)
        src.text(entry.reference)
    if module is not None:
        src.text(module.__doc__)
        src.text(module.Config.__doc__)
        for size in ("paper", meta.get("size") or "small"):
            src.tree(json.loads(json.dumps(dataclasses.asdict(module.Config.preset(size)))))
    return src


@pytest.fixture(scope="module")
def example():
    return load_results(EXAMPLE), page_of(EXAMPLE)


def test_example_page_shows_the_claims_of_results_json(example):
    results, page = example
    claims = results.meta["claims"]
    assert claims, "the example results record claims"
    for c in claims:
        assert c["verdict"] in page
        assert " / ".join(docs.fmt(v) for v in c["values"]) in page
        assert f"**{c['id']}**" in page and f"`{c['rule']}`" in page
        if c["note"]:
            assert docs.md_text(c["note"], one_line=True) in page
    held = sum(c["holds_overall"] for c in claims)
    assert f"{len(claims)} claims: {held} hold" in page
    assert docs.headline(claims) in docs.reproductions_index([("matrix-dynamics.md", results)])
    # the figure and the wall time of the saved run
    assert "![matrix-dynamics](../results/matrix-dynamics/matrix-dynamics.png)" in page
    assert f"{docs.fmt(results.meta['wall_time_s'])} s" in page


def test_example_values_are_formatted_from_the_saved_numbers(example):
    results, page = example
    for c in results.meta["claims"]:
        for v in c["values"]:
            assert float(docs.fmt(v)) == float(f"{v:.3g}")


@pytest.mark.parametrize("path", documented(), ids=lambda p: p.name)
def test_every_number_on_a_reproduction_page_is_sourced(path):
    assert reproduction_sources(path).unsourced(page_of(path)) == []


def test_a_typed_number_is_caught(example):
    results, page = example
    src = reproduction_sources(EXAMPLE)
    assert src.unsourced(page) == []
    typed = page.replace("## Run", "## Run\n\nAbout 42.5x faster than the reference code.", 1)
    assert src.unsourced(typed) == ["42.5"]
    # a saved number shown with more digits than saved or rounded is caught too
    wall = results.meta["wall_time_s"]
    assert src.unsourced(page.replace(f"{docs.fmt(wall)} s", f"{wall + 1:.6g} s")) == [f"{wall + 1:.6g}"]


def test_every_number_on_the_index_is_sourced():
    pages, src = [], Sources()
    for path in documented():
        pages.append((f"{path.name}.md", load_results(path)))
        src.values |= reproduction_sources(path).values
    assert src.unsourced(docs.reproductions_index(pages)) == []


def _benchmark_script_doc(stem: str) -> str | None:
    parts = stem.split("_")
    for n in range(len(parts), 0, -1):
        path = ROOT / "benchmarks" / ("_".join(parts[:n]) + ".py")
        if path.exists():
            return ast.get_docstring(ast.parse(path.read_text()))
    return None


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks" / "results").glob("*.json")), ids=lambda p: p.stem)
def test_every_number_on_a_benchmark_section_is_sourced(path):
    data = json.loads(path.read_text())
    doc = _benchmark_script_doc(path.stem)
    section = docs.benchmark_section(path.stem, data, doc=doc)
    src = Sources(digits=docs.BENCHMARK_DIGITS)
    src.tree(data)
    src.text(doc)
    src.text(path.stem)
    assert src.unsourced(section) == []
    assert "|" in section  # it has tables


def _command(page: str) -> list[str]:
    block = re.search(r"```bash\n(.*?)```", page, re.DOTALL).group(1)
    return shlex.split(block.replace("\\\n", " "))


@pytest.mark.parametrize("path", documented(), ids=lambda p: p.name)
def test_the_command_rebuilds_the_saved_config(path, tmp_path):
    """The page's command, run through the CLI's own config builder, gives the saved config."""
    results = load_results(path)
    page = page_of(path)
    words = _command(page)
    assert words[words.index("--out") + 1] == path.relative_to(ROOT).as_posix()
    if results.name == "sweep":  # jaxreg sweep --config sweep.toml, the file shown below the command
        assert words[:4] == ["jaxreg", "sweep", "--config", "sweep.toml"]
        (tmp_path / "sweep.toml").write_text(re.search(r"```toml\n(.*?)```", page, re.DOTALL).group(1))
        config, sets, size = tmp_path / "sweep.toml", [], results.meta.get("size", "small")
    else:
        assert words[:3] == ["jaxreg", "reproduce", results.name]
        config, sets = None, [words[i + 1] for i, w in enumerate(words) if w == "--set"]
        size = words[words.index("--size") + 1]
    module = docs.module_for(results.name)
    args = argparse.Namespace(size=size, config=config, set=sets, seeds=None)
    rebuilt = json.loads(json.dumps(dataclasses.asdict(build_config(module, args))))
    # fields the current Config lacks cannot be rebuilt: the page names them; fields the
    # saved config lacks ran at their defaults, and the command sets them so
    stale = [k for k in results.config if k not in rebuilt]
    for k in stale:
        assert f"`{k}`" in page.split("## Settings")[0], k
    saved = with_field_defaults(getattr(module, "Config", None), results.config)
    assert {k: rebuilt[k] for k in saved if k in rebuilt} == {k: v for k, v in saved.items() if k not in stale}


def test_fmt_rounds_to_three_significant_digits():
    assert [docs.fmt(x) for x in (0.0023145, 1.0310798, 10.8789, 2550.6, 1.234e-5, 3, None)] == [
        "0.00231",
        "1.03",
        "10.9",
        "2550",
        "1.23e-05",
        "3",
        "n/a",
    ]
    assert docs.fmt(273978192.05, 4) == "2.74e+08"


def test_md_text_escapes_markdown_but_keeps_code():
    assert docs.md_text("||W*||_F < 1 `a_b`") == r"\|\|W\*\|\|\_F &lt; 1 `a_b`"
    assert docs.docstring_markdown("Uses ``x_1`` and :func:`jaxreg.sweep`.") == "Uses `x_1` and `jaxreg.sweep`."


def test_headline():
    rec = lambda holds, expected=True: {"id": "c", "holds_overall": holds, "expected": expected}
    assert docs.headline(None) == "no claims recorded"
    assert docs.headline([rec(True)] * 3 + [rec(False, False)]) == "4 claims: 3 hold, 1 does not (as expected)"
    assert docs.headline([rec(True), rec(False)]) == "2 claims: 1 holds, 1 does not (unexpected: c)"
    assert docs.headline([rec(True)] * 2) == "2 claims: all hold"


def test_benchmark_groups():
    assert docs.benchmark_group("sharding") == docs.benchmark_group("multiprocess_reproduce") == "scale-out"
    assert docs.benchmark_group("throughput_cpu") == "performance"


def test_getting_started_example_is_the_readme_example():
    """Every statement of the docs' Python block is one of the README's (which
    tests/test_readme.py runs and checks); only comments differ."""

    def code_lines(text):
        block = re.search(r"^```python\n(.*?)^```$", text, re.DOTALL | re.MULTILINE).group(1)
        return [
            re.sub(r"\s+#.*$", "", line).rstrip() for line in block.splitlines() if not line.lstrip().startswith("#")
        ]

    readme = set(code_lines((ROOT / "README.md").read_text()))
    ours = [line for line in code_lines((DOCS / "getting-started.md").read_text()) if line]
    assert ours and [line for line in ours if line not in readme] == []


def test_documented_dirs_keep_the_registry_order():
    shipped = {
        "zz-extra": "results/zz-extra",
        "ht-rank": "results/ht-rank",
        "matrix-dynamics": "results/matrix-dynamics",
    }
    assert docs.documented_dirs(shipped) == ["results/matrix-dynamics", "results/ht-rank", "results/zz-extra"]


def test_readme_lists_every_reproduction_with_the_verdict_of_its_shipped_claims():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_readme", ROOT / "docs" / "gen_readme.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    readme = (ROOT / "README.md").read_text()
    assert readme == gen.generated(readme), "README's reproductions are stale: run python docs/gen_readme.py"
    block = readme[readme.index(docs.README_BEGIN) : readme.index(docs.README_END)]
    for name in NAMES:
        assert f"`{name}`" in block


def test_replace_readme_block_keeps_the_rest():
    text = f"a\n{docs.README_BEGIN}\nold\n{docs.README_END}\nb\n"
    assert docs.replace_readme_block(text, "new") == f"a\n{docs.README_BEGIN}\nnew\n{docs.README_END}\nb\n"
