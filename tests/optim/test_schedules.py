"""Closed-form schedules against torch.optim.lr_scheduler; Polyak averaging
against torch.optim.swa_utils; coordinate descent against exact solutions
and scikit-learn's Lasso."""

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso
from torch.optim import lr_scheduler as L

from dlcourse.optim.coordinate_descent import (
    lasso_coordinate_descent,
    quadratic_coordinate_descent,
)
from dlcourse.optim.schedules import (
    CosineAnnealingLR,
    LinearLR,
    PolyakAverage,
    StepLR,
    cosine_lr,
    linear_factor,
    step_lr,
)


def _opt(lrs=(0.1, 0.03)):
    params = [torch.nn.Parameter(torch.zeros(2)) for _ in lrs]
    return torch.optim.SGD(
        [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], lr=lrs[0]
    )


def _rates(make, steps):
    opt = _opt()
    sched = make(opt)
    rates = [sched.get_last_lr()]
    for _ in range(steps):
        opt.step()
        sched.step()
        rates.append(sched.get_last_lr())
    return rates


SCHEDULES = [
    ("step", lambda o: StepLR(o, 7, 0.5), lambda o: L.StepLR(o, 7, 0.5)),
    (
        "cosine",
        lambda o: CosineAnnealingLR(o, 20, 1e-3),
        lambda o: L.CosineAnnealingLR(o, 20, 1e-3),
    ),
    (
        "linear",
        lambda o: LinearLR(o, 0.1, 1.0, 8),
        lambda o: L.LinearLR(o, 0.1, 1.0, 8),
    ),
    (
        "warmup+cosine",
        lambda o: L.SequentialLR(
            o, [LinearLR(o, 0.01, 1.0, 5), CosineAnnealingLR(o, 30)], [5]
        ),
        lambda o: L.SequentialLR(
            o, [L.LinearLR(o, 0.01, 1.0, 5), L.CosineAnnealingLR(o, 30)], [5]
        ),
    ),
]


@pytest.mark.parametrize(("name", "ours", "theirs"), SCHEDULES)
def test_rates_equal_torch(name, ours, theirs):
    """Three periods of the cosine: the climb back past T_max included."""
    a, b = _rates(ours, 70), _rates(theirs, 70)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    assert len({tuple(r) for r in a}) > 3  # the rate does change


def test_closed_forms_by_hand():
    assert step_lr(13, base_lr=1.0, step_size=5, gamma=0.5) == 0.25
    assert cosine_lr(0, base_lr=0.2, T_max=10) == 0.2
    assert cosine_lr(5, base_lr=0.2, T_max=10, eta_min=0.1) == pytest.approx(
        0.15
    )
    assert cosine_lr(10, base_lr=0.2, T_max=10, eta_min=0.1) == pytest.approx(
        0.1
    )
    assert linear_factor(0, start_factor=0.2, total_iters=4) == 0.2
    assert linear_factor(2, start_factor=0.2, total_iters=4) == pytest.approx(
        0.6
    )
    assert linear_factor(99, start_factor=0.2, total_iters=4) == 1.0


def test_schedule_arguments():
    with pytest.raises(ValueError, match=r"step_lr: 'step_size' must be >= 1"):
        step_lr(0, base_lr=1.0, step_size=0)
    with pytest.raises(ValueError, match=r"cosine_lr: 'T_max' must be >= 1"):
        cosine_lr(0, base_lr=1.0, T_max=0)
    with pytest.raises(ValueError, match=r"linear_factor: 'start_factor'"):
        linear_factor(0, start_factor=0.0)
    with pytest.raises(ValueError, match=r"StepLR: 'gamma' must be >= 0"):
        StepLR(_opt(), 3, gamma=-0.1)
    with pytest.raises(ValueError, match=r"linear_factor: 'end_factor'"):
        LinearLR(_opt(), end_factor=1.5)
    with pytest.raises(
        TypeError, match=r"CosineAnnealingLR: 'T_max' must be an int"
    ):
        CosineAnnealingLR(_opt(), 2.5)


# ------------------------------------------------------------------ averaging


def _iterates(k=12):
    g = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(3, 2)
    for _ in range(k):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g))
        yield model


@pytest.mark.parametrize("decay", [None, 0.9, 0.0, 1.0])
def test_polyak_average_equals_torch_averaged_model(decay):
    models = _iterates()
    first = next(models)
    ours = PolyakAverage(first.parameters(), decay=decay)
    kwargs = (
        {}
        if decay is None
        else {"multi_avg_fn": torch.optim.swa_utils.get_ema_multi_avg_fn(decay)}
    )
    theirs = torch.optim.swa_utils.AveragedModel(first, **kwargs)
    ours.update(first.parameters())
    theirs.update_parameters(first)
    for model in models:
        ours.update(model.parameters())
        theirs.update_parameters(model)
    for a, b in zip(ours.averaged, theirs.module.parameters()):
        torch.testing.assert_close(a, b)
    assert ours.n_averaged == int(theirs.n_averaged) == 12


def test_equal_average_is_the_mean_of_the_iterates():
    snapshots, avg = [], None
    for model in _iterates(7):
        snapshots.append([p.detach().clone() for p in model.parameters()])
        if avg is None:
            avg = PolyakAverage(model.parameters())
        avg.update(model.parameters())
    for i, a in enumerate(avg.averaged):
        torch.testing.assert_close(
            a, torch.stack([s[i] for s in snapshots]).mean(0)
        )
    target = torch.nn.Linear(3, 2)
    avg.copy_to(target.parameters())
    torch.testing.assert_close(target.weight, avg.averaged[0])


