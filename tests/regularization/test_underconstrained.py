"""dlcourse.regularization.underconstrained against torch.linalg, closed forms
and autograd."""

import math

import pytest
import torch

from dlcourse.regularization.underconstrained import (
    logistic_grad,
    logistic_loss,
    regularized_pinv,
    ridge,
    train_logistic,
)


def _randn(*shape, seed=0):
    return torch.randn(
        *shape,
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64,
    )


def test_ridge_solves_the_normal_equations_and_minimizes_the_objective():
    x, y = _randn(30, 5), _randn(30, seed=1)
    alpha = 0.7
    w = ridge(x, y, alpha=alpha)
    expected = (
        torch.linalg.inv(x.T @ x + alpha * torch.eye(5, dtype=torch.float64))
        @ x.T
        @ y
    )
    torch.testing.assert_close(w, expected)
    # zero gradient of ||Xw - y||^2 + alpha ||w||^2, and any perturbation is
    # worse
    torch.testing.assert_close(
        2 * x.T @ (x @ w - y) + 2 * alpha * w,
        torch.zeros(5, dtype=torch.float64),
    )

    def obj(v):
        return (x @ v - y).pow(2).sum() + alpha * v.pow(2).sum()

    for d in _randn(20, 5, seed=2) * 1e-2:
        assert obj(w + d) > obj(w)


def test_ridge_fits_several_targets_and_matches_augmented_least_squares():
    # ridge = least squares on [X; sqrt(alpha) I], [y; 0]
    x, y = (
        _randn(12, 20, seed=3),
        _randn(12, 3, seed=4),
    )  # more features than examples
    alpha = 0.3
    x_aug = torch.cat(
        [x, math.sqrt(alpha) * torch.eye(20, dtype=torch.float64)]
    )
    y_aug = torch.cat([y, torch.zeros(20, 3, dtype=torch.float64)])
    torch.testing.assert_close(
        ridge(x, y, alpha=alpha), torch.linalg.lstsq(x_aug, y_aug).solution
    )


def test_small_alpha_tends_to_the_minimum_norm_least_squares_solution():
    x = _randn(15, 40, seed=5)  # X^T X is singular: rank 15 < 40
    y = _randn(15, seed=6)
    min_norm = torch.linalg.lstsq(x, y[:, None], driver="gelsd").solution[:, 0]
    torch.testing.assert_close(min_norm, torch.linalg.pinv(x) @ y)
    errors = [
        (ridge(x, y, alpha=a) - min_norm).norm().item()
        for a in (1e-1, 1e-3, 1e-5)
    ]
    assert all(
        e2 < e1 / 50 for e1, e2 in zip(errors, errors[1:])
    )  # error of order alpha
    torch.testing.assert_close(
        ridge(x, y, alpha=1e-6), min_norm, atol=1e-6, rtol=0
    )


def test_regularized_pinv_tends_to_torch_pinv_also_with_duplicated_columns():
    x = _randn(25, 6, seed=7)
    x = torch.cat([x, x[:, :2]], dim=1)  # duplicated columns: rank 6 of 8
    assert torch.linalg.matrix_rank(x).item() == 6
    pinv = torch.linalg.pinv(x)
    errs = [
        (regularized_pinv(x, alpha=a) - pinv).abs().max().item()
        for a in (1e-2, 1e-4, 1e-6)
    ]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-6
    # and exactly the matrix that maps y to ridge(x, y)
    y = _randn(25, seed=8)
    torch.testing.assert_close(
        regularized_pinv(x, alpha=0.5) @ y, ridge(x, y, alpha=0.5)
    )


def _separable(n=40, p=6, seed=9):
    x = _randn(n, p, seed=seed)
    w_true = _randn(p, seed=seed + 1)
    y = (x @ w_true > 0).to(torch.float64)
    return x, y


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_logistic_loss_and_gradient_against_autograd(l2):
    x, y = _separable()
    w = _randn(6, seed=11).requires_grad_()
    loss = logistic_loss(w, x, y, l2=l2)
    s = 2 * y - 1
    direct = (
        torch.log1p(torch.exp(-s * (x @ w))).mean() + 0.5 * l2 * w.pow(2).sum()
    )
    torch.testing.assert_close(loss, direct)
    (auto,) = torch.autograd.grad(loss, w)
    torch.testing.assert_close(logistic_grad(w.detach(), x, y, l2=l2), auto)
    # and against PyTorch's own binary cross-entropy
    bce = torch.nn.functional.binary_cross_entropy_with_logits(x @ w, y)
    torch.testing.assert_close(logistic_loss(w, x, y), bce)


def test_gd_on_separable_data_grows_the_norm_and_l2_bounds_it():
    x, y = _separable()
    free = train_logistic(x, y, lr=1.0, steps=4000, log_every=100)
    norms = free["norm"]
    assert all(b > a for a, b in zip(norms, norms[1:]))  # strictly increasing
    assert free["loss"][-1] < 0.1 * free["loss"][1]  # loss -> 0 like 1/t
    assert ((x @ free["w"] > 0).to(torch.float64) == y).all()
    reg = train_logistic(x, y, lr=1.0, steps=4000, l2=0.1, log_every=100)
    assert reg["norm"][-1] < norms[-1]
    assert (
        abs(reg["norm"][-1] - reg["norm"][-10]) < 1e-10
    )  # converged to a finite norm
    assert logistic_grad(reg["w"], x, y, l2=0.1).norm().item() < 1e-10
    assert (
        free["step"][0] == 0
        and free["step"][-1] == 4000
        and len(free["step"]) == 41
    )


