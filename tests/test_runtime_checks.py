"""The flow and descent programs hold no host callback by default (so JAX's persistent
compilation cache stores them); bad values are refused before tracing, and
``JAXREG_RUNTIME_CHECKS=1`` keeps the run-time checks."""

import equinox as eqx
import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg as jr
from jaxreg import runtime_checks
from jaxreg.problem import Observations, Problem


def _callbacks(jaxpr) -> int:
    """The number of callback equations in ``jaxpr`` and every jaxpr nested in it."""
    n = 0
    for eqn in jaxpr.eqns:
        n += "callback" in eqn.primitive.name
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    n += _callbacks(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    n += _callbacks(sub)
    return n


def _flow(problem, model, t1, ts):
    return jr.gradient_flow(problem.loss, model, t1, ts=ts, stop_at_loss=1e-6, metrics=problem.test_loss)


def _descent(problem, model):
    return jr.gradient_descent(problem.loss, model, optax.sgd(0.1), 4, save_every=2, stop_at_loss=1e-6)


@pytest.fixture(scope="module")
def setup():
    problem = jr.tasks.matrix_completion(jax.random.key(0), (6, 5), 2, 12)
    model = jr.MatrixFactorization(jax.random.key(1), (6, 5), 2, init_scale=0.1)
    return problem, model


@pytest.mark.parametrize("checks", ["0", "1"])
def test_programs_hold_callbacks_only_with_runtime_checks(setup, monkeypatch, checks):
    """Traced save times, times and observed indices (as under ``jr.sweep``): no callback
    by default; with ``JAXREG_RUNTIME_CHECKS=1`` the equinox and diffrax checks are back."""
    monkeypatch.setenv(runtime_checks.ENV, checks)
    problem, model = setup
    ts = jnp.linspace(0.1, 1.0, 4)
    flow = eqx.filter_make_jaxpr(_flow)(problem, model, 1.0, ts)[0].jaxpr
    descent = eqx.filter_make_jaxpr(_descent)(problem, model)[0].jaxpr
    if checks == "0":
        assert _callbacks(flow) == 0 and _callbacks(descent) == 0
    else:
        assert _callbacks(flow) > 0 and _callbacks(descent) > 0


def test_debug_mode_raises_inside_the_program_and_default_does_not(setup, monkeypatch):
    """Indices known only inside a program: unchecked by default (the program has no
    callback), refused when it runs with ``JAXREG_RUNTIME_CHECKS=1``."""
    _, model = setup

    @jax.jit
    def run(idx):
        return jr.gradient_flow(lambda m: jnp.sum(m.entries(idx) ** 2), model, 0.1).loss

    bad = jnp.array([[0, 5]])  # column 5 of a 6 x 5 matrix
    monkeypatch.setenv(runtime_checks.ENV, "0")
    assert np.isfinite(np.asarray(run(bad))).all()
    monkeypatch.setenv(runtime_checks.ENV, "1")
    run_checked = jax.jit(lambda idx: jr.gradient_flow(lambda m: jnp.sum(m.entries(idx) ** 2), model, 0.1).loss)
    with pytest.raises(Exception, match="out of range"):
        run_checked(bad)


def test_equinox_checks_outside_the_flow_are_untouched(setup):
    """After a flow traced without checks, equinox's check is back in place and a jitted
    ``entries`` of the same shapes still refuses a traced out-of-range index."""
    from equinox import _errors

    before = _errors.branched_error_if_impl_jit
    _, model = setup
    jax.jit(lambda idx: jr.gradient_flow(lambda m: jnp.sum(m.entries(idx) ** 2), model, 0.1).loss)(jnp.array([[0, 1]]))
    assert _errors.branched_error_if_impl_jit is before
    run = eqx.filter_jit(lambda m, i: m.entries(i))
    with pytest.raises(Exception, match="out of range"):
        run(model, jnp.array([[0, 5]]))


@pytest.mark.unchecked_types  # float indices on purpose: the problem's own ValueError
def test_problem_checks_its_indices_when_built(setup):
    problem, _ = setup
    train, test = problem.train, problem.test
    assert train.indices is not None
    bad = np.asarray(train.indices).copy()
    bad[0, 1] = 5
    for indices, match in (
        (bad, "train.indices has entries out of range for shape"),
        (-1 - np.asarray(train.indices), "out of range"),
        (np.asarray(train.indices)[:, :1], r"train.indices must have shape \(k, 2\)"),
        (np.asarray(train.indices).astype(float), "train.indices must hold integers"),
    ):
        with pytest.raises(ValueError, match=match):
            Problem("completion", (6, 5), problem.target, Observations(train.values, jnp.asarray(indices)), test)
    with pytest.raises(ValueError, match="test.indices"):
        Problem("completion", (6, 5), problem.target, train, Observations(test.values, jnp.asarray(bad)))


def test_a_check_known_at_trace_time_still_raises():
    """Inside the block a condition that is concrete while tracing raises at once; a
    traced one is left out."""
    with runtime_checks.traced_without_checks(False):
        with pytest.raises(Exception, match="known bad"):
            eqx.error_if(jnp.ones(2), jnp.array([False, True]), "known bad")
        np.testing.assert_array_equal(eqx.error_if(jnp.ones(2), jnp.array(False), "fine"), 1.0)
        traced = jax.make_jaxpr(lambda x: eqx.error_if(x, x > 0, "traced"))(jnp.ones(2))
        assert _callbacks(traced.jaxpr) == 0
