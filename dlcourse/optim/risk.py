r"""Risk, surrogate losses, minibatch gradient noise and convexity checks.

Book: Part II, chapter 1, "Pure optimization and convexity".

Learning minimizes the empirical risk :math:`\hat J(\theta) = \frac1N\sum_i
L(f(x_i;\theta), y_i)` as a stand-in for the true risk
:math:`J^*(\theta) = \mathbb{E}_{(x,y)\sim p}\,L(f(x;\theta), y)`, with a smooth
surrogate (log-loss) in place of the 0-1 loss, and follows minibatch gradients
whose noise shrinks like :math:`1/\sqrt m`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from dlcourse._validation import (
    _fail,
    check_choice,
    check_in_range,
    check_int,
    check_type,
)
from dlcourse.optim.diagnostics import _check_data, hessian_eigenvalues

__all__ = [
    "zero_one_loss",
    "log_loss",
    "empirical_risk",
    "linear_gaussian_true_risk",
    "minibatch_gradient_noise",
    "gradient_variance",
    "minibatch_noise_std",
    "jensen_gaps",
    "convexity_check",
    "hessian_is_psd",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_scores(where, scores, y):
    check_type(where, "scores", scores, torch.Tensor, "a torch.Tensor")
    check_type(where, "y", y, torch.Tensor, "a torch.Tensor")
    if scores.ndim not in (1, 2) or scores.shape[0] != y.shape[0]:
        _fail(
            where,
            "scores",
            f"of shape (n,) or (n, k) with n = len(y) = {y.shape[0]}",
            tuple(scores.shape),
        )


def zero_one_loss(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Fraction of errors, :math:`\frac1n\sum_i \mathbb{1}[\hat y_i \ne y_i]`.

    ``scores`` of shape (n,) are binary logits (predict 1 when > 0, labels 0/1);
    of shape (n, k) they are class scores (predict the arg-max).
    """
    _check_scores("zero_one_loss", scores, y)
    pred = (scores > 0).long() if scores.ndim == 1 else scores.argmax(dim=1)
    return (pred != y.long()).float().mean()


