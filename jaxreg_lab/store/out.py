"""The ``--out`` directory of ``jaxreg reproduce`` and ``jaxreg sweep``, checked before
any compute: writable, not someone else's files, and what a run there may do (start,
``--resume``, ``--force``); the advisory lock that keeps a second writer out is
:func:`jaxreg_lab.store.lock.out_lock`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from jaxreg_lab.errors import UsageError
from jaxreg_lab.store import PROBE_PREFIX

# the most that a temporary sibling's name adds to the name it stands for:
# ".<name>.new-XXXXXXXX" (a results directory, a Zarr store) and ".<name>.XXXXXXXX.tmp"
# (a file written atomically); tempfile's random part has 8 characters
_SIBLING_EXTRA = max(len("..new-"), len("...tmp")) + 8


def _resolve(path: Path, option: str) -> Path:
    """``path`` made absolute with its symbolic links followed; a loop is one line."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as e:  # RuntimeError: a symbolic link loop (Python < 3.13)
        raise UsageError(f"{option}: {path} cannot be resolved ({getattr(e, 'strerror', None) or e})") from None


def _check_name(path: Path, option: str, extra: int) -> None:
    """Refuse a name too long for its file system once the temporary suffix is added."""
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in path.parts[1:]:
        if len(os.fsencode(part)) + extra > limit:
            raise UsageError(
                f"{option}: the name {part[:40]}... has {len(os.fsencode(part))} bytes; "
                f"at most {limit - extra} fit (the file system allows {limit} with jaxreg's temporary suffix)"
            )


def _probe(d: Path, option: str) -> None:
    try:
        fd, probe = tempfile.mkstemp(dir=d, prefix=PROBE_PREFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"{option}: cannot write in {d} ({e.strerror or e})") from None


def _special(resolved: Path, path: Path, option: str) -> None:
    if resolved.parts[1:2] in (("proc",), ("sys",), ("dev",)):
        raise UsageError(f"{option}: {path} is under /{resolved.parts[1]}, not a place for results")


def writable_file(path: Path, option: str = "--out") -> Path:
    """A file that a command will write (a figure, an export), checked before any compute:
    resolvable, not under /proc, /sys or /dev, not a directory, a name that fits, and a
    writable existing parent (a probe file is created and removed there).

    Arguments:
        path: the file.
        option: the option to name in the error.

    Returns:
        ``path`` resolved; a :class:`UsageError` (one line) otherwise.
    """
    resolved = _resolve(Path(path), option)
    _special(resolved, path, option)
    if resolved.is_dir():
        raise UsageError(f"{option}: {path} is a directory, not a file")
    _check_name(resolved, option, _SIBLING_EXTRA)
    parent = resolved.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"{option}: {parent} is not a directory")
    _probe(parent, option)
    return resolved


def writable_out(out: Path) -> Path:
    """``--out`` checked before any compute: resolvable (no symbolic link loop), not under
    /proc or /sys, not a file, a name that fits its file system with the temporary
    siblings' suffix, and writable (a probe file is created and removed in it or in its
    nearest existing ancestor, whose sibling directories hold the temporary results)."""
    resolved = _resolve(out, "--out")
    if resolved.parts[1:2] in (("proc",), ("sys",), ("dev",)):
        raise UsageError(f"--out: {out} is under /{resolved.parts[1]}, not a place for results")
    if resolved.exists() and not resolved.is_dir():
        raise UsageError(f"--out: {out} is a file, not a directory")
    _check_name(resolved, "--out", _SIBLING_EXTRA)
    probe_dir = resolved.parent
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    for d in {probe_dir, resolved} if resolved.exists() else {probe_dir}:
        if not d.is_dir():
            raise UsageError(f"--out: {d} is not a directory")
        _probe(d, "--out")
    return resolved


def _finished_mismatch(out: Path, fingerprint: dict, config, trust_edited: bool) -> str | None:
    """Why the finished results in ``out`` are not this run's: their fingerprint with the
    config digest recomputed from the config they store (never the recorded digest alone),
    read after their seal is checked."""
    from jaxreg_lab.store import results as R

    path = out / R.META
    meta = R.read_json(path)
    try:
        R.check_seal(path, meta, trust_edited=trust_edited)
    except R.ResultsError as e:
        raise UsageError(f"--resume: {e}") from None
    recorded = meta.get("fingerprint")
    if config is not None and isinstance(recorded, dict):
        recorded = {**recorded, "config": R.config_digest(config, fields=meta.get("config"))}
    return R.fingerprint_mismatch(recorded, fingerprint)


def prepare_out(out: Path, fingerprint: dict, args, config=None) -> bool:
    """Decide, before any compute, what a run into ``out`` may do; returns True when the
    results there are already complete for this very run (``--resume``: their config,
    as stored, gives this run's fingerprint)."""
    from jaxreg_lab.driver import check_resumable, checkpoints, clear_checkpoint
    from jaxreg_lab.store import results as R
    from jaxreg_lab.store.metrics_log import METRICS_LOG

    R.recover_dir(out)
    if not out.exists():
        if args.resume:
            raise UsageError(f"--resume: no run to resume in {out}")
        return False
    foreign = R.foreign_entries(out)
    if foreign:
        raise UsageError(
            f"--out: {out} holds files that are not jaxreg results ({', '.join(foreign[:3])}); "
            "choose an empty or new directory"
        )
    if args.force:
        clear_checkpoint(out)
        (out / METRICS_LOG).unlink(missing_ok=True)  # the discarded run's log
        return False
    has_results = (out / R.META).exists()
    units = checkpoints(out)
    if args.resume:
        if units:
            try:
                check_resumable(out, fingerprint)
            except R.ResumeMismatch as e:
                raise UsageError(f"--resume: {e}") from None
            return False
        if has_results:
            trust = bool(vars(args).get("trust_edited"))
            why = _finished_mismatch(out, fingerprint, config, trust)
            if why:
                raise UsageError(f"--resume: {out} holds finished results that cannot be continued: {why}")
            R.load_results(out, trust_edited=trust)  # complete and readable, or one line naming the file
            return True
        raise UsageError(f"--resume: no run to resume in {out}")
    if units:
        raise UsageError(f"--out: {out} holds a partial run; --resume continues it, --force discards it")
    if has_results:
        raise UsageError(f"--out: {out} holds finished results; --force replaces them")
    return False
