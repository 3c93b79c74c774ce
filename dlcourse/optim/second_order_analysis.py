r"""Newton's method against saddles: a 2-D test function and batched paths.

Book: Part II, chapter 6, "Approximate second-order methods".

``SaddleWell`` has one saddle and two minima; ``newton_paths`` runs damped
(or saddle-free) Newton from many starts at once, ``gd_paths`` gradient
descent, so a chapter can measure which starts end at the saddle. One step
of ``newton_paths`` is :func:`dlcourse.optim.second_order.newton_step`
applied to every start (the tests check it).
"""

from __future__ import annotations

import torch

from dlcourse._validation import _fail, check_in_range, check_int, check_type
from dlcourse.objectives import Objective, _check_points

__all__ = ["SaddleWell", "newton_paths", "gd_paths"]


class SaddleWell(Objective):
    r"""A saddle between two minima.

    .. math:: f(x, y) = \tfrac12 x^2 + \tfrac14 (y^2 - 1)^2

    Saddle at :math:`(0, 0)` (Hessian :math:`\operatorname{diag}(1, -1)`),
    minima at :math:`(0, \pm 1)` (Hessian :math:`\operatorname{diag}(1, 2)`).
    """

    def __repr__(self):
        return "SaddleWell()"

    @property
    def saddle_point(self) -> torch.Tensor:
        return torch.zeros(2)

    @property
    def minimizers(self) -> torch.Tensor:
        return torch.tensor([[0.0, 1.0], [0.0, -1.0]])

    def value(self, x):
        _check_points("SaddleWell.value", x)
        u, v = x[..., 0], x[..., 1]
        return 0.5 * u**2 + 0.25 * (v**2 - 1) ** 2

    def grad(self, x):
        _check_points("SaddleWell.grad", x)
        u, v = x[..., 0], x[..., 1]
        # (df/dx, df/dy) = (x, y^3 - y)
        return torch.stack([u, v**3 - v], dim=-1)

    def hessian(self, x):
        _check_points("SaddleWell.hessian", x)
        u, v = x[..., 0], x[..., 1]
        zero = torch.zeros_like(u)
        # diag(1, 3 y^2 - 1)
        return torch.stack(
            [
                torch.stack([torch.ones_like(u), zero], -1),
                torch.stack([zero, 3 * v**2 - 1], -1),
            ],
            -2,
        )


def _starts(where: str, objective, starts) -> torch.Tensor:
    check_type(
        where,
        "objective",
        objective,
        Objective,
        "a dlcourse.objectives.Objective",
    )
    starts = torch.as_tensor(starts, dtype=torch.float64)
    if starts.ndim != 2 or starts.shape[1] != 2:
        _fail(where, "starts", "of shape (N, 2)", tuple(starts.shape))
    return starts.clone()


def _solve_2x2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a^{-1} b for a batch of 2x2 matrices a (N, 2, 2), b (N, 2)."""
    # inverse of [[p, q], [r, s]] is [[s, -q], [-r, p]] / (p s - q r)
    p, q, r, s = a[:, 0, 0], a[:, 0, 1], a[:, 1, 0], a[:, 1, 1]
    det = p * s - q * r
    u, v = b[:, 0], b[:, 1]
    return torch.stack([s * u - q * v, p * v - r * u], dim=-1) / det[:, None]


def _abs_2x2(h: torch.Tensor) -> torch.Tensor:
    """|H| = V |Lambda| V^T for a batch of symmetric 2x2 matrices."""
    # |H| = sqrt(M) with M = H^2, and for a 2x2 PSD M:
    # sqrt(M) = (M + sqrt(det M) I) / sqrt(tr M + 2 sqrt(det M))
    m = h @ h
    root_det = torch.linalg.det(h).abs()  # sqrt(det H^2)
    eye = torch.eye(2, dtype=h.dtype)
    scale = (m.diagonal(dim1=-2, dim2=-1).sum(-1) + 2 * root_det).sqrt()
    # scale = 0 only for H = 0, whose |H| is 0 (not 0/0)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (m + root_det[:, None, None] * eye) / scale[:, None, None]


def newton_paths(
    objective: Objective,
    starts,
    *,
    damping: float = 0.0,
    saddle_free: bool = False,
    steps: int,
) -> torch.Tensor:
    r"""Damped Newton from every start: :math:`x \leftarrow x - (B +
    \lambda I)^{-1}\nabla f(x)` with :math:`B = H` or, ``saddle_free``,
    :math:`B = |H|` (eigenvalues replaced by their absolute values; Dauphin
    et al., 2014).

    ``starts`` is (N, 2); returns the paths, shape ``(steps + 1, N, 2)``,
    float64. A singular :math:`B + \lambda I` gives non-finite points.
    """
    where = "newton_paths"
    x = _starts(where, objective, starts)
    check_in_range(where, "damping", damping, low=0.0)
    check_type(where, "saddle_free", saddle_free, bool, "a bool")
    check_int(where, "steps", steps, low=0)
    eye = torch.eye(2, dtype=torch.float64)
    path = [x]
    for _ in range(steps):
        h = objective.hessian(x)  # (N, 2, 2)
        if saddle_free:
            h = _abs_2x2(h)
        x = x - _solve_2x2(h + damping * eye, objective.grad(x))
        path.append(x)
    return torch.stack(path)


def gd_paths(objective: Objective, starts, *, lr: float, steps: int):
    r"""Gradient descent :math:`x \leftarrow x - \alpha\nabla f(x)` from
    every start; returns ``(steps + 1, N, 2)``, float64."""
    where = "gd_paths"
    x = _starts(where, objective, starts)
    check_in_range(where, "lr", lr, low=0.0, low_inclusive=False)
    check_int(where, "steps", steps, low=0)
    path = [x]
    for _ in range(steps):
        x = x - lr * objective.grad(x)
        path.append(x)
    return torch.stack(path)
