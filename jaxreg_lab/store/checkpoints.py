"""Checkpoint units on disk: the driver's chunks committed atomically and read back.

A unit ``chunk-<done>`` holds ``state.eqx`` (the carried pytree), ``outputs.npz`` (every
chunk's outputs so far) and, written last, ``manifest.json`` (the chunks done, the run's
fingerprint and the SHA-256 of both files). It is built under a temporary name and
renamed into place, then older units are removed; a reader verifies every checksum.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import equinox as eqx

from jaxreg_lab.store import files as _io
from jaxreg_lab.store.files import CorruptFile
from jaxreg_lab.store.results import CHECKPOINT, ResumeMismatch, as_fingerprint, fingerprint_mismatch

__all__ = [
    "CHECKPOINT",
    "CheckpointExists",
    "checkpoints",
    "check_resumable",
    "clear_checkpoint",
    "commit_unit",
    "load_unit",
    "units",
]

STATE, OUTPUTS, MANIFEST = "state.eqx", "outputs.npz", "manifest.json"
_UNIT = "chunk-"


class CheckpointExists(ValueError):
    """A fresh run was asked for a directory holding a partial run (never silently discarded)."""


def units(directory: Path) -> list[Path]:
    """The committed units in ``directory``.

    Arguments:
        directory: a (sub-)run's checkpoint directory.

    Returns:
        The unit directories, oldest first (none when ``directory`` does not exist).
    """
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_dir() and p.name.startswith(_UNIT))


def _read_manifest(unit: Path) -> dict:
    path = unit / MANIFEST
    if not path.exists():
        raise CorruptFile(f"{path} is missing: the checkpoint unit {unit} is incomplete")
    manifest = _io.read_json(path)
    if not isinstance(manifest.get("done"), int) or not isinstance(manifest.get("files"), dict):
        raise CorruptFile(f"{path} is corrupt (fields 'done' and 'files' expected)")
    return manifest


def _verified(unit: Path, manifest: dict, name: str) -> bytes:
    path = unit / name
    if not path.exists():
        raise CorruptFile(f"{path} is missing from its checkpoint unit")
    data = path.read_bytes()
    if _io.sha256(data) != manifest["files"].get(name):
        raise CorruptFile(f"{path} is corrupt or truncated (checksum differs from {unit / MANIFEST})")
    return data


def checkpoints(out_dir) -> dict[Path, dict]:
    """The latest committed unit of every (sub-)run under ``out_dir/.checkpoint``.

    Arguments:
        out_dir: a run directory.

    Returns:
        ``{unit directory: manifest}``, empty when there is no checkpoint; every unit's
        files are checked against the manifest's SHA-256 (:class:`CorruptFile` naming the
        file otherwise).
    """
    root = Path(out_dir) / CHECKPOINT
    found = {}
    if not root.is_dir():
        return found
    dirs = [root] + sorted(p for p in root.rglob("*") if p.is_dir() and not p.name.startswith((_UNIT, ".")))
    for d in dirs:
        committed = units(d)
        if committed:
            manifest = _read_manifest(committed[-1])
            for name in manifest["files"]:
                _verified(committed[-1], manifest, name)
            found[committed[-1]] = manifest
    return found


def check_resumable(out_dir, fingerprint) -> None:
    """Check, before any compute, that the checkpoints under ``out_dir`` may be continued.

    Arguments:
        out_dir: a run directory.
        fingerprint: the run's config or fingerprint (see :func:`jaxreg_lab.store.results.fingerprint`).

    Returns:
        None, when every checkpoint (none included) may be continued.

    Raises:
        ResumeMismatch: a checkpoint has another fingerprint (one line naming the
            manifest and what differs).
        CorruptFile: a damaged unit.
    """
    current = as_fingerprint(fingerprint)
    for unit, manifest in checkpoints(out_dir).items():
        why = fingerprint_mismatch(manifest.get("fingerprint"), current)
        if why:
            raise ResumeMismatch(f"the checkpoint {unit / MANIFEST} cannot be continued: {why}")


def clear_checkpoint(out_dir) -> None:
    """Remove every checkpoint under ``out_dir`` (absent is fine).

    Arguments:
        out_dir: a run directory, or None (nothing to remove).

    Returns:
        None.
    """
    if out_dir is not None:
        _io.remove_tree(Path(out_dir) / CHECKPOINT)


def commit_unit(directory: Path, done: int, state, outputs: list[dict], manifest: dict) -> None:
    """Write the unit of ``done`` chunks (see the module docstring) and drop older ones.

    Arguments:
        directory: the (sub-)run's checkpoint directory.
        done: the number of chunks done.
        state: the carried pytree after chunk ``done - 1``.
        outputs: every chunk's outputs so far.
        manifest: the run's fields of the manifest (fingerprint, number of chunks, keys).

    Returns:
        None.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(f".{_UNIT}*"):  # temporary units of an interrupted commit
        _io.remove_tree(stale)
    tmp = directory / f".{_UNIT}{done:06d}"
    tmp.mkdir()
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, state)
    files = {
        STATE: buf.getvalue(),
        OUTPUTS: _io.npz_bytes({f"{i}:{n}": v for i, o in enumerate(outputs) for n, v in o.items()}),
    }
    for name, data in files.items():
        _io.write_file(tmp / name, data)
    manifest = {**manifest, "done": done, "files": {name: _io.sha256(data) for name, data in files.items()}}
    _io.write_file(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
    _io.rename(tmp, directory / f"{_UNIT}{done:06d}")
    for old in units(directory)[:-1]:
        _io.remove_tree(old)


def load_unit(directory: Path, state, fingerprint: dict, num_chunks: int):
    """The latest unit in ``directory``, verified.

    Arguments:
        directory: the (sub-)run's checkpoint directory (holding at least one unit).
        state: a pytree of the carried state's structure (read into).
        fingerprint: this run's fingerprint (a checkpoint of another refuses).
        num_chunks: this run's number of chunks.

    Returns:
        ``(state, outputs, done, stopped)``.
    """
    unit = units(directory)[-1]
    manifest = _read_manifest(unit)
    why = fingerprint_mismatch(manifest.get("fingerprint"), fingerprint)
    if why:
        raise ResumeMismatch(f"the checkpoint {unit / MANIFEST} cannot be continued: {why}")
    done = manifest["done"]
    if not 0 < done <= num_chunks or manifest.get("num_chunks") != num_chunks:
        raise CorruptFile(
            f"{unit / MANIFEST} records {done} of {manifest.get('num_chunks')} chunks, this run has {num_chunks}"
        )
    blob = _verified(unit, manifest, STATE)
    try:
        state = eqx.tree_deserialise_leaves(io.BytesIO(blob), state)
    except Exception as e:  # a checksum-valid file of another pytree structure
        raise CorruptFile(f"{unit / STATE} does not hold this run's state ({type(e).__name__})") from None
    arrays = _io.read_npz(unit / OUTPUTS, _verified(unit, manifest, OUTPUTS))
    keys = manifest.get("keys", [])
    try:
        outputs = [{k: arrays[f"{i}:{k}"] for k in keys} for i in range(done)]
    except KeyError as e:
        raise CorruptFile(f"{unit / OUTPUTS} lacks output {e}") from None
    return state, outputs, done, bool(manifest.get("stopped"))
