"""ipywidgets controls for the book's hyperparameters.

Heavy results are computed once, before the widget is built; moving a slider
only selects among them and redraws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as widgets

__all__ = ["select_slider"]


def select_slider(
    options: Sequence,
    show: Callable[[object], None],
    *,
    description: str,
    value=None,
    format_option: Callable[[object], str] = lambda v: f"{v:g}",
) -> widgets.VBox:
    """A slider over precomputed ``options``; ``show(option)`` draws the view.

    Returns the widget box (slider above its output), already displayed by the
    caller when it is the last expression of a cell.
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
