"""Seed-sweep throughput: jaxreg (vmapped GD in lax.scan) against three PyTorch
baselines and a batched-matmul ceiling, all measured in the same run.

Cases (float32, full-batch GD, lr 1e-2, 64 seeds):
  matrix: depth-3 100x100 completion, 2000 observations;
  cp:     order 4, dims 10, rank 1000, 2000 observations;
  htf:    hierarchical, order 4, dims 16, widths (64, 64), 2048 observations (HT target).

Implementations (every one starts from jaxreg's initial parameters of the same seeds; the
final parameters of seed 0 are compared with jaxreg's, ``agreement`` in the JSON):
  jaxreg: ``jax.vmap`` on one device, and ``jr.sweep`` (the library's seed sweep) over
    every device. On a CPU host the script exposes one XLA device per core
    (XLA_FLAGS=--xla_force_host_platform_device_count=CORES, set before jax is
    imported: XLA runs one CPU device's small batched matmuls on one core);
  (a) authors: the authors' public code style, one seed after another, one eager Python
    iteration per step (files cited in benchmarks/_torch_cases.py);
  (b) batched: jaxreg's algorithm (dense W, one flat gather) with all seeds in parallel,
    four ways: parameters stacked per seed with batched matmuls (autograd + torch.optim.SGD),
    ``torch.func.vmap(torch.func.grad(loss))``, and each of the two as one
    ``torch.compile``d step. The fastest is the headline baseline;
  (c) lookup: per-observation row lookups, one seed, eager (the earlier baseline; context).
Ceiling: the batched matmuls one step of the case performs (forward and backward, at the
case's own shapes, all seeds), alone in one jit, on one device and sharded over all;
the best repeat of the two (>= 5 repeats each), with its spread. The same matmuls in
PyTorch (torch.bmm) give the kernel rate the (b) baselines run on: where both sides are
bound by their matmuls, XLA's ceiling over PyTorch's bounds jaxreg / (b).

Timing: every implementation is compiled / warmed up first, then the repeats are
interleaved (round r times every implementation once), so that a change of load hits all
of them alike; rates are medians over the repeats, in seed-steps/s.

    python benchmarks/throughput.py [--seeds 64] [--steps 50] [--repeats 5] [--tag cpu] [--quick]
                                    [--cases matrix,cp,htf] [--chunk-sizes share,1] [--host-devices N]

Saves benchmarks/results/throughput_TAG.json (``--quick``: a smoke run, tag ``quick``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from _save import save_json


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

# torch's OpenMP threads spin while they wait for work. On a machine busier than its
# cores that made one torch step about 18x slower (depth-3 100x100, 4 seeds, float64,
# 2 threads, load 32 on 2 cores: 0.71 s per gradient, 0.040 s with passive waiting), a
# measure of the load, not of torch. Both benchmarks therefore wait passively unless
# OMP_WAIT_POLICY is set (ACTIVE restores torch's default); set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import jaxreg as jr

LR = 1e-2
# (m, k, n) of every matmul of one loss-and-gradient step on jaxreg's dense route
MATMULS = {
    # W = W3 (W2 W1); backward: four more 100^3 products
    "matrix": [(100, 100, 100)] * 6,
    # W_(01;23) = KR(A1, A2) KR(A3, A4)^T; backward: G KR(A3, A4) and G^T KR(A1, A2)
    "cp": [(100, 1000, 100), (100, 100, 1000), (100, 100, 1000)],
    # X01 = KR(M1, M2) M01, X23 likewise, W = X01 diag(w) X23^T; backward: G X23, G^T X01,
    # and per internal node KR^T dX (its matrix) and dX M^T (its leaves)
    "htf": [(256, 64, 64)] * 2 + [(256, 64, 256)] + [(256, 256, 64)] * 2 + [(64, 256, 64), (256, 64, 64)] * 2,
}


def _f32(tree):
    return jax.tree_util.tree_map(
        lambda x: x.astype(jnp.float32) if eqx.is_array(x) and jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


class EinsumHTF(jr.HierarchicalTensorFactorization):
    """HTF whose dense tensor is contracted with one ``jnp.einsum`` per node (its
    children's tensors and its matrix in one call), the contraction jaxreg used before
    the plain Khatri-Rao matmuls of ``HierarchicalTensorFactorization.materialize``: the
    lever's baseline, measured with ``--htf-contraction einsum``."""

    def materialize(self):
        tensors: list = []  # per node: (array with axes modes... + rank, modes)
        for i, ch in enumerate(self.plan.children):
            operands, out_modes = [], []
            z = self.order  # einsum label of the summed local-component axis
            for kind, j in ch:
                arr, modes = (self.leaf_matrices[j], (j,)) if kind == "leaf" else tensors[j]
                operands += [arr, [*modes, z]]
                out_modes += modes
            if i == self.plan.root:
                w = jnp.einsum(*operands, self.output, [z], out_modes)
                return jnp.transpose(w, [out_modes.index(m) for m in range(self.order)])
            t = jnp.einsum(*operands, self.node_matrices[i], [z, z + 1], [*out_modes, z + 1])
            tensors.append((t, tuple(out_modes)))
        raise AssertionError("unreachable")


HTF_CLASSES = {"matmul": jr.HierarchicalTensorFactorization, "einsum": EinsumHTF}


def setup(case, htf_contraction: str = "matmul"):
    """(problem in float32, make(key) -> float32 model); ``htf_contraction``: the HTF
    class, "matmul" (jaxreg's) or "einsum" (:class:`EinsumHTF`)."""
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
            return HTF_CLASSES[htf_contraction](key, (16,) * 4, (64, 64), init_scale=1e-2, dtype=jnp.float32)
    else:
        raise ValueError(f"unknown case {case!r}")
    return _f32(problem), make


def param_list(case, model) -> list:
    """The model's parameters in the layout of benchmarks/_torch_cases.py."""
    if case == "htf":
        return [*model.leaf_matrices, *model.node_matrices, model.output]
    return list(model.factors)


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


def ceiling_runners(case, seeds) -> dict:
    """The case's matmuls alone (all seeds, one jit): on one device and sharded over all."""
    keys = jax.random.split(jax.random.key(2), 2 * len(MATMULS[case]))
    pairs = [
        (jax.random.normal(keys[2 * i], (seeds, m, k)), jax.random.normal(keys[2 * i + 1], (seeds, k, n)))
        for i, (m, k, n) in enumerate(MATMULS[case])
    ]
    f = jax.jit(lambda ps: [a @ b for a, b in ps])
    layouts = {"one_device": pairs}
    if len(jax.devices()) > 1 and seeds % len(jax.devices()) == 0:
        sharding = NamedSharding(Mesh(np.asarray(jax.devices()), ("s",)), PartitionSpec("s"))
        layouts["all_devices"] = jax.device_put(pairs, sharding)

    def runner(ps):
        return lambda: (jax.block_until_ready(f(ps)), seeds)[1]

    return {f"ceiling_{name}": runner(ps) for name, ps in layouts.items()}


def torch_ceiling_runners(case, seeds) -> dict:
    """The case's matmuls in PyTorch (torch.bmm over the stacked seeds): the kernel rate
    the (b) baselines run on, next to XLA's at the same shapes."""
    import torch

    g = torch.Generator().manual_seed(0)
    pairs = [
        (torch.randn(seeds, m, k, generator=g), torch.randn(seeds, k, n, generator=g)) for m, k, n in MATMULS[case]
    ]

    def go():
        for a, b in pairs:
            torch.bmm(a, b)
        return seeds

    return {"torch_ceiling_bmm": go}


def jax_runners(case, seeds, steps, chunk_sizes, htf_contraction="matmul") -> dict:
    """jaxreg with vmap on one device and with jr.sweep over all devices, per chunk size
    ("share": ceil(seeds / devices), one vmap per device; 1: a lax.map over single runs)."""
    problem, make = setup(case, htf_contraction)

    def run(key):
        return jr.gradient_descent(problem.loss, make(key), optax.sgd(LR), steps, save_every=steps)

    keys = jax.random.split(jax.random.key(1), seeds)
    vmapped = jax.jit(jax.vmap(run))

    def timed(f, name):
        def go():
            loss = jax.block_until_ready(f().loss)
            assert loss.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(loss))), (name, loss)
            return seeds * steps

        return go

    runners = {"jaxreg_vmap_one_device": timed(lambda: vmapped(keys), "jaxreg_vmap_one_device")}
    for chunk in chunk_sizes:
        size = -(-seeds // len(jax.devices())) if chunk == "share" else int(chunk)
        name = f"jaxreg_sweep_chunk_{chunk}"
        runners[name] = timed(lambda size=size: jr.sweep(run, keys, chunk_size=size), name)
    return runners


def torch_runners(case, seeds, steps, lookup_steps, compile_variants) -> dict:
    """The PyTorch baselines (a), (b) and (c), from jaxreg's initial parameters."""
    import torch
    from _torch_cases import authors_predict, dense_predict, lookup_predict, torch_data

    problem, make = setup(case)
    keys = jax.random.split(jax.random.key(1), seeds)
    p0 = [np.asarray(p) for p in param_list(case, jax.jit(jax.vmap(make))(keys))]
    data = torch_data(np.asarray(problem.train.indices), np.asarray(problem.train.values), problem.shape)
    flat, y = data["flat"], data["y"]

    def one_seed(predict, n_steps):
        counter = [0]

        def go():
            seed = counter[0] % seeds  # one seed per loop, in turn
            counter[0] += 1
            ws = [torch.tensor(p[seed]).requires_grad_() for p in p0]
            opt = torch.optim.SGD(ws, lr=LR)
            for _ in range(n_steps):  # one eager Python iteration per step
                opt.zero_grad()
                loss = ((predict(case, ws, data) - y) ** 2).mean()
                loss.backward()
                opt.step()
            return n_steps

        return go

    def batched_loss(ws):
        return ((dense_predict(case, ws, flat) - y) ** 2).mean(-1).sum()

    def stacked_autograd():
        def go():
            ws = [torch.tensor(p).requires_grad_() for p in p0]
            opt = torch.optim.SGD(ws, lr=LR)
            for _ in range(steps):
                opt.zero_grad()
                batched_loss(ws).backward()
                opt.step()
            return seeds * steps

        return go

    def one_loss(ws, flat, y):
        return ((dense_predict(case, ws, flat) - y) ** 2).mean()

    vmap_grad = torch.func.vmap(torch.func.grad(one_loss), in_dims=(0, None, None))
    stacked_grad = torch.func.grad(batched_loss)
    steps_fn = {
        "stacked": lambda ws: [w - LR * g for w, g in zip(ws, stacked_grad(ws))],
        "vmap": lambda ws: [w - LR * g for w, g in zip(ws, vmap_grad(ws, flat, y))],
    }

    def functional(step):
        def go():
            ws = [torch.tensor(p) for p in p0]
            with torch.no_grad():
                for _ in range(steps):
                    ws = step(ws)
            return seeds * steps

        return go

    runners = {
        "a_authors": one_seed(authors_predict, steps),
        "b_stacked": stacked_autograd(),
        "b_vmap": functional(steps_fn["vmap"]),
    }
    for kind in compile_variants:
        runners[f"b_{kind}_compiled"] = functional(torch.compile(steps_fn[kind]))
    runners["c_lookup"] = one_seed(lookup_predict, lookup_steps)
    return runners


def measure(runners: dict, rounds: dict) -> tuple[dict, dict]:
    """(rates per runner over its rounds, first-call seconds per runner): every runner
    called once to compile / warm up, then ``max(rounds)`` interleaved rounds."""
    first, rates = {}, {name: [] for name in runners}
    for name, fn in runners.items():
        t = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t
        print(f"  warm-up {name}: {first[name]:.1f} s", flush=True)
    for r in range(max(rounds.values())):
        for name, fn in runners.items():
            if r < rounds[name]:
                t = time.perf_counter()
                n = fn()
                rates[name].append(n / (time.perf_counter() - t))
    return rates, first


def gradient_agreement(case, seeds, htf_contraction="matmul") -> dict:
    """||g_impl - g_jaxreg|| / ||g_jaxreg||: each torch implementation's loss gradient at
    seed 0's initial parameters against jax.grad of jaxreg's loss (float32; (b) through
    its batched code over all seeds, seed 0's slice). At these small inits the timed
    steps move the parameters by little more than float32 roundoff, so final parameters
    would compare roundoff; the gradients are compared instead."""
    import torch
    from _torch_cases import authors_predict, dense_predict, lookup_predict, torch_data

    problem, make = setup(case, htf_contraction)
    keys = jax.random.split(jax.random.key(1), seeds)
    model = make(keys[0])
    params, static = eqx.partition(model, eqx.is_inexact_array)
    g_jax = param_list(case, jax.grad(lambda p: problem.loss(eqx.combine(p, static)))(params))
    g_jax = [np.asarray(g, np.float64) for g in g_jax]
    data = torch_data(np.asarray(problem.train.indices), np.asarray(problem.train.values), problem.shape)
    stacked = [torch.tensor(np.asarray(p)) for p in param_list(case, jax.jit(jax.vmap(make))(keys))]

    def rel(gs):
        gs = [g.detach().numpy().astype(np.float64) for g in gs]
        return float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(gs, g_jax)) / sum(np.sum(b**2) for b in g_jax)))

    def one(predict):
        ws = [w[0].clone().requires_grad_() for w in stacked]
        ((predict(case, ws, data) - data["y"]) ** 2).mean().backward()
        return rel([w.grad for w in ws])

    ws = [w.clone().requires_grad_() for w in stacked]
    ((dense_predict(case, ws, data["flat"]) - data["y"]) ** 2).mean(-1).sum().backward()
    vmapped = torch.func.vmap(
        torch.func.grad(lambda ws, flat, y: ((dense_predict(case, ws, flat) - y) ** 2).mean()), in_dims=(0, None, None)
    )(stacked, data["flat"], data["y"])
    out = {
        "a_authors": one(authors_predict),
        "b_stacked": rel([w.grad[0] for w in ws]),
        "b_vmap": rel([g[0] for g in vmapped]),
        "c_lookup": one(lookup_predict),
    }
    assert max(out.values()) < 1e-4, out  # float32 roundoff is about 1e-7 here
    return out


