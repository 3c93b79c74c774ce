"""dlcourse.optim.diagnostics: closed forms, torch.autograd.functional."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.nn.mlp import make_mlp
from dlcourse.objectives import Quadratic, Saddle
from dlcourse.optim.diagnostics import (
    LayerMonitor,
    flat_loss_function,
    flat_parameters,
    hessian_eigenvalues,
    hessian_vector_product,
    loss_hessian,
)


def _data(n=20, d=3, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, d, generator=g, dtype=torch.float64),
        torch.randint(0, k, (n,), generator=g),
    )


def test_hessian_of_least_squares_is_closed_form():
    # J(w, b) = mean (w^T x + b - y)^2  =>  H = 2/n [x 1]^T [x 1]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, 3, generator=g, dtype=torch.float64)
    y = torch.randn(30, generator=g, dtype=torch.float64)
    model = nn.Linear(3, 1).double()
    H = loss_hessian(
        model, x, y, loss_fn=lambda out, t: F.mse_loss(out[:, 0], t)
    )
    design = torch.cat([x, torch.ones(30, 1, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(H, 2 / 30 * design.T @ design)


@pytest.mark.parametrize(
    "kappa, angle", [(1.0, 0.0), (10.0, 0.3), (250.0, -1.1)]
)
def test_eigenvalues_of_quadratic_hessian(kappa, angle):
    q = Quadratic(kappa, angle=angle)
    x0 = torch.tensor([0.4, -0.2], dtype=torch.float64)
    H = torch.autograd.functional.hessian(q.value, x0)
    torch.testing.assert_close(H, q.hessian(x0))
    torch.testing.assert_close(
        hessian_eigenvalues(H), torch.tensor([1.0, kappa], dtype=torch.float64)
    )


def test_saddle_has_eigenvalues_of_both_signs():
    H = torch.autograd.functional.hessian(
        Saddle().value, torch.zeros(2, dtype=torch.float64)
    )
    torch.testing.assert_close(
        hessian_eigenvalues(H), torch.tensor([-2.0, 2.0], dtype=torch.float64)
    )


def test_loss_hessian_matches_autograd_hessian_of_a_network():
    x, y = _data()
    model = make_mlp(
        [3, 5, 4], activation="tanh", generator=torch.Generator().manual_seed(2)
    ).double()
    params = tuple(p.detach() for p in model.parameters())

    def loss_of(*ps):
        h = torch.tanh(x @ ps[0].T + ps[1])
        return F.cross_entropy(h @ ps[2].T + ps[3], y)

    blocks = torch.autograd.functional.hessian(loss_of, params)
    full = torch.cat(
        [
            torch.cat(
                [
                    blocks[i][j].reshape(params[i].numel(), params[j].numel())
                    for j in range(4)
                ],
                dim=1,
            )
            for i in range(4)
        ],
        dim=0,
    )
    torch.testing.assert_close(loss_hessian(model, x, y), full)
    # the flat function is the model's loss and leaves the model unchanged
    theta = flat_parameters(model)
    f = flat_loss_function(model, x, y)
    torch.testing.assert_close(f(theta), F.cross_entropy(model(x), y))
    assert (
        f(theta + 1.0) - f(theta)
    ).abs() > 1e-3  # theta is used, not the model's own
    torch.testing.assert_close(flat_parameters(model), theta)


def test_hessian_vector_product_equals_hessian_times_vector():
    x, y = _data(seed=3)
    model = make_mlp(
        [3, 4, 4], generator=torch.Generator().manual_seed(3)
    ).double()
    f = flat_loss_function(model, x, y)
    theta = flat_parameters(model)
    v = torch.randn(
        theta.shape,
        generator=torch.Generator().manual_seed(4),
        dtype=torch.float64,
    )
    torch.testing.assert_close(
        hessian_vector_product(f, theta, v), loss_hessian(model, x, y) @ v
    )


def test_layer_monitor_records_what_autograd_gives():
    x, y = _data(n=16, d=5, k=3)
    model = make_mlp(
        [5, 6, 6, 3], generator=torch.Generator().manual_seed(5)
    ).double()
    outputs = {}
    with LayerMonitor(model) as mon:
        h1 = model[0](x)
        h1.retain_grad()
        outputs["0"] = h1
        loss = F.cross_entropy(model[4](model[3](model[2](model[1](h1)))), y)
        loss.backward()
        stats = mon.stats()
    assert list(stats) == ["0", "2", "4"]
    assert stats["0"]["activation_std"] == pytest.approx(
        h1.detach().std().item()
    )
    assert stats["0"]["output_grad_norm"] == pytest.approx(
        h1.grad.norm().item()
    )
    assert stats["4"]["weight_grad_norm"] == pytest.approx(
        model[4].weight.grad.norm().item()
    )
    # the hooks are gone after the with-block
    assert not model[0]._forward_hooks and not model[0]._backward_hooks


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda: flat_parameters("net"),
            TypeError,
            r"flat_parameters: 'model' must be a torch.nn.Module; got str.",
        ),
        (
            lambda: flat_loss_function(
                nn.Linear(2, 2), torch.ones(3, 2), torch.ones(4)
            ),
            ValueError,
            r"flat_loss_function: 'x' and 'y' must have the same number of "
            r"rows; got 3 and 4.",
        ),
        (
            lambda: flat_loss_function(nn.Linear(2, 2), [1.0], torch.ones(1)),
            TypeError,
            r"flat_loss_function: 'x' must be a torch.Tensor; got list.",
        ),
        (
            lambda: flat_loss_function(nn.Linear(2, 2), torch.ones(1, 2), None),
            TypeError,
            r"flat_loss_function: 'y' must be a torch.Tensor; got NoneType.",
        ),
        (
            lambda: flat_loss_function(
                nn.Linear(2, 2), torch.ones(1, 2), torch.zeros(1).long()
            )(torch.ones(5)),
            ValueError,
            r"flat_loss_function: 'theta' must be of shape \(6,\); got \(5,\).",
        ),
        (
            lambda: loss_hessian(3, torch.ones(1, 2), torch.ones(1)),
            TypeError,
            r"flat_loss_function: 'model' must be a torch.nn.Module; got int.",
        ),
        (
            lambda: hessian_eigenvalues(torch.ones(2, 3)),
            ValueError,
            r"hessian_eigenvalues: 'hessian' must be a square matrix; got \(2, "
            r"3\).",
        ),
        (
            lambda: hessian_eigenvalues(torch.tensor([[1.0, 2.0], [0.0, 1.0]])),
            ValueError,
            r"hessian_eigenvalues: 'hessian' must be symmetric; got 'a "
            r"non-symmetric matrix'.",
        ),
        (
            lambda: hessian_eigenvalues([[1.0]]),
            TypeError,
            r"hessian_eigenvalues: 'hessian' must be a torch.Tensor; got list.",
        ),
        (
            lambda: hessian_vector_product(1, torch.ones(2), torch.ones(2)),
            TypeError,
            r"hessian_vector_product: 'f' must be a callable; got int.",
        ),
        (
            lambda: hessian_vector_product(sum, [1.0], torch.ones(2)),
            TypeError,
            r"hessian_vector_product: 'theta' must be a torch.Tensor; got "
            r"list.",
        ),
        (
            lambda: hessian_vector_product(sum, torch.ones(2), None),
            TypeError,
            r"hessian_vector_product: 'v' must be a torch.Tensor; got "
            r"NoneType.",
        ),
        (
            lambda: hessian_vector_product(sum, torch.ones(2), torch.ones(3)),
            ValueError,
            r"hessian_vector_product: 'v' must be of the shape of theta "
            r"\(2,\); got \(3,\).",
        ),
        (
            lambda: LayerMonitor("net"),
            TypeError,
            r"LayerMonitor: 'model' must be a torch.nn.Module; got str.",
        ),
        (
            lambda: LayerMonitor(nn.ReLU()),
            ValueError,
            r"LayerMonitor: 'model' must be a model with at least one "
            r"monitored layer; got 'ReLU'.",
        ),
        (
            lambda: LayerMonitor(nn.Linear(1, 1), layer_types=nn.Linear),
            TypeError,
            r"LayerMonitor: 'layer_types' must be a tuple of module classes; "
            r"got type.",
        ),
    ],
)
def test_argument_checks(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
