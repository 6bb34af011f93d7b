"""The notebooks (jupytext percent scripts) execute end to end at their small sizes.

Each notebook ends with assertions on the numbers it shows, so a notebook whose claim
stops holding fails here.
"""

import os
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.py"))


def test_there_are_four_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    nb = jupytext.read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and len(code) >= 3
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # every figure a notebook draws is saved under figures/ in its working directory
    drawn = "plt.subplots" in path.read_text()
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == ([f"{path.stem}.png"] if drawn else [])


def test_quickstart_executes_as_a_notebook(tmp_path):
    """``jupytext --to ipynb --execute`` with the ``notebooks`` extra: the figure is shown
    inline and saved."""
    pytest.importorskip("nbconvert", reason="the notebooks extra: pip install -e '.[notebooks]'")
    pytest.importorskip("ipykernel", reason="the notebooks extra: pip install -e '.[notebooks]'")
    import nbformat

    script = tmp_path / "01_quickstart.py"
    script.write_text(NOTEBOOKS[0].read_text())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, "-m", "jupytext", "--to", "ipynb", "--execute", script.name]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    outputs = [o for c in nbformat.read(tmp_path / "01_quickstart.ipynb", 4).cells for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert (tmp_path / "figures" / "01_quickstart.png").stat().st_size > 10_000
