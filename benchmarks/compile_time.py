"""Compile time of each reproduction's main computation (target: < 15 s each).

Discovers ``jaxreg_lab.reproductions.EXPERIMENTS``; for each, in a fresh subprocess (empty
caches, x64 on as in the CLI), runs ``run(Config.preset(SIZE))`` twice and records
- JAX's own compile timings of the first call (``jax.monitoring`` events: tracing to a
  jaxpr, lowering to MLIR, XLA backend compilation), summed over every program;
- the first and second call's wall times (the difference is the one-off cost: tracing,
  compilation and any other first-call work).
- the costliest single program (its trace + lowering + XLA compile, paired by function
  name): the reproduction's main computation, which the target is about.
Prints a table and saves benchmarks/results/compile_time.json.

    python benchmarks/compile_time.py [--size tiny] [--only NAME,...] [--target 15]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from _save import save_json

CHILD = r"""
import json, sys, time, tempfile
import jax
jax.config.update("jax_enable_x64", True)
from collections import defaultdict
import jax.monitoring
events = defaultdict(float)
counts = defaultdict(int)
log = []
def listen(name, secs, **kw):
    events[name] += secs
    counts[name] += 1
    log.append((name, secs, kw.get("fun_name", "")))
def programs(log):
    # per compiled program: its trace + lowering + XLA compile seconds, pairing each
    # backend compile of jit(F) with the latest lowering of jit(F) and trace of F before it
    out, last = [], {}
    for name, secs, fun in log:
        last[(name, fun)] = secs
        if name.endswith("backend_compile_duration"):
            inner = fun[4:-1] if fun.startswith("jit(") else fun
            out.append({"fun": fun, "s": secs + last.get(("/jax/core/compile/jaxpr_to_mlir_module_duration", fun), 0.0)
                        + last.get(("/jax/core/compile/jaxpr_trace_duration", inner), 0.0)})
    return sorted(out, key=lambda r: -r["s"])
jax.monitoring.register_event_duration_secs_listener(listen)
from jaxreg_lab.driver import run_named
from jaxreg_lab.reproductions import EXPERIMENTS
mod = EXPERIMENTS[sys.argv[1]]
if getattr(mod.Config, "PRECISION", None) == "float32":  # CNN training runs in float32
    jax.config.update("jax_enable_x64", False)
config = mod.Config.preset(sys.argv[2])
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter(); run_named(mod, config, progress=False); first = time.perf_counter() - t
    first_events, first_counts, first_programs = dict(events), dict(counts), programs(list(log))
    t = time.perf_counter(); run_named(mod, config, progress=False); second = time.perf_counter() - t
second_compiles = counts.get("/jax/core/compile/backend_compile_duration", 0) - first_counts.get(
    "/jax/core/compile/backend_compile_duration", 0)
print("RESULT" + json.dumps({"first_s": first, "second_s": second, "events": first_events, "counts": first_counts,
                             "programs": first_programs[:5],
                             "recompiles_on_second_call": second_compiles}))
"""

KEYS = {
    "trace_s": "/jax/core/compile/jaxpr_trace_duration",
    "lower_s": "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "backend_compile_s": "/jax/core/compile/backend_compile_duration",
}


def measure(name, size, timeout):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, name, size], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
        )
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    if out.returncode or not line:
        return {"experiment": name, "error": (out.stderr or out.stdout)[-2000:]}
    r = json.loads(line[-1][len("RESULT") :])
    row = {
        "experiment": name,
        "size": size,
        "first_call_s": r["first_s"],
        "second_call_s": r["second_s"],
        "first_minus_second_s": r["first_s"] - r["second_s"],
        "programs_compiled": r["counts"].get(KEYS["backend_compile_s"], 0),
        "recompiles_on_second_call": r["recompiles_on_second_call"],
    }
    for k, ev in KEYS.items():
        row[k] = r["events"].get(ev, 0.0)
    row["compile_total_s"] = row["trace_s"] + row["lower_s"] + row["backend_compile_s"]
    # the main computation: the costliest single program (its trace + lowering + XLA compile)
    row["largest_program_s"] = r["programs"][0]["s"] if r["programs"] else 0.0
    row["largest_programs"] = r["programs"]
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--only", default="")
    ap.add_argument("--target", type=float, default=15.0)
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    from jaxreg_lab.reproductions import EXPERIMENTS

    names = [n for n in EXPERIMENTS if not args.only or n in args.only.split(",")]
    rows = []
    print(
        f"{'experiment':28s} {'trace':>7s} {'lower':>7s} {'XLA':>7s} {'total':>7s} {'progs':>5s} "
        f"{'largest':>8s} {'1st call':>9s} {'2nd call':>9s} {'<target':>8s}"
    )
    for name in names:
        row = measure(name, args.size, args.timeout)
        rows.append(row)
        if "error" in row:
            print(f"{name:28s} FAILED: {row['error'].splitlines()[-1] if row['error'] else ''}")
            continue
        row["meets_target"] = row["largest_program_s"] < args.target
        row["all_programs_under_target"] = row["compile_total_s"] < args.target
        print(
            f"{name:28s} {row['trace_s']:7.2f} {row['lower_s']:7.2f} {row['backend_compile_s']:7.2f} "
            f"{row['compile_total_s']:7.2f} {row['programs_compiled']:5d} {row['largest_program_s']:8.2f} "
            f"{row['first_call_s']:9.2f} {row['second_call_s']:9.2f} {str(row['meets_target']):>8s}",
            flush=True,
        )
    out = {
        "size": args.size,
        "target_s": args.target,
        "rows": rows,
        "note": (
            "compile_total_s = JAX's trace + lowering + XLA compile durations of the first call, all "
            "programs; largest_program_s = trace + lowering + XLA compile of the costliest single program "
            "(the main computation; meets_target compares it, all_programs_under_target the total); "
            "largest_programs lists the five costliest"
        ),
    }
    save_json("compile_time", out)


if __name__ == "__main__":
    main()
