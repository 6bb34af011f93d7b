"""Crash-safe file operations: the three write points (:func:`write_file`,
:func:`rename`, :func:`remove_tree`) through which every checkpoint and results byte is
written, readers that name a corrupt file, and whole-directory replacement.

A directory is replaced by building it as a temporary sibling and renaming it into place
(:func:`replace_dir`); :func:`recover_dir` finishes or undoes a replacement that a crash
interrupted, so a reader sees the old directory or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np


class CorruptFile(ValueError):
    """A results or checkpoint file that cannot be read back or fails its checksum."""


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to disk (``path`` is inside a directory
    that is not yet visible to readers, or is written by :func:`atomic_write_bytes`).

    Arguments:
        path: the file, created or truncated.
        data: its bytes.

    Returns:
        None, once the bytes are on disk (``fsync``).
    """
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def rename(src: Path, dst: Path) -> None:
    """Atomically rename ``src`` to ``dst`` and flush the parent directory, so the rename
    survives a crash.

    Arguments:
        src: an existing file or directory.
        dst: the new path (a file, or an empty or absent directory, is replaced).

    Returns:
        None.
    """
    os.replace(src, dst)
    try:
        fd = os.open(Path(dst).parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove a file or directory tree (absent is fine; a symbolic link is removed, not
    followed).

    Arguments:
        path: the file or directory.

    Returns:
        None.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _umask_mode(path, mode: int) -> None:
    """Give a file or directory made by ``tempfile`` (0600/0700) the usual ``mode & ~umask``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename,
    so a reader sees the old file or the new one, never a part.

    Arguments:
        path: the file (its parent directories are created).
        data: its bytes.

    Returns:
        None.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    _umask_mode(tmp, 0o666)
    try:
        write_file(Path(tmp), data)
        rename(Path(tmp), path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_figure(fig, path: Path, **savefig_kwargs) -> Path:
    """Render a matplotlib figure and write it with :func:`atomic_write_bytes`.

    Arguments:
        fig: the figure.
        path: the file; its suffix names the format (``.png``, ``.pdf``, ``.svg``).
        **savefig_kwargs: keywords of ``Figure.savefig`` (``dpi``, ``bbox_inches``).

    Returns:
        ``path``.
    """
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip("."), **savefig_kwargs)
    atomic_write_bytes(path, buf.getvalue())
    return path


def make_dir(path: Path, mode: int = 0o777) -> Path:
    """Create the directory ``path`` and its parents (present is fine).

    Arguments:
        path: the directory.
        mode: the permissions of ``path`` if it is created (less the umask; its parents
            get the default ones), e.g. ``0o700`` for a directory private to this user.

    Returns:
        ``path``; ``OSError`` when it cannot be created.
    """
    path = Path(path)
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    return path


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialize arrays as an uncompressed ``.npz`` file, in memory.

    Arguments:
        arrays: ``{name: array}``.

    Returns:
        The bytes of the ``.npz`` file.
    """
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def atomic_save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Save ``arrays`` as an uncompressed ``.npz`` file with :func:`atomic_write_bytes`.

    Arguments:
        path: the file.
        arrays: ``{name: array}``.

    Returns:
        None.
    """
    atomic_write_bytes(path, npz_bytes(arrays))


def sha256(data: bytes) -> str:
    """The SHA-256 checksum recorded for every checkpoint and results file.

    Arguments:
        data: the bytes.

    Returns:
        The hex digest (64 characters).
    """
    return hashlib.sha256(data).hexdigest()


def read_json(path: Path) -> dict:
    """Read a JSON object.

    Arguments:
        path: the file.

    Returns:
        The object, a dict.

    Raises:
        CorruptFile: naming the file, when it is not valid UTF-8 JSON or not an object.
    """
    try:
        value = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptFile(f"{path} is corrupt or truncated (not valid JSON: {e})") from None
    except RecursionError:
        raise CorruptFile(f"{path} is corrupt (JSON nested too deeply to read)") from None
    if not isinstance(value, dict):
        raise CorruptFile(f"{path} is corrupt (a JSON object was expected, got {type(value).__name__})")
    return value


def read_npz(path: Path, data: bytes | None = None) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file (pickled objects are refused).

    Arguments:
        path: the file (read when ``data`` is None; named in errors).
        data: the file's bytes, already read (e.g. to check their checksum first).

    Returns:
        ``{name: array}``.

    Raises:
        CorruptFile: naming ``path``, when the file is not a readable ``.npz``.
    """
    try:
        with np.load(io.BytesIO(data) if data is not None else path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise CorruptFile(f"{path} is corrupt or truncated ({type(e).__name__}: {e})") from None


def _siblings(out: Path, tag: str) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.{tag}-*")) if out.parent.is_dir() else []


def new_sibling(out: Path) -> Path:
    """A fresh empty temporary directory beside ``out`` (same file system: renames are atomic).

    Arguments:
        out: the directory that the new one will replace (:func:`replace_dir`).

    Returns:
        The path of the new directory, ``.<name of out>.new-*``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.new-"))
    _umask_mode(tmp, 0o777)
    return tmp


def replace_dir(tmp: Path, out: Path) -> None:
    """Put the complete directory ``tmp`` in the place of ``out`` (two renames: ``out``
    to an ``.old`` sibling, ``tmp`` to ``out``; then the old one is removed). A crash
    between the renames is undone by :func:`recover_dir`.

    Arguments:
        tmp: the complete new directory (from :func:`new_sibling`).
        out: the directory to replace (absent is fine).

    Returns:
        None.
    """
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        rename(out, old)
        rename(tmp, out)
        remove_tree(old)
    else:
        rename(tmp, out)


def recover_dir(out: Path) -> None:
    """Finish or undo an interrupted :func:`replace_dir`: temporary new siblings are
    removed; an old sibling is removed when ``out`` exists and moved back otherwise.

    Arguments:
        out: the directory that :func:`replace_dir` was replacing.

    Returns:
        None.
    """
    out = Path(out)
    for tmp in _siblings(out, "new"):
        remove_tree(tmp)
    olds = _siblings(out, "old")
    if olds and not out.exists():
        # the renamed old directory is the non-empty one (an empty one is a placeholder
        # made before the first rename)
        full = [p for p in olds if p.is_dir() and any(p.iterdir())]
        back = (full or olds)[-1]
        rename(back, out)
        olds.remove(back)
    for old in olds:
        remove_tree(old)


def complete_old(out: Path, marker: str) -> Path | None:
    """The old sibling of an interrupted :func:`replace_dir` that still holds ``marker``
    (e.g. ``results.json``), when ``out`` is missing.

    Arguments:
        out: the directory being replaced.
        marker: a file that a complete directory holds.

    Returns:
        The sibling, or None.
    """
    if out.exists():
        return None
    full = [p for p in _siblings(out, "old") if (p / marker).is_file()]
    return full[-1] if full else None
