r"""Gradient clipping by global norm and by value, on parameters or a vector.

Book: Part II, chapter 2, "Challenges in neural network optimization" (cliffs
and exploding gradients).

Clipping by norm rescales the whole gradient when it is too long,

.. math::

    g \leftarrow g \cdot \min\Bigl(1, \frac{c}{\lVert g\rVert + 10^{-6}}\Bigr),

so it keeps the direction of :math:`g` (Pascanu et al., 2013). Clipping by
value clamps every coordinate to :math:`[-c, c]`, which changes the direction
unless nothing is clamped or all nonzero coordinates have the same magnitude.
``clip_grad_norm_`` and ``clip_grad_value_`` act on the ``.grad`` of
parameters, like their twins ``torch.nn.utils.clip_grad_norm_`` /
``clip_grad_value_``; ``clip_by_norm`` and ``clip_by_value`` return a clipped
copy of one gradient tensor (``clip_by_norm`` with ``dim``: of each slice).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from dlcourse._validation import (
    _fail,
    check_in_range,
    check_int,
    check_real,
    check_type,
)

__all__ = [
    "total_grad_norm",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_by_norm",
    "clip_by_value",
]

_EPS = 1e-6  # the constant torch.nn.utils.clip_grad_norm_ adds to the norm


def _grads(where: str, parameters) -> list[torch.Tensor]:
    """The existing ``.grad`` tensors of ``parameters`` (tensor or iterable)."""
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    check_type(
        where,
        "parameters",
        parameters,
        Iterable,
        "a tensor or an iterable of tensors",
    )
    params = list(parameters)
    for i, p in enumerate(params):
        check_type(where, f"parameters[{i}]", p, torch.Tensor, "a torch.Tensor")
    return [p.grad for p in params if p.grad is not None]


def _norm_type(where: str, norm_type) -> float:
    p = (
        float(norm_type)
        if norm_type in (math.inf, float("inf"))
        else check_real(where, "norm_type", norm_type)
    )
    if not (p == math.inf or p > 0):
        _fail(where, "norm_type", "> 0 or inf", norm_type)
    return p


def _vector_norm(tensors: list[torch.Tensor], p: float) -> torch.Tensor:
    # ||g||_p over all tensors = || (||g_1||_p, ..., ||g_k||_p) ||_p
    norms = torch.stack([torch.linalg.vector_norm(t, p) for t in tensors])
    return torch.linalg.vector_norm(norms, p)


def total_grad_norm(parameters, *, norm_type: float = 2.0) -> torch.Tensor:
    r"""The norm of all gradients taken as one vector.

    .. math:: \lVert g\rVert_p = \Bigl(\sum_j \lVert g_j\rVert_p^p\Bigr)^{1/p},
              \qquad \lVert g\rVert_\infty = \max_j \lVert g_j\rVert_\infty

    Parameters without a gradient are skipped; with none at all the norm is 0.
    """
    p = _norm_type("total_grad_norm", norm_type)
    grads = _grads("total_grad_norm", parameters)
    if not grads:
        return torch.tensor(0.0)
    return _vector_norm([g.detach() for g in grads], p)


def clip_grad_norm_(
    parameters, *, max_norm: float, norm_type: float = 2.0
) -> torch.Tensor:
    r"""Rescale the gradients in place to a total norm of at most ``max_norm``.

    .. math:: g \leftarrow
              g \cdot \min\Bigl(1, \frac{c}{\lVert g\rVert_p + 10^{-6}}\Bigr)

    Returns the total norm *before* clipping, as
    ``torch.nn.utils.clip_grad_norm_`` does (whose ``max_norm`` and
    ``norm_type`` are positional there).
    """
    c = check_in_range("clip_grad_norm_", "max_norm", max_norm, low=0.0)
    p = _norm_type("clip_grad_norm_", norm_type)
    grads = _grads("clip_grad_norm_", parameters)
    if not grads:
        return torch.tensor(0.0)
    total = _vector_norm([g.detach() for g in grads], p)
    # factor = min(1, c / (||g|| + eps)): 1 leaves short gradients alone
    factor = torch.clamp(c / (total + _EPS), max=1.0)
    with torch.no_grad():
        for g in grads:
            g.mul_(factor.to(g))
    return total


def clip_grad_value_(parameters, *, clip_value: float) -> None:
    r"""Clamp every gradient coordinate in place to :math:`[-c, c]`.

    .. math:: g_i \leftarrow \max(-c, \min(c, g_i))
    """
    c = check_in_range("clip_grad_value_", "clip_value", clip_value, low=0.0)
    with torch.no_grad():
        for g in _grads("clip_grad_value_", parameters):
            g.clamp_(min=-c, max=c)


def clip_by_norm(
    grad: torch.Tensor, *, max_norm: float, dim: int | None = None
) -> torch.Tensor:
    r"""A copy of ``grad`` rescaled to norm at most ``max_norm``.

    The direction is kept: the result is :math:`s\,g` with the one factor

    .. math:: s = \min\bigl(1, c / (\lVert g\rVert_2 + 10^{-6})\bigr),

    positive unless ``max_norm`` is 0. ``dim=None`` takes all of ``grad`` as
    one vector; an int ``dim`` takes the norm over that dimension only, so
    that each slice is clipped on its own (``dim=1`` for a (k, P) stack of k
    gradients).
    """
    check_type("clip_by_norm", "grad", grad, torch.Tensor, "a torch.Tensor")
    c = check_in_range("clip_by_norm", "max_norm", max_norm, low=0.0)
    if dim is None:
        norm = torch.linalg.vector_norm(grad)
    else:
        check_int("clip_by_norm", "dim", dim)
        if not -grad.ndim <= dim < grad.ndim:
            _fail(
                "clip_by_norm",
                "dim",
                f"None or in [-{grad.ndim}, {grad.ndim - 1}]",
                dim,
            )
        norm = torch.linalg.vector_norm(grad, dim=dim, keepdim=True)
    return grad * torch.clamp(c / (norm + _EPS), max=1.0)


def clip_by_value(grad: torch.Tensor, *, clip_value: float) -> torch.Tensor:
    r"""A copy of ``grad`` with every coordinate clamped to :math:`[-c, c]`."""
    check_type("clip_by_value", "grad", grad, torch.Tensor, "a torch.Tensor")
    c = check_in_range("clip_by_value", "clip_value", clip_value, low=0.0)
    return grad.clamp(min=-c, max=c)
