"""Seed-sweep throughput: jaxreg (vmapped GD in lax.scan) against a reference-style
PyTorch loop (eager, one seed after another, one Python iteration per step, same math,
same observations).

Cases (float32, full-batch GD):
  matrix: depth-3 100x100 completion, 2000 observations;
  cp:     order 4, dims 10, rank 1000, 2000 observations;
  htf:    hierarchical, order 4, dims 16, widths (64, 64), 2048 observations (HT target).
jaxreg runs the seeds two ways: ``jax.vmap`` on one device, and ``jr.sweep`` (the
library's seed sweep) over every device. On a CPU host the script exposes one XLA
device per core (XLA_FLAGS=--xla_force_host_platform_device_count=CORES, set before
jax is imported; this is how to run sweeps on a multi-core CPU: XLA runs the small
batched matmuls of one device on one core, so a single CPU device leaves the other
cores idle). On a GPU machine the flag only adds CPU devices; the sweep uses the GPU.

Prints seed-steps/s for both and their ratio to the torch loop (medians over repeats,
measured in the same run), jaxreg's GFLOP/s (XLA's flop count of one vmapped step, per
seed-step) as a fraction of a batched-matmul ceiling measured in the same run (the best
of one device and all devices), and the compile time; saves
benchmarks/results/throughput[_TAG].json.

    python benchmarks/throughput.py [--seeds 64] [--steps 200] [--repeats 3] [--tag cpu] [--host-devices N]
                                    [--chunk-sizes share,1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def _host_devices_from_argv() -> int:
    """--host-devices N (default: the number of cores), read before jax is imported."""
    argv = sys.argv[1:]
    for i, a in enumerate(argv):
        if a.startswith("--host-devices"):
            return int(a.split("=", 1)[1] if "=" in a else argv[i + 1])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={_host_devices_from_argv()}"
    ).strip()

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402

import jaxreg as jr  # noqa: E402

LR = 1e-2


def _f32(tree):
    return jax.tree_util.tree_map(
        lambda x: x.astype(jnp.float32) if eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


def setup(case):
    """(problem in float32, make(key) -> float32 model)."""
    if case == "matrix":
        problem = jr.tasks.matrix_completion(jax.random.key(0), (100, 100), 5, 2000)

        def make(key):
            return jr.MatrixFactorization(key, (100, 100), 3, init_scale=1e-3, dtype=jnp.float32)
    elif case == "cp":
        problem = jr.tasks.tensor_completion(jax.random.key(0), (10,) * 4, 5, 2000)

        def make(key):
            return jr.TensorFactorization(key, (10,) * 4, 1000, init_scale=5e-3, dtype=jnp.float32)
    elif case == "htf":
        problem = jr.tasks.tensor_completion(jax.random.key(0), (16,) * 4, 5, 2048, target="ht", num_test=1000)

        def make(key):
            return jr.HierarchicalTensorFactorization(key, (16,) * 4, (64, 64), init_scale=1e-2, dtype=jnp.float32)
    else:
        raise ValueError(f"unknown case {case!r}")
    return _f32(problem), make


def matmul_ceiling(seeds, repeats, sizes=(128, 256, 512)):
    """GFLOP/s of a float32 batched matmul (seeds, n, n) @ (seeds, n, n) in one jit, for
    each n in ``sizes``, on one device and sharded over all devices: the best of all
    (a practical ceiling for this machine and load, not a theoretical peak)."""
    best = 0.0
    for n in sizes:
        a = jax.random.normal(jax.random.key(0), (seeds, n, n), jnp.float32)
        f = jax.jit(lambda x: x @ x)
        inputs = [a]
        if len(jax.devices()) > 1 and seeds % len(jax.devices()) == 0:
            mesh = Mesh(np.asarray(jax.devices()), ("s",))
            inputs.append(jax.device_put(a, NamedSharding(mesh, PartitionSpec("s"))))
        for x in inputs:
            jax.block_until_ready(f(x))
            for _ in range(max(repeats, 3)):
                t = time.perf_counter()
                jax.block_until_ready(f(x))
                best = max(best, 2 * seeds * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def step_flops(problem, make, seeds):
    """XLA's flop count of one vmapped loss-and-gradient + SGD update, per seed."""
    keys = jax.random.split(jax.random.key(1), seeds)

    models = jax.jit(jax.vmap(lambda k: eqx.partition(make(k), eqx.is_inexact_array)[0]))(keys)
    static = eqx.partition(make(keys[0]), eqx.is_inexact_array)[1]

    def step(p):
        g = jax.grad(lambda q: problem.loss(eqx.combine(q, static)))(p)
        return jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g)

    cost = jax.jit(jax.vmap(step)).lower(models).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"]) / seeds


