r"""Tools to measure adaptive learning rates: a wrapper that turns a pure
update into an optimizer, the steps taken on a constant gradient, the early
steps of Adam without bias correction, and a sparse-feature problem.

Book: Part II, chapter 5, "Algorithms with adaptive learning rates".

The updates themselves live in :mod:`dlcourse.optim.adaptive`; this module
only runs and measures them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from dlcourse._validation import (
    _fail,
    check_generator,
    check_in_range,
    check_int,
    check_real,
    check_type,
)

__all__ = [
    "UpdateOptimizer",
    "constant_gradient_steps",
    "uncorrected_adam_step_ratio",
    "sparse_logistic_data",
]


def _check_update(where, update):
    if not callable(update):
        raise TypeError(
            f"{where}: 'update' must be a callable "
            "update(param, grad, state, **hyper); "
            f"got {type(update).__name__}."
        )


class UpdateOptimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` that calls a pure update on each tensor.

    ``UpdateOptimizer(params, notes_adam_update_, lr=1e-3)`` runs
    ``update(p, p.grad, state[p], **hyper)`` for every parameter with a
    gradient, so the notes' forms of :mod:`dlcourse.optim.adaptive` (which
    have no optimizer class) can train a network or follow a path. The
    hyperparameters are checked by ``update`` itself, at the first step.
    """

    def __init__(self, params, update: Callable, **hyper):
        _check_update("UpdateOptimizer", update)
        self.update = update
        super().__init__(params, dict(hyper))
        self._hyper = tuple(hyper)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """Update every parameter that has a gradient; return ``closure()``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hyper = {k: group[k] for k in self._hyper}
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, p.grad, self.state[p], **hyper)
        return loss


def constant_gradient_steps(
    update: Callable, *, steps: int, grad: float = 1.0, **hyper
) -> torch.Tensor:
    r"""The steps :math:`\theta_{t-1} - \theta_t` of ``update`` fed a
    constant gradient ``grad``, for :math:`t = 1, \dots,` ``steps``.

    One scalar parameter in float64, started at 0; ``hyper`` goes to
    ``update``. Returns a float64 tensor of shape ``(steps,)``. For a
    bias-corrected Adam every step is :math:`\eta\, g/(|g| + \epsilon)`;
    for the notes' Adam it is :func:`uncorrected_adam_step_ratio`
    times that.
    """
    where = "constant_gradient_steps"
    _check_update(where, update)
    check_int(where, "steps", steps, low=1)
    grad = check_real(where, "grad", grad)
    param = torch.zeros(1, dtype=torch.float64)
    g = torch.full((1,), grad, dtype=torch.float64)
    state: dict = {}
    out = torch.empty(steps, dtype=torch.float64)
    for t in range(steps):
        before = param.clone()
        update(param, g, state, **hyper)
        out[t] = (before - param).item()
    return out


def uncorrected_adam_step_ratio(
    t, *, betas: tuple[float, float] = (0.9, 0.999)
) -> torch.Tensor:
    r"""Step of Adam without bias correction over the corrected step, on a
    constant gradient (and :math:`\epsilon \to 0`):

    .. math::

        r_t = \frac{1 - \beta_1^t}{\sqrt{1 - \beta_2^t}}

    (with a constant gradient :math:`g`, :math:`m_t = (1-\beta_1^t)\,g` and
    :math:`v_t = (1-\beta_2^t)\,g^2`). ``t``: step numbers >= 1 (an int or
    a tensor). Returns a float64 tensor of the shape of ``t``.
    """
    where = "uncorrected_adam_step_ratio"
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        _fail(where, "betas", "a pair (beta1, beta2)", betas)
    for i, beta in enumerate(betas):
        check_in_range(
            where, f"betas[{i}]", beta, low=0.0, high=1.0, high_inclusive=False
        )
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.numel() == 0 or (t < 1).any() or (t != t.round()).any():
        _fail(where, "t", "step numbers >= 1", t.tolist())
    beta1, beta2 = betas
    return (1 - beta1**t) / torch.sqrt(1 - beta2**t)


def sparse_logistic_data(
    n: int,
    frequencies: Sequence[float],
    *,
    weight_std: float = 1.0,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    r"""A logistic-regression problem with binary features of given
    frequencies.

    Feature :math:`j` of each of the ``n`` examples is 1 with probability
    ``frequencies[j]`` and 0 otherwise; the true weights are
    :math:`w^*_j \sim \mathcal N(0, \sigma_w^2)` and the labels
    :math:`y \sim \text{Bernoulli}(\sigma(x^\top w^*))`.

    Returns ``{"x": (n, d) float32, "y": (n,) float32, "w": (d,) float32}``.
    """
    where = "sparse_logistic_data"
    check_int(where, "n", n, low=1)
    check_type(
        where, "frequencies", frequencies, (list, tuple), "a list of floats"
    )
    if not frequencies:
        _fail(where, "frequencies", "a non-empty list", frequencies)
    for j, p in enumerate(frequencies):
        check_in_range(where, f"frequencies[{j}]", p, low=0.0, high=1.0)
    check_in_range(where, "weight_std", weight_std, low=0.0)
    check_generator(where, generator)
    p = torch.tensor(frequencies, dtype=torch.float32)
    x = (torch.rand(n, len(p), generator=generator) < p).float()  # (n, d)
    w = weight_std * torch.randn(len(p), generator=generator)  # (d,)
    # y ~ Bernoulli(sigmoid(x w))
    y = torch.bernoulli(torch.sigmoid(x @ w), generator=generator)
    return {"x": x, "y": y, "w": w}
