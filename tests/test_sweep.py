import os
import subprocess
import sys
import textwrap

import jax
import numpy as np

import jaxreg as jr

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    import jaxreg as jr
    problem = jr.tasks.matrix_completion(jax.random.key(0), (12, 10), 2, 50)
    def experiment(key, scale):
        m = jr.MatrixFactorization(key, (12, 10), 2, init_scale=scale)
        return jr.gradient_flow(problem.loss, m, 30.0, metrics=lambda m: m.component_norms()).metrics
    keys = jax.random.split(jax.random.key(1), 6)
    scales = np.array([0.1, 0.2, 0.1, 0.3, 0.05, 0.1])
    out = jr.sweep(experiment, keys, scales)
    loop = np.stack([np.asarray(experiment(k, s)) for k, s in zip(keys, scales)])
    print(len(jax.devices()), np.max(np.abs(np.asarray(out) - loop)), float(np.max(np.abs(loop))))
    """
)


def test_sweep_sharded_over_4_devices_equals_loop():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True)
    ndev, diff, scale = out.stdout.split()
    assert int(ndev) == 4
    assert float(diff) <= 1e-9 * float(scale)
    assert float(scale) > 0.1


def test_sweep_single_device_and_bad_input():
    out = jr.sweep(lambda k, x: jax.random.normal(k, (3,)) * x, jax.random.split(jax.random.key(0), 5), np.arange(5.0))
    assert out.shape == (5, 3) and float(np.abs(out[0]).sum()) == 0.0
    import pytest

    with pytest.raises(ValueError, match="leading axis"):
        jr.sweep(lambda k, x: x, jax.random.split(jax.random.key(0), 5), np.arange(4.0))
