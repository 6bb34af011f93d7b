"""JAX's persistent compilation cache for the ``jaxreg`` command line.

A compiled XLA program is stored under a key that hashes the program, the compile
options, the devices and the jax/jaxlib versions, so a second identical ``jaxreg
reproduce`` loads its programs instead of compiling them, and a changed program or
version never matches an old entry. An entry that cannot be read (truncated, corrupt:
its zlib checksum fails) is compiled afresh, never used. The directory is
``$JAXREG_CACHE_DIR`` if set, else ``jaxreg/jax`` in the user cache directory
(``$XDG_CACHE_HOME``, default ``~/.cache``; ``~/Library/Caches`` on macOS,
``%LOCALAPPDATA%`` on Windows). ``--no-compile-cache`` or ``JAXREG_COMPILE_CACHE=0``
turn it off. Set only by the CLI, for the duration of one command (never on ``import
jaxreg``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

DIR_ENV = "JAXREG_CACHE_DIR"
SWITCH_ENV = "JAXREG_COMPILE_CACHE"
# every program is written: loading even a small one is faster than compiling it, and a
# second identical run then compiles nothing (benchmarks/compile_cache.py: matrix-dynamics
# loads 62 of 62 programs in 0.8 s of XLA time against 13 s compiling them, where a 0.1 s
# threshold left 33 of them to compile again)
MIN_COMPILE_TIME_S = 0.0


def cache_dir() -> Path:
    """The cache directory: ``$JAXREG_CACHE_DIR`` or ``<user cache dir>/jaxreg/jax``."""
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV]).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "jaxreg" / "jax"


def enabled_by_env() -> bool:
    """False when ``$JAXREG_COMPILE_CACHE`` is 0, false, no or off."""
    return os.environ.get(SWITCH_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def settings(path: Path | None, before: dict | None = None) -> dict:
    """The ``jax.config`` settings that read and write compiled programs in ``path``
    (None: the cache off, the other settings as in ``before``)."""
    before = before or {}
    if path is None:
        return {
            "jax_compilation_cache_dir": before.get("jax_compilation_cache_dir"),
            "jax_enable_compilation_cache": False,
            "jax_persistent_cache_min_compile_time_secs": before.get("jax_persistent_cache_min_compile_time_secs", 1.0),
        }
    return {
        "jax_compilation_cache_dir": str(path),
        "jax_enable_compilation_cache": True,
        "jax_persistent_cache_min_compile_time_secs": MIN_COMPILE_TIME_S,
    }


def _apply(values: dict) -> None:
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    for name, value in values.items():
        jax.config.update(name, value)
    cc.reset_cache()  # JAX reads these settings once, at its next compile


@contextlib.contextmanager
def compile_cache(enabled: bool):
    """Within the block, JAX reads and writes compiled programs in :func:`cache_dir`
    (``enabled`` and not switched off by ``$JAXREG_COMPILE_CACHE``), or compiles every
    program (off); afterwards the process's previous cache settings are back.

    Arguments:
        enabled: False for ``--no-compile-cache``.

    Yields:
        The cache directory, or None when off.
    """
    import jax

    from jaxreg_lab.store import files

    before = {name: getattr(jax.config, name) for name in settings(None)}
    path = None
    if enabled and enabled_by_env():
        path = cache_dir()
        try:
            files.make_dir(path)
        except OSError as e:  # an unwritable cache is no reason to refuse the command
            print(f"jaxreg: compilation cache off, cannot create {path}: {e.strerror or e}", file=sys.stderr)
            path = None
    wanted = settings(path, before)
    changed = wanted != before
    if changed:
        _apply(wanted)
    try:
        yield path
    finally:
        if changed:
            _apply(before)
