import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from helpers import xla_env

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


@pytest.mark.slow  # superseded in the default run by the bit-for-bit test below
def test_sweep_sharded_over_4_devices_equals_loop():
    env = xla_env(device_count=4)
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, check=True)
    ndev, diff, scale = out.stdout.split()
    assert int(ndev) == 4
    assert float(diff) <= 1e-9 * float(scale)
    assert float(scale) > 0.1


BITWISE = textwrap.dedent(
    """
    import sys, jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    import jaxreg as jr
    problem = jr.tasks.matrix_completion(jax.random.key(0), (12, 10), 2, 50)
    def experiment(key, scale):
        m = jr.MatrixFactorization(key, (12, 10), 2, init_scale=scale)
        # no batched LAPACK call in the metrics: chunk_size 16 on several CPU devices could
        # hang in one (see jr.sweep and test_sweep_default_on_several_cpu_devices_does_not_hang)
        return jr.gradient_flow(problem.loss, m, 30.0, metrics=lambda m: m.materialize()[:3])
    keys = jax.random.split(jax.random.key(1), 64)
    scales = np.linspace(0.05, 0.3, 64)
    out = jr.sweep(experiment, keys, scales, chunk_size=16)
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(out)]
    if len(jax.devices()) > 1:
        one = jr.sweep(experiment, keys, scales, chunk_size=16, devices=jax.devices()[:1])
        same = all(np.array_equal(a, np.asarray(b)) for a, b in zip(leaves, jax.tree_util.tree_leaves(one)))
        print("in-process-equal", same)
    np.savez(sys.argv[1], *leaves)
    print("devices", len(jax.devices()))
    """
)


def test_sweep_sharded_equals_unsharded_bit_for_bit(tmp_path):
    """64 seeds over 4 simulated devices equal one device bit for bit: in the same
    process (devices=[one]) and in a separate 1-device process with the same chunk_size."""
    four, one = tmp_path / "four.npz", tmp_path / "one.npz"
    env4 = xla_env(device_count=4)
    env1 = xla_env()
    out4 = subprocess.run(
        [sys.executable, "-c", BITWISE, str(four)], capture_output=True, text=True, env=env4, check=True
    ).stdout
    out1 = subprocess.run(
        [sys.executable, "-c", BITWISE, str(one)], capture_output=True, text=True, env=env1, check=True
    ).stdout
    assert "in-process-equal True" in out4 and "devices 4" in out4, out4
    assert "devices 1" in out1, out1
    with np.load(four) as a, np.load(one) as b:
        assert a.files == b.files and len(a.files) > 3
        for name in a.files:
            assert a[name].shape[0] == 64 and np.array_equal(a[name], b[name]), name
        assert float(np.max(np.abs(a["arr_0"]))) > 0


