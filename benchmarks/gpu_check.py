"""One short GPU check: the throughput rows against torch.compile on the same device, and
the smallest Pathfinder experiment that can show the effect of Razin, Maman, Cohen (ICML
2022), with its verdict fixed in advance.

    PYTHONPATH=. python benchmarks/gpu_check.py                 # one H100: at most ~8 min
    PYTHONPATH=. python benchmarks/gpu_check.py --tiny --out /tmp/gpu_check.json   # CPU smoke run

(a) Throughput: matrix, CP and HTF seed sweeps (the cases of benchmarks/throughput.py:
    full-batch GD, float32, from the same initial parameters), jaxreg's vmapped
    ``gradient_descent`` against the batched PyTorch steps (stacked parameters and
    ``torch.func.vmap``), each ``torch.compile``d, on the same device; medians of
    interleaved repeats, in seed-steps/s.
(b) Pathfinder at the paper's network and optimizer: ResNet18 with BatchNorm, SGD lr 1e-2
    momentum 0.9, batch 64, 150 px images (the generator's 300 px canvas resized), 2 px
    regularizer patches; the shortest path length at lambda 0 and the longest at lambda 0
    and at each lambda > 0; 2 seeds; 5000 training and 1000 test images per length. The
    images are drawn in memory (``--workers`` processes) and never written.

The verdict, fixed before any run, per lambda > 0 at the longest length L (shortest S):
  - "the effect shows" when, in every seed, S at lambda 0 reaches test accuracy >= 0.70,
    L at lambda 0 stays <= 0.60, L gains >= 0.10 with lambda > 0, and L's held-out R
    with lambda > 0 is below its R at lambda 0;
  - "inconclusive" when S at lambda 0 stays below 0.70 in some seed (the network has not
    learned even the short paths: the budget, not the regularizer, decides);
  - "does not show" otherwise.
Training stops at ``--epochs`` or when the time budget (``--budget`` seconds for the whole
script) runs out, whichever comes first; the JSON records the epochs each run trained.

Writes one JSON (``--out``, default benchmarks/results/gpu_check.json; a few kB).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# isort: off
import throughput as T  # noqa: E402 (sets XLA's host device count before jax is imported)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import jaxreg as jr  # noqa: E402
from jaxreg.locality import TrainOptions, make_model, pathfinder, train_runs  # noqa: E402
from jaxreg.locality.training import epoch_loop  # noqa: E402

# isort: on

SHOWS, INCONCLUSIVE, NOT_SHOWN = "the effect shows", "inconclusive", "does not show"
THRESHOLDS = {"short_fit": 0.70, "long_chance": 0.60, "gain": 0.10}


def verdict(acc_short0, acc_long0, acc_long, r_long0, r_long) -> str:
    """The verdict fixed in advance (module docstring), from per-seed arrays: test
    accuracy at the shortest length and lambda 0, at the longest length and lambda 0 and
    at one lambda > 0, and the held-out R at the longest length at lambda 0 and > 0."""
    acc_short0, acc_long0, acc_long, r_long0, r_long = map(
        np.asarray, (acc_short0, acc_long0, acc_long, r_long0, r_long)
    )
    eps = 1e-9  # the thresholds are inclusive; accuracies are ratios of counts
    if np.any(~(acc_short0 >= THRESHOLDS["short_fit"] - eps)):
        return INCONCLUSIVE
    shows = (
        (acc_long0 <= THRESHOLDS["long_chance"] + eps)
        & (acc_long - acc_long0 >= THRESHOLDS["gain"] - eps)
        & (r_long < r_long0)
    )
    return SHOWS if bool(np.all(shows)) else NOT_SHOWN


def _median_rates(runners: dict, repeats: int) -> dict:
    """Seed-steps/s per runner: each called once to compile, then ``repeats``
    interleaved rounds; the median."""
    for fn in runners.values():
        fn()
    rates = {name: [] for name in runners}
    for _ in range(repeats):
        for name, fn in runners.items():
            t = time.perf_counter()
            n = fn()
            rates[name].append(n / (time.perf_counter() - t))
    return {name: statistics.median(r) for name, r in rates.items()}


def throughput_rows(cases, seeds: int, steps: int, repeats: int, compile_torch: bool) -> list[dict]:
    """(a): per case, jaxreg's rate, each batched PyTorch variant's rate on the same
    device, and jaxreg over the fastest of them."""
    try:
        import torch
    except ImportError:
        torch = None
    device = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    rows = []
    for case in cases:
        problem, make = T.setup(case)
        keys = jax.random.split(jax.random.key(1), seeds)

        def run(key, problem=problem, make=make):
            return jr.gradient_descent(problem.loss, make(key), optax.sgd(T.LR), steps, save_every=steps)

        vmapped = jax.jit(jax.vmap(run))

        def jax_go(vmapped=vmapped, keys=keys):
            jax.block_until_ready(vmapped(keys).loss)
            return seeds * steps

        runners = {"jaxreg": jax_go}
        if torch is not None:
            from _torch_cases import dense_predict, torch_data

            p0 = [np.asarray(p) for p in T.param_list(case, jax.jit(jax.vmap(make))(keys))]
            data = torch_data(np.asarray(problem.train.indices), np.asarray(problem.train.values), problem.shape)
            flat, y = data["flat"].to(device), data["y"].to(device)

            def batched_loss(ws, case=case, flat=flat, y=y):
                return ((dense_predict(case, ws, flat) - y) ** 2).mean(-1).sum()

            def one_loss(ws, flat, y, case=case):
                return ((dense_predict(case, ws, flat) - y) ** 2).mean()

            stacked_grad = torch.func.grad(batched_loss)
            vmap_grad = torch.func.vmap(torch.func.grad(one_loss), in_dims=(0, None, None))
            variants = {
                "torch_stacked": lambda ws, g=stacked_grad: [w - T.LR * d for w, d in zip(ws, g(ws))],
                "torch_vmap": lambda ws, g=vmap_grad, flat=flat, y=y: [
                    w - T.LR * d for w, d in zip(ws, g(ws, flat, y))
                ],
            }
            for name, step in variants.items():
                step = torch.compile(step) if compile_torch else step

                def go(step=step, p0=p0):
                    ws = [torch.tensor(p, device=device) for p in p0]
                    with torch.no_grad():
                        for _ in range(steps):
                            ws = step(ws)
                    if device == "cuda":
                        torch.cuda.synchronize()
                    return seeds * steps

                runners[name + ("_compiled" if compile_torch else "")] = go
        rates = _median_rates(runners, repeats)
        torch_best = max((v for k, v in rates.items() if k != "jaxreg"), default=None)
        rows.append(
            {
                "case": case,
                "rates_seed_steps_per_s": rates,
                "torch_device": device if torch is not None else None,
                "jaxreg_over_best_torch": None if torch_best is None else rates["jaxreg"] / torch_best,
            }
        )
        ratio = rows[-1]["jaxreg_over_best_torch"]
        print(f"(a) {case}: " + ", ".join(f"{k} {v:.0f}" for k, v in rates.items()), end="")
        print("" if ratio is None else f"; jaxreg / best torch = {ratio:.2f}", flush=True)
    return rows


def _budget_loop(deadline: float):
    """The library's ``epoch_loop``, also ending when ``time.monotonic()`` passes ``deadline``."""

    def loop(step, state, num_epochs, *, stop, on_chunk):
        def out_of_time(s):
            return stop(s) or time.monotonic() > deadline

        return epoch_loop(step, state, num_epochs, stop=out_of_time, on_chunk=on_chunk)

    return loop


