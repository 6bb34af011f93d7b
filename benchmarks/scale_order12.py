"""Completion of an order-12 tensor with 10^12 entries by CP and HTF models, never materialized.

Measures gradient-descent steps per second (``jr.gradient_descent`` in one ``lax.scan``,
compile time excluded) and the process's peak resident memory, for CP (rank R) and
hierarchical (width R on the default binary mode tree) models, from ``--observed``
entries of a CP-rank-5 target. HTF's rate is printed as a ratio against CP's, measured
in the same run. Writes benchmarks/results/scale_order12.json.

    python benchmarks/scale_order12.py            # 10^5 observations, rank/width 32
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import time

import jax
import jax.numpy as jnp

import jaxreg as jr


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def time_steps(problem, model, steps: int) -> tuple[float, float, float]:
    """(compile+first run seconds, steps per second, final loss)."""
    opt = jr.group_rmsprop(1e-3)
    t0 = time.perf_counter()
    traj = jr.gradient_descent(problem.loss, model, opt, steps, save_every=steps)
    jax.block_until_ready(traj.loss)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    traj = jr.gradient_descent(problem.loss, model, opt, steps, save_every=steps)
    jax.block_until_ready(traj.loss)
    return first, steps / (time.perf_counter() - t0), float(traj.loss[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observed", type=int, default=100_000)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results" / "scale_order12.json"))
    args = parser.parse_args()
    shape = (10,) * 12
    t0 = time.perf_counter()
    problem = jr.tasks.tensor_completion(jax.random.key(0), shape, 5, args.observed, num_test=1000)
    setup = time.perf_counter() - t0
    assert problem.target is None  # 10^12 entries: the target stays factored
    models = {
        "cp": jr.TensorFactorization(jax.random.key(1), shape, args.rank, init_scale=0.5),
        "htf": jr.HierarchicalTensorFactorization(jax.random.key(1), shape, (args.rank,) * 4, init_scale=0.3),
    }
    rows = {}
    for name, model in models.items():
        params = sum(x.size for x in jax.tree_util.tree_leaves(model) if isinstance(x, jnp.ndarray))
        first, rate, loss = time_steps(problem, model, args.steps)
        rows[name] = dict(
            params=int(params), compile_s=first, steps_per_s=rate, final_loss=loss, peak_rss_mib=peak_rss_mib()
        )
    result = dict(
        shape=list(shape),
        entries=10**12,
        observed=args.observed,
        rank=args.rank,
        steps=args.steps,
        setup_s=setup,
        device=str(jax.devices()[0]),
        dtype=str(jnp.zeros(()).dtype),
        models=rows,
        htf_over_cp_rate=rows["htf"]["steps_per_s"] / rows["cp"]["steps_per_s"],
        peak_rss_mib=peak_rss_mib(),
        under_4gib=peak_rss_mib() < 4096,
    )
    print(
        f"order-12 completion, 10^12 entries, {args.observed} observed, rank/width {args.rank} "
        f"(setup {setup:.1f}s, {result['device']})"
    )
    print(f"{'model':6} {'params':>8} {'compile s':>10} {'steps/s':>9} {'peak RSS MiB':>13}")
    for name, r in rows.items():
        print(f"{name:6} {r['params']:8d} {r['compile_s']:10.2f} {r['steps_per_s']:9.2f} {r['peak_rss_mib']:13.0f}")
    print(
        f"HTF / CP steps per second: {result['htf_over_cp_rate']:.3f}; peak RSS {result['peak_rss_mib']:.0f} MiB "
        f"({'under' if result['under_4gib'] else 'OVER'} 4 GiB)"
    )
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
