r"""Adversarial examples and training: FGSM, PGD, virtual adversarial loss.

Book: Part I, chapter 13, "Adversarial training".

An attack looks for an input :math:`\tilde x` near :math:`x`, within the
:math:`L^\infty` ball :math:`\lVert\tilde x - x\rVert_\infty \le \epsilon`
(and within the valid input range, e.g. pixels in [0, 1]), that increases the
loss :math:`L(f(\tilde x), y)` as much as possible. FGSM (Goodfellow et al.,
2015) takes one signed-gradient step of size ε; PGD (Madry et al., 2018)
takes several smaller ones and projects back after each. Virtual adversarial
training (Miyato et al., 2018) needs no label: it penalizes the change of the
model's output distribution under the worst small perturbation.

Every function works for any model whose loss is a sum over examples; with a
stacked ensemble (inputs of shape (K, N, d), one slice per member) each
member is attacked separately, because its loss depends only on its slice.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse._validation import (
    _fail,
    check_generator,
    check_in_range,
    check_int,
    check_type,
)

__all__ = [
    "project_linf",
    "fgsm",
    "pgd",
    "adversarial_loss",
    "adversarial_training_step",
    "vat_direction",
    "vat_loss",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_clip(where: str, clip) -> tuple[float, float] | None:
    if clip is None:
        return None
    check_type(where, "clip", clip, (tuple, list), "a (low, high) pair or None")
    if len(clip) != 2:
        _fail(where, "clip", "a (low, high) pair", clip)
    low = check_in_range(where, "clip[0]", clip[0])
    high = check_in_range(where, "clip[1]", clip[1])
    if not low < high:
        _fail(where, "clip", "a pair with low < high", clip)
    return low, high


def _check_xy(where: str, model, x, y=None) -> None:
    check_type(where, "model", model, nn.Module, "a torch.nn.Module")
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    if y is not None:
        check_type(where, "y", y, torch.Tensor, "a torch.Tensor")


def _input_gradient(model, x, y, loss_fn) -> torch.Tensor:
    """:math:`\\nabla_x L(f(x), y)`, without touching parameter gradients."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(model(x), y), x)
    return grad


