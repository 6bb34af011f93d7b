"""Bad arguments raise ValueError naming the argument, before any data or compilation."""

import jax
import jax.numpy as jnp
import pytest

from jaxreg.locality import TrainOptions, grad_change_penalty, is_same_class, pathfinder
from jaxreg_lab import driver
from jaxreg_lab.locality import IsSameClassConfig, PathfinderConfig, grids, run_is_same_class, run_locality


@pytest.fixture
def no_work(monkeypatch):
    """Fail loudly if data generation or training starts."""

    def boom(*args, **kwargs):
        raise RuntimeError("work started before validation")

    for name in ("is_same_class", "pathfinder"):
        monkeypatch.setattr(grids, name, boom)
    monkeypatch.setattr(driver, "run_chunks", boom)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: run_locality("cifar"), "task"),
        (lambda: run_locality("pathfinder", size="huge"), "size"),
        (lambda: IsSameClassConfig.preset("tiny", distances=(-1,)), "distance"),
        (lambda: IsSameClassConfig.preset("tiny", distances=(0, 17)), "distance"),  # canvas 32 - 2 * 8 = 16
        (lambda: IsSameClassConfig.preset("tiny", lambdas=(0.0, -0.1)), "lambda"),
        (lambda: IsSameClassConfig.preset("tiny", lambdas=(float("nan"),)), "lambda"),
        (lambda: IsSameClassConfig.preset("tiny", batch_size=1), "batch_size"),
        (lambda: IsSameClassConfig.preset("tiny", optimizer="rmsprop"), "optimizer"),
        (lambda: PathfinderConfig.preset("tiny", path_lengths=(0, 2)), "path_length"),
        (lambda: PathfinderConfig.preset("tiny", lambdas=(-3.0,)), "lambda"),
        (lambda: PathfinderConfig.preset("tiny", batch_size=1), "batch_size"),
        (lambda: TrainOptions(r_mode="eval"), "r_mode"),
        (lambda: TrainOptions(runs_per_program=0), "runs_per_program"),
        (lambda: PathfinderConfig.preset("tiny", canvas=80.0), "canvas"),
        (lambda: run_locality("is_same_class", "tiny", distances=(99,)), "distance"),
        (lambda: run_is_same_class(IsSameClassConfig.preset("tiny"), resume=True), "out_dir"),
        (lambda: TrainOptions(batch_size=1), "batch_size"),
    ],
)
def test_config_errors_name_the_argument(no_work, call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_data_errors_name_the_argument():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="distance"):
        is_same_class(key, 4, 41, canvas=(8, 56))
    with pytest.raises(ValueError, match="distance"):
        is_same_class(key, 4, -2)
    with pytest.raises(ValueError, match="path_length"):
        pathfinder(key, 4, 0)
    with pytest.raises(ValueError, match="split"):
        is_same_class(key, 4, 0, split="validation")


def test_regularizer_errors_name_the_argument():
    x = jnp.zeros((3, 1, 8, 16))
    f = lambda z: jnp.sum(z**2, axis=(1, 2, 3))
    with pytest.raises(ValueError, match="^patch"):
        grad_change_penalty(f, x, (0, 10, 4, 8), (0, 0, 4, 4))
    with pytest.raises(ValueError, match="other_patch"):
        grad_change_penalty(f, x, (0, 0, 4, 4), (5, 8, 4, 4))
    with pytest.raises(ValueError, match="other_patch overlaps patch"):
        grad_change_penalty(f, x, (0, 0, 4, 4), (2, 2, 4, 4))
    with pytest.raises(ValueError, match="at least 2 samples"):
        grad_change_penalty(f, x[:1], (0, 0, 4, 4), (0, 8, 4, 4))
    with pytest.raises(ValueError, match="other_patch must have the same height"):
        grad_change_penalty(f, x, (0, 0, 4, 4), jnp.array([[0, 8, 4, 4], [0, 8, 4, 4], [0, 8, 4, 5]]))
