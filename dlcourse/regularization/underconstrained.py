r"""Under-constrained problems: ridge, the pseudo-inverse, separable logistic.

Book: Part I, chapter 3, "Regularization and under-constrained problems".

Least squares needs :math:`X^\top X` to be invertible, which fails as soon as
the features are linearly dependent (more features than examples, duplicated
or constant columns). Ridge regression replaces it by
:math:`X^\top X + \alpha I`, invertible for every :math:`\alpha > 0`; as
:math:`\alpha \to 0^+` its solution tends to the minimum-norm solution
:math:`X^+ y` given by the Moore–Penrose pseudo-inverse. Logistic regression
on linearly separable data has no minimizer at all: gradient descent drives
:math:`\lVert w\rVert` to infinity unless an :math:`L^2` penalty is added.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlcourse._validation import _fail, check_in_range, check_int, check_type

__all__ = [
    "ridge",
    "regularized_pinv",
    "logistic_loss",
    "logistic_grad",
    "train_logistic",
]


def _check_x(where: str, x) -> None:
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    if not x.is_floating_point():
        _fail(where, "x", "a floating-point tensor", x.dtype, exc=TypeError)
    if x.ndim != 2:
        _fail(where, "x", "a matrix of shape (n, p)", tuple(x.shape))


def _check_y(where: str, x, y, *, binary: bool) -> None:
    check_type(where, "y", y, torch.Tensor, "a torch.Tensor")
    if y.ndim not in ((1,) if binary else (1, 2)) or y.shape[0] != x.shape[0]:
        shape = "(n,)" if binary else "(n,) or (n, k)"
        _fail(
            where,
            "y",
            f"of shape {shape} with n = {x.shape[0]}",
            tuple(y.shape),
        )
    if binary and not bool(((y == 0) | (y == 1)).all()):
        _fail(where, "y", "labels in {0, 1}", sorted(set(y.tolist()))[:5])


def _alpha(where: str, alpha) -> float:
    return check_in_range(where, "alpha", alpha, low=0.0, low_inclusive=False)


def ridge(x: torch.Tensor, y: torch.Tensor, *, alpha: float) -> torch.Tensor:
    r"""Ridge regression (Hoerl & Kennard, 1970): the minimizer of
    :math:`\lVert Xw - y\rVert^2 + \alpha\lVert w\rVert^2`,

    .. math::

        w_\alpha = (X^\top X + \alpha I)^{-1} X^\top y ,

    computed by solving the linear system (never forming the inverse). For
    :math:`\alpha > 0` the matrix is positive definite: its eigenvalues are
    those of :math:`X^\top X` plus :math:`\alpha`, so at least
    :math:`\alpha`.
    ``y`` of shape ``(n, k)`` fits ``k`` targets at once. No intercept: centre
    the data or append a column of ones (which is then penalized too).
    """
    _check_x("ridge", x)
    _check_y("ridge", x, y, binary=False)
    a = _alpha("ridge", alpha)
    p = x.shape[1]
    # (p, p), eigenvalues >= alpha
    gram = x.T @ x + a * torch.eye(p, dtype=x.dtype)
    return torch.linalg.solve(gram, x.T @ y.to(x.dtype))


def regularized_pinv(x: torch.Tensor, *, alpha: float) -> torch.Tensor:
    r"""The matrix :math:`(X^\top X + \alpha I)^{-1} X^\top`, shape ``(p, n)``.

    .. math::

        X^+ = \lim_{\alpha \to 0^+} (X^\top X + \alpha I)^{-1} X^\top ,

    the Moore–Penrose pseudo-inverse (``torch.linalg.pinv``). With the singular
    values :math:`\sigma_i` of :math:`X`, this matrix scales the :math:`i`-th
    singular direction by :math:`\sigma_i / (\sigma_i^2 + \alpha)` instead of
    :math:`1/\sigma_i`, so its distance to :math:`X^+` is of order
    :math:`\alpha / \sigma_\min^3` for small :math:`\alpha`.
    """
    _check_x("regularized_pinv", x)
    a = _alpha("regularized_pinv", alpha)
    p = x.shape[1]
    return torch.linalg.solve(x.T @ x + a * torch.eye(p, dtype=x.dtype), x.T)


def _check_logistic(where: str, w, x, y, l2) -> float:
    _check_x(where, x)
    _check_y(where, x, y, binary=True)
    check_type(where, "w", w, torch.Tensor, "a torch.Tensor")
    if w.shape != (x.shape[1],):
        _fail(where, "w", f"of shape ({x.shape[1]},)", tuple(w.shape))
    return check_in_range(where, "l2", l2, low=0.0)


def logistic_loss(
    w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, l2: float = 0.0
):
    r"""Mean logistic loss plus an optional :math:`L^2` penalty.

    Labels :math:`y_i \in \{0, 1\}`:

    .. math::

        J(w) = \frac1n \sum_i \log\bigl(1 + e^{-s_i x_i^\top w}\bigr)
        + \frac{\lambda}{2}\lVert w\rVert^2, \qquad s_i = 2y_i - 1 .

    Computed with ``softplus`` so it stays accurate when the margins are large.
    """
    lam = _check_logistic("logistic_loss", w, x, y, l2)
    return _loss(w, x, y.to(x.dtype), lam)


def _loss(w, x, y, lam):
    s = 2 * y - 1  # labels as -1 / +1
    return F.softplus(-s * (x @ w)).mean() + 0.5 * lam * w.pow(2).sum()


def logistic_grad(
    w: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, l2: float = 0.0
):
    r"""Gradient of :func:`logistic_loss`:

    .. math::

        \nabla J(w) = \frac1n X^\top\bigl(\sigma(Xw) - y\bigr) + \lambda w .
    """
    lam = _check_logistic("logistic_grad", w, x, y, l2)
    return _grad(w, x, y.to(x.dtype), lam)


def _grad(w, x, y, lam):
    # X^T (sigma(Xw) - y) / n + lambda w
    return x.T @ (torch.sigmoid(x @ w) - y) / x.shape[0] + lam * w


def train_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    steps: int,
    l2: float = 0.0,
    log_every: int = 1,
    w0: torch.Tensor | None = None,
) -> dict:
    r"""Full-batch gradient descent on :func:`logistic_loss` from ``w0``.

    .. math::  w_{t+1} = w_t - \eta\,\nabla J(w_t)

    ``w0`` defaults to zeros. Returns ``{"w": final weights, "step": [...],
    "norm": [...], "loss": [...], "objective": [...]}``, logged at step 0 and
    every ``log_every`` steps; ``loss`` is the data term, ``objective``
    includes the penalty. Passing a previous run's ``"w"`` as ``w0`` continues
    that run (steps count from 0 again). On separable data with ``l2 = 0`` the
    norm grows like :math:`\log t` (Soudry et al., 2018).
    """
    where = "train_logistic"
    _check_x(where, x)
    _check_y(where, x, y, binary=True)
    lr = check_in_range(where, "lr", lr, low=0.0, low_inclusive=False)
    steps = check_int(where, "steps", steps, low=1)
    lam = check_in_range(where, "l2", l2, low=0.0)
    log_every = check_int(where, "log_every", log_every, low=1)
    if w0 is None:
        w = torch.zeros(x.shape[1], dtype=x.dtype)
    else:
        check_type(where, "w0", w0, torch.Tensor, "a torch.Tensor or None")
        if w0.shape != (x.shape[1],):
            _fail(where, "w0", f"of shape ({x.shape[1]},)", tuple(w0.shape))
        w = w0.detach().to(x.dtype).clone()
    y = y.to(x.dtype)
    history: dict = {"step": [], "norm": [], "loss": [], "objective": []}
    for t in range(steps + 1):
        if t % log_every == 0 or t == steps:
            loss = _loss(w, x, y, 0.0).item()
            history["step"].append(t)
            history["norm"].append(w.norm().item())
            history["loss"].append(loss)
            history["objective"].append(
                loss + 0.5 * lam * w.pow(2).sum().item()
            )
        if t < steps:
            w = w - lr * _grad(w, x, y, lam)
    history["w"] = w
    return history
