"""Plots used by the book's chapters. Each draws on an ``Axes`` and returns it.

The only module of dlcourse (with ``widgets``) that imports matplotlib.
Importing it applies the course's figure style (``apply_style``): a colour
cycle whose every colour has at least the 3:1 contrast against the white
figure background that WCAG 2.1 (1.4.11, non-text contrast) asks of lines and
markers, and a white background also in the page's dark mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler
from matplotlib.colors import to_rgb

from dlcourse._validation import check_int

__all__ = [
    "PALETTE",
    "apply_style",
    "contrast_ratio",
    "plot_sweep",
    "plot_histograms",
]

# matplotlib's tab10 order and hues, darkened where a colour had less than 3:1
# against white (orange 2.5, green 3.4 kept, pink 2.7, olive 2.0, cyan 2.3).
PALETTE = (
    "#1f77b4",  # blue
    "#d95f02",  # orange
    "#1b9e77",  # green
    "#d62728",  # red
    "#7570b3",  # purple
    "#8c564b",  # brown
    "#c2388f",  # pink
    "#666666",  # grey
    "#7f7f00",  # olive
    "#0f8299",  # cyan
)


def _luminance(colour) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in to_rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(foreground, background="white") -> float:
    """WCAG 2.1 contrast ratio of two matplotlib colours, from 1 to 21."""
    hi, lo = sorted((_luminance(foreground), _luminance(background)))[::-1]
    return (hi + 0.05) / (lo + 0.05)


def apply_style() -> None:
    """The course's matplotlib defaults (applied when this module is imported).

    The colour cycle is ``PALETTE``; figures are saved on white, not on a
    transparent background that the page's dark mode would turn black.
    """
    plt.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=list(PALETTE)),
            "figure.facecolor": "white",
            "savefig.facecolor": "white",
        }
    )


apply_style()


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    return ax


def plot_sweep(
    xs: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    logx: bool = True,
    errors: Mapping[str, Sequence[float]] | None = None,
    marker_x: float | None = None,
    ax=None,
):
    """One line per entry of ``series`` against ``xs`` (optional error bars).

    Zero is drawn at the left edge of a log axis with ``symlog`` so that the
    unregularized run (λ = 0) stays on the plot. ``marker_x`` draws a vertical
    line.
    """
    n = len(xs)
    for label, ys in series.items():
        if len(ys) != n:
            raise ValueError(
                f"plot_sweep: 'series[{label!r}]' must have len(xs) = {n} "
                f"values; got {len(ys)}."
            )
    if logx and any(x < 0 for x in xs):
        raise ValueError(
            f"plot_sweep: 'xs' must be >= 0 when logx=True; got {list(xs)!r}."
        )
    ax = _axes(ax)
    for label, ys in series.items():
        err = None if errors is None else errors.get(label)
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
    if logx:
        positive = [x for x in xs if x > 0]
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
    if marker_x is not None:
        ax.axvline(marker_x, color="0.5", linestyle="--", linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return ax


def plot_histograms(
    values: Mapping[str, np.ndarray],
    *,
    xlabel: str,
    bins: int = 60,
    ax=None,
):
    """Overlaid histograms (log counts) of the arrays in ``values``."""
    check_int("plot_histograms", "bins", bins, low=1)
    if not values:
        raise ValueError(
            "plot_histograms: 'values' must hold at least one array; got {}."
        )
    arrays = [np.asarray(v).ravel() for v in values.values()]
    for label, a in zip(values, arrays):
        if a.size == 0:
            raise ValueError(
                f"plot_histograms: 'values[{label!r}]' must not be empty; "
                "got an empty array."
            )
    ax = _axes(ax)
    hi = max(float(np.abs(a).max()) for a in arrays) or 1.0
    edges = np.linspace(-hi, hi, bins + 1)
    for label, a in zip(values, arrays):
        ax.hist(a, bins=edges, histtype="step", linewidth=1.5, label=label)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count (log scale)")
    ax.legend(frameon=False)
    return ax
