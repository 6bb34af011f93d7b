"""One writer per results directory: an advisory lock (``fcntl.flock``) on a lock file
beside it, ``.<name>.lock``, which the kernel releases when the holder dies (a killed
run leaves no stale lock). The file holds the holder's pid, for the refusal's message.
The file stays when the lock is released: removing it would let two processes lock two
different files of the same name."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

from jaxreg_lab.errors import UsageError


def lock_path(out: Path) -> Path:
    """The lock file of a results directory (outside it, since the directory itself is
    replaced as a whole).

    Arguments:
        out: the results directory.

    Returns:
        ``.<name>.lock`` beside it.
    """
    out = Path(out)
    return out.parent / f".{out.name}.lock"


def held_by(out: Path) -> int | None:
    """Whether a live process holds ``out``'s lock (:func:`out_lock`).

    Arguments:
        out: a results directory.

    Returns:
        The holder's pid (0 when it recorded none), or None when the lock is free.
    """
    path = lock_path(out)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def out_lock(out: Path, *, wait_s: float = 0.5):
    """Hold ``out``'s advisory lock (``fcntl.flock`` on :func:`lock_path`) for the block:
    one writer per results directory. The kernel releases it when the holder dies, so a
    killed run never leaves a stale lock; the file holds the holder's pid.

    Arguments:
        out: the results directory (its parent exists or is created).
        wait_s: how long to retry while another process holds it (a reader's brief probe).

    Returns:
        A context manager that yields the lock file's path; entering it raises a
        :class:`UsageError` naming the holder's pid when another process writes ``out``.
    """
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise UsageError(f"--out: cannot lock {path} ({e.strerror or e})") from None
                if time.monotonic() >= deadline:
                    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                    holder = f"pid {text}" if text.isdigit() else "another process"
                    raise UsageError(
                        f"--out: {out} is being written by another jaxreg ({holder}, lock {path}); "
                        "wait for it to finish or choose another --out"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
