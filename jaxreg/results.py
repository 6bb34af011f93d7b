"""Self-describing, atomically written results.

A results directory holds ``arrays.npz`` (every array) and ``results.json`` (for each
array its named dimensions; coordinates; the full config; package versions; wall time;
each seed's status). ``results.json`` is written last, by rename, so a directory with
it is complete: no half-written file is ever taken for a result.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import numpy as np

ARRAYS = "arrays.npz"
META = "results.json"


class ResumeMismatch(ValueError):
    """A resume was asked for a directory whose checkpoint belongs to another configuration."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("jaxreg", "jax", "jaxlib", "diffrax", "equinox", "optax", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _jsonable(x):
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return _jsonable(dataclasses.asdict(x))
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


@dataclasses.dataclass(frozen=True)
class Results:
    """Loaded results: ``arrays[name]`` with dimensions ``dims[name]``."""

    name: str
    arrays: dict[str, np.ndarray]
    dims: dict[str, tuple[str, ...]]
    coords: dict[str, list]
    config: dict
    meta: dict

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]


def save_results(
    out_dir,
    name: str,
    arrays: Mapping[str, tuple[tuple[str, ...], np.ndarray]],
    *,
    coords: Mapping[str, list] | None = None,
    config=None,
    wall_time: float | None = None,
    status: list[str] | None = None,
    extra: Mapping | None = None,
) -> Path:
    """Save named-dimension arrays and metadata to ``out_dir`` atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dims = {}
    data = {}
    for key, (d, arr) in arrays.items():
        arr = np.asarray(arr)
        if len(d) != arr.ndim:
            raise ValueError(f"array {key!r} has {arr.ndim} dimensions but {len(d)} names {d}")
        dims[key] = list(d)
        data[key] = arr
    atomic_save_npz(out / ARRAYS, data)
    meta = {
        "name": name,
        "dims": dims,
        "coords": _jsonable(dict(coords or {})),
        "config": _jsonable(config if config is not None else {}),
        "versions": package_versions(),
        "wall_time_s": wall_time,
        "status": status,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **_jsonable(dict(extra or {})),
    }
    atomic_write_bytes(out / META, json.dumps(meta, indent=2).encode())
    return out


def load_results(out_dir) -> Results:
    """Load a results directory written by :func:`save_results`."""
    out = Path(out_dir)
    if not (out / META).exists():
        raise FileNotFoundError(f"{out} holds no complete results ({META} is missing)")
    meta = json.loads((out / META).read_text())
    with np.load(out / ARRAYS) as z:
        arrays = {k: z[k] for k in z.files}
    dims = {k: tuple(v) for k, v in meta.pop("dims").items()}
    return Results(meta["name"], arrays, dims, meta.pop("coords"), meta.pop("config"), meta)
