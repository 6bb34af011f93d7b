"""ResNets with one output logit, as equinox Modules (Razin, Maman, Cohen, ICML 2022).

Convention (equinox's): a model maps ONE example ``x`` of shape (C, H, W) and a
``eqx.nn.State`` to ``(logit, state)``; callers vmap over the batch with
``axis_name="batch"`` (the axis BatchNorm reduces over). :func:`batch_logits` does that.
Build a model and its state with :func:`make_model` (``eqx.nn.make_with_state``).

- :func:`resnet18`, :func:`resnet34`: torchvision's architecture (7x7/2 stem, 3x3/2
  max-pool, basic blocks [2,2,2,2] / [3,4,6,3], widths 64..512, BatchNorm), one logit,
  as in the paper's experiments.
- :func:`small_resnet`: the CPU-sized variant (3x3 stem, width 16 doubling per stage,
  one block per stage by default, LayerNorm over the whole map by default; ``norm="channel"``
  normalizes each position over its channels only). Its receptive field must exceed
  the canvas width, or the gradient at one patch cannot depend on the other and the
  regularizer is exactly 1 and cannot help (docs/theory.md §8):
  check with :func:`receptive_field`.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from jaxreg import validation as _checks

__all__ = [
    "ResNet",
    "BasicBlock",
    "ChannelNorm",
    "resnet18",
    "resnet34",
    "small_resnet",
    "make_model",
    "batch_logits",
    "receptive_field",
    "architecture_receptive_field",
]

NORMS = ("batch", "layer", "channel", "group", "none")
ACTIVATIONS = ("relu", "softplus")


def _act(name: str, x):
    return jax.nn.relu(x) if name == "relu" else jax.nn.softplus(x)


class ChannelNorm(eqx.Module):
    """LayerNorm over the channels at each position (ConvNeXt's LayerNorm2d):
    y[c, h, w] = (x[c, h, w] - mean_c x[:, h, w]) / sqrt(var_c x[:, h, w] + eps) * weight[c] + bias[c].

    Unlike ``GroupNorm(1, C)`` (statistics over the whole (C, H, W) map, one pair per image)
    it is local: y at a position depends on x at that position only, so the normalization
    adds no interaction between distant parts of the image."""

    weight: Float[Array, " C"]
    bias: Float[Array, " C"]
    eps: float = eqx.field(static=True)

    def __init__(self, channels: int, eps: float = 1e-5):
        self.weight = jnp.ones((channels,))
        self.bias = jnp.zeros((channels,))
        self.eps = eps

    def __call__(self, x: Float[Array, "C H W"]) -> Float[Array, "C H W"]:
        mean = jnp.mean(x, axis=0, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=0, keepdims=True)
        y = (x - mean) * jax.lax.rsqrt(var + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None]


def _norm_layer(kind: str, channels: int):
    if kind == "batch":
        # momentum 0.9 = PyTorch's 0.1; "batch" mode = batch statistics in training
        return eqx.nn.BatchNorm(channels, axis_name="batch", momentum=0.9, mode="batch")
    if kind == "layer":
        return eqx.nn.GroupNorm(1, channels)
    if kind == "channel":
        return ChannelNorm(channels)
    if kind == "group":
        return eqx.nn.GroupNorm(math.gcd(8, channels), channels)
    return eqx.nn.Identity()


def _apply_norm(layer, x, state):
    if isinstance(layer, eqx.nn.BatchNorm):
        return layer(x, state)
    return layer(x), state


def _conv(key, cin, cout, k, stride):
    """Bias-free conv with He (fan-out) normal init, as torchvision's ResNet."""
    conv = eqx.nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, use_bias=False, key=key)
    std = math.sqrt(2.0 / (cout * k * k))
    w = std * jax.random.normal(key, conv.weight.shape, conv.weight.dtype)
    return eqx.tree_at(lambda c: c.weight, conv, w)


