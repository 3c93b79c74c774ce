r"""Step-size schedules and SGD on a noisy quadratic: Robbins–Monro.

Book: Part II, chapter 3, "Basic algorithms".

SGD with steps :math:`\epsilon_k` converges (for convex problems, under mild
conditions; Robbins & Monro, 1951; Bottou et al., 2018) when

.. math::

    \sum_{k=1}^\infty \epsilon_k = \infty, \qquad
    \sum_{k=1}^\infty \epsilon_k^2 < \infty .

The first lets the iterates travel any distance; the second makes the noise
they accumulate finite. A constant step violates the second (the iterates keep
jittering at a noise floor), :math:`\epsilon_k = c/k^2` violates the first (the
iterates stop before they arrive), :math:`\epsilon_k = c/k` satisfies both; on
:math:`f(x) = \tfrac{\mu}{2}x^2` its mean squared error falls like
:math:`k^{-\min(1,\,2c\mu)}` (times :math:`\ln k` at :math:`c\mu = 1/2`).

On this problem the first two moments of plain SGD obey exact recursions
(:func:`sgd_moments`), and the noise floor of a constant step, with or without
momentum, has a closed form (:func:`stationary_variance`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dlcourse._validation import (
    check_choice,
    check_in_range,
    check_int,
    check_type,
)
from dlcourse.optim.sgd import sgd_update_

__all__ = [
    "step_size_schedule",
    "noisy_quadratic_sgd",
    "sgd_moments",
    "stationary_variance",
]

_KINDS = ("constant", "1/k", "1/k^2")


def step_size_schedule(kind: str, c: float) -> Callable[[int], float]:
    r"""``k -> ε_k`` for ``k >= 1``.

    ``kind`` is ``"constant"`` (:math:`c`), ``"1/k"`` (:math:`c/k`) or
    ``"1/k^2"`` (:math:`c/k^2`).
    """
    check_choice("step_size_schedule", "kind", kind, _KINDS)
    c = check_in_range(
        "step_size_schedule", "c", c, low=0.0, low_inclusive=False
    )
    power = {"constant": 0, "1/k": 1, "1/k^2": 2}[kind]
    return lambda k: c / k**power


def _problem(where, schedule, x0, curvature, noise_std, steps):
    check_type(where, "schedule", schedule, Callable, "a callable")
    x0 = check_in_range(where, "x0", x0)
    a = check_in_range(
        where, "curvature", curvature, low=0.0, low_inclusive=False
    )
    sigma = check_in_range(where, "noise_std", noise_std, low=0.0)
    check_int(where, "steps", steps, low=1)
    return x0, a, sigma


def noisy_quadratic_sgd(
    schedule: Callable[[int], float],
    *,
    x0: float,
    curvature: float,
    noise_std: float,
    steps: int,
    runs: int,
    momentum: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""SGD on :math:`f(x) = \tfrac{a}{2}x^2` with noisy gradients.

    ``runs`` independent chains. Step :math:`k = 1, 2, \dots` uses the
    gradient estimate :math:`g_k = a\,x_{k-1} + \sigma\,\xi_k`,
    :math:`\xi_k \sim \mathcal N(0, 1)`, and
    :func:`dlcourse.optim.sgd.sgd_update_` with ``lr`` :math:`=\epsilon_k`
    and ``momentum`` (the buffer carried from step to step):
    :math:`x_k = x_{k-1} - \epsilon_k g_k` without momentum. The optimum is
    :math:`x^* = 0`.

    Returns the iterates, shape ``(steps + 1, runs)`` (float64), row 0 the
    start.
    """
    where = "noisy_quadratic_sgd"
    x0, a, sigma = _problem(where, schedule, x0, curvature, noise_std, steps)
    check_int(where, "runs", runs, low=1)
    momentum = check_in_range(
        where, "momentum", momentum, low=0.0, high=1.0, high_inclusive=False
    )
    x = torch.full((runs,), x0, dtype=torch.float64)
    noise = torch.randn(steps, runs, dtype=torch.float64, generator=generator)
    state: dict = {}
    path = [x.clone()]
    for k in range(1, steps + 1):
        # g_k = a x_{k-1} + sigma xi_k
        grad = a * x + sigma * noise[k - 1]
        # x_k = x_{k-1} - eps_k g_k (or the momentum step)
        sgd_update_(x, grad, state, lr=schedule(k), momentum=momentum)
        path.append(x.clone())
    return torch.stack(path)