def log_loss(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The surrogate :math:`-\frac1n\sum_i \log p_\theta(y_i \mid x_i)`.

    That is the cross-entropy. Binary logits (n,): :math:`\log(1 + e^{-s})`
    for :math:`y = 1` and :math:`\log(1 + e^{s})` for :math:`y = 0`; class
    scores (n, k): softmax cross-entropy.
    """
    _check_scores("log_loss", scores, y)
    if scores.ndim == 1:
        return F.binary_cross_entropy_with_logits(scores, y.to(scores.dtype))
    return F.cross_entropy(scores, y)


_RISKS = {
    "log": log_loss,
    "zero_one": zero_one_loss,
    "squared": lambda s, y: F.mse_loss(s.reshape(y.shape), y),
}


def empirical_risk(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: str = "log"
) -> float:
    r""":math:`\hat J = \frac1n\sum_i L(f(x_i), y_i)`.

    ``loss`` is one of "log", "zero_one", "squared".
    """
    _check_data("empirical_risk", model, x, y)
    check_choice("empirical_risk", "loss", loss, tuple(_RISKS))
    with torch.no_grad():
        return _RISKS[loss](model(x), y).item()


def linear_gaussian_true_risk(
    w: torch.Tensor, w_star: torch.Tensor, *, noise_std: float
) -> torch.Tensor:
    r"""True squared-error risk of :math:`x \mapsto w^\top x` for Gaussian x.

    For inputs :math:`x \sim N(0, I)` and targets
    :math:`y = w_*^\top x + \varepsilon`,
    :math:`\varepsilon \sim N(0, \sigma^2)`:

    .. math:: J^*(w) = \mathbb{E}(y - w^\top x)^2
              = \sigma^2 + \lVert w - w_*\rVert_2^2 .
    """
    check_type(
        "linear_gaussian_true_risk", "w", w, torch.Tensor, "a torch.Tensor"
    )
    check_type(
        "linear_gaussian_true_risk",
        "w_star",
        w_star,
        torch.Tensor,
        "a torch.Tensor",
    )
    if w.shape != w_star.shape:
        _fail(
            "linear_gaussian_true_risk",
            "w",
            f"of the shape of w_star {tuple(w_star.shape)}",
            tuple(w.shape),
        )
    s = check_in_range(
        "linear_gaussian_true_risk", "noise_std", noise_std, low=0.0
    )
    return s**2 + (w - w_star).pow(2).sum()


def _flat_grad(model, x, y, loss_fn) -> torch.Tensor:
    params = list(model.parameters())
    gs = torch.autograd.grad(loss_fn(model(x), y), params)
    return torch.cat([g.reshape(-1) for g in gs])


def minibatch_gradient_noise(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    num_batches: int,
    generator: torch.Generator,
    loss_fn: LossFn = F.cross_entropy,
) -> dict:
    r"""Sample minibatch gradients; measure how far they are from the full one.

    Draws ``num_batches`` batches of ``batch_size`` distinct examples (without
    replacement within a batch) and returns ``full_grad`` :math:`g`, the
    ``deviation_norms`` :math:`\lVert g_B - g\rVert_2`, ``along_grad`` (the
    component of :math:`g_B - g` along :math:`g/\lVert g\rVert`) and
    ``std_error``, the root-mean-square deviation, an estimate of
    :math:`\sqrt{\mathbb{E}\lVert g_B - g\rVert^2}`
    (see :func:`minibatch_noise_std`).
    """
    _check_data("minibatch_gradient_noise", model, x, y)
    n = x.shape[0]
    m = check_int("minibatch_gradient_noise", "batch_size", batch_size, low=1)
    if m > n:
        _fail(
            "minibatch_gradient_noise",
            "batch_size",
            f"<= the number of examples {n}",
            m,
        )
    k = check_int("minibatch_gradient_noise", "num_batches", num_batches, low=1)
    check_type(
        "minibatch_gradient_noise",
        "generator",
        generator,
        torch.Generator,
        "a torch.Generator",
    )
    g = _flat_grad(model, x, y, loss_fn)
    unit = g / g.norm().clamp(min=1e-30)
    devs = []
    for _ in range(k):
        idx = torch.randperm(n, generator=generator)[:m]
        devs.append(_flat_grad(model, x[idx], y[idx], loss_fn) - g)  # g_B - g
    dev = torch.stack(devs)  # (k, P)
    norms = dev.norm(dim=1)
    return {
        "full_grad": g,
        "deviation_norms": norms,
        "along_grad": dev @ unit,
        "std_error": norms.pow(2).mean().sqrt().item(),
    }


def gradient_variance(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: LossFn = F.cross_entropy,
    chunk_size: int = 500,
) -> float:
    r"""Total variance :math:`\operatorname{tr}\Sigma` of per-example gradients.

    .. math:: \operatorname{tr}\Sigma
              = \frac1N\sum_{i=1}^N \lVert g_i - g\rVert_2^2
              = \frac1N\sum_i \lVert g_i\rVert^2 - \lVert g\rVert^2,
              \qquad g = \frac1N\sum_i g_i,

    with :math:`g_i` the gradient of example :math:`i` alone
    (``torch.func.vmap`` over examples, ``chunk_size`` at a time).
    """
    _check_data("gradient_variance", model, x, y)
    check_int("gradient_variance", "chunk_size", chunk_size, low=1)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def one(p, xi, yi):
        return loss_fn(functional_call(model, p, (xi[None],)), yi[None])

    per_example = vmap(grad(one), in_dims=(None, 0, 0))
    total, sq = None, 0.0
    for s in range(0, x.shape[0], chunk_size):
        gs = per_example(params, x[s : s + chunk_size], y[s : s + chunk_size])
        flat = torch.cat(
            [gs[k].reshape(gs[k].shape[0], -1) for k in params], dim=1
        )
        sq += flat.pow(2).sum().item()
        total = flat.sum(0) if total is None else total + flat.sum(0)
    n = x.shape[0]
    return sq / n - (total / n).pow(2).sum().item()


def minibatch_noise_std(
    variance: float, *, n: int, batch_size: int, replacement: bool = False
) -> float:
    r"""Exact :math:`\sqrt{\mathbb{E}\lVert g_B - g\rVert^2}` for a batch of m.

    .. math:: \mathbb{E}\lVert g_B - g\rVert^2
              = \frac{\operatorname{tr}\Sigma}{m} \cdot \frac{N - m}{N - 1}

    without replacement (the finite-population factor);
    :math:`\operatorname{tr}\Sigma/m` with replacement. ``variance`` is
    :math:`\operatorname{tr}\Sigma` from :func:`gradient_variance`.
    """
    v = check_in_range("minibatch_noise_std", "variance", variance, low=0.0)
    n = check_int("minibatch_noise_std", "n", n, low=2)
    m = check_int("minibatch_noise_std", "batch_size", batch_size, low=1)
    check_type(
        "minibatch_noise_std", "replacement", replacement, bool, "a bool"
    )
    if not replacement and m > n:
        _fail(
            "minibatch_noise_std",
            "batch_size",
            f"<= n = {n} without replacement",
            m,
        )
    fpc = 1.0 if replacement else (n - m) / (n - 1)
    return (v / m * fpc) ** 0.5


def jensen_gaps(
    f: Callable[[torch.Tensor], torch.Tensor],
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    alphas: torch.Tensor,
) -> torch.Tensor:
    r"""Jensen gaps along segments: positive entries disprove convexity.

    .. math:: \Delta(\alpha) = f(\alpha a + (1-\alpha) b)
              - \alpha f(a) - (1-\alpha) f(b)

    ``a``, ``b``: (k, d) endpoints; ``alphas``: (r,) in [0, 1]. Returns
    (k, r). ``f`` maps one point (d,) to a scalar. A convex ``f`` has every
    gap :math:`\le 0`.
    """
    if not callable(f):
        raise TypeError(
            f"jensen_gaps: 'f' must be a callable; got {type(f).__name__}."
        )
    for name, t in (("a", a), ("b", b), ("alphas", alphas)):
        check_type("jensen_gaps", name, t, torch.Tensor, "a torch.Tensor")
    if a.ndim != 2 or a.shape != b.shape:
        _fail(
            "jensen_gaps",
            "b",
            f"of the shape of a, (k, d) = {tuple(a.shape)}",
            tuple(b.shape),
        )
    if alphas.ndim != 1 or (alphas < 0).any() or (alphas > 1).any():
        _fail(
            "jensen_gaps",
            "alphas",
            "a 1-D tensor of values in [0, 1]",
            alphas.tolist(),
        )
    gaps = torch.empty(a.shape[0], alphas.shape[0], dtype=a.dtype)
    with torch.no_grad():
        for i in range(a.shape[0]):
            fa, fb = f(a[i]), f(b[i])
            for j, t in enumerate(alphas.tolist()):
                gaps[i, j] = (
                    f(t * a[i] + (1 - t) * b[i]) - t * fa - (1 - t) * fb
                )
    return gaps


def convexity_check(
    f: Callable[[torch.Tensor], torch.Tensor],
    center: torch.Tensor,
    *,
    radius: float,
    num_segments: int,
    generator: torch.Generator,
    num_alphas: int = 9,
    tol: float = 1e-8,
) -> dict:
    r"""Search for a violation of convexity of ``f`` around ``center``.

    Endpoints :math:`a, b = c + r z` with :math:`z \sim N(0, I)`; the Jensen
    gaps at ``num_alphas`` interior points of each segment. ``convex`` is
    False when some gap exceeds ``tol`` (a proof of non-convexity); True only
    means none was found.
    """
    check_type(
        "convexity_check", "center", center, torch.Tensor, "a torch.Tensor"
    )
    r = check_in_range(
        "convexity_check", "radius", radius, low=0.0, low_inclusive=False
    )
    k = check_int("convexity_check", "num_segments", num_segments, low=1)
    q = check_int("convexity_check", "num_alphas", num_alphas, low=1)
    tol = check_in_range("convexity_check", "tol", tol, low=0.0)
    check_type(
        "convexity_check",
        "generator",
        generator,
        torch.Generator,
        "a torch.Generator",
    )
    shape = (k, center.numel())
    a = center.reshape(1, -1) + r * torch.randn(
        shape, generator=generator, dtype=center.dtype
    )
    b = center.reshape(1, -1) + r * torch.randn(
        shape, generator=generator, dtype=center.dtype
    )
    alphas = torch.arange(1, q + 1, dtype=center.dtype) / (q + 1)
    gaps = jensen_gaps(f, a, b, alphas=alphas)
    return {
        "max_gap": gaps.max().item(),
        "violation_fraction": (gaps > tol).any(dim=1).float().mean().item(),
        "convex": bool(gaps.max().item() <= tol),
    }


def hessian_is_psd(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tol: float = 1e-6,
) -> bool:
    r"""Whether the Hessian of ``f`` at ``x`` is positive semidefinite.

    Up to rounding: the test is

    .. math:: \lambda_{\min}(\nabla^2 f(x))
              \ge -\text{tol}\cdot\max(1, \lvert\lambda\rvert_{\max}).

    A twice-differentiable ``f`` is convex iff its Hessian is positive
    semidefinite everywhere; at a critical point, a PSD Hessian is the
    second-order (necessary) condition of a local minimum.
    """
    if not callable(f):
        raise TypeError(
            f"hessian_is_psd: 'f' must be a callable; got {type(f).__name__}."
        )
    check_type("hessian_is_psd", "x", x, torch.Tensor, "a torch.Tensor")
    if x.ndim != 1:
        _fail("hessian_is_psd", "x", "a 1-D tensor", tuple(x.shape))
    tol = check_in_range("hessian_is_psd", "tol", tol, low=0.0)
    eig = hessian_eigenvalues(torch.autograd.functional.hessian(f, x.detach()))
    return bool(eig.min() >= -tol * max(1.0, eig.abs().max().item()))