def test_polyak_arguments():
    with pytest.raises(ValueError, match=r"PolyakAverage: 'decay' must be"):
        PolyakAverage([torch.zeros(2)], decay=1.5)
    with pytest.raises(TypeError, match=r"PolyakAverage: 'params' must be"):
        PolyakAverage([])
    avg = PolyakAverage([torch.zeros(2), torch.zeros(3)])
    with pytest.raises(ValueError, match=r"must have 2 tensors"):
        avg.update([torch.zeros(2)])


# -------------------------------------------------------- coordinate descent


def _spd(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    return m @ m.T + n * torch.eye(n, dtype=torch.float64), torch.randn(
        n, generator=g, dtype=torch.float64
    )


def test_quadratic_cd_decreases_monotonically_and_solves():
    A, b = _spd()
    x, history = quadratic_coordinate_descent(A, b, sweeps=60)
    assert len(history) == 1 + 60 * 6
    assert all(h1 <= h0 + 1e-12 for h0, h1 in zip(history, history[1:]))
    torch.testing.assert_close(x, torch.linalg.solve(A, b))
    x_star = torch.linalg.solve(A, b)
    assert history[-1] == pytest.approx(float(-0.5 * b @ x_star), rel=1e-10)


def test_quadratic_cd_sweep_is_gauss_seidel():
    A, b = _spd(4, seed=1)
    x, _ = quadratic_coordinate_descent(A, b, sweeps=1)
    # Gauss-Seidel: (D + L) x = b from x = 0
    gs = torch.linalg.solve_triangular(torch.tril(A), b[:, None], upper=False)
    torch.testing.assert_close(x, gs[:, 0])


def test_quadratic_cd_on_a_diagonal_quadratic_takes_one_sweep():
    A = torch.diag(torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64))
    b = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    x, _ = quadratic_coordinate_descent(A, b, sweeps=1)
    torch.testing.assert_close(x, b / torch.diagonal(A))


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.5])
def test_lasso_cd_equals_sklearn(alpha):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 12))
    w_true = np.zeros(12)
    w_true[[1, 4, 7]] = [2.0, -3.0, 1.5]
    y = X @ w_true + 0.3 * rng.normal(size=50)
    w, history = lasso_coordinate_descent(
        torch.from_numpy(X), torch.from_numpy(y), alpha=alpha, sweeps=300
    )
    ref = Lasso(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=100_000)
    ref.fit(X, y)
    np.testing.assert_allclose(w.numpy(), ref.coef_, atol=1e-8)
    assert all(h1 <= h0 + 1e-12 for h0, h1 in zip(history, history[1:]))
    # exact zeros: the same support as scikit-learn's
    assert ((w.numpy() == 0) == (ref.coef_ == 0)).all()
    # alpha = 0.01 keeps every coefficient; 0.1 and 0.5 zero some
    assert ((w.numpy() == 0).sum() >= 1) == (alpha >= 0.1)


def test_lasso_cd_with_alpha_zero_is_least_squares():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 4)), rng.normal(size=30)
    w, _ = lasso_coordinate_descent(
        torch.from_numpy(X), torch.from_numpy(y), alpha=0.0, sweeps=500
    )
    np.testing.assert_allclose(w.numpy(), np.linalg.lstsq(X, y)[0], atol=1e-9)


def test_lasso_cd_large_alpha_gives_zero():
    """Above alpha_max = max|X^T y| / n every coefficient is 0."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(20, 5)), rng.normal(size=20)
    alpha_max = np.abs(X.T @ y).max() / 20
    w, _ = lasso_coordinate_descent(
        torch.from_numpy(X),
        torch.from_numpy(y),
        alpha=alpha_max * 1.001,
        sweeps=3,
    )
    assert (w == 0).all()
    w, _ = lasso_coordinate_descent(
        torch.from_numpy(X),
        torch.from_numpy(y),
        alpha=alpha_max * 0.9,
        sweeps=3,
    )
    assert (w != 0).any()
    assert math.isfinite(float(w.sum()))


def test_coordinate_descent_arguments():
    A, b = _spd(3)
    with pytest.raises(
        ValueError, match=r"'A' must be \(n, n\) and 'b' \(n,\)"
    ):
        quadratic_coordinate_descent(A, b[:2], sweeps=1)
    with pytest.raises(ValueError, match=r"'A' must be symmetric"):
        quadratic_coordinate_descent(A + torch.triu(A, 1), b, sweeps=1)
    with pytest.raises(ValueError, match=r"'sweeps' must be >= 1"):
        quadratic_coordinate_descent(A, b, sweeps=0)
    with pytest.raises(ValueError, match=r"'x0' must have shape \(3,\)"):
        quadratic_coordinate_descent(A, b, sweeps=1, x0=torch.zeros(2))
    X = torch.randn(5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"lasso_coordinate_descent: 'alpha'"):
        lasso_coordinate_descent(X, X[:, 0], alpha=-1.0, sweeps=1)
    with pytest.raises(ValueError, match=r"no all-zero column"):
        X[:, 1] = 0
        lasso_coordinate_descent(X, X[:, 0], alpha=0.1, sweeps=1)
