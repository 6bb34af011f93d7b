"""Seed-sweep throughput: jaxreg (vmapped GD in lax.scan) against a reference-style
PyTorch loop (eager, one seed after another, one Python iteration per step, same math).

Cases (float32, full-batch GD, 2000 observations):
  matrix: depth-3 100x100 completion;   cp: order 4, dims 10, rank 1000.
Prints seed-steps/s for both and their ratio (medians over repeats, measured in the
same run) and saves benchmarks/results/throughput[_TAG].json.

    python benchmarks/throughput.py [--seeds 64] [--steps 200] [--repeats 3] [--tag cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

import jaxreg as jr


def jax_rate(case, seeds, steps, repeats):
    if case == "matrix":
        problem = jr.tasks.matrix_completion(jax.random.key(0), (100, 100), 5, 2000)

        def make(key):
            return jr.MatrixFactorization(key, (100, 100), 3, init_scale=1e-3, dtype=jnp.float32)
    else:
        problem = jr.tasks.tensor_completion(jax.random.key(0), (10,) * 4, 5, 2000)

        def make(key):
            return jr.TensorFactorization(key, (10,) * 4, 1000, init_scale=5e-3, dtype=jnp.float32)

    problem = jax.tree_util.tree_map(lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                                     problem)

    def run(key):
        return jr.gradient_descent(problem.loss, make(key), optax.sgd(1e-2), steps, save_every=steps).loss

    keys = jax.random.split(jax.random.key(1), seeds)
    f = jax.jit(jax.vmap(run))
    t = time.perf_counter()
    jax.block_until_ready(f(keys))
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(keys))
        times.append(time.perf_counter() - t)
    return seeds * steps / statistics.median(times), compile_s


def torch_rate(case, seeds, steps, repeats, device):
    import torch

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    if case == "matrix":
        shape, n_obs = (100, 100), 2000
        target = torch.randn(100, 5, generator=g) @ torch.randn(5, 100, generator=g)
        target = target * (100.0 / target.norm())
        flat = torch.randperm(10000, generator=g)[:n_obs]
        rows, cols = flat // shape[1], flat % shape[1]
        y = target[rows, cols].to(device)
        rows, cols = rows.to(device), cols.to(device)
    else:
        idx = torch.stack([torch.randint(0, 10, (2000,), generator=g) for _ in range(4)], 1).to(device)
        y = torch.randn(2000, generator=g).to(device) * 0.01

    def one_seed():
        if case == "matrix":
            std = (1e-3**2 / (100 * 100**2)) ** (1 / 6)
            ws = [(torch.randn(100, 100) * std).to(device).requires_grad_() for _ in range(3)]
        else:
            ws = [(torch.randn(10, 1000) * 5e-3).to(device).requires_grad_() for _ in range(4)]
        opt = torch.optim.SGD(ws, lr=1e-2)
        for _ in range(steps):  # the reference: one eager Python iteration per step
            opt.zero_grad()
            if case == "matrix":
                w = ws[2] @ ws[1] @ ws[0]
                pred = w[rows, cols]
            else:
                prod = ws[0][idx[:, 0]]
                for n in range(1, 4):
                    prod = prod * ws[n][idx[:, n]]
                pred = prod.sum(-1)
            loss = ((pred - y) ** 2).mean()
            loss.backward()
            opt.step()
        if device != "cpu":
            torch.cuda.synchronize()

    per_repeat = max(1, min(seeds, 4))
    one_seed()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(per_repeat):
            one_seed()
        times.append(time.perf_counter() - t)
    return per_repeat * steps / statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default="matrix,cp")
    ap.add_argument("--tag", default="cpu")
    args = ap.parse_args()
    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        torch, device = None, None
    rows = []
    for case in args.cases.split(","):
        jr_rate, compile_s = jax_rate(case, args.seeds, args.steps, args.repeats)
        th = torch_rate(case, args.seeds, args.steps, args.repeats, device) if torch is not None else None
        rows.append({"case": case, "jaxreg_seed_steps_per_s": jr_rate, "torch_seed_steps_per_s": th,
                     "ratio": None if th is None else jr_rate / th, "jax_compile_s": compile_s})
        print(f"{case:8s} jaxreg {jr_rate:12.1f} seed-steps/s   torch loop "
              f"{(th or float('nan')):12.1f}   ratio {rows[-1]['ratio'] or float('nan'):7.2f}x   compile {compile_s:.1f}s",
              flush=True)
    out = {"seeds": args.seeds, "steps": args.steps, "repeats": args.repeats, "jax_backend": jax.default_backend(),
           "torch_device": device, "machine": platform.machine(), "rows": rows}
    path = Path(__file__).parent / "results" / f"throughput_{args.tag}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
