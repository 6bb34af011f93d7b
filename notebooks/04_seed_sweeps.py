# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Many seeds and settings in one program
#
# `jr.sweep(fn, keys, *args)` vmaps an experiment over a batch of PRNG keys (and any
# per-run arguments, such as init scales) and shards the batch over every visible device.
# Here: depth-2 vs depth-3 matrix completion over 4 seeds x 2 init scales, by gradient
# flow, in one compiled program per depth. Arora et al. (2019) found that the error falls
# as the init scale shrinks, and much more so for depth 3.

# %%
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jaxreg as jr

# %%
SEEDS, SCALES = 4, jnp.array([1e-1, 1e-3])
shape, rank, observed = (20, 20), 2, 150


def experiment(key, init_scale, depth):
    kp, km = jax.random.split(key)
    problem = jr.tasks.matrix_completion(kp, shape, rank, observed)
    model = jr.MatrixFactorization(km, shape, depth, init_scale=init_scale)
    traj = jr.gradient_flow(problem.loss, model, 5e4, stop_at_loss=1e-7, rtol=1e-6, atol=1e-9)
    return problem.reconstruction_error(traj.model), traj.status


keys = jnp.tile(jr.seed_keys(0, SEEDS), (len(SCALES),))  # the same seeds for every init scale
scales = jnp.repeat(SCALES, SEEDS)
errors = {}
for depth in (2, 3):
    err, status = jr.sweep(lambda k, s: experiment(k, s, depth), keys, scales)
    errors[depth] = np.asarray(err).reshape(len(SCALES), SEEDS)
    print(f"depth {depth}: statuses", sorted({jr.Status.name(s) for s in np.asarray(status)}))

print(f"{'init':>8} {'depth 2':>20} {'depth 3':>20}")
for i, s in enumerate(np.asarray(SCALES)):
    print(f"{s:8.0e} " + " ".join(f"{errors[d][i].mean():10.2e} ± {errors[d][i].std():7.1e}" for d in (2, 3)))

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
for depth in (2, 3):
    ax.errorbar(
        np.asarray(SCALES), errors[depth].mean(1), errors[depth].std(1), marker="o", capsize=3, label=f"depth {depth}"
    )
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("init scale")
ax.set_ylabel("relative reconstruction error")
ax.legend()
ax.grid(alpha=0.3)

# %% [markdown]
# The same in one line from the command line, with results saved atomically and
# resumable: `jaxreg sweep --config sweep.toml` (see `jaxreg_lab.reproductions.custom_sweep`).

# %%
assert errors[3][-1].mean() < 0.5 * errors[2][-1].mean()  # depth 3 beats depth 2 at small init
assert errors[3][-1].mean() < errors[3][0].mean()  # smaller init, smaller error
