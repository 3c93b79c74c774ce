"""Toy 2-D objectives for the optimization chapters.

Quadratics, Rosenbrock and a saddle. Each works on torch tensors of shape
(..., 2), so a plot can evaluate a whole grid, and gives its gradient and
Hessian in closed form (the tests check them against autograd).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from dlcourse._validation import (
    _fail,
    check_in_range,
    check_real,
    check_type,
)

__all__ = ["Objective", "Quadratic", "Rosenbrock", "Saddle"]


def _check_points(where: str, x) -> None:
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    if not x.is_floating_point():
        _fail(where, "x", "a floating-point tensor", x.dtype, exc=TypeError)
    if x.ndim == 0 or x.shape[-1] != 2:
        _fail(where, "x", "of shape (..., 2)", tuple(x.shape))


class Objective(ABC):
    r"""A 2-D objective with closed-form derivatives.

    A function :math:`f: \mathbb{R}^2 \to \mathbb{R}`. ``value``, ``grad``
    and ``hessian`` take points of shape ``(..., 2)``, so a plot can evaluate
    a whole grid at once, and return shapes ``(...)``, ``(..., 2)`` and
    ``(..., 2, 2)``. ``value`` is differentiable by autograd; ``f(x)`` is
    ``f.value(x)``.
    """

    @abstractmethod
    def value(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""

    @abstractmethod
    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""

    @abstractmethod
    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.value(x)


class Quadratic(Objective):
    r"""An ill-conditioned quadratic bowl.

    The model problem of gradient descent:

    .. math:: f(x) = \tfrac12 (x - x^*)^\top A (x - x^*), \qquad
              A = R_\theta \operatorname{diag}(1, \kappa) R_\theta^\top

    Parameters
    ----------
    condition_number : float
        :math:`\kappa \ge 1`, the ratio of the largest to the smallest
        eigenvalue.
    angle : float
        :math:`\theta` in radians: the rotation of the eigenvectors.
    center : pair of float
        The minimizer :math:`x^*`.
    """

    def __init__(
        self,
        condition_number: float = 10.0,
        *,
        angle: float = 0.0,
        center=(0.0, 0.0),
    ):
        self.condition_number = check_in_range(
            "Quadratic", "condition_number", condition_number, low=1
        )
        self.angle = check_real("Quadratic", "angle", angle)
        check_type(
            "Quadratic",
            "center",
            center,
            (tuple, list),
            "a pair of real numbers",
        )
        if len(center) != 2:
            _fail("Quadratic", "center", "a pair of real numbers", center)
        self.center = tuple(
            check_real("Quadratic", f"center[{i}]", c)
            for i, c in enumerate(center)
        )
        c, s = math.cos(self.angle), math.sin(self.angle)
        rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
        eigenvalues = torch.tensor(
            [1.0, self.condition_number], dtype=torch.float64
        )
        # (2, 2), symmetric
        self._A = rotation @ torch.diag(eigenvalues) @ rotation.T

    def __repr__(self):
        return (
            f"Quadratic(condition_number={self.condition_number}, "
            f"angle={self.angle}, center={self.center})"
        )

    @property
    def minimizer(self) -> torch.Tensor:
        return torch.tensor(self.center)

    def value(self, x):
        _check_points("Quadratic.value", x)
        d = x - torch.tensor(self.center).to(x)  # (..., 2)
        # f = 1/2 d^T A d
        return 0.5 * torch.einsum("...i,ij,...j->...", d, self._A.to(x), d)

    def grad(self, x):
        _check_points("Quadratic.grad", x)
        # grad f = A (x - x*)
        return (x - torch.tensor(self.center).to(x)) @ self._A.to(x)

    def hessian(self, x=None):
        """``A`` (2, 2).

        For points ``x``: ``A`` repeated to shape ``(..., 2, 2)``.
        """
        if x is None:
            return self._A.to(torch.get_default_dtype())
        _check_points("Quadratic.hessian", x)
        return self._A.to(x).expand(*x.shape[:-1], 2, 2).clone()


class Rosenbrock(Objective):
    r"""Rosenbrock's banana-shaped valley, minimum :math:`(a, a^2)`.

    .. math:: f(x, y) = (a - x)^2 + b\,(y - x^2)^2

    Parameters
    ----------
    a : float
        Position of the minimum.
    b : float
        :math:`b > 0`, the steepness of the valley's walls.
    """

    def __init__(self, a: float = 1.0, b: float = 100.0):
        self.a = check_real("Rosenbrock", "a", a)
        self.b = check_in_range(
            "Rosenbrock", "b", b, low=0, low_inclusive=False
        )

    def __repr__(self):
        return f"Rosenbrock(a={self.a}, b={self.b})"

    @property
    def minimizer(self) -> torch.Tensor:
        return torch.tensor([self.a, self.a**2])

    def value(self, x):
        _check_points("Rosenbrock.value", x)
        u, v = x[..., 0], x[..., 1]
        return (self.a - u) ** 2 + self.b * (v - u**2) ** 2

    def grad(self, x):
        _check_points("Rosenbrock.grad", x)
        u, v = x[..., 0], x[..., 1]
        du = -2 * (self.a - u) - 4 * self.b * u * (v - u**2)  # df/dx
        dv = 2 * self.b * (v - u**2)  # df/dy
        return torch.stack([du, dv], dim=-1)

    def hessian(self, x):
        _check_points("Rosenbrock.hessian", x)
        u, v = x[..., 0], x[..., 1]
        uu = 2 - 4 * self.b * v + 12 * self.b * u**2  # d2f/dx2
        uv = -4 * self.b * u  # d2f/dxdy
        vv = torch.full_like(u, 2 * self.b)  # d2f/dy2
        return torch.stack(
            [torch.stack([uu, uv], -1), torch.stack([uv, vv], -1)], -2
        )


class Saddle(Objective):
    """The saddle :math:`f(x, y) = x^2 - y^2`.

    Its gradient is zero at 0, but it has no minimum.
    """

    def __repr__(self):
        return "Saddle()"

    @property
    def saddle_point(self) -> torch.Tensor:
        return torch.zeros(2)

    def value(self, x):
        _check_points("Saddle.value", x)
        return x[..., 0] ** 2 - x[..., 1] ** 2

    def grad(self, x):
        _check_points("Saddle.grad", x)
        return torch.stack([2 * x[..., 0], -2 * x[..., 1]], dim=-1)

    def hessian(self, x=None):
        """``diag(2, -2)``.

        For points ``x``: ``diag(2, -2)`` repeated to shape ``(..., 2, 2)``.
        """
        h = torch.diag(torch.tensor([2.0, -2.0]))
        if x is None:
            return h
        _check_points("Saddle.hessian", x)
        return h.to(x).expand(*x.shape[:-1], 2, 2).clone()
