"""Time to the published figure: jaxreg's command against the authors' code style, on
matrix-completion-depth's paper grid (Arora et al. 2019: 100x100 rank 5, 2000 and 5000
observations, depths 2/3/4, init scales 1e-3 ... 1e-6, 5 seeds) and tensor-dynamics'
paper setting (Razin et al. 2021: order 4, dims 10, CP rank 5, R = 1000, inits 5e-3,
1e-2, 5e-2, 3 seeds).

The authors' side (``benchmarks/_authors_loop.py``): one run per fresh ``python``
process, as their runners do, timed from the spawn to the exit (imports included);
an eager float32 PyTorch loop of GroupRMSprop gradient descent (one scalar rate for all
parameters; matrix: lr 1e-3, eps 1e-4, stop at train loss <= 1e-6 or 1e6 iterations;
tensor: lr 1e-2, eps 1e-6, stop once the loss stayed <= 1e-8 for 50 checks, one every
25 iterations), from jaxreg's initial parameters and observations of the same run
(exported to .npz). jaxreg's side: ``jaxreg reproduce NAME --size paper --seeds 1
--set ...`` (float64), timed from the spawn to the exit, twice per round: with its
compilation cache in an empty folder (cold: every program compiles, as in a first run),
then again (warm). The matrix grid's jaxreg runs are gradient flows to the stop
loss (the reproduction's method); the tensor runs are GroupRMSprop descent on both sides.
The nuclear-norm baseline (cvxpy + SCS on both sides) is left out of both.

Measured to completion on both sides (interleaved repeats, medians): the matrix cells
of --matrix-cells and the tensor runs of --tensor-inits, each with its final error, so
that the paper's claim can be checked on both sides (depth 3 beats depth 2; the error
grows with the init). Extrapolated to the whole grid (``extrapolation`` in the JSON
states what was measured and what was multiplied by what):
  matrix, jaxreg: one seed's whole grid in one command, measured, times the 5 seeds;
  matrix, authors: per cell, the iterations GroupRMSprop takes (from the same initial
    parameters, counted by a compiled JAX loop of the same update in float32, checked
    against the eager loop's count on the measured cells) times the eager loop's
    measured seconds per iteration at that depth and count, plus one process start-up;
    summed over seed 0's 24 cells, times the 5 seeds;
  tensor, both sides: the measured seconds per iteration of the whole command
    (start-up and compilation included) times the iterations of the 9 runs of
    jaxreg's shipped paper-size results (docs/results/tensor-dynamics-paper).

    python benchmarks/time_to_figure.py [--repeats 3] [--matrix-cells 2000:2:1e-3,2000:3:1e-3]
                                        [--tensor-inits 0.01,0.05] [--no-grid] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _save import save_json

import jaxreg as jr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
JAXREG = Path(sys.executable).parent / "jaxreg"

# the authors' settings (REFERENCE: roosephu/deep_matrix_factorization, noamrazin/imp_reg_in_tf)
MATRIX = {"lr": 1e-3, "eps": 1e-4, "stop": 1e-6, "cap": 1_000_000}
TENSOR = {"lr": 1e-2, "eps": 1e-6, "stop": 1e-8, "cap": 80_000}
MATRIX_SEEDS, TENSOR_SEEDS = 5, 3  # the paper presets' seeds
SHIPPED_TENSOR = ROOT / "docs" / "results" / "tensor-dynamics-paper" / "arrays.npz"


def _f32(tree):
    return jax.tree.map(lambda x: x.astype(jnp.float32) if eqx.is_inexact_array(x) else x, tree)


def rmsprop_iterations(loss, model, *, lr: float, eps: float, stop: float, cap: int):
    """The iterations GroupRMSprop gradient descent (``jaxreg.group_rmsprop``) takes from
    ``model`` until ``loss <= stop``, checked before every step as the authors' matrix
    loop does, at most ``cap``; one compiled ``while_loop`` (vmap it over models).

    Arguments:
        loss: L, a scalar function of a model.
        model: the initial parameters.
        lr, eps: GroupRMSprop's learning rate and stabilizer (decay 0.99).
        stop: the stop loss.
        cap: the most iterations.

    Returns:
        ``(iterations, final loss)``, scalars.
    """
    opt = jr.group_rmsprop(lr, eps=eps)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    value_and_grad = jax.value_and_grad(lambda p: loss(eqx.combine(p, static)))

    def running(c):
        return (c[0] < cap) & (c[3] > stop)

    def body(c):
        t, p, state, _, g = c
        updates, state = opt.update(g, state, p)
        p = optax.apply_updates(p, updates)
        value, g = value_and_grad(p)
        return t + 1, p, state, value, g

    value, g = value_and_grad(params)
    start = (jnp.zeros((), jnp.int32), params, opt.init(params), value, g)
    t, _, _, value, _ = jax.lax.while_loop(running, body, start)
    return t, value


def _timed(argv: list[str], env: dict | None = None) -> tuple[float, str]:
    """(wall seconds from spawn to exit, stdout) of a fresh process; raises on failure."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def _reproduce(name: str, sets: dict, out: Path, cache: Path) -> tuple[float, dict]:
    """Run ``jaxreg reproduce NAME --size paper --seeds 1 --set k=v ...`` in a fresh
    process with its persistent compilation cache in ``cache`` (an empty folder: every
    program compiles, as in a first run): (wall seconds, its arrays)."""
    argv = [str(JAXREG), "reproduce", name, "--size", "paper", "--seeds", "1"]
    argv += ["--no-progress", "--force", "--out", str(out)]
    for k, v in sets.items():
        argv += ["--set", f"{k}={v}"]
    wall, _ = _timed(argv, {"JAXREG_CACHE_DIR": str(cache)})
    with np.load(out / "arrays.npz") as f:
        return wall, {k: f[k] for k in f.files}


