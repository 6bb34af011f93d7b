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
# # Gradient flow against the optimizers people run
#
# The theorems are about gradient flow d theta/dt = -grad L(theta). Gradient descent
# with step eta is its explicit-Euler discretization: after k steps it approximates the
# flow at time t = k eta with an error of order eta. GroupRMSprop (the reference code's
# optimizer) divides every gradient by one shared scalar, so it follows the same *path*
# re-timed. Here we measure both against the exact flow on a small deep matrix
# completion problem.

# %%
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import matplotlib.pyplot as plt
import optax

import jaxreg as jr

# %%
problem = jr.tasks.matrix_completion(jax.random.key(0), (20, 20), rank=2, num_observed=120)
model = jr.MatrixFactorization(jax.random.key(1), (20, 20), depth=3, init_scale=0.1)
T = 60.0
ts = jnp.linspace(0.0, T, 31)
flow = jr.gradient_flow(problem.loss, model, T, ts=ts, rtol=1e-11, atol=1e-13, metrics=lambda m: m.materialize())
print("flow:", jr.Status.name(flow.status), int(flow.num_steps), "solver steps")

# %% [markdown]
# Gradient descent with step eta, saved at the same times t = k eta: the maximum relative
# distance max_t ||W_GD(t) - W_GF(t)|| / ||W_GF(t)|| halves when eta halves.


# %%
def gd_error(eta):
    steps = int(round(T / eta))
    gd = jr.gradient_descent(
        problem.loss, model, optax.sgd(eta), steps, save_every=steps // 30, metrics=lambda m: m.materialize()
    )
    diff = jnp.linalg.norm((gd.metrics - flow.metrics).reshape(31, -1), axis=1)
    ref = jnp.linalg.norm(flow.metrics.reshape(31, -1), axis=1)
    return float(jnp.max(diff[1:] / ref[1:])), steps


etas = [0.2, 0.1, 0.05, 0.025]
errors = [gd_error(eta) for eta in etas]
for eta, (err, steps) in zip(etas, errors):
    print(f"eta {eta:6.3f}: {steps:5d} steps, max relative distance from the flow {err:.2e}")
print(f"flow: {int(flow.num_steps)} steps of an adaptive Tsit5 at rtol 1e-11")

# %%
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.loglog(etas, [e for e, _ in errors], "o-", label="GD")
ax.loglog(etas, [errors[0][0] * eta / etas[0] for eta in etas], "k--", lw=1, label="slope 1")
ax.set_xlabel("step size eta")
ax.set_ylabel("max_t ||W_GD - W_GF|| / ||W_GF||")
ax.legend()
ax.grid(alpha=0.3)
Path("figures").mkdir(exist_ok=True)  # under the working directory (git-ignored)
fig.savefig("figures/03_flow_vs_descent.png", dpi=120, bbox_inches="tight")
print("figure saved to figures/03_flow_vs_descent.png")

# %% [markdown]
# GroupRMSprop re-times the path: compare the end-to-end matrices at equal training loss.

# %%
rms = jr.gradient_descent(problem.loss, model, jr.group_rmsprop(1e-3), 20_000, save_every=20_000)
target_loss = rms.loss[-1]
matched = jr.gradient_flow(problem.loss, model, 1e4, stop_at_loss=float(target_loss), rtol=1e-11, atol=1e-13)
w_rms, w_flow = rms.model.materialize(), matched.model.materialize()
path_gap = float(jnp.linalg.norm(w_rms - w_flow) / jnp.linalg.norm(w_flow))
print(f"GroupRMSprop (lr 1e-3) vs flow at equal loss {float(target_loss):.2e}: relative gap {path_gap:.2e}")

# %%
ratios = [errors[i][0] / errors[i + 1][0] for i in range(len(errors) - 1)]
print("error ratios when eta halves:", [round(r, 2) for r in ratios])
assert all(1.6 < r < 2.4 for r in ratios), ratios  # first order in eta
assert errors[-1][0] < 5e-2
assert path_gap < 1e-2
