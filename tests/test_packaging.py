"""Packaging: the MIT license as a file and as an SPDX string, a CITATION.cff of CFF 1.2
whose references are the papers the reproductions follow, those papers in the README, and
the supported Python versions stated where the README says them."""

import re
import sys
import tomllib
from pathlib import Path

import yaml

from jaxreg_lab.registry import REPRODUCTIONS

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_license_is_mit_as_a_file_and_an_spdx_string():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert PYPROJECT["license"] == "MIT"  # a string: setuptools' table form is deprecated
    assert PYPROJECT["license-files"] == ["LICENSE"]
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert "setuptools>=77" in build  # the first setuptools that reads an SPDX license string


def test_citation_cff_has_the_fields_of_cff_1_2_and_cites_every_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert {"message", "title", "authors"} <= set(cff) and cff["authors"]
    assert cff["license"] == PYPROJECT["license"] and cff["version"] == PYPROJECT["version"]
    first_authors = {ref["authors"][0]["family-names"] for ref in cff["references"]}
    for r in REPRODUCTIONS:  # "Razin, Maman, Cohen, ICML 2022": its first author is cited
        assert r.reference.split(",")[0] in first_authors, r.reference
    years = {(ref["authors"][0]["family-names"], str(ref["year"])) for ref in cff["references"]}
    for r in REPRODUCTIONS:
        assert (r.reference.split(",")[0], re.findall(r"\d{4}", r.reference)[-1]) in years, r.reference


def test_readme_lists_each_cited_paper_and_the_install_lines():
    readme = (ROOT / "README.md").read_text()
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    flat = " ".join(readme.split())
    for ref in cff["references"]:
        assert f"*{ref['title']}*" in flat, ref["title"]
    assert 'pip install -c constraints.txt -e ".[convex]"' in readme
    assert '"jax[cuda12]"' in readme


def test_the_supported_python_versions_are_stated_and_this_one_is_among_them():
    assert PYPROJECT["requires-python"] == ">=3.11"
    readme = (ROOT / "README.md").read_text()
    assert "Python 3.11 or newer" in readme
    declared = {c.rsplit(" ", 1)[1] for c in PYPROJECT["classifiers"] if re.search(r"Python :: 3\.\d+$", c)}
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in declared
    assert min(declared, key=lambda v: tuple(map(int, v.split(".")))) == "3.11"
