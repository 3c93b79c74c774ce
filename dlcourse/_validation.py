"""Argument checks shared by every public function of dlcourse.

Each check raises with one message form, naming the caller, the parameter,
what is allowed and what was received::

    ValueError: l2_penalty: 'lam' must be >= 0; got -0.1.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

__all__ = [
    "check_real",
    "check_int",
    "check_in_range",
    "check_choice",
    "check_type",
    "check_generator",
]


def _fail(where: str, name: str, allowed: str, value: Any, exc=ValueError):
    raise exc(f"{where}: '{name}' must be {allowed}; got {value!r}.")


def check_type(where: str, name: str, value: Any, types, allowed: str) -> None:
    """Raise ``TypeError`` unless ``value`` is an instance of ``types``."""
    if not isinstance(value, types):
        raise TypeError(
            f"{where}: '{name}' must be {allowed}; got {type(value).__name__}."
        )


def check_real(where: str, name: str, value: Any) -> float:
    """Return ``value`` as a finite float.

    Raise ``TypeError``/``ValueError`` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{where}: '{name}' must be a real number; "
            f"got {type(value).__name__}."
        )
    if not math.isfinite(float(value)):
        _fail(where, name, "finite", value)
    return float(value)


def check_in_range(
    where: str,
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Check ``low <= value <= high``.

    Both bounds are optional, and each one's inclusiveness is chosen.
    """
    x = check_real(where, name, value)
    lo_ok = low is None or (x >= low if low_inclusive else x > low)
    hi_ok = high is None or (x <= high if high_inclusive else x < high)
    if lo_ok and hi_ok:
        return x
    if low is not None and high is not None:
        allowed = (
            ("[" if low_inclusive else "(")
            + f"{low:g}, {high:g}"
            + ("]" if high_inclusive else ")")
        )
        _fail(where, name, f"in {allowed}", value)
    if low is not None:
        _fail(
            where, name, (">= " if low_inclusive else "> ") + f"{low:g}", value
        )
    _fail(where, name, ("<= " if high_inclusive else "< ") + f"{high:g}", value)


def check_int(where: str, name: str, value: Any, low: int | None = None) -> int:
    """Check that ``value`` is an integer (not a bool), optionally ``>= low``.

    Python ints and NumPy's integer scalars (``np.arange`` gives those) pass;
    the value is returned as a Python int.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(
            f"{where}: '{name}' must be an int; got {type(value).__name__}."
        )
    value = int(value)
    if low is not None and value < low:
        _fail(where, name, f">= {low}", value)
    return value


def check_choice(where: str, name: str, value: Any, choices) -> Any:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        _fail(
            where, name, "one of " + ", ".join(repr(c) for c in choices), value
        )
    return value


def check_generator(where: str, generator: Any) -> None:
    """Check that ``generator`` is a ``torch.Generator`` or ``None``."""
    if generator is not None:
        import torch  # the other checks need only the standard library

        check_type(
            where,
            "generator",
            generator,
            torch.Generator,
            "a torch.Generator or None",
        )
