"""Razin, Maman, Cohen 2021 at tiny size, through the CLI: the component-norm dynamics
(tensor-dynamics) and tensor rank as a measure of complexity (tensor-rank-complexity)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_repro_tensor import _reproduce, check_claims  # the CLI round trip: reproduce, load, re-plot

import jaxreg as jr
from jaxreg_lab.reproductions import tensor_dynamics, tensor_rank_complexity


@pytest.fixture(scope="module")
def dynamics_run(tmp_path_factory):
    return _reproduce(tensor_dynamics.NAME, tmp_path_factory.mktemp(tensor_dynamics.NAME))


@pytest.fixture(scope="module")
def complexity_run(tmp_path_factory):
    return _reproduce(tensor_rank_complexity.NAME, tmp_path_factory.mktemp(tensor_rank_complexity.NAME))


def test_tensor_dynamics(dynamics_run):
    """Catches a model that learns its components together (no incremental learning: a
    wrong rate exponent, or an init scale that is not applied), an init scale that does
    not change the final rank, and a run stopped at its first loss below 1e-8 (the
    reference trains on for 1250 iterations: error 0.004 here, 0.008 without)."""
    res = dynamics_run
    assert res.coords["init_scale"] == [1e-2, 5e-2]
    assert res.dims["component_norms"] == ("init_scale", "seed", "iteration", "component")
    halves, counts = res["half_time"][:, 0], res["num_components"][:, 0]  # (init_scale, ...) of seed 0
    err = res["reconstruction_error"][:, 0, -1]
    # init 1e-2: the 5 target components are learned one at a time, in order, each >= 250 iterations after the previous
    learned = halves[0][np.isfinite(halves[0])]
    assert learned.size == 5, halves[0]
    assert np.all(np.diff(learned) >= 250), learned
    # both runs stop by the reference's criterion: loss <= 1e-8 held for stop_patience iterations
    assert res["status"][:, 0].tolist() == [jr.Status.CONVERGED] * 2, res["status"]
    assert np.all(res["loss"][:, 0, -1] <= 1e-8)
    assert err[0] < 0.006, err
    # init 5e-2: more components above 10% and above 1% of the largest norm (a higher final rank)
    assert np.all(counts[1] > counts[0]), counts
    assert counts[0].tolist() == [5, 5], counts


def test_descent_with_patience():
    """The stop waits ``stop_patience`` iterations with the loss at most ``stop_at_loss`` at
    every save, and the saves after the stop repeat the final values."""
    settings = dict(rank=2, top=2, save_every=10, stop_patience=50, lr=0.05)
    config = tensor_dynamics.Config(num_steps=400, **settings)

    def loss(m):
        return jnp.sum(m.factors[0] ** 2)

    model = jr.TensorFactorization(jax.random.key(0), (3, 3), 2, init_scale=0.1)
    _, losses, norms, status, steps = eqx.filter_jit(tensor_dynamics.descent_with_patience)(
        loss, model, config, lambda m: m.component_norms()
    )
    losses = np.asarray(losses)
    first = int(np.argmax(losses <= config.stop_at_loss))
    assert 0 < first and int(status) == jr.Status.CONVERGED
    assert int(steps) == (first + 5) * config.save_every  # 6 saves in a row at most 1e-8
    np.testing.assert_array_equal(losses[first + 5 :], losses[first + 5])
    assert np.asarray(norms).shape == (41, 2)
    short = tensor_dynamics.Config(num_steps=10 * (first + 3), **settings)  # capped before the patience is over
    assert int(eqx.filter_jit(tensor_dynamics.descent_with_patience)(loss, model, short, lambda m: 0.0)[3]) == (
        jr.Status.MAX_STEPS
    )


def test_half_times():
    steps = np.arange(5) * 10
    norms = np.array([[0, 0, 0], [0.4, 0, 0], [1, 0.1, 0], [1, 0.6, 1e-3], [1, 1, 1e-3]])
    np.testing.assert_array_equal(tensor_dynamics.half_times(steps, norms, 0.1), [20, 30, np.nan])


def test_tensor_dynamics_claims(dynamics_run):
    """At tiny size (R = 200, init 1e-2 and 5e-2, one seed) the smaller init learns the
    target's components in order, fits, and ends with a lower error (by more than 4x) and
    fewer components; its last two half-times are less than 1.2x apart, so
    ``one-at-a-time`` counts 4 rises of 5."""
    claims = check_claims(
        dynamics_run,
        tensor_dynamics,
        ("ordered", "smaller-init-lower-error", "init-error-4x", "smaller-init-fewer-components", "small-init-fits"),
    )
    assert claims["one-at-a-time"]["values"] == [4.0]


def test_tensor_rank_complexity(complexity_run):
    """Catches a data variant that is not what it says (random labels or inputs equal to
    the natural data, or natural labels scrambled), a CP fit that fails on natural data,
    and a fit too short or too weak for the random data's error to fall with the rank
    (e.g. the former 2000 full-batch steps, or the weight clamp at order 16)."""
    res = complexity_run
    assert res.coords["variant"] == ["natural", "random labels", "random inputs"]
    assert res.coords["rank"] == [1, 2, 8]
    assert res.dims["train_error"] == ("variant", "rank", "seed")
    var = float(res["label_variance"].mean())
    assert 0.07 < var < 0.1  # one digit of ten: p(1 - p) ~ 0.09
    train, test = res["train_error"].mean(-1), res["test_error"].mean(-1)  # (variant, rank)
    # natural data: rank 1 fits to below 0.3 x the variance, and generalizes (test below 0.5 x variance)
    assert train[0, 0] < 0.3 * var and test[0, 0] < 0.5 * var, (train, test, var)
    # random labels / inputs: not fitted at ranks 1-2, and the test error is at chance or worse at every rank
    assert np.all(train[1:, :2] > 0.5 * var), (train, var)
    assert np.all(test[1:] > 0.9 * var), (test, var)
    # their training error falls with the rank (rank 8 against rank 1), their test error rises
    assert train[1, 2] < 0.75 * train[1, 0] and train[2, 2] < 0.3 * train[2, 0], train
    assert np.all(test[1:, 2] > test[1:, 0]), test
    assert tensor_rank_complexity.rank_to_fit(res, 0.3) == [1, None, 8]


def test_tensor_rank_complexity_claims(complexity_run):
    """At tiny size natural data are fitted at rank 1 and the random variants are not at
    ranks 1-2 (their fall to rank 8 is the test above: the claim's 2x needs the small
    preset's 10,000 epochs and rank 15)."""
    check_claims(complexity_run, tensor_rank_complexity, ("natural-fits-at-low-rank", "random-not-fit-at-low-rank"))


def test_digit_entries_and_rank_blocks():
    """Pooled, quantized digits are valid multi-indices; the concatenated ranks' blocks
    predict as each rank's own CP model, and the summed loss gives each block the gradient
    of its own loss (so Adam moves each block as its own run)."""
    idx, vals = tensor_rank_complexity.digit_tensor_entries(2, 3, 6, 2.0, 0.0)
    assert idx.shape == (1797, 16) and idx.min() == 0 and idx.max() == 2
    assert set(np.unique(vals)) == {0.0, 2.0} and 0.08 < np.mean(vals == 2.0) < 0.12
    ranks, shape = (1, 2, 4), (3,) * 16
    blocks = jnp.asarray(tensor_rank_complexity.rank_blocks(ranks))
    assert blocks.shape == (7, 3) and blocks.sum(0).tolist() == [1, 2, 4]
    full = jr.TensorFactorization(jax.random.key(0), shape, 7, init_scale=0.3)
    factors = 1.0 + jnp.stack(full.factors)  # (mode, level, component), entries around 1 as in the runs
    x, y = jnp.asarray(idx[:50]), jnp.asarray(vals[:50])
    onehot = jax.nn.one_hot(x, 3)
    preds = tensor_rank_complexity.block_predictions(factors, onehot, blocks)
    starts = np.cumsum((0, *ranks))
    own = [
        eqx.tree_at(
            lambda m: m.factors,
            jr.TensorFactorization(jax.random.key(1), shape, r),
            tuple(factors[n, :, s : s + r] for n in range(16)),
        )
        for r, s in zip(ranks, starts)
    ]
    for j, m in enumerate(own):
        np.testing.assert_allclose(preds[:, j], m.entries(x), rtol=1e-5)
    total = jax.grad(
        lambda f: jnp.sum(jnp.mean((tensor_rank_complexity.block_predictions(f, onehot, blocks) - y[:, None]) ** 2, 0))
    )(factors)
    for m, r, s in zip(own, ranks, starts):
        g = jax.grad(lambda m: jnp.mean((m.entries(x) - y) ** 2))(m)
        np.testing.assert_allclose(total[:, :, s : s + r], jnp.stack(g.factors), rtol=1e-4, atol=1e-6)


def test_tensor_rank_complexity_bad_config():
    for field, value in (("num_epochs", 1001), ("max_weight", -1.0), ("num_batches", 2000)):
        with pytest.raises(ValueError, match=field):
            tensor_rank_complexity.Config(**{field: value})


@pytest.mark.parametrize(
    "module, field, value",
    [
        (tensor_dynamics, "init_scales", (1e-2, 5e-3)),
        (tensor_dynamics, "num_observed", 10**4),
        (tensor_rank_complexity, "ranks", (4, 2)),
        (tensor_rank_complexity, "pool", 3),
    ],
)
def test_bad_config(module, field, value):
    with pytest.raises(ValueError, match=field):
        module.Config(**{field: value})
    with pytest.raises(ValueError, match="seeds"):
        module.Config(seeds=0)
