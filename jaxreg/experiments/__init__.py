"""Named reproductions: each module has a frozen ``Config`` (with ``preset(size)``),
``run(config, *, out_dir, resume, progress) -> dict``, ``plot(results, out_dir)`` and
``summary(results) -> str``."""

from . import matrix_completion_depth as matrix_completion_depth
from . import matrix_dynamics as matrix_dynamics

EXPERIMENTS = {
    matrix_dynamics.NAME: matrix_dynamics,
    matrix_completion_depth.NAME: matrix_completion_depth,
}