def _authors(spec_path: Path) -> tuple[float, dict]:
    """Run the authors'-style loop on one exported run in a fresh process: (wall, its report)."""
    wall, out = _timed([sys.executable, str(HERE / "_authors_loop.py"), str(spec_path)])
    return wall, json.loads(out.strip().splitlines()[-1])


def _export(path: Path, case: str, params, problem, settings: dict) -> Path:
    arrays = {f"param_{i}": np.asarray(p) for i, p in enumerate(params)}
    np.savez(
        path,
        case=case,
        num_params=len(params),
        indices=np.asarray(problem.train.indices),
        values=np.asarray(problem.train.values),
        target=np.asarray(problem.target),
        **arrays,
        **settings,
    )
    return path


def _toml(values) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"


# ---------------------------------------------------------------- matrix


def matrix_setup(counts, depths, scales):
    """The paper preset's seed 0 of a one-seed run restricted to the given grid: its
    problems (one per count) and initial models (one per depth, stacked over the init
    scales), exactly as ``jaxreg reproduce matrix-completion-depth --size paper --seeds 1``
    draws them."""
    from jaxreg_lab.reproductions.matrix_completion_depth import REPRODUCTION, Config

    config = Config(
        seeds=1, baseline=False, num_observed=tuple(counts), depths=tuple(depths), init_scales=tuple(scales)
    )
    problems, models = REPRODUCTION.setup(config).inputs
    seed0 = lambda tree: jax.tree.map(lambda a: a[0], tree)  # noqa: E731
    return [seed0(p) for p in problems], [seed0(m) for m in models]


def matrix_cell_sets(count, depth, scale) -> dict:
    return {
        "baseline": "false",
        "num_observed": _toml([count]),
        "depths": _toml([depth]),
        "init_scales": _toml([scale]),
    }


