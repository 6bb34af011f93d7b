"""The factorization interface: every registered model honours the same contract.

Parametrized over ``jaxreg.factorizations.MODELS`` (each model's first ``verify_cases()``
entry), so a newly registered model is tested without editing this file."""

import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxreg as jr
from jaxreg import theory
from jaxreg.factorizations import MODELS, model_class

CASES = [(name, cls.verify_cases()[0]) for name, cls in MODELS.items() if cls.verify_cases()]


def _build(name, case, key=0):
    return MODELS[name].from_options(jax.random.key(key), case.shape, **case.options)


def _indices(shape, n=40, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(np.stack([rng.integers(0, d, n) for d in shape], axis=1))


def test_every_registered_model_has_a_verify_case():
    assert set(MODELS) >= {"matrix", "cp", "hierarchical", "deep_cp", "tensor_train"}
    assert [name for name, _ in CASES] == list(MODELS)
    with pytest.raises(ValueError, match="model must be one of"):
        model_class("tucker")


@pytest.mark.parametrize("name,case", CASES, ids=[c[0] for c in CASES])
def test_contract(name, case):
    """Shapes of every method, entries == materialize, and the rate identity exactly at a
    balanced init (the identity is an exact statement at every balanced point)."""
    m = _build(name, case)
    assert isinstance(m, jr.AbstractFactorization)
    w = m.materialize()
    assert w.shape == case.shape
    idx = _indices(case.shape)
    np.testing.assert_allclose(m.entries(idx), w[tuple(idx.T)], rtol=1e-12, atol=1e-14 * float(jnp.max(jnp.abs(w))))
    norms = m.component_norms()
    assert norms.ndim == 1 and norms.shape[0] >= 1 and bool(jnp.all(norms >= 0))
    loss = jr.tasks.tensor_completion(jax.random.key(1), case.shape, 2, case.num_observed).end_to_end_loss
    terms = theory.rate_terms(loss, m)
    assert isinstance(terms, jr.RateTerms)
    k = terms.sigma.shape
    assert len(k) == 1 and all(x.shape == k for x in (terms.gamma, terms.coefficient, terms.exponent))
    np.testing.assert_allclose(terms.sigma, m.rate_sigma(), rtol=1e-13)
    if terms.groups:
        assert sum(n for _, n in terms.groups) == k[0]
        assert sum(v.shape[0] for v in terms.split(terms.sigma).values()) == k[0]
    observed, predicted = theory.rate_identity(loss, m)
    big = np.concatenate([np.asarray(s) >= 0.1 * float(jnp.max(s)) for s in terms.split(terms.sigma).values()])
    residual = np.abs(np.asarray(observed - predicted)) / np.abs(np.asarray(predicted))
    assert residual[big].max() <= 1e-8, residual
    bal = m.balancedness()
    assert bal.ndim == 1 and float(jnp.max(bal, initial=0.0)) <= 1e-12 * float(m.conservation_scale())
    assert jax.tree_util.tree_leaves(m.conserved_quantities())
    # a different init of the same model moves W: the checks above are not about a constant
    assert float(jnp.max(jnp.abs(_build(name, case, key=5).materialize() - w))) > 1e-6


@pytest.mark.unchecked_types  # wrong types on purpose (float indices): the library's own ValueErrors
@pytest.mark.parametrize("name,case", CASES, ids=[c[0] for c in CASES])
def test_entries_refuses_bad_indices(name, case):
    m = _build(name, case)
    good = np.zeros((3, len(case.shape)), np.int32)
    too_big = good.copy()
    too_big[1, -1] = case.shape[-1]
    with pytest.raises(ValueError, match="out of range"):
        m.entries(too_big)
    with pytest.raises(ValueError, match="out of range"):
        m.entries(-1 - good)
    with pytest.raises(ValueError, match="shape"):
        m.entries(good[:, :-1])
    with pytest.raises(ValueError, match="integers"):
        m.entries(good.astype(float))
    with pytest.raises(ValueError, match="do not apply"):
        MODELS[name].from_options(jax.random.key(0), case.shape, no_such_option=1, **case.options)


def test_entries_refuses_traced_out_of_range_indices():
    """Under jit the range is checked when the program runs (equinox.error_if)."""
    m = jr.TensorFactorization(jax.random.key(0), (3, 4), 2)
    run = eqx.filter_jit(lambda m, i: m.entries(i))
    np.testing.assert_allclose(run(m, jnp.array([[2, 3]])), m.materialize()[2, 3], rtol=1e-14)
    with pytest.raises(Exception, match="out of range"):
        run(m, jnp.array([[2, 4]]))


def test_float64_without_x64_is_one_clear_error():
    """Every registered model refuses dtype=float64 when x64 is off (it used to build float32)."""
    code = """
import jax, jax.numpy as jnp
from jaxreg.factorizations import MODELS
for name, cls in MODELS.items():
    case = cls.verify_cases()[0]
    try:
        cls.from_options(jax.random.key(0), case.shape, dtype=jnp.float64, **case.options)
    except ValueError as e:
        assert "x64" in str(e) and len(str(e).splitlines()) == 1, e
    else:
        raise SystemExit(name + ": float64 accepted with x64 off")
    assert cls.from_options(jax.random.key(0), case.shape, **case.options).materialize().dtype == jnp.float32
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr[-2000:]


def test_deep_cp_depth_is_a_deprecated_alias_of_factor_depth():
    with pytest.warns(DeprecationWarning, match="factor_depth"):
        old = jr.DeepTensorFactorization(jax.random.key(0), (3, 3, 3), 2, depth=1, init_scale=0.5)
    new = jr.DeepTensorFactorization(jax.random.key(0), (3, 3, 3), 2, factor_depth=1, init_scale=0.5)
    assert old.factor_depth == new.factor_depth == 1
    np.testing.assert_array_equal(old.materialize(), new.materialize())
    with pytest.warns(DeprecationWarning, match="factor_depth"):
        assert new.depth == 1
    with pytest.warns(DeprecationWarning):
        with pytest.raises(ValueError, match="not both"):
            jr.DeepTensorFactorization(jax.random.key(0), (3, 3, 3), 2, factor_depth=1, depth=1)
    # component_norms are W's end-to-end component norms ||(x)_n v_r^n||
    v = new.end_factors()
    ends = jnp.prod(jnp.stack([jnp.linalg.norm(f, axis=0) for f in v]), axis=0)
    np.testing.assert_allclose(new.component_norms(), ends, rtol=1e-13)
    assert float(jnp.max(jnp.abs(new.component_norms() - new.rate_sigma()))) > 1e-3
