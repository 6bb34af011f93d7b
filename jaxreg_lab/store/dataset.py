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


def load(out_dir):
    """The results in ``out_dir`` as an :class:`xarray.Dataset` (:func:`to_dataset`), as
    ``jaxreg_lab.store.results.load``: every saved array a data variable over its named dimensions,
    with its coordinates, ``results.json``'s config and fingerprint as attributes (dicts)
    and the statuses as ``run_status`` on the runs' grid. Checked as :func:`jaxreg_lab.store.results.load_results` checks
    it (which returns the plain NumPy form and needs no xarray).

    Arguments:
        out_dir: a results directory written by :func:`jaxreg_lab.store.results.save_results`.

    Returns:
        The ``xarray.Dataset``.
    """
    return to_dataset(load_results(out_dir))


def export(results_dir, fmt: str, path=None, *, force: bool = False) -> Path:
    """Write the results in ``results_dir`` as one netCDF file or Zarr store.

    netCDF is written by xarray's scipy engine (netCDF3, 64-bit offsets: xarray stores
    64-bit integers as 32-bit ones, raising if a value does not fit, and booleans as
    bytes); Zarr needs the optional ``zarr`` package. In both, the attributes that are not
    strings or numbers (the config, the fingerprint, ...) are written as JSON text
    (:func:`netcdf_attrs`): ``json.loads`` gives them back.

    Arguments:
        results_dir: a results directory (:func:`jaxreg_lab.store.results.save_results`).
        fmt: ``"netcdf"`` or ``"zarr"``.
        path: the file or store to write; default the directory's sibling
            ``<results_dir>.nc`` / ``<results_dir>.zarr``.
        force: replace an existing ``path``.

    Returns:
        The path written (atomically: a reader finds the old one or the new one).
    """
    from jaxreg_lab.store.results import load_results

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    src = Path(results_dir)
    path = Path(path) if path is not None else src.parent / (src.name + SUFFIXES[fmt])
    if fmt == "zarr":
        try:
            import zarr  # noqa: F401
        except ImportError:
            raise ImportError("Zarr output needs the zarr package: pip install 'jaxreg[zarr]'") from None
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists")
    ds = to_dataset(load_results(src))
    ds.attrs = netcdf_attrs(ds.attrs)
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
    return path
