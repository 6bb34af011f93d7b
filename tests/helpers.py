"""Run and interrupt helpers shared by the tests (imported as ``helpers``)."""

from __future__ import annotations

import os
import subprocess
import sys

from jaxreg_lab.store import files as storage


def xla_env(device_count: int | None = None, **extra: str) -> dict[str, str]:
    """The environment for a JAX subprocess: this one's, with the session's XLA flags
    (``TEST_XLA_FLAGS`` in conftest.py) and, given ``device_count``, that many simulated
    CPU devices (``extra``: more variables). A subprocess compared bit for bit with this
    process must compile with its flags."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    if device_count is not None:
        flags.append(f"--xla_force_host_platform_device_count={device_count}")
    return {**os.environ, "XLA_FLAGS": " ".join(flags), **extra}


def reproduce_tiny(tmp_path_factory, name: str):
    """Run ``jaxreg reproduce NAME --size tiny`` in-process into a fresh directory and
    return it (the body of the reproductions' module-scoped ``tiny_run`` fixtures)."""
    from jaxreg_lab import cli

    out = tmp_path_factory.mktemp(name)
    assert cli.main(["reproduce", name, "--size", "tiny", "--out", str(out), "--no-progress"]) == 0
    return out


def run_cli(*argv, timeout: float | None = None) -> subprocess.CompletedProcess:
    """``python -m jaxreg_lab.cli ARGV`` in a subprocess (captured text output)."""
    return subprocess.run(
        [sys.executable, "-m", "jaxreg_lab.cli", *argv], capture_output=True, text=True, timeout=timeout
    )


class Crash(BaseException):
    """Stands for the process being killed (a BaseException: no library code catches it)."""


class WritePoints:
    """Count the write points of the runner and of :func:`jaxreg_lab.store.results.save_results`
    (every file written, every rename, every removal) and, with ``crash_after=n``, die
    right after the n-th one: that operation and every later one raise :class:`Crash`
    (a killed process runs no cleanup either). ``log`` lists ``(operation, name)``."""

    OPS = ("write_file", "rename", "remove_tree")

    def __init__(self, monkeypatch, crash_after: int | None = None):
        self.log: list[tuple[str, str]] = []
        self.crash_after = crash_after
        self.crashed = False
        for op in self.OPS:
            monkeypatch.setattr(storage, op, self._wrap(op, getattr(storage, op)))

    def _wrap(self, op, real):
        def wrapped(path, *args):
            if self.crashed:
                raise Crash(op)
            real(path, *args)
            self.log.append((op, _label(op, path, *args)))
            if self.crash_after is not None and len(self.log) >= self.crash_after:
                self.crashed = True
                raise Crash(op)

        return wrapped


def _label(op: str, path, *args) -> str:
    """A stable name of a write point: the file written, the rename's target, or the tree
    removed (random suffixes of temporary names dropped)."""
    import re
    from pathlib import Path

    target = Path(args[0]) if op == "rename" else Path(path)
    name = target.name if op != "write_file" else f"{target.parent.name}/{target.name}"
    return re.sub(r"\.(new|old)-\w+", r".\1", name)


def interrupt_chunks(monkeypatch, module, at: int, exc: type[BaseException] = KeyboardInterrupt):
    """Make ``module.run_chunks`` raise ``exc`` when chunk ``at`` starts (the chunks
    before it are committed)."""
    real = module.run_chunks

    def interrupted(step, state, num_chunks, **kw):
        def failing(s, k):
            if k == at:
                raise exc
            return step(s, k)

        return real(failing, state, num_chunks, **kw)

    monkeypatch.setattr(module, "run_chunks", interrupted)
    return real


class InterruptAt:
    """A stand-in for ``real`` that raises KeyboardInterrupt on its ``at``-th call (the
    calls before it run ``real``); ``real=None`` with ``at=1``: it may not be called."""

    def __init__(self, real, at: int):
        self.real, self.at, self.calls = real, at, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.real(*args, **kwargs)
