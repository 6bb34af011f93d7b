"""benchmarks/gpu_check.py: its verdict rules (fixed in advance) and a tiny CPU run."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def verdict():
    """The script's verdict function, loaded without running its module-level imports of
    benchmarks/throughput.py into this process (they set XLA's host device count)."""
    source = SCRIPT.read_text()
    start, end = source.index("SHOWS, INCONCLUSIVE"), source.index("def _median_rates")
    namespace = {"np": np}
    exec(compile(source[start:end], str(SCRIPT), "exec"), namespace)  # noqa: S102 (our own file)
    return namespace


def test_verdict_rules(verdict):
    v, SHOWS, INCONCLUSIVE, NOT_SHOWN = (
        verdict["verdict"],
        verdict["SHOWS"],
        verdict["INCONCLUSIVE"],
        verdict["NOT_SHOWN"],
    )
    # both seeds: short fits, long at chance, +12 points with the regularizer, R falls
    assert v([0.8, 0.75], [0.52, 0.55], [0.64, 0.67], [0.99, 0.98], [0.8, 0.9]) == SHOWS
    # the thresholds are inclusive: 0.70 fits, 0.60 is chance, a gain of exactly 0.10 counts
    assert v([0.70, 0.70], [0.60, 0.60], [0.70, 0.71], [0.9, 0.9], [0.8, 0.8]) == SHOWS
    # one seed whose short paths stay below 0.70: inconclusive, whatever the rest
    assert v([0.8, 0.69], [0.5, 0.5], [0.9, 0.9], [0.9, 0.9], [0.5, 0.5]) == INCONCLUSIVE
    assert v([0.8, np.nan], [0.5, 0.5], [0.9, 0.9], [0.9, 0.9], [0.5, 0.5]) == INCONCLUSIVE
    # the gain without R falling is not the paper's effect
    assert v([0.8, 0.8], [0.5, 0.5], [0.7, 0.7], [0.9, 0.9], [0.9, 0.95]) == NOT_SHOWN
    # no deficit to close: the plain network is above chance at the long range
    assert v([0.8, 0.8], [0.65, 0.5], [0.9, 0.9], [0.9, 0.9], [0.5, 0.5]) == NOT_SHOWN
    # one seed gains only 0.08
    assert v([0.8, 0.8], [0.5, 0.5], [0.7, 0.58], [0.9, 0.9], [0.5, 0.5]) == NOT_SHOWN


@pytest.mark.skipif(importlib.util.find_spec("skimage") is None, reason="needs scikit-image")
def test_tiny_cpu_run_writes_its_verdict(tmp_path):
    out = tmp_path / "check.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--out", str(out)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.stat().st_size < 20_000_000
    saved = json.loads(out.read_text())
    assert [row["case"] for row in saved["throughput"]] == ["matrix", "cp", "htf"]
    assert all(row["rates_seed_steps_per_s"]["jaxreg"] > 0 for row in saved["throughput"])
    # the shortest length trains lambda 0 only, the longest lambda 0 and 1, each 2 seeds
    assert saved["pathfinder"]["2"]["lambdas"] == [0.0] and saved["pathfinder"]["4"]["lambdas"] == [0.0, 1.0]
    assert np.shape(saved["pathfinder"]["4"]["test_accuracy"]) == (2, 2)
    assert saved["pathfinder"]["4"]["epochs"] == [[1, 1], [1, 1]]
    assert saved["verdicts"] == {"lambda 1": "inconclusive"}  # one epoch: the short paths are not learned
    assert "verdict (lambda 1): inconclusive" in proc.stdout
