"""Chunked, checkpointed, resumable execution: the one runner of every reproduction.

A run is a sequence of chunks ``state, outputs = step(state, k)``. After each chunk the
carried state (a pytree) and the outputs so far are committed as one unit: a new
directory ``chunk-<k+1>`` holding ``state.eqx``, ``outputs.npz`` and, written last,
``manifest.json`` (the number of chunks done, the run's fingerprint and the SHA-256 of
both files) is built under a temporary name and renamed into place; older units are
then removed. A killed run therefore leaves a last unit that is complete, and
``resume=True`` verifies it (checksums, fingerprint) and continues bit-identically from
it, or refuses with one line naming the file.

Checkpoints live in ``out_dir/.checkpoint/`` (``out_dir/.checkpoint/<name>/`` for a
named sub-run, e.g. one grid point of the locality reproductions).

The fingerprint rule (:func:`jaxreg_lab.store.results.fingerprint`): the config's digest, the
precision (x64 on or off) and the package versions; a resume continues a checkpoint
only when all three are equal.

Across processes (:mod:`jaxreg.distributed`) every process runs every chunk, process 0
alone writes the checkpoint, and on resume every process reads it (``out_dir`` on a file
system all processes see) and they check that they continue from the same chunk.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import Status, distributed, sweep
from jaxreg_lab.contract import Final
from jaxreg_lab.store import files as _io
from jaxreg_lab.store.files import CorruptFile
from jaxreg_lab.store.results import CHECKPOINT, ResumeMismatch, as_fingerprint, fingerprint_mismatch

__all__ = [
    "run_chunks",
    "stack_chunks",
    "checkpoints",
    "check_resumable",
    "clear_checkpoint",
    "chunk_loop",
    "run_reproduction",
    "run_named",
    "CheckpointExists",
    "CHECKPOINT",
]

STATE, OUTPUTS, MANIFEST = "state.eqx", "outputs.npz", "manifest.json"
_UNIT = "chunk-"


class CheckpointExists(ValueError):
    """A fresh run was asked for a directory holding a partial run (never silently discarded)."""


def _progress(total, desc, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", leave=False)


def _restart_clock(bar, done: int) -> None:
    """Time the bar's rate and ETA from now on, ``done`` chunks counted as already there:
    the first chunk of a call pays the compilation, which the later chunks do not."""
    bar.reset()
    bar.initial = bar.n = bar.last_print_n = done
    bar.refresh()


def _units(directory: Path) -> list[Path]:
    """Committed units in ``directory``, oldest first."""
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
        units = _units(d)
        if units:
            manifest = _read_manifest(units[-1])
            for name in manifest["files"]:
                _verified(units[-1], manifest, name)
            found[units[-1]] = manifest
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


def _commit(directory: Path, done: int, state, outputs: list[dict], manifest: dict) -> None:
    """Write the unit of ``done`` chunks (see the module docstring) and drop older ones."""
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
    for old in _units(directory)[:-1]:
        _io.remove_tree(old)


def _load(directory: Path, state, fingerprint: dict, num_chunks: int):
    """(state, outputs, done, stopped) of the latest unit in ``directory``."""
    unit = _units(directory)[-1]
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


def run_chunks(
    step: Callable,
    state,
    num_chunks: int,
    *,
    out_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str = "",
    fingerprint="",
    name: str = "",
    stop: Callable | None = None,
    precision: str | None = None,
    on_chunk: Callable | None = None,
):
    """Run ``state, outputs = step(state, k)`` for k < num_chunks, committing a checkpoint
    after each chunk.

    Arguments:
        step: ``step(state, k) -> (state, outputs)``; ``outputs`` a dict of arrays.
        state: the initial state (a pytree; also the structure a checkpoint is read into).
        num_chunks: the number of chunks.
        out_dir: checkpoints go to ``out_dir/.checkpoint[/name]``; None: no checkpoints.
        resume: continue the checkpoint in ``out_dir`` (absent: start afresh). Without
            it, an existing checkpoint raises :class:`CheckpointExists` (it is never
            discarded silently; :func:`clear_checkpoint` discards it).
        progress, desc: a tqdm bar over chunks; its rate and ETA leave out the first chunk
            of the call (which compiles).
        fingerprint: the run's identity: a config (dataclass, mapping or string) turned
            into a fingerprint by :func:`jaxreg_lab.store.results.fingerprint`, or a fingerprint;
            it must match on resume (:class:`ResumeMismatch` otherwise).
        name: a sub-run's name (its own checkpoint directory).
        stop: ``stop(state) -> bool``, checked after each chunk: True ends the run early.
        precision: overrides the fingerprint's precision ("float32" for a run that always
            computes in float32).
        on_chunk: ``on_chunk(k, state, outputs)`` after chunk k is committed; a dict it
            returns is shown beside the progress bar.

    Returns:
        ``(state, outputs, wall_time)``: the final state, the list of each chunk's outputs
        (numpy) and the seconds spent in this call.
    """
    directory = None if out_dir is None else Path(out_dir) / CHECKPOINT / name
    fp = as_fingerprint(fingerprint, precision=precision)
    outputs: list[dict] = []
    start, stopped = 0, False
    if directory is not None and _units(directory):
        if not resume:
            raise CheckpointExists(
                f"{directory} holds a partial run; continue it with resume=True or remove it first (clear_checkpoint)"
            )
        state, outputs, start, stopped = _load(directory, state, fp, num_chunks)
    if resume and directory is not None:
        try:
            start = distributed.agree(start, f"the number of finished chunks in {directory}")
        except ValueError as e:
            raise ResumeMismatch(f"{e}; out_dir must be a directory every process sees") from None
    manifest = {"format": 1, "num_chunks": num_chunks, "fingerprint": fp}
    bar = _progress(num_chunks, desc, progress and distributed.is_writer())
    if bar is not None:
        bar.update(start)
    t0 = time.perf_counter()
    for k in range(start, num_chunks if not stopped else start):
        state, out = step(state, k)
        out = {n: np.asarray(v) for n, v in jax.device_get(distributed.gathered(out)).items()}
        outputs.append(out)
        stopped = stop is not None and bool(stop(state))
        saved = distributed.gathered(state) if directory is not None else None  # a collective: on every process
        if directory is not None and distributed.is_writer():
            _commit(directory, k + 1, saved, outputs, {**manifest, "keys": sorted(out), "stopped": stopped})
        postfix = on_chunk(k, state, out) if on_chunk is not None else None
        if bar is not None:
            if postfix:
                bar.set_postfix(**postfix, refresh=False)
            if k == start:  # the first chunk: compilation plus one chunk's work
                _restart_clock(bar, k + 1)
            else:
                bar.update(1)
        if stopped:
            break
    if bar is not None:
        bar.close()
    return state, outputs, time.perf_counter() - t0


def chunk_loop(
    *,
    out_dir: Path | None,
    resume: bool,
    progress: bool,
    desc: str,
    fingerprint,
    name: str = "",
    precision: str | None = None,
) -> Callable:
    """A :class:`jaxreg.locality.training.EpochLoop` that runs the epochs with
    :func:`run_chunks`: each epoch a checkpointed chunk, resumable bit for bit.

    Arguments:
        out_dir, resume, progress, desc, fingerprint, name, precision: as in
            :func:`run_chunks`.

    Returns:
        ``loop(step, state, num_epochs, *, stop, on_chunk) -> state``.
    """

    def loop(step, state, num_epochs: int, *, stop, on_chunk):
        state, _, _ = run_chunks(
            step,
            state,
            num_epochs,
            out_dir=out_dir,
            resume=resume,
            progress=progress,
            desc=desc,
            fingerprint=fingerprint,
            name=name,
            stop=stop,
            precision=precision,
            on_chunk=on_chunk,
        )
        return state

    return loop


def stack_chunks(outputs: list[dict], axis: int) -> dict[str, np.ndarray]:
    """Concatenate each output over chunks along ``axis``.

    Arguments:
        outputs: the per-chunk outputs of :func:`run_chunks`, dicts with the same keys.
        axis: the axis along which the chunks follow each other (e.g. save times).

    Returns:
        ``{key: np.concatenate([o[key] for o in outputs], axis)}``.
    """
    return {k: np.concatenate([o[k] for o in outputs], axis=axis) for k in outputs[0]}


@dataclasses.dataclass(frozen=True)
class _OneRun:
    """One run's chunk of ``reproduction`` under ``config``, as :func:`jaxreg.sweep` calls
    it; compares by value, so every run of the same reproduction and config reuses one
    compiled program."""

    reproduction: Any
    config: Any

    def __call__(self, index, inputs, state, k):
        return self.reproduction.chunk(self.config, inputs, state, k)


def run_reproduction(
    reproduction, config, *, out_dir: Path | None = None, resume: bool = False, progress: bool = True, fingerprint=None
) -> dict:
    """Run a :class:`jaxreg_lab.contract.Reproduction`: every run's chunks in one
    program, sharded over every device of every process (:func:`jaxreg.sweep`), each
    chunk committed as a checkpoint unit (:func:`run_chunks`), each run's worst status
    kept, and the arrays laid out on the reproduction's declared ``outputs(config)``.

    Arguments:
        reproduction: the reproduction (a :class:`jaxreg_lab.contract.Reproduction`).
        config: its frozen ``Config``.
        out_dir: the results directory (checkpoints in ``out_dir/.checkpoint``); None:
            no checkpoints.
        resume: continue the checkpoint in ``out_dir``.
        progress: show a progress bar over chunks.
        fingerprint: the run's fingerprint when the caller computed it already
            (:func:`jaxreg_lab.store.results.fingerprint`); default: from ``config``.

    Returns:
        The results dict: ``arrays`` (name -> (dims, array)), ``coords``, ``status``
        (one name per run, nested as ``run_shape``), ``wall_time`` and ``extra``
        (:meth:`jaxreg_lab.contract.Reproduction.extra`).
    """
    setup = reproduction.setup(config)
    runs = setup.num_runs
    one = _OneRun(reproduction, config)
    index = jnp.arange(runs)

    def step(carry, k):
        state, worst = carry
        state, status, outputs = sweep(one, index, setup.inputs, state, jnp.full(runs, k, jnp.int32))
        return (state, jnp.maximum(worst, jnp.asarray(status, jnp.int32))), outputs

    initial = (setup.state, jnp.full(runs, Status.COMPLETED, jnp.int32))
    (state, status), outs, wall = run_chunks(
        step,
        initial,
        setup.num_chunks,
        out_dir=out_dir,
        resume=resume,
        progress=progress,
        desc=reproduction.name,
        fingerprint=config if fingerprint is None else fingerprint,
    )
    steps = np.sum([o.pop("steps") for o in outs], axis=0) if "steps" in outs[0] else None
    data = stack_chunks(outs, axis=1) if outs[0] else {}
    if steps is not None:
        data["steps"] = steps

    def unflatten(x):
        return np.asarray(x).reshape(setup.run_shape + np.shape(x)[1:])

    final = Final(
        state=jax.tree.map(lambda x: jnp.reshape(x, setup.run_shape + x.shape[1:]), state),
        status=unflatten(status),
        data={name: unflatten(x) for name, x in data.items()},
    )
    arrays = reproduction.assemble(config, setup, final)
    schema = reproduction.outputs(config)
    if set(arrays) != set(schema):
        raise ValueError(
            f"{reproduction.name}: assemble returned {sorted(arrays)}, its outputs declare {sorted(schema)}"
        )
    for name, dims in schema.items():
        if np.ndim(arrays[name]) != len(dims):
            raise ValueError(f"{reproduction.name}: output {name} has shape {np.shape(arrays[name])}, dims {dims}")
    return {
        "arrays": {name: (dims, np.asarray(arrays[name])) for name, dims in schema.items()},
        "coords": dict(setup.coords),
        "status": Status.names(final.status),
        "wall_time": wall,
        "extra": dict(reproduction.extra(config, setup, arrays)),
    }


def run_named(
    module, config, *, out_dir: Path | None = None, resume: bool = False, progress: bool = True, fingerprint=None
):
    """Run the reproduction of ``module`` (one of :mod:`jaxreg_lab.reproductions`): its
    ``REPRODUCTION`` through :func:`run_reproduction` where it declares the contract,
    else its own ``run``.

    Arguments:
        module: the reproduction's module.
        config: its frozen ``Config``.
        out_dir, resume, progress: as in :func:`run_reproduction`.
        fingerprint: the fingerprint the caller computed (used by the contract's path).

    Returns:
        The results dict (see :func:`run_reproduction`).
    """
    reproduction = getattr(module, "REPRODUCTION", None)
    if reproduction is not None:
        return run_reproduction(
            reproduction, config, out_dir=out_dir, resume=resume, progress=progress, fingerprint=fingerprint
        )
    return module.run(config, out_dir=out_dir, resume=resume, progress=progress)
