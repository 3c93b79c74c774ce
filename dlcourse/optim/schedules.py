r"""Learning-rate schedules in closed form, and Polyak averaging.

Book: Part II, chapter 7, "Optimization strategies and meta-algorithms".

``step_lr``, ``cosine_lr`` and ``linear_factor`` give the learning rate at
step :math:`t` directly; ``StepLR``, ``CosineAnnealingLR`` and ``LinearLR``
are ``torch.optim.lr_scheduler`` schedulers (same arguments) whose rate is
that closed form, where torch's own classes update the rate multiplicatively
from the previous one (the tests check that both give the same rates,
alone and chained by ``torch.optim.lr_scheduler.SequentialLR`` for a linear
warm-up followed by a cosine decay). ``PolyakAverage`` keeps the running
(or exponentially weighted) average of a model's parameters, a twin of
``torch.optim.swa_utils.AveragedModel``'s parameter average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LRScheduler

from dlcourse._validation import check_in_range, check_int, check_type

__all__ = [
    "step_lr",
    "cosine_lr",
    "linear_factor",
    "StepLR",
    "CosineAnnealingLR",
    "LinearLR",
    "PolyakAverage",
]


def step_lr(t: int, *, base_lr: float, step_size: int, gamma: float = 0.1):
    r"""Step decay: :math:`\eta_t = \eta_0\, \gamma^{\lfloor t / s \rfloor}`."""
    t = check_int("step_lr", "t", t, low=0)
    check_in_range("step_lr", "base_lr", base_lr, low=0.0)
    check_int("step_lr", "step_size", step_size, low=1)
    check_in_range("step_lr", "gamma", gamma, low=0.0)
    return base_lr * gamma ** (t // step_size)


def cosine_lr(t: int, *, base_lr: float, T_max: int, eta_min: float = 0.0):
    r"""Cosine annealing (Loshchilov and Hutter, 2017, without restarts):

    .. math::

        \eta_t = \eta_{\min} + \tfrac12 (\eta_0 - \eta_{\min})
                 \big(1 + \cos(\pi t / T_{\max})\big),

    from :math:`\eta_0` at :math:`t = 0` to :math:`\eta_{\min}` at
    :math:`t = T_{\max}` (past it the cosine climbs back, as in torch).
    """
    t = check_int("cosine_lr", "t", t, low=0)
    check_in_range("cosine_lr", "base_lr", base_lr, low=0.0)
    check_int("cosine_lr", "T_max", T_max, low=1)
    check_in_range("cosine_lr", "eta_min", eta_min, low=0.0)
    return (
        eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / T_max)) / 2
    )


def linear_factor(
    t: int,
    *,
    start_factor: float = 1 / 3,
    end_factor: float = 1.0,
    total_iters: int = 5,
):
    r"""Linear warm-up factor: from ``start_factor`` at :math:`t = 0` to
    ``end_factor`` at :math:`t =` ``total_iters``, constant after:
    :math:`f_t = f_0 + (f_1 - f_0) \min(t, T)/T`."""
    t = check_int("linear_factor", "t", t, low=0)
    check_in_range(
        "linear_factor",
        "start_factor",
        start_factor,
        low=0.0,
        high=1.0,
        low_inclusive=False,
    )
    check_in_range("linear_factor", "end_factor", end_factor, low=0.0, high=1.0)
    check_int("linear_factor", "total_iters", total_iters, low=1)
    return start_factor + (end_factor - start_factor) * min(t, total_iters) / (
        total_iters
    )


class _ClosedForm(LRScheduler):
    """A scheduler whose rate is a function of the step and the base rate:
    each subclass defines ``_rate(t, base_lr)``."""

    def get_lr(self):
        return [self._rate(self.last_epoch, b) for b in self.base_lrs]

    # torch's SequentialLR restarts a scheduler with step(0): same rule
    _get_closed_form_lr = get_lr


class StepLR(_ClosedForm):
    """Multiply the rate by ``gamma`` every ``step_size`` steps
    (:func:`step_lr`); arguments as ``torch.optim.lr_scheduler.StepLR``."""

    def __init__(
        self, optimizer, step_size: int, gamma: float = 0.1, last_epoch=-1
    ):
        check_int("StepLR", "step_size", step_size, low=1)
        check_in_range("StepLR", "gamma", gamma, low=0.0)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def _rate(self, t, base_lr):
        return step_lr(
            t, base_lr=base_lr, step_size=self.step_size, gamma=self.gamma
        )


class CosineAnnealingLR(_ClosedForm):
    """Cosine decay over ``T_max`` steps (:func:`cosine_lr`); arguments as
    ``torch.optim.lr_scheduler.CosineAnnealingLR``."""

    def __init__(
        self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch=-1
    ):
        check_int("CosineAnnealingLR", "T_max", T_max, low=1)
        check_in_range("CosineAnnealingLR", "eta_min", eta_min, low=0.0)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _rate(self, t, base_lr):
        return cosine_lr(
            t, base_lr=base_lr, T_max=self.T_max, eta_min=self.eta_min
        )


class LinearLR(_ClosedForm):
    """The base rate times :func:`linear_factor` (a linear warm-up);
    arguments as ``torch.optim.lr_scheduler.LinearLR``."""

    def __init__(
        self,
        optimizer,
        start_factor: float = 1 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch=-1,
    ):
        # validates like linear_factor (same messages, at construction)
        linear_factor(
            0,
            start_factor=start_factor,
            end_factor=end_factor,
            total_iters=total_iters,
        )
        self.start_factor, self.end_factor = start_factor, end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _rate(self, t, base_lr):
        return base_lr * linear_factor(
            t,
            start_factor=self.start_factor,
            end_factor=self.end_factor,
            total_iters=self.total_iters,
        )


class PolyakAverage:
    r"""Running average of parameters (Polyak and Juditsky, 1992).

    ``update(params)`` after each optimizer step. ``decay=None`` keeps the
    equal-weight average of all iterates so far,
    :math:`\bar\theta_t = \bar\theta_{t-1} + (\theta_t - \bar\theta_{t-1})/t`;
    a ``decay`` :math:`\alpha` in [0, 1] keeps the exponential one,
    :math:`\bar\theta_t = \alpha\bar\theta_{t-1} + (1-\alpha)\theta_t`. The
    first update copies. ``averaged`` holds the averages (detached copies),
    ``n_averaged`` the number of updates, as in
    ``torch.optim.swa_utils.AveragedModel``.
    """

    def __init__(
        self, params: Iterable[torch.Tensor], decay: float | None = None
    ):
        params = list(params)
        if not params or not all(isinstance(p, torch.Tensor) for p in params):
            raise TypeError(
                "PolyakAverage: 'params' must be a non-empty iterable of "
                f"tensors; got {params!r:.80}."
            )
        if decay is not None:
            check_in_range("PolyakAverage", "decay", decay, low=0.0, high=1.0)
        self.decay = decay
        self.averaged = [p.detach().clone() for p in params]
        self.n_averaged = 0

    @torch.no_grad()
    def update(self, params: Iterable[torch.Tensor]) -> None:
        """Fold the current ``params`` into the average."""
        params = list(params)
        if len(params) != len(self.averaged):
            raise ValueError(
                "PolyakAverage.update: 'params' must have "
                f"{len(self.averaged)} tensors, as at construction; "
                f"got {len(params)}."
            )
        for avg, p in zip(self.averaged, params):
            check_type(
                "PolyakAverage.update", "params", p, torch.Tensor, "tensors"
            )
            if self.n_averaged == 0:
                avg.copy_(p)
            elif self.decay is None:
                avg.add_(p.detach() - avg, alpha=1 / (self.n_averaged + 1))
            else:
                avg.lerp_(p.detach(), 1 - self.decay)
        self.n_averaged += 1

    @torch.no_grad()
    def copy_to(self, params: Iterable[torch.Tensor]) -> None:
        """Write the averages into ``params`` (e.g. a model's, to evaluate)."""
        for avg, p in zip(self.averaged, params, strict=True):
            p.copy_(avg)
