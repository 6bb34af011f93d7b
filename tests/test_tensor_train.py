"""Tensor-train factorization: structure, conservation laws along gradient flow, the
two-site rate identity, and the library's generic paths (descent, sweep, CLI, verify)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg as jr
from jaxreg import theory
from jaxreg_lab import cli
from jaxreg_lab.store.results import load_results

TT = jr.TensorTrainFactorization


def test_materialize_matches_explicit_einsum_and_entries_never_materialize():
    m = TT(jax.random.key(0), (3, 4, 2, 5), (2, 3, 4), init_scale=0.8)
    g = m.cores
    assert [c.shape for c in g] == [(1, 3, 2), (2, 4, 3), (3, 2, 4), (4, 5, 1)]
    ref = jnp.einsum("xia,ajb,bkc,cly->ijkl", *g)
    np.testing.assert_allclose(m.materialize(), ref, rtol=1e-13, atol=1e-15)
    # 10^12 entries: entries() contracts the cores along each index only
    big = TT(jax.random.key(1), (10,) * 12, 3, init_scale=0.9)
    idx = jnp.asarray(np.random.default_rng(0).integers(0, 10, (5, 12)))
    first = idx[0]
    expect = big.cores[0][0, first[0], :]
    for n in range(1, 12):
        expect = expect @ big.cores[n][:, first[n], :]
    np.testing.assert_allclose(big.entries(idx)[0], expect[0], rtol=1e-12)


def test_bond_singular_values_and_metrics_match_the_matricizations():
    m = TT(jax.random.key(2), (3, 4, 5, 3), (2, 4, 2), init_scale=0.7)
    w = m.materialize()
    for k, s in enumerate(m.bond_singular_values()):
        dense = jr.metrics.matricization_singular_values(w, tuple(range(k + 1)))
        np.testing.assert_allclose(s, dense[: s.shape[0]], rtol=1e-10)
        assert float(jnp.max(dense[s.shape[0] :], initial=0.0)) <= 1e-12 * float(dense[0])  # rank <= r_k
    np.testing.assert_allclose(jr.metrics.tt_effective_ranks(m), jr.metrics.tt_effective_ranks(w), rtol=1e-10)
    np.testing.assert_allclose(m.component_norms(), m.bond_singular_values()[1], rtol=1e-14)
    erank = np.asarray(jr.metrics.tt_effective_ranks(m))
    assert erank.shape == (3,) and np.all(erank >= 1.0) and np.all(erank <= np.array([2, 4, 2]) + 1e-9)


def test_balanced_init_is_exact_and_keeps_w():
    a = TT(jax.random.key(3), (3, 4, 5, 3), (3, 4, 3), init_scale=0.7)
    b = TT(jax.random.key(3), (3, 4, 5, 3), (3, 4, 3), init_scale=0.7, balanced=True)
    np.testing.assert_allclose(b.materialize(), a.materialize(), rtol=1e-11, atol=1e-14)
    assert float(jnp.max(b.balancedness())) <= 1e-13 * float(b.conservation_scale())
    assert float(jnp.min(a.balancedness())) >= 1e-2 * float(a.conservation_scale())


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        (dict(shape=(4,), ranks=()), "shape must have at least 2"),
        (dict(shape=(3, 3, 3), ranks=(2,)), "ranks must have 2 entries"),
        (dict(shape=(3, 3, 3), ranks=(2, 0)), "ranks\\[1\\]"),
        (dict(shape=(3, 3, 3), ranks=2, init_scale=-1.0), "init_scale"),
        (dict(shape=(2, 3, 3), ranks=(3, 3), balanced=True), "ranks\\[0\\] = 3 is too large"),
    ],
)
def test_bad_input(kwargs, fragment):
    kwargs = {"init_scale": 0.5, **kwargs}
    with pytest.raises(ValueError, match=fragment):
        TT(jax.random.key(0), **kwargs)


def _problem():
    return jr.tasks.tensor_completion(jax.random.key(4), (4,) * 3, 2, 32, target_norm=8.0)


def test_conservation_and_rate_identity_along_gradient_flow():
    """Unbalanced init: L_k^T L_k - R_{k+1} R_{k+1}^T conserved to 1e-9 (relative) while W
    moves. Balanced init: d sigma/dt = 2 gamma sigma for every two-site singular value
    (relative residual <= 1e-8), and the identity fails once a bond is unbalanced."""
    problem = _problem()
    model = TT(jax.random.key(5), (4,) * 3, (3, 3), init_scale=0.6)
    traj = jr.gradient_flow(problem.loss, model, 20.0, rtol=1e-11, atol=1e-13)
    assert int(traj.status) == jr.Status.COMPLETED
    assert float(theory.conservation_drift(model, traj.model)) <= 1e-9
    w0 = model.materialize()
    moved = float(jnp.linalg.norm(traj.model.materialize() - w0) / jnp.linalg.norm(w0))
    assert moved > 0.5 and float(traj.loss[-1]) < 0.5 * float(problem.loss(model))

    balanced = TT(jax.random.key(5), (4,) * 3, (3, 3), init_scale=0.6, balanced=True)
    ts = jnp.linspace(0.0, 10.0, 6)
    traj = jr.gradient_flow(
        problem.loss,
        balanced,
        10.0,
        ts=ts,
        rtol=1e-11,
        atol=1e-13,
        metrics=lambda m: theory.rate_identity(problem.end_to_end_loss, m),
    )
    obs, pred = (np.asarray(x) for x in traj.metrics)
    assert np.max(np.abs(obs - pred) / np.abs(pred)) <= 1e-8
    assert np.max(np.abs(pred)) > 1e-2  # the sigmas do move
    obs, pred = theory.rate_identity(problem.end_to_end_loss, model)
    assert float(jnp.max(jnp.abs(obs - pred) / jnp.abs(pred))) > 1e-2


def test_order2_is_a_depth2_matrix_factorization():
    """For N = 2 the two-site core is W: the rate terms are those of a depth-2 matrix
    factorization with the same factors (singular values of W, coefficient 2, exponent 1)."""
    tt = TT(jax.random.key(6), (5, 4), 4, init_scale=0.8, balanced=True)
    mf = jr.MatrixFactorization(jax.random.key(0), (5, 4), 2, init_scale=1.0)
    mf = eqx.tree_at(lambda m: m.factors, mf, (tt.cores[1][:, :, 0], tt.cores[0][0]))
    np.testing.assert_allclose(mf.materialize(), tt.materialize(), rtol=1e-13)
    g = jax.random.normal(jax.random.key(7), (5, 4))
    a, b = tt.rate_terms(g), mf.rate_terms(g)
    for x, y in zip((a.sigma, a.gamma, a.coefficient, a.exponent), (b.sigma, b.gamma, b.coefficient, b.exponent)):
        np.testing.assert_allclose(x, y, rtol=1e-10)
    np.testing.assert_allclose(tt.component_norms(), mf.component_norms(), rtol=1e-12)


def test_descent_and_sweep():
    """jr.gradient_descent and jr.sweep over seeds run a TT unchanged; the sweep's runs equal
    the runs one by one."""
    problem = _problem()

    def run(key):
        m = TT(key, (4,) * 3, (3, 3), init_scale=0.5)
        return jr.gradient_descent(
            problem.loss, m, optax.sgd(0.05), 60, save_every=20, metrics=lambda m: jr.metrics.tt_effective_ranks(m)
        ).loss

    keys = jr.seed_keys(0, 2)
    losses = jr.sweep(run, keys)
    assert losses.shape == (2, 4)
    assert np.all(np.asarray(losses[:, -1]) < 0.9 * np.asarray(losses[:, 0]))
    np.testing.assert_allclose(losses[1], run(keys[1]), rtol=1e-10)


def test_cli_sweep_config_and_verify(tmp_path):
    cfg = tmp_path / "tt.toml"
    cfg.write_text("""
model = "tensor_train"
shape = [4, 4, 4]
model_options = {ranks = [3, 3]}
target_rank = 1
num_observed = 30
t1 = 20.0
num_saves = 4
num_chunks = 2
init_scales = [0.5]
seeds = 2
""")
    out = tmp_path / "out"
    assert cli.main(["sweep", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    res = load_results(out)
    assert res["loss"].shape == (1, 2, 4) and np.all(res["loss"][0, :, -1] < res["loss"][0, :, 0])
    assert res.meta["status"] == ["completed"] * 2
    assert np.all(np.isfinite(res["component_norms"][0, :, :, :3]))  # 3 = the middle bond's rank
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "tensor_train"\nshape = [4, 4, 4]\nmodel_options = {ranks = [3, 3], depth = 2}\n')
    assert cli.main(["sweep", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2

    from jaxreg_lab.verify import verify

    lines = []
    assert verify(jax.random.key(3), echo=lines.append, models=["tensor_train"])
    assert any(line.startswith("TT order 3") and line.endswith("ok") for line in lines), lines
