r"""Cyclic coordinate descent with exact line search.

Book: Part II, chapter 7, "Optimization strategies and meta-algorithms".

Each update minimizes the objective exactly along one coordinate, the others
fixed, so the objective never increases (the functions record it after
every single-coordinate update; the tests check the decrease and the
solutions against ``torch.linalg.solve`` and scikit-learn's ``Lasso``).
"""

from __future__ import annotations

import torch

from dlcourse._validation import check_in_range, check_int, check_type

__all__ = ["quadratic_coordinate_descent", "lasso_coordinate_descent"]


def _check_start(where, x0, n, like):
    if x0 is None:
        return torch.zeros(n, dtype=like.dtype)
    check_type(where, "x0", x0, torch.Tensor, "a torch.Tensor or None")
    if x0.shape != (n,):
        raise ValueError(
            f"{where}: 'x0' must have shape ({n},); got {tuple(x0.shape)}."
        )
    return x0.detach().clone().to(like.dtype)


def quadratic_coordinate_descent(
    A: torch.Tensor,
    b: torch.Tensor,
    *,
    sweeps: int,
    x0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[float]]:
    r"""Minimize :math:`f(x) = \tfrac12 x^\top A x - b^\top x` coordinate by
    coordinate, for a symmetric positive-definite :math:`A`.

    The exact minimizer along coordinate :math:`i` is
    :math:`x_i = (b_i - \sum_{j\ne i} A_{ij} x_j)/A_{ii}`: a sweep over
    :math:`i = 1..n` is one Gauss–Seidel iteration. Returns the final
    :math:`x` and :math:`f` at the start and after every coordinate update
    (``1 + sweeps * n`` values).
    """
    where = "quadratic_coordinate_descent"
    check_type(where, "A", A, torch.Tensor, "a torch.Tensor")
    check_type(where, "b", b, torch.Tensor, "a torch.Tensor")
    n = b.shape[0] if b.dim() == 1 else -1
    if b.dim() != 1 or A.shape != (n, n):
        raise ValueError(
            f"{where}: 'A' must be (n, n) and 'b' (n,); got "
            f"{tuple(A.shape)} and {tuple(b.shape)}."
        )
    if not torch.allclose(A, A.T) or (torch.diagonal(A) <= 0).any():
        raise ValueError(
            f"{where}: 'A' must be symmetric with a positive diagonal "
            "(positive definite for convergence)."
        )
    check_int(where, "sweeps", sweeps, low=1)
    x = _check_start(where, x0, n, b)

    def f(x):
        return float(0.5 * x @ A @ x - b @ x)

    history = [f(x)]
    for _ in range(sweeps):
        for i in range(n):
            # x_i = (b_i - sum_{j != i} A_ij x_j) / A_ii
            x[i] = (b[i] - A[i] @ x + A[i, i] * x[i]) / A[i, i]
            history.append(f(x))
    return x, history


def lasso_coordinate_descent(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    alpha: float,
    sweeps: int,
    x0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[float]]:
    r"""The lasso by cyclic coordinate descent (Friedman et al., 2010):
    minimize

    .. math::

        L(w) = \frac{1}{2n}\lVert y - Xw\rVert^2 + \alpha\lVert w\rVert_1

    (scikit-learn's ``Lasso`` objective, no intercept). Along coordinate
    :math:`j` the exact minimizer is a soft-threshold,

    .. math::

        w_j = \frac{S(\rho_j,\ n\alpha)}{\lVert x_j\rVert^2}, \qquad
        \rho_j = x_j^\top (y - Xw + x_j w_j), \qquad
        S(z, t) = \operatorname{sign}(z)\max(|z| - t, 0),

    so coordinates land exactly on zero. Returns :math:`w` and :math:`L` at
    the start and after every coordinate update.
    """
    where = "lasso_coordinate_descent"
    check_type(where, "X", X, torch.Tensor, "a torch.Tensor")
    check_type(where, "y", y, torch.Tensor, "a torch.Tensor")
    if X.dim() != 2 or y.shape != (X.shape[0],):
        raise ValueError(
            f"{where}: 'X' must be (n, d) and 'y' (n,); got "
            f"{tuple(X.shape)} and {tuple(y.shape)}."
        )
    check_in_range(where, "alpha", alpha, low=0.0)
    check_int(where, "sweeps", sweeps, low=1)
    n, d = X.shape
    col_sq = (X * X).sum(dim=0)
    if (col_sq == 0).any():
        raise ValueError(f"{where}: 'X' must have no all-zero column.")
    w = _check_start(where, x0, d, X)
    r = y - X @ w  # the residual, kept up to date

    def loss():
        return float((r @ r) / (2 * n) + alpha * w.abs().sum())

    history = [loss()]
    for _ in range(sweeps):
        for j in range(d):
            rho = X[:, j] @ r + col_sq[j] * w[j]
            # soft-threshold at n * alpha, divided by ||x_j||^2
            new = torch.sign(rho) * torch.clamp(rho.abs() - n * alpha, min=0)
            new = new / col_sq[j]
            r += X[:, j] * (w[j] - new)
            w[j] = new
            history.append(loss())
    return w, history
