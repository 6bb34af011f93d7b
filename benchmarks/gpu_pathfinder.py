"""The paper's Pathfinder grid (Razin, Maman, Cohen, ICML 2022) on one GPU, in calls of
at most ``--budget`` seconds that resume one another.

Paper settings: 150 px images (the generator's 300 px renders at half size), ResNet18
(``--arch resnet34`` for the other), 10k train / 10k test images per path length, path
lengths 3/5/7/9, lambda 0/3/9, SGD lr 1e-2 momentum 0.9, batch 64, up to 150 epochs,
stop 20 epochs after 100% train accuracy, 3 seeds. Call it again and again:

    PYTHONPATH=. python benchmarks/gpu_pathfinder.py --out benchmarks/results/pathfinder_gpu

Each call first draws missing data blocks (cached in OUT-data beside OUT, ``--workers``
processes), then trains from the last per-epoch checkpoint (OUT/.checkpoint) until the
budget is spent. Exit status: 0 when the results are saved (OUT/results.json, figure),
3 when the budget ran out (call again), anything else is an error. A call killed from
outside loses at most the epoch (or data block) in progress. ``--size tiny`` runs the
tiny preset (CPU check of the resume logic).
"""

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import jax

from jaxreg_lab.driver import clear_checkpoint
from jaxreg_lab.locality.configs import PathfinderConfig
from jaxreg_lab.locality.experiments import run_pathfinder
from jaxreg_lab.locality.report import plot_locality, summary_table
from jaxreg_lab.store.results import save_results

CALL_AGAIN = 3


class OutOfTime(Exception):
    pass


def _alarm(signum, frame):
    raise OutOfTime


def _prerender(config, cache_directory, workers):
    """Draw every data block of the grid (as run_pathfinder will ask for them)."""
    from jaxreg.locality import pathfinder
    from jaxreg_lab.store.data_cache import NpzCache

    root = jax.random.key(config.data_seed)
    for n in config.path_lengths:
        ktr, kte = jax.random.split(jax.random.fold_in(root, n))
        for k, m in ((ktr, config.num_train), (kte, config.num_test)):
            kw = dict(image_size=config.image_size, canvas=config.canvas, num_distractors=config.num_distractors)
            pathfinder(k, m, n, cache=NpzCache(cache_directory), workers=workers, **kw)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=540.0, help="seconds this call may train (default 540)")
    ap.add_argument("--size", default="paper", choices=("tiny", "small", "paper"))
    ap.add_argument("--arch", default=None, choices=("resnet18", "resnet34"))
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None, help="max_epochs (default: the preset's)")
    ap.add_argument("--workers", type=int, default=8, help="processes drawing data blocks (cached in OUT-data)")
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", False)
    overrides = {}
    if args.arch:
        overrides["architecture"] = args.arch
    if args.seeds:
        overrides["seeds"] = tuple(range(args.seeds))
    if args.epochs:
        overrides["max_epochs"] = args.epochs
    config = PathfinderConfig.preset(args.size, **overrides)
    out = Path(args.out)
    if (out / "results.json").exists():
        print(f"{out}: results already saved")
        return 0
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, args.budget)
    try:
        data = out.parent / f"{out.name}-data"  # beside OUT: a results directory holds results only
        _prerender(config, data, args.workers)
        res = run_pathfinder(config, out_dir=out, resume=True, progress=False, cache_directory=data)
    except OutOfTime:
        print(f"budget of {args.budget:.0f} s spent; call again to resume from {out}/.checkpoint")
        return CALL_AGAIN
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    wall = time.perf_counter() - start
    status = [str(s) for s in res["arrays"]["status"][1].ravel()]
    save_results(
        out,
        "locality-pathfinder",
        res["arrays"],
        coords=res["coords"],
        config=res["config"],
        wall_time=wall,
        status=status,
        extra={"device": str(jax.devices()[0]), "wall_time_is": "the last call only"},
    )
    plot_locality(res, out / "locality-pathfinder.png")
    clear_checkpoint(out)  # the results replace it (the data blocks stay in OUT-data)
    a = {k: res["arrays"][k][1] for k in ("test_accuracy", "test_R", "train_accuracy")}
    c = res["coords"]
    print(summary_table(a["test_accuracy"], "path_length", c["path_length"], c["lambda"], test_R=a["test_R"]))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # skip the interpreter's teardown: an interrupted compile may still run in XLA's
    # threads, and tearing down under it crashed the process (exit 139 instead of 3)
    os._exit(code)