def project_linf(
    x_adv: torch.Tensor,
    x: torch.Tensor,
    *,
    eps: float,
    clip: tuple[float, float] | None = None,
) -> torch.Tensor:
    r"""Project ``x_adv`` onto the ε-ball around ``x`` (and the valid range).

    .. math::

        \Pi(\tilde x) = \operatorname{clip}_{[a, b]}\bigl(
            \operatorname{clip}_{[x - \epsilon,\, x + \epsilon]}(\tilde x)\bigr)

    Both sets are boxes, so the Euclidean projection onto their intersection
    is the entry-wise clip to the intersected interval; the result is in the
    ball whenever ``x`` itself is in the range [a, b] = ``clip``.
    """
    where = "project_linf"
    check_type(where, "x_adv", x_adv, torch.Tensor, "a torch.Tensor")
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    eps = check_in_range(where, "eps", eps, low=0.0)
    clip = _check_clip(where, clip)
    # clip to [x - eps, x + eps], then to [a, b]
    out = torch.minimum(torch.maximum(x_adv, x - eps), x + eps)
    return out if clip is None else out.clamp(*clip)


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    clip: tuple[float, float] | None = None,
    loss_fn: LossFn = F.cross_entropy,
) -> torch.Tensor:
    r"""The fast gradient sign method (Goodfellow et al., 2015).

    .. math::

        \tilde x = \operatorname{clip}_{[a, b]}\bigl(
            x + \epsilon \operatorname{sign}(\nabla_x L(f(x), y))\bigr)

    the maximizer of the loss's first-order Taylor expansion over the
    :math:`L^\infty` ball of radius ε. Returns a detached tensor; the model's
    parameter gradients are left untouched. ``clip`` = (a, b) is the valid
    input range, or None for none.
    """
    where = "fgsm"
    _check_xy(where, model, x, y)
    eps = check_in_range(where, "eps", eps, low=0.0)
    clip = _check_clip(where, clip)
    grad = _input_gradient(model, x, y, loss_fn)
    # x + eps * sign(grad_x L)
    x_adv = x.detach() + eps * grad.sign()
    return x_adv if clip is None else x_adv.clamp(*clip)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    clip: tuple[float, float] | None = None,
    random_start: bool = False,
    generator: torch.Generator | None = None,
    loss_fn: LossFn = F.cross_entropy,
) -> torch.Tensor:
    r"""Projected gradient ascent on the loss, in the :math:`L^\infty` ball.

    .. math::

        \tilde x^{(0)} = x \;\;(\text{or } x + U(-\epsilon, \epsilon)),
        \qquad
        \tilde x^{(t+1)} = \Pi\bigl(\tilde x^{(t)}
            + \alpha \operatorname{sign}(\nabla_x L(f(\tilde x^{(t)}), y))
        \bigr),

    with :math:`\Pi` of :func:`project_linf` and α = ``step_size``. One step
    with α = ε from x is :func:`fgsm`. Madry et al. (2018) start at a
    uniform random point of the ball (``random_start=True``, drawn from
    ``generator``) and restart several times; here one run is made.
    Returns the last iterate, detached.
    """
    where = "pgd"
    _check_xy(where, model, x, y)
    eps = check_in_range(where, "eps", eps, low=0.0)
    step_size = check_in_range(
        where, "step_size", step_size, low=0.0, low_inclusive=False
    )
    check_int(where, "steps", steps, low=1)
    clip = _check_clip(where, clip)
    check_type(where, "random_start", random_start, bool, "a bool")
    check_generator(where, generator)
    x = x.detach()
    x_adv = x
    if random_start:
        noise = torch.rand(x.shape, generator=generator, dtype=x.dtype)
        x_adv = project_linf(x + eps * (2 * noise - 1), x, eps=eps, clip=clip)
    for _ in range(steps):
        grad = _input_gradient(model, x_adv, y, loss_fn)
        # x~ <- Pi(x~ + alpha * sign(grad_x L))
        x_adv = project_linf(
            x_adv + step_size * grad.sign(), x, eps=eps, clip=clip
        )
    return x_adv


def adversarial_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    alpha: float = 0.5,
    steps: int = 1,
    step_size: float | None = None,
    clip: tuple[float, float] | None = None,
    loss_fn: LossFn = F.cross_entropy,
) -> torch.Tensor:
    r"""The adversarial training objective on one batch.

    .. math::

        \tilde J = \alpha\, L(f(x), y) + (1 - \alpha)\, L(f(\tilde x), y),

    with :math:`\tilde x` from :func:`pgd` (``steps`` steps of ``step_size``,
    default ε, from x; ``steps=1`` is FGSM). Goodfellow et al. (2015) use FGSM
    and α = ½; Madry et al. (2018) use PGD and α = 0. The attack is treated
    as a constant: the gradient flows through :math:`f(\tilde x)` only, as
    Danskin's theorem allows for the inner maximum.
    """
    where = "adversarial_loss"
    _check_xy(where, model, x, y)
    eps = check_in_range(where, "eps", eps, low=0.0)
    alpha = check_in_range(where, "alpha", alpha, 0.0, 1.0)
    check_int(where, "steps", steps, low=1)
    if step_size is not None:
        step_size = check_in_range(
            where, "step_size", step_size, low=0.0, low_inclusive=False
        )
    step_size = eps if step_size is None else step_size
    if eps == 0.0:
        x_adv = x.detach()  # no attack: plain training
    else:
        x_adv = pgd(
            model,
            x,
            y,
            eps=eps,
            step_size=step_size,
            steps=steps,
            clip=clip,
            loss_fn=loss_fn,
        )
    # alpha L(x, y) + (1 - alpha) L(x~, y)
    clean = loss_fn(model(x), y) if alpha > 0 else 0.0
    return alpha * clean + (1 - alpha) * loss_fn(model(x_adv), y)


