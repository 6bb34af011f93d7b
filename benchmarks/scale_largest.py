"""Largest seed batch per model: memory and speed of vmapped GD steps.

For each model at its reference size (float32, full-batch GD in ``lax.scan``,
``jax.vmap`` over seeds) the seed count doubles from 1; every point runs in a fresh
subprocess that reports its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
and seed-steps/s. Safety on a shared machine: a watchdog kills a child whose RSS
passes --cap-gib (default 12 GiB, well below the machine's 23), and a doubling is not
launched when the linear RSS fit predicts it would pass the cap or the last point took
more than --max-point-s. The largest batch that fits --budget-gib (default 24 GiB) is
extrapolated from the fit RSS = base + per_seed * seeds over the measured points
(stated as extrapolated). Prints a table, saves benchmarks/results/scale_largest.json.

    python benchmarks/scale_largest.py [--models matrix,cp,htf,deep_cp] [--total-s 600]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _save import save_json

GIB = 2**30

CHILD = r"""
import json, resource, sys, time
import jax, jax.numpy as jnp, optax
import jaxreg as jr
model_name, seeds, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f32 = jnp.float32
if model_name == "matrix":
    problem = jr.tasks.matrix_completion(jax.random.key(0), (100, 100), 5, 2000)
    make = lambda k: jr.MatrixFactorization(k, (100, 100), 3, init_scale=1e-3, dtype=f32)
elif model_name == "cp":
    problem = jr.tasks.tensor_completion(jax.random.key(0), (10,) * 4, 5, 2000)
    make = lambda k: jr.TensorFactorization(k, (10,) * 4, 1000, init_scale=5e-3, dtype=f32)
elif model_name == "htf":
    problem = jr.tasks.tensor_completion(jax.random.key(0), (16,) * 4, 5, 2048, target="ht", num_test=1000)
    make = lambda k: jr.HierarchicalTensorFactorization(k, (16,) * 4, (64, 64), init_scale=1e-2, dtype=f32)
else:
    problem = jr.tasks.tensor_completion(jax.random.key(0), (10,) * 3, 5, 500)
    make = lambda k: jr.DeepTensorFactorization(k, (10,) * 3, 50, 2, init_scale=1e-1, dtype=f32)
problem = jax.tree_util.tree_map(lambda x: x.astype(f32) if jnp.issubdtype(x.dtype, jnp.floating) else x, problem)
run = jax.jit(jax.vmap(lambda k: jr.gradient_descent(problem.loss, make(k), optax.sgd(1e-2), steps,
                                                     save_every=steps).loss[-1]))
keys = jax.random.split(jax.random.key(1), seeds)
t = time.perf_counter(); jax.block_until_ready(run(keys)); first = time.perf_counter() - t
t = time.perf_counter(); out = jax.block_until_ready(run(keys)); second = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print("RESULT" + json.dumps({"seeds": seeds, "steps": steps, "first_s": first, "run_s": second,
                             "seed_steps_per_s": seeds * steps / second, "peak_rss_bytes": rss,
                             "finite": bool(jnp.all(jnp.isfinite(out)))}))
"""


def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def point(model, seeds, steps, cap, timeout):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, model, str(seeds), str(steps)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0, peak, killed = time.perf_counter(), 0, None
    while proc.poll() is None:
        peak = max(peak, rss_of(proc.pid))
        if peak > cap:
            killed = f"RSS {peak / GIB:.1f} GiB > cap"
        elif time.perf_counter() - t0 > timeout:
            killed = f"over {timeout:.0f}s"
        if killed:
            proc.kill()  # our own child, by its pid
            proc.wait()
            return {"seeds": seeds, "killed": killed}
        time.sleep(0.05)
    out, err = proc.communicate()
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT")]
    if proc.returncode or not line:
        return {"seeds": seeds, "killed": f"exit {proc.returncode}: {err.strip().splitlines()[-1] if err else ''}"}
    return json.loads(line[-1][len("RESULT") :])


def fit(points):
    """Least squares RSS = base + per_seed * seeds."""
    n = len(points)
    xs = [p["seeds"] for p in points]
    ys = [p["peak_rss_bytes"] for p in points]
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0
    return my - slope * mx, slope


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="matrix,cp,htf,deep_cp")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--cap-gib", type=float, default=12.0)
    ap.add_argument("--budget-gib", type=float, default=24.0)
    ap.add_argument("--max-point-s", type=float, default=40.0)
    ap.add_argument("--total-s", type=float, default=600.0)
    args = ap.parse_args()
    cap = args.cap_gib * GIB
    start = time.perf_counter()
    results = {}
    models = args.models.split(",")
    for i, model in enumerate(models):
        share = (args.total_s - (time.perf_counter() - start)) / (len(models) - i)
        model_start = time.perf_counter()
        points, seeds, stop = [], 1, ""
        while True:
            left = share - (time.perf_counter() - model_start)
            if left < 5:
                stop = "time share used"
                break
            p = point(model, seeds, args.steps, cap, timeout=min(left, 4 * args.max_point_s))
            if "killed" in p:
                stop = p["killed"]
                break
            points.append(p)
            print(
                f"{model:8s} seeds {seeds:7d}: {p['seed_steps_per_s']:12.1f} seed-steps/s  peak RSS "
                f"{p['peak_rss_bytes'] / GIB:6.2f} GiB  (first call {p['first_s']:.1f}s)",
                flush=True,
            )
            if p["first_s"] + p["run_s"] > args.max_point_s:
                stop = f"point took over {args.max_point_s:.0f}s"
                break
            if len(points) >= 2:
                base, slope = fit(points[-3:])
                if base + slope * 2 * seeds > cap:
                    stop = "next doubling predicted over the RSS cap"
                    break
            seeds *= 2
        row = {"model": model, "points": points, "stopped": stop}
        if points:
            top = points[-1]
            row.update(
                largest_measured_seeds=top["seeds"],
                largest_measured_rss_gib=top["peak_rss_bytes"] / GIB,
                seed_steps_per_s_at_largest=top["seed_steps_per_s"],
                best_seed_steps_per_s=max(p["seed_steps_per_s"] for p in points),
            )
            if len(points) >= 2:
                base, slope = fit(points[-3:])
                row.update(
                    rss_base_gib=base / GIB,
                    rss_per_seed_mib=slope / 2**20,
                    extrapolated_max_seeds_in_budget=int((args.budget_gib * GIB - base) / slope) if slope > 0 else None,
                )
        results[model] = row
    print(
        f"\n{'model':8s} {'largest seeds':>14s} {'peak GiB':>9s} {'seed-steps/s':>13s} {'MiB/seed':>9s} "
        f"{'seeds in ' + str(int(args.budget_gib)) + ' GiB (extrap.)':>26s}  stopped because"
    )
    for model, r in results.items():
        if not r["points"]:
            print(f"{model:8s} no point completed: {r['stopped']}")
            continue
        print(
            f"{model:8s} {r['largest_measured_seeds']:14d} {r['largest_measured_rss_gib']:9.2f} "
            f"{r['seed_steps_per_s_at_largest']:13.1f} {r.get('rss_per_seed_mib', float('nan')):9.3f} "
            f"{str(r.get('extrapolated_max_seeds_in_budget')):>26s}  {r['stopped']}"
        )
    out = {
        "steps_per_point": args.steps,
        "cap_gib": args.cap_gib,
        "budget_gib": args.budget_gib,
        "total_s": time.perf_counter() - start,
        "models": results,
    }
    save_json("scale_largest", out)


if __name__ == "__main__":
    main()
