"""``jaxreg verify``: the theorems of jaxreg.theory checked on random problems.

For each model: a random completion problem, a small balanced initialization, a
gradient flow to the middle of incremental learning; at 8 times along it, the relative
residual of the rate identity (exact derivatives by jax.jvp) and the drift of the
conserved quantities. Exit code 1 if any exceeds its tolerance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import theory
from .dynamics import gradient_flow
from .factorizations import MatrixFactorization, TensorFactorization
from .tasks import matrix_completion, tensor_completion

RATE_TOL = 1e-8
DRIFT_TOL = 1e-9


def _cases(key):
    k = iter(jax.random.split(key, 32))
    for depth in (2, 3, 4):
        p = matrix_completion(next(k), (12, 10), 2, 60)
        yield f"matrix depth {depth}", p, MatrixFactorization(next(k), (12, 10), depth, init_scale=1e-2, balanced=True)
    for order in (2, 3, 4):
        p = tensor_completion(next(k), (4,) * order, 2, 4**order // 2, target_norm=4.0 ** (order / 2))
        init = 0.5 * 0.02 ** (1 / order)
        yield f"CP order {order}", p, TensorFactorization(next(k), (4,) * order, 6, init_scale=init, balanced=True)
    try:
        from .factorizations import DeepTensorFactorization, HierarchicalTensorFactorization
    except ImportError:  # pragma: no cover
        return
    p = tensor_completion(next(k), (4,) * 4, 2, 128, target_norm=16.0)
    yield "HTF order 4", p, HierarchicalTensorFactorization(next(k), (4,) * 4, (6, 6), init_scale=0.3, balanced=True)
    for depth in (1, 2):
        p = tensor_completion(next(k), (4,) * 3, 2, 32, target_norm=8.0)
        yield f"deep CP k={depth}", p, DeepTensorFactorization(next(k), (4,) * 3, 4, depth, init_scale=0.3,
                                                              balanced=True)


def _max_leaf(tree):
    return max(float(jnp.max(x)) for x in jax.tree_util.tree_leaves(tree))


def verify(key=None, *, echo=print) -> bool:
    """Run every check; print a table; True if all residuals are within tolerance."""
    key = jax.random.key(0) if key is None else key
    ok = True
    echo(f"{'model':<16} {'max rate residual':>18} {'conservation drift':>19}  verdict")
    for name, problem, model in _cases(key):
        level = 0.3 * float(problem.loss(model))
        half = gradient_flow(problem.loss, model, 1e5, stop_at_loss=level, rtol=1e-6, atol=1e-9)
        t_half = float(half.ts[-1]) if np.isfinite(float(half.ts[-1])) else 10.0
        ts = jnp.linspace(0.0, t_half, 8)

        def metric(m):
            obs, pred = theory.rate_identity(problem.end_to_end_loss, m)
            big = jax.tree_util.tree_map(lambda s: s >= 0.1 * jnp.max(s), m.component_norms())
            res = jax.tree_util.tree_map(lambda o, p, b: jnp.where(b, jnp.abs(o - p) / jnp.abs(p), 0.0),
                                         obs, pred, big)
            return res

        tr = gradient_flow(problem.loss, model, ts[-1], ts=ts, metrics=metric, rtol=1e-11, atol=1e-13)
        rate = _max_leaf(tr.metrics)
        drift = float(theory.conservation_drift(model, tr.model))
        good = rate <= RATE_TOL and drift <= DRIFT_TOL
        ok &= good
        echo(f"{name:<16} {rate:>18.2e} {drift:>19.2e}  {'ok' if good else 'FAIL'}")
    echo(f"tolerances: rate {RATE_TOL:g}, drift {DRIFT_TOL:g}")
    return ok
