"""Pathfinder images after the generator of Linsley et al. (2018), as Razin, Maman,
Cohen (ICML 2022) render it: are the two circles joined by one dashed path?

Every image, positive or negative, holds the same components:

- two target snakes of ``path_length`` paddles each, whose first paddles start
  ``seed_distance`` apart;
- ceil(90 / ``path_length``) distractor snakes of max(1, floor(``path_length`` / 3))
  paddles each (on the generator's 300 px canvas; the count scales with the canvas area);
  a distractor that finds no room after 5 tries is left out, as in the generator;
- two circles: one at the start of target snake o (o random), the other at the end of
  snake o (label 1) or of the other target snake (label 0).

So the classes differ only in which end the second circle marks: counts of paddles,
snakes and circles and the circles' distance are matched, and local statistics do not
give the label away. Longer paths put the two ends of a positive farther apart.

How a snake grows (the generator's rules, in reference px of its canvas): a paddle of
length ``paddle`` runs from ``margin`` to ``paddle + margin`` past its pivot; the next
pivot lies ``paddle + 2 margin`` past the last one along the last paddle. The next paddle's
direction is drawn from a grid of directions one reference px of arc apart, each weighted

    w(delta) = cos(min(continuity * |delta|, pi / 2))^2 * [its far end is free],

with ``delta`` its turn from the last paddle and continuity 1.8 (turns of 50 degrees and
more have weight 0; the mean |turn| is 0.26 rad, 14.9 degrees). An end is free when it
lies more than ``thickness / 2 + 2 margin`` from every paddle already placed (the snake's
own last paddle aside) and inside the padding. A paddle that comes closer than
``thickness + 2 margin`` to a placed one is a self-crossing: it is redrawn up to 3 times,
then the snake fails (the whole image is redrawn for a target snake).

The whole canvas is rendered, with anti-aliasing at twice the reference resolution, and
resized to ``image_size`` px: the paper's 300 px renders resized to 150 px.
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

# the generator's settings on its 300 px canvas (reference px)
REFERENCE = dict(
    paddle=5.0, margin=3.0, thickness=2.0, seed_distance=27.0, padding=22.0, marker=3.0, canvas=300.0, continuity=1.8
)
BLOCK = 500  # images per cached block
_SEGMENT_TRIES = 3  # a paddle is redrawn up to 3 times (the generator's max_paddle_retrial 2)
_SNAKE_TRIES = 5  # a distractor snake is tried up to 5 times (max_distractor_contour_retrial 4)
_SCENE_TRIES = 1000  # images whose target snakes cannot be drawn are redrawn


def _direction(theta):
    """Unit vectors (row, col) of angles ``theta``."""
    return np.stack([np.sin(theta), np.cos(theta)], axis=-1)


def _point_segment_distance(x, a, b):
    """Distances (n, m) from points ``x`` (n, 2) to segments ``a``-``b`` (m, 2)."""
    ab = b - a
    t = np.einsum("nmk,mk->nm", x[:, None, :] - a[None], ab) / np.maximum((ab**2).sum(-1), 1e-12)
    closest = a[None] + np.clip(t, 0.0, 1.0)[..., None] * ab[None]
    return np.sqrt(((x[:, None, :] - closest) ** 2).sum(-1))


def _segment_distance(p, q, a, b):
    """Distance from segment ``p``-``q`` to each segment ``a``-``b`` (m, 2): 0 where they
    cross, else the least of the four end-to-segment distances."""

    def side(o, u, v):
        return np.sign(
            (u[..., 0] - o[..., 0]) * (v[..., 1] - o[..., 1]) - (u[..., 1] - o[..., 1]) * (v[..., 0] - o[..., 0])
        )

    crosses = (side(p, q, a) * side(p, q, b) < 0) & (side(a, b, p) * side(a, b, q) < 0)
    ends = np.minimum(
        _point_segment_distance(np.stack([p, q]), a, b).min(0),
        _point_segment_distance(np.concatenate([a, b]), p[None], q[None])[:, 0].reshape(2, -1).min(0),
    )
    return np.where(crosses, 0.0, ends)


class _Canvas:
    """The paddles placed so far (reference px) and the rules that place the next one."""

    def __init__(self, g):
        self.g = g
        self.paddles = np.zeros((0, 2, 2))
        step = g["paddle"] + g["margin"]
        self.angles = np.arange(0.0, 2 * np.pi, 1.0 / step)  # one px of arc at the far end

    def _others(self, skip):
        return self.paddles if skip is None else np.delete(self.paddles, skip, axis=0)

    def clear(self, tail, head, skip=None) -> bool:
        """Whether paddle ``tail``-``head`` keeps ``thickness + 2 margin`` from every placed
        paddle (index ``skip`` aside)."""
        others = self._others(skip)
        if not len(others):
            return True
        gap = self.g["thickness"] + 2 * self.g["margin"]
        return bool(_segment_distance(tail, head, others[:, 0], others[:, 1]).min() > gap)

    def inside(self, points, pad):
        lo, hi = pad, self.g["canvas"] - pad
        return np.all((points >= lo) & (points <= hi), axis=-1)

    def extend(self, rng, pivot, theta, skip):
        """The next paddle of a snake whose last pivot and direction are ``pivot``,
        ``theta`` (its last paddle has index ``skip``): (tail, head, pivot, theta), or
        None at a dead end or after ``_SEGMENT_TRIES`` self-crossings."""
        g = self.g
        pivot = pivot + (g["paddle"] + 2 * g["margin"]) * _direction(theta)
        u = _direction(self.angles)
        heads = pivot + (g["paddle"] + g["margin"]) * u
        delta = np.abs((self.angles - theta + np.pi) % (2 * np.pi) - np.pi)
        weight = np.cos(np.minimum(g["continuity"] * delta, np.pi / 2)) ** 2
        weight = weight * self.inside(heads, g["padding"] + g["margin"])
        others = self._others(skip)
        if len(others):
            near = _point_segment_distance(heads, others[:, 0], others[:, 1]).min(1)
            weight = weight * (near > g["thickness"] / 2 + 2 * g["margin"])
        if weight.sum() < 1e-4:
            return None
        for _ in range(_SEGMENT_TRIES):
            k = int(rng.choice(len(weight), p=weight / weight.sum()))
            tail = pivot + g["margin"] * u[k]
            if self.clear(tail, heads[k], skip):
                return tail, heads[k], pivot, self.angles[k]
        return None

    def add(self, tail, head) -> int:
        self.paddles = np.concatenate([self.paddles, np.stack([tail, head])[None]])
        return len(self.paddles) - 1


def _seed(g, tail, theta):
    """The first paddle of a snake from ``tail`` along ``theta``: (tail, head, pivot)."""
    u = _direction(theta)
    return tail, tail + g["paddle"] * u, tail - g["margin"] * u


def _grow(canvas: _Canvas, rng, first, theta, length):
    """Add a snake of ``length`` paddles from its seed paddle ``first`` = (tail, head,
    pivot): its paddles (length, 2, 2), or None (the canvas keeps what was added)."""
    tail, head, pivot = first
    last = canvas.add(tail, head)
    segs = [(tail, head)]
    for _ in range(length - 1):
        step = canvas.extend(rng, pivot, theta, last)
        if step is None:
            return None
        tail, head, pivot, theta = step
        last = canvas.add(tail, head)
        segs.append((tail, head))
    return np.array(segs)


def _targets(rng, L, g):
    """The two target snakes, grown a paddle at a time in turn: (canvas, [a, b]), or None."""
    C, sd = g["canvas"], g["seed_distance"]
    canvas = _Canvas(g)
    tail_a = rng.uniform(2 * sd, C - 2 * sd, 2) if C > 4 * sd else np.full(2, C / 2)
    tail_b = tail_a + sd * _direction(rng.uniform(0, 2 * np.pi))
    seeds = [_seed(g, t, rng.uniform(-np.pi, np.pi)) for t in (tail_a, tail_b)]
    thetas = [np.arctan2(*(s[1] - s[0])) for s in seeds]
    if not all(canvas.inside(np.stack(s), 0.0).all() for s in seeds):
        return None
    pivots, lasts, snakes = [], [], []
    for tail, head, pivot in seeds:
        lasts.append(canvas.add(tail, head))
        pivots.append(pivot)
        snakes.append([(tail, head)])
    for _ in range(L - 1):
        for i in range(2):
            step = canvas.extend(rng, pivots[i], thetas[i], lasts[i])
            if step is None:
                return None
            tail, head, pivots[i], thetas[i] = step
            lasts[i] = canvas.add(tail, head)
            snakes[i].append((tail, head))
    return canvas, [np.array(s) for s in snakes]


def _distractor(canvas: _Canvas, rng, length):
    """One distractor snake of ``length`` paddles from a free seed, or None after
    ``_SNAKE_TRIES`` tries (the canvas keeps only complete snakes)."""
    g = canvas.g
    for _ in range(_SNAKE_TRIES):
        saved = canvas.paddles
        tail = rng.uniform(g["padding"], g["canvas"] - g["padding"], 2)
        first = _seed(g, tail, rng.uniform(-np.pi, np.pi))
        if not (canvas.inside(np.stack(first), g["padding"]).all() and canvas.clear(first[0], first[1])):
            continue
        theta = np.arctan2(*(first[1] - first[0]))
        snake = _grow(canvas, rng, first, theta, length)
        if snake is not None:
            return snake
        canvas.paddles = saved
    return None


def _scene(rng, L, n_distractors, d_len, g):
    """Two target snakes, then up to ``n_distractors`` distractor snakes; None when the
    targets cannot be drawn in ``_SCENE_TRIES`` tries."""
    for _ in range(_SCENE_TRIES):
        drawn = _targets(rng, L, g)
        if drawn is not None:
            break
    else:
        return None
    canvas, snakes = drawn
    for _ in range(n_distractors):
        snake = _distractor(canvas, rng, d_len)
        if snake is not None:
            snakes.append(snake)
    return snakes


def _draw(snakes, markers, g, size, up=2):
    """Anti-aliased paddles and filled circles on the whole canvas at ``up`` times the
    reference resolution, resized to ``size`` px."""
    from skimage.draw import disk, line_aa
    from skimage.transform import resize

    S = int(round(g["canvas"] * up))
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
    return np.clip(np.asarray(resize(canvas, (size, size), anti_aliasing=True)), 0, 1)


def render(rng: np.random.Generator, num_samples, path_length, image_size, canvas, num_distractors, distractor_length):
    """The images, labels and info of :func:`pathfinder` (numpy generator ``rng``); points
    in ``info`` are in output px."""
    g = {**REFERENCE, "canvas": float(canvas)}
    scale = image_size / g["canvas"]
    images = np.zeros((num_samples, 1, image_size, image_size), np.float32)
    ends = np.zeros((num_samples, 2, 2, 2), np.float32)
    markers = np.zeros((num_samples, 2, 2), np.float32)
    marker_curve = np.zeros((num_samples, 2), np.int32)
    placed = np.zeros(num_samples, np.int32)
    labels = (rng.random(num_samples) < 0.5).astype(np.int32)
    for i in range(num_samples):
        snakes = _scene(rng, path_length, num_distractors, distractor_length, g)
        if snakes is None:
            raise ValueError(
                f"path_length {path_length} does not fit a {canvas:g} px canvas (two target snakes inside the "
                "padding): use a shorter path or a larger canvas"
            )
        end_points = np.array([[s[0][0], s[-1][1]] for s in snakes[:2]])
        o = int(rng.integers(2))
        marker_curve[i] = (o, o if labels[i] else 1 - o)
        marks = np.array([end_points[o, 0], end_points[marker_curve[i, 1], 1]])
        ends[i], markers[i] = end_points * scale, marks * scale
        placed[i] = len(snakes) - 2
        images[i, 0] = _draw(snakes, marks, g, image_size)
    info = {"endpoints": ends, "markers": markers, "marker_curve": marker_curve, "num_distractors": placed}
    return LocalityData(images, labels, None, info)


def _block(bits, n, params, cache: DataCache | None):
    """One block of ``n`` images drawn from the numpy generator seeded by ``bits``, kept
    in ``cache`` when one is given."""
    make = lambda: render(np.random.default_rng(bits), n, **params)  # noqa: E731
    if cache is None:
        return make()
    return cache("pathfinder", {"key": bits, "generator": "linsley-2018-rules", "num_samples": n, **params}, make)


def check_fits(path_length: int, canvas: float = REFERENCE["canvas"]) -> None:
    """Raise ``ValueError`` naming ``path_length`` when a straight snake of that many
    paddles, ``path_length (paddle + 2 margin) - 2 margin`` reference px, is longer than
    twice the side of a ``canvas`` px canvas inside its padding (no curved one fits
    reliably), or naming ``canvas`` when the padding leaves no room."""
    room = canvas - 2 * REFERENCE["padding"]
    if room < 2 * REFERENCE["seed_distance"]:
        raise ValueError(
            f"canvas {canvas:g} px leaves {room:g} px inside the padding ({REFERENCE['padding']:g} px a side): "
            f"it needs at least {2 * REFERENCE['seed_distance']:g}"
        )
    span = path_length * (REFERENCE["paddle"] + 2 * REFERENCE["margin"]) - 2 * REFERENCE["margin"]
    if span > 2 * room:
        raise ValueError(
            f"path_length {path_length} spans up to {span:.0f} reference px: it cannot fit a {canvas:g} px canvas "
            f"({room:.0f} px inside the padding)"
        )


def pathfinder(
    key: PRNGKeyArray,
    num_samples: int,
    path_length: int,
    *,
    image_size: int = 32,
    canvas: float = REFERENCE["canvas"],
    num_distractors: int | None = None,
    distractor_length: int | None = None,
    cache: DataCache | None = None,
    workers: int = 1,
):
    """Pathfinder images (Linsley et al. 2018; see the module docstring): the whole
    ``canvas`` rendered and resized to ``image_size`` px.

    Args:
      key: JAX PRNG key (its bits seed numpy).
      num_samples: images to draw; label 1 with probability 1/2.
      path_length: paddles per target snake (the paper: 3, 5, 7, 9 on a 300 px canvas
        resized to 150 px).
      image_size: side of the output images in px.
      canvas: side of the generator's canvas in reference px (the generator: 300); a
        smaller canvas keeps the paddles' size and spacing and holds shorter paths.
      num_distractors: distractor snakes to place (default ceil(90 / path_length) scaled
        by the canvas area, (canvas / 300)^2, as the generator places them); those that
        find no room are left out (``info["num_distractors"]`` counts the placed ones).
      distractor_length: paddles per distractor (default max(1, floor(path_length / 3)),
        the generator's int(path_length / 3)).
      cache: keeps the images (a :class:`~jaxreg.locality.data.DataCache`, e.g. the lab's
        on-disk cache), in blocks of ``BLOCK`` images (block b drawn with ``fold_in(key, b)``);
        None: no cache.
      workers: processes drawing the blocks in parallel.

    Returns:
      ``LocalityData`` with ``images`` (N, 1, S, S) in [0, 1], ``labels`` (N,), ``squares``
      None, and ``info``: ``endpoints`` (N, 2, 2, 2) (start, end) of the two target
      snakes, ``markers`` (N, 2, 2), ``marker_curve`` (N, 2) (which target snake each
      circle marks), ``num_distractors`` (N,); points in (row, col) output px.
    """
    num_samples = _checks.integer("num_samples", num_samples, minimum=1)
    path_length = _checks.integer("path_length", path_length, minimum=1)
    image_size = _checks.integer("image_size", image_size, minimum=8)
    canvas = _checks.number("canvas", canvas, positive=True)
    area = (canvas / REFERENCE["canvas"]) ** 2
    if num_distractors is None:
        num_distractors = int(np.ceil(90 / path_length * area - 1e-9))
    num_distractors = _checks.integer("num_distractors", num_distractors, minimum=0)
    if distractor_length is None:
        distractor_length = max(1, path_length // 3)
    distractor_length = _checks.integer("distractor_length", distractor_length, minimum=1)
    check_fits(path_length, canvas)
    workers = _checks.integer("workers", workers, minimum=1)
    params = dict(
        path_length=path_length,
        image_size=image_size,
        canvas=canvas,
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
