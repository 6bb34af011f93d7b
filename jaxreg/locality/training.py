"""Training many runs at once: loss = BCE + lambda * R (Razin, Maman, Cohen, ICML 2022).

:func:`train_runs` trains one model per (lambda, seed) pair on one data set. The runs
are vmapped (lambda is a traced array, so the whole grid compiles once), a training
step of all runs is one jitted function called for each batch of an epoch, and:

- shuffling and the regularizer's patches are keyed by (seed, epoch, batch), and the
  initialization by seed alone, so runs that share a seed share both across lambdas;
- the stopping rule of the reference code: a run stops ``patience`` epochs after its
  running train accuracy first reaches ``fit_accuracy`` (100%), or at ``max_epochs``;
  stopped runs are frozen (their updates are masked) while the others continue;
- a run whose loss turns non-finite is frozen with status "non_finite"; other runs go on;
- the epochs run in a ``loop`` (:class:`EpochLoop`) over a carried state (parameters,
  optimizer and BatchNorm state, history); the lab's driver is such a loop that
  checkpoints that state after every epoch, so a killed run resumes bit for bit.

Statuses are :class:`jaxreg.Status` names: "converged" (the stopping rule fired after
``fit_accuracy``), "max_steps" (``max_epochs`` trained before the rule fired), "non_finite".

The last partial batch of an epoch is dropped (a new permutation every epoch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, Integer, PRNGKeyArray, PyTree

from jaxreg import validation as _checks
from jaxreg.batching import concat_runs, run_slices, take_runs
from jaxreg.dynamics.trajectory import Status
from jaxreg.locality.data import LocalityData
from jaxreg.locality.models import batch_logits
from jaxreg.locality.options import Optimization as Optimization
from jaxreg.locality.options import TrainOptions
from jaxreg.locality.regularizer import check_distant, distant_patches, fixed_pair_patches, penalty

__all__ = [
    "TrainOptions",
    "train_runs",
    "HISTORY",
    "EpochLoop",
    "epoch_loop",
    "run_key",
    "init_run",
    "epoch_plan",
    "train_step",
    "evaluate_run",
    "training_arrays",
    "evaluation_arrays",
    "EVALUATION_KEY",
]

# per-epoch metrics of ``history``: training-batch means over the epoch (total loss, BCE,
# R, running accuracy), then accuracy and R on the held-out set after the epoch
HISTORY = ("loss", "task_loss", "R", "train_accuracy", "test_accuracy", "test_R")


# "rbg": threefry for split/fold_in, XLA's RngBitGenerator for bits; compiles several times
# faster than threefry on CPU (measured: 25 s vs 43 s for a 4-run tiny grid).
PRNG_IMPL = "rbg"

# the seed of the key that draws the regularizer's patches in every evaluation
EVALUATION_KEY = 12345


def run_key(seed: Integer[ArrayLike, ""]) -> PRNGKeyArray:
    """The key of a run, from its integer seed ("rbg" implementation, :data:`PRNG_IMPL`).

    Arguments:
        seed: the run's seed.

    Returns:
        The run's key: fold in 0 for its initialization, 1 for its epochs.
    """
    return jax.random.key(seed, impl=PRNG_IMPL)


# runtime_checkable: parameters annotated with it are checked (any callable passes)
@runtime_checkable
class EpochLoop(Protocol):
    """Runs ``state, outputs = step(state, epoch)`` for epoch < num_epochs and returns the
    final state. After each epoch it calls ``on_chunk(epoch, state, outputs)`` (a dict it
    returns may be shown beside a progress bar) and ends early when ``stop(state)``."""

    def __call__(
        self,
        step: Callable[[Any, int], tuple[Any, dict]],
        state: Any,
        num_epochs: int,
        *,
        stop: Callable[[Any], bool],
        on_chunk: Callable[[int, Any, dict], dict | None],
    ) -> Any: ...


def epoch_loop(step, state, num_epochs: int, *, stop, on_chunk):
    """The plain :class:`EpochLoop`: no progress bar, no checkpoint.

    Arguments:
        step: ``step(state, epoch) -> (state, outputs)``.
        state: the initial carried state.
        num_epochs: the most epochs to run.
        stop: ``stop(state) -> bool``, checked after each epoch.
        on_chunk: ``on_chunk(epoch, state, outputs)``, after each epoch.

    Returns:
        The final state.
    """
    for epoch in range(num_epochs):
        state, out = step(state, epoch)
        on_chunk(epoch, state, out)
        if stop(state):
            break
    return state


def _bce(logits, y):
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y.astype(logits.dtype)))


def _where_tree(flag, new, old):
    return jax.tree.map(lambda a, b: jnp.where(flag, a, b), new, old)


def _sample_patches(options: TrainOptions, key, squares, image_shape):
    if options.patch_size is None:
        return fixed_pair_patches(key, squares)
    return distant_patches(key, squares.shape[0], image_shape, size=options.patch_size, distance=options.patch_distance)


def _loss(p, static, state, lam_r, xb, yb, patch, other, regularize, r_mode):
    model = eqx.combine(p, static)
    logits, new_state = batch_logits(model, state, xb)
    task = _bce(logits, yb)
    # the statistics after this batch's update (for BatchNorm in "batch" mode the debiased
    # running averages, defined from the first step on)
    r = penalty(model, new_state, xb, patch, other, r_mode)
    if not regularize:  # no lambda > 0 in the grid: R is only monitored
        r = jax.lax.stop_gradient(r)
    acc = jnp.mean((logits > 0) == (yb > 0))
    return task + lam_r * r, (new_state, task, r, acc)


def epoch_plan(
    seed: Integer[ArrayLike, ""], epoch: Integer[ArrayLike, ""], n_train: int, nb: int, B: int
) -> tuple[Integer[Array, "nb B"], PRNGKeyArray]:
    """The batches of one run's epoch: a fresh permutation of the ``n_train`` training
    samples, keyed by (seed, epoch), cut into ``nb`` batches of ``B`` (the last partial
    batch dropped), and the key from which batch b's regularizer patches are drawn
    (``fold_in(key, b)``).

    Arguments:
        seed: the run's seed.
        epoch: the epoch's index.
        n_train: the number of training samples.
        nb: the number of batches, ``n_train // B``.
        B: the batch size.

    Returns:
        ``(batches, patch_key)``: the sample indices of each batch, shape (nb, B), and the key.
    """
    ekey = jax.random.fold_in(jax.random.fold_in(run_key(seed), 1), epoch)
    pkey, skey = jax.random.split(ekey)
    return jax.random.permutation(pkey, n_train)[: nb * B].reshape(nb, B), skey


@eqx.filter_jit
def _epoch_plan(epoch, seeds, n_train: int, nb: int, B: int):
    return jax.vmap(lambda s: epoch_plan(s, epoch, n_train, nb, B))(seeds)


def train_step(
    params: PyTree,
    static: PyTree,
    state: eqx.nn.State,
    opt_state: PyTree,
    lam: Float[ArrayLike, ""],
    batches: Integer[Array, "nb B"],
    patch_key: PRNGKeyArray,
    b: Integer[ArrayLike, ""],
    X: Float[Array, "n C H W"],
    Y: Integer[Array, " n"],
    SQ: Integer[Array, "n 2 4"],
    options: TrainOptions,
    regularize: bool,
) -> tuple[tuple[PyTree, eqx.nn.State, PyTree], Float[Array, "4"]]:
    """One optimizer step of one run on batch ``b`` of its epoch (:func:`epoch_plan`):
    loss = BCE + lam * R (Razin et al. 2022), R on a pair of patches drawn with
    ``fold_in(patch_key, b)``; without ``regularize`` R is only monitored (no gradient).
    Pure and unbatched: a caller vmaps it over runs and jits it.

    Arguments:
        params, static: the model, split by ``eqx.partition(model, eqx.is_array)``.
        state: the model's normalization state.
        opt_state: the optimizer's state (``options.make_optimizer()``).
        lam: the regularizer's weight lambda.
        batches, patch_key: the epoch's plan (:func:`epoch_plan`).
        b: the batch's index.
        X, Y, SQ: the training images, labels and image squares (:func:`training_arrays`).
        options: the training options (``options.step_part()`` shares compiled code).
        regularize: whether R's gradient is computed.

    Returns:
        ``((params, state, opt_state), metrics)``: the run after the step and the
        batch's [loss, task loss, R, accuracy].
    """
    H, W = X.shape[2:]
    idx = batches[b]
    patch, other = _sample_patches(options, jax.random.fold_in(patch_key, b), SQ[idx], (H, W))
    (loss, (new_state, task, r, acc)), grads = jax.value_and_grad(_loss, has_aux=True)(
        params, static, state, lam, X[idx], Y[idx], patch, other, regularize, options.r_mode
    )
    updates, new_opt = options.make_optimizer().update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), new_state, new_opt), jnp.stack([loss, task, r, acc])


@eqx.filter_jit
def _run_step(carry, active, b, perms, skeys, lam, X, Y, SQ, static, options, regularize):
    """Batch ``b`` of every run (:func:`train_step`), vmapped over runs: run r trains on
    samples ``perms[r, b]``; stopped runs (``active`` False) keep their state. Returns the
    new carry and per run [loss, task loss, R, accuracy] of the batch."""

    def one_run(p, state, opt, act, perm, skey, lam_r):
        (new_p, new_state, new_opt), metrics = train_step(
            p, static, state, opt, lam_r, perm, skey, b, X, Y, SQ, options, regularize
        )
        new = (_where_tree(act, new_p, p), _where_tree(act, new_state, state), _where_tree(act, new_opt, opt))
        return new, metrics

    params, states, opt_state = carry
    return jax.vmap(one_run)(params, states, opt_state, active, perms, skeys, lam)


def _run_epoch(params, states, opt_state, active, epoch, lam, seeds, X, Y, SQ, static, options, regularize):
    """One epoch of every run: a Python loop over batches of one jitted, run-vmapped step.

    Why not a ``lax.scan`` over the batches: XLA's CPU backend runs a while-loop body
    2-2.6x slower than the same step as a top-level program (one run of the
    Is-Same-Class preset's network with SGD, plain and regularized:
    ``benchmarks/locality_throughput.py``), and dispatching a step costs well under a
    millisecond against tens of them of compute.
    Returns the new (params, states, opt_state), per run the epoch's mean metrics, and
    whether every batch's loss was finite."""
    n_train = X.shape[0]
    B = options.batch_size
    nb = n_train // B
    step_options = options.step_part()
    parts = []
    for sl in run_slices(len(seeds), options.runs_per_program):
        perms, skeys = _epoch_plan(epoch, seeds[sl], n_train, nb, B)
        carry, metrics = take_runs((params, states, opt_state), sl), []
        chunk_regularize = _chunk_regularize(lam[sl], options, regularize)
        for b in range(nb):
            carry, m = _run_step(
                carry,
                active[sl],
                jnp.asarray(b, jnp.int32),
                perms,
                skeys,
                lam[sl],
                X,
                Y,
                SQ,
                static,
                step_options,
                chunk_regularize,
            )
            metrics.append(m)
        parts.append((carry, jnp.stack(metrics, axis=1)))  # (runs, nb, 4)
    carry = concat_runs([c for c, _ in parts])
    metrics = jnp.concatenate([m for _, m in parts])
    return carry, jnp.mean(metrics, axis=1), jnp.all(jnp.isfinite(metrics[..., 0]), axis=1)


