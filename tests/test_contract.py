"""The driver over the reproduction contract, on a synthetic reproduction whose every
number is known: each run's chunks, its worst status, the declared dims, the checks."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg as jr
from jaxreg_lab import driver
from jaxreg_lab.contract import Final, Reproduction, Setup


@dataclasses.dataclass(frozen=True)
class Config:
    seeds: int = 3
    num_chunks: int = 2
    per_chunk: int = 2


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
        return Setup(x, jnp.zeros_like(x), config.num_chunks, (2, config.seeds), coords, {"note": 1})

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


def test_extra_may_summarize_the_assembled_arrays():
    class Summed(Counting):
        def extra(self, config, setup, arrays):
            return {**setup.extra, "total": float(arrays["final"].sum())}

    res = driver.run_reproduction(Summed(), Config(), progress=False)
    assert res["extra"] == {"note": 1, "total": 4 * (3 + 33)}  # each final state is 4 x


def test_reproductions_compare_by_class():
    assert Counting() == Counting() and hash(Counting()) == hash(Counting())
    assert Counting() != type("Other", (Counting,), {})()
