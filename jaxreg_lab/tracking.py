"""Experiment trackers fed with each chunk's metrics record (the lines of
``metrics.jsonl``, :func:`jaxreg_lab.store.metrics_log.chunk_record`): TensorBoard event
files (``--tensorboard DIR``, the optional ``tensorboardX``) and Weights & Biases
(``--wandb PROJECT``, the optional ``wandb``; ``WANDB_MODE=offline`` logs without a
network). Each package is imported only when its option is given; when it is not
installed the option fails with one line naming the extra that installs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from jaxreg_lab.errors import UsageError

__all__ = ["TensorBoardLog", "WandbLog", "trackers"]

STATS = ("min", "median", "max")


def _scalars(record: Mapping) -> dict[str, float]:
    """``{"<name>/<metric>/<stat>": value}`` of a record (the sub-run's name first when it
    has one), null values left out."""
    prefix = f"{record['name']}/" if record.get("name") else ""
    return {
        f"{prefix}{key}/{stat}": float(m[stat])
        for key, m in record["metrics"].items()
        for stat in STATS
        if m.get(stat) is not None
    }


class TensorBoardLog:
    """Each record's min, median and max over the runs of every metric as TensorBoard
    scalars ``<metric>/<stat>``, at step = chunks done (tensorboardX event files).

    Arguments:
        logdir: the directory of the event files (created).
    """

    def __init__(self, logdir: Path):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise UsageError(
                "--tensorboard needs tensorboardX, not installed: pip install 'jaxreg[tensorboard]'"
            ) from None
        self.writer = SummaryWriter(logdir=str(logdir))

    def __call__(self, record: Mapping) -> None:
        step = int(record["chunk"]) + 1
        for tag, value in _scalars(record).items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLog:
    """Each record's scalars (as :class:`TensorBoardLog`) and ``chunk`` as one
    ``wandb.log`` call of a run of ``project`` whose config is the run's config.

    Arguments:
        project: the W&B project.
        name: the run's name (the reproduction's).
        config: the resolved config (JSON values).
    """

    def __init__(self, project: str, name: str, config: Mapping):
        try:
            import wandb
        except ImportError:
            raise UsageError("--wandb needs wandb, not installed: pip install 'jaxreg[wandb]'") from None
        self.run = wandb.init(project=project, name=name, config=dict(config), reinit="finish_previous")

    def __call__(self, record: Mapping) -> None:
        self.run.log({"chunk": int(record["chunk"]) + 1, **_scalars(record)})

    def close(self) -> None:
        self.run.finish()


def trackers(args, name: str, config: Mapping) -> list[Callable]:
    """The trackers the command line asks for (``--tensorboard``, ``--wandb``), built
    before any compute so a missing package fails first.

    Arguments:
        args: the parsed command line.
        name: the reproduction's name.
        config: the resolved config as JSON values.

    Returns:
        The trackers, each called with every chunk's record and closed by its ``close``.
    """
    out: list = []
    if getattr(args, "tensorboard", None) is not None:
        out.append(TensorBoardLog(args.tensorboard))
    if getattr(args, "wandb", None):
        out.append(WandbLog(args.wandb, name, config))
    return out