def _median_rate(f, seeds, steps, repeats):
    """(seed-steps/s median over repeats, first-call seconds = compile + one run)."""
    t = time.perf_counter()
    losses = jax.block_until_ready(f())
    first_s = time.perf_counter() - t
    assert losses.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(losses))), (losses.dtype, losses)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f())
        times.append(time.perf_counter() - t)
    return seeds * steps / statistics.median(times), first_s


def jax_rates(case, seeds, steps, repeats, chunk_sizes):
    """jaxreg's rate with vmap on one device and with jr.sweep over all devices, for
    each chunk size ("share": the per-device share ceil(seeds / devices), i.e. one vmap
    per device; 1: a lax.map over single runs, which keeps one run's working set in
    cache and is jr.sweep's default on several CPU devices)."""
    problem, make = setup(case)

    def run(key):
        model = make(key)
        dtypes = {x.dtype for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))}
        assert dtypes == {jnp.dtype(jnp.float32)}, dtypes  # float32 really is what runs
        return jr.gradient_descent(problem.loss, model, optax.sgd(LR), steps, save_every=steps).loss

    keys = jax.random.split(jax.random.key(1), seeds)
    vmapped = jax.jit(jax.vmap(run))
    vmap_rate, compile_s = _median_rate(lambda: vmapped(keys), seeds, steps, repeats)
    sweep_rates = {}
    for chunk in chunk_sizes:
        size = -(-seeds // len(jax.devices())) if chunk == "share" else int(chunk)
        sweep_rates[chunk] = _median_rate(lambda: jr.sweep(run, keys, chunk_size=size), seeds, steps, repeats)[0]
    return vmap_rate, sweep_rates, compile_s, step_flops(problem, make, seeds)


def torch_rate(case, seeds, steps, repeats, device):
    """Reference style: one seed after another, an eager Python iteration per step,
    entries gathered at the observed indices (the references' forward pass)."""
    import torch

    torch.manual_seed(0)
    problem, _ = setup(case)
    idx = torch.from_numpy(np.asarray(problem.train.indices).astype(np.int64)).to(device)
    y = torch.from_numpy(np.array(problem.train.values)).to(device)

    def params():
        if case == "matrix":
            std = (1e-3**2 / (100 * 100**2)) ** (1 / 6)
            return [torch.randn(100, 100) * std for _ in range(3)]
        if case == "cp":
            return [torch.randn(10, 1000) * 5e-3 for _ in range(4)]
        return (
            [torch.randn(16, 64) * 1e-2 for _ in range(4)]
            + [torch.randn(64, 64) * 1e-2 for _ in range(2)]
            + [torch.randn(64) * 1e-2]
        )

    def predict(ws):
        if case == "matrix":
            w = ws[2] @ ws[1] @ ws[0]
            return w[idx[:, 0], idx[:, 1]]
        if case == "cp":
            prod = ws[0][idx[:, 0]]
            for n in range(1, 4):
                prod = prod * ws[n][idx[:, n]]
            return prod.sum(-1)
        leaves, nodes, out = ws[:4], ws[4:6], ws[6]
        x01 = (leaves[0][idx[:, 0]] * leaves[1][idx[:, 1]]) @ nodes[0]
        x23 = (leaves[2][idx[:, 2]] * leaves[3][idx[:, 3]]) @ nodes[1]
        return (x01 * x23) @ out

    def one_seed():
        ws = [w.to(device).requires_grad_() for w in params()]
        opt = torch.optim.SGD(ws, lr=LR)
        for _ in range(steps):  # the reference: one eager Python iteration per step
            opt.zero_grad()
            loss = ((predict(ws) - y) ** 2).mean()
            loss.backward()
            opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
        return loss.item()

    per_repeat = max(1, min(seeds, 4))
    assert np.isfinite(one_seed())
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
    ap.add_argument("--cases", default="matrix,cp,htf")
    ap.add_argument("--tag", default="cpu")
    ap.add_argument(
        "--chunk-sizes",
        default="share,1",
        help="jr.sweep chunk sizes to measure, comma-separated ('share' = per-device share)",
    )
    ap.add_argument(
        "--host-devices",
        type=int,
        default=None,
        help="CPU devices to expose (default: one per core; read before jax is imported)",
    )
    args = ap.parse_args()
    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        torch, device = None, None
    ndev = len(jax.devices())
    print(f"jax {jax.__version__} on {ndev} {jax.default_backend()} device(s); torch on {device}", flush=True)
    rows = []
    for case in args.cases.split(","):
        vmap_rate, sweep_rates, compile_s, flops = jax_rates(
            case, args.seeds, args.steps, args.repeats, args.chunk_sizes.split(",")
        )
        chunk, sweep_rate = max(sweep_rates.items(), key=lambda kv: kv[1])
        ceiling = matmul_ceiling(args.seeds, args.repeats)  # right after, same load
        th = torch_rate(case, args.seeds, args.steps, args.repeats, device) if torch is not None else None
        best = max(vmap_rate, sweep_rate)
        gflops = flops * best / 1e9
        rows.append(
            {
                "case": case,
                "jaxreg_seed_steps_per_s": best,
                "jaxreg_vmap_one_device_seed_steps_per_s": vmap_rate,
                "jaxreg_sweep_all_devices_seed_steps_per_s": sweep_rate,
                "sweep_chunk_size": chunk,
                "sweep_seed_steps_per_s_by_chunk_size": sweep_rates,
                "devices": ndev,
                "torch_seed_steps_per_s": th,
                "ratio": None if th is None else best / th,
                "ratio_vmap_one_device": None if th is None else vmap_rate / th,
                "jax_compile_s": compile_s,
                "jaxreg_flops_per_seed_step": flops,
                "jaxreg_gflops": gflops,
                "bmm_ceiling_gflops": ceiling,
                "fraction_of_ceiling": gflops / ceiling,
            }
        )
        nan = float("nan")
        print(
            f"{case:7s} jaxreg sweep/{ndev} dev (chunk {chunk}) {sweep_rate:9.1f}  vmap/1 dev {vmap_rate:9.1f}  "
            f"torch loop {(th or nan):8.1f} seed-steps/s  ratio {rows[-1]['ratio'] or nan:6.2f}x "
            f"(1 dev {rows[-1]['ratio_vmap_one_device'] or nan:5.2f}x)  compile {compile_s:5.1f}s  "
            f"{gflops:6.1f} GFLOP/s = {gflops / ceiling:5.1%} of bmm {ceiling:.1f}",
            flush=True,
        )
    out = {
        "seeds": args.seeds,
        "steps": args.steps,
        "repeats": args.repeats,
        "jax_backend": jax.default_backend(),
        "jax_version": jax.__version__,
        "devices": ndev,
        "torch_device": device,
        "machine": platform.machine(),
        "rows": rows,
    }
    path = Path(__file__).parent / "results" / f"throughput_{args.tag}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
