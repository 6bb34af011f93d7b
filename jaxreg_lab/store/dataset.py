"""Saved results as an :class:`xarray.Dataset`, and their export to netCDF or Zarr.

The on-disk format (``arrays.npz`` + ``results.json``, :mod:`jaxreg_lab.store.results`) is read by
:func:`jaxreg_lab.store.results.load_results` without xarray; this module, imported only when a
Dataset is asked for, names what it holds: every saved array is a data variable over
its saved dimensions, every coordinate list whose name is a dimension is that
dimension's coordinate, and the rest of ``results.json`` becomes attributes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jaxreg_lab.store import files as _store
from jaxreg_lab.store.results import load_results

FORMATS = ("netcdf", "zarr")
SUFFIXES = {"netcdf": ".nc", "zarr": ".zarr"}


def _xarray():
    try:
        import xarray
    except ImportError:  # a dependency; absent only in a hand-made environment
        raise ImportError("jaxreg_lab.store.results.load needs xarray (pip install xarray)") from None
    return xarray


def _coordinate(values: list) -> np.ndarray:
    """A coordinate's values as an array: nested entries (e.g. a set of modes) as their JSON text."""
    if any(isinstance(v, (list, dict)) for v in values):
        return np.asarray([json.dumps(v) for v in values])
    return np.asarray(values)


