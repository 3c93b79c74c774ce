r"""Paths of optimizers on the 2-D objectives of :mod:`dlcourse.objectives`.

Book: Part II, chapter 3, "Basic algorithms" (trajectories on an ill-conditioned
quadratic and on Rosenbrock's valley, and the notes' momentum form checked
against PyTorch's).

A path is a tensor of shape ``(steps + 1, 2)``: the start and every iterate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dlcourse._validation import _fail, check_in_range, check_int, check_type
from dlcourse.objectives import Objective
from dlcourse.optim.sgd import SGD

__all__ = ["optimizer_path", "sgd_path", "notes_momentum_path"]


def _start(where: str, objective, x0) -> torch.Tensor:
    check_type(
        where,
        "objective",
        objective,
        Objective,
        "a dlcourse.objectives.Objective",
    )
    x0 = torch.as_tensor(x0, dtype=torch.float64)
    if x0.shape != (2,):
        _fail(where, "x0", "a point of shape (2,)", tuple(x0.shape))
    return x0.clone()


def optimizer_path(
    objective: Objective, x0, make_optimizer: Callable, *, steps: int
) -> torch.Tensor:
    r"""Run a ``torch.optim`` optimizer on ``objective`` from ``x0`` (float64).

    ``make_optimizer([theta])`` builds the optimizer for the single parameter
    :math:`\theta \in \mathbb{R}^2`; each step sets ``theta.grad`` to the
    closed-form gradient :math:`\nabla f(\theta)` and calls ``step()``.

    Returns the path, shape ``(steps + 1, 2)``.
    """
    theta = _start("optimizer_path", objective, x0).requires_grad_()
    check_int("optimizer_path", "steps", steps, low=0)
    optimizer = make_optimizer([theta])
    check_type(
        "optimizer_path",
        "make_optimizer(...)",
        optimizer,
        torch.optim.Optimizer,
        "a torch.optim.Optimizer",
    )
    path = [theta.detach().clone()]
    for _ in range(steps):
        theta.grad = objective.grad(theta.detach())
        optimizer.step()
        path.append(theta.detach().clone())
    return torch.stack(path)  # (steps + 1, 2)


def sgd_path(
    objective: Objective,
    x0,
    *,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    steps: int,
) -> torch.Tensor:
    """:func:`optimizer_path` with :class:`dlcourse.optim.sgd.SGD`.

    Full (noise-free) gradients.
    """
    return optimizer_path(
        objective,
        x0,
        lambda p: SGD(p, lr=lr, momentum=momentum, nesterov=nesterov),
        steps=steps,
    )


def notes_momentum_path(
    objective: Objective,
    x0,
    *,
    lr: float,
    momentum: float,
    steps: int,
    nesterov: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The notes' momentum and Nesterov updates, written literally.

    .. math::

        V_t &= \gamma V_{t-1}
               + \alpha\,\nabla J(\theta_{t-1}
                 - \gamma V_{t-1}\,[\text{Nesterov}]),
        \qquad V_0 = 0, \\
        \theta_t &= \theta_{t-1} - V_t .

    Returns ``(thetas, velocities)``, each of shape ``(steps + 1, 2)``. For
    momentum, ``thetas`` equals PyTorch's iterates; for Nesterov, PyTorch's
    iterates are the look-ahead points ``thetas - momentum * velocities``.
    """
    theta = _start("notes_momentum_path", objective, x0)
    lr = check_in_range("notes_momentum_path", "lr", lr, low=0.0)
    gamma = check_in_range("notes_momentum_path", "momentum", momentum, low=0.0)
    check_int("notes_momentum_path", "steps", steps, low=0)
    check_type("notes_momentum_path", "nesterov", nesterov, bool, "a bool")
    v = torch.zeros(2, dtype=torch.float64)
    thetas, velocities = [theta.clone()], [v.clone()]
    for _ in range(steps):
        at = (
            theta - gamma * v if nesterov else theta
        )  # where the gradient is taken
        # V_t = gamma V_{t-1} + alpha grad J(at)
        v = gamma * v + lr * objective.grad(at)
        # theta_t = theta_{t-1} - V_t
        theta = theta - v
        thetas.append(theta.clone())
        velocities.append(v.clone())
    return torch.stack(thetas), torch.stack(velocities)
