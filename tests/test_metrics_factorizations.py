"""Every jr.metrics function takes a factorization (materialized, or its parameters read)
or refuses one with one line naming the call that takes it, before anything is traced."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg as jr
from jaxreg import metrics as M

K = jax.random.key
MATRIX = jr.MatrixFactorization(K(0), (6, 5), 2, init_scale=0.5)
CP = jr.TensorFactorization(K(1), (3, 3, 3), rank=2, init_scale=0.8)
HTF = jr.HierarchicalTensorFactorization(K(2), (3, 3, 3, 3), widths=(2, 2), init_scale=0.8)
TT = jr.TensorTrainFactorization(K(3), (3, 3, 3), ranks=2, init_scale=0.8)
TARGET = jax.random.normal(K(4), (6, 5))

# name -> (value on a factorization, the same from the array it stands for)
ACCEPTED = {
    "singular_values": (lambda: M.singular_values(MATRIX), lambda: M.singular_values(MATRIX.materialize())),
    "effective_rank": (lambda: M.effective_rank(MATRIX), lambda: M.effective_rank(MATRIX.materialize())),
    "nuclear_norm": (lambda: M.nuclear_norm(MATRIX), lambda: M.nuclear_norm(MATRIX.materialize())),
    "matricization": (lambda: M.matricization(CP, (1,)), lambda: M.matricization(CP.materialize(), (1,))),
    "matricization_singular_values": (
        lambda: M.matricization_singular_values(HTF, (0, 1)),
        lambda: M.matricization_singular_values(HTF.materialize(), (0, 1)),
    ),
    "matricization_effective_rank": (
        lambda: M.matricization_effective_rank(CP, (0,)),
        lambda: M.matricization_effective_rank(CP.materialize(), (0,)),
    ),
    "reconstruction_error": (
        lambda: M.reconstruction_error(MATRIX, TARGET),
        lambda: M.reconstruction_error(MATRIX.materialize(), TARGET),
    ),
    "squared_reconstruction_error": (lambda: M.squared_reconstruction_error(MATRIX, MATRIX), lambda: jnp.zeros(())),
    "component_norms": (lambda: M.component_norms(CP), lambda: CP.component_norms()),
    "balancedness": (lambda: M.balancedness(MATRIX), lambda: MATRIX.balancedness()),
    "component_norm_entropy_rank": (
        lambda: M.component_norm_entropy_rank(CP),
        lambda: M.component_norm_entropy_rank(CP.component_norms()),
    ),
    "component_effective_rank": (
        lambda: M.component_effective_rank(CP),
        lambda: M.component_norm_entropy_rank(CP.component_norms()),
    ),
    "numerical_component_rank": (
        lambda: M.numerical_component_rank(CP, 0.5),
        lambda: M.numerical_component_rank(CP.component_norms(), 0.5),
    ),
    "tt_effective_ranks": (lambda: M.tt_effective_ranks(CP), lambda: M.tt_effective_ranks(CP.materialize())),
    "ht_rank": (lambda: M.ht_rank(HTF), lambda: M.ht_rank(HTF.materialize(), HTF.tree)),
    "cp_rank_estimate": (lambda: M.cp_rank_estimate(CP, 2), lambda: M.cp_rank_estimate(CP.materialize(), 2)),
}
# name -> (a call with a factorization, the call the message names)
REFUSED = {
    "effective_rank_from_singular_values": (
        lambda: M.effective_rank_from_singular_values(MATRIX),
        "jr.metrics.effective_rank(model)",
    ),
    "numerical_rank": (lambda: M.numerical_rank(MATRIX), "jr.metrics.numerical_component_rank(model)"),
}


def test_every_metric_is_covered():
    public = {n for n in dir(M) if not n.startswith("_") and callable(getattr(M, n))}
    assert public == set(ACCEPTED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_a_factorization_is_accepted(name):
    on_model, on_array = ACCEPTED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        got, want = on_model(), on_array()
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)


@pytest.mark.unchecked_types  # a factorization where an array is annotated: the ValueError behind the hook
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_factorization_is_refused_in_one_line_naming_the_call(name):
    call, names = REFUSED[name]
    with pytest.raises(ValueError, match=rf"^jr\.metrics\.{name} takes an array, not a MatrixFactorization") as e:
        call()
    assert names in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("fn", [M.singular_values, M.effective_rank, M.nuclear_norm])
def test_a_tensor_factorization_is_refused_by_the_matrix_metrics(fn):
    with pytest.raises(ValueError, match=rf"^jr\.metrics\.{fn.__name__} takes a matrix, got an order-3 tensor: use "):
        fn(CP)


@pytest.mark.unchecked_types
def test_an_array_is_refused_where_the_parameters_are_read():
    with pytest.raises(ValueError, match=r"^jr\.metrics\.component_norms reads a factorization's parameters"):
        M.component_norms(MATRIX.materialize())


PROBLEM = jr.tasks.matrix_completion(K(5), (6, 5), 2, 20)
AS_METRICS = ["singular_values", "effective_rank", "nuclear_norm", "component_norms", "balancedness"]
AS_METRICS += ["component_norm_entropy_rank", "numerical_component_rank", "tt_effective_ranks"]


def test_passed_as_metrics_to_a_flow_and_a_descent():
    """The issue's case (``metrics=jr.metrics.effective_rank`` to a flow), and every metric
    of one model argument traced on the model within one descent."""
    traj = jr.gradient_flow(PROBLEM.loss, MATRIX, 0.5, ts=jnp.array([0.0, 0.5]), metrics=M.effective_rank, rtol=1e-6)
    assert float(traj.metrics[0]) == pytest.approx(float(M.effective_rank(MATRIX.materialize())), rel=1e-12)
    every = lambda m: {name: getattr(M, name)(m) for name in AS_METRICS}
    gd = jr.gradient_descent(PROBLEM.loss, MATRIX, optax.sgd(0.1), 1, metrics=every)
    for name in AS_METRICS:
        np.testing.assert_allclose(gd.metrics[name][0], getattr(M, name)(MATRIX), rtol=1e-9, atol=1e-12)


@pytest.mark.unchecked_types
@pytest.mark.parametrize("name", ["effective_rank_from_singular_values", "numerical_rank", "ht_rank"])
def test_a_refusing_metric_fails_before_the_dynamics_are_traced(name, monkeypatch):
    from jaxreg.dynamics import descent, flow

    def never(*args):
        raise AssertionError("traced")

    monkeypatch.setattr(flow, "_flow", never)
    monkeypatch.setattr(descent, "_descent", never)
    fn = getattr(M, name)
    with pytest.raises(ValueError, match=rf"^jr\.metrics\.{name} .*: (use|save) ") as e:
        jr.gradient_flow(PROBLEM.loss, MATRIX, 1.0, metrics=fn)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=rf"^jr\.metrics\.{name} "):
        jr.gradient_descent(PROBLEM.loss, MATRIX, optax.sgd(0.1), 4, metrics=fn)
