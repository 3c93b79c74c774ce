"""Controls for the book's hyperparameters.

Two kinds, both over results computed once before the control is built:

* ``static_slider``: a slider that works in the rendered book with no kernel.
  Every frame is drawn in advance and embedded in one self-contained HTML
  output (an ``<input type=range>``, the frames as PNG data and a few lines of
  inline script; no external file, no network). It works the same in the
  static page, in JupyterLab, on Binder and on Colab.
* ``select_slider``: a live ipywidgets slider that redraws through the kernel;
  in a static page it shows its first view and does nothing when moved, so a
  chapter only uses it in cells hidden from the page.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from PIL import Image

# the course's figure style (colour cycle, white background) for every frame
import dlcourse.plotting  # noqa: F401

__all__ = ["StaticSlider", "static_slider", "select_slider"]

# CSS pixels per figure inch in the page (matplotlib's default figure.dpi),
# and how many image pixels a CSS pixel gets, so frames stay sharp on
# high-density screens and when zoomed.
CSS_DPI = 100
PIXEL_DENSITY = 2


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class StaticSlider:
    """A kernel-free slider over precomputed frames (see ``static_slider``).

    Displayed, it gives ``text/html`` (the control) and ``text/plain`` (a
    one-line summary for consoles). ``values``, ``labels``, ``alts`` and
    ``frames`` (the PNG bytes) are kept for tests and for reuse.
    """

    def __init__(self, label, values, labels, alts, frames, sizes, index):
        self.label = label
        self.values = values
        self.labels = labels
        self.alts = alts
        self.frames = frames
        self.sizes = sizes  # CSS (width, height) of each frame
        self.index = index

    @property
    def value(self):
        return self.values[self.index]

    @property
    def nbytes(self) -> int:
        """Size of the HTML output in bytes (what the frames add to a page)."""
        return len(self.html().encode("utf8"))

    def __repr__(self) -> str:
        return (
            f"StaticSlider({self.label!r}: {len(self.values)} frames, "
            f"{self.labels[0]} … {self.labels[-1]}, "
            f"showing {self.labels[self.index]})"
        )

    def html(self) -> str:
        esc = html.escape
        last = len(self.values) - 1
        imgs = []
        for k, (png, alt, (w, h)) in enumerate(
            zip(self.frames, self.alts, self.sizes)
        ):
            data = base64.b64encode(png).decode("ascii")
            hidden = "" if k == self.index else " hidden"
            imgs.append(
                f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}" '
                f'width="{w}" height="{h}" '
                f'style="max-width:100%;height:auto"{hidden}>'
            )
        labels = esc(json.dumps(self.labels, ensure_ascii=False))
        current = esc(self.labels[self.index])
        return (
            f'<div class="dlc-slider" data-labels="{labels}">\n'
            '<div class="dlc-slider-control" style="display:flex;'
            'flex-wrap:wrap;align-items:center;gap:0.5em 1em;margin:0.5em 0">'
            f"<label>{esc(self.label)} "
            f'<input type="range" min="0" max="{last}" step="1" '
            f'value="{self.index}" aria-valuetext="{current}" '
            'style="width:18em;vertical-align:middle"></label>'
            f'<output style="font-weight:bold">{current}</output>'
            '<span class="dlc-slider-range">(from '
            f"{esc(self.labels[0])} to {esc(self.labels[-1])}, "
            f"{len(self.values)} values)</span></div>\n"
            '<div class="dlc-slider-frames">' + "\n".join(imgs) + "</div>\n"
            "</div>\n"
            f"<script>{_SCRIPT}</script>"
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.html(), "text/plain": repr(self)}


# The slider finds its own block (the element before this script), so several
# sliders on a page, or the same one re-run in JupyterLab, never mix. No ids.
_SCRIPT = """(function () {
  var s = document.currentScript, root = s && s.previousElementSibling;
  if (!root || !root.classList.contains("dlc-slider") || root.dataset.ready)
    return;
  root.dataset.ready = "1";
  var input = root.querySelector("input"), out = root.querySelector("output");
  var frames = root.querySelectorAll(".dlc-slider-frames img");
  var labels = JSON.parse(root.dataset.labels);
  function show() {
    var i = Number(input.value);
    for (var k = 0; k < frames.length; k++) frames[k].hidden = k !== i;
    out.textContent = labels[i];
    input.setAttribute("aria-valuetext", labels[i]);
  }
  input.addEventListener("input", show);
  // Keys are handled here, the same in every browser, and kept from the
  // page's own shortcuts (JupyterLab would otherwise take the arrow keys).
  var steps = {ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1,
               PageUp: 2, PageDown: -2};
  input.addEventListener("keydown", function (e) {
    var i = Number(input.value), last = Number(input.max), to = null;
    if (e.key === "Home") to = 0;
    else if (e.key === "End") to = last;
    else if (e.key in steps) to = i + steps[e.key];
    if (to === null || e.altKey || e.ctrlKey || e.metaKey) return;
    e.preventDefault();
    e.stopPropagation();
    input.value = String(Math.max(0, Math.min(last, to)));
    show();
  });
  show();
})();"""


def _png(fig: Figure) -> tuple[bytes, tuple[int, int]]:
    """The figure as a PNG with no metadata, and its size in CSS px.

    The image is reduced to a palette of 256 colours (median cut, no
    dithering): a line plot or a filled contour loses nothing visible and the
    frame shrinks about 2.5 times, so a page with a dozen frames stays light.
    """
    buf = io.BytesIO()
    fig.savefig(
        buf,
        format="png",
        dpi=CSS_DPI * PIXEL_DENSITY,
        metadata={"Software": None},  # no matplotlib version in the bytes
        facecolor="white",
    )
    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    palette = image.quantize(
        colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    w, h = fig.get_size_inches()
    return out.getvalue(), (round(w * CSS_DPI), round(h * CSS_DPI))


def static_slider(
    values: Sequence,
    draw: Callable[[object], Figure | None],
    *,
    label: str,
    alt: str | Callable[[object], str],
    value=None,
    format_value: Callable[[object], str] = _format,
) -> StaticSlider:
    """A slider over ``values`` that works in the static page.

    ``draw(v)`` draws the view for one value: on a new figure that it returns
    (or leaves as the current figure). It is called once per value, here; the
    figures are saved as PNG and closed, so nothing else is displayed.
    ``label`` names the control (the hyperparameter), ``format_value`` gives
    the label of each position, and ``alt`` says what a frame shows: a
    callable of the value, or one text to which " (label = value)" is
    appended. ``value`` is the position shown first (default: the first).

    Frames are byte-identical from run to run when the drawn data are, so the
    stored notebook does not change when it is re-executed.
    """
    where = "static_slider"
    if not callable(draw):
        raise TypeError(
            f"{where}: 'draw' must be a callable; got {type(draw).__name__}."
        )
    if not isinstance(label, str) or not label.strip():
        raise ValueError(
            f"{where}: 'label' must be a non-empty string; got {label!r}."
        )
    if not (callable(alt) or (isinstance(alt, str) and alt.strip())):
        raise ValueError(
            f"{where}: 'alt' must be a non-empty string or a callable; "
            f"got {alt!r}."
        )
    values = list(values)
    if len(values) < 2:
        raise ValueError(
            f"{where}: 'values' must hold at least 2 values; got {values!r}."
        )
    if value is None:
        value = values[0]
    if value not in values:
        raise ValueError(
            f"{where}: 'value' must be one of the values {values!r}; "
            f"got {value!r}."
        )
    labels = [format_value(v) for v in values]
    if len(set(labels)) != len(labels):
        raise ValueError(
            f"{where}: 'format_value' must give distinct labels; got {labels}."
        )
    frames, sizes, alts = [], [], []
    for v, text in zip(values, labels):
        before = set(plt.get_fignums())
        try:
            fig = draw(v)
            if fig is None and plt.get_fignums():
                fig = plt.gcf()
            if not isinstance(fig, Figure):
                raise TypeError(
                    f"{where}: 'draw' must draw a matplotlib figure and "
                    f"return it (or leave it current); for value {v!r} it "
                    f"returned {type(fig).__name__}."
                )
            png, size = _png(fig)
        finally:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
        frames.append(png)
        sizes.append(size)
        description = alt(v) if callable(alt) else f"{alt} ({label} = {text})"
        if not isinstance(description, str) or not description.strip():
            raise ValueError(
                f"{where}: 'alt' must give a non-empty string; for value "
                f"{v!r} it gave {description!r}."
            )
        alts.append(description)
    return StaticSlider(
        label, values, labels, alts, frames, sizes, values.index(value)
    )


def select_slider(
    options: Sequence,
    show: Callable[[object], None],
    *,
    description: str,
    value=None,
    format_option: Callable[[object], str] = _format,
) -> widgets.VBox:
    """A live slider over precomputed ``options``; ``show(option)`` draws.

    Returns the widget box (slider above its output), already displayed by the
    caller when it is the last expression of a cell. It needs a kernel: in the
    static page use ``static_slider``.
    """
    if not callable(show):
        raise TypeError(
            "select_slider: 'show' must be a callable; "
            f"got {type(show).__name__}."
        )
    options = list(options)
    if not options:
        raise ValueError("select_slider: 'options' must not be empty; got [].")
    if value is None:
        value = options[0]
    if value not in options:
        raise ValueError(
            f"select_slider: 'value' must be one of the options; got {value!r}."
        )
    slider = widgets.SelectionSlider(
        options=[(format_option(v), v) for v in options],
        value=value,
        description=description,
        continuous_update=False,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="420px"),
    )
    out = widgets.interactive_output(
        lambda option: show(option), {"option": slider}
    )
    return widgets.VBox([slider, out])
