"""Claims: verdicts per seed and overall, the records in results.json, `jaxreg check`."""

import json

import numpy as np
import pytest
from helpers import reproduce_tiny

from jaxreg_lab import cli
from jaxreg_lab.claims import Claim, at_default, compare, evaluate, evaluate_all, select, table
from jaxreg_lab.reproductions import matrix_dynamics
from jaxreg_lab.reproductions._transitions import separate_rises
from jaxreg_lab.store.results import Results, load_results


def _results(**arrays):
    dims = {k: ("seed",) + tuple(f"d{i}" for i in range(np.ndim(v) - 1)) for k, v in arrays.items()}
    return Results("x", {k: np.asarray(v) for k, v in arrays.items()}, dims, {}, {}, {})


def _claim(**kw):
    base = dict(
        id="small-error",
        statement="s",
        source="src",
        paper="p",
        quantity="q",
        measure=lambda r: r["e"],
        op="<",
        threshold=0.1,
    )
    return Claim(**{**base, **kw})


def test_verdict_counts_every_seed_and_nan_fails():
    r = _results(e=[0.05, 0.2, np.nan])
    rec = evaluate(_claim(), r)
    assert rec["holds"] == [True, False, False]
    assert rec["values"][:2] == [0.05, 0.2] and rec["values"][2] is None
    assert rec["verdict"] == "does not hold: 1/3 seeds" and not rec["holds_overall"]
    assert evaluate(_claim(threshold=0.3), _results(e=[0.05, 0.2, 0.25]))["verdict"] == "holds in 3/3 seeds"
    maj = evaluate(_claim(need="majority"), _results(e=[0.05, 0.01, 0.5]))
    assert maj["holds_overall"] and maj["verdict"] == "holds in 2/3 seeds"
    assert evaluate(_claim(op=">="), _results(e=[0.1]))["holds"] == [True]
    assert evaluate(_claim(op=">"), _results(e=[0.1]))["holds"] == [False]
    one = evaluate(_claim(measure=lambda r: 0.01), _results(e=[0.0]))
    assert one["per_seed"] is False and one["verdict"] == "holds"


@pytest.mark.parametrize(
    "kw, fragment",
    [
        (dict(id="Bad Id"), "kebab-case"),
        (dict(op="!="), "op must be one of"),
        (dict(need="most"), "need must be one of"),
        (dict(threshold=float("nan")), "threshold must be finite"),
    ],
)
def test_claim_rejects_bad_fields(kw, fragment):
    with pytest.raises(ValueError, match=fragment):
        _claim(**kw)


def test_compare_names_each_disagreement():
    r = _results(e=[0.05, 0.06])
    saved = evaluate_all([_claim()], r)
    assert compare(saved, saved) == []
    tampered = json.loads(json.dumps(saved))
    tampered[0]["values"][1] = 0.0601
    assert any("recorded values" in p for p in compare(tampered, saved))
    failing = evaluate_all([_claim(threshold=0.055)], r)
    assert any("expected to hold" in p for p in compare(failing, failing))
    known = evaluate_all([_claim(threshold=0.055, expected=False)], r)
    assert compare(known, known) == []
    assert any("no longer declared" in p for p in compare(saved, []))
    assert any("records no claims" in p for p in compare(None, saved))
    with pytest.raises(ValueError, match="unique"):
        evaluate_all([_claim(), _claim()], r)
    assert "does not hold: 1/2 seeds" in table(failing) and "UNEXPECTED" in table(failing)


def test_at_default_compares_the_saved_config_with_the_small_preset():
    import dataclasses

    small = json.loads(json.dumps(dataclasses.asdict(matrix_dynamics.Config.preset("small")), default=list))
    assert at_default(matrix_dynamics, Results("matrix-dynamics", {}, {}, {}, small, {}))
    assert not at_default(matrix_dynamics, Results("matrix-dynamics", {}, {}, {}, {**small, "seeds": 4}, {}))
    # a field added after the results were made counts at its default; a removed one does not
    older = {k: v for k, v in small.items() if k != "depth"}
    assert at_default(matrix_dynamics, Results("matrix-dynamics", {}, {}, {}, older, {}))
    assert not at_default(matrix_dynamics, Results("matrix-dynamics", {}, {}, {}, {**small, "unit": 0.3}, {}))


def test_select_moves_seed_first_and_picks_coordinates():
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    r = Results("x", {"a": arr}, {"a": ("depth", "seed", "t")}, {"depth": [2, 3], "t": [0.0, 1.0, 2.0, 3.0]}, {}, {})
    np.testing.assert_array_equal(select(r, "a", depth=3), arr[1])
    np.testing.assert_array_equal(select(r, "a"), np.moveaxis(arr, 1, 0))
    np.testing.assert_array_equal(select(r, "a", depth=2, t=2.0), arr[0, :, 2])
    with pytest.raises(KeyError, match="not among"):
        select(r, "a", depth=4)


def test_separate_rises():
    assert separate_rises([100.0, 150.0, 300.0]) == 3
    assert separate_rises([100.0, 110.0, 300.0, 320.0]) == 2
    assert separate_rises([100.0, 100.0]) == 1
    assert separate_rises([100.0, np.nan]) == 1
    assert separate_rises([np.nan]) == 0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return reproduce_tiny(tmp_path_factory, "matrix-dynamics")


def test_reproduce_records_claims_and_check_rejudges_them(tiny_run, tmp_path, capsys):
    saved = load_results(tiny_run).meta["claims"]
    assert [c["id"] for c in saved] == ["one-at-a-time", "ordered", "low-rank", "recovers"]
    assert all(len(c["values"]) == 1 for c in saved)  # one per seed of the tiny preset (1 seed)
    # the tiny preset is not the default one: its verdicts are reported, not held to expectations
    assert not at_default(matrix_dynamics, load_results(tiny_run))
    assert cli.main(["check", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    assert "claims (claim | paper | ours, per seed | verdict)" in out and "ordered" in out
    assert "not held to expectations" in out
    # a forged value in results.json: check names it and exits 1
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    meta = json.loads((copy / "results.json").read_text())
    meta["claims"][1]["values"][0] = 123.0
    (copy / "results.json").write_text(json.dumps(meta))
    assert cli.main(["check", str(copy)]) == 1
    assert "recorded values [123.0]" in capsys.readouterr().out
    # --write records the claims judged on the arrays again
    cli.main(["check", str(copy), "--write"])
    assert load_results(copy).meta["claims"] == saved
