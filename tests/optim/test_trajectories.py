"""dlcourse.optim.trajectories: 2-D paths, the notes' momentum vs PyTorch's."""

import pytest
import torch

from dlcourse.objectives import Quadratic, Rosenbrock
from dlcourse.optim.sgd import SGD
from dlcourse.optim.trajectories import (
    notes_momentum_path,
    optimizer_path,
    sgd_path,
)

X0 = (-1.5, 1.2)


def test_gd_path_on_a_quadratic_is_the_closed_form():
    f = Quadratic(10.0, angle=0.3)
    A = f.hessian().double()
    path = sgd_path(f, X0, lr=0.05, steps=30)
    expected = torch.linalg.matrix_power(
        torch.eye(2, dtype=torch.float64) - 0.05 * A, 30
    ) @ torch.tensor(X0, dtype=torch.float64)
    assert path.shape == (31, 2)
    torch.testing.assert_close(path[0], torch.tensor(X0, dtype=torch.float64))
    torch.testing.assert_close(path[-1], expected)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_path_equals_torch_sgd(nesterov):
    f = Rosenbrock()
    ours = sgd_path(f, X0, lr=1e-3, momentum=0.9, nesterov=nesterov, steps=200)
    theirs = optimizer_path(
        f,
        X0,
        lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, nesterov=nesterov),
        steps=200,
    )
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


@pytest.mark.parametrize("f", [Quadratic(20.0, angle=0.5), Rosenbrock()])
def test_notes_momentum_equals_pytorch_momentum(f):
    lr, gamma = 1e-3, 0.9
    thetas, v = notes_momentum_path(f, X0, lr=lr, momentum=gamma, steps=300)
    torch_path = optimizer_path(
        f, X0, lambda p: torch.optim.SGD(p, lr=lr, momentum=gamma), steps=300
    )
    torch.testing.assert_close(thetas, torch_path)
    # V_t = alpha * b_t: b_t = (theta_{t-1} - theta_t) / alpha
    torch.testing.assert_close(v[1:], thetas[:-1] - thetas[1:])


@pytest.mark.parametrize("f", [Quadratic(20.0, angle=0.5), Rosenbrock()])
def test_notes_nesterov_lookahead_is_pytorch_nesterov(f):
    lr, gamma = 1e-3, 0.9
    thetas, v = notes_momentum_path(
        f, X0, lr=lr, momentum=gamma, steps=300, nesterov=True
    )
    torch_path = optimizer_path(
        f,
        X0,
        lambda p: torch.optim.SGD(p, lr=lr, momentum=gamma, nesterov=True),
        steps=300,
    )
    torch.testing.assert_close(thetas - gamma * v, torch_path)
    assert (
        thetas - torch_path
    ).abs().max() > 1e-3  # the notes' theta itself is another point


def test_momentum_beats_gd_on_an_ill_conditioned_quadratic():
    f = Quadratic(100.0, angle=0.4)
    gd = sgd_path(f, X0, lr=0.019, steps=200)
    hb = sgd_path(f, X0, lr=0.019, momentum=0.8, steps=200)
    assert f(hb[-1]) < 1e-3 * f(gd[-1])


def test_argument_checks():
    f = Quadratic(2.0)
    with pytest.raises(
        TypeError,
        match="optimizer_path: 'objective' must be a "
        "dlcourse.objectives.Objective",
    ):
        optimizer_path(lambda x: x, X0, lambda p: SGD(p, lr=0.1), steps=1)
    with pytest.raises(
        ValueError,
        match=r"optimizer_path: 'x0' must be a point of shape \(2,\); "
        r"got \(3,\)",
    ):
        optimizer_path(f, (0.0, 1.0, 2.0), lambda p: SGD(p, lr=0.1), steps=1)
    with pytest.raises(
        ValueError, match="optimizer_path: 'steps' must be >= 0; got -1"
    ):
        optimizer_path(f, X0, lambda p: SGD(p, lr=0.1), steps=-1)
    with pytest.raises(
        TypeError,
        match=r"'make_optimizer\(...\)' must be a torch.optim.Optimizer",
    ):
        optimizer_path(f, X0, lambda p: None, steps=1)
    with pytest.raises(
        ValueError,
        match="notes_momentum_path: 'momentum' must be >= 0; got -0.1",
    ):
        notes_momentum_path(f, X0, lr=0.1, momentum=-0.1, steps=1)
    with pytest.raises(
        TypeError, match="notes_momentum_path: 'nesterov' must be a bool"
    ):
        notes_momentum_path(f, X0, lr=0.1, momentum=0.5, steps=1, nesterov=None)
