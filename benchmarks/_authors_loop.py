"""One run in the authors' code style: an eager PyTorch loop of GroupRMSprop gradient
descent, one seed per process (benchmark-only; jaxreg never imports torch).

``python benchmarks/_authors_loop.py RUN.npz`` loads one run's initial parameters and
observations (written by ``benchmarks/time_to_figure.py`` from jaxreg's own initial
parameters), runs it and prints one JSON line: the iterations taken, the final training
loss and reconstruction error, the seconds spent importing torch and in the loop.

The loop follows the authors' public code:
  matrix: roosephu/deep_matrix_factorization main.py (float32 ``nn.Linear`` layers, every
    iteration: the end-to-end matrix, the train loss, the parameters' squared norm, the
    test error, ``loss.item() <= train_thres`` checked before the step, the step);
  cp: noamrazin/imp_reg_in_tf (the whole tensor from one einsum, then indexed; the loss
    checked every 25 iterations, stop once it stayed below ``stop`` for 50 checks).
The forward passes are ``_torch_cases``' ``authors_e2e`` and ``authors_predict``. Left out: their logging (an SVD
and a TensorBoard write every 1000 matrix iterations), which would only slow them down.

GroupRMSprop (Arora et al. 2019's ``opt.py``): one scalar rate shared by all parameters,
v <- a v + (1 - a) sum_p ||g_p||^2, p <- p - lr / (sqrt(v / (1 - a^t)) + eps) g_p:
:func:`group_rmsprop_step`, plain arithmetic that runs on numpy arrays and torch tensors
alike (the tests check it against ``jaxreg.group_rmsprop``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DECAY = 0.99  # GroupRMSprop's a, the authors' default
CHECK_EVERY = 25  # cp: iterations between loss checks (their validation period)
CHECKS_BELOW = 50  # cp: consecutive checks at or below ``stop`` that end the run


def group_rmsprop_step(params, grads, v, t: int, *, lr: float, eps: float, decay: float = DECAY):
    """One GroupRMSprop step: v <- a v + (1 - a) sum_p ||g_p||^2, then
    p <- p - lr / (sqrt(v / (1 - a^t)) + eps) g_p for every parameter p.

    Arguments:
        params: the parameters (numpy arrays or torch tensors).
        grads: their gradients, in the same order.
        v: the running mean of the squared gradient norm (0 before the first step).
        t: this step's number, counted from 1.
        lr, eps, decay: the learning rate, the stabilizer, the running mean's decay a.

    Returns:
        ``(new parameters, new v)``.
    """
    v = decay * v + (1 - decay) * sum((g * g).sum() for g in grads)
    rate = lr / ((v / (1 - decay**t)) ** 0.5 + eps)
    return [p - rate * g for p, g in zip(params, grads)], v


def run(spec: dict) -> dict:
    """Run the loop that ``spec`` describes (the arrays and settings of a RUN.npz).

    Arguments:
        spec: ``case`` ("matrix" or "cp"), ``params`` (jaxreg's layout, see
            ``_torch_cases``), ``indices``, ``values``, ``target``, ``lr``, ``eps``,
            ``stop`` (the stop loss), ``cap`` (the most iterations).

    Returns:
        ``iterations``, ``loss``, ``error`` (matrix: the mean over all entries of
        (W - W*)^2, Arora et al.'s; cp: ||W - W*||_F / ||W*||_F, Razin et al.'s),
        ``loop_s``.
    """
    import torch
    from _torch_cases import authors_e2e, authors_predict, torch_data

    case, lr, eps, stop, cap = spec["case"], spec["lr"], spec["eps"], spec["stop"], spec["cap"]
    target = torch.from_numpy(np.asarray(spec["target"], np.float32))
    data = torch_data(np.asarray(spec["indices"]), spec["values"], target.shape)
    idx, target_t = data["idx"], (target.t() if case == "matrix" else target)
    ws = [torch.tensor(np.asarray(p, np.float32), requires_grad=True) for p in spec["params"]]
    v, below, t = torch.zeros(()), 0, 0
    start = time.perf_counter()
    for t in range(cap + 1):
        if case == "matrix":
            e2e = authors_e2e(ws)
            loss = ((e2e[idx[:, 1], idx[:, 0]] - data["y"]) ** 2).mean()
            params_norm = sum((p * p).sum() for p in ws)  # noqa: F841 (theirs, logged every 1000 iterations)
            with torch.no_grad():
                test = ((target_t - e2e) ** 2).mean()  # noqa: F841 (theirs, computed every iteration)
            if loss.item() <= stop:
                break
        else:
            loss = ((authors_predict(case, ws, data) - data["y"]) ** 2).mean()
            if t % CHECK_EVERY == 0:
                below = below + 1 if loss.item() <= stop else 0
                if below >= CHECKS_BELOW:
                    break
        if t == cap:
            break
        grads = torch.autograd.grad(loss, ws)
        with torch.no_grad():
            new, v = group_rmsprop_step(ws, grads, v, t + 1, lr=lr, eps=eps)
        ws = [p.requires_grad_() for p in new]
    loop_s = time.perf_counter() - start
    with torch.no_grad():
        if case == "matrix":
            w = ws[-1]
            for m in reversed(ws[:-1]):
                w = w @ m
            error = float(((w - target) ** 2).mean())
        else:
            w = torch.einsum("az,bz,cz,dz->abcd", *ws)
            error = float(torch.linalg.norm(w - target) / torch.linalg.norm(target))
    return {"iterations": t, "loss": loss.item(), "error": error, "loop_s": loop_s}


def main(path: str) -> None:
    started = time.perf_counter()
    import torch  # noqa: F401 (timed: the authors' process imports it)

    import_s = time.perf_counter() - started
    with np.load(path) as f:
        spec = {k: f[k] for k in f.files}
    n = int(spec.pop("num_params"))
    spec["params"] = [spec.pop(f"param_{i}") for i in range(n)]
    for k in ("lr", "eps", "stop"):
        spec[k] = float(spec[k])
    spec["cap"], spec["case"] = int(spec["cap"]), str(spec["case"])
    print(json.dumps({**run(spec), "import_s": import_s, "torch_threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    sys.path.insert(0, str(Path(__file__).parent))
    main(sys.argv[1])
