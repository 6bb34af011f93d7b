"""Long-range tasks of Razin, Maman, Cohen (ICML 2022), generated locally.

- :func:`is_same_class`: two images side by side on a zero canvas at horizontal gap
  ``distance``; label 1 iff they show the same class. The paper pairs CIFAR-10 images
  (32 px) on a 224 px canvas with gaps 0..160; here the sources are scikit-learn's 8x8
  handwritten digits upscaled by ``scale``, on a canvas of 7 image sides by default
  (the paper's proportion: 224 = 7 * 32).
- :func:`pathfinder`: Linsley et al. (2018): dashed curves of ``path_length`` paddles
  and two round markers; label 1 iff the markers sit on the two ends of one curve.
  Longer curves = longer range. Rendered with scikit-image's anti-aliased drawing at
  twice the size, then resized (as the paper resizes 300 px renders to 150 px), and
  cached on disk (see :func:`cache_dir`).

Generators take a JAX PRNG key (its bits seed numpy) and return a :class:`LocalityData`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from . import _checks

__all__ = ["LocalityData", "is_same_class", "pathfinder", "cache_dir", "digit_split", "DIGIT_SIDE"]

DIGIT_SIDE = 8
_CACHE_VERSION = 1


class LocalityData(NamedTuple):
    """images (N, 1, H, W) float32 in [0, 1]; labels (N,) int32 in {0, 1};
    squares (N, 2, 4) int32 (top, left, height, width) of the two images of
    Is-Same-Class (the regularizer's patches), None for Pathfinder; info: dict of numpy
    arrays describing how each sample was made."""

    images: np.ndarray
    labels: np.ndarray
    squares: np.ndarray | None
    info: dict


def _rng(key: PRNGKeyArray) -> np.random.Generator:
    return np.random.default_rng(_key_bits(key))


def _key_bits(key) -> list[int]:
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return [int(v) for v in np.asarray(key).ravel()]


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """Where generated data sets are cached: ``path`` if given, else $JAXREG_CACHE,
    else $XDG_CACHE_HOME/jaxreg, else ~/.cache/jaxreg."""
    if path is not None:
        return Path(path)
    if os.environ.get("JAXREG_CACHE"):
        return Path(os.environ["JAXREG_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jaxreg"


def _save_atomic(path: Path, arrays: dict) -> None:
    """Write an .npz atomically (temporary file in the same directory, then os.replace)."""
    from ..results import atomic_save_npz

    atomic_save_npz(path, arrays)


def _to_arrays(d: LocalityData) -> dict:
    out = {"images": d.images, "labels": d.labels}
    if d.squares is not None:
        out["squares"] = d.squares
    out.update({f"info_{k}": v for k, v in d.info.items()})
    return out


def _from_arrays(z) -> LocalityData:
    info = {k[5:]: z[k] for k in z.files if k.startswith("info_")}
    return LocalityData(z["images"], z["labels"], z["squares"] if "squares" in z.files else None, info)


def _cached(kind: str, config: dict, make, cache, directory) -> LocalityData:
    if not cache:
        return make()
    blob = json.dumps({"kind": kind, "version": _CACHE_VERSION, **config}, sort_keys=True)
    path = cache_dir(directory) / f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}.npz"
    if path.exists():
        with np.load(path) as z:
            return _from_arrays(z)
    data = make()
    _save_atomic(path, _to_arrays(data))
    return data


# ---------------------------------------------------------------- Is-Same-Class
def digit_split(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, 8, 8) in [0, 1], labels, indices into load_digits()) of the digits in ``split``:
    a fixed random half for "train" and the other half for "test" (disjoint sources)."""
    from sklearn.datasets import load_digits

    _checks.choice("split", split, ("train", "test"))
    digits = load_digits()
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
) -> LocalityData:
    """Is-Same-Class pairs: label 1 (probability 1/2) iff both digits have the same class.

    The images (side a = 8 * ``scale``) are vertically centered on a zero canvas of
    ``canvas`` = (H, W) pixels (default (7a, 7a)), the pair centered horizontally with a
    gap of ``distance`` pixels. ``split`` picks one of two disjoint halves of the source
    digits. ``info`` holds ``source`` (N, 2) indices into ``load_digits()`` and
    ``classes`` (N, 2), left image first.
    """
    num_samples = _checks.integer("num_samples", num_samples, minimum=1)
    distance = _checks.integer("distance", distance, minimum=0)
    scale = _checks.integer("scale", scale, minimum=1)
    _checks.choice("split", split, ("train", "test"))
    a = DIGIT_SIDE * scale
    H, W = canvas if canvas is not None else (7 * a, 7 * a)
    H = _checks.integer("canvas[0]", H, minimum=a)
    W = _checks.integer("canvas[1]", W, minimum=2 * a)
    if 2 * a + distance > W:
        raise ValueError(f"distance must be <= {W - 2 * a} for a canvas {W} px wide and {a} px images, got {distance}")

    rng = _rng(key)
    images, classes, source = digit_split(split)
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
    up = np.kron(images, np.ones((scale, scale), dtype=np.float32))
    out = np.zeros((num_samples, 1, H, W), dtype=np.float32)
    out[:, 0, top : top + a, left0 : left0 + a] = up[left]
    out[:, 0, top : top + a, right0 : right0 + a] = up[right]
    squares = np.broadcast_to(np.array([[top, left0, a, a], [top, right0, a, a]], np.int32), (num_samples, 2, 4)).copy()
    info = {
        "source": np.stack([source[left], source[right]], 1),
        "classes": np.stack([classes[left], classes[right]], 1),
    }
    return LocalityData(out, positive.astype(np.int32), squares, info)


