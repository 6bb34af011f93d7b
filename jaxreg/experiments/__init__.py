"""Named reproductions: each module has a frozen ``Config`` (with ``preset(size)``),
``run(config, *, out_dir, resume, progress) -> dict``, ``plot(results, out_dir)`` and
``summary(results) -> str``. The dict ``run`` returns holds ``arrays``, ``coords``,
``status`` and ``wall_time``, and optionally ``extra``: scalars recorded at the top level
of ``results.json``."""

from . import deep_tensor_rank as deep_tensor_rank
from . import ht_rank as ht_rank
from . import incremental_learning as incremental_learning
from . import locality_is_same_class as locality_is_same_class
from . import locality_pathfinder as locality_pathfinder
from . import matrix_completion_depth as matrix_completion_depth
from . import matrix_dynamics as matrix_dynamics
from . import matrix_dynamics_depth as matrix_dynamics_depth
from . import matrix_sensing as matrix_sensing
from . import norms_counterexample as norms_counterexample
from . import tensor_completion_observations as tensor_completion_observations
from . import tensor_dynamics as tensor_dynamics
from . import tensor_rank_complexity as tensor_rank_complexity

EXPERIMENTS = {
    module.NAME: module
    for module in (
        matrix_dynamics,
        matrix_dynamics_depth,
        matrix_sensing,
        incremental_learning,
        matrix_completion_depth,
        norms_counterexample,
        tensor_completion_observations,
        tensor_dynamics,
        tensor_rank_complexity,
        deep_tensor_rank,
        ht_rank,
        locality_is_same_class,
        locality_pathfinder,
    )
}
