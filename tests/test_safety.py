"""Nothing lost, nothing forged: safe export targets, sealed results, readers that find a
complete directory after an interrupted swap, one writer per --out, and one line for
every bad input (CLI and library) before any compute where the input allows."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import Crash, reproduce_tiny
from jaxtyping import TypeCheckError

import jaxreg as jr
from jaxreg import validation as V
from jaxreg_lab import cli, config
from jaxreg_lab.store import files as storage
from jaxreg_lab.store import lock as store_lock
from jaxreg_lab.store import out as store_out
from jaxreg_lab.store import results as R
from jaxreg_lab.store.dataset import ExportError, export_target

TINY = ["reproduce", "matrix-dynamics", "--size", "tiny", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return reproduce_tiny(tmp_path_factory, "matrix-dynamics")


@pytest.fixture
def run(tiny_run, tmp_path):
    """A fresh copy of the tiny results."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    return out


def _one_line(capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def _snapshot(directory):
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _edit(out, change):
    """Edit results.json by hand (its seal left as it was)."""
    meta = json.loads((out / R.META).read_text())
    change(meta)
    (out / R.META).write_text(json.dumps(meta, indent=2))


# ---------------------------------------------------------------- export


def test_export_never_replaces_results_a_checkpoint_or_its_source(run, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(run, other)
    (other / ".checkpoint" / "chunk-000001").mkdir(parents=True)
    (other / ".checkpoint" / "chunk-000001" / "manifest.json").write_text("{}")
    before, source = _snapshot(other), _snapshot(run)
    for fmt in ("netcdf", "zarr"):
        for target, fragment in (
            (other, "results directory"),
            (run, "results directory"),
            (run / "x.nc", "results directory"),
            (tmp_path, "contains it"),
            (other / ".checkpoint", "checkpoint"),
            (other / ".checkpoint" / "chunk-000001", "checkpoint"),
        ):
            with pytest.raises(ExportError, match=fragment):
                export_target(run, fmt, target, force=True)
    for argv in (["--out", str(other), "--force"], ["--out", str(run), "--force"], ["--out", str(run / "a.nc")]):
        assert cli.main(["export", str(run), "--format", "netcdf", *argv]) == 2
        _one_line(capsys, "export:")
    assert _snapshot(other) == before and _snapshot(run) == source
    # --force onto a directory that is not a Zarr store, or a netCDF file onto a directory
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not a Zarr store"):
        export_target(run, "zarr", plain, force=True)
    assert cli.main(["export", str(run), "--format", "netcdf", "--out", str(plain), "--force"]) == 2
    _one_line(capsys, "export:", str(plain))
    assert (plain / "notes.txt").read_text() == "mine"


def test_export_dot_writes_beside_the_directory(run, monkeypatch, capsys):
    monkeypatch.chdir(run)
    assert cli.main(["export", ".", "--format", "netcdf"]) == 0
    assert (run.parent / "run.nc").is_file() and not (run / ".nc").exists()
    assert R.foreign_entries(run) == []  # still a results directory --force may replace
    capsys.readouterr()
    assert cli.main(["export", ".", "--format", "netcdf"]) == 2  # exists: one line
    _one_line(capsys, "--force replaces it")


def test_a_failed_export_is_one_line_and_keeps_the_old_file(run, tmp_path, monkeypatch, capsys):
    target = tmp_path / "out.nc"
    target.write_bytes(b"old export")

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(storage, "write_file", full)
    assert cli.main(["export", str(run), "--format", "netcdf", "--out", str(target), "--force"]) == 2
    _one_line(capsys, "No space left on device", "nothing was replaced")
    monkeypatch.undo()
    assert target.read_bytes() == b"old export"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.nc")] == []
    for bad in ("/proc/x.nc", "/sys/x.nc"):
        assert cli.main(["export", str(run), "--format", "netcdf", "--out", bad]) == 2
        _one_line(capsys, bad)


# ---------------------------------------------------------------- sealed results


def test_edited_or_unsealed_results_are_refused_in_one_line(run, tiny_run, capsys):
    _edit(run, lambda m: m["coords"].update(time=[10 * t for t in m["coords"]["time"]]))
    with pytest.raises(R.ResultsError, match="results.json was edited"):
        R.load_results(run)
    for argv in (["plot", str(run)], ["check", str(run)], ["export", str(run), "--format", "netcdf"]):
        assert cli.main(argv) == 2
        _one_line(capsys, str(run / R.META), "--trust-edited")
    edited = R.load_results(run, trust_edited=True)  # read only when asked for
    assert edited.coords["time"] == [10 * t for t in R.load_results(tiny_run).coords["time"]]
    _edit(run, lambda m: m.pop(R.SEAL))
    with pytest.raises(R.ResultsError, match="unsealed"):
        R.load_results(run)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m["config"].update(depth=7),
        lambda m: m.update(status=["max_steps"]),
        lambda m: m["claims"][0].update(verdict="holds in 9/9 seeds"),
        lambda m: m.update(arrays_sha256="0" * 64),
        lambda m: m["fingerprint"].update(precision="float32"),
    ],
)
def test_the_seal_covers_config_statuses_claims_and_arrays(run, change):
    _edit(run, change)
    with pytest.raises(R.ResultsError, match="edited"):
        R.load_results(run)


