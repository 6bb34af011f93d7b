"""Timing the rise of learned components in saved curves (incremental learning).

For a curve sigma_r(t) saved at times ``ts``: when it crosses a fraction of its final
value, and how wide (relative to its midpoint) the leading component's rise is. Used by
:mod:`jaxreg_lab.reproductions.incremental_learning`'s summary, figure and tests.
"""

from __future__ import annotations

import math

import numpy as np
from jaxtyping import Array, Float


def top_components(norms: Float[Array, "time R"], k: int) -> np.ndarray:
    """Indices of the ``k`` components with the largest final value, largest first."""
    norms = np.asarray(norms)
    return np.argsort(-norms[-1])[:k]


def _first_crossing(ts: np.ndarray, y: np.ndarray, level: float) -> float:
    """The first time y(t) reaches ``level``, interpolated between saves: linearly in
    log y (the rise is exponential or faster, d log sigma/dt = K gamma sigma^{p-1}), so
    the result is not limited to the save grid. ``nan`` if y never reaches it."""
    above = y >= level
    if not above.any():
        return float("nan")
    i = int(np.argmax(above))
    if i == 0:
        return float(ts[0])
    lo, hi = y[i - 1], y[i]
    if lo > 0 and hi > lo:
        f = (math.log(level) - math.log(lo)) / (math.log(hi) - math.log(lo))
    else:
        f = 1.0
    return float(ts[i - 1] + f * (ts[i] - ts[i - 1]))


def crossing_times(ts: Float[Array, " time"], norms: Float[Array, "time R"], k: int, level: float = 0.5) -> np.ndarray:
    """For the ``k`` components of largest final value (largest first): the first time
    at which sigma_r(t) >= level * sigma_r(t_end) (interpolated between saves).
    Incremental learning: these are separated, the r-th largest learned after the others."""
    ts, norms = np.asarray(ts), np.asarray(norms)
    return np.asarray([_first_crossing(ts, norms[:, r], level * norms[-1, r]) for r in top_components(norms, k)])


def transition_times(
    ts: Float[Array, " time"], norms: Float[Array, "time R"], levels=(0.1, 0.5, 0.9)
) -> tuple[float, ...]:
    """(t_10%, t_50%, t_90%) of the leading component r (largest final value): the first
    times log sigma_r crosses 10%, 50%, 90% of the way from log sigma_r(0) to log
    sigma_r(t_end), i.e. sigma_r reaches sigma_q = sigma_r(0)^{1-q} sigma_r(t_end)^q
    (the rise as it shows on a log axis; unlike fractions of the final value, these
    levels stay above sigma_r(0) however large the initialization)."""
    ts, norms = np.asarray(ts), np.asarray(norms)
    r = int(top_components(norms, 1)[0])
    y0, y1 = norms[0, r], norms[-1, r]
    return tuple(_first_crossing(ts, norms[:, r], y0 ** (1 - q) * y1**q) for q in levels)


def transition_width(ts: Float[Array, " time"], norms: Float[Array, "time R"]) -> float:
    """Relative width of the leading component's rise, (t_90% - t_10%) / t_50% with the
    log-scale levels of :func:`transition_times` (smaller: sharper).

    For d sigma/dt = K gamma sigma^p with constant gamma > 0 (docs/theory.md §6b), the time
    to reach sigma is t(sigma) = (sigma_0^{-(p-1)} - sigma^{-(p-1)}) / (K gamma (p-1)),
    so with rho = sigma_end / sigma_0 and x = rho^{p-1}, t_q / t(inf) = 1 - x^{-q} and

        width = (x^{-1/10} - x^{-9/10}) / (1 - x^{-1/2}),

    which falls as x grows: as the exponent p = 2 - 2/N + k grows with the depth k of
    the factors (Hariz et al. 2022), deeper factors sharpen incremental learning. (Saturation
    at the end and the alignment of the A's, which makes gamma grow, sharpen it further.)
    Crossings are interpolated between saves; :func:`transition_saves` says how many
    save intervals the rise spans (below ~3 the width is poorly resolved)."""
    t10, t50, t90 = transition_times(ts, norms)
    return float((t90 - t10) / t50)


