"""Rewrite the README's list of reproductions from the shipped results in docs/results/
(the verdict of each one's claims): ``python docs/gen_readme.py``; ``--check`` exits 1
when the README differs instead of writing it. The text comes from
:func:`jaxreg_lab.docs.readme_table`."""

from __future__ import annotations

import sys
from pathlib import Path

from jaxreg_lab import docs
from jaxreg_lab.store.results import load_results, results_dirs

ROOT = Path(__file__).resolve().parents[1]


def generated(readme: str) -> str:
    shipped = {name: load_results(path) for name, path in results_dirs(ROOT / "docs" / "results").items()}
    return docs.replace_readme_block(readme, docs.readme_table(shipped))


if __name__ == "__main__":
    path = ROOT / "README.md"
    text = path.read_text()
    new = generated(text)
    if "--check" in sys.argv[1:]:
        sys.exit(0 if new == text else 1)
    path.write_text(new)
