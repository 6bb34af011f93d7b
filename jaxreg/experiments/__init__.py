"""Named reproductions: each module has a frozen ``Config`` (with ``preset(size)``),
``run(config, *, out_dir, resume, progress) -> dict``, ``plot(results, out_dir)`` and
``summary(results) -> str``."""

from . import matrix_dynamics as matrix_dynamics

EXPERIMENTS = {
    matrix_dynamics.NAME: matrix_dynamics,
}
