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

The entries are executables that JAX loads as they are, so the directory must be this
user's alone: a directory that another user owns, or that group or others may write,
turns the cache off for the command with one line saying why (:func:`untrusted`); a
directory this command creates is made ``0700``.
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


def untrusted(path: Path) -> str | None:
    """Why the compiled programs in ``path`` cannot be trusted: the directory is owned by
    another user, or group or others may write it (they could plant an executable).

    Arguments:
        path: an existing cache directory.

    Returns:
        The reason in words, or None when only this user can write it.
    """
    st = os.stat(path)
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows: no POSIX owner and mode to check
        return None
    if st.st_uid != getuid():
        return f"it is owned by another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        who = " and ".join(w for w, bit in (("group", 0o020), ("others", 0o002)) if st.st_mode & bit)
        return f"{who} may write it (mode {st.st_mode & 0o777:o}; chmod go-w {path} makes it private)"
    return None


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
            files.make_dir(path, mode=0o700)
            why = untrusted(path)
        except OSError as e:  # an unwritable cache is no reason to refuse the command
            print(f"jaxreg: compilation cache off, cannot create {path}: {e.strerror or e}", file=sys.stderr)
            path = None
        else:
            if why is not None:  # nor is an untrusted one: the command compiles afresh
                print(f"jaxreg: compilation cache off, {path} is not trusted: {why}", file=sys.stderr)
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
