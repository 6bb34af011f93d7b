"""ResNets: architecture sizes, receptive fields, the one-example convention."""

import equinox as eqx
import jax
import numpy as np

from jaxreg.locality import ChannelNorm, batch_logits, make_model, receptive_field, resnet18, resnet34
from jaxreg_lab.locality.configs import IsSameClassConfig, PathfinderConfig


def _num_params(shapes):
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes) if hasattr(a, "shape"))


def test_resnet_parameter_counts_match_torchvision():
    # torchvision resnet18/34 (3 input channels, 1000 classes) have 11,689,512 / 21,797,672
    # parameters; one logit removes 511 * 513 = 512,487 of the head.
    key = jax.random.key(0)
    r18 = eqx.filter_eval_shape(lambda k: eqx.nn.make_with_state(resnet18)(k, in_channels=3), key)[0]
    r34 = eqx.filter_eval_shape(lambda k: eqx.nn.make_with_state(resnet34)(k, in_channels=3), key)[0]
    assert _num_params(r18) == 11_689_512 - 512_487
    assert _num_params(r34) == 21_797_672 - 512_487
    assert receptive_field(r18) == 435 and receptive_field(r34) == 899
    # the configs compute it without building the network
    assert IsSameClassConfig.preset("paper").receptive_field() == 435
    assert PathfinderConfig(architecture="resnet34").receptive_field() == 899


def test_small_resnet_receptive_field_covers_canvas():
    m = eqx.filter_eval_shape(lambda k: make_model(k, "small"), jax.random.key(0))[0]
    assert receptive_field(m) == 95 > 48
    m3 = eqx.filter_eval_shape(lambda k: make_model(k, "small", stages=3, width=8), jax.random.key(0))[0]
    assert receptive_field(m3) == 47
    # two blocks per stage: each adds two 3x3 convs at its stage's stride
    for stages, blocks, rf in ((3, 2, 103), (4, 2, 215)):
        m = eqx.filter_eval_shape(
            lambda k, s=stages, b=blocks: make_model(k, "small", stages=s, blocks_per_stage=b, width=4),
            jax.random.key(0),
        )[0]
        cfg = IsSameClassConfig(stages=stages, blocks_per_stage=blocks, width=4)
        assert receptive_field(m) == cfg.receptive_field() == rf


def test_channel_norm_is_per_position():
    x = jax.random.normal(jax.random.key(0), (6, 5, 7))
    norm = eqx.tree_at(lambda n: (n.weight, n.bias), ChannelNorm(6), (jax.numpy.arange(1.0, 7.0), jax.numpy.ones(6)))
    y = norm(x)
    xn = np.asarray(x)
    want = (xn - xn.mean(0)) / np.sqrt(xn.var(0) + 1e-5) * np.arange(1.0, 7.0)[:, None, None] + 1.0
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    # changing the input at one position changes the output at that position only
    # (GroupNorm(1, C), the "layer" norm, changes it everywhere)
    x2 = x.at[:, 4, 6].add(3.0)
    changed = np.abs(np.asarray(norm(x2) - y)).max(axis=0) > 1e-6
    assert changed[4, 6] and changed.sum() == 1
    layer = eqx.nn.GroupNorm(1, 6)
    assert (np.abs(np.asarray(layer(x2) - layer(x))).max(axis=0) > 1e-6).all()


def test_batchnorm_state_and_inference_mode():
    model, state = eqx.filter_jit(lambda k: make_model(k, "small", width=4, stages=1, norm="batch"))(
        jax.random.key(1, impl="rbg")
    )
    x = jax.random.normal(jax.random.key(2), (8, 1, 8, 16))
    f = eqx.filter_jit(batch_logits)
    logits, new_state = f(model, state, x)
    assert logits.shape == (8,)
    moved = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(new_state))]
    assert any(moved)  # running statistics were updated
    # train mode couples the samples through batch statistics; inference mode does not
    x2 = x.at[1:].set(3.0 * x[1:] + 1.0)
    train0 = f(model, state, x)[0][0], f(model, state, x2)[0][0]
    inf = eqx.nn.inference_mode(model)
    inf0 = f(inf, new_state, x)[0][0], f(inf, new_state, x2)[0][0]
    assert abs(float(train0[0] - train0[1])) > 1e-4
    assert abs(float(inf0[0] - inf0[1])) < 1e-6
