"""Long-range tasks of Razin, Maman, Cohen (ICML 2022), generated locally.

- :func:`is_same_class`: two images side by side on a zero canvas at horizontal gap
  ``distance``; label 1 iff they show the same class. The paper pairs CIFAR-10 images
  (32 px) on a 224 px canvas with gaps 0..160; here the sources are any labelled images
  passed in (``source``, e.g. CIFAR-10 as the lab reads it), else scikit-learn's 8x8
  handwritten digits, upscaled by ``scale``, on a canvas of 7 image sides by default
  (the paper's proportion: 224 = 7 * 32).
- :func:`pathfinder` (module :mod:`.pathfinder_images`): Linsley et al. (2018): two target
  snakes of ``path_length`` paddles, short distractor snakes and two circles; label 1
  iff the circles mark the two ends of one snake. Longer paths = longer range. A
  ``cache`` (:class:`DataCache`, e.g. the lab's on-disk one) keeps rendered blocks.

Generators take a JAX PRNG key (its bits seed numpy) and return a :class:`LocalityData`.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from jaxtyping import Float, Integer, PRNGKeyArray

from jaxreg import validation as _checks
from jaxreg.locality.pathfinder_images import pathfinder as pathfinder
from jaxreg.locality.samples import DataCache as DataCache
from jaxreg.locality.samples import LocalityData as LocalityData
from jaxreg.locality.samples import numpy_rng

__all__ = ["LocalityData", "DataCache", "is_same_class", "pathfinder", "digit_split", "DIGIT_SIDE"]

DIGIT_SIDE = 8


# ---------------------------------------------------------------- Is-Same-Class
def digit_split(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, 8, 8) in [0, 1], labels, indices into load_digits()) of the digits in ``split``:
    a fixed random half for "train" and the other half for "test" (disjoint sources)."""
    from sklearn.datasets import load_digits
    from sklearn.utils import Bunch

    _checks.choice("split", split, ("train", "test"))
    # a Bunch without return_X_y; sklearn's inferred return type also admits the (X, y) tuple
    digits = cast(Bunch, load_digits())
    perm = np.random.default_rng(0).permutation(len(digits.target))
    half = len(perm) // 2
    idx = np.sort(perm[:half] if split == "train" else perm[half:])
    return digits.images[idx].astype(np.float32) / 16.0, digits.target[idx], idx


def is_same_class(
    key: PRNGKeyArray,
    num_samples: int,
    distance: int,
    *,
    split: str = "train",
    scale: int = 1,
    canvas: tuple[int, int] | None = None,
    source: tuple[Float[np.ndarray, "n C h h"], Integer[np.ndarray, " n"]] | None = None,
) -> LocalityData:
    """Is-Same-Class pairs: label 1 (probability 1/2) iff both images have the same class.

    The images (side a = h * ``scale``, h = 8 for the digits) are vertically centered on a
    zero canvas of ``canvas`` = (H, W) pixels (default (7a, 7a)), the pair centered
    horizontally with a gap of ``distance`` pixels. The images come from ``source``
    (e.g. CIFAR-10's training or test images, as the paper pairs them), else from the
    digits, where ``split`` picks one of two disjoint halves. ``info`` holds ``source``
    (N, 2) indices into the source images (``load_digits()`` for the digits) and
    ``classes`` (N, 2), left image first.

    Arguments:
        key: PRNG key (its bits seed numpy).
        num_samples: the number of pairs N.
        distance: the horizontal gap, pixels.
        split: "train" or "test", the half of the digits (without ``source``).
        scale: the upscaling factor of each image side.
        canvas: (H, W), default (7a, 7a).
        source: (images (n, C, h, h) in [0, 1], labels (n,)), or None for the digits.

    Returns:
        :class:`LocalityData` of (N, C, H, W) float32 images (C = 1 for the digits).
    """
    num_samples = _checks.integer("num_samples", num_samples, minimum=1)
    distance = _checks.integer("distance", distance, minimum=0)
    scale = _checks.integer("scale", scale, minimum=1)
    _checks.choice("split", split, ("train", "test"))
    if source is None:
        digits, classes, index = digit_split(split)
        images = digits[:, None]
    else:
        images, classes = np.asarray(source[0], np.float32), np.asarray(source[1])
        if images.ndim != 4 or images.shape[2] != images.shape[3] or len(classes) != len(images):
            raise ValueError(
                f"source must be (images (n, C, h, h), labels (n,)), got {images.shape} and {classes.shape}"
            )
        index = np.arange(len(classes))
    a = images.shape[-1] * scale
    H, W = canvas if canvas is not None else (7 * a, 7 * a)
    H = _checks.integer("canvas[0]", H, minimum=a)
    W = _checks.integer("canvas[1]", W, minimum=2 * a)
    if 2 * a + distance > W:
        raise ValueError(f"distance must be <= {W - 2 * a} for a canvas {W} px wide and {a} px images, got {distance}")

    rng = numpy_rng(key)
    n = len(classes)
    positive = rng.random(num_samples) < 0.5
    first = rng.integers(0, n, num_samples)
    second = np.empty(num_samples, dtype=np.int64)
    for i in range(num_samples):
        same = classes == classes[first[i]]
        pool = np.flatnonzero(same & (np.arange(n) != first[i])) if positive[i] else np.flatnonzero(~same)
        second[i] = pool[rng.integers(len(pool))]
    swap = rng.random(num_samples) < 0.5
    left = np.where(swap, second, first)
    right = np.where(swap, first, second)

    top, left0 = (H - a) // 2, (W - (2 * a + distance)) // 2
    right0 = left0 + a + distance
    up = np.kron(images, np.ones((1, 1, scale, scale), dtype=np.float32))
    out = np.zeros((num_samples, images.shape[1], H, W), dtype=np.float32)
    out[:, :, top : top + a, left0 : left0 + a] = up[left]
    out[:, :, top : top + a, right0 : right0 + a] = up[right]
    squares = np.broadcast_to(np.array([[top, left0, a, a], [top, right0, a, a]], np.int32), (num_samples, 2, 4)).copy()
    info = {"source": np.stack([index[left], index[right]], 1), "classes": np.stack([classes[left], classes[right]], 1)}
    return LocalityData(out, positive.astype(np.int32), squares, info)