def measure(runs: list[dict], repeats: int, tmp: Path) -> list[dict]:
    """Every run to completion on both sides, ``repeats`` rounds, interleaved: per round,
    jaxreg's command twice (its compilation cache first empty, then warm from the first)
    and the authors' loop once.

    Arguments:
        runs: per run ``label``, ``name`` (the reproduction), ``sets`` (its --set fields),
            ``spec`` (the exported .npz of the authors' loop), ``read`` (jaxreg's arrays
            -> ``error`` and ``iterations``) and anything else to keep in its row.
        repeats: the rounds.
        tmp: a scratch folder.

    Returns:
        One row per run: the times, medians, ratios and both sides' final errors.
    """
    times = [{"jaxreg_cold_s": [], "jaxreg_warm_s": [], "authors_s": [], "load_1min": []} for _ in runs]
    last: list[dict] = [{} for _ in runs]
    for r in range(repeats):
        for i, run in enumerate(runs):
            cache = tmp / f"cache_{i}_{r}"
            for kind in ("cold", "warm"):
                wall, arrays = _reproduce(run["name"], run["sets"], tmp / "out", cache)
                times[i][f"jaxreg_{kind}_s"].append(wall)
            wall, rep = _authors(run["spec"])
            times[i]["authors_s"].append(wall)
            times[i]["load_1min"].append(os.getloadavg()[0])
            last[i] = {"jaxreg": run["read"](arrays), "authors": rep}
            j = last[i]["jaxreg"]
            print(
                f"{run['label']}, round {r}: jaxreg {times[i]['jaxreg_cold_s'][-1]:.1f} s cold, "
                f"{times[i]['jaxreg_warm_s'][-1]:.1f} s warm (error {j['error']:.3g}), authors {wall:.1f} s "
                f"({rep['iterations']} iterations, error {rep['error']:.3g}); load {times[i]['load_1min'][-1]:.1f}",
                flush=True,
            )
    rows = []
    for run, t, res in zip(runs, times, last):
        med = {k: statistics.median(v) for k, v in t.items() if k != "load_1min"}
        rows.append(
            {k: v for k, v in run.items() if k not in ("name", "sets", "spec", "read")}
            | t
            | {f"{k.removesuffix('_s')}_median_s": v for k, v in med.items()}
            | {
                "ratio_cold": med["authors_s"] / med["jaxreg_cold_s"],
                "ratio_warm": med["authors_s"] / med["jaxreg_warm_s"],
                "jaxreg_error": res["jaxreg"]["error"],
                "jaxreg_iterations": res["jaxreg"]["iterations"],
                "authors_error": res["authors"]["error"],
                "authors_iterations": res["authors"]["iterations"],
                "authors_final_loss": res["authors"]["loss"],
                "authors_loop_s": res["authors"]["loop_s"],
                "authors_import_s": res["authors"]["import_s"],
            }
        )
    return rows


def matrix_runs(cells, tmp: Path) -> list[dict]:
    """The measured matrix cells as :func:`measure` runs (jaxreg's ``iterations``: the
    flow's solver steps), each with the iterations the compiled counter predicts."""
    runs = []
    for count, depth, scale in cells:
        problems, models = matrix_setup([count], [depth], [scale])
        model = jax.tree.map(lambda a: a[0], models[0])  # the one init scale
        spec = _export(
            tmp / f"matrix_{count}_{depth}_{scale:g}.npz", "matrix", list(model.factors), problems[0], MATRIX
        )
        counted, _ = jax.jit(
            lambda p, m: rmsprop_iterations(
                p.loss, m, **{k: MATRIX[k] for k in ("lr", "eps", "stop")}, cap=MATRIX["cap"]
            )
        )(_f32(problems[0]), _f32(model))
        runs.append(
            {
                "label": f"matrix {count} observations, depth {depth}, init {scale:g}",
                "count": count,
                "depth": depth,
                "init_scale": scale,
                "counted_iterations": int(counted),
                "name": "matrix-completion-depth",
                "sets": matrix_cell_sets(count, depth, scale),
                "spec": spec,
                "read": lambda a: {"error": float(a["error"].ravel()[0]), "iterations": int(a["steps"].ravel()[0])},
            }
        )
    return runs


