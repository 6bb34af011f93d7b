"""Is-Same-Class: the gradient-change regularizer restores long-range accuracy (Razin et al. 2022).

Two images at horizontal gap ``distance`` on a blank canvas; label: same class? Without
the regularizer (lambda = 0) test accuracy falls towards chance as the gap grows. The
images (``dataset``): scikit-learn's digits (the tiny and small presets, offline) or
CIFAR-10, the paper's (the paper preset; ``jaxreg data fetch cifar10``).
The grid on the reproduction contract: :class:`jaxreg_lab.locality.grids.IsSameClassGrid`.
"""

from __future__ import annotations

from jaxreg_lab.locality.configs import IsSameClassConfig
from jaxreg_lab.locality.grids import IsSameClassGrid
from jaxreg_lab.reproductions._locality import locality_claims

NAME = "locality-is-same-class"
Config = IsSameClassConfig  # frozen; preset("tiny" | "small" | "paper"); seeds: a count or a tuple of seeds

# every claim is judged after the run's last epoch; at the small preset that is the epoch
# cap for every run (the stop rule needs 100% train accuracy, which the longest gap does
# not reach), so each verdict belongs to that budget
BUDGET = (
    "judged at the epoch cap (the config's max_epochs): no run reached the stop rule, since at the longest gap "
    "train accuracy is still rising at the cap, and the regularized seeds leave chance late in training (the "
    "figure's bottom row, every seed's test accuracy per epoch); a longer budget may change the verdict"
)
CLAIMS = locality_claims(
    "distance",
    "Is-Same-Class",
    "the distance between the two images grows",
    "Razin et al. 2022, Is-Same-Class figure (test accuracy against distance, per lambda)",
    caveats={
        cid: BUDGET
        for cid in (
            "plain-cnn-learns-short-range",
            "plain-cnn-at-chance-long-range",
            "regularizer-restores-long-range",
            "regularizer-keeps-short-range",
            "regularizer-lowers-held-out-r",
        )
    },
)


class IsSameClass(IsSameClassGrid):
    """The grid with its claims."""

    def claims(self) -> tuple:
        return CLAIMS


REPRODUCTION = IsSameClass()
plot, summary = REPRODUCTION.plot, REPRODUCTION.summary
