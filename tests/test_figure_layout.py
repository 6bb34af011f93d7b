"""Figure layout, drawn from synthetic saved results (no computation): the sweep figure's
suptitle and tick labels stay clear of the panels, every matrix-dynamics panel has a key."""

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest

from jaxreg_lab import plotting
from jaxreg_lab.reproductions import _sweep_report, matrix_dynamics
from jaxreg_lab.store.results import Results


@pytest.fixture
def drawn(monkeypatch):
    """Calls ``plot(results, out_dir)`` and returns its figure, drawn, instead of saving it."""
    figures = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, out_dir, stem: figures.append(fig) or [])

    def draw(plot, results):
        plot(results, None)
        fig = figures[-1]
        fig.canvas.draw()
        return fig

    yield draw
    plt.close("all")


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_sweep_figure_suptitle_and_tick_labels_clear_of_other_panels(drawn):
    rng = np.random.default_rng(0)
    t = np.linspace(2, 200, 100)
    curve = np.exp(-t / 50)[None, None] * (0.3 + rng.random((2, 2, 1)))  # rel. error spans < 1 decade
    results = Results(
        "sweep",
        {"loss": curve**3, "reconstruction_error": curve, "component_norms": rng.random((2, 2, 100, 5)) + 1e-3},
        {},
        {"init_scale": [1e-3, 1e-2], "seed": [0, 1], "time": t.tolist(), "time_name": "flow time t"},
        {"model": "matrix", "shape": [12, 12], "task": "completion", "optimizer": "flow"},
        {"status": ["completed"] * 4},
    )
    fig = drawn(_sweep_report.plot, results)
    renderer = fig.canvas.get_renderer()
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]  # each panel with its titles and tick labels
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not _overlap(boxes[i], boxes[j]), (i, j)
    suptitle = fig._suptitle.get_window_extent(renderer)
    assert not any(_overlap(suptitle, b) for b in boxes)
    assert all(b.x0 >= 0 and b.x1 <= fig.bbox.x1 for b in boxes)  # nothing drawn off the canvas


def test_matrix_dynamics_figure_has_a_key_on_every_panel(drawn):
    t = np.linspace(10, 3000, 50)
    sv = np.exp(np.clip(t[None, :, None] / 300 - np.arange(1, 5)[None, None], -6, 3))
    results = Results(
        "matrix-dynamics",
        {"singular_values": sv, "loss": np.exp(-t / 500)[None], "reconstruction_error": np.exp(-t / 900)[None]},
        {},
        {"seed": [0], "time": t.tolist(), "component": [1, 2, 3, 4]},
        {"depth": 3, "init_scale": 1e-3},
        {"status": ["completed"]},
    )
    fig = drawn(matrix_dynamics.plot, results)
    assert all(ax.get_legend() is not None for ax in fig.axes)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["sigma_1", "sigma_2", "sigma_3", "sigma_4"]


def test_matrix_dynamics_legend_colours_each_curve_as_drawn_with_several_seeds(drawn):
    """With several seeds every curve is a line per seed: the key's "train loss" handle has
    the loss lines' colour and the error's handle the error lines' colour."""
    t = np.linspace(10, 3000, 50)
    seeds = 3
    sv = np.exp(np.clip(t[None, :, None] / 300 - np.arange(1, 5)[None, None], -6, 3)).repeat(seeds, 0)
    loss = np.exp(-t / 500)[None] * np.arange(1, seeds + 1)[:, None]
    error = np.exp(-t / 900)[None] * np.arange(1, seeds + 1)[:, None]
    results = Results(
        "matrix-dynamics",
        {"singular_values": sv, "loss": loss, "reconstruction_error": error},
        {},
        {"seed": list(range(seeds)), "time": t.tolist(), "component": [1, 2, 3, 4]},
        {"depth": 3, "init_scale": 1e-3},
        {"status": ["completed"] * seeds},
    )
    fig = drawn(matrix_dynamics.plot, results)
    ax = fig.axes[1]
    lines = ax.get_lines()
    loss_colours = {mcolors.to_hex(line.get_color()) for line in lines[:seeds]}
    error_colours = {mcolors.to_hex(line.get_color()) for line in lines[seeds : 2 * seeds]}
    assert len(loss_colours) == len(error_colours) == 1 and loss_colours != error_colours
    key = ax.get_legend()
    handles = {t.get_text(): mcolors.to_hex(h.get_color()) for t, h in zip(key.get_texts(), key.legend_handles)}
    assert handles == {"train loss": loss_colours.pop(), "rel. reconstruction error": error_colours.pop()}
    assert key.get_title().get_text() == f"{seeds} seeds"