def pathfinder_runs(args, deadline: float) -> dict:
    """(b): per path length, its lambdas' runs (lambda 0 only at the shortest length),
    trained until ``--epochs`` or ``deadline``."""
    lengths = sorted(args.path_lengths)
    lambdas = sorted(set([0.0, *args.lambdas]))
    options = TrainOptions(
        batch_size=args.batch_size,
        optimizer="sgd",
        learning_rate=1e-2,
        momentum=0.9,
        max_epochs=args.epochs,
        patience=20,
        patch_size=args.patch_size,
        r_mode=args.r_mode,
        runs_per_program=args.seeds,  # one program per lambda: lambda 0's skips R's gradient, and is shared by every length
    )
    model_kw = {"norm": "batch"} if args.arch != "small" else {"norm": "batch", "width": 4, "stages": 1}
    make = functools.partial(make_model, architecture=args.arch, **model_kw)
    kw = dict(image_size=args.image_size, canvas=args.canvas, workers=args.workers)
    # the longest length trains the most runs, regularized: it gets 70% of the time left
    order = [lengths[-1], *lengths[:-1]]
    out = {}
    for i, n in enumerate(order):
        t = time.perf_counter()
        ktr, kte = jax.random.split(jax.random.fold_in(jax.random.key(args.data_seed), n))
        train = pathfinder(ktr, args.num_train, n, **kw)
        test = pathfinder(kte, args.num_test, n, **kw)
        drawn = time.perf_counter() - t
        point_lambdas = lambdas if n == lengths[-1] else [0.0]
        left = deadline - time.monotonic()
        share = left * (0.7 if i == 0 and len(order) > 1 else 1.0 / (len(order) - i))
        with jax.enable_x64(False):  # CNN training is float32
            res = train_runs(
                make,
                train,
                test,
                point_lambdas,
                list(range(args.seeds)),
                options,
                loop=_budget_loop(time.monotonic() + share),
            )
        out[str(n)] = {
            "lambdas": point_lambdas,
            "test_accuracy": res["test_accuracy"].tolist(),
            "train_accuracy": res["train_accuracy"].tolist(),
            "test_R": res["test_R"].tolist(),
            "epochs": res["epochs"].tolist(),
            "status": res["status"].tolist(),
            "draw_s": drawn,
            "train_s": time.perf_counter() - t - drawn,
        }
        print(
            f"(b) L={n}: lambdas {point_lambdas}, test accuracy {np.round(res['test_accuracy'], 3).tolist()}, "
            f"held-out R {np.round(res['test_R'], 3).tolist()}, epochs {res['epochs'].tolist()} "
            f"(images {drawn:.0f} s, training {out[str(n)]['train_s']:.0f} s)",
            flush=True,
        )
    return out


