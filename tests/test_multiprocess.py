"""Two CPU processes on localhost, one device each, on JAX's multi-controller runtime:
``jr.sweep`` and ``jaxreg sweep --distributed`` (interrupted, then resumed) give every
process the one-process results bit for bit, and only process 0 writes."""

import json
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from helpers import xla_env

import jaxreg as jr
from jaxreg_lab import cli
from jaxreg_lab.store.results import load_results

TIMEOUT_S = 240  # the whole 2-process run; a hang fails the test instead of blocking CI

CONFIG = """
model = "cp"
shape = [4, 4, 4]
rank = 3
target_rank = 1
num_observed = 20
optimizer = "adam"
learning_rate = 0.01
num_steps = 40
num_saves = 4
num_chunks = 2
init_scales = [0.1, 0.3]
seeds = 3
chunk_size = 2
"""

SWEEP = """
import jax, numpy as np
import jaxreg as jr

def setup():  # called after jax.distributed.initialize (nothing may touch a device before)
    problem = jr.tasks.matrix_completion(jax.random.key(0), (8, 6), 2, 20)

    def experiment(key, scale):
        m = jr.MatrixFactorization(key, (8, 6), 3, init_scale=scale)
        return problem.loss(m), m.materialize()

    return experiment, jax.random.split(jax.random.key(1), 7), np.linspace(0.1, 0.4, 7)
"""

# a process's interrupted run: ``interrupted(run)`` calls ``run()`` with the driver's
# run_chunks killed in its second chunk (KeyboardInterrupt, as a crash would), and
# returns once the run has ended on every process (as a new launch would)
INTERRUPTED = textwrap.dedent(
    """
    def interrupted(run):
        from jax.experimental.multihost_utils import sync_global_devices
        from jaxreg_lab import driver

        real = driver.run_chunks

        def failing_run_chunks(step, state, num_chunks, **kw):
            def failing(s, k):
                if k == 1:
                    raise KeyboardInterrupt
                return step(s, k)
            return real(failing, state, num_chunks, **kw)

        driver.run_chunks = failing_run_chunks
        try:
            return run()
        except KeyboardInterrupt:
            return None
        finally:
            driver.run_chunks = real
            sync_global_devices("interrupted run ended")
    """
)

PROCESS = (
    SWEEP
    + INTERRUPTED
    + textwrap.dedent(
        """
    import json, sys
    from pathlib import Path
    # gloo is the CPU collectives' default in jax 0.10; older versions need it named
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_x64", True)  # as tests/conftest.py does for the reference run
    from jaxreg_lab import cli

    pid, port, tmp = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    run = ["sweep", "--config", str(tmp / "tiny.toml"), "--no-progress", "--distributed",
           "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(pid)]
    # process 1 gets its own --out: it must write nothing there
    first = interrupted(lambda: cli.main(run + ["--out", str(tmp / ("shared" if pid == 0 else "process1"))]))
    resumed = cli.main(run + ["--out", str(tmp / "shared"), "--resume"])
    experiment, keys, scales = setup()
    out = jr.sweep(experiment, keys, scales, chunk_size=2)
    np.savez(tmp / f"sweep{pid}.npz", *jax.tree_util.tree_leaves(out))
    only0 = jr.sweep(experiment, keys, scales, chunk_size=2, gather="process0")
    same0 = None if only0 is None else all(np.array_equal(a, b) for a, b in zip(
        jax.tree_util.tree_leaves(only0), jax.tree_util.tree_leaves(out)))
    try:  # process 1 passes other keys: refused on every process
        jr.sweep(experiment, keys if pid == 0 else keys[::-1], scales, chunk_size=2)
        mismatch = None
    except ValueError as e:
        mismatch = str(e)
    print("RESULT", json.dumps({"mismatch": mismatch, "processes": jax.process_count(), "devices": len(jax.devices()),
                                "local": len(jax.local_devices()), "first": first, "resumed": resumed,
                                "types": sorted({type(x).__name__ for x in jax.tree_util.tree_leaves(out)}),
                                "process0_only": only0 is not None, "process0_equal": same0}))
    """
    )
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(script, args_of, n=2, timeout=TIMEOUT_S, check=True):
    """Start ``n`` CPU processes running ``script`` (one device each) and wait for all;
    every one still running at ``timeout`` is killed and the test fails."""
    env = xla_env(JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args_of(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for i in range(n)
    ]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=timeout)[0])
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(
            f"{n} processes still running after {timeout} s:\n" + "\n".join(p.communicate()[0][-2000:] for p in procs)
        )
    if not check:
        return [(p.returncode, out) for p, out in zip(procs, outs)]
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"process {i} exited with {p.returncode}:\n" + "\n\n".join(
            f"process {j}: ...{o[-3000:]}" for j, o in enumerate(outs)
        )
    return [json.loads(out.split("RESULT ", 1)[1].splitlines()[0]) for out in outs]