def test_resume_recomputes_the_fingerprint_from_the_stored_config(run, capsys):
    assert cli.main([*TINY, "--out", str(run), "--resume"]) == 0  # the run itself: complete
    assert "already complete" in capsys.readouterr().out
    _edit(run, lambda m: m["config"].update(depth=7))
    assert cli.main([*TINY, "--out", str(run), "--resume"]) == 2
    _one_line(capsys, "--resume", "edited")
    # resealed by whoever edited it, the stored fingerprint unchanged: the config it
    # stores is still not this run's
    meta = json.loads((run / R.META).read_text())
    (run / R.META).write_bytes(R.sealed_json(meta))
    assert R.load_results(run).config["depth"] == 7
    assert cli.main([*TINY, "--out", str(run), "--resume"]) == 2
    _one_line(capsys, "cannot be continued", "another configuration")
    assert cli.main([*TINY, "--out", str(run), "--resume", "--trust-edited"]) == 2
    _one_line(capsys, "another configuration")


def test_check_write_seals_again(run, capsys):
    _edit(run, lambda m: (m["claims"][0].update(verdict="forged"), m.update(wall_time_s=1.5)))
    assert cli.main(["check", str(run), "--write"]) == 2
    capsys.readouterr()
    # accepted as it stands when asked to: the claims judged again, the file sealed again
    assert cli.main(["check", str(run), "--write", "--trust-edited"]) == 0
    again = R.load_results(run)
    assert again.meta["claims"][0]["verdict"] != "forged" and again.meta["wall_time_s"] == 1.5


# ---------------------------------------------------------------- an interrupted swap


def test_readers_find_a_complete_directory_after_a_killed_swap(tiny_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "res"
    shutil.copytree(tiny_run, out)
    results = R.load_results(out)
    # save over it and die right after the first rename of the swap (out -> .out.old-*)
    monkeypatch.setattr(storage, "rename", _crash_on_first_swap_rename(storage.rename))
    with pytest.raises(Crash):
        R.save_results(
            out,
            results.name,
            {k: (results.dims[k], v) for k, v in results.arrays.items()},
            coords=results.coords,
            config=results.config,
            fingerprint=results.meta["fingerprint"],
        )
    monkeypatch.undo()
    assert not out.exists() and storage.complete_old(out, R.META) is not None
    for argv in (["check", str(out)], ["export", str(out), "--format", "netcdf"], ["plot", str(out)]):
        assert cli.main(argv) == 0, capsys.readouterr().err
    assert out.is_dir() and R.load_results(out).config == results.config
    capsys.readouterr()


def _crash_on_first_swap_rename(real):
    def rename(src, dst):
        real(src, dst)
        if ".old-" in str(dst):
            raise Crash("killed between the two renames")

    return rename


def test_a_reader_reads_the_old_directory_while_a_writer_holds_the_lock(tiny_run, tmp_path):
    out = tmp_path / "res"
    shutil.copytree(tiny_run, out)
    old = tmp_path / ".res.old-abc123"
    out.rename(old)
    with store_lock.out_lock(out):  # a live writer: the reader moves nothing
        assert R.load_results(out).name == "matrix-dynamics"
        assert old.is_dir() and not out.exists()
    assert R.load_results(out).name == "matrix-dynamics" and out.is_dir() and not old.exists()


# ---------------------------------------------------------------- one writer per --out


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path, capsys):
    out = tmp_path / "res"
    with store_lock.out_lock(out):
        assert store_lock.held_by(out) == os.getpid()
        t0 = time.perf_counter()
        assert cli.main([*TINY, "--out", str(out)]) == 2
        _one_line(capsys, "being written by another jaxreg", f"pid {os.getpid()}")
        assert time.perf_counter() - t0 < 30 and not out.exists()
    assert store_lock.held_by(out) is None


def test_the_lock_dies_with_its_holder(tmp_path):
    out = tmp_path / "res"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from jaxreg_lab.store.lock import out_lock
        with out_lock(Path({str(out)!r})):
            print("locked", flush=True)
            time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        assert store_lock.held_by(out) == p.pid
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert store_lock.held_by(out) is None
    with store_lock.out_lock(out):
        pass


# ---------------------------------------------------------------- one line, before compute


