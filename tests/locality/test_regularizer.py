"""The regularizer R of Razin, Maman, Cohen (ICML 2022): exact values and derivatives."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxreg.locality import batch_logits, distant_patches, fixed_pair_patches, grad_change_penalty, make_model

# images (B, 1, 4, 8): region A = columns 0..3, region B = columns 4..7
PATCH_A = (0, 1, 3, 2)  # inside A
PATCH_B = (1, 5, 2, 3)  # inside B


def _x(key, B=5, H=4, W=8):
    return jax.random.normal(key, (B, 1, H, W), dtype=jnp.float64)


def _additive(x):
    a, b = x[:, 0, :, :4], x[:, 0, :, 4:]
    return jnp.sum(jnp.sin(a) * a**2, axis=(1, 2)) + jnp.tanh(jnp.sum(b**3, axis=(1, 2)))


def _interacting(x):
    a = x[:, 0, :, :4].reshape(x.shape[0], -1)
    b = x[:, 0, :, 4:].reshape(x.shape[0], -1)
    u = jnp.cos(jnp.arange(16.0 * 3).reshape(16, 3))
    v = jnp.sin(jnp.arange(16.0 * 3).reshape(16, 3) + 1.0)
    return jnp.sum((a @ u) * jnp.tanh(b @ v), axis=1)


def test_additive_logit_gives_exactly_one(x64):
    x = _x(jax.random.key(0))
    r = grad_change_penalty(_additive, x, PATCH_A, PATCH_B)
    assert r.dtype == jnp.float64
    assert abs(float(r) - 1.0) < 1e-12
    r2 = grad_change_penalty(_additive, x, PATCH_B, PATCH_A)  # and the other way round
    assert abs(float(r2) - 1.0) < 1e-12


def test_interacting_regions_give_less_than_one(x64):
    x = _x(jax.random.key(1))
    r = float(grad_change_penalty(_interacting, x, PATCH_A, PATCH_B))
    assert 0.0 <= r < 0.99


def test_invariant_to_scale_and_sign(x64):
    x = _x(jax.random.key(2))
    r = grad_change_penalty(_interacting, x, PATCH_A, PATCH_B)
    for c in (3.7, 1e-3, -1.0, -250.0):
        rc = grad_change_penalty(lambda z: c * _interacting(z), x, PATCH_A, PATCH_B)
        assert abs(float(rc) - float(r)) < 1e-12, c


def test_hand_computed_value(x64):
    # images 1x1x3 = (a1, a2, b); f = a1 * b + a2; I = (a1, a2), J = b.
    # g_i = (b_i, 1) and g'_i = (b_{i+1}, 1): with b = (0, 1, -1) the cosines are
    # 1/sqrt(2), 0, 1/sqrt(2), so R = sqrt(2) / 3.
    b = jnp.array([0.0, 1.0, -1.0])
    x = jnp.stack([jnp.array([0.3, -2.0, bi]) for bi in b]).reshape(3, 1, 1, 3)
    f = lambda z: z[:, 0, 0, 0] * z[:, 0, 0, 2] + z[:, 0, 0, 1]
    r = grad_change_penalty(f, x, (0, 0, 1, 2), (0, 2, 1, 1))
    assert abs(float(r) - math.sqrt(2) / 3) < 1e-12


def test_zero_gradient_is_guarded(x64):
    # f = a1 * b on (a1, a2, b); b = (0, 1): sample 0 has g = 0, g' = (1, 0) -> contributes 0,
    # sample 1 has g = (1, 0), g' = 0 -> 0. A logit independent of I gives g = g' = 0 -> 1.
    x = jnp.array([[0.5, 0.2, 0.0], [0.1, 0.4, 1.0]]).reshape(2, 1, 1, 3)
    f = lambda z, w: w * z[:, 0, 0, 0] * z[:, 0, 0, 2]
    r = grad_change_penalty(lambda z: f(z, 1.0), x, (0, 0, 1, 2), (0, 2, 1, 1))
    assert float(r) == 0.0
    r_none = grad_change_penalty(lambda z: z[:, 0, 0, 2] ** 2, x, (0, 0, 1, 2), (0, 2, 1, 1))
    assert float(r_none) == 1.0
    dw = jax.grad(lambda w: grad_change_penalty(lambda z: f(z, w), x, (0, 0, 1, 2), (0, 2, 1, 1)))(1.0)
    assert np.isfinite(float(dw)) and float(dw) == 0.0


def _naive(f_single, x, patch, other):
    """R computed sample by sample with explicit slicing (reference implementation)."""
    x = np.asarray(x)
    B = x.shape[0]
    grad = jax.jit(jax.grad(f_single))
    out = []
    for i in range(B):
        t, l_, h, w = patch[i]
        ot, ol, oh, ow = other[i]
        nt, nl, _, _ = other[(i + 1) % B]
        xs = x[i].copy()
        xs[:, ot : ot + oh, ol : ol + ow] = x[(i + 1) % B][:, nt : nt + oh, nl : nl + ow]
        g = np.asarray(grad(jnp.asarray(x[i])))[:, t : t + h, l_ : l_ + w].ravel()
        gs = np.asarray(grad(jnp.asarray(xs)))[:, t : t + h, l_ : l_ + w].ravel()
        out.append(abs(g @ gs) / (np.linalg.norm(g) * np.linalg.norm(gs)))
    return float(np.mean(out))


def test_per_sample_traced_patches_match_naive_loop(x64):
    x = _x(jax.random.key(3), B=6, H=6, W=8)
    f_single = lambda z: _interacting(jnp.pad(z[None], ((0, 0), (0, 0), (0, 0), (0, 0)))[:, :, 1:5, :])[0]
    f = jax.vmap(f_single)
    patch, other = distant_patches(jax.random.key(4), 6, (6, 8), size=2, distance=1)
    patch, other = np.asarray(patch), np.asarray(other)
    assert len({tuple(p) for p in other}) > 1  # the second patch really varies per sample
    expected = _naive(f_single, x, patch, other)
    r_eager = grad_change_penalty(f, x, patch, other)
    r_jit = jax.jit(lambda xx, p, o: grad_change_penalty(f, xx, p, o))(x, jnp.asarray(patch), jnp.asarray(other))
    assert abs(float(r_eager) - expected) < 1e-12
    assert abs(float(r_jit) - expected) < 1e-12
    assert 0.0 < expected < 1.0


def test_labels_select_true_class_logit(x64):
    x = _x(jax.random.key(5))
    labels = jnp.array([0, 1, 1, 0, 1])
    multi = lambda z: jnp.stack([_interacting(z), _interacting(z[..., ::-1]) ** 2], axis=1)
    chosen = lambda z: jnp.where(labels == 0, multi(z)[:, 0], multi(z)[:, 1])
    r_multi = grad_change_penalty(multi, x, PATCH_A, PATCH_B, labels=labels)
    r_chosen = grad_change_penalty(chosen, x, PATCH_A, PATCH_B)
    assert abs(float(r_multi) - float(r_chosen)) < 1e-12
    with pytest.raises(ValueError, match="labels"):
        grad_change_penalty(multi, x, PATCH_A, PATCH_B)


def test_regularized_loss_gradient_matches_finite_differences(x64):
    # one stage (stem stride 2 + one block): receptive field 11 px > the 8 px image, so the
    # two halves interact; small enough that the third-order derivative compiles quickly
    model, state = make_model(jax.random.key(0), "small", width=2, stages=1, norm="layer", activation="softplus")
    params, static = eqx.partition(model, eqx.is_array)
    x = jax.random.uniform(jax.random.key(1), (4, 1, 4, 8), dtype=jnp.float64)
    y = jnp.array([1.0, 0.0, 1.0, 0.0])
    patch, other = jnp.array([[0, 0, 4, 4]] * 4), jnp.array([[0, 4, 4, 4]] * 4)

    @jax.jit
    def loss_and_r(p):
        m = eqx.combine(p, static)
        f = lambda z: batch_logits(m, state, z)[0]
        r = grad_change_penalty(f, x, patch, other)
        return jnp.mean(optax.sigmoid_binary_cross_entropy(f(x), y)) + 0.7 * r, r

    def loss(p):
        return loss_and_r(p)[0]

    # the halves interact, so R is informative (not locally constant) and its gradient counts
    assert 0.0 < float(loss_and_r(params)[1]) < 0.999

    leaves = jax.tree.leaves(params)
    assert all(leaf.dtype == jnp.float64 for leaf in leaves)
    g = jax.jit(jax.grad(loss))(params)
    keys = jax.random.split(jax.random.key(2), 3)
    for k in keys:  # directional derivatives along random directions
        ks = jax.random.split(k, len(leaves))
        v = jax.tree.unflatten(
            jax.tree.structure(params), [jax.random.normal(kk, leaf.shape, leaf.dtype) for kk, leaf in zip(ks, leaves)]
        )
        eps = 1e-5
        plus = loss(jax.tree.map(lambda p, d: p + eps * d, params, v))
        minus = loss(jax.tree.map(lambda p, d: p - eps * d, params, v))
        fd = (plus - minus) / (2 * eps)
        exact = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(v)))
        assert abs(float(fd - exact)) <= 1e-7 * max(1.0, abs(float(exact))), (float(fd), float(exact))


def test_fixed_pair_patches_randomize_order():
    squares = jnp.broadcast_to(jnp.array([[2, 0, 8, 8], [2, 20, 8, 8]]), (200, 2, 4))
    patch, other = fixed_pair_patches(jax.random.key(0), squares)
    patch, other = np.asarray(patch), np.asarray(other)
    left_first = patch[:, 1] == 0
    assert np.all(other[left_first, 1] == 20) and np.all(other[~left_first, 1] == 0)
    assert 0.35 < left_first.mean() < 0.65


@pytest.mark.parametrize("distance", [0, 3])
def test_distant_patches_respect_distance(distance):
    patch, other = distant_patches(jax.random.key(distance), 500, (10, 12), size=2, distance=distance)
    patch, other = np.asarray(patch), np.asarray(other)
    for p in (patch, other):
        assert p[:, 0].min() >= 0 and (p[:, 0] + 2).max() <= 10 and (p[:, 1] + 2).max() <= 12
    gap = np.maximum(np.abs(patch[:, 0] - other[:, 0]), np.abs(patch[:, 1] - other[:, 1])) - 2
    assert gap.min() >= distance
    assert gap.min() == distance  # the closest allowed positions do occur
    assert len(np.unique(other[:, :2], axis=0)) > 20  # uniform-ish, not a fixed position


def test_distant_patches_no_room():
    with pytest.raises(ValueError, match="distance"):
        distant_patches(jax.random.key(0), 4, (6, 6), size=2, distance=5)
    with pytest.raises(ValueError, match="size"):
        distant_patches(jax.random.key(0), 4, (6, 6), size=7)


def test_training_penalty_is_exact_per_sample_with_batchnorm():
    """The R that training minimizes (jaxreg.locality.regularizer.penalty) uses fixed
    normalization statistics: with BatchNorm it equals R computed one sample at a time
    (in training mode each logit would depend on the whole batch)."""
    from jaxreg.locality.regularizer import penalty

    model, state = make_model(jax.random.key(0), "small", width=2, stages=1, norm="batch")
    x = jax.random.uniform(jax.random.key(1), (6, 1, 4, 8))
    _, state = batch_logits(model, state, x)  # running statistics from one training batch
    patch, other = np.array([[0, 0, 4, 4]] * 6), np.array([[0, 4, 4, 4]] * 6)
    frozen = eqx.nn.inference_mode(model)
    f_single = lambda z: frozen(z, state)[0]
    expected = _naive(f_single, x, patch, other)
    assert abs(float(penalty(model, state, x, patch, other)) - expected) < 1e-5
    assert 0.0 < expected < 0.999


def test_train_mode_penalty_uses_the_batch_statistics():
    """r_mode="train" (the authors' R): BatchNorm in training mode, so R is that of the
    summed logits of the whole batch, each normalized by the batch's own statistics; it
    differs from the frozen R with BatchNorm and equals it with LayerNorm."""
    from jaxreg.locality.regularizer import penalty

    x = jax.random.uniform(jax.random.key(1), (6, 1, 4, 8))
    patch, other = np.array([[0, 0, 4, 4]] * 6), np.array([[0, 4, 4, 4]] * 6)
    model, state = make_model(jax.random.key(0), "small", width=2, stages=1, norm="batch")
    _, state = batch_logits(model, state, x)
    expected = float(grad_change_penalty(lambda z: batch_logits(model, state, z)[0], x, patch, other))
    train = float(penalty(model, state, x, patch, other, "train"))
    assert abs(train - expected) < 1e-6
    assert abs(train - float(penalty(model, state, x, patch, other, "frozen"))) > 1e-3
    model, state = make_model(jax.random.key(0), "small", width=2, stages=1, norm="layer")
    a, b = (float(penalty(model, state, x, patch, other, m)) for m in ("train", "frozen"))
    assert abs(a - b) < 1e-6
    with pytest.raises(ValueError, match="r_mode"):
        penalty(model, state, x, patch, other, "eval")
