"""dlcourse.regularization.generalization against exact math and PyTorch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlcourse.nn import make_mlp
from dlcourse.regularization.generalization import (
    RandomReLUFeatures,
    legendre_features,
    mean_squared_error,
    min_norm_least_squares,
    random_features_sweep,
    width_sweep,
)


def _randn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


# legendre_features


@pytest.mark.parametrize("degree", [0, 1, 2, 7, 15])
def test_legendre_features_equal_numpy_legvander(degree):
    x = torch.linspace(-1, 1, 33, dtype=torch.float64)
    expected = np.polynomial.legendre.legvander(x.numpy(), degree)
    got = legendre_features(x, degree)
    assert got.shape == (33, degree + 1)
    torch.testing.assert_close(got, torch.from_numpy(expected))


def test_legendre_columns_are_orthogonal_on_the_interval():
    # Gauss-Legendre quadrature with 20 nodes is exact up to degree 39
    nodes, weights = np.polynomial.legendre.leggauss(20)
    P = legendre_features(torch.from_numpy(nodes), 12)
    gram = P.T @ torch.diag(torch.from_numpy(weights)) @ P
    expected = torch.diag(2.0 / (2 * torch.arange(13, dtype=gram.dtype) + 1))
    torch.testing.assert_close(gram, expected)


def test_legendre_fit_equals_the_monomial_fit():
    x = torch.linspace(-1, 1, 20, dtype=torch.float64)
    y = torch.sin(3 * x) + 0.1 * _randn(20)
    mono = x[:, None] ** torch.arange(6, dtype=x.dtype)
    fit_mono = mono @ torch.linalg.lstsq(mono, y[:, None]).solution[:, 0]
    leg = legendre_features(x, 5)
    torch.testing.assert_close(leg @ min_norm_least_squares(leg, y), fit_mono)


def test_legendre_features_reject_bad_arguments():
    x = torch.zeros(5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"'degree' must be >= 0; got -1"):
        legendre_features(x, -1)
    with pytest.raises(TypeError, match=r"'degree' must be an int; got float"):
        legendre_features(x, 2.0)
    with pytest.raises(ValueError, match=r"'x' must be in \[-1, 1\]"):
        legendre_features(torch.tensor([0.0, 1.5]), 2)
    with pytest.raises(ValueError, match=r"'x' must be a 1-D floating-point"):
        legendre_features(torch.zeros(3, 2), 2)
    with pytest.raises(ValueError, match=r"'x' must be a 1-D floating-point"):
        legendre_features(torch.zeros(3, dtype=torch.long), 2)
    with pytest.raises(TypeError, match=r"'x' must be a torch.Tensor"):
        legendre_features([0.0, 0.5], 2)


# min_norm_least_squares


def test_overdetermined_fit_solves_the_normal_equations():
    A, y = _randn(30, 6), _randn(30, 2, seed=1)
    w = min_norm_least_squares(A, y)
    torch.testing.assert_close(w, torch.linalg.solve(A.T @ A, A.T @ y))
    lstsq = torch.linalg.lstsq(A, y, driver="gelsd").solution
    torch.testing.assert_close(w, lstsq)


@pytest.mark.parametrize("p", [20, 21, 50])
def test_min_norm_fit_at_p_ge_n_interpolates_and_equals_pinv(p):
    A, y = _randn(20, p), _randn(20, seed=1)
    w = min_norm_least_squares(A, y)
    torch.testing.assert_close(w, torch.linalg.pinv(A) @ y)
    assert (A @ w - y).abs().max() < 1e-10  # zero training error
    # any other interpolant adds a null-space vector, and is longer
    null = torch.linalg.svd(A).Vh[20:]  # (p - 20, p), empty when p = n
    for v in null[:5]:
        assert (A @ (w + v) - y).abs().max() < 1e-10
        assert (w + v).norm() > w.norm()
    # w lies in the row space of A: orthogonal to its null space
    if len(null):
        assert (null @ w).abs().max() < 1e-12


def test_rank_deficient_fit_equals_pinv():
    A = _randn(15, 4) @ _randn(4, 10, seed=2)  # rank 4
    y = _randn(15, 3, seed=3)
    torch.testing.assert_close(
        min_norm_least_squares(A, y), torch.linalg.pinv(A) @ y
    )


@pytest.mark.parametrize("shape", [(30, 8), (10, 40)])
def test_ridge_equals_the_primal_and_dual_closed_forms(shape):
    n, p = shape
    A, y, lam = _randn(n, p), _randn(n, seed=1), 0.3
    w = min_norm_least_squares(A, y, ridge=lam)
    primal = torch.linalg.solve(
        A.T @ A + lam * torch.eye(p, dtype=A.dtype), A.T @ y
    )
    dual = A.T @ torch.linalg.solve(
        A @ A.T + lam * torch.eye(n, dtype=A.dtype), y
    )
    torch.testing.assert_close(w, primal)
    torch.testing.assert_close(w, dual)


def test_ridge_tends_to_the_minimum_norm_fit():
    A, y = _randn(10, 30), _randn(10, seed=1)
    w0 = min_norm_least_squares(A, y)
    w = min_norm_least_squares(A, y, ridge=1e-10)
    torch.testing.assert_close(w, w0, atol=1e-7, rtol=0)


def test_min_norm_least_squares_rejects_bad_arguments():
    A, y = _randn(5, 3), _randn(5)
    with pytest.raises(ValueError, match=r"'ridge' must be >= 0; got -1"):
        min_norm_least_squares(A, y, ridge=-1.0)
    with pytest.raises(ValueError, match=r"'targets' must be 5 rows"):
        min_norm_least_squares(A, y[:4])
    with pytest.raises(ValueError, match=r"'features' must be a 2-D"):
        min_norm_least_squares(y, y)
    with pytest.raises(TypeError, match=r"'features' must be a torch.Tensor"):
        min_norm_least_squares(A.numpy(), y)


# mean_squared_error


def test_mean_squared_error_sums_outputs_and_averages_rows():
    pred, y = _randn(7, 3), _randn(7, 3, seed=1)
    expected = F.mse_loss(pred, y, reduction="sum").item() / 7
    assert mean_squared_error(pred, y) == pytest.approx(expected, rel=1e-12)
    one = F.mse_loss(pred[:, 0], y[:, 0]).item()
    assert mean_squared_error(pred[:, 0], y[:, 0]) == pytest.approx(one)
    with pytest.raises(ValueError, match=r"'targets' must be of the shape"):
        mean_squared_error(pred, y[:, 0])


# RandomReLUFeatures


def test_random_features_equal_the_torch_formula():
    g = torch.Generator().manual_seed(4)
    phi = RandomReLUFeatures(5, 12, generator=g)
    g = torch.Generator().manual_seed(4)
    W = torch.randn(5, 12, generator=g, dtype=torch.float64) / 5**0.5
    b = torch.randn(12, generator=g, dtype=torch.float64)
    x = _randn(9, 5)
    expected = F.relu(F.linear(x, W.T, b)) / 12**0.5
    torch.testing.assert_close(phi(x), expected)
    torch.testing.assert_close(
        phi.first(4)(x), F.relu(x @ W[:, :4] + b[:4]) / 2
    )


def test_random_features_are_seeded():
    a = RandomReLUFeatures(3, 6, generator=torch.Generator().manual_seed(0))
    b = RandomReLUFeatures(3, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_random_features_reject_bad_arguments():
    with pytest.raises(ValueError, match=r"'num_features' must be >= 1; got 0"):
        RandomReLUFeatures(3, 0)
    with pytest.raises(ValueError, match=r"'in_features' must be >= 1; got 0"):
        RandomReLUFeatures(0, 3)
    with pytest.raises(TypeError, match=r"'generator' must be a torch.Gen"):
        RandomReLUFeatures(3, 4, generator=0)
    phi = RandomReLUFeatures(3, 4)
    with pytest.raises(ValueError, match=r"'num_features' must be <= 4; got 5"):
        phi.first(5)
    with pytest.raises(ValueError, match=r"'x' must be of shape \(n, 3\)"):
        phi(torch.zeros(2, 4))


# random_features_sweep


def _regression(n, seed):
    x = _randn(n, 3, seed=seed)
    return x, torch.sin(x.sum(dim=1)) + 0.1 * _randn(n, seed=seed + 100)


def test_sweep_equals_fits_one_by_one():
    (x, y), (xt, yt) = _regression(12, 0), _regression(40, 1)
    out = random_features_sweep(
        x, y, {"test": (xt, yt)}, [5, 12, 30], seeds=[3], ridges=[0.0, 0.1]
    )
    assert out["test"].shape == (1, 2, 3)
    phi_all = RandomReLUFeatures(
        3, 30, generator=torch.Generator().manual_seed(3)
    )
    for k, p in enumerate([5, 12, 30]):
        phi = phi_all.first(p)
        for j, lam in enumerate([0.0, 0.1]):
            w = min_norm_least_squares(phi(x), y, ridge=lam)
            train = mean_squared_error(phi(x) @ w, y)
            test = mean_squared_error(phi(xt) @ w, yt)
            assert out["train"][0, j, k].item() == pytest.approx(
                train, abs=1e-10
            )
            assert out["test"][0, j, k].item() == pytest.approx(test, rel=1e-8)
    # at p = 30 > n = 12 the minimum-norm fit interpolates
    assert out["train"][0, 0, 2] < 1e-20


def test_sweep_rejects_bad_arguments():
    x, y = _regression(6, 0)
    ok = {"val": (x, y)}
    with pytest.raises(ValueError, match=r"'num_features\[i\]' must be >= 1"):
        random_features_sweep(x, y, ok, [0, 3], seeds=[0])
    with pytest.raises(ValueError, match=r"'ridges\[i\]' must be >= 0"):
        random_features_sweep(x, y, ok, [3], seeds=[0], ridges=[-0.1])
    with pytest.raises(ValueError, match=r"without the key 'train'"):
        random_features_sweep(x, y, {"train": (x, y)}, [3], seeds=[0])
    with pytest.raises(ValueError, match=r"'evaluate\['val'\]' must be an"):
        random_features_sweep(x, y, {"val": x}, [3], seeds=[0])
    with pytest.raises(ValueError, match=r"must be non-empty"):
        random_features_sweep(x, y, ok, [], seeds=[0])


# width_sweep


def test_width_sweep_equals_separate_adam_trainings():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 4, generator=g)
    y = torch.randint(0, 3, (30,), generator=g)
    out = width_sweep(
        x, y, {"val": (x[:10], y[:10])}, [2, 5], seeds=[0, 1], steps=4, lr=0.05
    )
    assert out["accuracy"]["train"].shape == (2, 2)
    for j, h in enumerate([2, 5]):
        for i, seed in enumerate([0, 1]):
            model = make_mlp(
                [4, h, 3], generator=torch.Generator().manual_seed(seed)
            )
            opt = torch.optim.Adam(model.parameters(), lr=0.05)
            for _ in range(4):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()
            for name, rows in (("train", slice(None)), ("val", slice(10))):
                with torch.no_grad():
                    logits = model(x[rows])
                    acc = (logits.argmax(1) == y[rows]).float().mean().item()
                    loss = F.cross_entropy(logits, y[rows]).item()
                got = out["accuracy"][name][i, j].item()
                assert got == pytest.approx(acc)
                assert out["loss"][name][i, j].item() == pytest.approx(
                    loss, rel=1e-4
                )


def test_width_sweep_rejects_bad_arguments():
    x, y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)
    kw = dict(seeds=[0], steps=1, lr=0.1)
    with pytest.raises(ValueError, match=r"'widths\[i\]' must be >= 1; got 0"):
        width_sweep(x, y, {}, [0], **kw)
    with pytest.raises(ValueError, match=r"'steps' must be >= 1; got 0"):
        width_sweep(x, y, {}, [2], seeds=[0], steps=0, lr=0.1)
    with pytest.raises(ValueError, match=r"'lr' must be > 0; got 0"):
        width_sweep(x, y, {}, [2], seeds=[0], steps=1, lr=0.0)
    with pytest.raises(ValueError, match=r"must be non-empty"):
        width_sweep(x, y, {}, [2], seeds=[], steps=1, lr=0.1)


def test_width_sweep_rejects_bad_data():
    x, y = torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)
    kw = dict(seeds=[0], steps=1, lr=0.1)
    with pytest.raises(ValueError, match=r"'y_train' must be an int64 tensor"):
        width_sweep(x, y[:3], {}, [2], **kw)
    with pytest.raises(ValueError, match=r"'y_train' must be an int64 tensor"):
        width_sweep(x, y.float(), {}, [2], **kw)
    with pytest.raises(ValueError, match=r"'x_train' must be a 2-D float"):
        width_sweep(x[:, 0], y, {}, [2], **kw)
    # the training set is always evaluated: 'train' may not be overwritten
    with pytest.raises(ValueError, match=r"without the key 'train'"):
        width_sweep(x, y, {"train": (x, y)}, [2], **kw)
    with pytest.raises(ValueError, match=r"'evaluate\['val'\]' must be an"):
        width_sweep(x, y, {"val": x}, [2], **kw)
    with pytest.raises(ValueError, match=r"'evaluate\['val'\]\[1\]' must be"):
        width_sweep(x, y, {"val": (x, y[:2])}, [2], **kw)
    with pytest.raises(ValueError, match=r"must be of shape \(m, 2\)"):
        width_sweep(x, y, {"val": (torch.zeros(4, 3), y)}, [2], **kw)
