"""Pathfinder: a CNN's test accuracy against path length, with and without the gradient-change
regularizer (Razin et al. 2022).

Are the two markers joined by one dashed curve of ``path_length`` paddles? The paper:
without the regularizer (lambda = 0) test accuracy falls as the paths get longer; with it,
long-path accuracy rises.
The grid on the reproduction contract: :class:`jaxreg_lab.locality.grids.PathfinderGrid`.
"""

from __future__ import annotations

from jaxreg_lab.locality.configs import PathfinderConfig
from jaxreg_lab.locality.grids import PathfinderGrid
from jaxreg_lab.reproductions._locality import locality_claims

NAME = "locality-pathfinder"
Config = PathfinderConfig  # frozen; preset("tiny" | "small" | "paper"); seeds: a count or a tuple of seeds


CLAIMS = locality_claims(
    "path_length",
    "Pathfinder",
    "the path grows longer",
    "Razin et al. 2022, Pathfinder figure (test accuracy against path length, per lambda)",
    # at the CPU size every network is at chance (README): no short-range accuracy to fall from
    failing={
        "plain-cnn-learns-short-range": "at this size the plain CNN is at chance even on the shortest paths: it "
        "memorizes its training images without learning the path",
        "regularizer-restores-long-range": "every network is at chance at this size, with or without the regularizer",
        "regularizer-lowers-held-out-r": "the held-out R stays near 1 at every lambda: the regularized networks do "
        "not fit their training images",
    },
    caveats={
        "plain-cnn-at-chance-long-range": "vacuous at this size: the plain CNN is at chance on the shortest paths "
        "too (its control fails)",
        "regularizer-keeps-short-range": "vacuous at this size: every network is at chance at the shortest range, so "
        "the change is noise around chance",
    },
)


class Pathfinder(PathfinderGrid):
    """The grid with its claims."""

    def claims(self) -> tuple:
        return CLAIMS


REPRODUCTION = Pathfinder()
plot, summary = REPRODUCTION.plot, REPRODUCTION.summary
