"""The largest part of the paper-size Pathfinder grid that fits one GPU session.

Paper settings (150 px images, ResNet18 with BatchNorm, SGD lr 1e-2 momentum 0.9,
batch 64) on a reduced grid: path lengths {3, 7} (9 does not fit 150 px with our renderer's spacing), lambda {0, 9}, one seed, 2000/2000
images, at most ``--epochs`` epochs. Saves self-describing results and the figure.

    PYTHONPATH=. python benchmarks/gpu_pathfinder.py --out benchmarks/results/pathfinder_gpu --epochs 12
"""

import argparse
import time

import jax

from jaxreg.locality.experiments import PathfinderConfig, plot_locality, run_pathfinder
from jaxreg.results import save_results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--num-train", type=int, default=2000)
    ap.add_argument("--lengths", default="3,7")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--distractors", type=int, default=1)
    args = ap.parse_args()
    jax.config.update("jax_enable_x64", False)
    config = PathfinderConfig.preset(
        "paper",
        path_lengths=tuple(int(x) for x in args.lengths.split(",")),
        num_distractors=args.distractors,
        lambdas=(0.0, 9.0),
        seeds=tuple(range(args.seeds)),
        num_train=args.num_train,
        num_test=2000,
        max_epochs=args.epochs,
    )
    t0 = time.perf_counter()
    res = run_pathfinder(config, out_dir=args.out + "_ckpt", progress=False)
    wall = time.perf_counter() - t0
    save_results(
        args.out,
        "locality-pathfinder",
        res["arrays"],
        coords=res["coords"],
        config=res["config"],
        wall_time=wall,
        extra={"device": str(jax.devices()[0])},
    )
    plot_locality(res, f"{args.out}/locality-pathfinder.png")
    acc = res["arrays"]["test_accuracy"]
    print(res["coords"], acc[1].tolist() if isinstance(acc, tuple) else acc, f"wall {wall:.0f}s")


if __name__ == "__main__":
    main()