# ---------------------------------------------------------------- Pathfinder
def _curve_shape(rng, n, length, gap, max_turn):
    """Endpoints of ``n`` paddles (n, 2, 2) in (row, col) pixels, starting at the origin."""
    p = np.zeros(2)
    theta = rng.uniform(0, 2 * np.pi)
    segs = []
    for k in range(n):
        if k:
            theta += rng.uniform(-max_turn, max_turn)
        u = np.array([np.sin(theta), np.cos(theta)])
        q = p + length * u
        segs.append((p, q))
        p = q + gap * u
    return np.array(segs)


def _points(segs, step):
    """Points along the paddles and their arc-length positions (gaps counted as paddles)."""
    pts, arc, s0 = [], [], 0.0
    for p, q in segs:
        L = np.linalg.norm(q - p)
        t = np.linspace(0, 1, max(2, int(np.ceil(L / step)) + 1))
        pts.append(p + t[:, None] * (q - p))
        arc.append(s0 + t * L)
        s0 += 1.5 * L
    return np.concatenate(pts), np.concatenate(arc)


def _min_dist(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min()


def _scene(rng, num_curves, n, length, gap, max_turn, size, sep, margin, tries=100):
    """``num_curves`` curves inside the margins, pairwise >= ``sep`` apart, or None."""
    curves, clouds = [], []
    for _ in range(tries):
        segs = _curve_shape(rng, n, length, gap, max_turn)
        pts, arc = _points(segs, sep / 3)
        far = np.abs(arc[:, None] - arc[None, :]) > 3 * sep  # self-avoidance along the curve
        if np.any(np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))[far] < sep):
            continue
        lo, hi = pts.min(0), pts.max(0)
        if np.any(hi - lo > size - 2 * margin):
            continue
        for _ in range(10):  # random translations that keep the curve inside
            shift = rng.uniform(margin - lo, size - margin - hi)
            if all(_min_dist(pts + shift, c) >= sep for c in clouds):
                curves.append(segs + shift)
                clouds.append(pts + shift)
                break
        if len(curves) == num_curves:
            return curves
    return None


