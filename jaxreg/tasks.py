"""Ground truths and completion / sensing problems (mean squared error over observations).

Every problem is reproducible from a PRNG key. Conventions (the papers' settings):
- matrix targets U V^T with U, V i.i.d. N(0, 1), rescaled to ||W*||_F = sqrt(m n)
  (entry RMS 1; 100 for 100x100 as in Arora et al. 2019);
- CP targets sum_r (x)_n w_r^n with N(0, 1) factors, rescaled to ||W*||_F = 1
  (Razin et al. 2021); HT targets to entry RMS 1 (Razin et al. 2022);
- completion observes entries drawn uniformly without replacement; the test set is
  the remaining entries (or ``num_test`` of them drawn without replacement);
- sensing measures y_i = <A_i, W*> with A_i i.i.d. N(0, 1/numel) entries, so y has
  unit variance for an entry-RMS-1 target.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from jaxreg import validation as V
from jaxreg._random import normal
from jaxreg.factorizations._common import default_dtype, np_seed
from jaxreg.factorizations.cp import cp_entries, cp_to_tensor
from jaxreg.problem import DENSE_LIMIT, Observations, Problem
from jaxreg.targets import cp_target, low_rank_matrix

SENSING_LIMIT = 2**28  # at most this many numbers in the dense sensing operators A_i
TRACEABLE_DRAW_LIMIT = 10**7  # observations of larger tensors are drawn with numpy (not under vmap)


def _draw_indices(key, shape, num_observed, num_test):
    """Disjoint train / test multi-indices drawn uniformly without replacement."""
    total = math.prod(shape)
    if num_observed >= total:
        raise ValueError(
            f"num_observed must be smaller than the number of entries {total} "
            f"(some must be left for testing), got {num_observed}"
        )
    rest = total - num_observed
    if num_test is None:
        num_test = rest if total <= 10**6 else min(rest, 10_000)
    else:
        num_test = V.nonnegative_int("num_test", num_test)
        if num_test > rest:
            raise ValueError(f"num_test must be at most {rest} (entries not observed), got {num_test}")
    need = num_observed + num_test
    if total <= TRACEABLE_DRAW_LIMIT:  # pure JAX: works under vmap over keys
        flat = jax.random.permutation(key, total)[:need]
        multi = jnp.stack(jnp.unravel_index(flat, shape), axis=1).astype(jnp.int32)
        return multi[:num_observed], multi[num_observed:]
    # huge tensors: draw with replacement, keep first occurrences until enough (numpy)
    rng = np.random.default_rng(np_seed(key))
    flat = np.zeros((0,), np.int64)
    while flat.size < need:
        draw = np.concatenate([flat, _random_flat(rng, shape, 2 * (need - flat.size) + 16)])
        _, first = np.unique(draw, return_index=True)
        flat = draw[np.sort(first)]
    multi = np.stack(np.unravel_index(flat[:need], shape), axis=1).astype(np.int32)
    return jnp.asarray(multi[:num_observed]), jnp.asarray(multi[num_observed:])


def _random_flat(rng, shape, k):
    cols = [rng.integers(0, d, size=k) for d in shape]
    return np.ravel_multi_index(cols, shape)


def _completion(shape, target, factors, key, num_observed, num_test):
    train_idx, test_idx = _draw_indices(key, shape, num_observed, num_test)

    def values(idx):
        idx = jnp.asarray(idx)
        if target is not None:
            return target[tuple(idx.T)]
        return cp_entries(factors, idx)

    return Problem(
        kind="completion",
        shape=shape,
        target=target,
        train=Observations(values(train_idx), indices=jnp.asarray(train_idx)),
        test=Observations(values(test_idx), indices=jnp.asarray(test_idx)),
        ground_truth=factors,
    )


def _sensing(shape, target, key, num_measurements, num_test):
    num_test = num_measurements if num_test is None else V.nonnegative_int("num_test", num_test)
    numel = math.prod(shape)
    if (num_measurements + num_test) * numel > SENSING_LIMIT:
        raise ValueError(
            f"num_measurements={num_measurements} operators of shape {shape} need "
            f"{(num_measurements + num_test) * numel} numbers: too many for dense sensing"
        )
    k1, k2 = jax.random.split(key)

    def measure(k, count):
        a = normal(k, (count, *shape), target.dtype) / math.sqrt(numel)
        return Observations(jnp.tensordot(a, target, axes=len(shape)), operators=a)

    return Problem("sensing", shape, target, measure(k1, num_measurements), measure(k2, num_test))


def matrix_completion(
    key: PRNGKeyArray,
    shape: tuple[int, int] = (100, 100),
    rank: int = 5,
    num_observed: int = 2000,
    *,
    num_test: int | None = None,
    target_norm: float | None = None,
) -> Problem:
    """Complete a rank-``rank`` matrix W* (:func:`low_rank_matrix`) from ``num_observed``
    entries drawn uniformly without replacement: L(W) = mean over observed (i, j) of
    (W[i, j] - W*[i, j])^2 (Arora et al. 2019: 100x100, rank 5, 2000 or 5000 entries).

    Arguments:
        key: PRNG key of the target and the observations.
        shape: (m, n).
        rank: the rank of W*.
        num_observed: the number of training entries, fewer than m n.
        num_test: held-out entries (default: all the others, at most 10^4 of them
            beyond 10^6 entries).
        target_norm: ||W*||_F (default sqrt(m n): entry RMS 1).

    Returns:
        The completion :class:`Problem`.
    """
    m, n = V.shape_tuple("shape", shape, order=2)
    shape = (m, n)
    num_observed = V.positive_int("num_observed", num_observed)
    if num_observed >= math.prod(shape):
        raise ValueError(f"num_observed must be smaller than {math.prod(shape)} entries, got {num_observed}")
    kt, ko = jax.random.split(key)
    target = low_rank_matrix(kt, shape, rank, norm=_target_norm(target_norm))
    return _completion(shape, target, None, ko, num_observed, num_test)


def matrix_sensing(
    key: PRNGKeyArray,
    shape: tuple[int, int] = (20, 20),
    rank: int = 2,
    num_measurements: int = 200,
    *,
    num_test: int | None = None,
    target_norm: float | None = None,
) -> Problem:
    """Recover a rank-``rank`` matrix W* (:func:`low_rank_matrix`) from y_i = <A_i, W*>,
    A_i with i.i.d. N(0, 1/(m n)) entries: L(W) = mean_i (<A_i, W> - y_i)^2.

    Arguments:
        key, shape, rank, target_norm: the target, as in :func:`matrix_completion`.
        num_measurements: the number of training measurements.
        num_test: held-out measurements (default ``num_measurements``).

    Returns:
        The sensing :class:`Problem`.
    """
    m, n = V.shape_tuple("shape", shape, order=2)
    shape = (m, n)
    num_measurements = V.positive_int("num_measurements", num_measurements)
    kt, ko = jax.random.split(key)
    return _sensing(
        shape, low_rank_matrix(kt, shape, rank, norm=_target_norm(target_norm)), ko, num_measurements, num_test
    )


def _target_norm(value):
    return None if value is None else V.positive_float("target_norm", value)


def _tensor_target(key, shape, rank, target, target_norm, tree, dtype=None):
    target_norm = _target_norm(target_norm)
    V.choice("target", target, ("cp", "ht"))
    numel = math.prod(shape)
    if target == "cp":
        factors = cp_target(key, shape, rank, norm=1.0 if target_norm is None else target_norm, dtype=dtype)
        dense = cp_to_tensor(factors) if numel <= DENSE_LIMIT else None
        return dense, factors
    from jaxreg.factorizations.hierarchical import ht_target

    model = ht_target(key, shape, rank, tree=tree, norm=math.sqrt(numel) if target_norm is None else target_norm)
    return model.materialize() if numel <= DENSE_LIMIT else None, model


def tensor_completion(
    key: PRNGKeyArray,
    shape: tuple[int, ...] = (10,) * 4,
    rank=5,
    num_observed: int = 2000,
    *,
    target: str = "cp",
    num_test: int | None = None,
    target_norm: float | None = None,
    tree=None,
) -> Problem:
    """Complete a low-rank tensor W* from ``num_observed`` entries drawn uniformly without
    replacement: L(W) = mean over observed multi-indices i of (W[i] - W*[i])^2. Targets
    above ``DENSE_LIMIT`` entries are never materialized (values from the factors).

    Arguments:
        key: PRNG key of the target and the observations.
        shape: (d_1, ..., d_N).
        rank: ``target="cp"``: the CP rank (an int, :func:`cp_target`); ``"ht"``: the HT
            rank (an int for every node, or a tuple per tree level,
            :func:`~jaxreg.factorizations.ht_target`).
        num_observed: the number of training entries, fewer than prod(shape).
        target: "cp" (Razin et al. 2021) or "ht" (Razin et al. 2022).
        num_test: held-out entries (default: all the others, at most 10^4 of them
            beyond 10^6 entries).
        target_norm: ||W*||_F (default 1 for "cp", sqrt(prod(shape)) for "ht").
        tree: the mode tree of an "ht" target (default: the balanced binary tree).

    Returns:
        The completion :class:`Problem` (``target`` None above ``DENSE_LIMIT`` entries).
    """
    shape = V.shape_tuple("shape", shape)
    num_observed = V.positive_int("num_observed", num_observed)
    if num_observed >= math.prod(shape):
        raise ValueError(f"num_observed must be smaller than {math.prod(shape)} entries, got {num_observed}")
    kt, ko = jax.random.split(key)
    dense, factors = _tensor_target(kt, shape, rank, target, target_norm, tree)
    if dense is None and target != "cp":
        return _completion_from_model(shape, factors, ko, num_observed, num_test)
    return _completion(shape, dense, factors, ko, num_observed, num_test)


def _completion_from_model(shape, model, key, num_observed, num_test):
    train_idx, test_idx = _draw_indices(key, shape, num_observed, num_test)
    obs = [Observations(model.entries(jnp.asarray(i)), indices=jnp.asarray(i)) for i in (train_idx, test_idx)]
    return Problem("completion", shape, None, obs[0], obs[1], ground_truth=model)


def tensor_sensing(
    key: PRNGKeyArray,
    shape: tuple[int, ...] = (6,) * 3,
    rank=2,
    num_measurements: int = 100,
    *,
    target: str = "cp",
    num_test: int | None = None,
    target_norm: float | None = None,
    tree=None,
) -> Problem:
    """Recover a low-rank tensor W* from y_i = <A_i, W*>, A_i with i.i.d.
    N(0, 1/prod(shape)) entries: L(W) = mean_i (<A_i, W> - y_i)^2.

    Arguments:
        key, shape, rank, target, target_norm, tree: the target, as in
            :func:`tensor_completion`.
        num_measurements: the number of training measurements.
        num_test: held-out measurements (default ``num_measurements``).

    Returns:
        The sensing :class:`Problem`.
    """
    shape = V.shape_tuple("shape", shape)
    num_measurements = V.positive_int("num_measurements", num_measurements)
    kt, ko = jax.random.split(key)
    dense, _ = _tensor_target(kt, shape, rank, target, target_norm, tree)
    if dense is None:
        raise ValueError(f"shape {shape} is too large for dense sensing")
    return _sensing(shape, dense, ko, num_measurements, num_test)


def weighted_completion(
    key: PRNGKeyArray,
    shape: tuple[int, ...],
    weights: tuple[float, ...],
    num_observed: int,
    *,
    target_norm: float = 1.0,
    num_test: int | None = None,
) -> Problem:
    """Complete W* = c sum_r weights_r (x)_n q_r^n from ``num_observed`` uniformly drawn entries,
    with orthonormal columns q_1^n, ..., q_R^n per mode n (the Q of a QR of a Gaussian
    d_n x R matrix) and c = ``target_norm`` / ||weights||_2, so ||W*||_F = ``target_norm``.

    The components are orthogonal in every mode, so the target's CP rank, the rank of every
    matricization and every HT rank equal R = len(weights), and c weights_r are the component
    norms (for a matrix: its singular values). Unlike Gaussian factors, the weights fix how
    strongly each component pulls on the flow (a control for incremental learning).

    Arguments:
        key: PRNG key (factors, then observations).
        shape: the tensor's shape (order >= 2; a matrix for order 2).
        weights: the relative component norms, positive.
        num_observed: the number of observed entries.
        target_norm: ||W*||_F.
        num_test: held-out entries (default: all the others).

    Returns:
        The completion :class:`Problem` (dense target, ``ground_truth`` the scaled factors).
    """
    shape = V.shape_tuple("shape", shape)
    weights = V.float_tuple("weights", weights, positive=True, distinct=False)
    num_observed = V.positive_int("num_observed", num_observed)
    if len(weights) > min(shape):
        raise ValueError(f"weights must have at most min(shape) = {min(shape)} entries, got {len(weights)}")
    kt, ko = jax.random.split(key)
    scale = V.positive_float("target_norm", target_norm) / math.sqrt(sum(w * w for w in weights))
    qs = [
        jnp.linalg.qr(normal(k, (d, len(weights)), default_dtype(None)))[0]
        for k, d in zip(jax.random.split(kt, len(shape)), shape)
    ]
    factors = (qs[0] * (scale * jnp.asarray(weights, qs[0].dtype)),) + tuple(qs[1:])
    return _completion(shape, cp_to_tensor(factors), factors, ko, num_observed, num_test)
