"""The regularizer's R computed with frozen normalization statistics against R computed in
training mode (the authors' choice), on a small BatchNorm network.

Is-Same-Class at the tiny preset's geometry (8x32 canvas, gap 16, 64 training and 64
test pairs, the small ResNet, the preset's Adam) with BatchNorm, 24 epochs; lambda 0 once, and
lambda 0.3 trained with ``r_mode="frozen"`` and with ``r_mode="train"``, every seed from the
same initial network. Per run: test and train accuracy, the held-out R (inference mode,
the same measure for both) and the R that training minimized, averaged over the last
epoch's batches.

    PYTHONPATH=. python benchmarks/r_mode.py [--seeds 3] [--epochs 24] [--lam 0.3]

Saves benchmarks/results/r_mode.json.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from _save import save_json

from jaxreg.locality import is_same_class, train_runs
from jaxreg_lab.locality.configs import HISTORY_METRICS, IsSameClassConfig


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--lam", type=float, default=0.3)
    ap.add_argument("--distance", type=int, default=16)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    config = IsSameClassConfig.preset(
        "tiny", norm="batch", distances=(args.distance,), seeds=args.seeds, max_epochs=args.epochs
    )
    ktr, kte = jax.random.split(jax.random.fold_in(jax.random.key(config.data_seed), args.distance))
    kw = dict(scale=config.scale, canvas=config.canvas)
    train = is_same_class(ktr, config.num_train, args.distance, split="train", **kw)
    test = is_same_class(kte, config.num_test, args.distance, split="test", **kw)
    r_index = list(HISTORY_METRICS).index("R")
    rows = []
    for label, lam, mode in (("lambda 0", 0.0, "frozen"), ("frozen", args.lam, "frozen"), ("train", args.lam, "train")):
        with jax.enable_x64(False):
            res = train_runs(config.model_spec(), train, test, (lam,), config.seeds, config.options(r_mode=mode))
        history = res["history"][:, 0]  # (epoch, seed, metric)
        last = [int(e) - 1 for e in res["epochs"][0]]
        rows.append(
            {
                "run": label,
                "lambda": lam,
                "r_mode": mode,
                "test_accuracy": res["test_accuracy"][0].tolist(),
                "train_accuracy": res["train_accuracy"][0].tolist(),
                "held_out_R": res["test_R"][0].tolist(),
                "training_R_last_epoch": [float(history[e, s, r_index]) for s, e in enumerate(last)],
                "epochs": res["epochs"][0].tolist(),
            }
        )
        print(
            f"{label}: test accuracy {np.round(rows[-1]['test_accuracy'], 3).tolist()}, held-out R "
            f"{np.round(rows[-1]['held_out_R'], 3).tolist()}, training R {np.round(rows[-1]['training_R_last_epoch'], 3).tolist()}",
            flush=True,
        )
    save_json(
        "r_mode",
        {
            "command": "python benchmarks/r_mode.py" + (" " + " ".join(argv) if argv else ""),
            "setting": {
                "task": "is-same-class",
                "distance": args.distance,
                "canvas": list(config.canvas),
                "num_train": config.num_train,
                "num_test": config.num_test,
                "norm": "batch",
                "optimizer": config.optimizer,
                "learning_rate": config.learning_rate,
                "epochs": args.epochs,
                "seeds": list(config.seeds),
            },
            "rows": rows,
        },
        started=t0,
    )


if __name__ == "__main__":
    main()