HANG = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, optax
    import jaxreg as jr
    problem = jr.tasks.matrix_completion(jax.random.key(0), (30, 30), 3, 300)
    def experiment(key):
        m = jr.MatrixFactorization(key, (30, 30), 3, init_scale=0.1)
        return jr.gradient_descent(problem.loss, m, optax.sgd(0.5), 20, metrics=lambda m: m.component_norms()).metrics
    keys = jax.random.split(jax.random.key(1), 8)
    for _ in range(3):
        out = jax.block_until_ready(jr.sweep(experiment, keys))
    print("done", len(jax.devices()), out.shape, bool(jnp.all(jnp.isfinite(out))))
    """
)


def test_sweep_default_on_several_cpu_devices_does_not_hang():
    """SVD metrics in a sweep over 2 CPU devices: with a vmapped chunk per device,
    jaxlib's batched LAPACK kernels deadlocked the 2-thread intra-op pool (jaxlib 0.10.2);
    the default chunk size on several CPU devices (1) must finish."""
    env = xla_env(device_count=2)
    out = subprocess.run(
        [sys.executable, "-c", HANG], capture_output=True, text=True, env=env, check=True, timeout=240
    ).stdout
    assert "done 2 (8, 21, 30) True" in out, out


def test_sweep_chunk_size_pads_and_cuts():
    """A chunk size that does not divide the batch: padded, mapped, cut; equals vmap closely."""
    keys = jax.random.split(jax.random.key(0), 7)
    fn = lambda k, x: (jax.random.normal(k, (3,)) * x, 2.5)  # noqa: E731 (non-array output kept)
    out, const = jr.sweep(fn, keys, np.arange(7.0), chunk_size=3)
    ref = jax.vmap(lambda k, x: jax.random.normal(k, (3,)) * x)(keys, np.arange(7.0))
    assert out.shape == (7, 3) and const == 2.5
    np.testing.assert_allclose(out, ref, rtol=1e-6)

    with pytest.raises(ValueError, match="chunk_size"):
        jr.sweep(fn, keys, np.arange(7.0), chunk_size=0)


def test_sweep_chunk_one_runs_fn_unbatched():
    """chunk_size 1 maps fn itself (no vmap of size 1, whose batched matmuls XLA's CPU
    backend runs slower): no dot in the program has a batch dimension, the non-array
    output is kept, and every run equals fn on its own."""
    from jaxreg._sweep import _chunked

    keys = jax.random.split(jax.random.key(0), 3)
    mats = jax.random.normal(jax.random.key(1), (3, 4, 4))
    fn = lambda k, a: (a @ a.T @ jax.random.normal(k, (4,)), "label")  # noqa: E731
    static: list = []
    jaxpr = jax.make_jaxpr(lambda k, a: _chunked(fn, 1, static)(k, (a,)))(keys, mats)
    dots = [e for e in _equations(jaxpr.jaxpr) if e.primitive.name == "dot_general"]
    assert len(dots) == 2
    assert all(e.params["dimension_numbers"][1] == ((), ()) for e in dots)
    out, label = jr.sweep(fn, keys, mats, chunk_size=1)
    assert label == "label" and out.shape == (3, 4)
    for i in range(3):
        np.testing.assert_allclose(out[i], fn(keys[i], mats[i])[0], rtol=1e-6)


def _equations(jaxpr):
    """Every equation of ``jaxpr``, sub-jaxprs (loops, maps) included."""
    for e in jaxpr.eqns:
        yield e
        for p in e.params.values():
            for sub in p if isinstance(p, (list, tuple)) else [p]:
                inner = getattr(sub, "jaxpr", None)
                if inner is not None:
                    yield from _equations(getattr(inner, "jaxpr", inner))


def test_sweep_reuses_its_compiled_program():
    """A second call with the same fn and shapes neither traces nor compiles again, and
    still returns fn's non-array outputs; new values give new results."""
    traces = []

    def fn(k, x):
        traces.append(1)
        return jax.random.normal(k, (3,)) * x, "label"

    keys = jax.random.split(jax.random.key(0), 6)
    scales = np.arange(1.0, 7.0)
    first, label = jr.sweep(fn, keys, scales, chunk_size=2)
    again, label2 = jr.sweep(fn, keys, 2 * scales, chunk_size=2)
    assert len(traces) == 1 and label == label2 == "label"
    np.testing.assert_allclose(again, 2 * first, rtol=1e-6)
    jr.sweep(fn, keys, scales, chunk_size=3)  # another chunk size is another program
    assert len(traces) == 2


def test_sweep_single_device_and_bad_input():
    out = jr.sweep(lambda k, x: jax.random.normal(k, (3,)) * x, jax.random.split(jax.random.key(0), 5), np.arange(5.0))
    assert out.shape == (5, 3) and float(np.abs(out[0]).sum()) == 0.0

    with pytest.raises(ValueError, match="leading axis"):
        jr.sweep(lambda k, x: x, jax.random.split(jax.random.key(0), 5), np.arange(4.0))
