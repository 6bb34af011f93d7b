"""The `incremental-learning` and `ht-rank` reproductions at tiny size, through the CLI."""

import numpy as np
import pytest
from helpers import interrupt_chunks

from jaxreg.cli import main
from jaxreg.experiments import _results, ht_rank
from jaxreg.experiments.incremental_learning import crossing_times, transition_saves, transition_width
from jaxreg.factorizations import trees
from jaxreg.results import load_results
from jaxreg.runner import checkpoints


def _reproduce(name, out):
    assert main(["reproduce", name, "--size", "tiny", "--out", str(out), "--no-progress"]) == 0
    res = load_results(out)
    assert res.name == name and all(s == "completed" for s in res.meta["status"])
    assert not (out / ".checkpoint").exists()
    png = out / f"{name}.png"
    png.unlink()
    assert main(["plot", str(out)]) == 0
    assert png.stat().st_size > 10_000 and (out / f"{name}.pdf").exists()
    return res


@pytest.fixture(scope="module")
def incremental(tmp_path_factory):
    return _reproduce("incremental-learning", tmp_path_factory.mktemp("il"))


@pytest.fixture(scope="module")
def htrank(tmp_path_factory):
    out = tmp_path_factory.mktemp("ht")
    return out, _reproduce("ht-rank", out)


def test_matrix_and_cp_components_learned_one_after_another(incremental):
    cfg = incremental.config
    for key, row, k in (("mf_singular_values", 0, cfg["mf_rank"]), ("tf_component_norms", 1, cfg["tf_rank"])):
        ts, norms = incremental["flow_time"][row], incremental[key][0]
        t_half = crossing_times(ts, norms, k)
        # the r-th largest component crosses half its final value after the (r-1)-th, with a gap
        assert np.all(t_half[1:] >= 1.05 * t_half[:-1]), (key, t_half)
        # and it grew from small initialization by orders of magnitude
        top = np.argsort(-norms[-1])[:k]
        assert np.all(norms[-1, top] > 30 * norms[0, top]), key


def test_htf_local_components_learned_incrementally(incremental):
    cfg = incremental.config
    root = len(incremental.coords["htf_node"]) - 1
    ts, norms = incremental["flow_time"][2], incremental[f"htf_node{root}_norms"][0]
    t_half = crossing_times(ts, norms, cfg["htf_rank"])
    assert t_half[-1] > 1.05 * t_half[0], t_half
    assert norms[-1].max() > 30 * norms[0].max()


def test_deeper_cp_factors_sharpen_the_transition(incremental):
    """Hariz et al. 2022: d sigma/dt = N delta sigma^{2-2/N+k}; from one balanced init
    (same w_r^n for every k) the leading component's rise sharpens with each k."""
    depths = incremental.coords["dcp_depth"]
    assert depths == [0, 1, 2]
    ts = [incremental["flow_time"][3 + i] for i in range(3)]
    norms = [incremental["dcp_component_norms"][0, :, i] for i in range(3)]
    widths = [transition_width(t, n) for t, n in zip(ts, norms)]
    for t, n in zip(ts, norms):
        assert transition_saves(t, n) >= 5  # the rise is resolved by the saves
        top = np.argmax(n[-1])
        assert n[-1, top] > 5 * n[0, top]  # and the leading component was learned
    # measured (small and tiny): 1.095, 0.151, 0.059
    assert widths[1] < 0.5 * widths[0] and widths[2] < 0.6 * widths[1], widths


def test_small_init_lowers_tree_ranks_below_the_large_init_control(htrank):
    """Under-determined (observations well below the model's degrees of freedom), both
    inits fit the observations, and only the small one ends at a low effective rank of
    the tree matricization. Catches: the control run with the small init (equal ranks),
    widths that cap the tree ranks (dof near the observation count), a flow that does not
    fit (train loss), and a metric that ignores the tensor (ranks equal to the start)."""
    _, res = htrank
    meta = res.meta
    assert meta["degrees_of_freedom"] >= 3 * meta["num_observed"] == 3 * res.config["num_observed"]
    small, large = res.coords["init_scale"]
    assert large > small
    in_tree = np.asarray(res.coords["in_tree"])
    assert in_tree.any() and (~in_tree).any()
    er = res["effective_rank"][:, :, -1]  # (init, seed, matricization) at the end
    # both fit: the train loss fell by over 100x from its start, for every seed and init
    assert np.all(res["loss"][:, :, -1] < 1e-2 * res["initial_loss"]), res["loss"][:, :, -1]
    # small init: the tree's rank fell to near the ground truth's; large init: it stayed high
    assert np.all(er[0][:, in_tree] < 0.5 * res["initial_effective_rank"][0][:, in_tree])
    assert np.all(er[0][:, in_tree] < res["target_effective_rank"][:, in_tree] + 1.0)
    # measured (tiny): 1.33 (small) against 7.61 (large)
    assert np.all(er[0][:, in_tree] + 3.0 < er[1][:, in_tree]), er
    assert np.all(er[0][:, in_tree] < 0.4 * er[1][:, in_tree]), er
    # and only the small init generalizes
    assert np.all(res["test_loss"][0, :, -1] < 0.2 * res["test_loss"][1, :, -1])


@pytest.mark.parametrize(
    "shape,widths,expected",
    [
        ((8,) * 4, (16, 16), 1792),  # tree ranks capped at 16: 2 (64 * 16 - 16^2) + 16^2
        ((8,) * 4, (64, 64), 4096),  # every rank reachable: all the entries
        ((8,) * 3, (4, 4), 112),  # tree ((0, 1), 2), ranks 4: Tucker, 3 (8 * 4 - 4^2) + 4^3
        ((8,) * 4, (3, 64), 4 * (8 * 3 - 9) + 2 * (9 * 3 - 9) + 9),  # 3 local components: all ranks 3
    ],
)
def test_ht_degrees_of_freedom(shape, widths, expected):
    """The dimension of the tensors of the model's largest HT rank (Uschmajew and
    Vandereycken 2013), against hand counts: a wrong term or cap changes one of them."""
    plan = trees.plan_tree(trees.balanced_tree(len(shape)), len(shape))
    assert trees.ht_degrees_of_freedom(shape, widths, plan) == expected


def test_ht_rank_resume_after_interrupt_equals_uninterrupted(htrank, tmp_path, monkeypatch):
    out, full = htrank  # the CLI's uninterrupted tiny run (same preset, float64)
    config = ht_rank.Config.preset("tiny")
    real = interrupt_chunks(monkeypatch, _results, at=1)  # the chunk loop of the flow reproductions
    with pytest.raises(KeyboardInterrupt):
        ht_rank.run(config, out_dir=tmp_path, progress=False)
    monkeypatch.setattr(_results, "run_chunks", real)
    assert [m["done"] for m in checkpoints(tmp_path).values()] == [1]
    resumed = ht_rank.run(config, out_dir=tmp_path, resume=True, progress=False)
    for key in ("effective_rank", "singular_values", "loss", "test_loss"):
        np.testing.assert_array_equal(resumed["arrays"][key][1], full[key])
