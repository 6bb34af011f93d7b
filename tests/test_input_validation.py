"""Bad input, CLI and API: one line naming the argument, raised before anything compiles.

Every case runs under a counter of XLA compilations (``jax.monitoring``'s backend-compile
event) and a wall-clock limit; a case passes only if it fails with exit code 2 (CLI) or
``ValueError`` (API), names the argument, and compiled nothing.
"""

import contextlib
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxreg as jr
from jaxreg.dynamics.optimizers import group_rmsprop
from jaxreg_lab import cli
from jaxreg_lab.locality import IsSameClassConfig, PathfinderConfig
from jaxreg_lab.reproductions import custom_sweep

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles():
    """Yield a list that receives one entry per XLA compilation inside the block."""
    compiled = []

    def listener(event, duration, **kwargs):
        if event == COMPILE_EVENT:
            compiled.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield compiled
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


SWEEP = 'model = "matrix"\nshape = [6, 6]\ntarget_rank = 2\nnum_observed = 20\nseeds = 1\n'
HTF = 'model = "hierarchical"\nshape = [4, 4, 4, 4]\nnum_observed = 20\nseeds = 1\n'
DESCENT = SWEEP + 'optimizer = "sgd"\nnum_steps = 100\nnum_saves = 10\nnum_chunks = 2\n'

# (id, argv after the subcommand's config, TOML text or a special file kind, text the line must contain)
CLI_CASES = [
    ("config-directory", ["sweep"], "<dir>", "--config"),
    ("config-not-utf8", ["sweep"], b'model = "matrix"\n\xff\xfe = 1\n', "--config"),
    ("config-missing", ["sweep"], "<missing>", "--config"),
    ("config-malformed", ["sweep"], "model = \n", "--config"),
    ("config-unknown-field", ["sweep"], SWEEP + "learning_rat = 0.1\n", "learning_rat"),
    ("init-scales-bool", ["sweep"], SWEEP + "init_scales = [true]\n", "init_scales"),
    ("init-scales-string", ["sweep"], SWEEP + 'init_scales = ["1e-3"]\n', "init_scales"),
    ("init-scales-scalar", ["sweep"], SWEEP + "init_scales = 0.01\n", "init_scales"),
    ("init-scale-bool", ["reproduce", "matrix-dynamics", "--size", "tiny"], "init_scale = true\n", "init_scale"),
    ("shape-int", ["sweep"], 'model = "matrix"\nshape = 6\n', "shape"),
    ("shape-order", ["sweep"], 'model = "matrix"\nshape = [6, 6, 6]\n', "shape"),
    ("widths-int", ["sweep"], HTF + "widths = 3\n", "widths"),
    ("widths-levels", ["sweep"], HTF + "widths = [2, 2, 2, 2, 2]\n", "widths"),
    ("depth-float", ["sweep"], SWEEP + "depth = 2.5\n", "depth"),
    ("seeds-bool", ["sweep"], SWEEP.replace("seeds = 1", "seeds = true"), "seeds"),
    ("t1-string", ["sweep"], SWEEP + 't1 = "100"\n', "t1"),
    ("t1-negative", ["sweep"], SWEEP + "t1 = -1.0\n", "t1"),
    ("rtol-nan", ["sweep"], SWEEP + "rtol = nan\n", "rtol"),
    ("target-rank-above-shape", ["sweep"], SWEEP.replace("target_rank = 2", "target_rank = 8"), "target_rank"),
    (
        "sensing-too-large",
        ["sweep"],
        'model = "matrix"\nshape = [400, 400]\ntask = "sensing"\nnum_observed = 2000\nseeds = 1\n',
        "num_observed",
    ),
    ("shape-too-large-for-vmap", ["sweep"], 'model = "cp"\nshape = [300, 300, 300]\nnum_observed = 1000\n', "shape"),
    ("num-observed-all", ["sweep"], SWEEP.replace("num_observed = 20", "num_observed = 36"), "num_observed"),
    ("optimizer-option-type", ["sweep"], DESCENT + 'optimizer_options = {momentum = "x"}\n', "optimizer_options"),
    ("optimizer-option-table", ["sweep"], DESCENT + "optimizer_options = {momentum = {a = 1}}\n", "optimizer_options"),
    ("optimizer-unknown", ["sweep"], DESCENT.replace('"sgd"', '"sgdd"'), "optimizer"),
    ("optimizer-int", ["sweep"], DESCENT.replace('"sgd"', "3"), "optimizer"),
    ("learning-rate-zero", ["sweep"], DESCENT + "learning_rate = 0.0\n", "learning_rate"),
    ("model-unknown", ["sweep"], SWEEP.replace('"matrix"', '"tt"'), "model"),
    ("task-unknown", ["sweep"], SWEEP + 'task = "denoising"\n', "task"),
    ("saves-chunks", ["sweep"], SWEEP + "num_saves = 10\nnum_chunks = 3\n", "num_saves"),
    ("stop-negative", ["sweep"], SWEEP + "stop_at_loss = -1.0\n", "stop_at_loss"),
    ("seeds-memory-sweep", ["sweep", "--seeds", "100000000"], SWEEP, "seeds"),
    (
        "seeds-memory-reproduce",
        ["reproduce", "matrix-dynamics", "--size", "tiny", "--seeds", "100000000"],
        None,
        "seeds",
    ),
    ("seeds-zero", ["reproduce", "matrix-dynamics", "--size", "tiny", "--seeds", "0"], None, "--seeds"),
    ("size-unknown", ["reproduce", "matrix-dynamics", "--size", "huge"], None, "size"),
    ("reproduction-unknown", ["reproduce", "matrix-dynamic"], None, "reproduction"),
    ("non-tree-mode", ["reproduce", "ht-rank", "--size", "tiny"], "non_tree = [[0, 9]]\n", "non_tree"),
    ("non-tree-twice", ["reproduce", "ht-rank", "--size", "tiny"], "non_tree = [[0, 2], [1, 3]]\n", "listed twice"),
    ("ht-control-init", ["reproduce", "ht-rank", "--size", "tiny"], "large_init_scale = 0.1\n", "large_init_scale"),
    ("depths-int", ["reproduce", "matrix-completion-depth", "--size", "tiny"], "depths = 3\n", "depths"),
    ("baseline-int", ["reproduce", "matrix-completion-depth", "--size", "tiny"], "baseline = 1\n", "baseline"),
    ("dcp-t1s-length", ["reproduce", "incremental-learning", "--size", "tiny"], "dcp_t1s = [1.0]\n", "dcp_t1s"),
    (
        "num-observed-repeat",
        ["reproduce", "tensor-completion-observations", "--size", "tiny"],
        "num_observed = [10, 10]\n",
        "num_observed",
    ),
]


