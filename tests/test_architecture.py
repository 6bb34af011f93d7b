"""The house rules of the two packages, read from the source (no import needed):

- the library ``jaxreg`` never imports the lab ``jaxreg_lab``, not even inside a function;
- no import cycle anywhere, counting function-local imports too (so none can hide one);
- no private name crosses a module boundary: no ``from m import _name`` of a non-module,
  and the lab imports none of the library's private modules;
- the library never opens, writes or deletes a file, and in the lab only the store
  (``jaxreg_lab.store``) does;
- ``import jaxreg`` installs no lazy loader and patches no module type.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jaxreg", "jaxreg_lab")


def _modules(root: Path = ROOT) -> dict[str, Path]:
    """Module name -> file, for every module of both packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]):
    """Every import of a package module in ``path`` as (target module, imported name or
    None, line): ``from a import b`` targets ``a.b`` when that is a module, else ``a``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                full = f"{source}.{alias.name}"
                yield (full, None, node.lineno) if full in modules else (source, alias.name, node.lineno)


def _graph(root: Path = ROOT) -> tuple[dict[str, set[str]], list[str]]:
    """The import graph over both packages and the list of rule breaches found on the way."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    breaches = []
    for name, path in modules.items():
        in_library = name.split(".")[0] == "jaxreg"
        for target, imported, line in _imports(name, path, modules):
            where = f"{path.relative_to(root)}:{line}"
            if in_library and target.split(".")[0] == "jaxreg_lab":
                breaches.append(f"{where}: the library imports the lab ({target})")
            if not in_library and target.split(".")[0] == "jaxreg":
                if any(part.startswith("_") and not part.startswith("__") for part in target.split(".")):
                    breaches.append(f"{where}: the lab imports the library's private module {target}")
            if imported is not None and imported.startswith("_") and not imported.startswith("__"):
                breaches.append(f"{where}: private name {imported} imported from {target}")
            if target in graph and target != name:
                graph[name].add(target)
    return graph, breaches


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_import_rules():
    graph, breaches = _graph()
    assert not breaches, "\n".join(breaches)
    assert not _cycles(graph), _cycles(graph)


def test_rules_catch_breaches(tmp_path):
    """Each rule fails on a tree that breaks it: a library module importing the lab, a
    function-local import closing a cycle, a private name and a private library module."""
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "jaxreg" / "a.py").write_text("def f():\n    from jaxreg_lab import c\n")
    (tmp_path / "jaxreg" / "b.py").write_text("from jaxreg.d import _hidden\n")
    (tmp_path / "jaxreg" / "d.py").write_text("def g():\n    from . import b\n")
    (tmp_path / "jaxreg" / "_private.py").write_text("")
    (tmp_path / "jaxreg_lab" / "c.py").write_text("from jaxreg import _private\n")
    graph, breaches = _graph(tmp_path)
    text = "\n".join(breaches)
    assert "the library imports the lab (jaxreg_lab.c)" in text
    assert "private name _hidden imported from jaxreg.d" in text
    assert "the lab imports the library's private module jaxreg._private" in text
    assert _cycles(graph) == [["jaxreg.b", "jaxreg.d"]]


# the calls through which code reaches the file system: methods of paths and figures,
# and functions of os / numpy; plus the modules made for files
_FILE_METHODS = {"open", "mkdir", "unlink", "rmdir", "touch", "write_text", "write_bytes", "read_text", "read_bytes"}
_FILE_METHODS |= {"savefig", "rmtree"}
_FILE_FUNCTIONS = {"os": {"replace", "rename", "remove", "unlink", "mkdir", "makedirs", "rmdir", "open"}}
_FILE_FUNCTIONS["np"] = _FILE_FUNCTIONS["numpy"] = {"save", "savez", "savez_compressed", "load", "loadtxt", "fromfile"}
_FILE_MODULES = {"shutil", "tempfile", "pathlib", "io"}


