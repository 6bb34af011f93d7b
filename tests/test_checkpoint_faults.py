"""Fault injection: a run killed at any write point of a checkpoint or of a results
directory either resumes to the bit-identical result of the uninterrupted run or is
refused with one line naming the file; a reader never sees a mixed results pair.

The pipeline under test is the runner plus :func:`save_results` on a cheap three-chunk
step (one small compiled program); ``test_real_sigkill_*`` kills a real process. The
command line's use of the same units (matrix-dynamics tiny) is tested in test_cli.py.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import Crash, WritePoints

from jaxreg_lab.driver import CheckpointExists, check_resumable, checkpoints, run_chunks, stack_chunks
from jaxreg_lab.store import files as storage
from jaxreg_lab.store import results as R
from jaxreg_lab.store.results import CorruptFile, ResumeMismatch, load_results, save_results

NUM_CHUNKS = 3


@jax.jit
def _advance(x, k):
    x = jnp.sin(x) * 1.7 + 0.01 * k
    return x, jnp.cumsum(x)


def _step(state, k):
    x, count = state
    x, out = _advance(x, k)
    return (x, count + 1), {"y": out, "k": jnp.asarray([k])}


def _initial():
    return (jnp.linspace(0.1, 0.9, 5), jnp.zeros((), jnp.int32))


CONFIG = {"model": "toy", "chunks": NUM_CHUNKS}


def _pipeline(out, *, resume=False):
    """Run the chunks into ``out`` and save the results there (as the CLI does)."""
    state, outs, _ = run_chunks(
        _step, _initial(), NUM_CHUNKS, out_dir=out, resume=resume, progress=False, fingerprint=CONFIG
    )
    data = stack_chunks(outs, axis=0)
    arrays = {"y": (("chunk", "i"), data["y"].reshape(NUM_CHUNKS, -1)), "x": (("i",), np.asarray(state[0]))}
    save_results(
        out,
        "toy",
        arrays,
        coords={"chunk": list(range(NUM_CHUNKS))},
        config=CONFIG,
        status=["completed"],
        fingerprint=R.fingerprint(CONFIG),
    )
    return load_results(out)


def _resume(out):
    """What a user does after a crash: finished results are kept, else ``--resume``."""
    R.recover_dir(out)
    if (out / R.META).exists():
        return load_results(out), "results were complete"
    return _pipeline(out, resume=True), "resumed"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _pipeline(tmp_path_factory.mktemp("reference") / "out")


def _same(a, b):
    return set(a.arrays) == set(b.arrays) and all(np.array_equal(a[k], b[k]) for k in a.arrays)


def _points(tmp_path, monkeypatch):
    with monkeypatch.context() as mp:
        counter = WritePoints(mp)
        _pipeline(tmp_path / "count")
    return counter.log


def test_fault_matrix_every_write_point(reference, tmp_path, monkeypatch, capsys):
    """Kill after each write point of a fresh run (checkpoints, then the results); resume."""
    points = _points(tmp_path, monkeypatch)
    # 3 units (3 files + rename, + removal of the previous unit); then the results: 3 files
    # (arrays, the per-chunk metrics log carried over, results.json), the run directory
    # (holding the checkpoint) renamed away, the new one in, the old removed
    assert len(points) == 4 + 5 + 5 + 6, points
    matrix = []
    for n, point in enumerate(points, start=1):
        out = tmp_path / f"crash{n}" / "out"
        with monkeypatch.context() as mp:
            WritePoints(mp, crash_after=n)
            with pytest.raises(Crash):
                _pipeline(out)
        resumed, how = _resume(out)
        assert _same(resumed, reference), (n, point)
        assert not list(out.parent.glob(".out.*")), "temporary siblings left behind"
        matrix.append((n, *point, f"bit-identical ({how})"))
    with capsys.disabled():
        print("\nfault matrix (fresh run): n, operation, file, outcome")
        for row in matrix:
            print("  ", *row)


def test_fault_matrix_replacing_old_results(reference, tmp_path, monkeypatch):
    """Results of another run are in place: after a kill at any point of the replacement,
    the directory holds the old or the new pair whole, never a mix, and old figures of
    the other run are gone once the new results are in."""

    def old_results(out):
        save_results(out, "other", {"z": (("a",), np.arange(4.0))}, config={"other": True}, status=["completed"])
        (out / "other.png").write_bytes(b"png")
        return load_results(out)

    old = old_results(tmp_path / "probe")
    new = {"y": (("chunk", "i"), reference["y"]), "x": (("i",), reference["x"])}
    with monkeypatch.context() as mp:
        counter = WritePoints(mp)
        save_results(
            tmp_path / "probe",
            "toy",
            new,
            coords={"chunk": list(range(NUM_CHUNKS))},
            config=CONFIG,
            status=["completed"],
        )
    n_points = len(counter.log)
    assert n_points == 2 + 3, counter.log  # arrays, json; rename old away, rename new in, remove old
    for n in range(1, n_points + 1):
        out = tmp_path / f"r{n}" / "out"
        old_results(out)
        with monkeypatch.context() as mp:
            WritePoints(mp, crash_after=n)
            with pytest.raises(Crash):
                save_results(
                    out, "toy", new, coords={"chunk": list(range(NUM_CHUNKS))}, config=CONFIG, status=["completed"]
                )
        R.recover_dir(out)
        seen = load_results(out)
        if seen.name == "other":
            assert _same(seen, old) and (out / "other.png").exists()
        else:
            assert _same(seen, reference) and not (out / "other.png").exists()


def _interrupted_at_third_chunk(out):
    def step(s, k):
        if k == 2:
            raise Crash
        return _step(s, k)

    run_chunks(step, _initial(), NUM_CHUNKS, out_dir=out, progress=False, fingerprint=CONFIG)


def test_resume_refuses_corrupt_checkpoint_naming_the_file(tmp_path):
    out = tmp_path / "out"
    run_chunks(_step, _initial(), 1, out_dir=out, progress=False, fingerprint=CONFIG)  # 1 of 3 chunks
    with pytest.raises(CorruptFile, match="1 of 1 chunks"):  # a unit of a run with another chunk count
        run_chunks(_step, _initial(), NUM_CHUNKS, out_dir=out, resume=True, progress=False, fingerprint=CONFIG)
    storage.remove_tree(out)
    with pytest.raises(Crash):
        _interrupted_at_third_chunk(out)
    (unit,) = checkpoints(out)
    for name, damage in (
        ("state.eqx", lambda b: b[: len(b) // 2]),
        ("outputs.npz", lambda b: b[:-1] + b"x"),
        ("manifest.json", lambda b: b[:10]),
    ):
        path = unit / name
        good = path.read_bytes()
        path.write_bytes(damage(good))
        with pytest.raises(CorruptFile, match=name):
            run_chunks(_step, _initial(), NUM_CHUNKS, out_dir=out, resume=True, progress=False, fingerprint=CONFIG)
        path.write_bytes(good)
    # another configuration or precision is refused, naming the manifest
    with pytest.raises(ResumeMismatch, match="another configuration"):
        check_resumable(out, {**CONFIG, "chunks": 4})
    with pytest.raises(ResumeMismatch, match="float32"):
        check_resumable(out, R.fingerprint(CONFIG, precision="float32"))
    # a fresh run never discards it silently
    with pytest.raises(CheckpointExists, match="partial run"):
        run_chunks(_step, _initial(), NUM_CHUNKS, out_dir=out, progress=False, fingerprint=CONFIG)


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda out: (out / "results.json").write_text('{"name": "toy", "dims'), "results.json is corrupt"),
        (lambda out: (out / "arrays.npz").write_bytes((out / "arrays.npz").read_bytes()[:100]), "arrays.npz"),
        (
            lambda out: (out / "results.json").write_text(
                json.dumps({**json.loads((out / "results.json").read_text()), "coords": {"chunk": [0, 1]}})
            ),
            "coordinates",
        ),
        (
            lambda out: (out / "results.json").write_text(
                json.dumps({**json.loads((out / "results.json").read_text()), "status": ["fine"]})
            ),
            "status",
        ),
    ],
)
def test_load_results_names_what_is_wrong(reference, tmp_path, damage, fragment):
    out = tmp_path / "out"
    _pipeline(out)
    damage(out)
    with pytest.raises(ValueError, match=fragment):
        load_results(out)


SIGKILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import jax
    jax.config.update("jax_enable_x64", True)
    from jaxreg_lab.store import files as storage
    import test_checkpoint_faults as T

    real, count = storage.write_file, [0]
    def write_then_die(path, data):
        real(path, data)
        count[0] += 1
        if count[0] == {after}:
            os.kill(os.getpid(), signal.SIGKILL)
    storage.write_file = write_then_die
    T._pipeline(__import__("pathlib").Path({out!r}))
""")


@pytest.mark.parametrize(
    "after, unit",
    [
        (5, "chunk-000001"),  # state.eqx of the second unit written, its manifest not
        (11, "chunk-000003"),  # results.json written in the temporary sibling, not renamed into place
    ],
)
def test_real_sigkill_resumes_bit_identical(reference, tmp_path, after, unit):
    out = tmp_path / "out"
    script = SIGKILL_SCRIPT.format(tests=os.path.dirname(__file__), after=after, out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert [u.name for u in checkpoints(out)] == [unit]  # a torn unit is not a unit
    resumed, how = _resume(out)
    assert how == "resumed" and _same(resumed, reference)