def sgd_moments(
    schedule: Callable[[int], float],
    *,
    x0: float,
    curvature: float,
    noise_std: float,
    steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact :math:`E\,x_k`, :math:`E\,x_k^2` of :func:`noisy_quadratic_sgd`.

    Without momentum the iteration
    :math:`x_k = (1 - \epsilon_k a)\,x_{k-1} - \epsilon_k\sigma\xi_k` gives

    .. math::

        E\,x_k = (1 - \epsilon_k a)\,E\,x_{k-1}, \qquad
        E\,x_k^2 = (1 - \epsilon_k a)^2\,E\,x_{k-1}^2 + \epsilon_k^2\sigma^2,

    from :math:`x_0`. Returns ``(mean, second_moment)``, each of shape
    ``(steps + 1,)`` (float64), entry 0 the start.
    """
    x0, a, sigma = _problem(
        "sgd_moments", schedule, x0, curvature, noise_std, steps
    )
    mean, second = [x0], [x0 * x0]
    for k in range(1, steps + 1):
        eps = schedule(k)
        # E x_k = (1 - eps_k a) E x_{k-1}
        mean.append((1.0 - eps * a) * mean[-1])
        # E x_k^2 = (1 - eps_k a)^2 E x_{k-1}^2 + eps_k^2 sigma^2
        second.append((1.0 - eps * a) ** 2 * second[-1] + (eps * sigma) ** 2)
    return (
        torch.tensor(mean, dtype=torch.float64),
        torch.tensor(second, dtype=torch.float64),
    )


def stationary_variance(
    lr: float, *, curvature: float, noise_std: float, momentum: float = 0.0
) -> float:
    r"""The noise floor :math:`\lim_k E\,x_k^2` of a constant step.

    For heavy-ball momentum :math:`\beta` (``torch.optim.SGD``'s
    ``momentum``) with step :math:`\alpha` on :math:`\tfrac a2 x^2` and
    gradient noise of variance :math:`\sigma^2`, the stationary solution of
    the second-moment recursion is

    .. math::

        E\,x^2 = \frac{\alpha\sigma^2}{a}\,
                 \frac{1+\beta}{(1-\beta)\,(2(1+\beta) - \alpha a)},

    which is :math:`\alpha\sigma^2 / (a(2 - \alpha a))` for :math:`\beta = 0`
    and, for small :math:`\alpha a`, about :math:`\alpha_\text{eff}\sigma^2 /
    (2a)` with the effective step :math:`\alpha_\text{eff} = \alpha/(1-\beta)`.
    It exists when :math:`0 < \alpha a < 2(1+\beta)` (else the iterates
    diverge).
    """
    where = "stationary_variance"
    alpha = check_in_range(where, "lr", lr, low=0.0, low_inclusive=False)
    a = check_in_range(
        where, "curvature", curvature, low=0.0, low_inclusive=False
    )
    sigma = check_in_range(where, "noise_std", noise_std, low=0.0)
    beta = check_in_range(
        where, "momentum", momentum, low=0.0, high=1.0, high_inclusive=False
    )
    if alpha * a >= 2.0 * (1.0 + beta):
        raise ValueError(
            f"{where}: 'lr * curvature' must be < 2 (1 + momentum) = "
            f"{2.0 * (1.0 + beta):g} for a finite floor; got {alpha * a!r}."
        )
    return (
        alpha
        * sigma**2
        * (1.0 + beta)
        / (a * (1.0 - beta) * (2.0 * (1.0 + beta) - alpha * a))
    )
