r"""SGD with momentum and Nesterov momentum, a twin of ``torch.optim.SGD``.

Book: Part II, chapter 3, "Basic algorithms".

``sgd_update_`` is the whole algorithm for one tensor; ``SGD`` is a thin
``torch.optim.Optimizer`` that calls it, with the same arguments, defaults,
state key (``momentum_buffer``) and iterates as ``torch.optim.SGD`` (the tests
compare them step by step). ``notes_momentum_update_`` is the lecture notes'
form of momentum, and ``gradient_descent_loop`` runs batch, stochastic or
minibatch gradient descent on a model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse._validation import (
    check_in_range,
    check_int,
    check_real,
    check_type,
)

__all__ = [
    "sgd_update_",
    "SGD",
    "notes_momentum_update_",
    "gradient_descent_loop",
]


def _check_hyperparameters(
    where, lr, momentum, dampening, weight_decay, nesterov, maximize
):
    """Validate like torch.optim.SGD (same accepted values, same error type)."""
    check_in_range(where, "lr", lr, low=0.0)
    check_in_range(where, "momentum", momentum, low=0.0)
    check_real(where, "dampening", dampening)
    check_in_range(where, "weight_decay", weight_decay, low=0.0)
    check_type(where, "nesterov", nesterov, bool, "a bool")
    check_type(where, "maximize", maximize, bool, "a bool")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"{where}: 'nesterov=True' requires momentum > 0 and "
            "dampening = 0; "
            f"got momentum={momentum!r}, dampening={dampening!r}."
        )


@torch.no_grad()
def sgd_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> torch.Tensor:
    r"""One step of SGD on ``param`` in place.

    ``state`` holds ``momentum_buffer``. With gradient :math:`g_t`, learning
    rate :math:`\alpha`, momentum :math:`\gamma`, dampening :math:`\tau` and
    weight decay :math:`\lambda`:

    .. math::

        g_t &\leftarrow g_t + \lambda\,\theta_{t-1} \\
        b_t &= \begin{cases} g_t & t = 1 \\
               \gamma\, b_{t-1} + (1-\tau)\, g_t & t > 1 \end{cases} \\
        d_t &= \begin{cases} g_t + \gamma\, b_t & \text{Nesterov} \\
               b_t & \text{otherwise} \end{cases} \\
        \theta_t &= \theta_{t-1} - \alpha\, d_t

    (with :math:`\gamma = 0`, simply
    :math:`\theta_t = \theta_{t-1} - \alpha g_t`).
    ``maximize`` negates :math:`g_t` first.

    Differences from the notes: the notes accumulate the *step*,
    :math:`V_t = \gamma V_{t-1} + \alpha\nabla J`,
    :math:`\theta_t = \theta_{t-1} - V_t`; here (as in PyTorch) the buffer
    accumulates gradients and is scaled by :math:`\alpha` when applied. For a
    constant :math:`\alpha`, :math:`V_t = \alpha b_t` and the iterates are the
    same; they differ when :math:`\alpha` changes during training. The notes'
    Nesterov step evaluates the gradient at the look-ahead point
    :math:`\theta - \gamma V`; PyTorch's :math:`\theta` *is* that look-ahead
    point (Sutskever et al., 2013), so the gradient is taken at
    :math:`\theta`.
    The first buffer is :math:`g_1` itself, not :math:`(1-\tau) g_1`.

    Returns ``param``.
    """
    _check_hyperparameters(
        "sgd_update_", lr, momentum, dampening, weight_decay, nesterov, maximize
    )
    check_type("sgd_update_", "state", state, dict, "a dict")
    d = -grad if maximize else grad
    if weight_decay != 0:
        # g <- g + lambda theta
        d = d.add(param, alpha=weight_decay)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            # b_1 = g_1
            buf = d.detach().clone()
            state["momentum_buffer"] = buf
        else:
            # b_t = gamma b_{t-1} + (1 - tau) g_t
            buf.mul_(momentum).add_(d, alpha=1 - dampening)
        # d_t = g_t + gamma b_t (Nesterov) or b_t
        d = d.add(buf, alpha=momentum) if nesterov else buf
    # theta_t = theta_{t-1} - alpha d_t
    param.add_(d, alpha=-lr)
    return param


class SGD(torch.optim.Optimizer):
    """``torch.optim.SGD`` rebuilt on :func:`sgd_update_`.

    Same arguments and state.

    ``foreach``/``fused``/``differentiable`` are not offered: every tensor is
    updated by the same readable loop.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        _check_hyperparameters(
            "SGD", lr, momentum, dampening, weight_decay, nesterov, maximize
        )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """Update every parameter that has a gradient; return ``closure()``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hyper = {
                k: group[k]
                for k in (
                    "lr",
                    "momentum",
                    "dampening",
                    "nesterov",
                    "weight_decay",
                    "maximize",
                )
            }
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p] if group["momentum"] != 0 else {}
                sgd_update_(p, p.grad, state, **hyper)
        return loss


@torch.no_grad()
def notes_momentum_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict,
    *,
    lr: float,
    momentum: float,
) -> torch.Tensor:
    r"""The notes' momentum step, in place.

    :math:`V_t = \gamma V_{t-1} + \alpha g_t`,
    :math:`\theta_t = \theta_{t-1} - V_t`. ``state["velocity"]`` holds
    :math:`V` (zero before the first step). For a constant :math:`\alpha` it
    equals ``lr`` times PyTorch's ``momentum_buffer``.
    """
    check_in_range("notes_momentum_update_", "lr", lr, low=0.0)
    check_in_range("notes_momentum_update_", "momentum", momentum, low=0.0)
    check_type("notes_momentum_update_", "state", state, dict, "a dict")
    v = state.setdefault("velocity", torch.zeros_like(param))
    # V_t = gamma V_{t-1} + alpha g_t
    v.mul_(momentum).add_(grad, alpha=lr)
    # theta_t = theta_{t-1} - V_t
    param.sub_(v)
    return param


def gradient_descent_loop(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    steps: int,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    loss_fn: Callable = F.cross_entropy,
) -> list[float]:
    r"""Run ``steps`` updates of batch, stochastic or minibatch GD.

    ``batch_size=None`` is batch GD, ``1`` stochastic, ``m`` minibatch.

    Minibatches are consecutive slices of a fresh random permutation of the
    examples in each pass (drawn from ``generator``), so every example is used
    once per pass; the last, shorter slice of a pass is used too. The gradient
    of a step is that of the mean loss over its minibatch :math:`B`,
    :math:`\nabla_\theta \frac{1}{|B|}\sum_{i\in B} L(f(x_i;\theta), y_i)`.

    Returns the minibatch loss before each step.
    """
    check_type(
        "gradient_descent_loop", "model", model, nn.Module, "a torch.nn.Module"
    )
    check_type(
        "gradient_descent_loop",
        "optimizer",
        optimizer,
        torch.optim.Optimizer,
        "a torch.optim.Optimizer",
    )
    check_int("gradient_descent_loop", "steps", steps, low=1)
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(
            f"gradient_descent_loop: 'x' and 'y' must have the same number "
            f"of rows; got {n} and {y.shape[0]}."
        )
    m = (
        n
        if batch_size is None
        else check_int("gradient_descent_loop", "batch_size", batch_size, low=1)
    )
    if m < n and generator is None:
        raise ValueError(
            "gradient_descent_loop: 'generator' must be a torch.Generator "
            "when batch_size < len(x); got None."
        )
    losses, batches = [], []
    for _ in range(steps):
        if not batches:  # a new pass over the data
            order = (
                torch.arange(n)
                if m >= n
                else torch.randperm(n, generator=generator)
            )
            batches = list(torch.split(order, m))
        idx = batches.pop(0)
        loss = loss_fn(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
