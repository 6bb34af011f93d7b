"""What JAX's multi-controller runtime costs a sweep: 1 process with 2 devices against
2 processes with 1 device each, on this machine, for the throughput cases of
benchmarks/throughput.py (float32 full-batch GD; the same problems and models).

Both layouts run the same ``jr.sweep`` (same devices count, same ``chunk_size``, so the
same per-device program and the same bits); the two processes talk through JAX's
coordination service and gloo collectives on 127.0.0.1. Per case and chunk size it
reports seed-steps/s of both, their ratio (2 processes / 1 process), and the
coordination overhead per ``jr.sweep`` call: the extra wall time of the 2-process call,
and the all-gather of the results alone (in the experiments each checkpointed chunk is
one such call). Saves benchmarks/results/multiprocess.json.

    python benchmarks/multiprocess.py [--seeds 64] [--steps 200] [--repeats 3] [--cases matrix,cp,htf]
                                      [--chunk-sizes share,1]

With ``--reproduce NAME`` it times a named reproduction instead (``jaxreg reproduce
NAME --size SIZE``): 1 process of 1 device against 2 processes of 1 device each
(``--distributed``: the driver splits the runs over the processes), the whole command's
wall time, compilation included, from a warm persistent compilation cache (one unmeasured
run of each layout fills it), median of ``--repeats``. Saves
benchmarks/results/multiprocess_reproduce.json.

    python benchmarks/multiprocess.py --reproduce ht-rank [--size small] [--repeats 3] [--cores-per-process K]
                                      [--set FIELD=VALUE ...] [--tag _NAME]

A CNN grid (``--reproduce locality-is-same-class``) splits its programs, one per range
value and lambda = 0 or > 0, over the processes; ``--set max_epochs=1`` times the small
preset's first epoch only (its 40 epochs take about 40 minutes on 2 cores).

``--cores-per-process K`` pins process i to its own K cores (cores iK .. iK+K-1, by CPU
affinity), so that each process stands for a host of K cores: the 1-process baseline
then runs on K cores and the 2 processes on 2K. Without it every process may use every
core, and on one machine the 2 processes share the cores that the 1 process already used
(XLA's CPU backend runs one program's matmuls on several threads), which measures the
runtime's overhead, not the scale-out to more hosts.

The script starts the processes itself (``--worker`` is its per-process entry point);
jaxreg does not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _save import save_json

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 1800


def worker(args):
    """One process of a layout: time jr.sweep over all devices; print one JSON line."""
    import jax

    from jaxreg import distributed

    if args.processes > 1:
        distributed.initialize(f"127.0.0.1:{args.port}", args.processes, args.process_id)
    import numpy as np
    import optax

    import jaxreg as jr
    from jaxreg._sweep import _gathered, _run

    sys.path.insert(0, str(HERE))
    from throughput import LR, setup

    problem, make = setup(args.case)

    def run(key):
        return jr.gradient_descent(problem.loss, make(key), optax.sgd(LR), args.steps, save_every=args.steps).loss

    keys = jax.random.split(jax.random.key(1), args.seeds)
    devices = jax.devices()
    rows = {}
    for chunk in args.chunk_sizes.split(","):
        size = -(-args.seeds // len(devices)) if chunk == "share" else int(chunk)
        call = lambda: np.asarray(jr.sweep(run, keys, chunk_size=size))  # noqa: E731  (on host, as gathered)
        t = time.perf_counter()
        first = call()
        first_s = time.perf_counter() - t
        assert np.all(np.isfinite(np.asarray(first))), first
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        gather_s = None
        if jax.process_count() > 1 and args.seeds % (size * len(devices)) == 0:  # one sweep's all-gather alone
            out = _run(run, size, tuple(devices), keys, ())
            jax.block_until_ready(_gathered(out, devices, True))
            gathers = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                jax.block_until_ready(_gathered(out, devices, True))
                gathers.append(time.perf_counter() - t)
            gather_s = statistics.median(gathers)
        rows[chunk] = {
            "chunk_size": size,
            "sweep_s": statistics.median(times),
            "first_call_s": first_s,
            "gather_s": gather_s,
            "chunks_per_device": -(-args.seeds // (size * len(devices))),
        }
    print(
        "RESULT "
        + json.dumps(
            {"process": jax.process_index(), "processes": jax.process_count(), "devices": len(devices), "rows": rows}
        ),
        flush=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _layout(case, processes, devices_each, args):
    """Run one layout; the workers' results (process 0's timing is the layout's)."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices_each}", JAX_PLATFORMS="cpu")
    port = _free_port()
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--case",
        case,
        "--processes",
        str(processes),
        "--port",
        str(port),
        "--seeds",
        str(args.seeds),
        "--steps",
        str(args.steps),
        "--repeats",
        str(args.repeats),
        "--chunk-sizes",
        args.chunk_sizes,
    ]
    procs = [
        subprocess.Popen(
            cmd + ["--process-id", str(i)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        for i in range(processes)
    ]
    outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    for p, out in zip(procs, outs):
        if p.returncode != 0 or "RESULT " not in out:
            raise RuntimeError(f"worker failed ({p.returncode}):\n{out[-3000:]}")
    return [json.loads(out.split("RESULT ", 1)[1].splitlines()[0]) for out in outs]


CLI = "import sys; from jaxreg_lab import cli; sys.exit(cli.main(sys.argv[1:]))"


def _reproduce_layout(args, processes: int, cache: str, out: str) -> float:
    """Seconds of one ``jaxreg reproduce`` on ``processes`` processes of 1 device each."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")
    env["JAXREG_CACHE_DIR"] = cache
    argv = [sys.executable, "-c", CLI, "reproduce", args.reproduce, "--size", args.size, "--no-progress", "--force"]
    argv += [word for field in args.set for word in ("--set", field)]
    port = _free_port()
    k = args.cores_per_process
    t = time.perf_counter()
    procs = []
    for i in range(processes):
        cores = set(range(i * k, (i + 1) * k)) if k else None
        dist = ["--distributed", "--coordinator", f"127.0.0.1:{port}", "--num-processes", str(processes)]
        extra = [*dist, "--process-id", str(i)] if processes > 1 else []
        procs.append(
            subprocess.Popen(
                argv + ["--out", f"{out}-{processes}-{i}", *extra],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                preexec_fn=(lambda cores=cores: os.sched_setaffinity(0, cores)) if cores else None,
            )
        )
    outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    seconds = time.perf_counter() - t
    for p, text in zip(procs, outs):
        if p.returncode != 0:
            raise RuntimeError(f"jaxreg reproduce failed ({p.returncode}):\n{text[-3000:]}")
    return seconds


def reproduce(args) -> None:
    """Time a named reproduction on 1 process and on 2 processes; save the JSON."""
    import tempfile

    k = args.cores_per_process
    if k and 2 * k > (os.cpu_count() or 1):
        raise SystemExit(f"--cores-per-process {k}: 2 processes need {2 * k} cores, this machine has {os.cpu_count()}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        cache, out = os.path.join(tmp, "cache"), os.path.join(tmp, "out")
        times = {1: [], 2: []}
        for processes in (1, 2):  # warm the compilation cache of each layout
            _reproduce_layout(args, processes, cache, out)
        for _ in range(args.repeats):
            for processes in (1, 2):
                times[processes].append(_reproduce_layout(args, processes, cache, out))
    one, two = statistics.median(times[1]), statistics.median(times[2])
    pinned = f", {k} core(s) per process" if k else ", unpinned"
    print(
        f"{args.reproduce} --size {args.size}: 1 process x 1 device {one:.1f} s, 2 processes x 1 device "
        f"{two:.1f} s, speed-up {one / two:.2f}x (median of {args.repeats}{pinned})",
        flush=True,
    )
    import jax

    save_json(
        "multiprocess_reproduce" + (f"_{k}core" if k else "") + args.tag,
        {
            "reproduction": args.reproduce,
            "size": args.size,
            "set": args.set,
            "cores_per_process": k,
            "repeats": args.repeats,
            "seconds": {"one_process": times[1], "two_processes": times[2]},
            "median_s": {"one_process": one, "two_processes": two},
            "speedup": one / two,
            "jax_version": jax.__version__,
            "machine": platform.machine(),
            "cores": os.cpu_count(),
            "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
        },
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default="matrix,cp,htf")
    ap.add_argument("--chunk-sizes", default="share,1", help="'share' = per-device share, or integers")
    ap.add_argument("--tag", default="", help="suffix of the JSON file name")
    ap.add_argument("--reproduce", default=None, metavar="NAME", help="time a named reproduction instead")
    ap.add_argument("--size", default="small", help="the preset size of --reproduce")
    ap.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="with --reproduce: a config override"
    )
    ap.add_argument(
        "--cores-per-process", type=int, default=0, help="with --reproduce: pin each process to its own K cores"
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.reproduce:
        return reproduce(args)
    rows = []
    load_before = os.getloadavg()  # other jobs on the machine skew both layouts
    for case in args.cases.split(","):
        one = _layout(case, 1, 2, args)[0]
        two = _layout(case, 2, 1, args)
        for chunk, r1 in one["rows"].items():
            r2 = two[0]["rows"][chunk]
            gathers = [w["rows"][chunk]["gather_s"] for w in two]
            gather = None if None in gathers else max(gathers)
            rate1 = args.seeds * args.steps / r1["sweep_s"]
            rate2 = args.seeds * args.steps / r2["sweep_s"]
            row = {
                "case": case,
                "chunk": chunk,
                "chunk_size": r1["chunk_size"],
                "chunks_per_device": r1["chunks_per_device"],
                "one_process_two_devices_seed_steps_per_s": rate1,
                "two_processes_one_device_seed_steps_per_s": rate2,
                "ratio": rate2 / rate1,
                "overhead_per_sweep_call_s": r2["sweep_s"] - r1["sweep_s"],
                "allgather_s": gather,
                "first_call_s": {"one_process": r1["first_call_s"], "two_processes": r2["first_call_s"]},
            }
            rows.append(row)
            print(
                f"{case:7s} chunk {chunk:>5s} ({r1['chunk_size']:3d}): 1 proc x 2 dev {rate1:9.1f}  "
                f"2 proc x 1 dev {rate2:9.1f} seed-steps/s  ratio {row['ratio']:5.2f}  "
                f"overhead/call {row['overhead_per_sweep_call_s'] * 1e3:7.1f} ms  all-gather "
                f"{float('nan') if gather is None else gather * 1e3:6.1f} ms",
                flush=True,
            )
    import jax

    out = {
        "seeds": args.seeds,
        "steps": args.steps,
        "repeats": args.repeats,
        "jax_version": jax.__version__,
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "load_average_1_5_15_min": {"before": load_before, "after": os.getloadavg()},
        "rows": rows,
    }
    save_json(f"multiprocess{'_' + args.tag if args.tag else ''}", out)


if __name__ == "__main__":
    main()
