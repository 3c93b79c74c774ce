"""dlcourse.regularization.early_stopping_l2 against closed forms and
gradient descent itself."""

import pytest
import torch

from dlcourse.regularization.early_stopping_l2 import (
    gd_filter,
    gd_quadratic_iterate,
    ridge_filter,
)


def _quadratic(d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    return a @ a.T / d + 0.05 * torch.eye(d, dtype=torch.float64), torch.randn(
        d, generator=g, dtype=torch.float64
    )


@pytest.mark.parametrize("steps", [0, 1, 7, 50])
def test_gd_closed_form_equals_the_iterates(steps):
    h, w_star = _quadratic()
    lr = 0.9 / torch.linalg.eigvalsh(h).max().item()
    w = torch.zeros_like(w_star)
    for _ in range(steps):
        w = w - lr * h @ (w - w_star)  # gradient of 1/2 (w - w*)^T H (w - w*)
    torch.testing.assert_close(
        gd_quadratic_iterate(h, w_star, lr=lr, steps=steps), w
    )
    # (I - (I - lr H)^tau) w*, with a matrix power
    eye = torch.eye(len(w_star), dtype=torch.float64)
    torch.testing.assert_close(
        w, (eye - torch.linalg.matrix_power(eye - lr * h, steps)) @ w_star
    )


def test_ridge_filter_gives_the_l2_minimizer():
    h, w_star = _quadratic()
    lam, q = torch.linalg.eigh(h)
    alpha = 0.3
    ridge = torch.linalg.solve(
        h + alpha * torch.eye(6, dtype=torch.float64), h @ w_star
    )
    torch.testing.assert_close(
        q @ (ridge_filter(lam, alpha=alpha) * (q.T @ w_star)), ridge
    )


@pytest.mark.parametrize("tau", [1, 5, 40, 1000])
def test_gd_filter_vs_ridge_filter_at_alpha_one_over_tau_lr(tau):
    lr = 0.5
    lam = torch.linspace(
        0, 1 / lr, 20001, dtype=torch.float64
    )  # 0 <= lr * lambda <= 1
    gap = gd_filter(lam, lr=lr, steps=tau) - ridge_filter(
        lam, alpha=1 / (tau * lr)
    )
    x = (
        tau * lr * lam
    )  # in the variable x = lambda / alpha the gap is 1/(1+x) - (1 - x/tau)^tau
    torch.testing.assert_close(gap, 1 / (1 + x) - (1 - x / tau) ** tau)
    assert gap.min() >= -1e-15  # gradient descent shrinks less than ridge
    assert gap.max() <= 0.5 + 1e-12
    assert (
        gap.max() >= 0.2036
    )  # never below the tau -> inf limit, max_x 1/(1+x) - e^-x
    assert (
        gap[1] <= x[1] ** 2
    )  # small lambda: the filters agree to second order in x
    torch.testing.assert_close(
        gap[-1], 1 / (1 + x[-1])
    )  # lr * lambda = 1: GD filter is 1


def test_argument_checks():
    lam = torch.tensor([0.0, 1.0])
    with pytest.raises(
        ValueError, match=r"gd_filter: 'lr' must be > 0; got 0\."
    ):
        gd_filter(lam, lr=0, steps=1)
    with pytest.raises(
        ValueError, match=r"gd_filter: 'steps' must be >= 0; got -1\."
    ):
        gd_filter(lam, lr=0.1, steps=-1)
    with pytest.raises(
        ValueError, match=r"ridge_filter: 'alpha' must be > 0; got 0\."
    ):
        ridge_filter(lam, alpha=0)
    with pytest.raises(
        ValueError,
        match=r"ridge_filter: 'eigenvalues' must be >= 0; got min -1\.",
    ):
        ridge_filter(torch.tensor([-1.0, 1.0]), alpha=1.0)
    with pytest.raises(
        ValueError,
        match=r"gd_quadratic_iterate: 'hessian' must have shape \(2, 2\)",
    ):
        gd_quadratic_iterate(torch.eye(3), torch.ones(2), lr=0.1, steps=1)
    with pytest.raises(ValueError, match=r"'hessian' must be symmetric"):
        gd_quadratic_iterate(
            torch.tensor([[1.0, 1.0], [0.0, 1.0]]),
            torch.ones(2),
            lr=0.1,
            steps=1,
        )
    with pytest.raises(
        TypeError,
        match=r"gd_filter: 'eigenvalues' must be a torch.Tensor; got list\.",
    ):
        gd_filter([1.0], lr=0.1, steps=1)
