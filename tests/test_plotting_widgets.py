"""dlcourse.plotting and dlcourse.widgets.

What they draw, the kernel-free slider's HTML, the palette's contrast, and
their argument checks. (The slider's script is tested in a real browser, on
every chapter page, by tests/test_browser.py.)
"""

import base64
import html
import io
import json
import re

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from dlcourse.plotting import (  # noqa: E402
    PALETTE,
    contrast_ratio,
    plot_histograms,
    plot_sweep,
)
from dlcourse.widgets import select_slider, static_slider  # noqa: E402


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


# ------------------------------------------------------------- static_slider
def _draw_line(slope):
    fig, ax = plt.subplots(figsize=(4, 2.5), layout="constrained")
    ax.plot([0, 1], [0, slope])
    ax.set_title(f"slope {slope:g}")
    return fig


def _frames_in(page: str) -> list[str]:
    return re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)


def test_static_slider_embeds_one_labelled_frame_per_value():
    open_before = plt.get_fignums()
    slider = static_slider(
        [0.5, 1.0, 2.0],
        _draw_line,
        label="slope",
        alt=lambda s: f"A line rising with slope {s:g}",
        value=1.0,
    )
    assert plt.get_fignums() == open_before, "frames' figures left open"
    page = slider.html()
    frames = _frames_in(page)
    assert len(frames) == 3 and len(set(frames)) == 3, "one distinct frame each"
    # each frame is the PNG of its figure, at twice the CSS size
    for data, (w, h) in zip(frames, slider.sizes):
        png = Image.open(io.BytesIO(base64.b64decode(data)))
        assert png.format == "PNG" and png.mode == "P", "a 256-colour PNG"
        assert png.size == (2 * w, 2 * h) == (800, 500)
    # only the chosen value's frame is visible; the others are hidden
    imgs = re.findall(r"<img [^>]*>", page)
    assert [" hidden" in tag for tag in imgs] == [True, False, True]
    assert re.findall(r'alt="([^"]*)"', page) == [
        "A line rising with slope 0.5",
        "A line rising with slope 1",
        "A line rising with slope 2",
    ]
    # the range input: one step per value, starting at the chosen one, named
    # by its label and announcing the value's label
    control = re.search(r'<label>slope <input type="range"([^>]*)>', page)
    assert control, page[:500]
    attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', control.group(1)))
    assert attrs["min"] == "0" and attrs["max"] == "2"
    assert attrs["value"] == "1" and attrs["aria-valuetext"] == "1"
    labels = re.search(r'data-labels="([^"]*)"', page).group(1)
    assert json.loads(html.unescape(labels)) == ["0.5", "1", "2"]
    assert "<output" in page and "<script>" in page
    # no reference to anything outside the output itself
    assert not re.search(r'(src|href)="(?!data:)', page)
    bundle = slider._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}
    assert bundle["text/plain"] == (
        "StaticSlider('slope': 3 frames, 0.5 … 2, showing 1)"
    )
    assert slider.value == 1.0 and slider.nbytes == len(page.encode())


def test_static_slider_frames_are_the_same_bytes_on_every_run():
    first = static_slider([1, 2], _draw_line, label="s", alt="A line")
    again = static_slider([1, 2], _draw_line, label="s", alt="A line")
    assert first.html() == again.html()
    assert b"matplotlib" not in b"".join(first.frames), "version in the PNG"
    # a string alt gets the label and value appended
    assert first.alts == ["A line (s = 1)", "A line (s = 2)"]


def test_static_slider_takes_a_figure_left_current():
    def draw(n):
        plt.figure(figsize=(3, 2))
        plt.plot(range(n))

    slider = static_slider([2, 3], draw, label="n", alt="points")
    assert len(slider.frames) == 2 and plt.get_fignums() == []


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            dict(values=[1], label="s", alt="a"),
            ValueError,
            r"static_slider: 'values' must hold at least 2 values; got \[1\]",
        ),
        (
            dict(values=[1, 2], label="s", alt="a", value=3),
            ValueError,
            r"static_slider: 'value' must be one of the values \[1, 2\]; got 3",
        ),
        (
            dict(values=[1, 2], label=" ", alt="a"),
            ValueError,
            r"static_slider: 'label' must be a non-empty string; got ' '",
        ),
        (
            dict(values=[1, 2], label="s", alt=""),
            ValueError,
            r"static_slider: 'alt' must be a non-empty string or a callable",
        ),
        (
            dict(values=[1, 2], label="s", alt=lambda v: ""),
            ValueError,
            r"'alt' must give a non-empty string; for value 1 it gave ''",
        ),
        (
            dict(values=[1.0, 1.0000001], label="s", alt="a"),
            ValueError,
            r"'format_value' must give distinct labels; got \['1', '1'\]",
        ),
    ],
)
def test_static_slider_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        static_slider(draw=_draw_line, **kwargs)


def test_static_slider_rejects_a_draw_that_draws_nothing():
    with pytest.raises(
        TypeError, match=r"static_slider: 'draw' must be a callable; got int"
    ):
        static_slider([1, 2], 3, label="s", alt="a")
    with pytest.raises(
        TypeError,
        match=r"'draw' must draw a matplotlib figure .* for value 1 it "
        r"returned str",
    ):
        static_slider([1, 2], lambda v: "nothing", label="s", alt="a")
    assert plt.get_fignums() == []


# ------------------------------------------------------------------- palette
def test_contrast_ratio_matches_wcag_reference_values():
    assert contrast_ratio("black", "white") == pytest.approx(21.0)
    assert contrast_ratio("white", "white") == pytest.approx(1.0)
    # WebAIM's checker: #767676 on white is 4.54:1, #777777 is 4.48:1
    assert contrast_ratio("#767676") == pytest.approx(4.54, abs=0.005)
    assert contrast_ratio("#777777") == pytest.approx(4.48, abs=0.005)


def test_every_colour_of_the_course_cycle_has_3_to_1_contrast_on_white():
    assert len(set(PALETTE)) == 10
    low = {c: round(contrast_ratio(c), 2) for c in PALETTE}
    assert all(ratio >= 3.0 for ratio in low.values()), low
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    assert cycle == list(PALETTE), "importing dlcourse.plotting sets the cycle"
    assert plt.rcParams["savefig.facecolor"] == "white"
