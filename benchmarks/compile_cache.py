"""A second identical ``jaxreg reproduce`` compiles nothing: first against second run of
matrix-dynamics, incremental-learning and matrix-completion-depth with JAX's persistent
compilation cache (and, with ``--no-cache-run``, a third with ``--no-compile-cache``).

Each run is a fresh process (``python -c`` calling ``jaxreg_lab.cli.main``) into its own
``--out``, sharing one new cache directory per reproduction; recorded per run: wall time
of the process, its CPU time, and JAX's compile timings (``jax.monitoring`` events:
tracing, lowering, XLA backend compilation, which on a cache hit is the retrieval
instead, the retrievals and the compile time they saved), and whether its
``arrays.npz`` equals the first run's bit for bit. The ratio per reproduction is the
second run's XLA time over the first's (the cache saves XLA's compilation; tracing and
lowering run on every call, since the cache key hashes the lowered program). Prints a
table and saves benchmarks/results/compile_cache.json.

    python benchmarks/compile_cache.py [--name matrix-dynamics=tiny ...] [--no-cache-run]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _save import save_json

CHILD = r"""
import json, sys
from collections import defaultdict
import jax.monitoring
seconds, counts = defaultdict(float), defaultdict(int)
def listen(name, secs, **kw):
    seconds[name] += secs
    counts[name] += 1
jax.monitoring.register_event_duration_secs_listener(listen)
from jaxreg_lab import cli
code = cli.main(sys.argv[1:])
print("RESULT" + json.dumps({"code": code, "seconds": seconds, "counts": counts}))
"""

EVENTS = {
    "trace_s": "/jax/core/compile/jaxpr_trace_duration",
    "lower_s": "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "backend_compile_s": "/jax/core/compile/backend_compile_duration",
    "cache_retrieval_s": "/jax/compilation_cache/cache_retrieval_time_sec",
    "compile_time_saved_s": "/jax/compilation_cache/compile_time_saved_sec",
}


def run(argv, cache: Path) -> dict:
    env = {**os.environ, "JAXREG_CACHE_DIR": str(cache)}
    env.pop("JAXREG_COMPILE_CACHE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT")]
    if done.returncode or not line:
        raise SystemExit(f"{argv} failed:\n{done.stderr[-3000:]}")
    r = json.loads(line[-1][len("RESULT") :])
    row = {"wall_s": wall, "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime}
    for key, event in EVENTS.items():
        row[key] = r["seconds"].get(event, 0.0)
    row["programs_compiled_or_loaded"] = r["counts"].get(EVENTS["backend_compile_s"], 0)
    row["programs_loaded_from_cache"] = r["counts"].get(EVENTS["cache_retrieval_s"], 0)
    return row


def same_arrays(a: Path, b: Path) -> bool:
    with np.load(a / "arrays.npz") as x, np.load(b / "arrays.npz") as y:
        return sorted(x.files) == sorted(y.files) and all(
            x[k].dtype == y[k].dtype and x[k].shape == y[k].shape and x[k].tobytes() == y[k].tobytes() for k in x.files
        )


DEFAULT = ("matrix-dynamics=tiny", "incremental-learning=tiny", "matrix-completion-depth=tiny")


def measure(name: str, size: str, tmp: Path, runs) -> dict:
    """The runs of ``jaxreg reproduce name --size size`` into ``tmp``, one cache for all."""
    rows = {}
    for label, extra in runs:
        argv = ["reproduce", name, "--size", size, "--no-progress", "--out", str(tmp / label), *extra]
        rows[label] = run(argv, tmp / "cache")
        rows[label]["arrays_equal_first"] = same_arrays(tmp / "first", tmp / label)
        print(name, label, json.dumps(rows[label]), flush=True)
    return rows


def main():
    started = time.perf_counter()
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", action="append", help="NAME=SIZE (repeatable); default: " + " ".join(DEFAULT))
    ap.add_argument("--no-cache-run", action="store_true", help="also a third run with --no-compile-cache")
    args = ap.parse_args()
    runs = [("first", []), ("second", [])] + ([("no_cache", ["--no-compile-cache"])] if args.no_cache_run else [])
    summary, rows = [], {}
    for spec in args.name or DEFAULT:
        name, _, size = spec.partition("=")
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            rows[name] = measure(name, size or "small", tmp, runs)
            cache_bytes = sum(p.stat().st_size for p in (tmp / "cache").iterdir())
        first, second = rows[name]["first"], rows[name]["second"]
        summary.append(
            {
                "reproduction": name,
                "size": size or "small",
                "first_xla_s": first["backend_compile_s"],
                "second_xla_s": second["backend_compile_s"],
                "second_over_first": second["backend_compile_s"] / first["backend_compile_s"],
                "programs": first["programs_compiled_or_loaded"],
                "second_loaded": second["programs_loaded_from_cache"],
                "first_wall_s": first["wall_s"],
                "second_wall_s": second["wall_s"],
                "arrays_equal": all(r["arrays_equal_first"] for r in rows[name].values()),
                "cache_bytes": cache_bytes,
            }
        )
    print(
        f"\n{'reproduction':26s} {'run':9s} {'wall s':>7s} {'CPU s':>7s} {'trace':>6s} {'lower':>6s} {'XLA':>6s} {'loaded':>8s}  same"
    )
    for name, by_run in rows.items():
        for label, r in by_run.items():
            print(
                f"{name:26s} {label:9s} {r['wall_s']:7.1f} {r['cpu_s']:7.1f} {r['trace_s']:6.2f} {r['lower_s']:6.2f} "
                f"{r['backend_compile_s']:6.2f} {r['programs_loaded_from_cache']:4d}/{r['programs_compiled_or_loaded']:<4d}"
                f"  {r['arrays_equal_first']}"
            )
    for s in summary:
        print(f"{s['reproduction']}: second run's XLA time / first's = {s['second_over_first']:.3f}")
    out = {
        "command": "jaxreg reproduce NAME --size SIZE --no-progress (a fresh process per run, one cache per NAME)",
        "summary": summary,
        "rows": rows,
        "note": "XLA time on a cache hit is the time to load the program; tracing and lowering run on every "
        "call (the cache key hashes the lowered program). A program that holds a host callback is never "
        "stored by JAX: the flow and descent programs hold none unless JAXREG_RUNTIME_CHECKS=1",
    }
    save_json("compile_cache", out, started=started)


if __name__ == "__main__":
    main()
