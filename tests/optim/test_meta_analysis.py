import math

import numpy as np
import pytest
import torch
from torch import nn

from dlcourse.nn.batchnorm import BatchNorm1d
from dlcourse.nn.mlp import make_mlp
from dlcourse.optim.coordinate_descent import quadratic_coordinate_descent
from dlcourse.optim.meta_analysis import (
    StackedNet,
    bumpy,
    continuation_descent,
    coupled_abs,
    coupled_coordinate_descent,
    quadratic_cd_points,
    smoothed_bumpy,
    stacked_accuracy,
    train_stacked,
)

SIZES = [6, 5, 5, 3]


def torch_twin(seed, batch_norm):
    """The same member built from torch.nn layers only."""
    mlp = make_mlp(SIZES, generator=torch.Generator().manual_seed(seed))
    layers = []
    for m in mlp:
        layers.append(m)
        if batch_norm and isinstance(m, nn.Linear) and m.out_features != 3:
            layers.append(nn.BatchNorm1d(m.out_features))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_stacked_trains_like_separate_torch_nets(batch_norm):
    seeds, lrs = [3, 4, 5], torch.tensor([0.05, 0.2, 0.5])
    net = StackedNet(SIZES, seeds, batch_norm=batch_norm)
    twins = [torch_twin(s, batch_norm) for s in seeds]
    opts = [
        torch.optim.SGD(t.parameters(), lr=lr.item())
        for t, lr in zip(twins, lrs)
    ]
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.randn(3, 16, 6, generator=g)  # rows per member
        y = torch.randint(0, 3, (3, 16), generator=g)
        loss = net.losses(x, y)
        net.zero_grad()
        loss.sum().backward()
        net.sgd_step_(lrs)
        for k, (twin, opt) in enumerate(zip(twins, opts)):
            out = twin(x[k])
            torch.testing.assert_close(
                loss[k], nn.functional.cross_entropy(out, y[k])
            )
            opt.zero_grad()
            nn.functional.cross_entropy(out, y[k]).backward()
            opt.step()
    x = torch.randn(10, 6, generator=g)  # same rows for every member
    for mode in (True, False):
        net.train(mode)
        out = net(x)
        for k, twin in enumerate(twins):
            twin.train(mode)
            ref = twin(x)  # once: in training mode it updates the buffers
            member = net.member(k).train(mode)
            torch.testing.assert_close(out[k], ref, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(member(x), ref, atol=1e-5, rtol=1e-5)
    if batch_norm:
        bn = [m for m in net.member(1) if isinstance(m, BatchNorm1d)][0]
        ref = [m for m in twins[1] if isinstance(m, nn.BatchNorm1d)][0]
        torch.testing.assert_close(bn.running_var, ref.running_var)
        torch.testing.assert_close(
            bn.num_batches_tracked, ref.num_batches_tracked
        )


def test_same_seed_same_linear_weights_with_and_without_bn():
    a = StackedNet(SIZES, [7], batch_norm=False)
    b = StackedNet(SIZES, [7], batch_norm=True)
    for wa, wb in zip(a.weights, b.weights):
        torch.testing.assert_close(wa, wb)


def test_stacked_accuracy_train_mode_restores_running_stats():
    net = StackedNet(SIZES, [0, 1], batch_norm=True)
    x, y = torch.randn(20, 6), torch.randint(0, 3, (20,))
    before = [b.clone() for b in net.buffers()]
    acc = stacked_accuracy(net, x, y, train=True)
    expected = (net.train()(x).argmax(-1) == y).float().mean(1)
    for b, old in zip(net.buffers(), before):  # net(x) above updated them
        b.copy_(old)
    torch.testing.assert_close(acc, expected)
    stacked_accuracy(net, x, y, train=True)
    for b, old in zip(net.buffers(), before):
        torch.testing.assert_close(b, old)


def test_train_stacked_schedule_and_shapes():
    net = StackedNet(SIZES, [0, 1], batch_norm=False)
    x, y = torch.randn(30, 6), torch.randint(0, 3, (30,))
    lrs = torch.zeros(4, 2)  # a zero rate: nothing moves
    w0 = net.weights[0].detach().clone()
    hist = train_stacked(
        net,
        x,
        y,
        lrs=lrs,
        steps=4,
        batch_size=8,
        data_seeds=[0, 0],
        x_val=x,
        y_val=y,
        eval_every=2,
    )
    assert hist["loss"].shape == (4, 2) and hist["val_acc"].shape == (2, 2)
    torch.testing.assert_close(net.weights[0], w0)


def test_stacked_argument_checks():
    with pytest.raises(ValueError, match="'seeds' must not be empty"):
        StackedNet(SIZES, [], batch_norm=False)
    with pytest.raises(TypeError, match="'batch_norm' must be a bool"):
        StackedNet(SIZES, [0], batch_norm=1)
    net = StackedNet(SIZES, [0, 1], batch_norm=False)
    with pytest.raises(ValueError, match="'lrs' must be a tensor of shape"):
        net.sgd_step_(torch.ones(3))
    with pytest.raises(ValueError, match="'k' must be < 2"):
        net.member(2)
    x, y = torch.randn(5, 6), torch.randint(0, 3, (5,))
    kw = dict(steps=2, batch_size=2, x_val=x, y_val=y, eval_every=1)
    with pytest.raises(ValueError, match="'data_seeds' must hold 2"):
        train_stacked(net, x, y, lrs=torch.ones(2), data_seeds=[0], **kw)
    with pytest.raises(ValueError, match="'lrs' must have shape"):
        train_stacked(net, x, y, lrs=torch.ones(3), data_seeds=[0, 1], **kw)


def test_coupled_abs_minimum_and_stuck_points():
    grid = torch.linspace(-3, 5, 161, dtype=torch.float64)
    xy = torch.cartesian_prod(grid, grid)
    assert torch.allclose(xy[coupled_abs(xy).argmin()], torch.ones(2).double())
    assert coupled_abs(torch.ones(2).double()).item() == pytest.approx(-1)
    # one-sided derivatives along x at (a, a): a + 2 and a - 4
    h = 1e-7
    for a in (-1.5, 0.0, 3.0):
        p = torch.tensor([a, a], dtype=torch.float64)
        e = torch.tensor([h, 0.0], dtype=torch.float64)
        right = (coupled_abs(p + e) - coupled_abs(p)) / h
        left = (coupled_abs(p) - coupled_abs(p - e)) / h
        assert right.item() == pytest.approx(a + 2, abs=1e-5)
        assert left.item() == pytest.approx(a - 4, abs=1e-5)


def test_coupled_coordinate_descent_is_exact_and_gets_stuck():
    path, values = coupled_coordinate_descent([-3.0, 5.0], sweeps=3)
    assert path.shape == (7, 2)
    # each update is the minimizer along its axis (checked on a fine grid)
    ts = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    for k in range(1, len(path)):
        i = (k - 1) % 2
        line = path[k - 1].repeat(len(ts), 1)
        line[:, i] = ts
        assert coupled_abs(path[k]).item() <= coupled_abs(line).min() + 1e-9
    assert (values.diff() <= 0).all()
    torch.testing.assert_close(path[-1], torch.tensor([3.0, 3.0]).double())
    with pytest.raises(ValueError, match="'x0' must hold 2 numbers"):
        coupled_coordinate_descent([1.0], sweeps=1)
    with pytest.raises(ValueError, match="'sweeps' must be >= 1"):
        coupled_coordinate_descent([1.0, 2.0], sweeps=0)


def test_quadratic_cd_points_match_reference():
    A = torch.tensor([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]])
    A = A.double()
    b = torch.tensor([1.0, -2.0, 0.5]).double()
    x0 = torch.tensor([2.0, 2.0, -1.0]).double()
    pts = quadratic_cd_points(A, b, x0, sweeps=4)
    x, hist = quadratic_coordinate_descent(A, b, sweeps=4, x0=x0)
    assert pts.shape == (13, 3)
    torch.testing.assert_close(pts[-1], x)
    f = [(0.5 * p @ A @ p - b @ p).item() for p in pts]
    np.testing.assert_allclose(f, hist, rtol=1e-12, atol=1e-12)
    # consecutive points differ in one coordinate only
    assert ((pts.diff(dim=0) != 0).sum(dim=1) <= 1).all()


