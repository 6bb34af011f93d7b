"""The gradient-change regularizer that counters locality (Razin, Maman, Cohen, ICML 2022).

For a batch x_1..x_B and a logit f (the binary logit, or the true-class logit):

    g_i  = grad_x f(x_i) restricted to patch I_i, flattened, divided by its norm,
    g'_i = the same at x'_i, where x'_i is x_i with patch J_i replaced by patch J_{i+1}
           of sample i+1 (cyclically: sample B takes sample 1's),
    R    = (1/B) sum_i |<g_i, g'_i>|.

R = 1 when the gradient at I does not depend on the content of J (no interaction
between I and J: f is a sum of a function of I and a function of the rest, locally);
training on task loss + lambda * R pushes the network towards long-range interaction.
Differentiating R through the input gradients is a double backward pass.

Patches are ``(top, left, height, width)``: a static tuple shared by the batch, or an
integer array of shape (4,) or (B, 4), possibly traced (samplers below draw them inside
``jit``). Everything is done with masks and a dynamic roll, so traced patches compile
once. All ``other_patch`` of a batch must have the same height and width (the content
of J_{i+1} is moved to J_i).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from jaxreg import validation as _checks
from jaxreg.locality.models import batch_logits

__all__ = ["grad_change_penalty", "penalty", "fixed_pair_patches", "distant_patches", "check_patch"]


def _concrete(a):
    """``a`` as a numpy array, or None when it is a tracer."""
    if isinstance(a, jax.core.Tracer):
        return None
    return np.asarray(a)


def check_patch(name: str, patch, image_shape: tuple[int, int], batch: int | None = None):
    """Validate a concrete patch (4,) or (B, 4) against ``image_shape`` = (H, W).

    Raises ``ValueError`` naming ``name`` when a patch is empty or leaves the image.
    Traced patches are passed through unchecked.
    """
    p = _concrete(patch)
    if p is None:
        return
    if p.shape not in ((4,), (batch, 4)) and not (batch is None and p.ndim == 2 and p.shape[1] == 4):
        raise ValueError(f"{name} must have shape (4,) or (B, 4) = ({batch}, 4), got {p.shape}")
    if not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"{name} must hold integers (top, left, height, width), got dtype {p.dtype}")
    p = p.reshape(-1, 4)
    H, W = image_shape
    top, left, h, w = p.T
    if np.any(h < 1) or np.any(w < 1):
        raise ValueError(f"{name} must have height and width >= 1, got {p[(h < 1) | (w < 1)][0].tolist()}")
    bad = (top < 0) | (left < 0) | (top + h > H) | (left + w > W)
    if np.any(bad):
        raise ValueError(f"{name} {p[bad][0].tolist()} lies outside the {H}x{W} image")


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ta, la, ha, wa = a.T
    tb, lb, hb, wb = b.T
    return (ta < tb + hb) & (tb < ta + ha) & (la < lb + wb) & (lb < la + wa)


def _as_batch(patch, batch: int) -> Int[Array, "B 4"]:
    p = jnp.asarray(patch, dtype=jnp.int32)
    return jnp.broadcast_to(p.reshape(-1, 4), (batch, 4))


def _mask(patch: Int[Array, "B 4"], H: int, W: int) -> Bool[Array, "B 1 H W"]:
    rows = jnp.arange(H)[None, :, None]
    cols = jnp.arange(W)[None, None, :]
    top, left, h, w = (patch[:, k, None, None] for k in range(4))
    m = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    return m[:, None, :, :]


def _replace_with_next(x: Float[Array, "B C H W"], other: Int[Array, "B 4"]) -> Float[Array, "B C H W"]:
    """x_i with its patch J_i replaced by patch J_{i+1} of sample i+1 (cyclically)."""
    nxt_x = jnp.roll(x, -1, axis=0)
    nxt_p = jnp.roll(other, -1, axis=0)

    def move(img, src_patch, dst_patch):
        # translate the source image so that its patch's corner lands on the target corner
        return jnp.roll(img, (dst_patch[0] - src_patch[0], dst_patch[1] - src_patch[1]), axis=(1, 2))

    moved = jax.vmap(move)(nxt_x, nxt_p, other)
    return jnp.where(_mask(other, x.shape[2], x.shape[3]), moved, x)


def _unit(v: Float[Array, "B D"]) -> tuple[Float[Array, "B D"], jax.Array]:
    """Row-normalize with a NaN-free gradient; also returns which rows are non-zero."""
    sq = jnp.sum(v * v, axis=-1, keepdims=True)
    nonzero = sq > 0
    safe = jnp.sqrt(jnp.where(nonzero, sq, 1.0))
    return jnp.where(nonzero, v / safe, 0.0), nonzero[:, 0]


def grad_change_penalty(
    logit_fn: Callable[[Float[Array, "B C H W"]], Float[Array, " B"] | Float[Array, "B K"]],
    x: Float[Array, "B C H W"],
    patch,
    other_patch,
    *,
    labels: Int[Array, " B"] | None = None,
) -> Float[Array, ""]:
    """The regularizer R of Razin, Maman & Cohen (ICML 2022); docs/theory.md §8.

    ``R = mean_i |<g_i, g'_i>|`` with ``g_i`` the unit-normalized input gradient of sample
    i's logit restricted to ``patch`` and ``g'_i`` the same after ``other_patch`` of sample i
    is replaced by ``other_patch`` of sample i+1 (the last takes the first's).

    Args:
      logit_fn: maps a batch (B, C, H, W) to logits (B,) or (B, K). Per-sample input
        gradients are taken as the gradient of the *sum* of logits, which is exact when
        samples do not interact inside ``logit_fn``. BatchNorm in training mode couples
        the samples through the batch statistics: the gradient of the summed logits at
        x_i then carries a cross term (a mean over the batch of every logit's dependence
        on the statistics) as large as the per-sample gradient itself. Use inference mode
        (fixed statistics) for exact per-sample gradients, as training does
        (:func:`penalty`).
      x: the batch; B >= 2.
      patch, other_patch: ``(top, left, height, width)`` as a tuple or an int array of
        shape (4,) or (B, 4); may be traced. Concrete patches are checked: inside the
        image, not overlapping each other, equal ``other_patch`` sizes.
      labels: required when logits are (B, K): selects the true-class logit.

    Returns:
      The scalar R in [0, 1]. A zero gradient on ``patch`` cannot be normalized; a sample
      whose gradient is zero both before and after the swap contributes 1 (the gradient
      did not change: no interaction, e.g. ``patch`` outside the receptive field), a
      sample whose gradient is zero in exactly one of the two contributes 0 (it changed
      completely). No NaN arises in R or in its derivatives.

    Example:
      >>> f = lambda x: jnp.sum(x[:, :, :, :2] ** 2, axis=(1, 2, 3)) + jnp.sum(x[:, :, :, 2:], axis=(1, 2, 3))
      >>> grad_change_penalty(f, x, (0, 0, 4, 2), (0, 2, 4, 2))  # = 1: additive in the two halves
    """
    if x.ndim != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {x.shape}")
    B, _, H, W = x.shape
    if B < 2:
        raise ValueError(f"x must hold at least 2 samples (the cyclic shift needs two), got batch size {B}")
    check_patch("patch", patch, (H, W), B)
    check_patch("other_patch", other_patch, (H, W), B)
    p_np, o_np = _concrete(patch), _concrete(other_patch)
    if p_np is not None and o_np is not None:
        pp, oo = np.broadcast_to(p_np.reshape(-1, 4), (B, 4)), np.broadcast_to(o_np.reshape(-1, 4), (B, 4))
        if np.any(_overlap(pp, oo)):
            raise ValueError("other_patch overlaps patch")
    if o_np is not None and len(np.unique(o_np.reshape(-1, 4)[:, 2:], axis=0)) > 1:
        raise ValueError("other_patch must have the same height and width for every sample")

    patch_b = _as_batch(patch, B)
    other_b = _as_batch(other_patch, B)

    def total_logit(xb):
        logits = logit_fn(xb)
        if logits.ndim == 2:
            if labels is None:
                raise ValueError("labels is required when logit_fn returns (B, K) logits")
            logits = jnp.take_along_axis(logits, jnp.asarray(labels)[:, None], axis=1)[:, 0]
        elif logits.shape != (B,):
            raise ValueError(f"logit_fn must return shape (B,) or (B, K), got {logits.shape}")
        return jnp.sum(logits)

    mask = _mask(patch_b, H, W).astype(x.dtype)
    g = jax.grad(total_logit)(x) * mask
    x_swapped = _replace_with_next(x, other_b)
    g_swapped = jax.grad(total_logit)(x_swapped) * mask
    u, nz = _unit(g.reshape(B, -1))
    u_s, nz_s = _unit(g_swapped.reshape(B, -1))
    cos = jnp.abs(jnp.sum(u * u_s, axis=-1))
    per_sample = jnp.where(nz & nz_s, cos, jnp.where(nz | nz_s, 0.0, 1.0).astype(cos.dtype))
    return jnp.mean(per_sample)


def fixed_pair_patches(key: PRNGKeyArray, squares: Int[Array, "B 2 4"]) -> tuple[Int[Array, "B 4"], Int[Array, "B 4"]]:
    """Is-Same-Class patches: the two image squares of each sample, in random order.

    Returns ``(patch, other_patch)``, each (B, 4); for each sample independently, with
    probability 1/2 ``patch`` is the left square and ``other_patch`` the right one.
    """
    squares = jnp.asarray(squares)
    if squares.ndim != 3 or squares.shape[1:] != (2, 4):
        raise ValueError(f"squares must have shape (B, 2, 4), got {squares.shape}")
    swap = jax.random.bernoulli(key, 0.5, (squares.shape[0],))[:, None]
    first = jnp.where(swap, squares[:, 1], squares[:, 0])
    second = jnp.where(swap, squares[:, 0], squares[:, 1])
    return first, second


def check_distant(image_shape: tuple[int, int], size: int, distance: int) -> np.ndarray:
    """Validate a Pathfinder patch request; returns ok[t, l]: whether a first patch with
    corner (t, l) admits a second one at least ``distance`` away. Raises ``ValueError``
    naming ``size`` or ``distance`` when no pair fits."""
    H = _checks.integer("image_shape[0]", image_shape[0], minimum=1)
    W = _checks.integer("image_shape[1]", image_shape[1], minimum=1)
    size = _checks.integer("size", size, minimum=1)
    distance = _checks.integer("distance", distance, minimum=0)
    if size > min(H, W):
        raise ValueError(f"size must be <= the image side {min(H, W)}, got {size}")
    nt, nl = H - size + 1, W - size + 1
    t, l_ = np.arange(nt), np.arange(nl)
    # the farthest second corner is at a border: max |t2 - t1| = max(t1, nt - 1 - t1)
    far_t = np.maximum(t, nt - 1 - t)[:, None] - size
    far_l = np.maximum(l_, nl - 1 - l_)[None, :] - size
    ok = np.maximum(far_t, far_l) >= distance
    if not ok.any():
        raise ValueError(f"distance {distance} leaves no room for two {size}x{size} patches in a {H}x{W} image")
    return ok


def distant_patches(
    key: PRNGKeyArray, batch_size: int, image_shape: tuple[int, int], *, size: int = 2, distance: int = 0
) -> tuple[Int[Array, "B 4"], Int[Array, "B 4"]]:
    """Pathfinder patches: a uniform ``size`` x ``size`` patch and a second one at least
    ``distance`` pixels away from it (gap between the squares in the max-norm; 0 = not
    overlapping), uniform among such positions, drawn independently per sample.

    The first patch is uniform over the positions that admit a second one. Raises
    ``ValueError`` naming ``size`` or ``distance`` when no pair fits in the image.
    """
    batch_size = _checks.integer("batch_size", batch_size, minimum=1)
    H, W = image_shape
    first_ok = check_distant(image_shape, size, distance).reshape(-1)
    nt, nl = H - size + 1, W - size + 1
    k1, k2 = jax.random.split(key)
    first = jax.random.categorical(k1, jnp.where(jnp.asarray(first_ok), 0.0, -jnp.inf), shape=(batch_size,))
    t1, l1 = first // nl, first % nl
    # L-inf gap between the squares (< 0 in an axis: they overlap in that axis)
    gap_t = jnp.abs(jnp.arange(nt)[None, :, None] - t1[:, None, None]) - size
    gap_l = jnp.abs(jnp.arange(nl)[None, None, :] - l1[:, None, None]) - size
    ok = (jnp.maximum(gap_t, gap_l) >= distance).reshape(batch_size, -1)
    second = jax.random.categorical(k2, jnp.where(ok, 0.0, -jnp.inf), axis=-1)

    def to_patch(idx):
        return jnp.stack([idx // nl, idx % nl, jnp.full_like(idx, size), jnp.full_like(idx, size)], axis=-1)

    return to_patch(first).astype(jnp.int32), to_patch(second).astype(jnp.int32)


def penalty(model, state, xb, patch, other, r_mode: str = "frozen"):
    """R of one batch as training minimizes it.

    ``r_mode="frozen"`` (the default): the model in inference mode with ``state``'s
    normalization statistics held constant. In training mode BatchNorm normalizes with
    the batch's own statistics, so the logit of sample j depends on every x_i and the
    gradient of the summed logits at x_i picks up (1/B) sum_j d f_j / d(mean, var) *
    d(mean, var)/d x_i: a mean over B terms, of the same order as the per-sample gradient,
    not O(1/B). R of such gradients is not the interaction measure of the paper (and
    training R differs from held-out R: measured on a tiny BatchNorm task, 0.45 in
    training mode against 0.76 in inference mode for the same network). With fixed
    statistics every logit is a function of its own sample, the per-sample gradients are
    exact, and the R that lambda * R lowers is the held-out R.

    ``r_mode="train"``: the model in training mode, BatchNorm on the batch's statistics,
    as the authors' code computes R (Razin, Maman, Cohen 2022, their trainer calls
    ``model.train()`` before the regularized step). Models without BatchNorm give the
    same R in both modes.

    Arguments:
      model, state: the network and its normalization state.
      xb: the batch (B, C, H, W).
      patch, other: (B, 4) patches (top, left, height, width) of each sample.
      r_mode: "frozen" or "train".

    Returns:
      R, a scalar (:func:`grad_change_penalty`).
    """
    if r_mode == "train":
        return grad_change_penalty(lambda z: batch_logits(model, state, z)[0], xb, patch, other)
    if r_mode != "frozen":
        raise ValueError(f'r_mode must be "frozen" or "train", got {r_mode!r}')
    frozen = eqx.nn.inference_mode(model)
    state = jax.lax.stop_gradient(state)
    return grad_change_penalty(lambda z: batch_logits(frozen, state, z)[0], xb, patch, other)
