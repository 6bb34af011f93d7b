"""The locality figure: its rows and what each panel draws."""

import numpy as np

from jaxreg_lab.locality.report import locality_figure

METRICS = ("loss", "task_loss", "R", "train_accuracy", "test_accuracy", "test_R")


def test_every_seeds_accuracy_over_epochs_is_drawn():
    """Three rows with a history: accuracy and R against the range, R over the epochs,
    and every seed's held-out test accuracy over the epochs (one line per lambda and
    seed, plus the chance line), whose data are the history's test accuracy."""
    rng = np.random.default_rng(0)
    ranges, epochs, lambdas, seeds = 2, 5, (0.0, 0.1), 3
    history = rng.uniform(0.3, 1.0, (ranges, epochs, len(lambdas), seeds, len(METRICS)))
    acc = rng.uniform(0.4, 0.9, (ranges, len(lambdas), seeds))
    fig = locality_figure(acc, "distance", [0, 40], lambdas, acc, history=history, metrics=METRICS)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 6
    bottom = [ax for ax in axes if "every seed" in ax.get_title()]
    assert len(bottom) == ranges
    for i, ax in enumerate(bottom):
        lines = [line for line in ax.get_lines() if len(line.get_xdata()) == epochs]
        assert len(lines) == len(lambdas) * seeds
        drawn = np.stack([line.get_ydata() for line in lines])
        expected = history[i, :, :, :, METRICS.index("test_accuracy")].reshape(epochs, -1).T
        np.testing.assert_array_equal(drawn, expected)
    assert "CIFAR-10" in fig._suptitle.get_text()
    cifar = locality_figure(acc, "distance", [0, 40], lambdas, acc, dataset="cifar10")
    assert cifar._suptitle.get_text() == "Is-Same-Class on CIFAR-10"