@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.3, 1.0])
def test_smoothed_bumpy_equals_gaussian_expectation(sigma):
    a, b = 1.0, 8.0
    x = torch.linspace(-2, 2, 9, dtype=torch.float64)
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)  # N(0, 1) rule
    nodes = torch.tensor(nodes)
    weights = torch.tensor(weights) / math.sqrt(2 * math.pi)
    quad = (bumpy(x[:, None] + sigma * nodes, a=a, b=b) * weights).sum(1)
    torch.testing.assert_close(
        smoothed_bumpy(x, a=a, b=b, sigma=sigma), quad, rtol=1e-10, atol=1e-10
    )


def test_continuation_descent_gradient_and_limits():
    a, b = 1.0, 8.0
    x0 = torch.tensor([-2.0, 0.3, 1.7], dtype=torch.float64)
    one = continuation_descent(x0, a=a, b=b, sigmas=(0.4,), lr=0.01, steps=1)
    x = x0.clone().requires_grad_(True)
    smoothed_bumpy(x, a=a, b=b, sigma=0.4).sum().backward()
    torch.testing.assert_close(one, x0 - 0.01 * x.grad)
    # very smooth: convex, so every start reaches 0
    end = continuation_descent(
        x0, a=a, b=b, sigmas=(1.0, 0.0), lr=0.01, steps=2000
    )
    torch.testing.assert_close(end, torch.zeros(3).double(), atol=1e-8, rtol=0)
    with pytest.raises(ValueError, match="'sigmas' must not be empty"):
        continuation_descent(x0, a=a, b=b, sigmas=(), lr=0.1, steps=1)
    with pytest.raises(ValueError, match="'lr' must be > 0"):
        continuation_descent(x0, a=a, b=b, sigmas=(0.0,), lr=0.0, steps=1)
    with pytest.raises(ValueError, match=r"'sigmas\[i\]' must be >= 0"):
        continuation_descent(x0, a=a, b=b, sigmas=(-1.0,), lr=0.1, steps=1)
    with pytest.raises(ValueError, match="'sigma' must be >= 0"):
        smoothed_bumpy(x0, a=a, b=b, sigma=-0.1)


