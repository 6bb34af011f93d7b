"""The ``--out`` directory of ``jaxreg reproduce`` and ``jaxreg sweep``, checked before
any compute: writable, not someone else's files, and what a run there may do (start,
``--resume``, ``--force``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from jaxreg_lab.errors import UsageError
from jaxreg_lab.store import PROBE_PREFIX


def writable_out(out: Path) -> Path:
    """``--out`` checked before any compute: not under /proc or /sys, not a file, and
    writable (a probe file is created and removed in it or in its nearest existing
    ancestor, whose sibling directories hold the temporary results)."""
    resolved = out.resolve()
    if resolved.parts[1:2] in (("proc",), ("sys",), ("dev",)):
        raise UsageError(f"--out: {out} is under /{resolved.parts[1]}, not a place for results")
    if resolved.exists() and not resolved.is_dir():
        raise UsageError(f"--out: {out} is a file, not a directory")
    probe_dir = resolved.parent
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    for d in {probe_dir, resolved} if resolved.exists() else {probe_dir}:
        if not d.is_dir():
            raise UsageError(f"--out: {d} is not a directory")
        try:
            fd, probe = tempfile.mkstemp(dir=d, prefix=PROBE_PREFIX)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise UsageError(f"--out: cannot write in {d} ({e.strerror or e})") from None
    return resolved


def prepare_out(out: Path, fingerprint: dict, args) -> bool:
    """Decide, before any compute, what a run into ``out`` may do; returns True when the
    results there are already complete for this very run (``--resume``)."""
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
            why = R.fingerprint_mismatch(R.read_json(out / R.META).get("fingerprint"), fingerprint)
            if why:
                raise UsageError(f"--resume: {out} holds finished results that cannot be continued: {why}")
            R.load_results(out)  # complete and readable, or one line naming the file
            return True
        raise UsageError(f"--resume: no run to resume in {out}")
    if units:
        raise UsageError(f"--out: {out} holds a partial run; --resume continues it, --force discards it")
    if has_results:
        raise UsageError(f"--out: {out} holds finished results; --force replaces them")
    return False
