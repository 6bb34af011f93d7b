import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxreg import cli
from jaxreg.experiments import matrix_dynamics
from jaxreg.results import load_results


def _run(*argv):
    return subprocess.run([sys.executable, "-m", "jaxreg.cli", *argv], capture_output=True, text=True)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("md")
    assert cli.main(["reproduce", "matrix-dynamics", "--size", "tiny", "--out", str(out), "--no-progress"]) == 0
    return out


def test_reproduce_saves_self_describing_results(tiny_run):
    res = load_results(tiny_run)
    assert res.name == "matrix-dynamics"
    assert res.dims["singular_values"] == ("seed", "time", "component")
    sv = res["singular_values"]
    assert sv.shape == (1, 40, 5)
    assert res.config["shape"] == [30, 30] and res.meta["status"] == ["completed"]
    assert "jax" in res.meta["versions"] and res.meta["wall_time_s"] > 0
    # incremental learning at tiny size: the top 3 values grew, the rest stayed small
    assert np.all(sv[0, -1, :3] > 20 * sv[0, 0, :3])
    assert sv[0, -1, 3] < 0.2 * sv[0, -1, 2]
    assert (tiny_run / "matrix-dynamics.png").stat().st_size > 10_000
    assert not (tiny_run / ".checkpoint").exists()


def test_plot_redraws_without_recomputing(tiny_run):
    png = tiny_run / "matrix-dynamics.png"
    png.unlink()
    assert cli.main(["plot", str(tiny_run)]) == 0
    assert png.exists()


def test_resume_after_interrupt_equals_uninterrupted(tmp_path):
    config = matrix_dynamics.Config.preset("tiny")
    full = matrix_dynamics.run(config, progress=False)
    from jaxreg.experiments import _runner

    real = _runner.run_chunks

    def interrupted(step, state, num_chunks, **kw):
        def failing(s, k):
            if k == 2:
                raise KeyboardInterrupt
            return step(s, k)

        return real(failing, state, num_chunks, **kw)

    _runner_run = matrix_dynamics.run_chunks
    matrix_dynamics.run_chunks = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            matrix_dynamics.run(config, out_dir=tmp_path, progress=False)
    finally:
        matrix_dynamics.run_chunks = _runner_run
    meta = json.loads((tmp_path / ".checkpoint" / "meta.json").read_text())
    assert meta["done"] == 2
    resumed = matrix_dynamics.run(config, out_dir=tmp_path, resume=True, progress=False)
    for key in ("singular_values", "loss"):
        np.testing.assert_array_equal(resumed["arrays"][key][1], full["arrays"][key][1])


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["reproduce", "no-such-thing"], "unknown reproduction"),
        (["reproduce", "matrix-dynamics", "--seeds", "-1"], "--seeds"),
        (["reproduce", "matrix-dynamics", "--size", "huge"], "size"),
        (["plot", "/nonexistent/dir"], "no complete results"),
    ],
)
def test_bad_input_one_line_exit_2(argv, fragment):
    proc = _run(*argv)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in proc.stderr


def test_malformed_and_unknown_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("depth = = 3")
    proc = _run("reproduce", "matrix-dynamics", "--config", str(bad))
    assert proc.returncode == 2 and "malformed TOML" in proc.stderr
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("depthh = 3")
    proc = _run("reproduce", "matrix-dynamics", "--config", str(unknown))
    assert proc.returncode == 2 and "depthh" in proc.stderr
    invalid = tmp_path / "invalid.toml"
    invalid.write_text("depth = 0")
    proc = _run("reproduce", "matrix-dynamics", "--config", str(invalid))
    assert proc.returncode == 2 and "depth" in proc.stderr


@pytest.mark.slow
def test_verify_passes():
    lines = []
    from jaxreg.verify import verify

    assert verify(jax.random.key(3), echo=lines.append)
    assert any(line.startswith("matrix depth 3") and line.endswith("ok") for line in lines)


def test_resume_of_another_configuration_is_a_usage_error(tmp_path, capsys):
    ckpt = tmp_path / ".checkpoint"
    ckpt.mkdir()
    (ckpt / "meta.json").write_text(json.dumps({"fingerprint": "another run", "done": 1, "keys": []}))
    argv = ["reproduce", "matrix-dynamics", "--size", "tiny", "--out", str(tmp_path), "--resume", "--no-progress"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another configuration" in err
    assert not (tmp_path / "results.json").exists()