def _chunk_regularize(lam_chunk, options: TrainOptions, regularize: bool) -> bool:
    """Whether a program computes R's gradient: with ``runs_per_program`` set, only when a
    run of its own has lambda > 0 (so that a run's program never depends on the others)."""
    if options.runs_per_program is None:
        return regularize
    return bool(np.any(np.asarray(lam_chunk) > 0))


def init_run(
    seed: Integer[ArrayLike, ""],
    make_model: Callable[[PRNGKeyArray], tuple[eqx.Module, eqx.nn.State]],
    options: TrainOptions,
) -> tuple[eqx.Module, eqx.nn.State, PyTree]:
    """One run's initial model (keyed by ``fold_in(run_key(seed), 0)``), its normalization
    state and its optimizer's state. Pure and unbatched: a caller vmaps it over seeds.

    Arguments:
        seed: the run's seed.
        make_model: ``make_model(key) -> (model, state)``.
        options: the training options (their optimizer).

    Returns:
        ``(model, state, opt_state)``.
    """
    model, state = make_model(jax.random.fold_in(run_key(seed), 0))
    return model, state, options.make_optimizer().init(eqx.filter(model, eqx.is_array))


@eqx.filter_jit
def _init_runs(seeds, make_model, optimizer_options):
    models, states, opt_state = eqx.filter_vmap(lambda s: init_run(s, make_model, optimizer_options))(seeds)
    params, static = eqx.partition(models, eqx.is_array)
    return params, static, states, opt_state


