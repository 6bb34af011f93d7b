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


def to_dataset(results):
    """An :class:`xarray.Dataset` of loaded results.

    Data variables: every array of ``arrays.npz`` over its saved dimensions (an integer
    ``status`` array carries CF ``flag_values`` / ``flag_meanings`` naming the
    :class:`jaxreg.Status` codes), and ``run_status`` (dimension ``run``), the names in
    ``results.json``'s ``status`` list. Coordinates: each saved coordinate list whose
    name is a dimension (nested entries as JSON text). Attributes: ``name``, ``config``
    (JSON text), the other fields of ``results.json`` (fingerprint, precision, versions,
    wall time, ...; non-scalars as JSON text) and any other coordinate list as
    ``coord_<name>`` (JSON text).

    Arguments:
        results: a :class:`jaxreg_lab.store.results.Results`.

    Returns:
        The Dataset (its attributes all netCDF-writable).
    """
    from jaxreg.dynamics.trajectory import Status

    xr = _xarray()
    data = {k: (results.dims[k], np.asarray(v)) for k, v in results.arrays.items()}
    used = {d for dims in results.dims.values() for d in dims}
    coords, attrs = {}, {"name": results.name, "config": json.dumps(results.config)}
    for name, values in results.coords.items():
        if name in used and name not in data and isinstance(values, list):
            coords[name] = _coordinate(values)
        else:
            attrs[f"coord_{name}"] = json.dumps(values)
    meta = dict(results.meta)
    status = meta.pop("status", None)
    if status is not None and "run_status" not in data:
        data["run_status"] = (("run",), np.asarray(status, dtype=str))
    attrs.update({k: _attr(v) for k, v in meta.items()})
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    if "status" in ds and ds["status"].dtype.kind in "iu":
        ds["status"].attrs.update(
            flag_values=np.arange(len(Status.NAMES), dtype=np.int32), flag_meanings=" ".join(Status.NAMES)
        )
    return ds


def load(out_dir):
    """The results in ``out_dir`` as an :class:`xarray.Dataset` (:func:`to_dataset`), as
    ``jaxreg_lab.store.results.load``: every saved array a data variable over its named dimensions,
    with its coordinates, and ``results.json``'s config, fingerprint and statuses as
    attributes and ``run_status``. Checked as :func:`jaxreg_lab.store.results.load_results` checks
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
    bytes); Zarr needs the optional ``zarr`` package.

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