def _local_minima(a, b):
    """Interior local minima of bumpy on a fine grid of [-6, 6]."""
    x = torch.linspace(-6, 6, 120001, dtype=torch.float64)
    f = bumpy(x, a=a, b=b)
    return int(((f[1:-1] < f[:-2]) & (f[1:-1] < f[2:])).sum())


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (3.0, 1.0, 1),  # ab = 3 > 2 but ab^2 = 3 < 9.21: only the one at 0
        (1.0, 3.0, 1),  # ab^2 = 9 < 9.21
        (1.0, 3.1, 3),  # ab^2 = 9.61 > 9.21: a pair of side minima appears
        (1.0, 8.0, 11),  # the chapter's f: side minima for |x| < ab / 2
    ],
)
def test_bumpy_has_side_minima_iff_ab2_exceeds_9_21(a, b, expected):
    assert _local_minima(a, b) == expected


def test_more_argument_checks():
    with pytest.raises(TypeError, match="'seeds' must be a sequence"):
        StackedNet(SIZES, 3, batch_norm=False)
    net = StackedNet(SIZES, [0, 1], batch_norm=False)
    with pytest.raises(ValueError, match="'k' must be >= 0"):
        net.member(-1)
    x, y = torch.randn(5, 6), torch.randint(0, 3, (5,))
    kw = dict(x_val=x, y_val=y, data_seeds=[0, 1])
    with pytest.raises(TypeError, match="'lrs' must be a torch.Tensor"):
        train_stacked(
            net, x, y, lrs=[0.1, 0.1], steps=1, batch_size=2, eval_every=1, **kw
        )
    for name in ("steps", "batch_size", "eval_every"):
        args = dict(steps=2, batch_size=2, eval_every=1) | {name: 0}
        with pytest.raises(ValueError, match=f"'{name}' must be >= 1"):
            train_stacked(net, x, y, lrs=torch.ones(2), **args, **kw)
    with pytest.raises(TypeError, match="'xy' must be a torch.Tensor"):
        coupled_abs([1.0, 2.0])
    A, b = torch.eye(2).double(), torch.ones(2).double()
    with pytest.raises(ValueError, match="'sweeps' must be >= 1"):
        quadratic_cd_points(A, b, torch.zeros(2), sweeps=0)
    with pytest.raises(TypeError, match="'x0' must be a torch.Tensor"):
        continuation_descent(
            [0.0], a=1.0, b=8.0, sigmas=(0.0,), lr=0.1, steps=1
        )
    with pytest.raises(ValueError, match="'steps' must be >= 1"):
        continuation_descent(
            torch.zeros(1), a=1.0, b=8.0, sigmas=(0.0,), lr=0.1, steps=0
        )
