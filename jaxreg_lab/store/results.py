"""Self-describing results, written so that a reader never sees half of a run.

A results directory holds ``arrays.npz`` (every array), ``results.json`` (for each
array its named dimensions; coordinates; the full config; the run's fingerprint, i.e.
config digest, precision and package versions; the SHA-256 of ``arrays.npz``; wall
time; each run's status), the figures drawn from them and the run's per-chunk log
(``metrics.jsonl``, :mod:`jaxreg_lab.store.metrics_log`). The directory is built as a
temporary sibling and renamed into place as a whole (:func:`replace_dir`), so a reader
finds either the old complete directory or the new one, never a mixed pair; and
:func:`load_results` checks the pair (checksum, schema, array shapes against the
coordinates, status names) and names the file that is wrong.

Every byte that the runner or :func:`save_results` writes goes through the write points
of :mod:`jaxreg_lab.store.files`.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path

import numpy as np

from jaxreg_lab.store import PROBE_PREFIX
from jaxreg_lab.store import files as _store
from jaxreg_lab.store.files import CorruptFile as CorruptFile
from jaxreg_lab.store.files import atomic_save_npz as atomic_save_npz
from jaxreg_lab.store.files import atomic_write_bytes as atomic_write_bytes
from jaxreg_lab.store.files import read_json as read_json
from jaxreg_lab.store.files import recover_dir as recover_dir
from jaxreg_lab.store.files import sha256 as sha256
from jaxreg_lab.store.metrics_log import METRICS_LOG

ARRAYS = "arrays.npz"
META = "results.json"
CHECKPOINT = ".checkpoint"
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


class ResumeMismatch(ValueError):
    """A resume was asked for a directory whose run has another fingerprint (config,
    precision or package versions)."""


class ResultsError(ValueError):
    """A results directory that is missing, incomplete or inconsistent."""


# ---------------------------------------------------------------- fingerprints


def package_versions() -> dict[str, str]:
    """The versions that enter a run's fingerprint.

    Returns:
        ``{"python": version, package: version}`` for jaxreg, jax, jaxlib, diffrax, equinox,
        optax and numpy (those installed).
    """
    out = {"python": platform.python_version()}
    for name in ("jaxreg", "jax", "jaxlib", "diffrax", "equinox", "optax", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def as_json(x):
    """``x`` as the JSON values ``results.json`` records (a dataclass as its fields, tuples
    as lists, NumPy scalars and arrays as Python numbers and lists): a saved config equals
    ``as_json`` of the ``Config`` that made it.

    Arguments:
        x: a value, dataclass, mapping or sequence.

    Returns:
        The JSON-ready value.
    """
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return as_json(dataclasses.asdict(x))
    if isinstance(x, Mapping):
        return {str(k): as_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [as_json(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def current_precision() -> str:
    """The precision JAX computes in by default.

    Returns:
        "float64" when JAX's x64 mode is on, else "float32".
    """
    import jax

    return "float64" if jax.config.jax_enable_x64 else "float32"


def fingerprint(config, *, precision: str | None = None) -> dict:
    """The identity of a run: ``{"config": digest, "precision": ..., "versions": ...}``.

    ``digest`` is the SHA-256 of the canonical JSON of ``config`` (a dataclass with its
    module-qualified class name, a mapping, or a string taken as is). ``precision`` defaults to the
    config class's ``PRECISION`` (a run that always computes in float32 declares it)
    and otherwise to the current x64 setting. Two runs continue each other only when
    their fingerprints are equal (see :func:`fingerprint_mismatch`).

    Arguments:
        config: the run's configuration.
        precision: "float64" or "float32" (default: see above).

    Returns:
        ``{"config": hex digest, "precision": str, "versions": {package: version}}``.
    """
    if isinstance(config, str):
        payload = config
    else:
        body = as_json(config)
        if dataclasses.is_dataclass(config):
            body = {"type": f"{type(config).__module__}.{type(config).__qualname__}", "fields": body}
        payload = json.dumps(body, sort_keys=True)
    precision = precision or getattr(type(config), "PRECISION", None) or current_precision()
    return {"config": _store.sha256(payload.encode()), "precision": precision, "versions": package_versions()}


_make_fingerprint = fingerprint


def as_fingerprint(value, *, precision: str | None = None) -> dict:
    """A fingerprint from a fingerprint or a config.

    Arguments:
        value: a fingerprint (a mapping with exactly the keys config, precision, versions)
            or a config for :func:`fingerprint`.
        precision: passed to :func:`fingerprint` (ignored for a fingerprint).

    Returns:
        A copy of ``value`` if it is a fingerprint, else ``fingerprint(value, precision=...)``.
    """
    if isinstance(value, Mapping) and set(value) == {"config", "precision", "versions"}:
        return dict(value)
    return _make_fingerprint(value, precision=precision)


def fingerprint_mismatch(recorded, current) -> str | None:
    """Compare a recorded fingerprint with the current one.

    Arguments:
        recorded: the fingerprint stored in a checkpoint manifest or ``results.json``.
        current: this run's fingerprint.

    Returns:
        None when they are equal, else what differs (precision, config, versions) in words.
    """
    if not isinstance(recorded, Mapping):
        return "it records no fingerprint"
    if recorded.get("precision") != current["precision"]:
        return f"it was computed in {recorded.get('precision')}, this run is {current['precision']}"
    if recorded.get("config") != current["config"]:
        return "it belongs to another configuration"
    old, new = recorded.get("versions") or {}, current["versions"]
    diff = [f"{k} {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if diff:
        return "it was computed with other package versions (" + ", ".join(diff) + ")"
    return None


def foreign_entries(out: Path) -> list[str]:
    """Entries of ``out`` that are neither results, figures nor a checkpoint (a directory
    holding them is never replaced).

    Arguments:
        out: a results directory (absent is fine).

    Returns:
        Their names, sorted (empty when ``out`` is absent).
    """
    if not out.is_dir():
        return []
    ours = {ARRAYS, META, CHECKPOINT, METRICS_LOG}
    return sorted(
        p.name
        for p in out.iterdir()
        if p.name not in ours and p.suffix not in FIGURE_SUFFIXES and not p.name.startswith(PROBE_PREFIX)
    )


# ---------------------------------------------------------------- save / load


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
    fingerprint: Mapping | None = None,
    figures: Callable[[Results, Path], list[Path]] | None = None,
    claims: Callable[[Results], list[dict]] | None = None,
) -> Path:
    """Save named-dimension arrays, metadata and figures as the whole of ``out_dir``.

    Arguments:
        out_dir: the results directory; whatever it held (old results, old figures, a
            checkpoint) is replaced as a whole. It must hold nothing else.
        name: the reproduction's name.
        arrays: ``{key: (dims, array)}`` with ``len(dims) == array.ndim``.
        coords, config, wall_time, status, extra: recorded in ``results.json``.
        fingerprint: the run's fingerprint (default: :func:`fingerprint` of ``config``).
        figures: ``figures(results, directory) -> paths`` draws the figures into the new
            directory before it replaces ``out_dir``.
        claims: ``claims(results) -> records`` judges the reproduction's claims on the
            arrays (:func:`jaxreg_lab.claims.evaluate_all`); recorded under ``claims``.

    Returns:
        ``Path(out_dir)``.
    """
    out = Path(out_dir)
    foreign = foreign_entries(out)
    if foreign:
        raise ResultsError(
            f"out_dir {out} holds files that are not results ({', '.join(foreign[:3])}); "
            "choose an empty or new directory"
        )
    dims, data = {}, {}
    for key, (d, arr) in arrays.items():
        arr = np.asarray(arr)
        if len(d) != arr.ndim:
            raise ValueError(f"array {key!r} has {arr.ndim} dimensions but {len(d)} names {d}")
        dims[key] = list(d)
        data[key] = arr
    fp = dict(fingerprint) if fingerprint is not None else _make_fingerprint(config or {})
    _store.recover_dir(out)
    tmp = _store.new_sibling(out)
    try:
        blob = _store.npz_bytes(data)
        _store.write_file(tmp / ARRAYS, blob)
        _keep_metrics_log(out, tmp)
        meta = {
            "name": name,
            "dims": dims,
            "coords": as_json(dict(coords or {})),
            "config": as_json(config if config is not None else {}),
            "precision": fp["precision"],
            "fingerprint": fp,
            "arrays_sha256": _store.sha256(blob),
            "versions": package_versions(),
            "wall_time_s": wall_time,
            "status": status,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **as_json(dict(extra or {})),
        }
        if claims is not None:
            meta["claims"] = as_json(
                claims(
                    Results(name, data, {k: tuple(v) for k, v in dims.items()}, meta["coords"], meta["config"], meta)
                )
            )
        _store.write_file(tmp / META, json.dumps(meta, indent=2).encode())
        if figures is not None:
            figures(load_results(tmp), tmp)
        _store.replace_dir(tmp, out)
    except BaseException:
        _store.remove_tree(tmp)
        raise
    return out


def _keep_metrics_log(out: Path, tmp: Path) -> None:
    """Copy the run's per-chunk log (``metrics.jsonl``) into the directory that replaces ``out``."""
    if (out / METRICS_LOG).is_file():
        _store.write_file(tmp / METRICS_LOG, (out / METRICS_LOG).read_bytes())