def matrix_grid(seeds_measured: int, per_iteration_steps: int, tmp: Path, quick: bool) -> dict:
    """jaxreg's whole grid for one seed, measured; the authors' whole grid estimated."""
    from jaxreg_lab.reproductions.matrix_completion_depth import Config

    cfg = Config(seeds=1)
    counts, depths, scales = cfg.num_observed, cfg.depths, cfg.init_scales
    if quick:
        counts, depths, scales = counts[:1], depths[:2], scales[:1]
    problems, models = matrix_setup(counts, depths, scales)
    out: dict = {"counts": list(counts), "depths": list(depths), "init_scales": list(scales)}
    if seeds_measured:
        sets = {
            "baseline": "false",
            "num_observed": _toml(counts),
            "depths": _toml(depths),
            "init_scales": _toml(scales),
        }
        wall, arrays = _reproduce("matrix-completion-depth", sets, tmp / "grid", tmp / "cache_grid")
        out |= {
            "jaxreg_one_seed_s": wall,
            "jaxreg_one_seed_load_1min": os.getloadavg()[0],
            "jaxreg_errors": arrays["error"][..., 0].tolist(),
            "jaxreg_flow_steps": arrays["steps"][..., 0].tolist(),
        }
        print(f"matrix grid, jaxreg one seed: {wall:.1f} s", flush=True)
    # the authors' iterations per cell, counted by the compiled loop (vmapped over init scales)
    count_iters = jax.jit(
        jax.vmap(
            lambda p, m: rmsprop_iterations(
                p.loss, m, **{k: MATRIX[k] for k in ("lr", "eps", "stop")}, cap=MATRIX["cap"]
            ),
            in_axes=(None, 0),
        )
    )
    iterations, count_s = [], []
    for problem in problems:
        row = []
        for model in models:
            start = time.perf_counter()
            t, _ = count_iters(_f32(problem), _f32(model))
            row.append(np.asarray(t).tolist())
            count_s.append(time.perf_counter() - start)
            print(f"  counted iterations {row[-1]} ({count_s[-1]:.0f} s)", flush=True)
        iterations.append(row)
    out["estimated_iterations"] = iterations
    out["counting_s"] = sum(count_s)
    # the eager loop's seconds per iteration at every (count, depth), from a fixed count
    per_iter, startup = [], []
    for count, problem in zip(counts, problems):
        row = []
        for d, model in zip(depths, models):
            params = [f[0] for f in model.factors]
            fixed = {**MATRIX, "stop": -1.0, "cap": per_iteration_steps}
            spec = _export(tmp / f"fixed_{count}_{d}.npz", "matrix", params, problem, fixed)
            wall, rep = _authors(spec)
            row.append(rep["loop_s"] / per_iteration_steps)
            startup.append(wall - rep["loop_s"])
        per_iter.append(row)
    out["authors_s_per_iteration"] = per_iter
    out["authors_startup_s"] = statistics.median(startup)
    cells = np.asarray(iterations, float) * np.asarray(per_iter)[:, :, None] + out["authors_startup_s"]
    out["authors_one_seed_estimated_s"] = float(cells.sum())
    return out


# ---------------------------------------------------------------- tensor


def tensor_setup(scale):
    from jaxreg_lab.reproductions.tensor_dynamics import REPRODUCTION, Config

    config = Config(**{**Config.PAPER, "seeds": 1, "init_scales": (scale,)})
    problem, models = REPRODUCTION.setup(config).inputs
    return jax.tree.map(lambda a: a[0], problem), jax.tree.map(lambda a: a[0, 0], models)


def tensor_runs(scales, tmp: Path) -> list[dict]:
    """The measured tensor runs (seed 0, one init scale each) as :func:`measure` runs."""
    runs = []
    for s in scales:
        problem, model = tensor_setup(s)
        spec = _export(tmp / f"tensor_{s:g}.npz", "cp", list(model.factors), problem, TENSOR)
        runs.append(
            {
                "label": f"tensor init {s:g}",
                "init_scale": s,
                "name": "tensor-dynamics",
                "sets": {"init_scales": _toml([s])},
                "spec": spec,
                "read": lambda a: {
                    "error": float(a["reconstruction_error"][0, 0, -1]),
                    "iterations": int(a["iterations"][0, 0]),
                },
            }
        )
    return runs


# ---------------------------------------------------------------- main


