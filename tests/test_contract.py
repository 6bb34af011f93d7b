"""The driver over the reproduction contract, on a synthetic reproduction whose every
number is known: each run's chunks, its worst status, the declared dims, the checks."""

import ast
import dataclasses
import importlib
import inspect
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import xla_env

import jaxreg as jr
from jaxreg_lab import driver
from jaxreg_lab.contract import EpochReproduction, Final, Reproduction, Setup
from jaxreg_lab.registry import REPRODUCTIONS


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 3
    num_chunks: int = 2
    per_chunk: int = 2
    chunk_size: int | None = None
    options: dict = dataclasses.field(default_factory=dict)  # a table field: the config is unhashable


class Counting(Reproduction):
    """Run (scale i, seed s) adds its input x = 10 i + s to its state every save; seed 1
    of scale 0 hits max_steps in chunk 0 only."""

    name = "counting"
    config = Config

    def outputs(self, config):
        return {"value": ("scale", "seed", "save"), "final": ("scale", "seed"), "steps": ("scale", "seed")}

    def setup(self, config):
        x = jnp.asarray([10.0 * i + s for i in range(2) for s in range(config.seeds)])
        coords = {"scale": [0, 1], "seed": list(range(config.seeds))}
        return Setup(x, jnp.zeros_like(x), config.num_chunks, (2, config.seeds), coords, {"note": 1}, config.chunk_size)

    def chunk(self, config, x, state, k):
        values = state + x * jnp.arange(1, config.per_chunk + 1)
        bad = (x == 1.0) & (k == 0)
        status = jnp.where(bad, jr.Status.MAX_STEPS, jr.Status.COMPLETED)
        return values[-1], status, {"value": values, "steps": jnp.asarray(1)}

    def assemble(self, config, setup, final: Final):
        return {"value": final.data["value"], "final": np.asarray(final.state), "steps": final.data["steps"]}

    def plot(self, results, out_dir):
        return []

    def summary(self, results):
        return ""


def test_driver_runs_chunks_merges_statuses_and_lays_out_dims():
    res = driver.run_reproduction(Counting(), Config(), progress=False)
    dims, value = res["arrays"]["value"]
    assert dims == ("scale", "seed", "save") and value.shape == (2, 3, 4)
    x = np.array([[0, 1, 2], [10, 11, 12]], float)
    np.testing.assert_array_equal(value, x[..., None] * np.arange(1, 5))
    np.testing.assert_array_equal(res["arrays"]["final"][1], 4 * x)
    np.testing.assert_array_equal(res["arrays"]["steps"][1], np.full((2, 3), 2))  # summed over chunks
    assert res["status"] == ["completed", "max_steps", "completed"] + ["completed"] * 3
    assert res["coords"]["seed"] == [0, 1, 2] and res["extra"] == {"note": 1}


def test_driver_refuses_arrays_that_break_the_schema():
    class Missing(Counting):
        def assemble(self, config, setup, final):
            return {"value": final.data["value"], "final": np.asarray(final.state)}

    with pytest.raises(ValueError, match="outputs declare"):
        driver.run_reproduction(Missing(), Config(), progress=False)

    class WrongDims(Counting):
        def outputs(self, config):
            return {**super().outputs(config), "final": ("scale",)}

    with pytest.raises(ValueError, match="output final"):
        driver.run_reproduction(WrongDims(), Config(), progress=False)


def test_extra_is_derived_from_the_saved_arrays():
    class Finding(Counting):
        def extra(self, config, setup, arrays):
            return {"largest_final": float(arrays["final"].max())}

    res = driver.run_reproduction(Finding(), Config(), progress=False)
    assert res["extra"] == {"note": 1, "largest_final": 48.0}


def test_reproductions_compare_by_class():
    assert Counting() == Counting() and hash(Counting()) == hash(Counting())
    assert Counting() != type("Other", (Counting,), {})()


@pytest.mark.parametrize("chunk_size", [1, 2, 4, 6, 10])
def test_chunk_size_maps_a_device_slice_in_chunks(chunk_size):
    """``Setup.chunk_size``: the slice runs as a lax.map over chunks of that many runs
    (padded to whole chunks, the padding cut off): every number, status and step count as
    in one vmapped program; a config with a table field (unhashable) runs too."""
    res = driver.run_reproduction(Counting(), Config(chunk_size=chunk_size, options={"a": 1}), progress=False)
    ref = driver.run_reproduction(Counting(), Config(), progress=False)
    assert res["status"] == ref["status"]
    for name, (dims, value) in ref["arrays"].items():
        assert res["arrays"][name][0] == dims and np.array_equal(res["arrays"][name][1], value), name


def test_layout_of_runs_over_devices():
    # (runs, devices, chunk_size) -> (runs per device, runs per program)
    assert driver._layout(6, 1, None) == (6, 6)
    assert driver._layout(7, 2, None) == (4, 4)
    assert driver._layout(3, 4, None) == (1, 1)
    assert driver._layout(6, 1, 4) == (8, 4)  # two chunks of 4, two padding runs
    assert driver._layout(7, 2, 2) == (4, 2)
    assert driver._layout(3, 2, 8) == (3, 3)  # a chunk is at most all the runs
    with pytest.raises(ValueError, match="chunk_size"):
        Setup(jnp.zeros(2), jnp.zeros(2), 1, (2,), chunk_size=0)