def _summary(rates):
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "repeats": len(rates)}


def _gflops(rates, flops_per_seed_step):
    """:func:`_summary` of seed-steps/s rates as GFLOP/s (median, min, max)."""
    return {k: v * flops_per_seed_step / 1e9 for k, v in _summary(rates).items() if k != "repeats"}


def run_case(case, args, chunk_sizes, use_torch) -> dict:
    runners = jax_runners(case, args.seeds, args.steps, chunk_sizes)
    if case == "htf" and args.htf_einsum:  # the lever's baseline, timed in the same rounds
        runners |= {
            f"einsum_{n}": f for n, f in jax_runners(case, args.seeds, args.steps, chunk_sizes, "einsum").items()
        }
    if use_torch:
        runners |= torch_runners(
            case, args.seeds, args.steps, args.lookup_steps, [c for c in args.compile.split(",") if c]
        )
    runners |= ceiling_runners(case, args.seeds)
    if use_torch:
        runners |= torch_ceiling_runners(case, args.seeds)
    rounds = {name: max(args.repeats, 5) if "ceiling" in name else args.repeats for name in runners}
    rates, first = measure(runners, rounds)
    med = {name: statistics.median(r) for name, r in rates.items()}
    jax_names = [n for n in med if n.startswith("jaxreg")]
    best_jax = max(jax_names, key=med.get)
    # the ceiling: the best repeat of the faster layout (the rule; medians elsewhere)
    best = {name: max(r) for name, r in rates.items()}
    ceiling_name = max((n for n in med if n.startswith("ceiling")), key=best.get)
    matmul_flops = sum(2 * m * k * n for m, k, n in MATMULS[case])
    problem, make = setup(case)
    flops = step_flops(problem, make, args.seeds)
    row = {
        "case": case,
        "seed_steps_per_s": {name: _summary(r) for name, r in rates.items()},
        "first_call_s": first,
        "jaxreg_best": best_jax,
        "jaxreg_seed_steps_per_s": med[best_jax],
        "ceiling_layout": ceiling_name,
        "ceiling_seed_steps_per_s": best[ceiling_name],
        "ceiling_gflops": _gflops(rates[ceiling_name], matmul_flops),
        "matmul_flops_per_seed_step": matmul_flops,
        "fraction_of_ceiling": med[best_jax] / best[ceiling_name],
        "jaxreg_xla_flops_per_seed_step": flops,
        "jaxreg_gflops": flops * med[best_jax] / 1e9,
    }
    if use_torch:
        b_names = [n for n in med if n.startswith("b_")]
        best_b = max(b_names, key=med.get)
        row |= {
            "b_best": best_b,
            "ratio_vs_a_authors": med[best_jax] / med["a_authors"],
            "ratio_vs_b_best": med[best_jax] / med[best_b],
            "ratio_vs_b": {n: med[best_jax] / med[n] for n in b_names},
            "ratio_vs_c_lookup": med[best_jax] / med["c_lookup"],
            "ratio_one_device_vmap_vs_b_best": med["jaxreg_vmap_one_device"] / med[best_b],
            "gradient_agreement": gradient_agreement(case, args.seeds),
            "torch_ceiling_seed_steps_per_s": med["torch_ceiling_bmm"],
            "torch_ceiling_gflops": _gflops(rates["torch_ceiling_bmm"], matmul_flops),
            # XLA's matmuls against PyTorch's at the case's shapes: when both sides are
            # bound by their matmuls, jaxreg / (b) cannot exceed this by much
            "xla_ceiling_over_torch_ceiling": best[ceiling_name] / best["torch_ceiling_bmm"],
            "b_best_fraction_of_torch_ceiling": med[best_b] / best["torch_ceiling_bmm"],
        }
        # jaxreg / (b) = (jaxreg's share of XLA's matmul ceiling) / ((b)'s share of torch's)
        #                x (XLA's ceiling / torch's): how far each side is from its own kernels,
        #                and how far the kernels are apart
        row["bound"] = (
            f"jaxreg / (b) = {row['ratio_vs_b_best']:.2f} = (jaxreg at {row['fraction_of_ceiling']:.0%} of XLA's "
            f"matmul ceiling) / ({best_b} at {row['b_best_fraction_of_torch_ceiling']:.0%} of torch's) x "
            f"(XLA's matmuls / torch's at these shapes: {row['xla_ceiling_over_torch_ceiling']:.2f})"
        )
    einsum = [n for n in med if n.startswith("einsum_")]
    if einsum:
        best_einsum = max(einsum, key=med.get)
        row["lever_htf_matmul_contraction"] = {
            "lever": "the dense HT tensor as plain Khatri-Rao matmuls instead of one einsum per node",
            "einsum_best": best_einsum,
            "matmul_over_einsum": med[best_jax] / med[best_einsum],
        } | ({"einsum_ratio_vs_b_best": med[best_einsum] / med[best_b]} if use_torch else {})
    return row


