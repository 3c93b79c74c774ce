r"""Step-size schedules and SGD on a noisy quadratic: the Robbins–Monro conditions.

Book: Part II, chapter 3, "Basic algorithms".

SGD with steps :math:`\epsilon_k` converges (for convex problems, under mild
conditions; Robbins & Monro, 1951; Bottou et al., 2018) when

.. math:: \sum_{k=1}^\infty \epsilon_k = \infty, \qquad \sum_{k=1}^\infty \epsilon_k^2 < \infty .

The first lets the iterates travel any distance; the second makes the noise they
accumulate finite. A constant step violates the second (the iterates keep
jittering at a noise floor), :math:`\epsilon_k = c/k^2` violates the first (the
iterates stop before they arrive), :math:`\epsilon_k = c/k` satisfies both.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dlcourse._validation import check_choice, check_in_range, check_int, check_type
from dlcourse.optim.sgd import sgd_update_

__all__ = ["step_size_schedule", "noisy_quadratic_sgd"]

_KINDS = ("constant", "1/k", "1/k^2")


def step_size_schedule(kind: str, c: float) -> Callable[[int], float]:
    r"""``k -> ε_k`` for ``kind`` ``"constant"`` (:math:`c`), ``"1/k"`` (:math:`c/k`) or ``"1/k^2"`` (:math:`c/k^2`); ``k >= 1``."""
    check_choice("step_size_schedule", "kind", kind, _KINDS)
    c = check_in_range("step_size_schedule", "c", c, low=0.0, low_inclusive=False)
    power = {"constant": 0, "1/k": 1, "1/k^2": 2}[kind]
    return lambda k: c / k**power


def noisy_quadratic_sgd(schedule: Callable[[int], float], *, x0: float, curvature: float,
                        noise_std: float, steps: int, runs: int,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    r"""SGD on :math:`f(x) = \tfrac{a}{2}x^2` with noisy gradients, ``runs`` independent chains.

    Step :math:`k = 1, 2, \dots` uses the gradient estimate
    :math:`g_k = a\,x_{k-1} + \sigma\,\xi_k`, :math:`\xi_k \sim \mathcal N(0, 1)`,
    and :func:`dlcourse.optim.sgd.sgd_update_` with ``lr`` :math:`=\epsilon_k`:
    :math:`x_k = x_{k-1} - \epsilon_k g_k`. The optimum is :math:`x^* = 0`.

    Returns the iterates, shape ``(steps + 1, runs)`` (float64), row 0 the start.
    """
    check_type("noisy_quadratic_sgd", "schedule", schedule, Callable, "a callable")
    x0 = check_in_range("noisy_quadratic_sgd", "x0", x0)
    a = check_in_range("noisy_quadratic_sgd", "curvature", curvature, low=0.0,
                       low_inclusive=False)
    sigma = check_in_range("noisy_quadratic_sgd", "noise_std", noise_std, low=0.0)
    check_int("noisy_quadratic_sgd", "steps", steps, low=1)
    check_int("noisy_quadratic_sgd", "runs", runs, low=1)
    x = torch.full((runs,), x0, dtype=torch.float64)
    noise = torch.randn(steps, runs, dtype=torch.float64, generator=generator)
    path = [x.clone()]
    for k in range(1, steps + 1):
        # g_k = a x_{k-1} + sigma xi_k
        grad = a * x + sigma * noise[k - 1]
        # x_k = x_{k-1} - eps_k g_k
        sgd_update_(x, grad, {}, lr=schedule(k))
        path.append(x.clone())
    return torch.stack(path)
