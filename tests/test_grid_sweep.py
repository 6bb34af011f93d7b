"""jr.grid_sweep: a labelled grid of experiments; float fields vmapped, the others looped."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import xarray as xr

import jaxreg as jr

KEYS = jr.seed_keys(0, 3)


def _seed_id(key):
    return jax.random.key_data(key)[-1].astype(jnp.float64)


def test_every_cell_holds_its_own_setting_and_seed():
    """Two vmapped and two looped fields, in mixed order: each value lands at its labels."""
    seen = []

    def fn(key, a, n, b, shape):
        seen.append((type(n), type(shape), isinstance(a, jax.core.Tracer), isinstance(b, jax.core.Tracer)))
        return {"v": 1000.0 * n + 100.0 * len(shape) + 10.0 * a + b + 0.0 * _seed_id(key), "key": _seed_id(key)}

    grid = {"a": [1.0, 2.0, 3.0], "n": [1, 2], "b": np.array([0.25, 0.5]), "shape": [(4,), (4, 4)]}
    ds = jr.grid_sweep(fn, grid, KEYS)
    assert isinstance(ds, xr.Dataset)
    assert ds.v.dims == ("a", "n", "b", "shape", "seed")
    assert ds.attrs["looped"] == "n,shape" and ds.attrs["vmapped"] == "a,b"
    assert list(ds.shape.values) == ["(4,)", "(4, 4)"] and list(ds.seed.values) == [0, 1, 2]
    assert {s[:2] for s in seen} == {(int, tuple)} and all(s[2] and s[3] for s in seen)
    assert len(seen) == 4  # one trace per looped combination
    a, n, b, length = np.meshgrid([1.0, 2.0, 3.0], [1, 2], [0.25, 0.5], [1, 2], indexing="ij")
    expected = 1000.0 * n + 100.0 * length + 10.0 * a + b
    np.testing.assert_array_equal(ds.v.values, np.broadcast_to(expected[..., None], ds.v.shape))
    ids = np.asarray(jax.vmap(_seed_id)(KEYS))
    np.testing.assert_array_equal(ds.key.values, np.broadcast_to(ids, ds.key.shape))


def _experiment(key, init_scale, depth):
    kp, km = jax.random.split(key)
    problem = jr.tasks.matrix_completion(kp, (8, 8), 2, 40)
    model = jr.MatrixFactorization(km, (8, 8), depth, init_scale=init_scale)
    traj = jr.gradient_descent(problem.loss, model, optax.sgd(0.2), 4, save_every=2)
    return {"error": problem.reconstruction_error(traj.model), "loss": traj.loss}


def test_depth_is_looped_and_equals_jr_sweep_by_hand():
    """The grid equals the tile/repeat/reshape it replaces, bit for bit; the loss's own
    axis gets the name from ``dims``."""
    scales = [0.3, 0.1]
    ds = jr.grid_sweep(_experiment, {"depth": [2, 3], "init_scale": scales}, KEYS, dims={"loss": ("save",)})
    assert ds.error.dims == ("depth", "init_scale", "seed") and ds.loss.dims == ("depth", "init_scale", "seed", "save")
    keys = jnp.tile(KEYS, (2,))
    s = jnp.repeat(jnp.asarray(scales), 3)
    out = jr.sweep(lambda k, x: _experiment(k, x, 3), keys, s)
    np.testing.assert_array_equal(ds.error.sel(depth=3).values, np.asarray(out["error"]).reshape(2, 3))
    np.testing.assert_array_equal(ds.loss.sel(depth=3).values, np.asarray(out["loss"]).reshape(2, 3, -1))
    assert not np.array_equal(ds.error.sel(depth=2).values, ds.error.sel(depth=3).values)


def test_loop_forces_a_float_field_into_python_and_trajectories_are_named():
    got = []

    def fn(key, scale):
        got.append(type(scale))
        m = jr.MatrixFactorization(key, (4, 4), 2, init_scale=scale)
        return jr.gradient_descent(lambda m: jnp.sum(m.materialize() ** 2), m, optax.sgd(0.1), 2)

    ds = jr.grid_sweep(fn, {"scale": [0.1, 0.2]}, KEYS[:2], loop=["scale"])
    assert got == [float, float]
    assert {"loss", "status", "num_steps", "ts"} <= set(ds.data_vars)
    assert any(name.startswith("model.factors") for name in ds.data_vars)
    assert ds.loss.dims == ("scale", "seed", "loss_dim_0")


@pytest.mark.unchecked_types  # a traced depth: the annotation (int) would refuse it first
def test_a_traced_depth_names_the_grid_function():
    """vmapping a shape-changing field by hand: one line saying it must be looped."""
    with pytest.raises(ValueError, match=r"^depth must be a Python value, not a traced .*jr\.grid_sweep"):
        jax.vmap(lambda k, d: jr.MatrixFactorization(k, (4, 4), d).materialize())(KEYS[:2], jnp.array([2, 3]))
    with pytest.raises(ValueError, match=r"^shape must be a Python value"):
        jax.vmap(lambda k, s: jr.MatrixFactorization(k, s, 2).materialize())(KEYS[:2], jnp.array([[4, 4], [5, 5]]))


@pytest.mark.parametrize(
    "grid, kwargs, match",
    [
        ({}, {}, "grid must be a non-empty mapping"),
        ({"seed": [1.0]}, {}, "identifiers other than 'seed'"),
        ({"x": 1.0}, {}, r"grid\['x'\] must be a sequence"),
        ({"x": []}, {}, "at least one value"),
        ({"x": [1.0]}, {"loop": ["y"]}, "loop names 'y'"),
        ({"x": [1.0]}, {"dims": {"v": ("a", "b")}}, r"dims\['v'\] names 2 axes"),
    ],
)
@pytest.mark.unchecked_types  # grid={"x": 1.0} is ill-typed on purpose
def test_bad_arguments_are_one_line(grid, kwargs, match):
    with pytest.raises(ValueError, match=match):
        jr.grid_sweep(lambda k, x: {"v": jnp.zeros(3) + x}, grid, KEYS, **kwargs)


def test_outputs_of_another_shape_in_another_setting_are_refused():
    with pytest.raises(ValueError, match=r"'v' has shape \(2,\) at n=2 but shape \(3,\) at n=3"):
        jr.grid_sweep(lambda k, n: {"v": jnp.zeros(n)}, {"n": [2, 3]}, KEYS)