def training_arrays(
    data: LocalityData,
) -> tuple[Float[Array, "n C H W"], Integer[Array, " n"], Integer[Array, "n 2 4"]]:
    """The arrays :func:`train_step` reads: the images in float32, the labels, and the
    image squares (zeros for data without squares, e.g. Pathfinder).

    Arguments:
        data: the training set.

    Returns:
        ``(X, Y, SQ)``.
    """
    n = len(data.labels)
    SQ = data.squares if data.squares is not None else np.zeros((n, 2, 4), np.int32)
    return jnp.asarray(data.images, jnp.float32), jnp.asarray(data.labels), jnp.asarray(SQ)


def train_runs(
    make_model: Callable[[PRNGKeyArray], tuple[eqx.Module, eqx.nn.State]],
    train: LocalityData,
    test: LocalityData,
    lambdas: Sequence[float],
    seeds: Sequence[int],
    options: TrainOptions = TrainOptions(),  # noqa: B008 (a frozen dataclass: immutable)
    *,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    loop: EpochLoop | None = None,
) -> dict[str, np.ndarray]:
    """Train len(lambdas) * len(seeds) models (lambda-major) on ``train``; evaluate on ``test``.

    ``make_model(key) -> (model, state)`` builds one model (e.g. ``partial(make_model,
    architecture="small")``). Returns numpy arrays of shape (len(lambdas), len(seeds)):
    ``test_accuracy``, ``train_accuracy`` (clean pass after training), ``test_R`` (R on
    the test set, inference mode), ``epochs`` (epochs trained), ``status`` (one of
    "converged", "max_steps", "non_finite"); and ``history`` of shape (max_epochs, L, S,
    6) holding per epoch the metrics ``HISTORY``: mean loss, task loss, R and running
    train accuracy over the epoch's batches, then accuracy and R on the first
    ``eval_batch_size`` test samples after the epoch (NaN after a stop).

    ``on_epoch_end(epoch, metrics)`` is called after every epoch with the per-run
    training means ``loss``, ``task_loss``, ``R`` and ``train_accuracy``.

    ``loop`` runs the epochs (:class:`EpochLoop`; default :func:`epoch_loop`, a plain
    loop). The lab passes its driver's loop, which checkpoints the carried state after
    every epoch and resumes it bit for bit; the library itself never writes a file.
    """
    lambdas = _checks.float_tuple("lambdas", lambdas, minimum=0.0)
    seeds = _checks.int_tuple("seeds", seeds, minimum=0)
    if not isinstance(options, TrainOptions):
        raise ValueError(f"options must be a TrainOptions, got {type(options).__name__}")
    n_train = len(train.labels)
    B = options.batch_size
    if n_train < B:
        raise ValueError(f"batch_size must be <= the number of training samples {n_train}, got {B}")
    if options.patch_size is None and (train.squares is None or test.squares is None):
        raise ValueError("patch_size must be given for data without image squares (Pathfinder)")
    H, W = train.images.shape[2:]
    if options.patch_size is not None:  # raise now, before compiling, if no pair fits
        check_distant((H, W), options.patch_size, options.patch_distance)

    L, S = len(lambdas), len(seeds)
    lam = jnp.asarray(np.repeat(lambdas, S), dtype=jnp.float32)  # float32 training, also under x64
    seed_arr = jnp.asarray(np.tile(seeds, L), dtype=jnp.uint32)
    R = L * S
    regularize = any(v > 0 for v in lambdas)

    # one compiled program for all inits (eager init compiles every random op per shape)
    init_options = options.step_part()
    parts = [_init_runs(seed_arr[sl], make_model, init_options) for sl in run_slices(R, options.runs_per_program)]
    static = parts[0][1]
    params, states, opt_state = concat_runs([(p, st, o) for p, _, st, o in parts])
    X, Y, SQ = training_arrays(train)

    m = min(options.eval_batch_size, len(test.labels))
    test_head = LocalityData(
        test.images[:m], test.labels[:m], None if test.squares is None else test.squares[:m], test.info
    )

    # the state carried (and checkpointed) from epoch to epoch
    carried = {
        "params": params,
        "states": states,
        "opt": opt_state,
        "meta": {
            "status": np.full(R, Status.RUNNING, np.int32),
            "fit_epoch": np.full(R, -1, np.int32),
            "epochs": np.zeros(R, np.int32),
            "history": np.full((options.max_epochs, R, len(HISTORY)), np.nan, np.float32),
        },
    }

    def epoch_step(state, epoch):
        meta = {k: np.array(v) for k, v in state["meta"].items()}
        active = meta["status"] == Status.RUNNING
        (params, states, opt_state), metrics, finite = _run_epoch(
            state["params"],
            state["states"],
            state["opt"],
            jnp.asarray(active),
            jnp.asarray(epoch, jnp.int32),
            lam,
            seed_arr,
            X,
            Y,
            SQ,
            static,
            options,
            regularize,
        )
        metrics, finite = np.asarray(metrics), np.asarray(finite)
        # held-out accuracy and R of every run after this epoch (inference mode), on the
        # first eval_batch_size test samples (one batch: the final evaluation uses all)
        held_out = np.stack(evaluate(eqx.combine(params, static), states, test_head, options), axis=1)
        metrics = np.concatenate([metrics, held_out.astype(np.float32)], axis=1)
        for r in np.flatnonzero(active):
            meta["history"][epoch, r] = metrics[r]
            meta["epochs"][r] = epoch + 1
            if not finite[r]:
                meta["status"][r] = Status.NON_FINITE
                continue
            if meta["fit_epoch"][r] < 0 and metrics[r, 3] >= options.fit_accuracy - 1e-6:
                meta["fit_epoch"][r] = epoch
            if meta["fit_epoch"][r] >= 0 and epoch - meta["fit_epoch"][r] >= options.patience:
                meta["status"][r] = Status.CONVERGED
            elif epoch + 1 == options.max_epochs:  # the epoch cap came before the stopping rule
                meta["status"][r] = Status.MAX_STEPS
        return {"params": params, "states": states, "opt": opt_state, "meta": meta}, {"metrics": metrics}

    def after_epoch(epoch, state, out):
        metrics = out["metrics"]
        if on_epoch_end is not None:
            on_epoch_end(
                epoch,
                {
                    "loss": metrics[:, 0],
                    "task_loss": metrics[:, 1],
                    "R": metrics[:, 2],
                    "train_accuracy": metrics[:, 3],
                },
            )
        m = metrics[np.isfinite(metrics[:, 0])]
        return {"loss": f"{np.mean(m[:, 0]):.3f}", "acc": f"{np.mean(m[:, 3]):.3f}"} if len(m) else None

    carried = (epoch_loop if loop is None else loop)(
        epoch_step,
        carried,
        options.max_epochs,
        stop=lambda s: not np.any(s["meta"]["status"] == Status.RUNNING),
        on_chunk=after_epoch,
    )
    params, states, meta = carried["params"], carried["states"], carried["meta"]

    models = eqx.combine(params, static)
    test_acc, test_r = evaluate(models, states, test, options)
    train_acc, _ = evaluate(models, states, train, options, with_R=False)
    bad = meta["status"] == Status.NON_FINITE
    test_acc[bad], test_r[bad], train_acc[bad] = np.nan, np.nan, np.nan

    def grid(a):
        return np.asarray(a).reshape((L, S) + np.shape(a)[1:])

    return {
        "test_accuracy": grid(test_acc),
        "train_accuracy": grid(train_acc),
        "test_R": grid(test_r),
        "epochs": grid(meta["epochs"]),
        "status": grid(np.array(Status.names(meta["status"]))),
        "history": meta["history"].reshape(options.max_epochs, L, S, len(HISTORY)),
    }


