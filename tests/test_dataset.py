"""Saved results as an xarray Dataset (``jaxreg_lab.results.load``) and ``jaxreg export``; the
saved format itself stays readable without xarray."""

import json
import sys

import numpy as np
import pytest
import xarray as xr

import jaxreg_lab.results
from jaxreg_lab import cli
from jaxreg_lab.store.results import load_results, save_results

CONFIG = {"shape": [3, 2], "lr": 0.5}


@pytest.fixture
def saved(tmp_path):
    """A tiny results directory: a grid (init_scale, seed, time) and a status code array."""
    rng = np.random.default_rng(0)
    arrays = {
        "loss": (("init_scale", "seed", "time"), rng.random((2, 3, 4))),
        "status": (("init_scale", "seed"), np.array([[1, 2, 1], [0, 1, 3]])),
        "norms": (("seed", "mode_set"), rng.random((3, 2))),
    }
    coords = {
        "init_scale": [1e-3, 1e-2],
        "seed": [0, 1, 2],
        "time": [0.5, 1.0, 1.5, 2.0],
        "mode_set": [[0, 1], [0, 2]],
        "time_name": "flow time t",
    }
    out = tmp_path / "res"
    status = ["converged", "max_steps", "non_finite"]
    save_results(out, "toy", arrays, coords=coords, config=CONFIG, status=status, extra={"size": "tiny"})
    return out, arrays, coords


def test_load_gives_a_dataset_with_the_saved_dims_coords_and_attrs(saved):
    out, arrays, coords = saved
    ds = jaxreg_lab.results.load(out)
    assert isinstance(ds, xr.Dataset)
    for name, (dims, values) in arrays.items():
        assert ds[name].dims == dims
        np.testing.assert_array_equal(ds[name].values, values)
    for name in ("init_scale", "seed", "time"):
        np.testing.assert_array_equal(ds[name].values, coords[name])
    assert ds["mode_set"].values.tolist() == ["[0, 1]", "[0, 2]"]
    assert ds.attrs["coord_time_name"] == "flow time t"
    assert ds.attrs["name"] == "toy" and ds.attrs["config"] == CONFIG and ds.attrs["size"] == "tiny"
    assert ds.attrs["fingerprint"]["precision"] in ("float32", "float64")
    # one status per seed (the grid's init scales loop inside each run): on the seed axis
    assert ds["run_status"].dims == ("seed",)
    assert ds["run_status"].sel(seed=1).item() == "max_steps"
    meanings = ds["status"].attrs["flag_meanings"].split()
    assert meanings[int(ds["status"].sel(init_scale=1e-3, seed=1))] == "max_steps"
    # selecting by coordinate reads the saved array
    assert float(ds["loss"].sel(init_scale=1e-2, seed=2, time=1.5)) == arrays["loss"][1][1, 2, 2]


def test_export_netcdf_is_readable_and_equal(saved, tmp_path, capsys):
    out, arrays, _ = saved
    path = tmp_path / "toy.nc"
    assert cli.main(["export", str(out), "--format", "netcdf", "--out", str(path)]) == 0
    with xr.open_dataset(path, engine="scipy") as back:
        back = back.load()
    ds = jaxreg_lab.results.load(out)
    xr.testing.assert_equal(back.drop_vars("run_status"), ds.drop_vars("run_status"))
    assert back["run_status"].values.astype(str).tolist() == ds["run_status"].values.tolist()
    assert back["run_status"].dims == ds["run_status"].dims
    # the tables are JSON text in the file, and read back equal
    assert set(back.attrs) == set(ds.attrs) and json.loads(back.attrs["config"]) == CONFIG
    for key, value in ds.attrs.items():
        assert (back.attrs[key] if isinstance(value, (str, int, float)) else json.loads(back.attrs[key])) == value
    # an existing file is never replaced without --force
    assert cli.main(["export", str(out), "--format", "netcdf", "--out", str(path)]) == 2
    assert "--force replaces it" in capsys.readouterr().err
    # default path: beside the results directory
    assert cli.main(["export", str(out), "--format", "netcdf"]) == 0 and (out.parent / "res.nc").is_file()


def test_export_zarr_without_zarr_is_one_line(saved, monkeypatch, capsys):
    out, _, _ = saved
    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr raises ImportError
    assert cli.main(["export", str(out), "--format", "zarr"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "zarr package" in err and not (out.parent / "res.zarr").exists()


def test_the_saved_format_needs_no_xarray(saved, monkeypatch):
    out, arrays, _ = saved
    monkeypatch.setitem(sys.modules, "xarray", None)
    res = load_results(out)
    np.testing.assert_array_equal(res["loss"], arrays["loss"][1])
    with pytest.raises(ImportError, match="needs xarray"):
        jaxreg_lab.results.load(out)


def _grid_results(tmp_path, arrays, coords, status):
    out = tmp_path / "grid"
    save_results(out, "toy", arrays, coords=coords, config=CONFIG, status=status)
    return out


def test_run_status_lies_on_the_runs_grid(tmp_path):
    """A status per (init_scale, seed) run, flattened in C order, is laid on both axes."""
    arrays = {"loss": (("init_scale", "seed", "time"), np.zeros((2, 3, 4)))}
    coords = {"init_scale": [1e-3, 1e-2], "seed": [0, 1, 2], "time": [1, 2, 3, 4]}
    status = ["completed"] * 4 + ["max_steps", "converged"]
    ds = jaxreg_lab.results.load(_grid_results(tmp_path, arrays, coords, status))
    assert ds["run_status"].dims == ("init_scale", "seed")
    assert ds["run_status"].sel(init_scale=1e-2, seed=1).item() == "max_steps"
    assert ds["run_status"].sel(init_scale=1e-2, seed=2).item() == "converged"
    # a status list that fits no grid keeps its own run axis
    (tmp_path / "other").mkdir()
    ds = jaxreg_lab.results.load(_grid_results(tmp_path / "other", arrays, coords, ["completed"] * 5))
    assert ds["run_status"].dims == ("run",)


def test_run_status_of_every_shipped_result_lies_on_its_grid():
    from jaxreg_lab.store.dataset import status_dims
    from jaxreg_lab.store.results import results_dirs

    root = __import__("pathlib").Path(__file__).resolve().parents[1] / "docs" / "results"
    grids = {name: status_dims(load_results(path)) for name, path in results_dirs(root).items()}
    assert grids["matrix-dynamics"] == ("seed",)
    assert grids["matrix-dynamics-depth"] == ("seed",)  # depths loop inside each seed's run
    assert grids["ht-rank"] == ("init_scale", "seed")
    assert grids["sweep-example"] == ("init_scale", "seed")
    assert grids["locality-is-same-class"] == ("distance", "lambda", "seed")
    assert all(grid is not None and grid[-1] == "seed" for grid in grids.values()), grids