def _claim(rows, key_a, key_b, pick) -> dict:
    """Whether a claim holds on both sides: ``pick(rows)`` -> (smaller row, larger row)
    by the claim; compares their errors on each side."""
    lo, hi = pick(rows)
    return {side: bool(lo[f"{side}_error"] < hi[f"{side}_error"]) for side in ("jaxreg", "authors")} | {
        "lower": key_a,
        "higher": key_b,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of every measured run")
    ap.add_argument("--matrix-cells", default="2000:2:1e-3,2000:3:1e-3", help="COUNT:DEPTH:INIT, comma-separated")
    ap.add_argument("--tensor-inits", default="0.01,0.05", help="init scales of the measured tensor runs")
    ap.add_argument("--no-grid", action="store_true", help="skip the matrix grid (no whole-grid extrapolation)")
    ap.add_argument("--per-iteration-steps", type=int, default=2000, help="eager iterations timed per (count, depth)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, a 2-cell grid; saves nothing")
    args = ap.parse_args()
    jax.config.update("jax_enable_x64", True)  # the CLI's default precision, so the exports match its draws
    if args.quick:
        args.repeats, args.per_iteration_steps = 1, 200
    cells = [(int(c), int(d), float(s)) for c, d, s in (x.split(":") for x in args.matrix_cells.split(","))]
    inits = [float(s) for s in args.tensor_inits.split(",")]
    started = time.perf_counter()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        matrix_rows = measure(matrix_runs(cells, tmp), args.repeats, tmp)
        tensor_rows = measure(tensor_runs(inits, tmp), args.repeats, tmp)
        grid = None if args.no_grid else matrix_grid(1, args.per_iteration_steps, tmp, args.quick)
    out: dict = {
        "command": " ".join(["python", "benchmarks/time_to_figure.py", *sys.argv[1:]]),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_at_start": load_start,
        "authors_settings": {"matrix": MATRIX, "tensor": TENSOR, "dtype": "float32", "torch_threads": "torch default"},
        "jaxreg_settings": (
            "jaxreg reproduce NAME --size paper --seeds 1 --set ... (float64); JAXREG_CACHE_DIR an empty folder per "
            "round: cold = the round's first run, warm = the same command again"
        ),
        "matrix_cells": matrix_rows,
        "tensor_runs": tensor_rows,
    }
    by_depth = {r["depth"]: r for r in matrix_rows}
    if 2 in by_depth and 3 in by_depth:
        out["matrix_claim_depth_3_beats_depth_2"] = _claim(
            matrix_rows, "depth 3", "depth 2", lambda rows: (by_depth[3], by_depth[2])
        )
    if len(tensor_rows) > 1:
        out["tensor_claim_error_grows_with_init"] = _claim(
            tensor_rows,
            "smaller init",
            "larger init",
            lambda rows: (min(rows, key=lambda r: r["init_scale"]), max(rows, key=lambda r: r["init_scale"])),
        )
    # tensor: seconds per iteration of the whole command, times the setting's iterations
    with np.load(SHIPPED_TENSOR) as f:
        total_iterations = int(f["iterations"].sum())
    sides = {"jaxreg_cold": "jaxreg_iterations", "jaxreg_warm": "jaxreg_iterations", "authors": "authors_iterations"}
    rate = {
        side: sum(r[f"{side}_median_s"] for r in tensor_rows) / sum(r[iters] for r in tensor_rows)
        for side, iters in sides.items()
    }
    extrapolation = {
        "tensor": {
            "measured": "per side, the median wall seconds of the measured runs' whole commands over their "
            "iterations (start-up and compilation included)",
            "times": f"the {total_iterations} iterations of the 9 runs (3 seeds x 3 inits) of jaxreg's shipped "
            "paper-size results",
            **{f"{side}_s_per_iteration": v for side, v in rate.items()},
            **{f"{side}_s": v * total_iterations for side, v in rate.items()},
            "ratio_cold": rate["authors"] / rate["jaxreg_cold"],
            "ratio_warm": rate["authors"] / rate["jaxreg_warm"],
        }
    }
    if grid is not None:
        out["matrix_grid_seed_0"] = grid
        if "jaxreg_one_seed_s" in grid:
            j, a = grid["jaxreg_one_seed_s"] * MATRIX_SEEDS, grid["authors_one_seed_estimated_s"] * MATRIX_SEEDS
            extrapolation["matrix"] = {
                "jaxreg_measured": "one command running seed 0's whole grid (24 flows, no baseline), its "
                "compilation cache empty",
                "jaxreg_times": f"{MATRIX_SEEDS} seeds",
                "authors_measured": "per (count, depth): the eager loop's seconds per iteration over a fixed "
                "count; per cell: the iterations counted by the compiled GroupRMSprop loop; per process: the "
                "median start-up (wall minus loop)",
                "authors_times": "sum over seed 0's 24 cells of (iterations x seconds per iteration + start-up), "
                f"times {MATRIX_SEEDS} seeds",
                "jaxreg_cold_s": j,
                "authors_s": a,
                "ratio_cold": a / j,
            }
    out["extrapolation"] = extrapolation
    for r in matrix_rows + tensor_rows:
        print(
            f"{r['label']}: authors / jaxreg = {r['ratio_cold']:.2f}x cold, {r['ratio_warm']:.2f}x warm "
            f"({r['authors_median_s']:.1f} s / {r['jaxreg_cold_median_s']:.1f} s, {r['jaxreg_warm_median_s']:.1f} s); "
            f"error authors {r['authors_error']:.3g}, jaxreg {r['jaxreg_error']:.3g}"
        )
    for name, e in extrapolation.items():
        print(
            f"{name}, whole setting: authors {e['authors_s']:.0f} s / jaxreg {e['jaxreg_cold_s']:.0f} s cold = "
            f"{e['ratio_cold']:.2f}x"
        )
    if args.quick:
        print(json.dumps(out, indent=1, default=str)[:3000])
        return
    save_json("time_to_figure", out, started=started)


if __name__ == "__main__":
    main()