def evaluate(
    models, states, data: LocalityData, options: TrainOptions, *, with_R: bool = True, key: PRNGKeyArray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and R of vmapped ``models`` on ``data`` in inference mode (running
    BatchNorm statistics, exact per-sample gradients). R is averaged over the full
    batches of ``eval_batch_size`` (patches drawn with ``key``, default a fixed key);
    accuracy uses every sample. Returns two float64 arrays of shape (runs,)."""
    models = eqx.nn.inference_mode(models)
    params, static = eqx.partition(models, eqx.is_array)
    X, Y, SQ, n, B = evaluation_arrays(data, options.eval_batch_size)
    key = run_key(EVALUATION_KEY) if key is None else key
    runs = jax.tree.leaves(params)[0].shape[0]
    eval_options, parts = options.step_part(), []
    for sl in run_slices(runs, options.runs_per_program):
        p, st = take_runs((params, states), sl)
        parts.append(_evaluate(p, st, X, Y, SQ, n, key, static, eval_options, B, with_R))
    acc, r = (jnp.concatenate(x) for x in zip(*parts))
    return np.array(acc, dtype=np.float64), (np.array(r, dtype=np.float64) if with_R else np.full(acc.shape, np.nan))


def evaluation_arrays(data: LocalityData, eval_batch_size: int) -> tuple[Array, Array, Array, Array, int]:
    """The arrays :func:`evaluate_run` reads: ``data`` padded to whole batches of
    ``B = min(eval_batch_size, n)`` samples (images in float32).

    Arguments:
        data: the evaluation set, n samples.
        eval_batch_size: the most samples per batch.

    Returns:
        ``(X, Y, SQ, n, B)``: images, labels and squares padded to a multiple of B, the
        number of real samples (an array) and B.
    """
    n = len(data.labels)
    B = min(eval_batch_size, n)
    nb = -(-n // B)
    pad = nb * B - n
    X = jnp.asarray(
        np.concatenate([data.images, np.zeros((pad,) + data.images.shape[1:], data.images.dtype)]), jnp.float32
    )
    Y = jnp.asarray(np.concatenate([data.labels, np.zeros(pad, data.labels.dtype)]))
    sq = data.squares if data.squares is not None else np.zeros((n, 2, 4), np.int32)
    SQ = jnp.asarray(np.concatenate([sq, np.repeat(sq[:1], pad, 0)]))
    return X, Y, SQ, jnp.asarray(n), B


def evaluate_run(
    params: PyTree,
    static: PyTree,
    state: eqx.nn.State,
    X: Float[Array, "N C H W"],
    Y: Integer[Array, " N"],
    SQ: Integer[Array, "N 2 4"],
    n: Integer[ArrayLike, ""],
    key: PRNGKeyArray,
    options: TrainOptions,
    B: int,
    with_R: bool,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    """Accuracy and R of one model in inference mode on ``(X, Y, SQ)`` (from
    :func:`evaluation_arrays`): accuracy over the ``n`` real samples, R averaged over the
    full batches of ``B`` (batch b's patches drawn with ``fold_in(key, b)``). Pure and
    unbatched: a caller vmaps it over runs and jits it.

    Arguments:
        params, static: the model in inference mode, split by ``eqx.partition``.
        state: its normalization state.
        X, Y, SQ: the padded evaluation arrays.
        n: the number of real samples.
        key: the key of the patches.
        options: the training options (how patches are drawn).
        B: the batch size.
        with_R: compute R (else it is 0).

    Returns:
        ``(accuracy, R)``.
    """
    nb = X.shape[0] // B
    H, W = X.shape[2:]
    model = eqx.combine(params, static)

    def body(_, b):
        sl = jnp.arange(B) + b * B
        xb, yb, ok = X[sl], Y[sl], sl < n
        logits, _ = batch_logits(model, state, xb)
        correct = jnp.sum(((logits > 0) == (yb > 0)) & ok)
        if with_R:
            patch, other = _sample_patches(options, jax.random.fold_in(key, b), SQ[sl], (H, W))
            r = penalty(model, state, xb, patch, other)
            full = jnp.all(ok)
            r = jnp.where(full, r, 0.0)
        else:
            r, full = jnp.zeros(()), jnp.array(False)
        return None, (correct, r, full)

    _, (correct, r, full) = jax.lax.scan(body, None, jnp.arange(nb))
    return jnp.sum(correct) / n, jnp.sum(r) / jnp.maximum(jnp.sum(full), 1)


@eqx.filter_jit
def _evaluate(params, states, X, Y, SQ, n, key, static, options, B, with_R):
    return jax.vmap(lambda p, state: evaluate_run(p, static, state, X, Y, SQ, n, key, options, B, with_R))(
        params, states
    )
