import shutil

import jax
import numpy as np
import pytest
from helpers import interrupt_chunks, reproduce_tiny
from helpers import run_cli as _run

from jaxreg_lab import cli, driver
from jaxreg_lab.driver import checkpoints, run_chunks
from jaxreg_lab.reproductions import matrix_dynamics
from jaxreg_lab.store.results import load_results

TINY = ["reproduce", "matrix-dynamics", "--size", "tiny", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return reproduce_tiny(tmp_path_factory, "matrix-dynamics")


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


def test_resume_after_interrupt_equals_uninterrupted(tiny_run, tmp_path, monkeypatch):
    interrupt_chunks(monkeypatch, driver, at=2)  # the driver's chunk loop
    assert cli.main(["reproduce", "matrix-dynamics", "--size", "tiny", "--out", str(tmp_path), "--no-progress"]) == 130
    monkeypatch.undo()
    assert [u.name for u in checkpoints(tmp_path)] == ["chunk-000002"]
    # neither a fresh run nor another precision may touch the partial run
    assert cli.main(TINY + ["--out", str(tmp_path)]) == 2
    assert cli.main(TINY + ["--out", str(tmp_path), "--resume", "--float32"]) == 2
    assert cli.main(TINY + ["--out", str(tmp_path), "--resume"]) == 0
    resumed, full = load_results(tmp_path), load_results(tiny_run)
    for key in ("singular_values", "loss", "reconstruction_error"):
        np.testing.assert_array_equal(resumed[key], full[key])
    assert resumed.meta["fingerprint"] == full.meta["fingerprint"] and resumed.meta["precision"] == "float64"


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
    from jaxreg_lab.verify import verify

    assert verify(jax.random.key(3), echo=lines.append)
    assert any(line.startswith("matrix depth 3") and line.endswith("ok") for line in lines)


def test_resume_of_another_configuration_is_a_usage_error(tmp_path, capsys):
    run_chunks(lambda s, k: (s, {}), 0, 1, out_dir=tmp_path, progress=False, fingerprint="another run")
    assert cli.main(TINY + ["--out", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "another configuration" in err and "manifest.json" in err
    assert not (tmp_path / "results.json").exists()


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if the reproduction starts computing."""

    def refuse(*args, **kwargs):
        raise AssertionError("computed before refusing")

    monkeypatch.setattr(driver, "run_named", refuse)


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize(
    "where, fragment",
    [
        (lambda tmp: tmp / "file.txt", "is a file"),
        (lambda tmp: tmp / "file.txt" / "below", "not a directory"),
        (lambda tmp: "/proc/jaxreg", "/proc"),
    ],
)
def test_bad_out_refused_before_compute(where, fragment, tmp_path, no_compute, capsys):
    (tmp_path / "file.txt").write_text("x")
    assert cli.main(TINY + ["--out", str(where(tmp_path))]) == 2
    _one_line_error(capsys, "--out", fragment)


def test_finished_results_are_kept_unless_forced(tiny_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "done"
    shutil.copytree(tiny_run, out)
    with monkeypatch.context() as mp:
        mp.setattr(driver, "run_named", lambda *a, **k: pytest.fail("recomputed"))
        assert cli.main(TINY + ["--out", str(out)]) == 2
        _one_line_error(capsys, "finished results", "--force")
        assert cli.main(TINY + ["--out", str(out), "--resume"]) == 0  # that very run: nothing to do
        assert "already complete" in capsys.readouterr().out
        assert cli.main(TINY + ["--out", str(out), "--resume", "--seeds", "2"]) == 2
        _one_line_error(capsys, "another configuration")
        assert cli.main(TINY + ["--out", str(out), "--resume", "--float32"]) == 2
        _one_line_error(capsys, "float64", "float32")
        (out / "notes.txt").write_text("mine")
        assert cli.main(TINY + ["--out", str(out), "--force"]) == 2  # never deletes a user's files
        _one_line_error(capsys, "notes.txt")
        (out / "notes.txt").unlink()
    # --force replaces the whole directory: another reproduction's figure does not survive
    (out / "ht-rank.png").write_bytes(b"old figure")
    saved = load_results(tiny_run)
    arrays = {k: (saved.dims[k], v) for k, v in saved.arrays.items()}
    monkeypatch.setattr(
        driver, "run_named", lambda *a, **k: {"arrays": arrays, "coords": saved.coords, "status": saved.meta["status"]}
    )
    assert cli.main(TINY + ["--out", str(out), "--force"]) == 0
    assert not (out / "ht-rank.png").exists() and (out / "matrix-dynamics.png").exists()
    np.testing.assert_array_equal(load_results(out)["loss"], load_results(tiny_run)["loss"])


def test_corrupt_checkpoint_and_config_refused_before_compute(tmp_path, no_compute, capsys):
    run_chunks(
        lambda s, k: (s, {"x": np.arange(3.0)}),
        0,
        2,
        out_dir=tmp_path,
        progress=False,
        fingerprint=matrix_dynamics.Config.preset("tiny"),
    )
    (unit,) = checkpoints(tmp_path)
    (unit / "outputs.npz").write_bytes(b"truncated")
    for extra in (["--resume"], []):
        assert cli.main(TINY + ["--out", str(tmp_path), *extra]) == 2
        _one_line_error(capsys, "outputs.npz", "corrupt")
    (tmp_path / "latin1.toml").write_bytes("depth = 3 # \xe9".encode("latin-1"))
    for config, fragment in ((tmp_path, "not a file"), (tmp_path / "latin1.toml", "UTF-8")):
        assert cli.main(TINY + ["--out", str(tmp_path / "new"), "--config", str(config)]) == 2
        _one_line_error(capsys, "--config", fragment)


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda out: (out / "results.json").write_text("{"), "results.json"),
        (lambda out: (out / "arrays.npz").write_bytes(b"PK\x03\x04 truncated"), "arrays.npz"),
        (
            lambda out: (out / "results.json").write_text(
                (out / "results.json").read_text().replace('"time": [', '"time": [-1.0, ')
            ),
            "'time'",
        ),
        (
            lambda out: (out / "results.json").write_text(
                (out / "results.json").read_text().replace('"completed"', '"done"')
            ),
            "status",
        ),
    ],
)
def test_plot_names_what_is_wrong(tiny_run, tmp_path, damage, fragment, capsys):
    out = tmp_path / "res"
    shutil.copytree(tiny_run, out)
    damage(out)
    assert cli.main(["plot", str(out)]) == 2
    _one_line_error(capsys, "results" if fragment == "arrays.npz" else "results.json")
    # read past the seal, the checks behind it still name what is wrong
    assert cli.main(["plot", str(out), "--trust-edited"]) == 2
    _one_line_error(capsys, fragment)
