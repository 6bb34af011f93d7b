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
# # jaxreg quickstart: incremental learning in deep matrix completion
#
# A depth-3 matrix factorization W = W_3 W_2 W_1 fitted to a few observed entries of a
# rank-2 matrix by **exact gradient flow** (diffrax). From a small initialization the
# singular values of W are learned one at a time (Arora, Cohen, Hu, Luo, NeurIPS 2019):
# each obeys d sigma_r/dt = L (sigma_r^2)^{1-1/L} <-grad L(W), u_r v_r^T>, so a
# larger value grows faster, and the solution found has low rank.
#
# Run as a notebook (`jupytext --to ipynb --execute`, with `pip install -e ".[notebooks]"`) or as
# a script: `python notebooks/01_quickstart.py`. Either way the figure is saved under
# `figures/` in the working directory.

# %%
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)  # float64 for flows: at program start, never on import
import jax.numpy as jnp
import matplotlib.pyplot as plt

import jaxreg as jr

# %% [markdown]
# A 30 x 30 rank-2 target, 300 observed entries, and a depth-3 factorization with
# init scale 1e-3 (the factors' entries are N(0, (1e-3)^2)-ish, see the docstring).

# %%
problem = jr.tasks.matrix_completion(jax.random.key(0), (30, 30), rank=2, num_observed=300)
model = jr.MatrixFactorization(jax.random.key(1), (30, 30), depth=3, init_scale=1e-3)
ts = jnp.linspace(1.0, 2000.0, 100)
traj = jr.gradient_flow(problem.loss, model, 2000.0, ts=ts, metrics=lambda m: m.component_norms()[:5])
print("status:", jr.Status.name(traj.status), "| solver steps:", int(traj.num_steps))
print(f"final train loss: {float(traj.loss[-1]):.2e}")
print(f"relative reconstruction error: {float(problem.reconstruction_error(traj.model)):.2e}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for r in range(5):
    ax.plot(ts, traj.metrics[:, r], label=f"sigma_{r + 1}")
ax.set_yscale("log")
ax.set_xlabel("gradient flow time t")
ax.set_ylabel("singular values of W")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
Path("figures").mkdir(exist_ok=True)  # under the working directory (git-ignored)
fig.savefig("figures/01_quickstart.png", dpi=120, bbox_inches="tight")
print("figure saved to figures/01_quickstart.png")

# %% [markdown]
# The two target directions are learned one after the other; the others stay near zero.
# The time each singular value first reaches half its final value:

# %%
final = traj.metrics[-1]
half_times = [float(ts[jnp.argmax(traj.metrics[:, r] > final[r] / 2)]) for r in range(2)]
print("half-way times of sigma_1, sigma_2:", half_times)
print("effective rank of W:", float(jr.metrics.effective_rank(traj.model)))  # metrics take a model or W

# %%
# checks (this notebook runs in CI): recovered, rank 2, learned incrementally
assert problem.reconstruction_error(traj.model) < 5e-2
assert final[2] < 1e-2 * final[1]
assert half_times[1] > half_times[0] + 10.0
