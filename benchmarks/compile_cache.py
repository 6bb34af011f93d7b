"""First against second run of ``jaxreg reproduce NAME`` with JAX's persistent
compilation cache (and a third with ``--no-compile-cache``).

Each run is a fresh process (``python -c`` calling ``jaxreg_lab.cli.main``) into its own
``--out``, sharing one new cache directory; recorded per run: wall time of the process,
its CPU time, and JAX's compile timings (``jax.monitoring`` events: tracing, lowering,
XLA backend compilation, which on a cache hit is the retrieval instead, the retrievals
and the compile time they saved), and whether its ``arrays.npz`` equals the first run's
bit for bit. Prints a table and saves benchmarks/results/compile_cache.json.

    python benchmarks/compile_cache.py [--name matrix-dynamics] [--size small]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="matrix-dynamics")
    ap.add_argument("--size", default="small")
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for label, extra in (("first", []), ("second", []), ("no_cache", ["--no-compile-cache"])):
            argv = ["reproduce", args.name, "--size", args.size, "--no-progress", "--out", str(tmp / label), *extra]
            rows[label] = run(argv, tmp / "cache")
            rows[label]["arrays_equal_first"] = same_arrays(tmp / "first", tmp / label)
            print(label, json.dumps(rows[label]), flush=True)
        cache_bytes = sum(p.stat().st_size for p in (tmp / "cache").iterdir())
    print(f"\n{'run':10s} {'wall s':>7s} {'CPU s':>7s} {'trace':>6s} {'lower':>6s} {'XLA':>6s} {'loaded':>7s}  same")
    for label, r in rows.items():
        print(
            f"{label:10s} {r['wall_s']:7.1f} {r['cpu_s']:7.1f} {r['trace_s']:6.2f} {r['lower_s']:6.2f} "
            f"{r['backend_compile_s']:6.2f} {r['programs_loaded_from_cache']:3d}/{r['programs_compiled_or_loaded']:<3d}"
            f"  {r['arrays_equal_first']}"
        )
    out = {
        "command": f"jaxreg reproduce {args.name} --size {args.size} --no-progress",
        "cache_bytes": cache_bytes,
        "load_average": list(os.getloadavg()),
        "rows": rows,
        "note": "backend_compile_s on a cache hit is the time to load the program; programs with host "
        "callbacks (equinox runtime checks) are never stored by JAX and compile on every run",
    }
    save_json("compile_cache", out)


if __name__ == "__main__":
    main()
