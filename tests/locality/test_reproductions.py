"""The two locality reproductions end to end through the command line (tiny presets).

One in-process ``jaxreg reproduce ... --size tiny`` per task (module fixture; the runs in
this file share its compiled programs), then what issue 7 asks of them: with lambda > 0
the held-out R ends lower than with lambda = 0 at every range and seed, and the
regularized runs still fit their training set; reload and re-plot without recomputing;
bad input exits 2. (Resume is tested once, on the smallest settings, in test_training.py.)

Margins: see ``_MEASURED`` at the end.
"""

import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import InterruptAt

from jaxreg_lab import cli, driver
from jaxreg_lab.locality import plot_locality
from jaxreg_lab.reproductions import EXPERIMENTS, locality_is_same_class, locality_pathfinder
from jaxreg_lab.store.results import load_results

ISC, PF = locality_is_same_class.NAME, locality_pathfinder.NAME
# the tiny presets at one seed (half their runs); their lambdas restated as TOML:
# exercises lists -> tuples in a real run
TOML = {ISC: "lambdas = [0, 0.3]\nseeds = [0]\n", PF: "lambdas = [0, 1.0]\nseeds = [0]\n"}
SEEDS = (0,)


def _reproduce(name, out, *extra):
    return cli.main(["reproduce", name, "--size", "tiny", "--out", str(out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("locality_cli")
    x64 = jax.config.jax_enable_x64
    out = {}
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("JAXREG_CACHE", str(root / "cache"))
            for name in (ISC, PF):
                (root / f"{name}.toml").write_text(TOML[name])
                out[name] = root / name
                code = _reproduce(name, out[name], "--config", str(root / f"{name}.toml"))
                # a run that trains all its epochs before the stopping rule fires is max_steps: exit 1
                statuses = load_results(out[name]).meta["status"]
                assert code == (0 if all(s == "converged" for s in statuses) else 1), (code, statuses)
                # the CLI enables x64, but CNN training is float32 (recorded as such)
                assert load_results(out[name]).meta["precision"] == "float32"
    finally:
        jax.config.update("jax_enable_x64", x64)
    return out


@pytest.mark.parametrize("name, range_name", [(ISC, "distance"), (PF, "path_length")])
def test_regularizer_lowers_held_out_R_and_still_fits(runs, name, range_name):
    res = load_results(runs[name])
    config = EXPERIMENTS[name].Config.preset("tiny", seeds=SEEDS)
    assert res.name == name and res.meta["size"] == "tiny"
    assert res.dims["test_accuracy"] == (range_name, "lambda", "seed")
    shape = (len(getattr(config, range_name + "s")), len(config.lambdas), len(config.seeds))
    for key in ("test_accuracy", "train_accuracy", "test_R", "epochs"):
        assert res[key].shape == shape, key
    assert res.coords["lambda"] == list(config.lambdas) and res.config["lambdas"] == list(config.lambdas)
    # the tiny preset's few epochs end every run at the cap, before the fit-plus-patience rule
    assert res.meta["status"] == ["max_steps"] * int(np.prod(shape))
    assert np.all(res["epochs"] == config.max_epochs)
    R, train = res["test_R"], res["train_accuracy"]  # (range, lambda, seed); lambda = (0, > 0)
    assert np.all((R > 0) & (R <= 1)), R
    assert np.all(R[:, 1, :] < R[:, 0, :] - _MEASURED[name]["R_gap"]), R
    assert np.all(train[:, 1, :] >= _MEASURED[name]["fit"]), train
    assert np.all(np.isfinite(res["history"]))
    assert not (runs[name] / ".checkpoint").exists()  # replaced by the results
    assert (runs[name] / f"{name}.png").stat().st_size > 10_000 and (runs[name] / f"{name}.pdf").exists()


@pytest.mark.parametrize("name", [ISC, PF])
def test_claims_recorded_per_seed(runs, name):
    """The claims that ``jaxreg reproduce`` records: every declared one, one value per seed;
    at tiny size the regularizer lowers the held-out R at the longest range in every seed
    (as the test above asserts of the arrays)."""
    res = load_results(runs[name])
    records = {r["id"]: r for r in res.meta["claims"]}
    assert list(records) == [c.id for c in EXPERIMENTS[name].CLAIMS]
    assert all(r["per_seed"] and len(r["values"]) == len(res.coords["seed"]) for r in records.values())
    assert records["regularizer-lowers-held-out-r"]["holds_overall"], records["regularizer-lowers-held-out-r"]


def test_plot_redraws_from_saved_results(runs, capsys, tmp_path):
    out = runs[ISC]
    (out / f"{ISC}.png").unlink()
    assert cli.main(["plot", str(out)]) == 0
    assert (out / f"{ISC}.png").stat().st_size > 10_000
    text = capsys.readouterr().out
    res = load_results(out)
    acc = res["test_accuracy"][1, 1]  # distance 16, lambda 1, over seeds
    assert f"{acc.mean():.3f} ± {acc.std():.3f}" in text
    assert "lambda=0.3" in text and "held-out R" in text
    # the dict API draws the same figure from the same arrays
    as_dict = {"arrays": {k: (res.dims[k], res[k]) for k in res.arrays}, "coords": res.coords}
    assert plot_locality(as_dict, tmp_path / "isc.png").stat().st_size > 10_000
    # results saved by benchmarks/gpu_pathfinder.py (H100, paper settings) redraw too; they
    # predate the seal and the arrays' checksum, so they are read as edited, on request
    gpu = Path(__file__).parents[2] / "benchmarks" / "results" / "pathfinder_gpu_h100"
    shutil.copytree(gpu, tmp_path / "gpu")
    assert cli.main(["plot", str(tmp_path / "gpu")]) == 2
    assert "--trust-edited" in capsys.readouterr().err
    assert cli.main(["plot", "--trust-edited", str(tmp_path / "gpu")]) == 0
    assert (tmp_path / "gpu" / f"{PF}.png").exists()
    assert "path_length" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, toml, fragment",
    [
        ([ISC, "--size", "huge"], None, "size"),
        ([ISC, "--seeds", "0"], None, "--seeds"),
        ([ISC], "distances = [0, 17]", "distance"),  # the tiny canvas is 32 px: gaps <= 16
        ([ISC], "seeds = 0", "seeds"),
        ([PF], "path_lengths = [0, 2]", "path_length"),
        ([PF], "lambdas = [-3.0]", "lambda"),
        ([PF], "patch_size = 13", "patch_size"),
    ],
)
def test_bad_input_one_line_exit_2(argv, toml, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(driver, "run_chunks", InterruptAt(None, 1))  # no training may start
    extra = []
    if toml is not None:
        (tmp_path / "c.toml").write_text(toml + "\n")
        extra = ["--config", str(tmp_path / "c.toml")]
    argv = [argv[0], "--size", "tiny", *argv[1:]] if "--size" not in argv else argv
    assert cli.main(["reproduce", *argv, "--out", str(tmp_path / "o"), "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_samples_command_writes_png(tmp_path, capsys):
    assert cli.main(["samples", "--out", str(tmp_path / "s.png"), "--seed", "3"]) == 0
    assert (tmp_path / "s.png").stat().st_size > 20_000
    assert cli.main(["samples", "--seed", "-1"]) == 2
    assert "--seed" in capsys.readouterr().err


# Measured with the tiny presets at their seeds 0 and 1 (the fixture runs seed 0 alone: a run's
# random draws depend on the runs vmapped beside it, so its numbers differ in detail; at seed 0
# alone with lambda 1e-4 in place of 0.3, Is-Same-Class's held-out R ratio at distance 16 is
# 1.02, which the R_gap check rejects), held-out R lambda = 0 -> > 0:
# Is-Same-Class (lambda 0.3): distance 0: 0.627 -> 0.524, 0.612 -> 0.411; distance 16:
# 0.861 -> 0.749, 0.855 -> 0.782; train accuracy with lambda 0.3: 0.984-1.0.
# Pathfinder (the generator's rules, a 120 px canvas resized to 24 px, lambda 1): length 2:
# 0.860 -> 0.769, 0.843 -> 0.687; length 4: 0.870 -> 0.718, 0.843 -> 0.710; train accuracy
# with lambda 1: length 2: 0.969, 1.0; length 4: 0.797, 0.984 (1.0 without): the regularized
# tiny runs fit only partly in 20 epochs.
_MEASURED = {ISC: {"R_gap": 0.03, "fit": 0.95}, PF: {"R_gap": 0.05, "fit": 0.65}}