class BasicBlock(eqx.Module):
    """relu(norm(conv3x3(relu(norm(conv3x3_s(x))))) + shortcut(x))."""

    conv1: eqx.nn.Conv2d
    norm1: eqx.Module
    conv2: eqx.nn.Conv2d
    norm2: eqx.Module
    shortcut: tuple | None
    stride: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __init__(self, key: PRNGKeyArray, cin: int, cout: int, stride: int, norm: str, activation: str):
        k1, k2, k3 = jax.random.split(key, 3)
        self.conv1 = _conv(k1, cin, cout, 3, stride)
        self.norm1 = _norm_layer(norm, cout)
        self.conv2 = _conv(k2, cout, cout, 3, 1)
        self.norm2 = _norm_layer(norm, cout)
        self.shortcut = (
            (_conv(k3, cin, cout, 1, stride), _norm_layer(norm, cout)) if (stride != 1 or cin != cout) else None
        )
        self.stride = stride
        self.activation = activation

    def __call__(self, x, state):
        y, state = _apply_norm(self.norm1, self.conv1(x), state)
        y = _act(self.activation, y)
        y, state = _apply_norm(self.norm2, self.conv2(y), state)
        if self.shortcut is not None:
            x, state = _apply_norm(self.shortcut[1], self.shortcut[0](x), state)
        return _act(self.activation, y + x), state


class ResNet(eqx.Module):
    """A ResNet of basic blocks with a single output logit (one example per call)."""

    stem: eqx.nn.Conv2d
    stem_norm: eqx.Module
    pool: eqx.nn.MaxPool2d | None
    blocks: tuple[BasicBlock, ...]
    head: eqx.nn.Linear
    activation: str = eqx.field(static=True)
    stem_kernel: int = eqx.field(static=True)
    stem_stride: int = eqx.field(static=True)

    def __init__(
        self,
        key: PRNGKeyArray,
        *,
        in_channels: int = 1,
        widths=(64, 128, 256, 512),
        blocks=(2, 2, 2, 2),
        stem: str = "imagenet",
        stem_stride: int = 2,
        norm: str = "batch",
        activation: str = "relu",
    ):
        _checks.choice("norm", norm, NORMS)
        _checks.choice("activation", activation, ACTIVATIONS)
        _checks.choice("stem", stem, ("imagenet", "small"))
        widths = tuple(_checks.integer(f"widths[{i}]", w, minimum=1) for i, w in enumerate(widths))
        blocks = tuple(_checks.integer(f"blocks[{i}]", b, minimum=1) for i, b in enumerate(blocks))
        if len(widths) != len(blocks):
            raise ValueError(f"widths and blocks must have the same length, got {len(widths)} and {len(blocks)}")
        keys = jax.random.split(key, 2 + sum(blocks))
        self.stem_kernel = 7 if stem == "imagenet" else 3
        self.stem_stride = 2 if stem == "imagenet" else _checks.integer("stem_stride", stem_stride, minimum=1)
        self.stem = _conv(keys[0], in_channels, widths[0], self.stem_kernel, self.stem_stride)
        self.stem_norm = _norm_layer(norm, widths[0])
        self.pool = eqx.nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else None
        out, cin = [], widths[0]
        stage_widths = [w for w, n in zip(widths, blocks) for _ in range(n)]
        for i, (w, stride) in enumerate(zip(stage_widths, _block_strides(blocks))):
            out.append(BasicBlock(keys[2 + i], cin, w, stride, norm, activation))
            cin = w
        self.blocks = tuple(out)
        self.head = eqx.nn.Linear(cin, 1, key=keys[1])
        self.activation = activation

    def __call__(
        self, x: Float[Array, "C H W"], state: eqx.nn.State, *, key=None
    ) -> tuple[Float[Array, ""], eqx.nn.State]:
        y, state = _apply_norm(self.stem_norm, self.stem(x), state)
        y = _act(self.activation, y)
        if self.pool is not None:
            y = self.pool(y)
        for block in self.blocks:
            y, state = block(y, state)
        return self.head(jnp.mean(y, axis=(1, 2)))[0], state


# basic blocks per stage of the torchvision ResNets
_STAGE_BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


def _block_strides(blocks) -> list[int]:
    """Stride of each basic block: 2 for the first block of every stage but the first."""
    return [2 if (b == 0 and s > 0) else 1 for s, n in enumerate(blocks) for b in range(n)]


def resnet18(key: PRNGKeyArray, *, in_channels: int = 1, norm: str = "batch", activation: str = "relu") -> ResNet:
    """ResNet18 (He et al. 2016, torchvision layout) with one logit, as in the paper."""
    return ResNet(key, in_channels=in_channels, blocks=_STAGE_BLOCKS["resnet18"], norm=norm, activation=activation)


