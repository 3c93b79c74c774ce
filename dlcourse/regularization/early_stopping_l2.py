r"""Early stopping as L2 regularization on a quadratic: two spectral filters.

Book: Part I, chapter 8, "Early stopping".

On :math:`J(w) = \tfrac12 (w - w^*)^\top H (w - w^*)` with
:math:`H = Q\Lambda Q^\top`, :math:`\tau` steps of gradient descent from zero
keep the share :math:`1 - (1 - \epsilon\lambda_i)^\tau` of each eigen-direction
of :math:`w^*` (:func:`gd_filter`), the :math:`L^2`-penalized minimizer the
share :math:`\lambda_i / (\lambda_i + \alpha)` (:func:`ridge_filter`); the two
are close for :math:`\alpha \approx 1/(\tau\epsilon)`.
"""

from __future__ import annotations

import torch

from dlcourse._validation import check_in_range, check_int, check_type

__all__ = ["gd_filter", "ridge_filter", "gd_quadratic_iterate"]


def gd_filter(
    eigenvalues: torch.Tensor, *, lr: float, steps: int
) -> torch.Tensor:
    r"""Share of each eigen-direction of :math:`w^*` that gradient descent has
    reached.

    On :math:`J(w) = \tfrac12 (w - w^*)^\top H (w - w^*)` from :math:`w_0 = 0`,

    .. math::

        w_\tau = Q\,\mathrm{diag}\bigl(1 - (1 - \epsilon\lambda_i)^\tau\bigr)
        \,Q^\top w^* ;

    this returns :math:`1 - (1 - \epsilon\lambda_i)^\tau`.
    """
    check_type(
        "gd_filter", "eigenvalues", eigenvalues, torch.Tensor, "a torch.Tensor"
    )
    lr = check_in_range("gd_filter", "lr", lr, low=0.0, low_inclusive=False)
    check_int("gd_filter", "steps", steps, low=0)
    # 1 - (1 - eps * lambda_i)^tau
    return 1.0 - (1.0 - lr * eigenvalues) ** steps


def ridge_filter(eigenvalues: torch.Tensor, *, alpha: float) -> torch.Tensor:
    r"""The same share for the :math:`L^2`-regularized minimizer:
    :math:`\lambda_i / (\lambda_i + \alpha)`.

    .. math::

        \tilde w = (H + \alpha I)^{-1} H w^*
        = Q\,\mathrm{diag}\bigl(\lambda_i/(\lambda_i+\alpha)\bigr)\,Q^\top w^* .
    """
    check_type(
        "ridge_filter",
        "eigenvalues",
        eigenvalues,
        torch.Tensor,
        "a torch.Tensor",
    )
    alpha = check_in_range(
        "ridge_filter", "alpha", alpha, low=0.0, low_inclusive=False
    )
    if (eigenvalues < 0).any():
        raise ValueError(
            f"ridge_filter: 'eigenvalues' must be >= 0; got min "
            f"{eigenvalues.min().item():g}."
        )
    # lambda_i / (lambda_i + alpha)
    return eigenvalues / (eigenvalues + alpha)


def gd_quadratic_iterate(
    hessian: torch.Tensor, w_star: torch.Tensor, *, lr: float, steps: int
) -> torch.Tensor:
    r"""Closed form of ``steps`` gradient-descent steps on the quadratic, from
    zero.

    .. math:: w_\tau = \bigl(I - (I - \epsilon H)^\tau\bigr)\, w^*
              = Q\,\mathrm{diag}\bigl(1 - (1-\epsilon\lambda_i)^\tau\bigr)
              Q^\top w^* .
    """
    check_type(
        "gd_quadratic_iterate",
        "hessian",
        hessian,
        torch.Tensor,
        "a torch.Tensor",
    )
    check_type(
        "gd_quadratic_iterate", "w_star", w_star, torch.Tensor, "a torch.Tensor"
    )
    d = w_star.shape[0]
    if w_star.ndim != 1 or tuple(hessian.shape) != (d, d):
        raise ValueError(
            f"gd_quadratic_iterate: 'hessian' must have shape ({d}, {d}) for a "
            f"vector 'w_star' of length {d}; got {tuple(hessian.shape)} and "
            f"{tuple(w_star.shape)}."
        )
    if not torch.allclose(hessian, hessian.T):
        raise ValueError(
            "gd_quadratic_iterate: 'hessian' must be symmetric; "
            "got a non-symmetric matrix."
        )
    eigenvalues, q = torch.linalg.eigh(hessian)
    return q @ (gd_filter(eigenvalues, lr=lr, steps=steps) * (q.T @ w_star))
