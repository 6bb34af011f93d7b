"""The per-chunk metrics log of a run: ``metrics.jsonl`` in its results directory, one
JSON object per finished chunk, to tail while the run goes (``tail -f``) and to read back
after it.

Each line is appended by one ``write`` on a file opened for appending and flushed to
disk, so a reader sees whole lines (a line cut by a crash, the last one, has no newline
and is skipped by :func:`read_records`). A chunk's line is appended before its checkpoint
is committed, and a run that starts or resumes at chunk ``k`` first drops its own lines
of chunks ``>= k`` (:func:`truncate_from`): after any crash and ``--resume`` the log holds
each chunk once, in order.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from jaxreg_lab.store import files as _store

METRICS_LOG = "metrics.jsonl"

__all__ = ["METRICS_LOG", "append_record", "chunk_record", "read_records", "truncate_from"]


def _number(x) -> float | None:
    """A finite float, or None for NaN and infinities (JSON has no such numbers)."""
    x = float(x)
    return x if math.isfinite(x) else None


def chunk_record(name: str, chunk: int, num_chunks: int, wall_s: float, outputs: Mapping) -> dict:
    """The log line of one finished chunk.

    Every numeric output with one value per run (shape ``(runs,)``) or one value per run
    and save (shape ``(runs, saves)``, the last save taken) gives ``metrics[key]``:
    ``{"last": [one value per run], "min", "median", "max"}`` over the runs (NaN and
    infinities as null, left out of the summary). Outputs with more axes (e.g. a vector
    of singular values per save) are left out: they are in the saved results.

    Arguments:
        name: the sub-run's name ("" for a run that has none).
        chunk: the chunk's index, from 0.
        num_chunks: the run's number of chunks.
        wall_s: seconds since this call of the runner began.
        outputs: the chunk's outputs (name -> array with a leading run axis).

    Returns:
        ``{"name", "chunk", "num_chunks", "wall_s", "metrics"}``.
    """
    metrics = {}
    for key, value in outputs.items():
        x = np.asarray(value)
        if x.dtype.kind not in "iuf" or x.ndim not in (1, 2) or x.size == 0:
            continue
        last = x if x.ndim == 1 else x[:, -1]
        finite = last[np.isfinite(last)].astype(float)
        summary = (
            {"min": float(finite.min()), "median": float(np.median(finite)), "max": float(finite.max())}
            if finite.size
            else {"min": None, "median": None, "max": None}
        )
        metrics[key] = {"last": [_number(v) for v in last.tolist()], **summary}
    return {
        "name": name,
        "chunk": int(chunk),
        "num_chunks": int(num_chunks),
        "wall_s": round(wall_s, 3),
        "metrics": metrics,
    }


def append_record(out_dir, record: Mapping) -> None:
    """Append ``record`` as one line of ``out_dir/metrics.jsonl`` (created if absent).

    Arguments:
        out_dir: the results directory.
        record: a JSON-serializable mapping (:func:`chunk_record`).

    Returns:
        None, once the line is on disk.
    """
    path = Path(out_dir) / METRICS_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(dict(record), allow_nan=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(out_dir) -> list[dict]:
    """The whole lines of ``out_dir/metrics.jsonl``, in order (none if absent); a last line
    cut short by a crash is skipped.

    Arguments:
        out_dir: the results directory.

    Returns:
        The records.
    """
    path = Path(out_dir) / METRICS_LOG
    if not path.exists():
        return []
    records = []
    for line in path.read_bytes().split(b"\n"):
        try:
            record = json.loads(line)
        except ValueError:  # an empty or cut line
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def truncate_from(out_dir, name: str, chunk: int) -> None:
    """Drop the lines of sub-run ``name`` for chunks ``>= chunk`` (and any cut line),
    rewriting the file atomically; other sub-runs' lines are kept.

    Arguments:
        out_dir: the results directory.
        name: the sub-run's name ("" for a run that has none).
        chunk: the first chunk the run computes now (0: a fresh start).

    Returns:
        None.
    """
    path = Path(out_dir) / METRICS_LOG
    if not path.exists():
        return
    kept = [r for r in read_records(out_dir) if not (r.get("name") == name and int(r.get("chunk", -1)) >= chunk)]
    data = "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept).encode()
    if data != path.read_bytes():
        _store.atomic_write_bytes(path, data)
