"""Pathfinder images after the generator of Linsley et al. (2018), as Razin, Maman,
Cohen (ICML 2022) render it: are the two circles joined by one dashed path?

Every image, positive or negative, holds the same components:

- two target snakes of ``path_length`` paddles each, whose first paddles start
  ``seed_distance`` apart;
- about 90 / ``path_length`` short distractor snakes of ``path_length`` / 3 paddles each
  (in a 300 px reference canvas; scaled with the image area);
- two circles: one at the start of target snake o (o random), the other at the end of
  snake o (label 1) or of the other target snake (label 0).

So the classes differ only in which end the second circle marks: counts of paddles,
snakes and circles and the circles' distance are matched, and local statistics do not
give the label away. Longer paths put the two ends of a positive farther apart.

Geometry in reference pixels of the generator's 300 px canvas (paddle 5 px, gap 3 px,
thickness 2 px, seed distance 27 px, padding 22 px, circle radius 3 px, curvature weight
1.8: turns up to 50 degrees), multiplied by ``unit`` output pixels per reference pixel
(default image_size / 300: the paper's 300 px renders resized to 150 px give 0.5).
Rendered with anti-aliasing at twice the size, then resized.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import jax
import numpy as np
from jaxtyping import PRNGKeyArray

from jaxreg import validation as _checks

from .samples import DataCache, LocalityData, key_bits

__all__ = ["pathfinder", "check_fits", "REFERENCE"]

# the generator's settings on its 300 px canvas (reference pixels)
REFERENCE = dict(paddle=5.0, gap=3.0, thickness=2.0, seed_distance=27.0, padding=22.0, marker=3.0, canvas=300.0)
BLOCK = 500  # images per cached block
_MAX_TURN = 0.5 * np.pi / 1.8  # continuity 1.8: turns beyond (pi/2)/1.8 have weight 0


def _shape(rng, n, paddle, gap):
    """``n`` paddles (n, 2, 2) in (row, col) px starting at the origin, each turning by
    at most _MAX_TURN from the previous one, or None when the snake crosses itself."""
    p, theta, segs = np.zeros(2), rng.uniform(0, 2 * np.pi), []
    for k in range(n):
        if k:
            theta += rng.uniform(-_MAX_TURN, _MAX_TURN)
        u = np.array([np.sin(theta), np.cos(theta)])
        segs.append((p, p + paddle * u))
        p = p + (paddle + gap) * u
    return np.array(segs)


def _cloud(segs, step):
    """Points along the paddles."""
    return np.concatenate(
        [
            p + np.linspace(0, 1, max(2, int(np.ceil(np.linalg.norm(q - p) / step)) + 1))[:, None] * (q - p)
            for p, q in segs
        ]
    )


def _apart(a, b, sep):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min() >= sep


def _inside(cloud, lo, hi):
    return bool(np.all(cloud >= lo) and np.all(cloud <= hi))


def _scene(rng, L, n_distractors, d_len, g, size):
    """Two target snakes (their first paddles ``seed_distance`` apart) and up to
    ``n_distractors`` distractor snakes, all ``sep`` apart; None when the targets do not fit."""
    lo, hi, step = g["padding"], size - g["padding"], g["sep"] / 3
    for _ in range(1000):
        a, b = _shape(rng, L, g["paddle"], g["gap"]), _shape(rng, L, g["paddle"], g["gap"])
        phi = rng.uniform(0, 2 * np.pi)
        origin = rng.uniform(lo, hi, 2)
        a = a + origin
        b = b + origin + g["seed_distance"] * np.array([np.sin(phi), np.cos(phi)])
        ca, cb = _cloud(a, step), _cloud(b, step)
        if _inside(ca, lo, hi) and _inside(cb, lo, hi) and _apart(ca, cb, g["sep"]):
            break
    else:
        return None
    snakes, clouds = [a, b], [ca, cb]
    for _ in range(n_distractors):
        for _ in range(10):  # a distractor that finds no room is left out (as the generator does)
            s = _shape(rng, d_len, g["paddle"], g["gap"])
            s = s + rng.uniform(lo, hi, 2) - s[0, 0]
            c = _cloud(s, step)
            if _inside(c, 0, size) and all(_apart(c, other, g["sep"]) for other in clouds):
                snakes.append(s)
                clouds.append(c)
                break
    return snakes


def _draw(snakes, markers, g, size, up=2):
    from skimage.draw import disk, line_aa
    from skimage.transform import resize

    S = size * up
    canvas = np.zeros((S, S), np.float32)
    t = g["thickness"]
    offsets = np.linspace(-t / 2, t / 2, max(2, int(np.ceil(t * up)) + 1))
    for segs in snakes:
        for p, q in segs:
            u = (q - p) / max(np.linalg.norm(q - p), 1e-9)
            normal = np.array([-u[1], u[0]])
            for off in offsets:
                r0, c0 = np.round((p + off * normal) * up).astype(int)
                r1, c1 = np.round((q + off * normal) * up).astype(int)
                rr, cc, val = line_aa(r0, c0, r1, c1)
                keep = (rr >= 0) & (rr < S) & (cc >= 0) & (cc < S)
                np.maximum.at(canvas, (rr[keep], cc[keep]), val[keep])
    for m in markers:
        rr, cc = disk(tuple(m * up), g["marker"] * up, shape=(S, S))
        canvas[rr, cc] = 1.0
    return np.clip(resize(canvas, (size, size), anti_aliasing=True), 0, 1)


def render(rng: np.random.Generator, num_samples, path_length, image_size, unit, num_distractors, distractor_length):
    """The images, labels and info of :func:`pathfinder` (numpy generator ``rng``)."""

    g = {k: v * unit for k, v in REFERENCE.items() if k != "canvas"}
    g["marker"] = max(g["marker"], 1.0)
    g["thickness"] = max(g["thickness"], 0.75)
    g["sep"] = g["gap"] + g["thickness"]
    images = np.zeros((num_samples, 1, image_size, image_size), np.float32)
    ends = np.zeros((num_samples, 2, 2, 2), np.float32)
    markers = np.zeros((num_samples, 2, 2), np.float32)
    marker_curve = np.zeros((num_samples, 2), np.int32)
    placed = np.zeros(num_samples, np.int32)
    labels = (rng.random(num_samples) < 0.5).astype(np.int32)
    for i in range(num_samples):
        snakes = _scene(rng, path_length, num_distractors, distractor_length, g, image_size)
        if snakes is None:
            raise ValueError(
                f"path_length {path_length} does not fit a {image_size} px image at unit {unit:g} px "
                "(two snakes inside the padding): use a shorter path, a larger image or a smaller unit"
            )
        ends[i] = [[s[0][0], s[-1][1]] for s in snakes[:2]]
        o = int(rng.integers(2))
        marker_curve[i] = (o, o if labels[i] else 1 - o)
        markers[i] = [ends[i, o, 0], ends[i, marker_curve[i, 1], 1]]
        placed[i] = len(snakes) - 2
        images[i, 0] = _draw(snakes, markers[i], g, image_size)
    info = {"endpoints": ends, "markers": markers, "marker_curve": marker_curve, "num_distractors": placed}
    return LocalityData(images, labels, None, info)


def _block(bits, n, params, cache: DataCache | None):
    """One block of ``n`` images drawn from the numpy generator seeded by ``bits``, kept
    in ``cache`` when one is given."""
    make = lambda: render(np.random.default_rng(bits), n, **params)  # noqa: E731
    if cache is None:
        return make()
    return cache("pathfinder", {"key": bits, "generator": "linsley", "num_samples": n, **params}, make)


def check_fits(path_length: int, image_size: int, unit: float | None = None) -> None:
    """Raise ``ValueError`` naming ``path_length`` when a straight snake of that many
    paddles is longer than twice the padded image side (no curved one fits reliably)."""
    unit = image_size / REFERENCE["canvas"] if unit is None else unit
    span = path_length * (REFERENCE["paddle"] + REFERENCE["gap"]) * unit
    room = image_size - 2 * REFERENCE["padding"] * unit
    if span > 2 * room:
        raise ValueError(
            f"path_length {path_length} spans up to {span:.0f} px: it cannot fit a {image_size} px image "
            f"({room:.0f} px inside the padding) at unit {unit:g}"
        )


def pathfinder(
    key: PRNGKeyArray,
    num_samples: int,
    path_length: int,
    *,
    image_size: int = 32,
    unit: float | None = None,
    num_distractors: int | None = None,
    distractor_length: int | None = None,
    cache: DataCache | None = None,
    workers: int = 1,
):
    """Pathfinder images (Linsley et al. 2018; see the module docstring).

    Args:
      key: JAX PRNG key (its bits seed numpy).
      num_samples: images to draw; label 1 with probability 1/2.
      path_length: paddles per target snake (the paper: 3, 5, 7, 9 at 150 px).
      image_size: side in px.
      unit: output px per reference px (default image_size / 300).
      num_distractors: distractor snakes to place (default round(90 / path_length)
        scaled by the image area in reference px, (image_size / (300 unit))^2); those that
        find no room are left out (``info["num_distractors"]`` counts the placed ones).
      distractor_length: paddles per distractor (default max(1, round(path_length / 3))).
      cache: keeps the images (a :class:`~jaxreg.locality.data.DataCache`, e.g. the lab's
        on-disk cache), in blocks of ``BLOCK`` images (block b drawn with ``fold_in(key, b)``);
        None: no cache.
      workers: processes drawing the blocks in parallel.

    Returns:
      ``LocalityData`` with ``images`` (N, 1, S, S) in [0, 1], ``labels`` (N,), ``squares``
      None, and ``info``: ``endpoints`` (N, 2, 2, 2) (start, end) of the two target
      snakes, ``markers`` (N, 2, 2), ``marker_curve`` (N, 2) (which target snake each
      circle marks), ``num_distractors`` (N,); points in (row, col) px.
    """
    num_samples = _checks.integer("num_samples", num_samples, minimum=1)
    path_length = _checks.integer("path_length", path_length, minimum=1)
    image_size = _checks.integer("image_size", image_size, minimum=8)
    unit = _checks.number("unit", image_size / REFERENCE["canvas"] if unit is None else unit, positive=True)
    area = (image_size / (REFERENCE["canvas"] * unit)) ** 2
    if num_distractors is None:
        num_distractors = int(round(90 / path_length * area))
    num_distractors = _checks.integer("num_distractors", num_distractors, minimum=0)
    if distractor_length is None:
        distractor_length = max(1, int(round(path_length / 3)))
    distractor_length = _checks.integer("distractor_length", distractor_length, minimum=1)
    check_fits(path_length, image_size, unit)
    workers = _checks.integer("workers", workers, minimum=1)
    params = dict(
        path_length=path_length,
        image_size=image_size,
        unit=unit,
        num_distractors=num_distractors,
        distractor_length=distractor_length,
    )
    # blocks of BLOCK images, each from its own key and cached on its own: a long render
    # that is killed keeps its finished blocks, and blocks can be drawn in parallel
    sizes = [min(BLOCK, num_samples - start) for start in range(0, num_samples, BLOCK)]
    keys = [key_bits(jax.random.fold_in(key, b)) for b in range(len(sizes))]
    if workers > 1 and len(sizes) > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            blocks = list(pool.map(_block, keys, sizes, [params] * len(sizes), [cache] * len(sizes)))
    else:
        blocks = [_block(k, n, params, cache) for k, n in zip(keys, sizes)]
    if len(blocks) == 1:
        return blocks[0]
    cat = lambda xs: np.concatenate(xs)  # noqa: E731
    info = {name: cat([d.info[name] for d in blocks]) for name in blocks[0].info}
    return LocalityData(cat([d.images for d in blocks]), cat([d.labels for d in blocks]), None, info)