def _no_compute(monkeypatch):
    from jaxreg_lab import driver

    def refuse(*a, **k):
        raise AssertionError("computed before refusing")

    monkeypatch.setattr(driver, "run_named", refuse)


def test_bad_out_paths_are_one_line_before_compute(tmp_path, monkeypatch, capsys):
    _no_compute(monkeypatch)
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    for out, fragment in ((loop, "cannot be resolved"), (tmp_path / ("x" * 250), "at most")):
        assert cli.main([*TINY, "--out", str(out)]) == 2
        _one_line(capsys, "--out", fragment)


def test_samples_and_plot_refuse_an_unwritable_place_before_drawing(run, monkeypatch, capsys):
    from jaxreg_lab.locality import report

    monkeypatch.setattr(report, "plot_samples", lambda *a: pytest.fail("drew before refusing"))
    for bad, fragment in (
        ("/proc/x.png", "under /proc"),
        (str(run), "is a directory"),
        (str(run.parent / ("x" * 250 + ".png")), "at most"),
    ):
        assert cli.main(["samples", "--out", bad]) == 2
        _one_line(capsys, fragment)

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(store_out.tempfile, "mkstemp", denied)
    assert cli.main(["plot", str(run)]) == 2
    _one_line(capsys, "cannot write in", "Permission denied")


def test_plot_under_another_reproductions_name_is_one_line(run, capsys):
    _edit(run, lambda m: m.update(name="tensor-dynamics"))
    assert cli.main(["plot", str(run), "--trust-edited"]) == 2
    _one_line(capsys, "another reproduction")


def test_a_json_bomb_is_one_line(run, capsys):
    (run / R.META).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(R.CorruptFile, match="nested too deeply"):
        R.load_results(run)
    assert cli.main(["plot", str(run)]) == 2
    _one_line(capsys, "results.json")


def test_a_full_disk_mid_run_loses_nothing_and_prints_the_resume_command(tmp_path, monkeypatch, capsys):
    out = tmp_path / "res"
    real = storage.write_file
    calls = []

    def write_file(path, data):
        calls.append(path)
        if len(calls) == 4:  # the second checkpoint unit's first file (each unit: state, outputs, manifest)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(storage, "write_file", write_file)
    assert cli.main([*TINY, "--out", str(out)]) == 1
    err = _one_line(capsys, "No space left on device", "continue with: jaxreg", "--resume")
    monkeypatch.undo()
    command = err.split("continue with: ")[1].split()
    assert command[:3] == ["jaxreg", "reproduce", "matrix-dynamics"]
    assert cli.main(command[1:]) == 0
    capsys.readouterr()
    assert R.load_results(out).meta["status"] == ["completed"]


def test_a_full_disk_at_results_json_keeps_the_finished_chunks(tmp_path, monkeypatch, capsys):
    out = tmp_path / "res"
    real = storage.write_file

    def write_file(path, data):
        if path.name == R.META:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(storage, "write_file", write_file)
    assert cli.main([*TINY, "--out", str(out)]) == 1
    _one_line(capsys, "results.json", "--resume")
    monkeypatch.undo()
    assert cli.main([*TINY, "--out", str(out), "--resume"]) == 0
    capsys.readouterr()


def test_set_with_a_line_break_is_refused():
    with pytest.raises(config.UsageError, match="line break"):
        config.parse_set("depth=3\nseeds=9")
    assert config.parse_set("depth=3") == ("depth", 3)


def test_distributed_without_options_names_the_cli_option(monkeypatch):
    from jaxreg import distributed

    def init(*a, **k):
        raise ValueError("coordinator_address should be defined.")

    monkeypatch.setattr(distributed, "initialize", init)
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)

    class Args:
        distributed = True
        coordinator = num_processes = process_id = None

    with pytest.raises(config.UsageError) as e:
        cli._distributed(Args())
    assert "--coordinator " in str(e.value) + " " and "coordinator_address" not in str(e.value)


def test_one_run_too_large_does_not_ask_for_fewer_seeds():
    with pytest.raises(ValueError, match="smaller shape, rank or width") as e:
        V.fits_in_memory("seeds", 1, 1e30)
    assert "fewer seeds" not in str(e.value)
    with pytest.raises(ValueError, match="use fewer seeds"):
        V.fits_in_memory("seeds", 4, 1e30)


# ---------------------------------------------------------------- the library API