SVDS = textwrap.dedent(
    """
    import dataclasses, sys
    import jax, jax.numpy as jnp, numpy as np, optax
    jax.config.update("jax_enable_x64", True)
    import jaxreg as jr
    from jaxreg_lab.contract import Reproduction, Setup
    from jaxreg_lab.driver import run_reproduction
    from jaxreg_lab.reproductions._results import per_seed

    @dataclasses.dataclass(frozen=True)
    class Config:
        chunk_size: int | None = None

    class SVDs(Reproduction):
        # 8 runs of GD on 30 x 30 completion, the singular values saved every step: over
        # 2 devices, a vmapped slice of 4 runs per device calls batched SVDs
        name = "svds"
        config = Config
        def outputs(self, config):
            return {"norms": ("run", "step", "component")}
        def setup(self, config):
            problem = jr.tasks.matrix_completion(jax.random.key(0), (30, 30), 3, 300)
            keys = jax.random.split(jax.random.key(1), 8)
            models = per_seed(lambda k: jr.MatrixFactorization(k, (30, 30), 3, init_scale=0.1), keys)
            return Setup(per_seed(lambda k: problem, keys), models, 3, (8,), chunk_size=config.chunk_size)
        def chunk(self, config, problem, model, k):
            sgd = optax.sgd(0.5)
            traj = jr.gradient_descent(problem.loss, model, sgd, 20, metrics=lambda m: m.component_norms())
            return traj.model, traj.status, {"norms": traj.metrics}
        def assemble(self, config, setup, final):
            return {"norms": final.data["norms"]}
        def plot(self, results, out_dir):
            return []
        def summary(self, results):
            return ""

    def norms(chunk_size=None):
        return run_reproduction(SVDs(), Config(chunk_size), progress=False)["arrays"]["norms"][1]
    """
)


def test_vmapped_slices_over_several_cpu_devices_do_not_hang(tmp_path):
    """SVDs in a vmapped slice of 4 runs on each of 2 CPU devices: jr.sweep's one sharded
    program deadlocks jaxlib's batched LAPACK kernels there (hence its chunk_size 1 on
    several CPU devices); the driver's per-device programs finish. With ``chunk_size`` 2
    the 2 devices give the bits of 1 device (this process)."""
    run = SVDS + "np.savez(sys.argv[1], norms(), norms(2)); print('devices', len(jax.devices()))"
    out = tmp_path / "two.npz"
    done = subprocess.run(
        [sys.executable, "-c", run, str(out)],
        env=xla_env(device_count=2, JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0 and "devices 2" in done.stdout, done.stderr[-3000:]
    scope: dict = {}
    exec(SVDS, scope)
    one = scope["norms"](2)
    with np.load(out) as z:
        default, two = z["arr_0"], z["arr_1"]
    assert default.shape == two.shape == (8, 63, 30) and np.all(np.isfinite(default))
    assert np.array_equal(two, one)
    np.testing.assert_allclose(default, one, rtol=1e-10, atol=1e-12)


# what compiles or batches a function: the driver's work, never a reproduction's
_TRANSFORMS = {"jit", "filter_jit", "vmap", "filter_vmap", "pmap", "filter_pmap", "shard_map"}


def _transforms(source: str) -> list[str]:
    """The transforms of ``_TRANSFORMS`` (and ``lax.map``) that ``source`` names, with their lines."""
    found = []
    for node in ast.walk(ast.parse(source)):
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        lax_map = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "lax"
        if name in _TRANSFORMS or (name == "map" and lax_map):
            found.append(f"{node.lineno}: {name}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{node.lineno}: imports {a.name}" for a in node.names if a.name in _TRANSFORMS]
    return found


@pytest.mark.parametrize("stem", ["locality_is_same_class", "locality_pathfinder"])
def test_cnn_reproductions_are_contract_reproductions_with_pure_steps(stem):
    """The CNN reproductions are registered, declare an ``EpochReproduction`` (no ``run`` of
    their own), and neither their modules nor the classes they build on name jit, vmap or
    another transform: the driver compiles and batches their per-run functions."""
    assert stem in {r.module for r in REPRODUCTIONS}
    module = importlib.import_module(f"jaxreg_lab.reproductions.{stem}")
    reproduction = module.REPRODUCTION
    assert isinstance(reproduction, EpochReproduction) and reproduction.name == module.NAME
    assert not hasattr(module, "run") and reproduction.config is module.Config
    sources = {
        inspect.getmodule(cls).__name__ for cls in type(reproduction).__mro__ if cls.__module__.startswith("jaxreg_lab")
    }
    sources -= {"jaxreg_lab.contract"}
    assert {module.__name__, "jaxreg_lab.locality.grids"} <= sources
    found = {name: _transforms(inspect.getsource(importlib.import_module(name))) for name in sorted(sources)}
    assert not any(found.values()), found


def test_transform_check_catches_jit_and_vmap():
    source = "import equinox as eqx\nfrom jax import vmap\nf = eqx.filter_jit(g)\nh = jax.lax.map(g, x)\n"
    assert _transforms(source) == ["2: imports vmap", "3: filter_jit", "4: map"]
