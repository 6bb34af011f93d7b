"""Images per second of the regularized (loss + lambda * R, double backward) and plain
training steps: jaxreg (one jitted step) against a PyTorch loop written the way the
reference code trains (eager, torch.autograd.grad with create_graph=True), same small
ResNet, same batch, on the GPU when there is one (torch.cuda.is_available(); JAX picks
its default device). Medians over repeats; prints a table and the regularized/plain cost
ratio of each, and saves benchmarks/results/locality_throughput.json.

    python benchmarks/locality_throughput.py                      # small ResNet, 8x48 images
    python benchmarks/locality_throughput.py --stages 3 --blocks-per-stage 2 --norm channel --canvas 8 56
    python benchmarks/locality_throughput.py --model resnet18 --image-size 150 --batch 64

Runs without torch (then jaxreg only). Razin, Maman, Cohen, ICML 2022.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from jaxreg.locality.models import _STAGE_BLOCKS, _block_strides, batch_logits, make_model
from jaxreg.locality.training import TrainOptions, _loss


def jax_steps(args, H, W):
    model, state = eqx.filter_jit(lambda k: make_model(k, args.model, **_model_kwargs(args)))(
        jax.random.key(0, impl="rbg")
    )
    params, static = eqx.partition(model, eqx.is_array)
    opt = TrainOptions(optimizer="sgd").make_optimizer()
    opt_state = opt.init(params)
    x = jax.random.uniform(jax.random.key(1), (args.batch, 1, H, W))
    y = (jnp.arange(args.batch) % 2).astype(jnp.int32)
    patch = jnp.array([[0, 0, H, W // 4]] * args.batch)
    other = jnp.array([[0, W // 2, H, W // 4]] * args.batch)
    out = {}

    def task_loss(p, state):
        logits, new_state = batch_logits(eqx.combine(p, static), state, x)
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y.astype(logits.dtype))), new_state

    def reg_loss(p, state):  # BCE + 1.0 * R, as in training
        loss, (new_state, *_) = _loss(p, static, state, 1.0, x, y, patch, other, True)
        return loss, new_state

    for name, loss_fn in (("plain", task_loss), ("regularized", reg_loss)):

        @eqx.filter_jit
        def step(params, state, opt_state, loss_fn=loss_fn):
            (loss, new_state), g = jax.value_and_grad(loss_fn, has_aux=True)(params, state)
            updates, opt_state = opt.update(g, opt_state, params)
            return optax.apply_updates(params, updates), new_state, opt_state, loss

        t = time.perf_counter()
        jax.block_until_ready(step(params, state, opt_state))
        compile_s = time.perf_counter() - t
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for _ in range(args.steps):
                params, state, opt_state, loss = step(params, state, opt_state)
            jax.block_until_ready(loss)
            times.append((time.perf_counter() - t) / args.steps)

        # the same steps as one program, a lax.scan (how an epoch ran before: XLA's CPU
        # backend runs a while-loop body markedly slower than a top-level program)
        @eqx.filter_jit
        def scanned(params, state, opt_state, step=step):
            def body(carry, _):
                p, s, o, loss = step(*carry[:3])
                return (p, s, o, loss), None

            return jax.lax.scan(body, (params, state, opt_state, jnp.zeros(())), None, length=args.steps)[0]

        jax.block_until_ready(scanned(params, state, opt_state))
        scan_times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            jax.block_until_ready(scanned(params, state, opt_state))
            scan_times.append((time.perf_counter() - t) / args.steps)
        out[name] = {
            "images_per_s": args.batch / statistics.median(times),
            "images_per_s_in_scan": args.batch / statistics.median(scan_times),
            "compile_s": compile_s,
        }
        out[name]["loop_over_scan"] = out[name]["images_per_s"] / out[name]["images_per_s_in_scan"]
    return out


def torch_steps(args, H, W):
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    # the reference trainer moves model and batches to CUDA when there is a GPU
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def sync():  # CUDA kernels run asynchronously: wait for them before reading the clock
        if device.type == "cuda":
            torch.cuda.synchronize()

    class ChannelNorm(nn.Module):  # LayerNorm over the channels at each position
        def __init__(self, c):
            super().__init__()
            self.ln = nn.LayerNorm(c)

        def forward(self, x):
            return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def norm(c):
        kinds = {"batch": nn.BatchNorm2d, "layer": lambda c: nn.GroupNorm(1, c), "channel": ChannelNorm}
        return kinds.get(args.norm, lambda c: nn.Identity())(c)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.n1 = norm(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.n2 = norm(cout)
            self.sc = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x):
            y = torch.relu(self.n1(self.c1(x)))
            return torch.relu(self.n2(self.c2(y)) + self.sc(x))

    if args.model == "small":
        widths, blocks = [args.width * 2**s for s in range(args.stages)], [args.blocks_per_stage] * args.stages
        stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 2, 1, bias=False), norm(widths[0]), nn.ReLU())
    else:
        widths, blocks = [64, 128, 256, 512], _STAGE_BLOCKS[args.model]
        stem = nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3, bias=False), norm(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    layers, cin = [stem], widths[0]
    block_widths = [w for w, n in zip(widths, blocks) for _ in range(n)]
    for w, stride in zip(block_widths, _block_strides(blocks)):  # the layout of jaxreg's ResNet
        layers.append(Block(cin, w, stride))
        cin = w
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1)).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    bce = nn.BCEWithLogitsLoss()
    x = torch.rand(args.batch, 1, H, W, device=device)
    y = (torch.arange(args.batch, device=device) % 2).float()
    I = (slice(None), slice(None), slice(0, H), slice(0, W // 4))
    J = (slice(None), slice(None), slice(0, H), slice(W // 2, W // 2 + W // 4))

    def step(regularize):  # as the reference trainer
        opt.zero_grad()
        xx = x.clone().requires_grad_(regularize)
        out = net(xx).squeeze(1)
        loss = bce(out, y)
        if regularize:
            g = torch.autograd.grad(out.sum(), xx, create_graph=True)[0][I].reshape(args.batch, -1)
            g = g / g.norm(dim=1, keepdim=True)
            xs = x.detach().clone()
            xs[J] = x[torch.roll(torch.arange(args.batch, device=device), -1)][J]
            xs.requires_grad_(True)
            gs = torch.autograd.grad(net(xs).squeeze(1).sum(), xs, create_graph=True)[0][I].reshape(args.batch, -1)
            gs = gs / gs.norm(dim=1, keepdim=True)
            loss = loss + 1.0 * (g * gs).sum(1).abs().mean()
        loss.backward()
        opt.step()

    out = {}
    for name, regularize in (("plain", False), ("regularized", True)):
        for _ in range(2):  # warm-up (CUDA context, cuDNN algorithm choice)
            step(regularize)
        sync()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for _ in range(args.steps):
                step(regularize)
            sync()
            times.append((time.perf_counter() - t) / args.steps)
        out[name] = {"images_per_s": args.batch / statistics.median(times)}
    out["threads"] = torch.get_num_threads()
    out["device"] = str(device) if device.type == "cpu" else f"{device} ({torch.cuda.get_device_name(device)})"
    return out


def _model_kwargs(args):
    kw = {"norm": args.norm}
    if args.model == "small":
        kw.update(width=args.width, stages=args.stages, blocks_per_stage=args.blocks_per_stage)
    return kw


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="small", choices=["small", "resnet18", "resnet34"])
    p.add_argument("--image-size", type=int, default=None, help="square images of this side (default: 8x48)")
    p.add_argument("--canvas", type=int, nargs=2, metavar=("H", "W"), help="H x W images (overrides --image-size)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--stages", type=int, default=4)
    p.add_argument("--blocks-per-stage", type=int, default=1)
    p.add_argument("--norm", default=None, choices=["batch", "layer", "channel", "none"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "locality_throughput.json"))
    args = p.parse_args()
    if args.norm is None:
        args.norm = "layer" if args.model == "small" else "batch"
    H, W = args.canvas or ((args.image_size, args.image_size) if args.image_size else (8, 48))
    results = {
        "config": {**vars(args), "image": [H, W]},
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "jaxreg": jax_steps(args, H, W),
    }
    if not args.no_torch:
        try:
            results["torch"] = torch_steps(args, H, W)
        except ImportError:
            results["torch"] = None
    torch_device = (results.get("torch") or {}).get("device", "-")
    print(
        f"model {args.model} ({args.norm} norm), images {H}x{W}, batch {args.batch}, "
        f"jaxreg on {results['device']}, torch on {torch_device}"
    )
    if results.get("torch") and ("cuda" in torch_device) != (jax.default_backend() == "gpu"):
        print("warning: jaxreg and torch ran on different kinds of device; the throughput ratio compares them")
    print(f"{'':10s} {'plain img/s':>12s} {'regularized img/s':>18s} {'cost ratio':>11s}")
    for name in ("jaxreg", "torch"):
        r = results.get(name)
        if not r:
            print(f"{name:10s} (not installed)")
            continue
        ratio = r["plain"]["images_per_s"] / r["regularized"]["images_per_s"]
        r["regularized_over_plain_cost"] = ratio
        print(f"{name:10s} {r['plain']['images_per_s']:12.0f} {r['regularized']['images_per_s']:18.0f} {ratio:11.2f}")
    for k in ("plain", "regularized"):
        r = results["jaxreg"][k]
        print(
            f"jaxreg {k} step as a Python loop of jitted steps / as one lax.scan: "
            f"{r['images_per_s']:.0f} / {r['images_per_s_in_scan']:.0f} img/s ({r['loop_over_scan']:.2f}x)"
        )
    if results.get("torch"):
        for k in ("plain", "regularized"):
            results[f"jaxreg_over_torch_{k}"] = (
                results["jaxreg"][k]["images_per_s"] / results["torch"][k]["images_per_s"]
            )
            print(f"jaxreg / torch throughput, {k}: {results[f'jaxreg_over_torch_{k}']:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print("saved", args.out)


if __name__ == "__main__":
    main()
