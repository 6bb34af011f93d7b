"""Generate the pages made from saved files, at build time (the mkdocs-gen-files plugin
runs this script; nothing it writes is committed).

- ``reproductions/<name>.md``: one page per saved results directory: every directory
  of ``docs/results/`` that holds a ``results.json``;
  ``reproductions/index.md``: their index with each one's verdict;
- ``performance.md`` and ``scale-out.md``: a section per ``benchmarks/results/*.json``.

This script only finds and reads files; the page text comes from the pure functions
of :mod:`jaxreg_lab.docs`, the results are read by :func:`jaxreg_lab.store.results.load_results`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mkdocs_gen_files

from jaxreg_lab import docs
from jaxreg_lab.store.files import read_json
from jaxreg_lab.store.results import load_results, results_dirs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BENCHMARKS = ROOT / "benchmarks"


def reproduction_pages() -> None:
    index = []
    for path in docs.documented_dirs(results_dirs(DOCS / "results")):
        results = load_results(path)
        rel = path.relative_to(DOCS).as_posix()
        page = docs.reproduction_page(
            results,
            out_dir=path.relative_to(ROOT).as_posix(),
            link=f"../{rel}",
            files=sorted(p.name for p in path.iterdir() if p.is_file()),
        )
        with mkdocs_gen_files.open(f"reproductions/{path.name}.md", "w") as f:
            f.write(page)
        index.append((f"{path.name}.md", results))
    with mkdocs_gen_files.open("reproductions/index.md", "w") as f:
        f.write(docs.reproductions_index(index))
    with mkdocs_gen_files.open("reproductions/SUMMARY.md", "w") as f:
        f.write("* [Overview](index.md)\n" + "".join(f"* [{p.removesuffix('.md')}]({p})\n" for p, _ in index))


def benchmark_script(stem: str) -> Path | None:
    """The script that writes ``benchmarks/results/<stem>.json``: the longest prefix of
    ``stem`` (cut at underscores) that names a ``benchmarks/*.py``."""
    parts = stem.split("_")
    for n in range(len(parts), 0, -1):
        path = BENCHMARKS / ("_".join(parts[:n]) + ".py")
        if path.exists():
            return path
    return None


INTROS = {
    "performance": (
        "Every table below is generated from a JSON file that a benchmark script wrote into "
        "`benchmarks/results/`; each section names the script and what it measures. "
        "The README's Performance section discusses what they show."
    ),
    "scale-out": (
        "Scaling out: many seeds sharded over devices, several processes on JAX's multi-controller "
        "runtime, and the largest problems that fit. Generated from `benchmarks/results/*.json` "
        "like the performance page."
    ),
}


def benchmark_pages() -> None:
    sections: dict[str, list[str]] = {group: [] for group in INTROS}
    for path in sorted((BENCHMARKS / "results").glob("*.json")):
        script = benchmark_script(path.stem)
        doc = ast.get_docstring(ast.parse(script.read_text())) if script else None
        figure = path.with_suffix(".png")
        link = None
        if figure.exists():
            link = f"benchmarks/{figure.name}"
            with mkdocs_gen_files.open(link, "wb") as f:
                f.write(figure.read_bytes())
        group = docs.benchmark_group(path.stem)
        sections[group].append(
            docs.benchmark_section(
                path.stem,
                read_json(path),
                script=script.relative_to(ROOT).as_posix() if script else None,
                doc=doc,
                figure=link,
            )
        )
    for group, intro in INTROS.items():
        title = group.replace("-", " ").capitalize()
        with mkdocs_gen_files.open(f"{group}.md", "w") as f:
            f.write(docs.benchmark_page(title, intro, sections[group]))


reproduction_pages()
benchmark_pages()