def _render_pathfinder(
    rng, num_samples, path_length, image_size, num_distractors, max_turn, paddle_length, paddle_gap, marker_radius
):
    from skimage.draw import disk, line_aa
    from skimage.transform import resize

    up = 2  # render at twice the size, then resize with anti-aliasing
    S = image_size * up
    sep = marker_radius + 1.5
    margin = marker_radius + 1.0
    n_curves = 2 + num_distractors
    images = np.zeros((num_samples, 1, image_size, image_size), np.float32)
    endpoints = np.zeros((num_samples, n_curves, 2, 2), np.float32)
    markers = np.zeros((num_samples, 2, 2), np.float32)
    marker_curve = np.zeros((num_samples, 2), np.int32)
    labels = (rng.random(num_samples) < 0.5).astype(np.int32)
    for i in range(num_samples):
        for _ in range(20):
            curves = _scene(rng, n_curves, path_length, paddle_length, paddle_gap, max_turn, image_size, sep, margin)
            if curves is not None:
                break
        else:
            raise ValueError(
                f"path_length {path_length} is too long to place {n_curves} separated curves "
                f"in a {image_size}x{image_size} image; use a larger image_size"
            )
        canvas = np.zeros((S, S), np.float32)
        for segs in curves:
            for p, q in segs:
                u = (q - p) / max(np.linalg.norm(q - p), 1e-9)
                normal = np.array([-u[1], u[0]])
                for off in (-0.5, 0.0, 0.5):  # about 1 px wide after resizing
                    r0, c0 = np.round((p + off * normal / up) * up).astype(int)
                    r1, c1 = np.round((q + off * normal / up) * up).astype(int)
                    rr, cc, val = line_aa(r0, c0, r1, c1)
                    keep = (rr >= 0) & (rr < S) & (cc >= 0) & (cc < S)
                    np.maximum.at(canvas, (rr[keep], cc[keep]), val[keep])
        endpoints[i] = [[segs[0][0], segs[-1][1]] for segs in curves]
        if labels[i]:
            marker_curve[i] = (0, 0)
            markers[i] = endpoints[i, 0]
        else:
            marker_curve[i] = (0, 1)
            markers[i] = [endpoints[i, 0, rng.integers(2)], endpoints[i, 1, rng.integers(2)]]
        for m in markers[i]:
            rr, cc = disk(tuple(m * up), marker_radius * up, shape=(S, S))
            canvas[rr, cc] = 1.0
        images[i, 0] = np.clip(resize(canvas, (image_size, image_size), anti_aliasing=True), 0, 1)
    info = {"endpoints": endpoints, "markers": markers, "marker_curve": marker_curve}
    return LocalityData(images, labels, None, info)


def pathfinder(
    key: PRNGKeyArray,
    num_samples: int,
    path_length: int,
    *,
    image_size: int = 32,
    num_distractors: int = 1,
    max_turn: float = np.pi / 6,
    paddle_length: float | None = None,
    paddle_gap: float | None = None,
    marker_radius: float | None = None,
    cache: bool = True,
    cache_directory: str | os.PathLike | None = None,
) -> LocalityData:
    """Pathfinder images (Linsley et al. 2018) with 2 + ``num_distractors`` curves.

    Each curve has ``path_length`` paddles (dashes) of ``paddle_length`` px (default
    image_size / 14) separated by ``paddle_gap`` px (default image_size / 20), turning by
    at most ``max_turn`` radians between paddles; curves stay ``marker_radius + 1.5`` px
    apart from each other (and from themselves). Two disk markers (radius default
    image_size / 20, at least 1.5 px): label 1 (probability 1/2) at both ends of curve 0,
    label 0 at one end of curve 0 and one end of curve 1. ``info``: ``endpoints`` (N,
    curves, 2, 2), ``markers`` (N, 2, 2), ``marker_curve`` (N, 2) in (row, col) pixels.
    Results are cached (keyed by a hash of all arguments and the key) in
    :func:`cache_dir` (``cache_directory``) unless ``cache=False``.
    """
    num_samples = _checks.integer("num_samples", num_samples, minimum=1)
    path_length = _checks.integer("path_length", path_length, minimum=1)
    image_size = _checks.integer("image_size", image_size, minimum=8)
    num_distractors = _checks.integer("num_distractors", num_distractors, minimum=0)
    max_turn = _checks.number("max_turn", max_turn, minimum=0.0)
    paddle_length = _checks.number(
        "paddle_length", image_size / 14 if paddle_length is None else paddle_length, positive=True
    )
    paddle_gap = _checks.number("paddle_gap", image_size / 20 if paddle_gap is None else paddle_gap, minimum=0.0)
    marker_radius = _checks.number(
        "marker_radius", max(1.5, image_size / 20) if marker_radius is None else marker_radius, positive=True
    )
    if path_length * paddle_length > 4 * image_size:
        raise ValueError(
            f"path_length {path_length} with paddle_length {paddle_length} cannot fit in a "
            f"{image_size}x{image_size} image"
        )
    params = dict(
        num_samples=num_samples,
        path_length=path_length,
        image_size=image_size,
        num_distractors=num_distractors,
        max_turn=max_turn,
        paddle_length=paddle_length,
        paddle_gap=paddle_gap,
        marker_radius=marker_radius,
    )
    config = {"key": _key_bits(key), **params}  # the cache key
    return _cached("pathfinder", config, lambda: _render_pathfinder(_rng(key), **params), cache, cache_directory)


def __getattr__(name: str):
    # plot_samples draws figures (jaxreg.locality.report); this name stays importable from here
    if name == "plot_samples":
        from .report import plot_samples

        return plot_samples
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
