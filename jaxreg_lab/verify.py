"""``jaxreg verify``: the theorems of jaxreg.theory checked on random problems.

For each case of each registered model (its ``verify_cases()``): a random completion
problem, a small balanced initialization, a gradient flow to the middle of incremental
learning; at 8 times along it, the relative
residual of the rate identity (exact derivatives by jax.jvp) and the drift of the
conserved quantities. Exit code 1 if any exceeds its tolerance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxreg import theory
from jaxreg.dynamics import Status, gradient_flow
from jaxreg.factorizations import MODELS
from jaxreg.tasks import matrix_completion, tensor_completion

RATE_TOL = 1e-8
DRIFT_TOL = 1e-9


def _cases(key, models):
    """(name, problem, model) for every ``verify_cases()`` of the registered ``models``; each
    case's keys depend on its place among all registered cases only, so a subset of models
    checks the same problems as the full run."""
    cases = [(name, cls, case) for name, cls in MODELS.items() for case in cls.verify_cases()]
    for i, (name, cls, case) in enumerate(cases):
        if name not in models:
            continue
        kp, km = jax.random.split(jax.random.fold_in(key, i))
        if case.task == "matrix":
            p = matrix_completion(kp, case.shape, case.target_rank, case.num_observed)
        else:
            p = tensor_completion(kp, case.shape, case.target_rank, case.num_observed, target_norm=case.target_norm)
        yield case.name, p, cls.from_options(km, case.shape, **case.options)


def _max_leaf(tree):
    return max(float(jnp.max(x)) for x in jax.tree_util.tree_leaves(tree))


def verify(key=None, *, echo=print, models=None) -> bool:
    """Check the rate identity and the conservation laws of every case of every model.

    Arguments:
        key: PRNG key of the problems and initializations (default ``jax.random.key(0)``).
        echo: receives each line of the table.
        models: names of :data:`jaxreg.factorizations.MODELS` to check (default: all).

    Returns:
        True if every residual and drift is within tolerance.
    """
    key = jax.random.key(0) if key is None else key
    models = tuple(MODELS) if models is None else tuple(models)
    for name in models:
        if name not in MODELS:
            raise ValueError(f"models must be names of {tuple(MODELS)}, got {name!r}")
    ok = True
    echo(f"{'model':<16} {'max rate residual':>18} {'conservation drift':>19}  verdict")
    for name, problem, model in _cases(key, models):
        level = 0.3 * float(problem.loss(model))
        half = gradient_flow(problem.loss, model, 1e5, stop_at_loss=level, rtol=1e-6, atol=1e-9)
        t_half = float(half.ts[-1]) if np.isfinite(float(half.ts[-1])) else 10.0
        ts = jnp.linspace(0.0, t_half, 8)

        def metric(m):
            obs, pred = theory.rate_identity(problem.end_to_end_loss, m)
            terms = theory.rate_terms(problem.end_to_end_loss, m)
            # per group (e.g. HTF node, TT bond): the components within 10x of the group's largest
            big = jnp.concatenate([s >= 0.1 * jnp.max(s) for s in terms.split(terms.sigma).values()])
            return jnp.where(big, jnp.abs(obs - pred) / jnp.abs(pred), 0.0)

        tr = gradient_flow(problem.loss, model, ts[-1], ts=ts, metrics=metric, rtol=1e-11, atol=1e-13)
        rate = _max_leaf(tr.metrics)
        drift = float(theory.conservation_drift(model, tr.model))
        flow_ok = bool(Status.ok(int(tr.status)))
        good = flow_ok and rate <= RATE_TOL and drift <= DRIFT_TOL
        ok &= good
        verdict = "ok" if good else "FAIL" if flow_ok else f"FAIL (flow {Status.name(int(tr.status))})"
        echo(f"{name:<16} {rate:>18.2e} {drift:>19.2e}  {verdict}")
    echo(f"tolerances: rate {RATE_TOL:g}, drift {DRIFT_TOL:g}")
    return ok