def _attr(value):
    """A value netCDF can hold as an attribute: strings and numbers as they are, anything
    else (mappings, lists, booleans, None) as its JSON text."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value
    return json.dumps(value)


def netcdf_attrs(attrs) -> dict:
    """``attrs`` as netCDF can hold them: strings and numbers as they are, the rest (the
    config and fingerprint tables, lists, booleans, None) as JSON text; what ``jaxreg
    export`` writes.

    Arguments:
        attrs: a Dataset's attributes (:func:`to_dataset`: JSON values).

    Returns:
        The converted attributes.
    """
    return {k: _attr(v) for k, v in attrs.items()}


def status_dims(results) -> tuple[str, ...] | None:
    """The grid dimensions that ``results.json``'s per-run ``status`` list lies on.

    The list holds one status per run, flattened in C order over the runs' grid, whose
    last axis is ``seed`` (e.g. ``(seed,)`` or ``(init_scale, seed)``; some reproductions
    loop a grid inside each run, e.g. depth, and keep one status per seed). The grid is
    read from the saved arrays: the longest run of an array's dimensions that ends at
    ``seed`` and whose coordinate lengths multiply to the number of statuses.

    Arguments:
        results: loaded :class:`jaxreg_lab.store.results.Results`.

    Returns:
        The dimension names, or None when no array's dimensions fit (no ``seed``
        dimension, or a status list of another length).
    """
    status = results.meta.get("status")
    if not isinstance(status, list):
        return None
    sizes = {d: len(v) for d, v in results.coords.items() if isinstance(v, list)}
    best: tuple[str, ...] | None = None
    for dims in results.dims.values():
        if "seed" not in dims:
            continue
        end = dims.index("seed") + 1
        for start in range(end):
            grid = tuple(dims[start:end])
            if all(d in sizes for d in grid) and int(np.prod([sizes[d] for d in grid])) == len(status):
                if best is None or len(grid) > len(best):
                    best = grid
                break
    return best


def to_dataset(results):
    """An :class:`xarray.Dataset` of loaded results.

    Data variables: every array of ``arrays.npz`` over its saved dimensions (an integer
    ``status`` array carries CF ``flag_values`` / ``flag_meanings`` naming the
    :class:`jaxreg.Status` codes), and ``run_status``, the names in ``results.json``'s
    ``status`` list laid on the runs' grid dimensions (:func:`status_dims`, e.g.
    ``(init_scale, seed)``; a dimension ``run`` when no grid fits). Coordinates: each
    saved coordinate list whose name is a dimension (nested entries as JSON text).
    Attributes: ``name``, ``config`` (a dict), the other fields of ``results.json``
    (fingerprint, precision, versions, wall time, claims, ...) as their JSON values, and
    any other coordinate as ``coord_<name>``; :func:`export` writes the non-scalar ones
    to netCDF as JSON text (:func:`netcdf_attrs`).

    Arguments:
        results: a :class:`jaxreg_lab.store.results.Results`.

    Returns:
        The Dataset.
    """
    from jaxreg.dynamics.trajectory import Status

    xr = _xarray()
    data = {k: (results.dims[k], np.asarray(v)) for k, v in results.arrays.items()}
    used = {d for dims in results.dims.values() for d in dims}
    coords, attrs = {}, {"name": results.name, "config": results.config}
    for name, values in results.coords.items():
        if name in used and name not in data and isinstance(values, list):
            coords[name] = _coordinate(values)
        else:
            attrs[f"coord_{name}"] = values
    meta = dict(results.meta)
    status = meta.pop("status", None)
    if status is not None and "run_status" not in data:
        grid = status_dims(results)
        if grid is None:
            data["run_status"] = (("run",), np.asarray(status, dtype=str))
        else:
            shape = [len(results.coords[d]) for d in grid]
            data["run_status"] = (grid, np.asarray(status, dtype=str).reshape(shape))
    attrs.update(meta)
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    if "status" in ds and ds["status"].dtype.kind in "iu":
        ds["status"].attrs.update(
            flag_values=np.arange(len(Status.NAMES), dtype=np.int32), flag_meanings=" ".join(Status.NAMES)
        )
    return ds


def load(out_dir, *, trust_edited: bool = False):
    """The results in ``out_dir`` as an :class:`xarray.Dataset` (:func:`to_dataset`), as
    ``jaxreg_lab.store.results.load``: every saved array a data variable over its named dimensions,
    with its coordinates, ``results.json``'s config and fingerprint as attributes (dicts)
    and the statuses as ``run_status`` on the runs' grid. Checked as :func:`jaxreg_lab.store.results.load_results` checks
    it (which returns the plain NumPy form and needs no xarray).

    Arguments:
        out_dir: a results directory written by :func:`jaxreg_lab.store.results.save_results`.
        trust_edited: read an edited or unsealed ``results.json`` (refused by default).

    Returns:
        The ``xarray.Dataset``.
    """
    return to_dataset(load_results(out_dir, trust_edited=trust_edited))


class ExportError(ValueError):
    """An export that was refused or failed; whatever ``path`` held is unchanged."""


def _is_ours(path: Path) -> str | None:
    """What ``path`` holds that an export must never replace: results, a checkpoint, or a
    directory that is not a Zarr store; None when it is a file or a Zarr store."""
    from jaxreg_lab.store.checkpoints import MANIFEST
    from jaxreg_lab.store.results import ARRAYS, CHECKPOINT, META

    if CHECKPOINT in path.parts:
        return "a checkpoint"
    if not path.is_dir():
        return None
    if (path / META).exists() or (path / ARRAYS).exists():
        return "a results directory"
    if (path / CHECKPOINT).exists() or (path / MANIFEST).exists():
        return "a checkpoint"
    if not ((path / ".zgroup").exists() or (path / "zarr.json").exists()):
        return "a directory that is not a Zarr store"
    return None


def export_target(results_dir, fmt: str, path=None, *, force: bool = False) -> tuple[Path, Path]:
    """Check an export before anything is read or written: the source, and a target that
    is neither the source, inside it, around it, nor something an export never replaces
    (:func:`_is_ours`: results, checkpoints, a directory that is not a Zarr store; a
    netCDF target must not be a directory).

    Arguments:
        results_dir, fmt, path, force: as in :func:`export`.

    Returns:
        ``(source, target)``, both resolved; the default target is ``<dir>.nc`` /
        ``<dir>.zarr`` beside the directory (also for ``.``).

    Raises:
        ExportError: one line naming the path and what is wrong.
        FileExistsError: ``path`` exists and ``force`` is False.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    try:
        src = Path(results_dir).resolve()
        target = Path(path).resolve() if path is not None else src.parent / (src.name + SUFFIXES[fmt])
    except (RuntimeError, OSError) as e:  # a symbolic link loop
        raise ExportError(f"cannot resolve the export paths ({getattr(e, 'strerror', None) or e})") from None
    if target.parts[1:2] in (("proc",), ("sys",), ("dev",)):
        raise ExportError(f"{target} is under /{target.parts[1]}, not a place for an export")
    if target == src or src in target.parents or target in src.parents:
        raise ExportError(f"{target} is the results directory {src} or contains it or lies inside it")
    if _is_ours(target.parent) == "a results directory":
        raise ExportError(f"{target} lies inside the results directory {target.parent}; choose a path outside it")
    what = _is_ours(target)
    if what is not None:
        raise ExportError(f"{target} is {what}; an export never replaces one")
    if fmt == "netcdf" and target.is_dir():
        raise ExportError(f"{target} is a directory; a netCDF export writes a file")
    if fmt == "zarr" and target.exists() and not target.is_dir():
        raise ExportError(f"{target} is a file; a Zarr export writes a directory")
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists")
    if not target.parent.is_dir():
        raise ExportError(f"{target.parent} is not a directory")
    return src, target