def test_train_logistic_matches_hand_written_gd():
    x, y = _separable(n=10, p=3, seed=12)
    w = torch.zeros(3, dtype=torch.float64)
    for _ in range(7):
        w = w - 0.5 * (x.T @ (torch.sigmoid(x @ w) - y) / 10 + 0.2 * w)
    out = train_logistic(x, y, lr=0.5, steps=7, l2=0.2, log_every=3)
    torch.testing.assert_close(out["w"], w)
    assert out["step"] == [0, 3, 6, 7]
    assert out["objective"][-1] == pytest.approx(
        logistic_loss(w, x, y, l2=0.2).item()
    )
    first = train_logistic(x, y, lr=0.5, steps=4, l2=0.2)
    rest = train_logistic(x, y, lr=0.5, steps=3, l2=0.2, w0=first["w"])
    torch.testing.assert_close(rest["w"], w)  # continuing a run = one long run


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda: ridge(torch.ones(3, 2), torch.ones(3), alpha=0.0),
            ValueError,
            r"ridge: 'alpha' must be > 0; got 0.0.",
        ),
        (
            lambda: ridge(torch.ones(3, 2), torch.ones(3), alpha=-1),
            ValueError,
            r"'alpha' must be > 0; got -1.",
        ),
        (
            lambda: ridge(torch.ones(3), torch.ones(3), alpha=1.0),
            ValueError,
            r"ridge: 'x' must be a matrix of shape \(n, p\); got \(3,\).",
        ),
        (
            lambda: ridge(torch.ones(3, 2), torch.ones(4), alpha=1.0),
            ValueError,
            r"ridge: 'y' must be of shape \(n,\) or \(n, k\) with n = 3",
        ),
        (
            lambda: ridge(
                torch.ones(3, 2, dtype=torch.int64), torch.ones(3), alpha=1.0
            ),
            TypeError,
            r"'x' must be a floating-point tensor",
        ),
        (
            lambda: regularized_pinv(torch.ones(3, 2), alpha=float("inf")),
            ValueError,
            r"regularized_pinv: 'alpha' must be finite",
        ),
        (
            lambda: logistic_loss(
                torch.ones(2), torch.ones(3, 2), torch.tensor([0.0, 1.0, 2.0])
            ),
            ValueError,
            r"logistic_loss: 'y' must be labels in \{0, 1\}",
        ),
        (
            lambda: logistic_grad(
                torch.ones(3), torch.ones(3, 2), torch.ones(3)
            ),
            ValueError,
            r"logistic_grad: 'w' must be of shape \(2,\); got \(3,\).",
        ),
        (
            lambda: logistic_grad(
                torch.ones(2), torch.ones(3, 2), torch.ones(3), l2=-0.1
            ),
            ValueError,
            r"logistic_grad: 'l2' must be >= 0; got -0.1.",
        ),
        (
            lambda: train_logistic(
                torch.ones(3, 2), torch.ones(3), lr=0.0, steps=5
            ),
            ValueError,
            r"train_logistic: 'lr' must be > 0; got 0.0.",
        ),
        (
            lambda: train_logistic(
                torch.ones(3, 2), torch.ones(3), lr=0.1, steps=0
            ),
            ValueError,
            r"train_logistic: 'steps' must be >= 1; got 0.",
        ),
        (
            lambda: train_logistic(
                torch.ones(3, 2), torch.ones(3), lr=0.1, steps=5, log_every=1.5
            ),
            TypeError,
            r"train_logistic: 'log_every' must be an int",
        ),
        (
            lambda: train_logistic(
                torch.ones(3, 2),
                torch.ones(3),
                lr=0.1,
                steps=5,
                w0=torch.ones(3),
            ),
            ValueError,
            r"train_logistic: 'w0' must be of shape \(2,\); got \(3,\).",
        ),
        (
            lambda: train_logistic(
                torch.ones(3, 2), torch.ones(3, 1), lr=0.1, steps=5
            ),
            ValueError,
            r"train_logistic: 'y' must be of shape \(n,\) with n = 3",
        ),
    ],
)
def test_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_ridge_matches_sklearn_and_its_gradient_vanishes():
    from sklearn.linear_model import Ridge

    g = torch.Generator().manual_seed(0)
    X = torch.randn(30, 4, generator=g, dtype=torch.float64)
    y = X @ torch.randn(
        4, generator=g, dtype=torch.float64
    ) + 0.3 * torch.randn(30, generator=g, dtype=torch.float64)
    w = ridge(X, y, alpha=2.5)
    sk = Ridge(alpha=2.5, fit_intercept=False).fit(X.numpy(), y.numpy()).coef_
    torch.testing.assert_close(w, torch.tensor(sk))
    # the gradient of ||Xw - y||^2 + alpha ||w||^2 vanishes at the minimizer
    torch.testing.assert_close(
        2 * X.T @ (X @ w - y) + 2 * 2.5 * w, torch.zeros(4, dtype=X.dtype)
    )