def test_library_inputs_are_one_line_before_compute(tmp_path):
    with pytest.raises(ValueError, match="key must be a JAX PRNG key, e.g. jax.random.key\\(0\\), got 0"):
        V.prng_key("key", 0)
    V.prng_key("key", jax.random.key(0))
    V.prng_key("key", jax.random.PRNGKey(0))
    # (the tests' jaxtyping hook checks the annotation first; without it, the line above)
    with pytest.raises((ValueError, TypeCheckError), match="key"):
        jr.MatrixFactorization(0, (5, 5), 3)
    m = jr.MatrixFactorization(jax.random.key(0), (5, 5), 3)
    with pytest.raises(TypeError, match="cannot be hashed.*pass the model as an argument"):
        jax.jit(m.entries)(jnp.array([[0, 1]]))
    jitted = jax.jit(lambda model, i: model.entries(i))(m, jnp.array([[0, 1]]))
    np.testing.assert_allclose(jitted, m.entries(jnp.array([[0, 1]])))
    with pytest.raises(ValueError, match="loss must map the model to a real scalar, got shape \\(5, 5\\)"):
        jr.gradient_flow(lambda model: model.materialize(), m, 1.0)
    # a bare array is a model too
    traj = jr.gradient_flow(lambda x: jnp.sum(x**2), jnp.ones(3), 1.0)
    assert traj.model.shape == (3,)
    with pytest.raises(ValueError, match="s0 must be a positive finite number"):
        jr.theory.blowup_time(1.0, 0.0, 3)
    with pytest.raises(R.ResultsError, match="3 entries along 't' but the coordinates list 2"):
        R.save_results(tmp_path / "r", "toy", {"a": (("t",), np.ones(3))}, coords={"t": [0, 1]})
    assert not (tmp_path / "r").exists() and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- trust boundaries


def test_an_untrusted_compile_cache_is_off_in_one_line(tmp_path, monkeypatch, capsys):
    from jaxreg_lab.compile_cache import compile_cache

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(shared))
    with compile_cache(True) as path:
        assert path is None
    _one_line(capsys, "compilation cache off", "group and others may write it")
    shared.chmod(0o700)
    with compile_cache(True) as path:
        assert path == shared
    monkeypatch.setattr(os, "getuid", lambda: os.stat(shared).st_uid + 1)
    with compile_cache(True) as path:
        assert path is None
    _one_line(capsys, "owned by another user")
    monkeypatch.undo()
    fresh = tmp_path / "fresh" / "jax"
    monkeypatch.setenv("JAXREG_CACHE_DIR", str(fresh))
    old = os.umask(0o002)
    try:
        with compile_cache(True) as path:
            assert path == fresh and fresh.stat().st_mode & 0o777 == 0o700
    finally:
        os.umask(old)


def test_the_data_cache_checks_its_entries(tmp_path, capsys):
    from jaxreg.locality import LocalityData
    from jaxreg_lab.store.data_cache import NpzCache

    made = []

    def make():
        made.append(1)
        return LocalityData(np.ones((2, 3), np.float32), np.array([0, 1]), None, {"n": np.array(2)})

    cache = NpzCache(tmp_path)
    first = cache("toy", {"a": 1}, make)
    again = cache("toy", {"a": 1}, make)
    assert len(made) == 1 and np.array_equal(first.images, again.images)
    path = cache.path("toy", {"a": 1})
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped
    cache("toy", {"a": 1}, make)
    assert len(made) == 2
    _one_line(capsys, str(path), "checksum differs")
    path.with_name(path.name + ".sha256").unlink()
    cache("toy", {"a": 1}, make)
    assert len(made) == 3
    _one_line(capsys, "no checksum")
    cache("toy", {"a": 1}, make)
    assert len(made) == 3


def test_an_unreachable_coordinator_is_one_line(monkeypatch):
    from jaxreg import distributed

    monkeypatch.setattr(distributed, "INITIALIZATION_TIMEOUT_S", 1)
    monkeypatch.setattr(distributed, "initialize", lambda *a: pytest.fail("joined without a coordinator"))
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)

    class Args:
        distributed = True
        coordinator, num_processes, process_id = "127.0.0.1:9", 2, 1

    t0 = time.perf_counter()
    with pytest.raises(config.UsageError, match="no coordinator answered within 1 s"):
        cli._distributed(Args())
    assert time.perf_counter() - t0 < 10
    Args.coordinator = "no-such-host.invalid:1234"
    with pytest.raises(config.UsageError, match="cannot resolve no-such-host.invalid"):
        cli._distributed(Args())


def test_list_results_marks_edited_and_unsealed_results(run, capsys):
    assert cli.main(["list", "--results", str(run)]) == 0
    assert "edited after" not in capsys.readouterr().out
    _edit(run, lambda m: m.update(wall_time_s=1.0))
    assert cli.main(["list", "--results", str(run)]) == 0
    assert "edited after it was written" in capsys.readouterr().out
    _edit(run, lambda m: m.pop(R.SEAL))
    assert cli.main(["list", "--results", str(run)]) == 0
    assert "unsealed" in capsys.readouterr().out