def export(results_dir, fmt: str, path=None, *, force: bool = False, trust_edited: bool = False) -> Path:
    """Write the results in ``results_dir`` as one netCDF file or Zarr store.

    netCDF is written by xarray's scipy engine (netCDF3, 64-bit offsets: xarray stores
    64-bit integers as 32-bit ones, raising if a value does not fit, and booleans as
    bytes); Zarr needs the optional ``zarr`` package. In both, the attributes that are not
    strings or numbers (the config, the fingerprint, ...) are written as JSON text
    (:func:`netcdf_attrs`): ``json.loads`` gives them back. An export never replaces a
    results directory, a checkpoint, its own source or a directory that is not a Zarr
    store (:func:`export_target`), and writes atomically: on any failure (a full disk, no
    permission) the old file or store stays as it was.

    Arguments:
        results_dir: a results directory (:func:`jaxreg_lab.store.results.save_results`).
        fmt: ``"netcdf"`` or ``"zarr"``.
        path: the file or store to write; default the directory's sibling
            ``<results_dir>.nc`` / ``<results_dir>.zarr``.
        force: replace an existing ``path`` (a netCDF file, a Zarr store).
        trust_edited: read an edited or unsealed ``results.json``
            (:func:`jaxreg_lab.store.results.load_results`).

    Returns:
        The path written (atomically: a reader finds the old one or the new one).

    Raises:
        ExportError: a refused target or a failed write (one line; nothing replaced).
        FileExistsError: ``path`` exists and ``force`` is False.
        ImportError: Zarr output without the zarr package.
    """
    from jaxreg_lab.store.results import load_results

    if fmt == "zarr":
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise ImportError("Zarr output needs the zarr package: pip install 'jaxreg[zarr]'") from None
    src, path = export_target(results_dir, fmt, path, force=force)
    ds = to_dataset(load_results(src, trust_edited=trust_edited))
    ds.attrs = netcdf_attrs(ds.attrs)
    try:
        if fmt == "netcdf":
            _store.atomic_write_bytes(path, bytes(ds.to_netcdf()))
            return path
        _store.recover_dir(path)
        tmp = _store.new_sibling(path)
        try:
            ds.to_zarr(tmp / "store", mode="w")
            _store.replace_dir(tmp / "store", path)
        finally:
            _store.remove_tree(tmp)
    except OSError as e:
        raise ExportError(f"cannot write {path} ({e.strerror or e}); nothing was replaced") from None
    return path
