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
# `jr.grid_sweep(fn, grid, keys)` runs `fn(key, **setting)` for every setting of a grid
# of named fields and every seed, and returns an `xarray.Dataset` with one dimension per
# field plus `seed`. Float fields (here the init scale) are vmapped together with the
# seeds into one compiled program, sharded over every visible device (`jr.sweep`);
# fields that fix array shapes (here the depth) are looped in Python, one program each.
# Here: depth-2 vs depth-3 matrix completion over 4 seeds x 2 init scales, by gradient
# flow. Arora et al. (2019) found that the error falls as the init scale shrinks, and
# much more so for depth 3.

# %%
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
import matplotlib.pyplot as plt

import jaxreg as jr

# %%
shape, rank, observed = (20, 20), 2, 150


def experiment(key, init_scale, depth):
    kp, km = jax.random.split(key)
    problem = jr.tasks.matrix_completion(kp, shape, rank, observed)
    model = jr.MatrixFactorization(km, shape, depth, init_scale=init_scale)
    traj = jr.gradient_flow(problem.loss, model, 5e4, stop_at_loss=1e-7, rtol=1e-6, atol=1e-9)
    return {"error": problem.reconstruction_error(traj.model), "status": traj.status}


# the same 4 seeds for every setting (common random numbers)
ds = jr.grid_sweep(experiment, {"depth": [2, 3], "init_scale": [1e-1, 1e-3]}, jr.seed_keys(0, 4))
print(ds)
print("statuses:", sorted({jr.Status.name(s) for s in ds.status.values.ravel()}))
mean, std = ds.error.mean("seed"), ds.error.std("seed")
print(f"{'init':>8} {'depth 2':>20} {'depth 3':>20}")
for s in ds.init_scale.values:
    cells = (
        f"{float(mean.sel(depth=d, init_scale=s)):10.2e} ± {float(std.sel(depth=d, init_scale=s)):7.1e}" for d in (2, 3)
    )
    print(f"{s:8.0e} " + " ".join(cells))

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
for depth in ds.depth.values:
    ax.errorbar(
        ds.init_scale, mean.sel(depth=depth), std.sel(depth=depth), marker="o", capsize=3, label=f"depth {depth}"
    )
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("init scale")
ax.set_ylabel("relative reconstruction error")
ax.legend()
ax.grid(alpha=0.3)
Path("figures").mkdir(exist_ok=True)  # under the working directory (git-ignored)
fig.savefig("figures/04_seed_sweeps.png", dpi=120, bbox_inches="tight")
print("figure saved to figures/04_seed_sweeps.png")

# %% [markdown]
# The same in one line from the command line, with results saved atomically and
# resumable: `jaxreg sweep --config sweep.toml` (see `jaxreg_lab.reproductions.custom_sweep`).

# %%
small, large = 1e-3, 1e-1
assert mean.sel(depth=3, init_scale=small) < 0.5 * mean.sel(depth=2, init_scale=small)  # depth 3 beats 2 at small init
assert mean.sel(depth=3, init_scale=small) < mean.sel(depth=3, init_scale=large)  # smaller init, smaller error