@pytest.mark.parametrize("argv, config, needle", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_line_exit_2_before_compiling(tmp_path, capsys, argv, config, needle):
    argv = list(argv)
    path = tmp_path / "config.toml"
    if config == "<dir>":
        path.mkdir()
    elif isinstance(config, bytes):
        path.write_bytes(config)
    elif config is not None and config != "<missing>":
        path.write_text(config)
    if config is not None:
        argv += ["--config", str(path)]
    argv += ["--out", str(tmp_path / "out"), "--no-progress"]
    with count_compiles() as compiled:
        t0 = time.perf_counter()
        code = cli.main(argv)
        wall = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("jaxreg: error:"), err
    assert needle in err, err
    assert not compiled and wall < 3.0, (len(compiled), wall)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ API


@pytest.fixture(scope="module")
def setup():
    key = jax.random.key(0)
    problem = jr.tasks.matrix_completion(key, (10, 10), 2, 30)
    return {
        "problem": problem,
        "model": jr.MatrixFactorization(key, (10, 10), 2, init_scale=1e-2),
        "small": jr.MatrixFactorization(key, (8, 8), 2, init_scale=1e-2),
        "cp": jr.TensorFactorization(key, (4, 4, 4), 3, init_scale=1e-2),
    }


def _flow(s, **kw):
    return jr.gradient_flow(s["problem"].loss, s["model"], 1.0, **kw)


API_CASES = [
    ("flow-model-shape", lambda s: jr.gradient_flow(s["problem"].loss, s["small"], 1.0), "model"),
    ("flow-model-order", lambda s: jr.gradient_flow(s["problem"].loss, s["cp"], 1.0), "model"),
    ("descent-model-shape", lambda s: jr.gradient_descent(s["problem"].loss, s["small"], optax.sgd(0.1), 10), "model"),
    (
        "flow-model-shape-in-lambda",
        lambda s: jr.gradient_flow(lambda m: s["problem"].loss(m), s["small"], 1.0),
        "model",
    ),
    ("descent-model-no-params", lambda s: jr.gradient_descent(lambda m: 0.0, (1, 2), optax.sgd(0.1), 10), "model"),
    ("ts-descending", lambda s: _flow(s, ts=[0.5, 0.2]), "ts"),
    ("ts-long-descending", lambda s: _flow(s, ts=np.linspace(1.0, 0.0, 1000)), "ts"),
    ("t1-matrix", lambda s: jr.gradient_flow(s["problem"].loss, s["model"], np.ones((50, 50))), "t1"),
    ("ts-after-t1", lambda s: _flow(s, ts=[0.5, 2.0]), "ts"),
    ("ts-negative", lambda s: _flow(s, ts=[-0.1, 0.5]), "ts"),
    ("ts-nan", lambda s: _flow(s, ts=[0.1, float("nan")]), "ts"),
    ("ts-2d", lambda s: _flow(s, ts=[[0.1, 0.2]]), "ts"),
    ("ts-scalar", lambda s: _flow(s, ts=0.5), "ts"),
    ("ts-empty", lambda s: _flow(s, ts=[]), "ts"),
    ("t1-bool", lambda s: jr.gradient_flow(s["problem"].loss, s["model"], True), "t1"),
    ("t1-inf", lambda s: jr.gradient_flow(s["problem"].loss, s["model"], math.inf), "t1"),
    ("rtol-negative", lambda s: _flow(s, rtol=-1e-6), "rtol"),
    ("dt0-zero", lambda s: _flow(s, dt0=0.0), "dt0"),
    ("max-steps-float", lambda s: _flow(s, max_steps=1e5), "max_steps"),
    ("metrics-not-callable", lambda s: _flow(s, metrics="rank"), "metrics"),
    ("flow-stop-negative", lambda s: _flow(s, stop_at_loss=-1.0), "stop_at_loss"),
    (
        "descent-steps-float",
        lambda s: jr.gradient_descent(s["problem"].loss, s["model"], optax.sgd(0.1), 10.0),
        "num_steps",
    ),
    ("rmsprop-negative-lr", lambda s: group_rmsprop(-1.0), "learning_rate"),
    ("rmsprop-nan-lr", lambda s: group_rmsprop(float("nan")), "learning_rate"),
    ("rmsprop-zero-lr", lambda s: group_rmsprop(0.0), "learning_rate"),
    ("rmsprop-bool-lr", lambda s: group_rmsprop(True), "learning_rate"),
    ("rmsprop-decay-one", lambda s: group_rmsprop(1e-3, decay=1.0), "decay"),
    ("rmsprop-eps-negative", lambda s: group_rmsprop(1e-3, eps=-1e-6), "eps"),
    (
        "model-init-scale-bool",
        lambda s: jr.MatrixFactorization(jax.random.key(0), (4, 4), 2, init_scale=True),
        "init_scale",
    ),
    ("model-shape-int", lambda s: jr.MatrixFactorization(jax.random.key(0), 4, 2), "shape"),
    ("task-shape-int", lambda s: jr.tasks.matrix_completion(jax.random.key(0), 10, 2, 30), "shape"),
    ("task-rank-bool", lambda s: jr.tasks.matrix_completion(jax.random.key(0), (10, 10), True, 30), "rank"),
    (
        "task-observed-float",
        lambda s: jr.tasks.tensor_completion(jax.random.key(0), (4, 4, 4), 2, 30.0),
        "num_observed",
    ),
    ("config-init-scales-bool", lambda s: custom_sweep.Config(init_scales=(True,)), "init_scales"),
    ("config-shape-string", lambda s: custom_sweep.Config(shape="30x30"), "shape"),
    ("config-seed-float", lambda s: custom_sweep.Config(seed=1.0), "seed"),
    ("locality-seeds-memory", lambda s: IsSameClassConfig.preset("tiny", seeds=100_000_000), "seeds"),
    ("locality-lambda-bool", lambda s: PathfinderConfig.preset("tiny", lambdas=(True,)), "lambda"),
]


@pytest.mark.unchecked_types  # wrong types on purpose: the library's own ValueErrors
@pytest.mark.parametrize("call, needle", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_bad_input_raises_before_compiling(setup, call, needle):
    with count_compiles() as compiled:
        t0 = time.perf_counter()
        with pytest.raises(ValueError) as info:
            call(setup)
        wall = time.perf_counter() - t0
    message = str(info.value)
    assert needle in message and "\n" not in message, message
    assert not compiled and wall < 3.0, (len(compiled), wall)


def test_counter_sees_compilations(setup):
    """The compile counter used above does count a compilation (so "no compile" can fail)."""
    with count_compiles() as compiled:
        jax.jit(lambda x: x * 3.0 + 1.0)(jnp.arange(7.0)).block_until_ready()
    assert compiled


def test_valid_save_times_and_matching_model_pass(setup):
    """The checks refuse only bad input: save times from 0 to t1 inclusive (float32 or
    float64, repeated times allowed) and a model of the problem's shape pass."""
    from jaxreg import validation as V

    for dtype in (np.float32, np.float64):
        V.save_times("ts", np.linspace(0.0, 3.0, 7).astype(dtype), np.asarray(3.0, dtype))
    V.save_times("ts", np.array([0.5, 0.5, 1.0]), 1.0)
    setup["problem"].check_model(setup["model"])


# ------------------------------------------------------------------------------ metrics


@pytest.mark.parametrize(
    "w",
    [np.full((3, 3), np.nan), np.diag([1.0, np.inf, 2.0]), np.diag([1.0, np.nan, 2.0]), np.zeros((3, 3))],
    ids=["nan", "inf", "one-nan", "zero"],
)
def test_effective_rank_of_degenerate_matrix_is_nan(w):
    w = jnp.asarray(w)
    assert np.isnan(jr.metrics.effective_rank(w))
    assert np.isnan(jr.metrics.component_norm_entropy_rank(jnp.diagonal(w)))


def test_rank_metrics_of_non_finite_input_are_nan():
    bad = jnp.diag(jnp.array([1.0, jnp.nan, 2.0]))
    assert np.isnan(jr.metrics.numerical_rank(jr.metrics.singular_values(bad)))
    assert np.isnan(jr.metrics.numerical_component_rank(jnp.array([1.0, jnp.inf])))
    assert np.isnan(jr.metrics.nuclear_norm(bad))
    assert all(np.isnan(r) for r in jr.metrics.ht_rank(np.full((2, 2, 2, 2), np.nan)))
    assert np.isnan(jr.metrics.cp_rank_estimate(np.full((2, 2, 2), np.inf), max_rank=2))


def test_effective_rank_of_valid_input_unchanged():
    np.testing.assert_allclose(jr.metrics.effective_rank(jnp.diag(jnp.array([2.0, 2.0, 0.0]))), 2.0, rtol=1e-12)
    np.testing.assert_allclose(jr.metrics.effective_rank(jnp.outer(jnp.arange(1.0, 4.0), jnp.ones(3))), 1.0, rtol=1e-12)
    assert float(jr.metrics.numerical_rank(jnp.array([3.0, 1.0, 0.0]))) == 2.0


def test_shared_config_fields_keep_each_experiments_names_and_defaults():
    """The shared field groups (jaxreg_lab.reproductions._config) supply fields, one level
    deep; each Config keeps its own field names and defaults, and the checks read the
    fields' annotations."""
    import dataclasses

    from jaxreg_lab.reproductions import matrix_dynamics, norms_counterexample, tensor_rank_complexity

    names = {f.name for f in dataclasses.fields(matrix_dynamics.Config)}
    assert names == {
        "shape",
        "rank",
        "num_observed",
        "depth",
        "init_scale",
        "t1",
        "num_saves",
        "num_chunks",
        "seeds",
        "seed",
        "rtol",
        "atol",
        "top",
        "max_steps",
    }
    md, nc = matrix_dynamics.Config(), norms_counterexample.Config()
    assert (md.num_chunks, md.num_saves, md.rtol, md.atol, md.seeds) == (10, 300, 1e-7, 1e-9, 3)
    assert (nc.num_chunks, nc.num_saves, nc.rtol, nc.atol, nc.seeds) == (4, 120, 1e-8, 1e-12, 3)
    assert matrix_dynamics.Config.preset("tiny").num_chunks == 4 and matrix_dynamics.Config.preset("paper").seeds == 5
    with pytest.raises(ValueError, match="num_chunks must be a positive integer"):
        matrix_dynamics.Config(num_chunks=0)
    with pytest.raises(ValueError, match="positive_digit must be a non-negative integer"):
        tensor_rank_complexity.Config(positive_digit=-1)
    tensor_rank_complexity.Config(negative_value=-1.0)  # values that may be negative are not checked as positive
    # composition, not a chain: every dataclass base of a Config is a field group with no base of its own
    for config in (matrix_dynamics.Config, norms_counterexample.Config, tensor_rank_complexity.Config):
        for base in config.__mro__[1:]:
            if dataclasses.is_dataclass(base):
                assert [b for b in base.__mro__[1:] if dataclasses.is_dataclass(b)] == [], (config, base)
