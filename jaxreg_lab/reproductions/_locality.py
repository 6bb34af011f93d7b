"""The claims both locality reproductions share (:func:`locality_claims`), over one range
axis: with loss = BCE + lambda * R, test accuracy stays higher at long range (Razin et al.
2022). The grids themselves are :mod:`jaxreg_lab.locality.grids`."""

from __future__ import annotations

import functools

import numpy as np

from jaxreg_lab.claims import Claim, select

# ---------------------------------------------------------------- claims
CHANCE = 0.5  # balanced binary labels
MARGIN = 0.05  # within this of CHANCE a test accuracy is "at chance"


def _at(results, name: str, range_name: str, end: int, lam: float) -> np.ndarray:
    """(seed,): ``name`` at the shortest (``end=0``) or longest (``end=-1``) range and at
    ``lam``; NaN for every seed where the run lacks ``lam``, or for the longest range when
    it has a single range value (no range to grow)."""
    ranges = sorted(results.coords[range_name])
    nan = np.full(len(results.coords["seed"]), np.nan)
    if end == -1 and len(ranges) < 2:
        return nan
    try:
        return select(results, name, **{range_name: ranges[end], "lambda": float(lam)})
    except KeyError:
        return nan


def _regularized(results, name: str, range_name: str, end: int) -> np.ndarray:
    """(lambda > 0, seed): :func:`_at` for every regularized run (one NaN row without any)."""
    lams = [lam for lam in results.coords["lambda"] if lam > 0]
    if not lams:
        return np.full((1, len(results.coords["seed"])), np.nan)
    return np.stack([_at(results, name, range_name, end, lam) for lam in lams])


def _plain_accuracy(results, range_name: str, end: int) -> np.ndarray:
    return _at(results, "test_accuracy", range_name, end, 0.0)


def _regularized_long_accuracy(results, range_name: str) -> np.ndarray:
    """(seed,): the smallest test accuracy over lambda > 0 at the longest range."""
    return np.min(_regularized(results, "test_accuracy", range_name, -1), axis=0)


def _short_accuracy_change(results, range_name: str) -> np.ndarray:
    """(seed,): min over lambda > 0 of test accuracy(lambda) - test accuracy(0) at the shortest range."""
    regularized = _regularized(results, "test_accuracy", range_name, 0)
    return np.min(regularized - _plain_accuracy(results, range_name, 0), axis=0)


def _long_r_ratio(results, range_name: str) -> np.ndarray:
    """(seed,): max over lambda > 0 of held-out R(lambda) / held-out R(0) at the longest range."""
    regularized = _regularized(results, "test_R", range_name, -1)
    return np.max(regularized / _at(results, "test_R", range_name, -1, 0.0), axis=0)


def locality_claims(
    range_name: str, task: str, longer: str, source: str, failing=None, caveats=None
) -> tuple[Claim, ...]:
    """The claims of one locality reproduction (Razin et al. 2022's CNN experiment).

    Without the regularizer (lambda = 0) a CNN learns the task at the shortest range
    (the control: the task is learnable by this network) and is at chance (test accuracy
    below ``CHANCE + MARGIN``) at the longest; with it (every lambda > 0) test accuracy at
    the longest range is above chance, at the shortest it does not fall by more than
    ``MARGIN``, and the held-out R at the longest range falls (the mechanism: a gain
    without it is not the paper's effect).

    Arguments:
        range_name: the range coordinate ("distance" or "path_length").
        task: the task's name in the statements.
        longer: the range growing, in words (e.g. "the distance between the two images grows").
        source: the paper's figure.
        failing: ``{claim id: note}`` of the claims that do not hold at the shipped settings.
        caveats: ``{claim id: note}`` of claims that hold with a caveat.

    Returns:
        The claims, judged per seed.
    """
    failing, notes = failing or {}, {**(caveats or {}), **(failing or {})}
    rows = (
        (
            "plain-cnn-learns-short-range",
            f"Control: without the regularizer the CNN learns {task} at the shortest range (test accuracy above "
            "chance).",
            "at the shortest range the plain CNN is accurate (the long-range deficit is not a task it cannot learn)",
            "test accuracy, lambda 0, shortest range",
            functools.partial(_plain_accuracy, range_name=range_name, end=0),
            ">",
            CHANCE + MARGIN,
        ),
        (
            "plain-cnn-at-chance-long-range",
            f"Without the regularizer the CNN's test accuracy falls to chance as {longer}.",
            "the plain CNN's test accuracy falls to chance (0.5) at the longest range",
            "test accuracy, lambda 0, longest range",
            functools.partial(_plain_accuracy, range_name=range_name, end=-1),
            "<",
            CHANCE + MARGIN,
        ),
        (
            "regularizer-restores-long-range",
            "With the regularizer (every lambda > 0) test accuracy at the longest range is above chance.",
            "the regularizer raises long-range test accuracy substantially above chance",
            "smallest test accuracy over lambda > 0, longest range",
            functools.partial(_regularized_long_accuracy, range_name=range_name),
            ">",
            CHANCE + MARGIN,
        ),
        (
            "regularizer-keeps-short-range",
            "The regularizer does not lower test accuracy at the shortest range by more than the chance margin.",
            "short-range accuracy is unchanged by the regularizer",
            "min over lambda > 0 of the change in test accuracy from lambda 0, shortest range",
            functools.partial(_short_accuracy_change, range_name=range_name),
            ">",
            -MARGIN,
        ),
        (
            "regularizer-lowers-held-out-r",
            "The regularizer lowers the held-out R at the longest range (its mechanism: the prediction's gradient at "
            "one patch depends on the other).",
            "the regularizer lowers R, the gradient-change measure of weak long-range interaction",
            "max over lambda > 0 of held-out R(lambda) / R(0), longest range",
            functools.partial(_long_r_ratio, range_name=range_name),
            "<",
            1.0,
        ),
    )
    return tuple(
        Claim(
            id=cid,
            statement=statement,
            source=source,
            paper=paper,
            quantity=quantity,
            measure=measure,
            op=op,
            threshold=threshold,
            expected=cid not in failing,
            note=notes.get(cid, ""),
        )
        for cid, statement, paper, quantity, measure, op, threshold in rows
    )