def resnet34(key: PRNGKeyArray, *, in_channels: int = 1, norm: str = "batch", activation: str = "relu") -> ResNet:
    """ResNet34 (He et al. 2016, torchvision layout) with one logit, as in the paper."""
    return ResNet(key, in_channels=in_channels, blocks=_STAGE_BLOCKS["resnet34"], norm=norm, activation=activation)


def small_resnet(
    key: PRNGKeyArray,
    *,
    in_channels: int = 1,
    width: int = 16,
    stages: int = 4,
    blocks_per_stage: int = 1,
    stem_stride: int = 2,
    norm: str = "layer",
    activation: str = "relu",
) -> ResNet:
    """A CPU-sized ResNet: 3x3 stem (stride ``stem_stride``), ``stages`` stages of widths
    width * 2^s (stride 2 from the second), ``blocks_per_stage`` basic blocks each.
    With the defaults the receptive field is 95 px.

    ``norm``: "layer" (``GroupNorm(1, C)``: statistics over the whole (C, H, W) map),
    "channel" (:class:`ChannelNorm`, per position), "group" (8 groups), "batch" or "none"."""
    width = _checks.integer("width", width, minimum=1)
    stages = _checks.integer("stages", stages, minimum=1)
    blocks_per_stage = _checks.integer("blocks_per_stage", blocks_per_stage, minimum=1)
    return ResNet(
        key,
        in_channels=in_channels,
        widths=tuple(width * 2**s for s in range(stages)),
        blocks=(blocks_per_stage,) * stages,
        stem="small",
        stem_stride=stem_stride,
        norm=norm,
        activation=activation,
    )


ARCHITECTURES = {"resnet18": resnet18, "resnet34": resnet34, "small": small_resnet}


def make_model(key: PRNGKeyArray, architecture: str = "small", **kwargs) -> tuple[ResNet, eqx.nn.State]:
    """``(model, state)`` via ``eqx.nn.make_with_state``; ``architecture`` in
    {"resnet18", "resnet34", "small"}, ``kwargs`` go to its constructor."""
    _checks.choice("architecture", architecture, tuple(ARCHITECTURES))
    return eqx.nn.make_with_state(ARCHITECTURES[architecture])(key, **kwargs)


def batch_logits(
    model: ResNet, state: eqx.nn.State, x: Float[Array, "B C H W"]
) -> tuple[Float[Array, " B"], eqx.nn.State]:
    """Apply a one-example model to a batch (vmap with ``axis_name="batch"``).

    In training mode BatchNorm uses (and updates the running averages from) this batch's
    statistics; wrap the model in ``eqx.nn.inference_mode`` for running statistics."""
    return jax.vmap(model, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(x, state)


def _conv_receptive_field(stem_kernel: int, stem_stride: int, pool: bool, block_strides) -> int:
    """Receptive field (px per side) of the last conv of a ResNet: r += (k - 1) * jump
    over its convs in order (stem, max-pool, two 3x3 convs per block)."""
    layers = [(stem_kernel, stem_stride)] + ([(3, 2)] if pool else [])
    for stride in block_strides:
        layers += [(3, stride), (3, 1)]
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r


def receptive_field(model: ResNet) -> int:
    """Receptive field (pixels, per side) of the model's last conv layer."""
    return _conv_receptive_field(
        model.stem_kernel, model.stem_stride, model.pool is not None, [b.stride for b in model.blocks]
    )


def architecture_receptive_field(
    architecture: str, *, stages: int = 4, blocks_per_stage: int = 1, stem_stride: int = 2
) -> int:
    """Receptive field (px per side) of ``architecture`` without building it:
    :func:`receptive_field` of ``make_model(key, architecture, ...)``. ``stages``,
    ``blocks_per_stage`` and ``stem_stride`` are :func:`small_resnet`'s (ignored for the
    torchvision ResNets)."""
    _checks.choice("architecture", architecture, tuple(ARCHITECTURES))
    if architecture == "small":
        return _conv_receptive_field(3, stem_stride, False, _block_strides((blocks_per_stage,) * stages))
    return _conv_receptive_field(7, 2, True, _block_strides(_STAGE_BLOCKS[architecture]))
