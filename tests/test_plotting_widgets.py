"""dlcourse.plotting and dlcourse.widgets.

What they draw, and their argument checks.
"""

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dlcourse.plotting import plot_histograms, plot_sweep  # noqa: E402
from dlcourse.widgets import select_slider  # noqa: E402


def test_plot_sweep_draws_one_line_per_series_on_a_symlog_axis():
    ax = plot_sweep(
        [0.0, 1e-3, 1e-2],
        {"a": [1, 2, 3], "b": [3, 2, 1]},
        xlabel="λ",
        ylabel="acc",
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert ax.get_xscale() == "symlog" and ax.get_xlabel() == "λ"
    np.testing.assert_allclose(
        np.asarray(ax.containers[0].lines[0].get_ydata(), dtype=float),
        [1, 2, 3],
    )
    plt.close("all")


def test_plot_histograms_counts_every_value():
    a, b = np.arange(10.0) - 4.5, np.zeros(5)
    ax = plot_histograms({"a": a, "b": b}, xlabel="w", bins=9)
    assert len(ax.patches) == 2
    assert ax.get_yscale() == "log"
    plt.close("all")


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: plot_sweep([1, 2], {"a": [1]}, xlabel="x", ylabel="y"),
            r"plot_sweep: 'series\['a'\]' must have len\(xs\) = 2 values; "
            r"got 1",
        ),
        (
            lambda: plot_sweep([-1, 2], {"a": [1, 2]}, xlabel="x", ylabel="y"),
            r"plot_sweep: 'xs' must be >= 0 when logx=True",
        ),
        (
            lambda: plot_histograms({}, xlabel="w"),
            r"plot_histograms: 'values' must hold at least one array",
        ),
        (
            lambda: plot_histograms({"a": []}, xlabel="w"),
            r"plot_histograms: 'values\['a'\]' must not be empty",
        ),
        (
            lambda: plot_histograms({"a": [1.0]}, xlabel="w", bins=0),
            r"plot_histograms: 'bins' must be >= 1; got 0",
        ),
    ],
)
def test_plotting_rejects_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_select_slider_shows_the_chosen_precomputed_option():
    shown = []
    box = select_slider(
        [0.1, 0.2, 0.3], shown.append, description="λ", value=0.2
    )
    slider, out = box.children
    assert isinstance(slider, widgets.SelectionSlider) and isinstance(
        out, widgets.Output
    )
    assert slider.value == 0.2 and [label for label, _ in slider.options] == [
        "0.1",
        "0.2",
        "0.3",
    ]
    slider.value = 0.3
    assert shown[-1] == 0.3


def test_select_slider_rejects_bad_arguments():
    with pytest.raises(
        ValueError, match=r"select_slider: 'options' must not be empty"
    ):
        select_slider([], print, description="λ")
    with pytest.raises(
        ValueError,
        match=r"select_slider: 'value' must be one of the options; got 5",
    ):
        select_slider([1, 2], print, description="λ", value=5)
    with pytest.raises(
        TypeError, match=r"select_slider: 'show' must be a callable; got int"
    ):
        select_slider([1, 2], 3, description="λ")