def transition_saves(ts: Float[Array, " time"], norms: Float[Array, "time R"]) -> float:
    """Number of save intervals the leading component's rise (t_10% to t_90% of
    :func:`transition_times`) spans."""
    ts = np.asarray(ts)
    t10, _, t90 = transition_times(ts, norms)
    return float((t90 - t10) / (ts[1] - ts[0]))


RATIO = 1.2  # each half-time at least this factor after the previous one
LEVEL = 0.1  # a component counts as learned once it reaches this fraction of the largest
COINCIDE = 1.1  # a shallow control's rises coincide: consecutive half-times within this factor


def incremental_claim(ts: Float[Array, " time"], norms: Float[Array, "time R"], rank: int) -> dict:
    """Whether one run learned its ``rank`` leading components one after the other.

    For the ``rank`` components of largest final value, largest first, the half-times
    t_r (first time at half the final value, :func:`crossing_times`) and the ratios
    t_{r+1} / t_r; ``count`` is the number of components whose largest value over the
    run reaches ``LEVEL`` (10%) of the largest one's. The claim holds when every ratio
    is >= ``RATIO`` (1.2; strictly ordered) and ``count == rank``. Two components that
    reach ``LEVEL`` with half-times less than ``RATIO`` apart rise together: with
    ``count > rank`` this is one target component split across two components.

    Arguments:
        ts: save times.
        norms: the component norms at each save.
        rank: the target's rank (at that node).

    Returns:
        ``{"half_times", "ratios", "count", "ordered", "count_ok", "holds", "together"}``;
        ``together`` lists the pairs (indices into ``norms``' columns) that rise together.
    """
    ts, norms = np.asarray(ts), np.asarray(norms)
    half = crossing_times(ts, norms, rank)
    ratios = half[1:] / half[:-1]
    peak = norms.max(axis=0)
    learned = np.flatnonzero(peak >= LEVEL * peak.max())
    t_learned = np.asarray([_first_crossing(ts, norms[:, r], 0.5 * norms[-1, r]) for r in learned])
    order = np.argsort(t_learned)
    together = [
        (int(learned[a]), int(learned[b])) for a, b in zip(order[:-1], order[1:]) if t_learned[b] < RATIO * t_learned[a]
    ]
    ordered = bool(np.all(ratios >= RATIO))  # a NaN (never reached) fails
    count_ok = len(learned) == rank
    return {
        "half_times": half.tolist(),
        "ratios": ratios.tolist(),
        "count": len(learned),
        "ordered": ordered,
        "count_ok": count_ok,
        "holds": ordered and count_ok,
        "together": together,
    }


def separate_rises(half_times: Float[Array, " R"], ratio: float = RATIO) -> int:
    """How many separate rises ``half_times`` (ascending order of learning) make: a new
    rise starts where a half-time is at least ``ratio`` times the previous one. ``R``
    components learned one at a time make ``R`` rises; all at once, one. A NaN (a
    component that never reached half its final value) ends the count.

    Arguments:
        half_times: the half-times, e.g. :func:`crossing_times` (largest component first).
        ratio: the factor that separates two rises.

    Returns:
        The number of rises.
    """
    half = np.sort(np.asarray(half_times, float))
    if half.size == 0 or not np.isfinite(half[0]):
        return 0
    rises = 1
    for a, b in zip(half[:-1], half[1:]):
        if not np.isfinite(b):
            break
        rises += bool(b >= ratio * a)
    return rises


def coincide(ratios, rank: int) -> bool:
    """Whether a shallow control's rises coincide: the ``rank - 1`` ratios of consecutive
    half-times (``ratios``, NaN-padded past them) each within ``COINCIDE`` of 1, either
    way (a NaN, a component that never reached half its final value, fails).

    Arguments:
        ratios: the ratios t_{r+1} / t_r of one panel and seed (e.g. the saved ``half_time_ratio``).
        rank: the number of leading components the ratios are over.

    Returns:
        The verdict.
    """
    ratios = np.asarray(ratios, float)[: rank - 1]
    return bool(ratios.size) and bool(np.all(np.maximum(ratios, 1 / ratios) <= COINCIDE))


