r"""Norm constraints: projection onto an L2 ball, max-norm per unit, PGD.

Book: Part I, chapter 2, "Norm penalties as constrained optimization".

A penalty adds :math:`\lambda\,\Omega(w)` to the objective; a constraint asks
for :math:`\Omega(w) \le k` instead and enforces it by *reprojection*: after
every optimizer step, map the parameters back to the nearest point of the
feasible set. For :math:`\Omega(w) = \tfrac12\lVert w\rVert_2^2` (ball radius
:math:`k`) the two problems have the same solution when :math:`\lambda` is the
constraint's Lagrange multiplier, which :func:`l2_ball_multiplier` recovers
from a constrained solution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from dlcourse._validation import check_in_range, check_int, check_type

__all__ = [
    "project_l2_ball",
    "project_l2_ball_",
    "max_norm",
    "max_norm_",
    "projected_gradient_descent",
    "l2_ball_multiplier",
]


def _radius(where: str, radius) -> float:
    return check_in_range(where, "radius", radius, low=0.0)


def _tensor(where: str, name: str, x) -> None:
    check_type(where, name, x, torch.Tensor, "a torch.Tensor")
    if not x.is_floating_point():
        raise TypeError(
            f"{where}: '{name}' must be a floating-point tensor; got {x.dtype}."
        )


def _l2_scale(norm: torch.Tensor, radius: float) -> torch.Tensor:
    # min(1, k / ||w||): 1 inside the ball (also for w = 0), k / ||w|| outside
    return torch.where(
        norm > radius,
        radius / norm.clamp_min(torch.finfo(norm.dtype).tiny),
        torch.ones_like(norm),
    )


def project_l2_ball(x: torch.Tensor, radius: float) -> torch.Tensor:
    r"""Euclidean projection of the whole tensor ``x`` onto an L2 ball.

    The ball is :math:`\{w: \lVert w\rVert_2 \le k\}` with ``radius`` :math:`k`:

    .. math::

        \Pi_k(x) = \arg\min_{\lVert w\rVert_2 \le k} \lVert w - x\rVert_2
        = x \cdot \min\Bigl(1, \frac{k}{\lVert x\rVert_2}\Bigr).

    Points inside the ball are returned unchanged; points outside are scaled
    towards the origin onto the sphere. For a weight matrix this is the
    projection onto a *Frobenius*-norm ball.
    """
    _tensor("project_l2_ball", "x", x)
    k = _radius("project_l2_ball", radius)
    return x * _l2_scale(torch.linalg.vector_norm(x), k)


def project_l2_ball_(
    params: Iterable[torch.Tensor] | torch.Tensor, radius: float
) -> None:
    """In-place :func:`project_l2_ball` of each tensor (each its own ball).

    Use it after an optimizer step, e.g. ``fit(..., after_step=lambda m:
    project_l2_ball_(weight_parameters(m), radius=3.0))``.
    """
    k = _radius("project_l2_ball_", radius)
    params = [params] if isinstance(params, torch.Tensor) else list(params)
    with torch.no_grad():
        for i, p in enumerate(params):
            _tensor("project_l2_ball_", f"params[{i}]", p)
            p.mul_(_l2_scale(torch.linalg.vector_norm(p), k))


def max_norm(weight: torch.Tensor, radius: float) -> torch.Tensor:
    r"""Project every row of a weight matrix onto the L2 ball ``radius``.

    Row :math:`i` of a ``torch.nn.Linear`` weight (shape ``(out, in)``) holds
    the incoming weights :math:`w_i` of output unit :math:`i`; the max-norm
    constraint :math:`\lVert w_i\rVert_2 \le c` for every unit is enforced by

    .. math::

        w_i \leftarrow w_i \cdot
        \min\Bigl(1, \frac{c}{\lVert w_i\rVert_2}\Bigr).

    This is the projection onto the product of the per-row balls, the same as
    ``torch.renorm(weight, p=2, dim=0, maxnorm=c)`` up to that function's
    1e-7 guard. (Books that store the matrix as ``(in, out)`` speak of
    *columns*.)
    For higher-dimensional kernels, e.g. ``Conv2d`` ``(out, in, kh, kw)``, each
    output unit's whole slice is one row.
    """
    _tensor("max_norm", "weight", weight)
    c = _radius("max_norm", radius)
    if weight.ndim < 2:
        raise ValueError(
            "max_norm: 'weight' must have at least 2 dimensions "
            f"(out, in, ...); got shape {tuple(weight.shape)}."
        )
    # (out, 1, ...) norms of the incoming weights of each unit
    norms = torch.linalg.vector_norm(
        weight, dim=tuple(range(1, weight.ndim)), keepdim=True
    )
    return weight * _l2_scale(norms, c)


def max_norm_(
    params: Iterable[torch.Tensor] | torch.Tensor, radius: float
) -> None:
    """In-place :func:`max_norm` on each weight matrix in ``params``.

    Use it after an optimizer step, e.g. ``fit(..., after_step=lambda m:
    max_norm_(weight_parameters(m), radius=2.0))``.
    Biases are not part of a unit's incoming weight vector: pass only weights.
    """
    c = _radius("max_norm_", radius)
    params = [params] if isinstance(params, torch.Tensor) else list(params)
    with torch.no_grad():
        for i, p in enumerate(params):
            _tensor("max_norm_", f"params[{i}]", p)
            p.copy_(max_norm(p, c))


def projected_gradient_descent(
    grad_fn: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    *,
    radius: float,
    lr: float,
    steps: int,
) -> torch.Tensor:
    r"""Projected gradient descent onto the L2 ball; returns the whole path.

    .. math::

        w_{t+1} = \Pi_k\bigl(w_t - \eta\,\nabla J(w_t)\bigr),
        \qquad w_0 = \Pi_k(x_0).

    ``grad_fn(w)`` returns :math:`\nabla J(w)` (same shape as ``w``). Returns a
    tensor of shape ``(steps + 1, *x0.shape)`` whose first entry is :math:`w_0`
    and last entry the final iterate. For a network, use any ``torch.optim``
    optimizer with :func:`project_l2_ball_` as ``fit``'s ``after_step`` instead.
    """
    if not callable(grad_fn):
        raise TypeError(
            f"projected_gradient_descent: 'grad_fn' must be a callable; "
            f"got {type(grad_fn).__name__}."
        )
    _tensor("projected_gradient_descent", "x0", x0)
    k = _radius("projected_gradient_descent", radius)
    lr = check_in_range(
        "projected_gradient_descent", "lr", lr, low=0.0, low_inclusive=False
    )
    steps = check_int("projected_gradient_descent", "steps", steps, low=0)
    w = project_l2_ball(x0.detach(), k)
    path = [w]
    for _ in range(steps):
        # w <- Pi_k(w - lr * grad J(w))
        w = project_l2_ball(w - lr * grad_fn(w), k)
        path.append(w)
    return torch.stack(path)


def l2_ball_multiplier(w: torch.Tensor, grad: torch.Tensor) -> float:
    r"""The Lagrange multiplier of the L2-ball constraint at ``w``.

    The constraint is :math:`\tfrac12\lVert w\rVert^2 \le \tfrac12 k^2`.

    At a solution on the sphere the KKT condition
    :math:`\nabla J(w) + \lambda w = 0` holds, so

    .. math::

        \lambda = -\frac{\langle \nabla J(w),\, w\rangle}{\lVert w\rVert_2^2},

    and ``w`` also minimizes the penalized
    :math:`J + \tfrac{\lambda}{2}\lVert w\rVert^2`.
    (Inside the ball, where the constraint is inactive, :math:`\lambda = 0`.)
    """
    _tensor("l2_ball_multiplier", "w", w)
    _tensor("l2_ball_multiplier", "grad", grad)
    if w.shape != grad.shape:
        raise ValueError(
            f"l2_ball_multiplier: 'w' and 'grad' must have the same shape; "
            f"got {tuple(w.shape)} and {tuple(grad.shape)}."
        )
    norm2 = w.pow(2).sum()
    if norm2 == 0:
        raise ValueError(
            "l2_ball_multiplier: 'w' must be nonzero; got the zero tensor."
        )
    # lambda = -<grad, w> / ||w||^2
    return (-(grad * w).sum() / norm2).item()