def write_claims(out_dir, records: list[dict]) -> Path:
    """Record ``records`` as the ``claims`` of the saved results in ``out_dir``, the rest
    of ``results.json`` unchanged (written atomically). The arrays are checked first.

    Arguments:
        out_dir: a complete results directory.
        records: claim records judged on its arrays (:func:`jaxreg_lab.claims.evaluate_all`).

    Returns:
        The path of ``results.json``.
    """
    path = Path(out_dir) / META
    load_results(out_dir)
    meta = _store.read_json(path)
    meta["claims"] = as_json(records)
    _store.atomic_write_bytes(path, json.dumps(meta, indent=2).encode())
    return path


def _check_schema(path: Path, meta: dict) -> None:
    def bad(what):
        raise ResultsError(f"{path}: {what}")

    for key, kind in (("name", str), ("dims", dict), ("coords", dict), ("config", dict)):
        if not isinstance(meta.get(key), kind):
            bad(f"field {key!r} is missing or not a {kind.__name__}")
    for key, d in meta["dims"].items():
        if not isinstance(d, list) or not all(isinstance(n, str) for n in d):
            bad(f"dims of {key!r} must be a list of names, got {d!r}")
    status = meta.get("status")
    if status is not None:
        from jaxreg.dynamics.trajectory import Status

        if not isinstance(status, list) or not all(s in Status.NAMES for s in status):
            bad(f"status must be a list of {Status.NAMES}, got {status!r}")


