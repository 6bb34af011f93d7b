"""jr.PrecisionWarning: a flow asking for tolerances below its float type's resolution."""

import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import optax
import pytest

import jaxreg as jr
from jaxreg.dynamics import precision

SCRIPT = textwrap.dedent(
    """
    import jax, optax
    import jaxreg as jr
    problem = jr.tasks.matrix_completion(jax.random.key(0), (6, 5), 2, 20)
    model = jr.MatrixFactorization(jax.random.key(1), (6, 5), 2, init_scale=0.3)
    assert model.factors[0].dtype == "float32"
    jr.gradient_flow(problem.loss, model, 0.1, rtol=1e-4, atol=1e-6)  # within float32's reach
    jr.gradient_descent(problem.loss, model, optax.sgd(0.1), 2)
    print("start", flush=True)
    for _ in range(3):  # the defaults, rtol 1e-8 and atol 1e-10: too fine for float32
        jr.gradient_flow(problem.loss, model, 0.1)
    jr.gradient_flow(problem.loss, model, 0.1, rtol=1e-9)
    """
)


def test_float32_flow_warns_once_per_process_naming_the_x64_switch():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "start"
    lines = [line for line in out.stderr.splitlines() if "PrecisionWarning" in line]
    assert len(lines) == 1, out.stderr
    assert 'jax.config.update("jax_enable_x64", True)' in lines[0] and "float32" in lines[0]


def _float32_model(largest):
    """A float32 model whose largest parameter is ``largest`` in absolute value."""
    model = jr.MatrixFactorization(jax.random.key(1), (6, 5), 2, init_scale=0.3)
    peak = max(float(jnp.max(jnp.abs(f))) for f in model.factors)
    return jax.tree_util.tree_map(lambda x: (x * (largest / peak)).astype(jnp.float32), model)


@pytest.mark.parametrize(
    "rtol, atol, largest, warns",
    [(1e-8, 1e-3, 1.0, True), (1e-5, 1e-8, 1.0, True), (1e-5, 1e-6, 1.0, False), (1e-5, 1e-8, 1e-2, False)],
)
def test_the_rule_rtol_below_eps_or_atol_below_eps_times_the_parameters(rtol, atol, largest, warns):
    """eps = 1.19e-7 for float32: rtol 1e-8 is below it; atol 1e-8 is below eps * 1.0 but
    not below eps * 1e-2."""
    precision._warn_once.cache_clear()
    model = _float32_model(largest)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        precision.warn_if_unresolvable("gradient_flow", jnp.float32, rtol, atol, model)
    assert [w.category for w in caught] == ([jr.PrecisionWarning] if warns else [])


def test_float64_and_descent_never_warn():
    precision._warn_once.cache_clear()
    problem = jr.tasks.matrix_completion(jax.random.key(0), (6, 5), 2, 20)
    model = jr.MatrixFactorization(jax.random.key(1), (6, 5), 2, init_scale=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", jr.PrecisionWarning)
        jr.gradient_flow(problem.loss, model, 0.1, rtol=1e-12, atol=1e-14)
        jr.gradient_descent(problem.loss, _float32_model(0.3), optax.sgd(0.1), 2)
