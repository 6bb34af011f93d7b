"""Deep matrix sensing against depth and init scale, beside nuclear-norm minimization.

Arora, Cohen, Hu, Luo (NeurIPS 2019), appendix.

A rank-``rank`` target W* (entry RMS 1) is measured through y_i = <A_i, W*> with A_i of
i.i.d. N(0, 1/(m n)) entries (the authors' ``randn / n`` for 100x100). For each depth and
init scale, gradient flow on the mean squared measurement error runs to ``stop_at_loss``;
reported as in ``matrix-completion-depth``: the reconstruction error (mean over all
entries of (W - W*)^2), nuclear norm and effective rank, beside the nuclear-norm
minimization min ||X||_* s.t. |<A_i, X> - y_i| <= delta (cvxpy + SCS, delta 1e-3 as in
the authors' code), and per cell whether the depth beats it in every seed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxreg.tasks import matrix_sensing
from jaxreg_lab.claims import Claim
from jaxreg_lab.reproductions._completion_grid import (
    CompletionGrid,
    GridRun,
    cell_error,
    check_grid_config,
    grid_claims,
    plot_grid,
    summary_grid,
)
from jaxreg_lab.reproductions._config import FlowTolerances, Seeds
from jaxreg_lab.reproductions._results import nan_per_seed

NAME = "matrix-sensing"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(Seeds, FlowTolerances, GridRun):
    """Arora et al. 2019: 100x100, rank 5, 2000 / 5000 Gaussian measurements (20% and 50%
    of the entries), init scales 1e-3 ... 1e-6, 5 seeds (the paper preset).

    The small preset is a 30x30 rank-2 target with 180 measurements (the paper's 20% of
    the entries), init scales 1e-2, 1e-4 and 1e-6, 3 seeds: the few-measurement column
    only. Depth 2's error falls with the init (the saved results give it per init and
    seed): an init of 1e-2 leaves depth 2 behind the nuclear norm, a smaller one puts it
    ahead, as the paper has it.

    ``docs/results/matrix-sensing-paper`` holds both columns at the largest size tried
    whose whole grid ran within about an hour on the shared 2-core CPU: the small preset's
    30x30 rank-2 target with 180 and 450 measurements (20% and 50% of the entries), init
    scales 1e-3, 1e-4 and 1e-6 (the paper's largest, a middle one and its smallest),
    depths 2, 3, 4, 3 seeds, stop losses 1e-6 (the paper's) and 1e-8 (many
    measurements); its page gives the command and the wall time. 40x40 and larger did
    not fit: a loss-and-gradient evaluation at 5000 measurements reads the 5000 x 10,000
    operators of the paper's problem (400 MB in float64), and with many measurements
    depth 2 takes thousands to tens of thousands of solver steps of about 6 evaluations
    each to reach its stop loss (the note of ``depth-2-beats-nuclear-small-init`` gives
    the measured costs, of 40x40 and of the paper's size).

    With many measurements depth 2's error is set by the init's component in the
    operators' null space, not by its stop loss: measured, lowering the stop loss
    tenfold leaves it unchanged, and at one stop loss it falls with the init (the claim
    ``many-measurements-depth-2-set-by-init`` judges this from the saved errors). The
    within-tolerance claim, which takes an error near its stop loss as exact recovery,
    therefore fails for depth 2 from a large init. In that column depths 3 and 4 from
    init 1e-3 reach the solver's step cap (``max_steps``) before the stop loss 1e-8, so
    the many-measurement claims, which compare converged flows only, are undefined there
    (the claims' notes give the measured values)."""

    seeds: int = 3
    rtol: float = 1e-6
    max_steps: int = 50_000
    init_scales: tuple[float, ...] = (1e-2, 1e-4, 1e-6)

    shape: tuple[int, int] = (30, 30)
    rank: int = 2
    num_measurements: tuple[int, ...] = (180,)

    TINY = dict(
        shape=(20, 20), rank=2, num_measurements=(120,), depths=(2, 3), init_scales=(1e-2,), stop_at_loss=1e-5, seeds=2
    )
    PAPER = dict(shape=(100, 100), rank=5, num_measurements=(2000, 5000), init_scales=(1e-3, 1e-4, 1e-5, 1e-6), seeds=5)

    def __post_init__(self):
        check_grid_config(self, "num_measurements")


def plot(results, out_dir):
    return plot_grid(results, out_dir, "num_measurements", "measurements", NAME)


def summary(results) -> str:
    return summary_grid(results, "num_measurements")


# the small preset has one count of measurements (the paper's few); the paper-size run
# has both, measured there (docs/results/matrix-sensing-paper)
_ONE_COUNT = (
    "undefined at the small preset, which has one count of measurements (the paper's 20%) and for which "
    "'expected' is declared"
)
_CAPPED = (
    _ONE_COUNT + "; in the paper-size run (matrix-sensing-paper) depths 3 and 4 from init 1e-3 hit the solver's "
    "50,000-step cap before the stop loss 1e-8 at 450 measurements in every seed: those cells are NaN (not the "
    "converged solutions the paper compares), so it is undefined there too"
)
KNOWN = {
    "many-measurements-all-recover": _CAPPED + "; every error of that column, those cells included, is below 4e-5",
    "many-measurements-match-nuclear": _CAPPED
    + "; depth 2 from init 1e-3 ends 20-44x above the nuclear-norm solution there (the init sets its error)",
    "many-measurements-within-tolerance": _CAPPED
    + "; depth 2 from init 1e-3 ends at 1800-3900x its stop loss (the init sets its error: "
    "many-measurements-depth-2-set-by-init), every other converged flow within 16x and the nuclear-norm "
    "solution within 0.9x of its tolerance; measured at 40x40 rank 2 with 800 measurements, seed 0: depth 2 "
    "from init 1e-3 ends at error 1.04e-5 at stop loss 1e-8 and 9.94e-6 at 1e-9, so a tenfold lower stop loss "
    "leaves it unchanged",
}
SOURCE = "Arora et al. 2019, appendix (sensing, as Fig. 2)"
# depth 2's error at the largest init over its error at the smallest, with many
# measurements, above which the init (not the stop loss, the same for both) sets it
SET_BY_INIT = 10.0


def many_depth_2_init_ratio(results) -> np.ndarray:
    """e_2(largest init) / e_2(smallest init) with the most measurements (NaN with one
    count or one init scale): every flow of that column runs to the same stop loss, so a
    ratio far above 1 says that the init sets depth 2's error there, through its component
    in the operators' null space, in which the loss's gradient (1/m) sum_i r_i A_i has
    no component.

    Arguments:
        results: loaded results of :class:`MatrixSensing`.

    Returns:
        One ratio per seed (NaN for a seed with an unconverged cell).
    """
    dim = results.dims["error"][0]
    counts, inits = sorted(results.coords[dim]), sorted(results.coords["init_scale"])
    if len(counts) < 2 or len(inits) < 2:
        return nan_per_seed(results)
    n = counts[-1]
    return cell_error(results, n, 2, inits[-1]) / cell_error(results, n, 2, inits[0])


SET_BY_INIT_CLAIM = Claim(
    id="many-measurements-depth-2-set-by-init",
    statement=f"With many measurements, depth 2's error from the largest init is over {SET_BY_INIT:g}x its "
    "error from the smallest (both ran to the same stop loss): the init's component in the operators' null "
    "space, not the stop loss, sets it (the control of the within-tolerance claim).",
    source=SOURCE,
    paper="with 5000 measurements every method recovers the target (errors near zero); no init dependence "
    "is stated there",
    quantity="error(depth 2, largest init) / error(depth 2, smallest init), most measurements",
    measure=many_depth_2_init_ratio,
    op=">",
    threshold=SET_BY_INIT,
    expected=False,
    note=_ONE_COUNT,
)
# the size of the paper-size run and why: measured on the shared 2-core machine, loaded
# by other jobs (/usr/bin/time's user time and jitted loss-and-gradient timings)
SIZE_NOTE = (
    "the paper-size run (matrix-sensing-paper) is 30x30 rank 2 with 180 / 450 measurements, the largest tried "
    "that ran within about an hour on the shared 2-core CPU (978 s of user CPU time); measured there: one "
    "loss-and-gradient evaluation (depth 2) took 0.19-0.24 s at the paper's 100x100 with 5000 measurements, "
    "0.04-0.07 s with 2000, 1.1 ms at 40x40 with 800; at 40x40 rank 2 with 800 measurements seed 0's depth-2 "
    "flow took 15,634 solver steps (108 s) from init 1e-3 and 28,400 (191 s) from init 1e-4 to stop loss 1e-9, "
    "and one seed's grid (4 init scales) did not finish in 23 minutes; at 6 evaluations per step such a flow "
    "takes about 5 hours at the paper's size"
)
NOTES = {"depth-2-beats-nuclear-small-init": SIZE_NOTE}
CLAIMS = (
    *(
        dataclasses.replace(c, note=NOTES[c.id]) if c.id in NOTES else c
        for c in grid_claims("measurements", SOURCE, (2000, 5000), known=KNOWN)
    ),
    SET_BY_INIT_CLAIM,
)


class MatrixSensing(CompletionGrid):
    """The sensing grid (:class:`~jaxreg_lab.reproductions._completion_grid.CompletionGrid`):
    one run per seed, a problem per number of Gaussian measurements."""

    name = NAME
    config = Config
    count_dim = "num_measurements"

    def problem(self, config: Config, key, count: int):
        return matrix_sensing(key, config.shape, config.rank, count, num_test=0)

    def claims(self) -> tuple:
        return CLAIMS

    plot = staticmethod(plot)
    summary = staticmethod(summary)


REPRODUCTION = MatrixSensing()