def _check_shapes(path: Path, meta: dict, arrays: dict) -> None:
    dims, coords = meta["dims"], meta["coords"]
    if set(arrays) != set(dims):
        raise ResultsError(f"{path.parent / ARRAYS} holds arrays {sorted(arrays)} but {path} describes {sorted(dims)}")
    for key, d in dims.items():
        shape = arrays[key].shape
        if len(shape) != len(d):
            raise ResultsError(f"{path.parent / ARRAYS}: array {key!r} has shape {shape}, dims {d}")
        for n, dim in zip(shape, d):
            if dim in coords and len(coords[dim]) != n:
                raise ResultsError(
                    f"{path.parent / ARRAYS}: array {key!r} has {n} entries along {dim!r} "
                    f"but {path} lists {len(coords[dim])} coordinates"
                )


def load_results(out_dir) -> Results:
    """Load and check a results directory written by :func:`save_results`.

    Arguments:
        out_dir: the results directory.

    Returns:
        The :class:`Results`, after checking the arrays' checksum, the schema, the array
        shapes against the coordinates and the status names.

    Raises:
        ResultsError: no or inconsistent results (one line naming the file).
        CorruptFile: a file that cannot be read or fails its checksum.
    """
    out = Path(out_dir)
    path = out / META
    if not out.is_dir():
        raise ResultsError(f"{out} holds no complete results (no such directory)")
    if not path.exists():
        raise ResultsError(f"{out} holds no complete results ({META} is missing)")
    meta = _store.read_json(path)
    _check_schema(path, meta)
    if not (out / ARRAYS).exists():
        raise ResultsError(f"{out / ARRAYS} is missing")
    blob = (out / ARRAYS).read_bytes()
    recorded = meta.get("arrays_sha256")
    if recorded is not None and recorded != _store.sha256(blob):
        raise CorruptFile(f"{out / ARRAYS} does not match {path} (checksum differs): corrupt or from another run")
    arrays = _store.read_npz(out / ARRAYS, blob)
    _check_shapes(path, meta, arrays)
    dims = {k: tuple(v) for k, v in meta.pop("dims").items()}
    return Results(meta["name"], arrays, dims, meta.pop("coords"), meta.pop("config"), meta)


def results_dirs(root) -> dict[str, Path]:
    """The results directories directly under ``root``: those holding a ``results.json``.

    Arguments:
        root: a directory (absent: none found).

    Returns:
        ``{directory name: path}``, sorted by name.
    """
    root = Path(root)
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / META).is_file()}
