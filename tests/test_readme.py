"""The README's Python code blocks run as written, and what their comments say holds."""

import re
from pathlib import Path

import numpy as np

import jaxreg as jr

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    """The bodies of the fenced ```python blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_python_blocks_are_found():
    blocks = python_blocks("a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\n```\n")
    assert blocks == ["x = 1\n", "y = 2\n"]


def test_readme_short_example_runs_and_its_comments_hold(capsys):
    blocks = python_blocks(README.read_text())
    assert len(blocks) == 1, "every Python block of the README is run here"
    ns = {"__name__": "__readme__"}
    exec(compile(blocks[0], str(README), "exec"), ns)
    printed = capsys.readouterr().out
    assert printed.count("\n") >= 8  # it prints what it shows
    traj, problem, gd, trajs = ns["traj"], ns["problem"], ns["gd"], ns["trajs"]
    sv = np.asarray(traj.metrics)
    # sigma_1 is learned first, sigma_2 later, sigma_3 stays near its initial size
    half1, half2 = (int(np.argmax(sv[:, r] > sv[-1, r] / 2)) for r in (0, 1))
    assert 0 < half1 < half2 and sv[-1, 2] < 0.1 < sv[-1, 1]
    assert jr.Status.name(traj.status) == "completed" and "completed" in printed
    assert float(problem.reconstruction_error(traj.model)) < 0.02
    # balanced init: the rate identity holds to the integrator's accuracy on the top components
    observed, predicted = ns["observed"], ns["predicted"]
    assert float(np.max(jr.theory.relative_residual(observed, predicted)[:3])) < 1e-9
    # GroupRMSprop ends next to the flow's solution
    w_flow, w_gd = np.asarray(ns["w_flow"]), np.asarray(ns["w_gd"])
    assert np.linalg.norm(w_gd - w_flow) / np.linalg.norm(w_flow) < 1e-2
    assert float(gd.loss[-1]) < 1e-5
    assert jr.Status.names(trajs.status) == ["completed"] * 4
