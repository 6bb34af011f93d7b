"""Gradient flow of 64 seeds at once: jaxreg (diffrax Tsit5 under jr.sweep) against
torchdiffeq (dopri5) and torchode (Tsit5, a step size per seed), at equal trajectory error.

Problems (float64, the same observations for every seed, seeds differ in the init;
jaxreg sweeps the seeds over one XLA CPU device per core, two ways: ``jaxreg_tsit5_map``,
jr.sweep's default there (chunk 1: a lax.map over single seeds, each stopping at its own
last step) and ``jaxreg_tsit5_vmap`` (one vmap per device); torch uses its default threads):
  matrix: depth-3 100x100 completion, 2000 observations, init 1e-3, t1 = 1200;
  cp:     order 4, dims 10, rank 100, 2000 observations, init 0.1, t1 = 5e5 (the loss falls
          from 1.1e-4 to about 1e-6; ||W*||_F = 1).
Every solver starts from jaxreg's initial parameters of the same seeds and integrates
d theta/dt = -grad L(theta) (the gradient of the PyTorch implementations is jaxreg's
algorithm, benchmarks/_torch_cases.py, stacked over seeds, checked against jaxreg's to
float64 roundoff at the start). Error of a run = max over the first --ref-seeds seeds
and the save times t_j = j t1 / SAVES (j = 1..SAVES) of ||W(t_j) - W_ref(t_j)||_F /
||W_ref(t_j)||_F, with W_ref from diffrax Dopri8 at rtol 1e-11 (atol 1e-13).

Each solver runs at rtol in --rtols (atol = rtol / 100; the controllers are integral
controllers in all three: diffrax's PIDController defaults, torchode's
IntegralController, torchdiffeq's own): the JSON holds every rung; the summary gives each
solver's wall time and function evaluations at the target error (--target), from the
cheapest rung that reaches it. Function evaluations: torchdiffeq counted in the vector
field, torchode's per-seed ``n_f_evals``; diffrax's Tsit5 makes 6 per step attempt (FSAL),
so steps x 6 (+ 2 for the initial step size). Under vmap every seed is evaluated until the
slowest seed of its device finishes, so jaxreg_tsit5_vmap's evaluations are 6 x the sum
over devices of (seeds there) x (their max steps); jaxreg_tsit5_map's are the seeds' own;
the per-seed steps (sum, max) are reported too: the cost of batching seeds (torchode pays it as well:
it masks finished seeds but evaluates the whole batch each step; torchdiffeq solves one
ODE with one step size for all seeds). Wall times are medians over --repeats runs
(jaxreg compiled before; the tolerances are traced, so no rung recompiles), interleaved.

    python benchmarks/flow_vs_torch.py [--seeds 64] [--rtols 1e-5,1e-6,1e-7] [--target 1e-4] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from _save import save_json

jax.config.update("jax_enable_x64", True)

import jaxreg as jr

sys.path.insert(0, str(Path(__file__).parent))
from throughput import param_list

SAVES = 12
CP_T1 = 5e5  # the loss falls from 1.1e-4 to about 1e-6 by then (init 0.1)
REF_RTOL = 1e-11


def setup(case):
    """(problem, make(key) -> model, t1), float64."""
    if case == "matrix":
        problem = jr.tasks.matrix_completion(jax.random.key(0), (100, 100), 5, 2000)
        return problem, lambda k: jr.MatrixFactorization(k, (100, 100), 3, init_scale=1e-3), 1200.0
    problem = jr.tasks.tensor_completion(jax.random.key(0), (10,) * 4, 5, 2000)
    return problem, lambda k: jr.TensorFactorization(k, (10,) * 4, 100, init_scale=0.1), CP_T1


def jaxreg_solver(case, problem, make, t1, ts, solver=None, chunk_size=None):
    """(keys, rtol, atol) -> (W at ts (S, SAVES, -1), steps (S,), status (S,)): one seed's
    flow under ``jr.sweep``, the seeds sharded over the host devices. ``chunk_size=None``:
    one vmap per device (every device's loop runs until its slowest seed is done); 1: a
    ``lax.map`` over single seeds (each seed stops at its own last step)."""

    def one(key, rtol, atol):
        traj = jr.gradient_flow(
            problem.loss,
            make(key),
            t1,
            ts=ts,
            metrics=lambda m: m.materialize().reshape(-1),
            solver=solver,
            rtol=rtol,
            atol=atol,
            max_steps=20_000,
        )
        return traj.metrics, traj.num_steps, traj.status

    def run(keys, rtol, atol):
        n = keys.shape[0]
        share = -(-n // len(jax.devices())) if chunk_size is None else chunk_size
        tol = (jnp.full((n,), rtol), jnp.full((n,), atol))  # traced: a new rtol never recompiles
        return jr.sweep(one, keys, *tol, chunk_size=share)

    return run


def torch_rhs(case, problem, shapes, counter):
    """f(y) = -grad L for the flat stacked parameters y (S, P) of all seeds."""
    import torch
    from _torch_cases import dense_predict, torch_data

    data = torch_data(np.asarray(problem.train.indices), np.asarray(problem.train.values), problem.shape, np.float64)
    flat, target = data["flat"], data["y"]
    sizes = [math.prod(s) for s in shapes]

    def f(y):
        counter[0] += 1
        with torch.enable_grad():
            y = y.detach().requires_grad_()
            ws = [p.reshape(-1, *s) for p, s in zip(torch.split(y, sizes, dim=-1), shapes)]
            loss = ((dense_predict(case, ws, flat) - target) ** 2).mean(-1).sum()
            (g,) = torch.autograd.grad(loss, y)
        return -g

    return f


def w_of(case, y, shapes):
    """W (flattened) from flat parameters y (..., P), as numpy."""
    import torch
    from _torch_cases import dense_w

    sizes = [math.prod(s) for s in shapes]
    lead = y.shape[:-1]
    ws = [p.reshape(*lead, *s) for p, s in zip(torch.split(y, sizes, dim=-1), shapes)]
    return dense_w(case, ws).flatten(-2).numpy()


def run_case(case, args) -> dict:
    import torch
    import torchdiffeq
    import torchode as to

    problem, make, t1 = setup(case)
    ts = np.linspace(t1 / SAVES, t1, SAVES)
    keys = jax.random.split(jax.random.key(1), args.seeds)
    p0 = [np.asarray(p) for p in param_list(case, jax.jit(jax.vmap(make))(keys))]
    shapes = [p.shape[1:] for p in p0]
    y0 = torch.from_numpy(np.concatenate([p.reshape(args.seeds, -1) for p in p0], axis=1))

    t = time.perf_counter()
    ref_fn = jaxreg_solver(case, problem, make, t1, ts, diffrax.Dopri8())
    w_ref, ref_steps, ref_status = jax.block_until_ready(ref_fn(keys[: args.ref_seeds], REF_RTOL, REF_RTOL / 100))
    w_ref = np.asarray(w_ref)
    assert bool(jnp.all(ref_status == 0)), ref_status
    print(
        f"  reference (Dopri8, rtol {REF_RTOL:g}, {args.ref_seeds} seeds): {time.perf_counter() - t:.1f} s", flush=True
    )

    def error(w):  # w: (seeds, SAVES, numel)
        w = np.asarray(w, np.float64)[: args.ref_seeds]
        return float(np.max(np.linalg.norm(w - w_ref, axis=-1) / np.linalg.norm(w_ref, axis=-1)))

    # the torch gradient against jaxreg's at the initial parameters (float64)
    counter = [0]
    f = torch_rhs(case, problem, shapes, counter)
    params, static = eqx.partition(make(keys[0]), eqx.is_inexact_array)
    g_jax = np.concatenate(
        [np.ravel(g) for g in param_list(case, jax.grad(lambda p: problem.loss(eqx.combine(p, static)))(params))]
    )
    grad_err = float(np.linalg.norm(-f(y0)[0].numpy() - g_jax) / np.linalg.norm(g_jax))
    assert grad_err < 1e-10, grad_err  # the same vector field, to float64 roundoff

    # vmap: one loop per device, as long as its slowest seed; map: one loop per seed
    chunks = {"vmap": -(-args.seeds // len(jax.devices())), "map": 1}
    compile_s, solvers = {}, {}
    for name, chunk in chunks.items():
        t = time.perf_counter()
        solvers[name] = jaxreg_solver(case, problem, make, t1, ts, chunk_size=chunk)
        jax.block_until_ready(solvers[name](keys, 1e-6, 1e-8))
        compile_s[name] = time.perf_counter() - t

    def run_jaxreg(rtol, name):
        w, steps, status = jax.block_until_ready(solvers[name](keys, rtol, rtol / 100))
        steps = np.asarray(steps)
        share = chunks[name]
        iterations = sum(len(c) * int(c.max()) for c in np.split(steps, range(share, args.seeds, share)))
        return {
            "error": error(w),
            "ok": bool(np.all(np.asarray(status) == 0)),
            "steps_sum": int(steps.sum()),
            "steps_max": int(steps.max()),
            "loop_iterations_x_seeds": iterations,
            "f_evals": 6 * iterations + 2 * args.seeds,
            "f_evals_per_seed_needed": int(6 * steps.sum() + 2 * args.seeds),
        }

    def run_torchdiffeq(rtol):
        counter[0] = 0
        tt = torch.tensor(np.concatenate([[0.0], ts]))
        ys = torchdiffeq.odeint(lambda _t, y: f(y), y0, tt, rtol=rtol, atol=rtol / 100, method="dopri5")
        w = w_of(case, ys[1:].transpose(0, 1), shapes)
        return {"error": error(w), "ok": True, "f_evals": counter[0] * args.seeds}

    def run_torchode(rtol):
        term = to.ODETerm(lambda _t, y: f(y))
        solver = to.AutoDiffAdjoint(
            to.Tsit5(term=term), to.IntegralController(atol=rtol / 100, rtol=rtol, term=term), max_steps=20_000
        )
        n = args.seeds
        problem_ = to.InitialValueProblem(
            y0=y0,
            t_start=torch.zeros(n, dtype=torch.float64),
            t_end=torch.full((n,), t1, dtype=torch.float64),
            t_eval=torch.from_numpy(np.tile(ts, (n, 1))),
        )
        counter[0] = 0
        sol = solver.solve(problem_)
        steps = sol.stats["n_steps"].numpy()
        return {
            "error": error(w_of(case, sol.ys, shapes)),
            "ok": bool(torch.all(sol.status == 0)),
            "steps_sum": int(steps.sum()),
            "steps_max": int(steps.max()),
            "f_evals": counter[0] * n,  # torchode's n_f_evals stat is the batch's count for every seed
        }

    runners = {
        "jaxreg_tsit5_map": lambda rtol: run_jaxreg(rtol, "map"),
        "jaxreg_tsit5_vmap": lambda rtol: run_jaxreg(rtol, "vmap"),
        "torchdiffeq_dopri5": run_torchdiffeq,
        "torchode_tsit5": run_torchode,
    }
    rows = []
    for rtol in args.rtols:
        times, outs = {name: [] for name in runners}, {}
        for _ in range(args.repeats):  # interleaved
            for name, fn in runners.items():
                t = time.perf_counter()
                outs[name] = fn(rtol)
                times[name].append(time.perf_counter() - t)
        for name in runners:
            rows.append({"solver": name, "rtol": rtol, "wall_s": statistics.median(times[name]), **outs[name]})
            r = rows[-1]
            print(
                f"  {name:20s} rtol {rtol:7.0e}: {r['wall_s']:7.2f} s  error {r['error']:.1e}  "
                f"f evals {r['f_evals']:8d}  steps sum/max {r.get('steps_sum', '-')}/{r.get('steps_max', '-')}"
                + ("" if r["ok"] else "  FAILED"),
                flush=True,
            )
    summary = {}
    for name in runners:
        ok = [r for r in rows if r["solver"] == name and r["ok"] and r["error"] <= args.target]
        summary[name] = min(ok, key=lambda r: r["wall_s"]) if ok else None
    jx_best = summary["jaxreg_tsit5_map"]
    return {
        "case": case,
        "t1": t1,
        "save_times": ts.tolist(),
        "reference": {
            "solver": "Dopri8",
            "rtol": REF_RTOL,
            "seeds": args.ref_seeds,
            "steps": np.asarray(ref_steps).tolist(),
        },
        "torch_gradient_rel_error_at_init": grad_err,
        "jaxreg_compile_s": compile_s,
        "rows": rows,
        "at_target": summary,
        "jaxreg_speedup_at_target": {
            name: (r["wall_s"] / jx_best["wall_s"] if r and jx_best else None) for name, r in summary.items()
        },
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--ref-seeds", type=int, default=8, help="seeds whose error is measured (reference solves)")
    ap.add_argument("--rtols", default="1e-5,1e-6,1e-7")
    ap.add_argument("--target", type=float, default=1e-4, help="trajectory error to compare the solvers at")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--cases", default="matrix,cp")
    ap.add_argument("--quick", action="store_true", help="smoke run: 4 seeds, 2 reference seeds, rtol 1e-5")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.ref_seeds, args.rtols = 4, 2, "1e-5"
    args.rtols = [float(r) for r in args.rtols.split(",")]
    args.ref_seeds = min(args.ref_seeds, args.seeds)
    try:
        import torch
        import torchdiffeq  # noqa: F401
        import torchode  # noqa: F401
    except ImportError as e:
        sys.exit(f"flow_vs_torch.py needs the bench extra (pip install -e '.[bench]'): {e}")
    torch_info = {
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"],  # PASSIVE unless set, see throughput.py
    }
    print(f"jax {jax.__version__} on {len(jax.devices())} devices, torch {torch_info}", flush=True)
    t0 = time.perf_counter()
    results = []
    for case in args.cases.split(","):
        print(case, flush=True)
        results.append(run_case(case, args))
    out = {
        "command": " ".join(["python", "benchmarks/flow_vs_torch.py", *sys.argv[1:]]),
        "seeds": args.seeds,
        "jax_devices": len(jax.devices()),
        "ref_seeds": args.ref_seeds,
        "rtols": args.rtols,
        "torch": torch_info,
        "target_error": args.target,
        "repeats": args.repeats,
        "cases": results,
    }
    save_json(f"flow_vs_torch{'_quick' if args.quick else ''}", out, started=t0)


if __name__ == "__main__":
    main()