def test_two_processes_equal_one_process_bit_for_bit(tmp_path):
    (tmp_path / "tiny.toml").write_text(CONFIG)
    port = _free_port()
    results = _launch(PROCESS, lambda i: [str(i), str(port), str(tmp_path)])

    # one process, one device: the same sweep and the same jaxreg sweep, uninterrupted
    scope: dict = {}
    exec(SWEEP, scope)
    ref = jr.sweep(*scope["setup"](), chunk_size=2)
    # jaxreg sweep shards its runs over every device: the one-process reference has the same
    # two devices (one process, two host devices), so its programs are those of the two
    # processes; with another number of devices a run can differ in the last bits
    env = xla_env(device_count=2, JAX_PLATFORMS="cpu")
    one_run = (
        "import sys, jax; jax.config.update('jax_enable_x64', True); from jaxreg_lab import cli; "
        "sys.exit(cli.main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            one_run,
            "sweep",
            "--config",
            str(tmp_path / "tiny.toml"),
            "--out",
            str(tmp_path / "one"),
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    for i, r in enumerate(results):
        assert (r["processes"], r["devices"], r["local"]) == (2, 2, 1), r
        assert r["first"] == 130 and r["resumed"] == 0, r  # interrupted, then resumed to the end
        assert r["types"] == ["ndarray"], r  # host arrays on every process
        assert "every process must pass the same" in r["mismatch"], r
        assert r["process0_only"] == (i == 0) and r["process0_equal"] in ((True,) if i == 0 else (None,)), r
        with np.load(tmp_path / f"sweep{i}.npz") as z:
            leaves = [z[f"arr_{j}"] for j in range(len(z.files))]
        expected = [np.asarray(x) for x in jax.tree_util.tree_leaves(ref)]
        assert len(leaves) == len(expected) == 2
        for a, b in zip(leaves, expected):
            assert a.shape[0] == 7 and np.array_equal(a, b), (i, np.max(np.abs(a - b)))
    assert np.all(expected[0] > 0) and np.all(np.abs(expected[1]).sum(axis=(1, 2)) > 0)

    assert not (tmp_path / "process1").exists()  # process 1 wrote no checkpoint, no results
    shared, one = load_results(tmp_path / "shared"), load_results(tmp_path / "one")
    assert not (tmp_path / "shared" / ".checkpoint").exists() and (tmp_path / "shared" / "sweep.png").exists()
    assert shared.meta["status"] == one.meta["status"] == ["completed"] * 6
    for name in ("loss", "test_loss", "component_norms", "solver_steps"):
        assert np.array_equal(shared[name], one[name], equal_nan=True), name
    assert shared["loss"].shape == (2, 3, 4) and np.all(shared["loss"][..., -1] < shared["loss"][..., 0])


def test_distributed_options_are_checked_before_any_work(capsys):
    for argv, fragment in (
        (["--coordinator", "127.0.0.1:1234"], "need --distributed"),
        (["--distributed", "--coordinator", "127.0.0.1:1234"], "given together"),
        (
            ["--distributed", "--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"],
            "--coordinator must be HOST:PORT",
        ),
        (
            ["--distributed", "--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"],
            "--process-id must be an integer in 0..1",
        ),
    ):
        assert cli.main(["reproduce", "matrix-dynamics", "--size", "tiny", "--no-progress", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and fragment in err, err
    assert not jax.distributed.is_initialized()
    with pytest.raises(ValueError, match="gather"):
        jr.sweep(lambda k: k, jax.random.split(jax.random.key(0), 2), gather="rank0")


DEAD = textwrap.dedent(
    """
    import os, sys, time
    import jax, numpy as np
    import jaxreg as jr
    from jaxreg import distributed

    pid, port = int(sys.argv[1]), sys.argv[2]
    distributed.initialize(f"127.0.0.1:{port}", 2, pid, heartbeat_timeout=5, shutdown_timeout=5)
    if pid == 1:
        os._exit(3)  # dies before the sweep
    jr.sweep(lambda k: jax.random.normal(k, (2,)), jax.random.split(jax.random.key(0), 4))
    time.sleep(60)  # were process 1's death unnoticed, this process would still be here at the timeout
    """
)


def test_dead_process_stops_the_others():
    """Process 1 dies; process 0 does not wait for it: JAX's heartbeat check (5 s here,
    passed through jaxreg.distributed.initialize; JAX's default is 100 s) or the sweep's
    failing collective stops it with an error well within the 45 s timeout."""
    port = _free_port()
    (rc0, out0), (rc1, _) = _launch(DEAD, lambda i: [str(i), str(port)], timeout=45, check=False)
    assert rc1 == 3
    assert rc0 != 0, out0[-3000:]
    assert "stopped sending heartbeats" in out0 or "Connection closed by peer" in out0, out0[-3000:]


NAMED = textwrap.dedent(
    """
    import sys
    import jax
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    from jaxreg_lab import cli

    pid, port, out = sys.argv[1], sys.argv[2], sys.argv[3]
    code = cli.main(["reproduce", "norms-counterexample", "--size", "tiny", "--set", "seeds=2", "--no-progress",
                     "--out", out, "--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                     "--process-id", pid])
    print("RESULT", code)
    """
)


def test_named_reproduction_on_two_processes_equals_one_process(tmp_path):
    """A named reproduction's runs are split over the processes by the driver (each
    process runs its share of every chunk): 2 processes of 1 device give the bits of 1
    process of 2 devices, and only process 0 writes."""
    port = _free_port()
    outs = [tmp_path / "shared", tmp_path / "process1"]
    codes = _launch(NAMED, lambda i: [str(i), str(port), str(outs[i])])
    assert codes == [0, 0]
    assert not outs[1].exists()
    one = tmp_path / "one"
    argv = ["reproduce", "norms-counterexample", "--size", "tiny", "--set", "seeds=2", "--no-progress"]
    code = "import sys; from jaxreg_lab import cli; sys.exit(cli.main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, *argv, "--out", str(one)],
        env=xla_env(device_count=2, JAX_PLATFORMS="cpu"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shared, single = load_results(outs[0]), load_results(one)
    assert shared.meta["status"] == single.meta["status"] == ["completed"] * 2
    for name in shared.arrays:
        assert np.array_equal(shared[name], single[name], equal_nan=True), name
    assert shared["loss"].shape[1] == 2


# a CNN grid at the smallest size: two range values at one lambda and one seed, so two
# groups of the same shapes (one set of compiled programs, two stages of convolutions),
# two epochs of one batch
CNN_CONFIG = (
    "IsSameClassConfig.preset('tiny', distances=(0, 4), canvas=(8, 20), stages=2, lambdas=(0.3,), seeds=(0,), "
    "max_epochs=2, num_train=32, num_test=32)"
)
CNN = INTERRUPTED + textwrap.dedent(
    f"""
    import json, sys
    import jax, numpy as np
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    from jaxreg import distributed
    from jaxreg_lab import compile_cache, driver
    from jaxreg_lab.locality import IsSameClassConfig
    from jaxreg_lab.locality.grids import IsSameClassGrid

    pid, port, out, shared = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    for name, value in compile_cache.settings(compile_cache.cache_dir()).items():
        jax.config.update(name, value)  # the programs the test process compiled, loaded
    distributed.initialize(f"127.0.0.1:{{port}}", 2, pid)
    config = {CNN_CONFIG}
    interrupted(lambda: driver.run_reproduction(IsSameClassGrid(), config, out_dir=out, progress=False))
    res = driver.run_reproduction(IsSameClassGrid(), config, out_dir=shared, resume=True, progress=False)
    np.savez(f"{{shared}}-{{pid}}.npz", **{{name: value for name, (_, value) in res["arrays"].items()}})
    print("RESULT", json.dumps({{"status": res["status"], "processes": jax.process_count()}}))
    """
)


def test_cnn_reproduction_on_two_processes_equals_one_process(tmp_path):
    """A CNN grid's programs (here its two groups) are split over the processes by the
    driver, each process running its own and every process ending with every run's
    arrays; interrupted in its second epoch and resumed, 2 processes of 1 device give the
    bits of one uninterrupted process, and process 0's checkpoint is that of one process."""
    from jaxreg_lab.driver import checkpoints, run_reproduction
    from jaxreg_lab.locality import IsSameClassConfig  # noqa: F401 (read by CNN_CONFIG)
    from jaxreg_lab.locality.grids import IsSameClassGrid

    x64 = jax.config.jax_enable_x64
    try:  # first, so that the processes load its compiled programs from the cache
        jax.config.update("jax_enable_x64", False)
        one = run_reproduction(IsSameClassGrid(), eval(CNN_CONFIG), out_dir=tmp_path / "one", progress=False)
    finally:
        jax.config.update("jax_enable_x64", x64)
    port = _free_port()
    outs = [tmp_path / "shared", tmp_path / "process1"]
    results = _launch(CNN, lambda i: [str(i), str(port), str(outs[i]), str(outs[0])])
    assert not outs[1].exists()  # process 1 wrote no checkpoint
    (mine,), (single,) = checkpoints(outs[0]), checkpoints(tmp_path / "one")
    assert (mine / "state.eqx").read_bytes() == (single / "state.eqx").read_bytes()
    assert one["status"] == ["max_steps", "max_steps"]
    for i, r in enumerate(results):
        assert r == {"status": one["status"], "processes": 2}, r
        with np.load(f"{outs[0]}-{i}.npz") as z:
            assert sorted(z.files) == sorted(one["arrays"])
            for name, (_, value) in one["arrays"].items():
                np.testing.assert_array_equal(z[name], value, err_msg=f"process {i}: {name}")
    assert np.all(np.isfinite(one["arrays"]["history"][1]))
