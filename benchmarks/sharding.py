"""Sharded seed sweep: speed and bit-for-bit equality.

A 64-seed sweep of depth-3 completion (GD, float64, singular values saved every tenth
step) with ``jr.sweep`` over N simulated host devices (default: one per core;
XLA_FLAGS=--xla_force_host_platform_device_count=N, set here for a child process) at
its default chunk size on several CPU devices (1: a lax.map over single runs per
device), against the same sweep on one device (same chunk size) and a plain jitted
``vmap`` over all seeds on one device (what a user would write without ``jr.sweep``).
Reports medians, ratios, whether sharded == one device bit for bit, and the largest
difference to the plain vmap; saves benchmarks/results/sharding.json.

    python benchmarks/sharding.py [--seeds 64] [--devices CORES] [--size 100] [--steps 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _save import save_json


def child(args):
    import jax
    import numpy as np
    import optax

    jax.config.update("jax_enable_x64", True)
    import jaxreg as jr

    assert len(jax.devices()) == args.devices, jax.devices()
    n = args.size
    problem = jr.tasks.matrix_completion(jax.random.key(0), (n, n), 3, n * n // 5)

    def experiment(key, scale):
        m = jr.MatrixFactorization(key, (n, n), 3, init_scale=scale)
        tr = jr.gradient_descent(
            problem.loss,
            m,
            optax.sgd(0.5),
            args.steps,
            save_every=args.steps // 10,
            metrics=lambda m: m.component_norms(),
        )
        return tr.metrics, tr.loss

    keys = jax.random.split(jax.random.key(1), args.seeds)
    scales = np.geomspace(1e-3, 1e-1, args.seeds)
    vmapped = jax.jit(jax.vmap(experiment))
    variants = {
        "sharded": lambda: jr.sweep(experiment, keys, scales),
        "one_device": lambda: jr.sweep(experiment, keys, scales, chunk_size=1, devices=jax.devices()[:1]),
        "plain_vmap": lambda: vmapped(keys, scales),
    }
    times, outs = {}, {}
    for name, f in variants.items():
        outs[name] = jax.block_until_ready(f())  # the first call compiles; time the steady state below
        ts = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            jax.block_until_ready(f())
            ts.append(time.perf_counter() - t)
        times[name] = statistics.median(ts)

    def leaves(x):
        return [np.asarray(a) for a in jax.tree_util.tree_leaves(x)]

    equal = all(np.array_equal(a, b) for a, b in zip(leaves(outs["sharded"]), leaves(outs["one_device"])))
    diff_vmap = max(float(np.max(np.abs(a - b))) for a, b in zip(leaves(outs["sharded"]), leaves(outs["plain_vmap"])))
    return {
        "seeds": args.seeds,
        "devices": args.devices,
        "size": n,
        "steps": args.steps,
        "chunk_size": 1,
        "median_s": times,
        "one_device_over_sharded": times["one_device"] / times["sharded"],
        "plain_vmap_over_sharded": times["plain_vmap"] / times["sharded"],
        "bit_equal_sharded_vs_one_device": equal,
        "max_abs_diff_vs_plain_vmap": diff_vmap,
        "backend": jax.default_backend(),
        "jax_version": jax.__version__,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--devices", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        print("RESULT" + json.dumps(child(args)))
        return
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={args.devices}")
    out = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], capture_output=True, text=True, env=env)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    if out.returncode or not line:
        sys.exit(out.stderr[-3000:])
    r = json.loads(line[-1][len("RESULT") :])
    t = r["median_s"]
    print(
        f"{r['seeds']} seeds, {r['size']}x{r['size']} depth 3, {r['devices']} host devices, chunk {r['chunk_size']}, "
        f"{r['steps']} GD steps"
    )
    print(f"{'variant':12s} {'median s':>9s} {'vs sharded':>11s}")
    for name in ("sharded", "one_device", "plain_vmap"):
        print(f"{name:12s} {t[name]:9.3f} {t[name] / t['sharded']:10.2f}x")
    print(
        f"sharded == one device bit for bit: {r['bit_equal_sharded_vs_one_device']}; "
        f"max |sharded - plain vmap| = {r['max_abs_diff_vs_plain_vmap']:.2e}"
    )
    save_json("sharding", r)


if __name__ == "__main__":
    main()