def judge(runs: dict, lengths) -> dict:
    """The verdict per lambda > 0 (:func:`verdict`)."""
    short, long = runs[str(min(lengths))], runs[str(max(lengths))]
    acc_s0 = np.asarray(short["test_accuracy"])[0]
    acc, r = np.asarray(long["test_accuracy"]), np.asarray(long["test_R"])
    return {
        f"lambda {lam:g}": verdict(acc_s0, acc[0], acc[j], r[0], r[j])
        for j, lam in enumerate(long["lambdas"])
        if lam > 0
    }


def _write(path: Path, out: dict) -> None:
    """``path`` written atomically (a sibling renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}")
    tmp.write_text(json.dumps(out, indent=2))
    os.replace(tmp, path)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gpu_check.json")
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for the whole script (default 450)")
    ap.add_argument("--tiny", action="store_true", help="a CPU smoke run (small network, 24 px, a few images)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--throughput-seeds", type=int, default=64)
    ap.add_argument("--throughput-steps", type=int, default=50)
    ap.add_argument("--throughput-repeats", type=int, default=3)
    ap.add_argument("--no-torch-compile", action="store_true")
    ap.add_argument("--num-train", type=int, default=5000)
    ap.add_argument("--num-test", type=int, default=1000)
    ap.add_argument("--path-lengths", type=int, nargs="+", default=[3, 9])
    ap.add_argument("--lambdas", type=float, nargs="+", default=[3.0], help="the lambdas > 0 (0 is always run)")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=150)
    ap.add_argument("--canvas", type=float, default=300.0)
    ap.add_argument("--patch-size", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--arch", choices=("resnet18", "resnet34", "small"), default="resnet18")
    ap.add_argument("--r-mode", choices=("frozen", "train"), default="frozen")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.tiny:
        args.throughput_seeds, args.throughput_steps, args.throughput_repeats = 2, 2, 1
        args.no_torch_compile = True
        args.num_train, args.num_test, args.path_lengths, args.lambdas = 16, 16, [2, 4], [1.0]
        args.epochs, args.image_size, args.canvas, args.patch_size, args.arch = 1, 24, 120.0, 6, "small"
        args.batch_size, args.workers = 16, 1
    if len(args.path_lengths) < 2 or min(args.path_lengths) == max(args.path_lengths):
        raise SystemExit("--path-lengths: give at least two different lengths (the shortest and the longest)")
    if not all(lam > 0 for lam in args.lambdas):
        raise SystemExit("--lambdas: give the lambdas > 0 (lambda 0 is always run)")
    t0 = time.perf_counter()
    deadline = time.monotonic() + args.budget
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({jax.default_backend()})", flush=True)
    rows = []
    if not args.skip_throughput:
        rows = throughput_rows(
            ("matrix", "cp", "htf"),
            args.throughput_seeds,
            args.throughput_steps,
            args.throughput_repeats,
            not args.no_torch_compile,
        )
    runs = pathfinder_runs(args, deadline)
    verdicts = judge(runs, args.path_lengths)
    for lam, v in verdicts.items():
        print(f"verdict ({lam}): {v}", flush=True)
    out = {
        "command": " ".join(["python", "benchmarks/gpu_check.py", *(argv if argv is not None else sys.argv[1:])]),
        "device": jax.devices()[0].device_kind,
        "backend": jax.default_backend(),
        "platform": platform.platform(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "thresholds": THRESHOLDS,
        "throughput": rows,
        "pathfinder": runs,
        "verdicts": verdicts,
        "wall_s": time.perf_counter() - t0,
    }
    _write(args.out, out)
    print(f"saved {args.out} ({out['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
