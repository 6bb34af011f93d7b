"""What does progress within a solve cost? ``jr.gradient_flow`` with diffrax's
``TqdmProgressMeter`` against no meter, on the flow of ``jaxreg reproduce matrix-dynamics``
(small size: depth 3, 100x100 completion, 2000 observations, init 1e-3, t1 3000, 300
saves, float64; several seeds under ``vmap``, as the reproductions run them).

The meter is a host callback every ``refresh_steps`` solver steps (and one at the start
and end of the solve). Wall and process CPU times are medians of compiled runs (compilation excluded);
the overhead is (with meter - without) / without. Prints a table and saves
benchmarks/results/progress_meter.json.

    python benchmarks/progress_meter.py [--seeds 2] [--repeats 3] [--refresh 10,50]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from contextlib import redirect_stderr

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
from _save import save_json

jax.config.update("jax_enable_x64", True)

import jaxreg as jr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--refresh", default="10,50", help="refresh_steps values of the meter")
    ap.add_argument("--t1", type=float, default=3000.0)
    args = ap.parse_args()

    def setup(key):
        kp, km = jax.random.split(key)
        problem = jr.tasks.matrix_completion(kp, (100, 100), 5, 2000)
        return problem, jr.MatrixFactorization(km, (100, 100), 3, init_scale=1e-3)

    problems, models = jr.sweep(setup, jr.seed_keys(0, args.seeds))
    ts = jnp.linspace(args.t1 / 300, args.t1, 300)

    def solver(meter):
        @jax.jit
        def run(problems, models):
            def one(p, m):
                tr = jr.gradient_flow(p.loss, m, args.t1, ts=ts, rtol=1e-7, atol=1e-9, progress_meter=meter)
                return tr.loss, tr.num_steps

            return jax.vmap(one)(problems, models)

        return run

    meters = {"none": None, **{f"tqdm_refresh_{r}": diffrax.TqdmProgressMeter(int(r)) for r in args.refresh.split(",")}}
    rows = {}
    for name, meter in meters.items():
        run = solver(meter)
        with redirect_stderr(io.StringIO()):  # the bars themselves
            losses, steps = jax.block_until_ready(run(problems, models))  # compile
            times, cpu = [], []
            for _ in range(args.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                jax.block_until_ready(run(problems, models))
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
        rows[name] = {
            "median_s": statistics.median(times),
            "median_cpu_s": statistics.median(cpu),
            "times_s": times,
            "cpu_s": cpu,
            "steps": np.asarray(steps).tolist(),
        }
        rows[name]["same_losses_as_none"] = bool(
            name == "none" or np.array_equal(np.asarray(losses), np.asarray(rows["_losses"]))
        )
        if name == "none":
            rows["_losses"] = np.asarray(losses)
    rows.pop("_losses")
    base, base_cpu = rows["none"]["median_s"], rows["none"]["median_cpu_s"]
    print(f"{'meter':20s} {'wall s':>8s} {'overhead':>9s} {'CPU s':>8s} {'overhead':>9s}  steps per seed")
    for name, row in rows.items():
        row["overhead"] = row["median_s"] / base - 1.0
        row["cpu_overhead"] = row["median_cpu_s"] / base_cpu - 1.0
        print(
            f"{name:20s} {row['median_s']:8.3f} {100 * row['overhead']:8.1f}% {row['median_cpu_s']:8.3f} "
            f"{100 * row['cpu_overhead']:8.1f}%  {row['steps']}"
        )
    out = {
        "problem": "depth-3 100x100 completion, 2000 observations, rank 5, init 1e-3, t1 "
        f"{args.t1:g}, 300 saves, Tsit5 rtol 1e-7 atol 1e-9, float64, {args.seeds} seeds under vmap",
        "device": str(jax.devices()[0]),
        "repeats": args.repeats,
        "rows": rows,
        "load_average": list(os.getloadavg()),
        "note": "overhead = median wall with the meter / without - 1, compiled runs only; cpu_overhead the "
        "same for this process's CPU time (less sensitive to other processes on a shared machine)",
    }
    save_json("progress_meter", out)


if __name__ == "__main__":
    main()
