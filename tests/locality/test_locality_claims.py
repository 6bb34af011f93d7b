"""The locality reproductions' claims, judged on their shipped default-size results
(``docs/results/<name>/``: no training here) and on small synthetic grids."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from jaxreg_lab.claims import claims_of, compare, evaluate_all
from jaxreg_lab.reproductions import locality_is_same_class, locality_pathfinder
from jaxreg_lab.store.results import Results, load_results

SHIPPED = Path(__file__).resolve().parents[2] / "docs" / "results"


@pytest.mark.parametrize("module", [locality_is_same_class, locality_pathfinder], ids=lambda m: m.NAME)
def test_claims_on_the_shipped_results(module):
    """Every claim gives one value per seed, ids are unique, and each verdict is the
    expected one (Is-Same-Class: all hold in 3/3 seeds; Pathfinder: at chance
    everywhere, so only the two vacuous claims hold, at chance and unchanged)."""
    res = load_results(SHIPPED / module.NAME)
    records = evaluate_all(claims_of(module), res)
    assert len({r["id"] for r in records}) == len(records) == 5
    seeds = len(res.coords["seed"])
    for r in records:
        assert r["per_seed"] and len(r["values"]) == seeds and None not in r["values"], r
    assert compare(records, records) == []  # every claim expected to hold holds, and no other does
    assert [r["holds_overall"] for r in records] == [r["expected"] for r in records]
    if module is locality_is_same_class:
        assert all(r["holds_overall"] for r in records)


def _grid(accuracy, test_R, lambdas=(0.0, 0.1), ranges=(0, 40)):
    """Results of a (range, lambda, seed) grid."""
    dims = ("distance", "lambda", "seed")
    arrays = {"test_accuracy": np.asarray(accuracy, float), "test_R": np.asarray(test_R, float)}
    seeds = list(range(arrays["test_accuracy"].shape[-1]))
    coords = {"distance": list(ranges), "lambda": list(lambdas), "seed": seeds}
    return Results("locality-is-same-class", arrays, dict.fromkeys(arrays, dims), coords, {}, {})


def test_claims_measure_the_right_cells():
    """Values read from the right (range, lambda) cells; every lambda > 0 must restore
    (the worse counts); a grid without lambda > 0, or with one range, gives NaN."""
    # (range, lambda, seed): range 0 / 40, lambda 0 / 0.1 / 1, 2 seeds
    accuracy = [[[0.9, 0.8], [0.88, 0.79], [0.7, 0.8]], [[0.5, 0.52], [0.8, 0.75], [0.6, 0.51]]]
    test_R = [[[0.5, 0.5], [0.4, 0.4], [0.3, 0.3]], [[1.0, 0.98], [0.7, 0.6], [0.9, 0.99]]]
    res = _grid(accuracy, test_R, lambdas=(0.0, 0.1, 1.0))
    values = {r["id"]: r["values"] for r in evaluate_all(locality_is_same_class.CLAIMS, res)}
    np.testing.assert_allclose(values["plain-cnn-learns-short-range"], [0.9, 0.8])
    np.testing.assert_allclose(values["plain-cnn-at-chance-long-range"], [0.5, 0.52])
    np.testing.assert_allclose(values["regularizer-restores-long-range"], [0.6, 0.51])
    np.testing.assert_allclose(values["regularizer-keeps-short-range"], [-0.2, -0.01])
    np.testing.assert_allclose(values["regularizer-lowers-held-out-r"], [0.9, 0.99 / 0.98])
    plain = dataclasses.replace(
        res, arrays={k: v[:, :1] for k, v in res.arrays.items()}, coords={**res.coords, "lambda": [0.0]}
    )
    one_range = dataclasses.replace(
        res, arrays={k: v[:1] for k, v in res.arrays.items()}, coords={**res.coords, "distance": [0]}
    )
    for grid, undefined in (
        (plain, [c.id for c in locality_is_same_class.CLAIMS if "regularizer" in c.id]),
        (one_range, [c.id for c in locality_is_same_class.CLAIMS if "long-range" in c.id or "held-out" in c.id]),
    ):
        for r in evaluate_all(locality_is_same_class.CLAIMS, grid):
            assert (r["values"] == [None, None]) == (r["id"] in undefined), (r["id"], r["values"])