def _print_row(row):
    r = row["seed_steps_per_s"]
    print(f"{row['case']}: seed-steps/s (median [min, max] over repeats)")
    for name, s in r.items():
        print(f"  {name:28s} {s['median']:10.1f}  [{s['min']:.1f}, {s['max']:.1f}]")
    c = row["ceiling_gflops"]
    print(
        f"  jaxreg best ({row['jaxreg_best']}) = {row['fraction_of_ceiling']:.0%} of the matmul ceiling "
        f"({c['max']:.1f} GFLOP/s best, spread {c['min']:.1f}-{c['max']:.1f}); XLA count {row['jaxreg_gflops']:.1f} GFLOP/s"
    )
    if "b_best" in row:
        print(
            f"  ratios: vs (a) authors {row['ratio_vs_a_authors']:.2f}x, vs (b) best ({row['b_best']}) "
            f"{row['ratio_vs_b_best']:.2f}x, vs (c) lookup {row['ratio_vs_c_lookup']:.1f}x; "
            f"gradient agreement {max(row['gradient_agreement'].values()):.1e}",
            flush=True,
        )
        t = row["torch_ceiling_gflops"]
        print(
            f"  torch's matmuls (bmm) {t['max']:.1f} GFLOP/s best (spread {t['min']:.1f}-{t['max']:.1f}); "
            f"XLA ceiling / torch's = {row['xla_ceiling_over_torch_ceiling']:.2f}",
            flush=True,
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50, help="GD steps per timed call (seed-parallel implementations)")
    ap.add_argument("--lookup-steps", type=int, default=20, help="steps per timed call of the (c) lookup loop")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cases", default="matrix,cp,htf")
    ap.add_argument("--tag", default="cpu")
    ap.add_argument(
        "--htf-einsum",
        action="store_true",
        help="also time jaxreg's HTF contracted with one einsum per node (EinsumHTF, the lever's baseline)",
    )
    ap.add_argument("--compile", default="stacked,vmap", help="(b) variants to torch.compile (comma-separated)")
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 8 seeds, 5 steps, 2 repeats, no torch.compile, tag 'quick'"
    )
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
    if args.quick:
        args.seeds, args.steps, args.lookup_steps, args.repeats, args.tag = 8, 5, 2, 2, "quick"
        args.compile = ""  # torch.compile takes tens of seconds per variant
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import torch

        torch_info = {
            "version": torch.__version__,
            "threads": torch.get_num_threads(),
            "OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"],
        }
    except ImportError:
        torch_info = None
        print("torch not installed (pip install -e '.[bench]'): jaxreg and the ceiling only", flush=True)
    ndev = len(jax.devices())
    print(f"jax {jax.__version__} on {ndev} {jax.default_backend()} device(s); torch {torch_info}", flush=True)
    t0 = time.perf_counter()
    rows = []
    for case in args.cases.split(","):
        rows.append(run_case(case, args, args.chunk_sizes.split(","), torch_info is not None))
        _print_row(rows[-1])
    out = {
        "command": " ".join(["python", "benchmarks/throughput.py", *sys.argv[1:]]),
        "seeds": args.seeds,
        "steps": args.steps,
        "lookup_steps": args.lookup_steps,
        "repeats": args.repeats,
        "jax_backend": jax.default_backend(),
        "jax_version": jax.__version__,
        "devices": ndev,
        "torch": torch_info,
        "machine": platform.machine(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "rows": rows,
    }
    save_json(f"throughput_{args.tag}", out, started=t0)


if __name__ == "__main__":
    main()