def adversarial_training_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    **attack,
) -> float:
    """One optimizer step on :func:`adversarial_loss`; returns its value.

    ``attack`` holds the keyword arguments of :func:`adversarial_loss`
    (``eps`` at least). The attack is computed first, with the current
    parameters; then the gradients are zeroed, so the attack's own backward
    passes never reach the step.
    """
    check_type(
        "adversarial_training_step",
        "optimizer",
        optimizer,
        torch.optim.Optimizer,
        "a torch.optim.Optimizer",
    )
    loss = adversarial_loss(model, x, y, **attack)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _unit_rows(d: torch.Tensor) -> torch.Tensor:
    """Each row (last dimension) divided by its Euclidean norm."""
    return d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _kl_sum(log_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Sum over rows of KL(p || q), p given by its log-probabilities."""
    log_q = F.log_softmax(logits_q, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum()


def vat_direction(
    model: nn.Module,
    x: torch.Tensor,
    *,
    xi: float = 1e-6,
    power_iterations: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The most sensitive unit direction of each row, by power iteration.

    .. math::

        d \leftarrow \frac{g}{\lVert g\rVert_2}, \qquad
        g = \nabla_r \mathrm{KL}\bigl(p(\cdot\mid x)\,\Vert\,
            p(\cdot\mid x + r)\bigr)\big|_{r = \xi d} \approx \xi H d,

    from a random unit :math:`d` per row (drawn from ``generator``), repeated
    ``power_iterations`` times. :math:`H` is the Hessian of the KL in r at
    r = 0 (its gradient there is 0), so d tends to H's top eigenvector. The
    rows are the last dimension of ``x``; the result is detached.
    Differences from the paper: none in the formula, but its ξ = 1e-6 (the
    default here) needs float64. In float32 the change of the logits at
    :math:`\xi d` is near the rounding level, so the gradient is mostly
    rounding error (the chapter measures it); about 1e-3 works there. A row
    whose gradient comes out exactly zero (as float32 can give at ξ = 1e-6)
    stays zero, and then :func:`vat_loss` is zero for it.
    """
    where = "vat_direction"
    _check_xy(where, model, x)
    xi = check_in_range(where, "xi", xi, low=0.0, low_inclusive=False)
    check_int(where, "power_iterations", power_iterations, low=1)
    check_generator(where, generator)
    x = x.detach()
    with torch.no_grad():
        log_p = F.log_softmax(model(x), dim=-1)
    return _power_iteration(model, x, log_p, xi, power_iterations, generator)


def _power_iteration(model, x, log_p, xi, iterations, generator):
    d = _unit_rows(torch.randn(x.shape, generator=generator, dtype=x.dtype))
    for _ in range(iterations):
        r = (xi * d).requires_grad_(True)
        (g,) = torch.autograd.grad(_kl_sum(log_p, model(x + r)), r)
        d = _unit_rows(g)  # d <- g / ||g||
    return d


def vat_loss(
    model: nn.Module,
    x: torch.Tensor,
    *,
    eps: float,
    xi: float = 1e-6,
    power_iterations: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The virtual adversarial loss (Miyato et al., 2018); needs no labels.

    .. math::

        \mathrm{LDS}(x) = \mathrm{KL}\bigl(p(\cdot\mid x)\,\big\Vert\,
            p(\cdot\mid x + \epsilon d)\bigr),

    averaged over the rows of ``x``, with d of :func:`vat_direction` (the
    approximate maximizer of the KL over :math:`\lVert r\rVert_2 \le
    \epsilon`). :math:`p(\cdot\mid x)` is a constant (no gradient flows
    through it), as in the paper. Unlike FGSM's, the perturbation is bounded
    in :math:`L^2`, with radius ε per row.
    """
    where = "vat_loss"
    _check_xy(where, model, x)
    eps = check_in_range(where, "eps", eps, low=0.0)
    xi = check_in_range(where, "xi", xi, low=0.0, low_inclusive=False)
    check_int(where, "power_iterations", power_iterations, low=1)
    check_generator(where, generator)
    x = x.detach()
    with torch.no_grad():
        log_p = F.log_softmax(model(x), dim=-1)
    d = _power_iteration(model, x, log_p, xi, power_iterations, generator)
    rows = log_p.numel() // log_p.shape[-1]
    # KL(p(x) || p(x + eps d)), mean over rows
    return _kl_sum(log_p, model(x + eps * d)) / rows
