"""JAX's persistent compilation cache of the CLI: where it lives, that the flag and the
environment turn it off, and that neither a cached nor a corrupt entry changes a result."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxreg_lab import compile_cache as C

# the CLI in a fresh interpreter, reporting how many programs it compiled or loaded
# (XLA's backend step, a retrieval on a cache hit) and how many it loaded from the cache
CHILD = """
import json, sys
import jax.monitoring
names = []
jax.monitoring.register_event_duration_secs_listener(lambda name, secs, **kw: names.append(name))
from jaxreg_lab import cli
code = cli.main(sys.argv[1:])
programs = sum(n.endswith("backend_compile_duration") for n in names)
loaded = sum(n.endswith("cache_retrieval_time_sec") for n in names)
print("RESULT" + json.dumps({"code": code, "programs": programs, "loaded": loaded}))
"""


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(C.DIR_ENV, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert C.cache_dir() == tmp_path / "xdg" / "jaxreg" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert C.cache_dir() == Path.home() / ".cache" / "jaxreg" / "jax"
    monkeypatch.setenv(C.DIR_ENV, str(tmp_path / "mine"))
    assert C.cache_dir() == tmp_path / "mine"
    for off in ("0", "off", "False"):
        monkeypatch.setenv(C.SWITCH_ENV, off)
        assert not C.enabled_by_env()
    monkeypatch.setenv(C.SWITCH_ENV, "1")
    assert C.enabled_by_env()


@pytest.mark.parametrize("flag, env, on", [(True, "1", True), (False, "1", False), (True, "0", False)])
def test_compile_cache_is_set_for_the_command_only(monkeypatch, tmp_path, flag, env, on):
    monkeypatch.setenv(C.DIR_ENV, str(tmp_path / "c"))
    monkeypatch.setenv(C.SWITCH_ENV, env)
    names = list(C.settings(None))
    before = [getattr(jax.config, n) for n in names]
    with C.compile_cache(flag) as path:
        assert jax.config.jax_enable_compilation_cache is on
        assert (path == tmp_path / "c") if on else path is None
        if on:
            assert jax.config.jax_compilation_cache_dir == str(tmp_path / "c") and path.is_dir()
    assert [getattr(jax.config, n) for n in names] == before


def _reproduce(out: Path, cache: Path) -> dict:
    env = {**os.environ, C.DIR_ENV: str(cache), C.SWITCH_ENV: "1"}
    argv = ["reproduce", "matrix-dynamics", "--size", "tiny", "--no-progress", "--out", str(out)]
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env, timeout=600)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT")]
    assert done.returncode == 0 and line, done.stderr[-3000:]
    return {**json.loads(line[-1][len("RESULT") :]), "stderr": done.stderr}


def _assert_bitwise_equal(a: Path, b: Path) -> None:
    with np.load(a / "arrays.npz") as x, np.load(b / "arrays.npz") as y:
        assert sorted(x.files) == sorted(y.files)
        for k in x.files:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, k
            assert x[k].tobytes() == y[k].tobytes(), f"{k} differs"


def test_cached_and_corrupt_entries_leave_results_bit_identical(tmp_path):
    """A run that compiles everything into an empty cache (what a run without the cache
    computes) and writes every one of them (no program holds a host callback, which JAX
    never stores), then one that loads the intact entries and meets every other entry
    corrupted (flipped bytes, truncated, emptied): it compiles those afresh, and saves the
    very same arrays, bit for bit."""
    cache = tmp_path / "cache"
    first = _reproduce(tmp_path / "first", cache)
    assert first["code"] == 0 and first["loaded"] == 0
    entries = sorted(cache.glob("*-cache"))
    assert first["programs"] > 0 and len(entries) == first["programs"], (len(entries), first["programs"])
    damaged = entries[::2]
    for i, entry in enumerate(damaged):
        data = bytearray(entry.read_bytes())
        if i % 3 == 0:
            data[len(data) // 2 :] = bytes(b ^ 0xFF for b in data[len(data) // 2 :])
        entry.write_bytes(bytes(data[: len(data) // 3]) if i % 3 == 1 else b"" if i % 3 == 2 else bytes(data))
    second = _reproduce(tmp_path / "second", cache)
    assert second["loaded"] == len(entries) - len(damaged), (second["loaded"], len(entries), len(damaged))
    assert "Error reading persistent compilation cache entry" in second["stderr"]
    _assert_bitwise_equal(tmp_path / "first", tmp_path / "second")


def test_an_unwritable_cache_turns_it_off_with_one_line(monkeypatch, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv(C.DIR_ENV, str(tmp_path / "file" / "cache"))
    monkeypatch.setenv(C.SWITCH_ENV, "1")
    with C.compile_cache(True) as path:
        assert path is None and jax.config.jax_enable_compilation_cache is False
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "compilation cache off" in err and "file" in err