RULE_STAGGER, RULE_COINCIDE = "stagger", "coincide"  # a panel's rule: its rises one at a time, or together


def _claims(panels, rules) -> list[list[dict]]:
    """:func:`incremental_claim` of every panel (outer) and seed (inner), with
    ``reached_stop_loss`` (the claim holds only for a run that fitted). ``holds`` follows
    the panel's rule (``rules``, one per panel):
    :data:`RULE_STAGGER`, the rises one at a time (``incremental_claim``'s ``holds``, with a
    ``note`` when a target component split across components that rise together), or
    :data:`RULE_COINCIDE`, the rises together (:func:`coincide`, a shallow control).
    ``panels``: ``[(title, model, ts (seed, save), norms (seed, save, R), rank, reached (seed,))]``."""
    if len(rules) != len(panels) or not set(rules) <= {RULE_STAGGER, RULE_COINCIDE}:
        raise ValueError(f"rules must give {RULE_STAGGER!r} or {RULE_COINCIDE!r} for each of the {len(panels)} panels")
    out = []
    for (_, _, ts, norms, rank, reached), rule in zip(panels, rules):
        row = []
        for s in range(len(norms)):
            c = incremental_claim(ts[s], norms[s], rank)
            c["reached_stop_loss"] = bool(reached[s])
            verdict = coincide(c["ratios"], rank) if rule == RULE_COINCIDE else c["holds"]
            c["holds"] = verdict and c["reached_stop_loss"]
            if rule == RULE_STAGGER and c["together"] and c["count"] > rank:
                c["note"] = f"components {c['together']} rise together: a target component split across them"
            row.append(c)
        out.append(row)
    return out


def claim_arrays(panels, rules) -> dict:
    """The claim's numbers per (seed, panel) as results arrays (:func:`_claims`):
    ``half_time`` and ``half_time_ratio`` (NaN-padded to the largest rank),
    ``count_above_level``, ``holds`` (by each panel's rule in ``rules``) and
    ``panel_model`` (the model behind each panel)."""
    claims = _claims(panels, rules)
    width = max(p[4] for p in panels)

    def table(key, n=None):
        rows = [[c[key] if n is None else c[key] + [np.nan] * (n - len(c[key])) for c in row] for row in claims]
        return np.asarray(rows, float if n is not None else None).swapaxes(0, 1)

    return {
        "half_time": (("seed", "panel", "order"), table("half_times", width)),
        "half_time_ratio": (("seed", "panel", "gap"), table("ratios", width - 1)),
        "count_above_level": (("seed", "panel"), table("count")),
        "holds": (("seed", "panel"), table("holds")),
        "panel_model": (("panel",), np.asarray([p[1] for p in panels])),
    }


def claim_summary(panels, rules) -> dict:
    """Per panel title: its rank, its rule (``rules``, as :func:`_claims`; described in
    words), every seed's claim (:func:`_claims`), the number of seeds where it holds and
    ``passes`` (it holds in a majority of seeds, e.g. 2 of 3)."""
    words = {
        RULE_STAGGER: f"rises one at a time: consecutive half-times >= {RATIO:g}x, {LEVEL:g} of the largest reached by "
        "exactly rank components",
        RULE_COINCIDE: f"rises coincide: consecutive half-times within {COINCIDE:g}x",
    }
    out = {}
    for (title, *_, rank, _), rule, seeds in zip(panels, rules, _claims(panels, rules)):
        held = sum(c["holds"] for c in seeds)
        out[title] = {
            "rank": rank,
            "rule": words[rule],
            "seeds_holding": held,
            "passes": 2 * held > len(seeds),
            "seeds": seeds,
        }
    return out
