"""ResNets: architecture sizes, receptive fields, the one-example convention."""

import equinox as eqx
import jax
import numpy as np

from jaxreg.locality import batch_logits, make_model, receptive_field, resnet18, resnet34


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


def test_small_resnet_receptive_field_covers_canvas():
    m = eqx.filter_eval_shape(lambda k: make_model(k, "small"), jax.random.key(0))[0]
    assert receptive_field(m) == 95 > 48
    m3 = eqx.filter_eval_shape(lambda k: make_model(k, "small", stages=3, width=8), jax.random.key(0))[0]
    assert receptive_field(m3) == 47


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