def _file_accesses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id == "open":
                found.append(f"{node.lineno}: open()")
            elif isinstance(f, ast.Attribute):
                owner = f.value.id if isinstance(f.value, ast.Name) else None
                if owner in _FILE_FUNCTIONS:
                    if f.attr in _FILE_FUNCTIONS[owner]:
                        found.append(f"{node.lineno}: {owner}.{f.attr}()")
                elif f.attr in _FILE_METHODS:
                    found.append(f"{node.lineno}: .{f.attr}()")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{node.lineno}: imports {n}" for n in names if n.split(".")[0] in _FILE_MODULES]
    return found


def test_library_opens_no_file():
    found = [
        f"{path.relative_to(ROOT)}:{hit}"
        for name, path in _modules().items()
        if name.split(".")[0] == "jaxreg"
        for hit in _file_accesses(path)
    ]
    assert not found, "\n".join(found)


def test_only_the_store_touches_files_in_the_lab():
    found = [
        f"{path.relative_to(ROOT)}:{hit}"
        for name, path in _modules().items()
        if name.startswith("jaxreg_lab") and not name.startswith("jaxreg_lab.store")
        for hit in _file_accesses(path)
        if "imports pathlib" not in hit  # paths as values are fine; touching them is the store's
    ]
    assert not found, "\n".join(found)


def test_file_check_catches_access(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "import numpy as np\nimport os\ndef f(p, fig):\n    np.savez(p)\n    os.replace(p, p)\n    fig.savefig(p)\n"
    )
    assert _file_accesses(path) == ["4: np.savez()", "5: os.replace()", "6: .savefig()"]


def test_library_is_eager_and_unpatched():
    code = (
        "import sys, types, jaxreg\n"
        "assert 'jax' in sys.modules and 'jaxreg_lab' not in sys.modules\n"
        "assert type(sys.modules['jaxreg']) is types.ModuleType, type(sys.modules['jaxreg'])\n"
        "import jaxreg.locality, jaxreg.metrics\n"
        "assert not any(m.startswith('jaxreg_lab') for m in sys.modules), 'the library loaded the lab'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("jaxreg.results", "jaxreg_lab.results"),
        ("jaxreg.locality.run_is_same_class", "jaxreg_lab.locality.run_is_same_class"),
        ("jaxreg.locality.IsSameClassConfig", "jaxreg_lab.locality.IsSameClassConfig"),
    ],
)
def test_moved_names_name_their_new_home(name, home):
    import importlib

    module, _, attr = name.rpartition(".")
    with pytest.raises(AttributeError, match=home.replace(".", r"\.")):
        getattr(importlib.import_module(module), attr)


def test_reproductions_keep_to_the_contract():
    """Every registered reproduction and the sweep command's (``custom_sweep``) declares
    ``REPRODUCTION`` and has no ``run`` of its own; none imports the driver, the store or
    another reproduction (shared pieces live in the ``_`` modules)."""
    import importlib

    from jaxreg_lab.contract import AbstractReproduction
    from jaxreg_lab.registry import REPRODUCTIONS

    modules = _modules()
    bad = []
    for stem in [r.module for r in REPRODUCTIONS] + ["custom_sweep"]:
        module = importlib.import_module(f"jaxreg_lab.reproductions.{stem}")
        if not isinstance(getattr(module, "REPRODUCTION", None), AbstractReproduction):
            bad.append(f"{stem}: no REPRODUCTION")
        if hasattr(module, "run"):
            bad.append(f"{stem}: a run of its own (the driver runs it)")
        name = f"jaxreg_lab.reproductions.{stem}"
        for target, _, line in _imports(name, modules[name], modules):
            parts = target.split(".")
            if target.startswith(("jaxreg_lab.driver", "jaxreg_lab.store")) or (
                parts[:2] == ["jaxreg_lab", "reproductions"] and len(parts) > 2 and not parts[2].startswith("_")
            ):
                bad.append(f"{modules[name].relative_to(ROOT)}:{line}: imports {target}")
    assert not bad, "\n".join(bad)
