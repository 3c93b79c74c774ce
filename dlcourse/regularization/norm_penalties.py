r"""Norm penalties: L2 and L1 on weights (never biases), soft-thresholding.

Book: Part I, chapter 1, "Parameter norm penalties".

The book writes a penalized objective as

.. math::

    \tilde J(\theta) = J(\theta) + \lambda\,\Omega(w),
    \qquad \Omega_2(w) = \tfrac12 \lVert w\rVert_2^2,
    \qquad \Omega_1(w) = \lVert w\rVert_1 ,

so that :math:`\nabla_w \lambda\Omega_2 = \lambda w`, exactly the term that
``torch.optim.SGD(weight_decay=λ)`` adds to the gradient. The lecture notes
write :math:`\lambda w^\top w` instead (no ½): their λ is half of PyTorch's
``weight_decay``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from dlcourse._validation import check_in_range, check_type

__all__ = [
    "weight_parameters",
    "weight_decay_groups",
    "l2_penalty",
    "l1_penalty",
    "soft_threshold",
    "soft_threshold_",
    "l1_proximal_step_",
    "decoupled_weight_decay_",
]


def weight_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters a norm penalty acts on: weight matrices and kernels.

    A parameter counts as a weight when its name ends in ``weight`` and it has
    at least two dimensions (``Linear``, ``Conv*``, ``Bilinear``,
    ``Embedding``).
    Biases and the one-dimensional scales of normalization layers are left out:
    they hold few numbers, each fitted from many examples, and shrinking them
    towards zero constrains the model without reducing its variance.
    """
    check_type(
        "weight_parameters", "model", model, nn.Module, "a torch.nn.Module"
    )
    return [
        p
        for name, p in model.named_parameters()
        if name.rsplit(".", 1)[-1] == "weight" and p.ndim >= 2
    ]


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups: ``weight_decay`` on weights, 0 on the rest.

    Pass the result to any ``torch.optim`` optimizer, e.g.
    ``torch.optim.AdamW(weight_decay_groups(model, 1e-2), lr=1e-3)``.
    """
    check_in_range("weight_decay_groups", "weight_decay", weight_decay, low=0.0)
    weights = weight_parameters(model)
    ids = {id(p) for p in weights}
    others = [p for p in model.parameters() if id(p) not in ids]
    return [
        {"params": weights, "weight_decay": float(weight_decay)},
        {"params": others, "weight_decay": 0.0},
    ]


def _tensors(where: str, params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(params, torch.Tensor):
        params = [params]
    params = list(params)
    for i, p in enumerate(params):
        check_type(where, f"params[{i}]", p, torch.Tensor, "a torch.Tensor")
    return params


def l2_penalty(params: Iterable[torch.Tensor], lam: float) -> torch.Tensor:
    r"""The L2 penalty on a list of tensors.

    .. math::

        \lambda\,\Omega_2(w) = \tfrac{\lambda}{2}\sum_j \lVert w_j\rVert_2^2 .

    Its gradient with respect to each ``w`` is ``lam * w``, the term that
    ``torch.optim.SGD(weight_decay=lam)`` adds. To reproduce the notes'
    :math:`\lambda_\text{notes}\, w^\top w`, pass ``lam = 2 * lambda_notes``.
    """
    lam = check_in_range("l2_penalty", "lam", lam, low=0.0)
    params = _tensors("l2_penalty", params)
    if not params:
        return torch.zeros(())
    # lam/2 * sum_j ||w_j||^2
    return 0.5 * lam * sum(p.pow(2).sum() for p in params)


def l1_penalty(params: Iterable[torch.Tensor], lam: float) -> torch.Tensor:
    r""":math:`\lambda\,\Omega_1(w) = \lambda \sum_j \lVert w_j\rVert_1`.

    Autograd gives the subgradient ``lam * sign(w)`` (0 at ``w = 0``).
    Gradient steps on this penalty make weights oscillate around zero but
    hardly ever land on it; use :func:`l1_proximal_step_` for exact zeros.
    """
    lam = check_in_range("l1_penalty", "lam", lam, low=0.0)
    params = _tensors("l1_penalty", params)
    if not params:
        return torch.zeros(())
    # lam * sum_j ||w_j||_1
    return lam * sum(p.abs().sum() for p in params)


def soft_threshold(x: torch.Tensor, threshold: float) -> torch.Tensor:
    r"""The proximal operator of :math:`t\lVert\cdot\rVert_1`.

    .. math::

        \operatorname{prox}_{t\lVert\cdot\rVert_1}(z)
        = \arg\min_w \tfrac12 (w - z)^2 + t\lvert w\rvert
        = \operatorname{sign}(z)\,\max(\lvert z\rvert - t, 0).

    Every entry with :math:`\lvert z\rvert \le t` becomes exactly zero.
    """
    check_type("soft_threshold", "x", x, torch.Tensor, "a torch.Tensor")
    t = check_in_range("soft_threshold", "threshold", threshold, low=0.0)
    # sign(z) * max(|z| - t, 0)
    return torch.sign(x) * torch.clamp(x.abs() - t, min=0.0)


def soft_threshold_(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """In-place :func:`soft_threshold`; returns ``x``."""
    check_type("soft_threshold_", "x", x, torch.Tensor, "a torch.Tensor")
    t = check_in_range("soft_threshold_", "threshold", threshold, low=0.0)
    with torch.no_grad():
        x.copy_(torch.sign(x) * torch.clamp(x.abs() - t, min=0.0))
    return x


def l1_proximal_step_(
    params: Iterable[torch.Tensor], *, lr: float, lam: float
) -> None:
    r"""Proximal step for :math:`\lambda\lVert w\rVert_1` after a gradient step.

    Call it right after ``optimizer.step()`` of plain SGD with learning rate
    ``lr``: together they are one step of proximal gradient descent (ISTA),

    .. math::

        w \leftarrow \operatorname{prox}_{\eta\lambda\lVert\cdot\rVert_1}
        \bigl(w - \eta \nabla_w J\bigr).
    """
    lr = check_in_range("l1_proximal_step_", "lr", lr, low=0.0)
    lam = check_in_range("l1_proximal_step_", "lam", lam, low=0.0)
    for p in _tensors("l1_proximal_step_", params):
        soft_threshold_(p, lr * lam)


def decoupled_weight_decay_(
    params: Iterable[torch.Tensor], *, lr: float, weight_decay: float
) -> None:
    r"""Shrink weights directly, outside the gradient.

    .. math::

        w \leftarrow (1 - \eta\lambda)\,w

    Applied before an optimizer's step, this is the decoupled weight decay of
    Loshchilov & Hutter (2019), as ``torch.optim.AdamW`` does it. With plain
    SGD it gives the same iterates as the coupled L2 penalty; with Adam it does
    not, because Adam rescales the penalty's gradient but not this shrinkage.
    With SGD and momentum :math:`\gamma`, coupled L2 with :math:`\lambda`
    has the same fixed points as this decay with :math:`\lambda/(1-\gamma)`.

    Differences from the paper: the paper's decay rate is not multiplied by
    the learning rate (its step subtracts :math:`\eta_t\lambda w` with a
    schedule multiplier :math:`\eta_t`); here, as in PyTorch, the shrink per
    step is ``lr * weight_decay``, so the paper's
    :math:`\lambda = \text{lr}\cdot\text{weight\_decay}`.
    """
    lr = check_in_range("decoupled_weight_decay_", "lr", lr, low=0.0)
    wd = check_in_range(
        "decoupled_weight_decay_", "weight_decay", weight_decay, low=0.0
    )
    with torch.no_grad():
        for p in _tensors("decoupled_weight_decay_", params):
            # w <- (1 - lr * lambda) w
            p.mul_(1.0 - lr * wd)
