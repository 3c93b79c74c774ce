"""dlcourse.regularization.norm_penalties against PyTorch and exact math."""

import pytest
import torch
from torch import nn

from dlcourse.nn import make_mlp
from dlcourse.regularization import (
    decoupled_weight_decay_,
    l1_penalty,
    l1_proximal_step_,
    l2_penalty,
    soft_threshold,
    soft_threshold_,
    weight_decay_groups,
    weight_parameters,
)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)
    )


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_weight_parameters_are_the_matrices_only():
    model = _net()
    chosen = weight_parameters(model)
    assert [tuple(p.shape) for p in chosen] == [(8, 4), (3, 8)]
    # biases and BatchNorm's 1-D scale are left out
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in chosen) == ["0.weight", "3.weight"]


def test_weight_decay_groups_cover_every_parameter_once():
    model = _net()
    groups = weight_decay_groups(model, 0.1)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]


@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.5])
def test_l2_gradient_is_what_sgd_weight_decay_adds(lam):
    w = torch.randn(
        6, 5, generator=torch.Generator().manual_seed(1), requires_grad=True
    )
    (grad,) = torch.autograd.grad(l2_penalty([w], lam), w)
    w_sgd = w.detach().clone().requires_grad_()
    w_sgd.grad = torch.zeros_like(w_sgd)
    torch.optim.SGD([w_sgd], lr=1.0, weight_decay=lam).step()
    torch.testing.assert_close(w.detach() - w_sgd.detach(), grad)
    torch.testing.assert_close(grad, lam * w.detach())


def test_notes_penalty_is_weight_decay_two_lambda():
    w = torch.randn(
        7, generator=torch.Generator().manual_seed(2), requires_grad=True
    )
    lam_notes = 0.03
    (g_notes,) = torch.autograd.grad(lam_notes * w.dot(w), w)
    (g_ours,) = torch.autograd.grad(l2_penalty([w], 2 * lam_notes), w)
    torch.testing.assert_close(g_ours, g_notes)


def test_penalty_values_match_closed_forms():
    a = torch.tensor([[1.0, -2.0], [3.0, 0.0]])
    b = torch.tensor([-0.5, 0.5, 1.0])
    assert l2_penalty([a, b], 2.0).item() == pytest.approx(
        0.5 * 2.0 * (14.0 + 1.5)
    )
    assert l1_penalty([a, b], 0.1).item() == pytest.approx(0.1 * (6.0 + 2.0))
    assert l2_penalty(a, 1.0).item() == pytest.approx(
        7.0
    )  # a single tensor is accepted
    assert (
        l2_penalty([], 1.0).item() == 0.0 and l1_penalty([], 1.0).item() == 0.0
    )


def test_l1_gradient_is_lambda_sign():
    w = torch.tensor([-2.0, 0.0, 0.5], requires_grad=True)
    (g,) = torch.autograd.grad(l1_penalty([w], 0.3), w)
    torch.testing.assert_close(g, torch.tensor([-0.3, 0.0, 0.3]))


def test_soft_threshold_is_the_exact_proximal_minimizer():
    # argmin_v 0.5 (v - z)^2 + t |v| by enumeration on a grid of step 1e-5
    grid = torch.linspace(-4, 4, 800_001, dtype=torch.float64)
    z = torch.empty(40, dtype=torch.float64).uniform_(
        -3, 3, generator=torch.Generator().manual_seed(3)
    )
    for t in (0.0, 0.25, 1.0):
        obj = 0.5 * (grid[None] - z[:, None]) ** 2 + t * grid.abs()[None]
        torch.testing.assert_close(
            soft_threshold(z, t), grid[obj.argmin(1)], atol=1e-5, rtol=0
        )


def test_soft_threshold_zeroes_the_band_and_in_place_matches():
    x = torch.tensor([-1.0, -0.2, 0.0, 0.1, 0.3, 2.0])
    out = soft_threshold(x, 0.3)
    assert torch.equal(out == 0, x.abs() <= 0.3)
    y = x.clone()
    assert soft_threshold_(y, 0.3) is y
    torch.testing.assert_close(y, out)


def test_proximal_step_thresholds_by_lr_times_lambda():
    w = torch.tensor([0.05, -0.5, 0.2])
    l1_proximal_step_([w], lr=0.1, lam=1.0)
    torch.testing.assert_close(w, torch.tensor([0.0, -0.4, 0.1]))


def _train(make_opt, steps=25, dtype=torch.float64, before=None):
    model = make_mlp([5, 16, 3], generator=torch.Generator().manual_seed(0)).to(
        dtype
    )
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 5, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (64,), generator=g)
    opt = make_opt(model)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        if before is not None:
            before(model)
        opt.step()
    return _flat(model)


def test_decoupled_decay_equals_coupled_l2_for_plain_sgd():
    lr, lam = 0.2, 0.05
    coupled = _train(
        lambda m: torch.optim.SGD(weight_decay_groups(m, lam), lr=lr)
    )
    decoupled = _train(
        lambda m: torch.optim.SGD(m.parameters(), lr=lr),
        before=lambda m: decoupled_weight_decay_(
            weight_parameters(m), lr=lr, weight_decay=lam
        ),
    )
    torch.testing.assert_close(decoupled, coupled)


def test_decoupled_decay_before_adam_is_adamw():
    lr, lam = 1e-2, 0.1
    adamw = _train(
        lambda m: torch.optim.AdamW(weight_decay_groups(m, lam), lr=lr)
    )
    ours = _train(
        lambda m: torch.optim.Adam(m.parameters(), lr=lr),
        before=lambda m: decoupled_weight_decay_(
            weight_parameters(m), lr=lr, weight_decay=lam
        ),
    )
    torch.testing.assert_close(ours, adamw)
    coupled = _train(
        lambda m: torch.optim.Adam(weight_decay_groups(m, lam), lr=lr)
    )
    assert (coupled - adamw).abs().max() > 1e-3  # Adam + L2 is another method


def test_momentum_coupled_l2_has_the_fixed_point_of_decay_over_1_minus_gamma():
    # full-batch momentum GD on 1/2 (w - b)^T H (w - b): coupled lam and
    # decoupled lam / (1 - gamma) both converge to (H + lam I)^-1 H b
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 6, generator=g, dtype=torch.float64)
    h = a @ a.T / 6 + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    lr, gamma, lam = 0.1, 0.9, 0.3

    def run(coupled, decoupled):
        w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([w], lr=lr, momentum=gamma, weight_decay=coupled)
        for _ in range(2000):
            w.grad = h @ (w.detach() - b)
            decoupled_weight_decay_([w], lr=lr, weight_decay=decoupled)
            opt.step()
        return w.detach()

    def penalized(lam_):
        return torch.linalg.solve(
            h + lam_ * torch.eye(6, dtype=torch.float64), h @ b
        )

    torch.testing.assert_close(run(lam, 0.0), penalized(lam))
    torch.testing.assert_close(run(0.0, lam / (1 - gamma)), penalized(lam))
    # decoupled lam: the fixed point of the weaker penalty (1 - gamma) lam
    torch.testing.assert_close(run(0.0, lam), penalized((1 - gamma) * lam))


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: l2_penalty([torch.ones(2)], -1.0),
            r"l2_penalty: 'lam' must be >= 0; got -1.0",
        ),
        (
            lambda: l1_penalty([torch.ones(2)], float("nan")),
            r"l1_penalty: 'lam' must be finite",
        ),
        (
            lambda: soft_threshold(torch.ones(2), -0.1),
            r"soft_threshold: 'threshold' must be >= 0",
        ),
        (
            lambda: soft_threshold_(torch.ones(2), -0.1),
            r"soft_threshold_: 'threshold' must be >= 0",
        ),
        (
            lambda: l1_proximal_step_([torch.ones(2)], lr=-1.0, lam=0.1),
            r"'lr' must be >= 0",
        ),
        (
            lambda: l1_proximal_step_([torch.ones(2)], lr=0.1, lam=-1.0),
            r"'lam' must be >= 0",
        ),
        (
            lambda: decoupled_weight_decay_(
                [torch.ones(2)], lr=0.1, weight_decay=-1
            ),
            r"'weight_decay' must be >= 0",
        ),
        (
            lambda: decoupled_weight_decay_(
                [torch.ones(2)], lr=-0.1, weight_decay=1
            ),
            r"'lr' must be >= 0",
        ),
        (
            lambda: weight_decay_groups(_net(), -0.5),
            r"weight_decay_groups: 'weight_decay' must be >= 0",
        ),
    ],
)
def test_bad_values_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: l2_penalty([[1.0, 2.0]], 0.1),
            r"l2_penalty: 'params\[0\]' must be a torch.Tensor; got list",
        ),
        (
            lambda: l1_penalty([torch.ones(1), 3.0], 0.1),
            r"l1_penalty: 'params\[1\]' must be a torch.Tensor; got float",
        ),
        (
            lambda: l2_penalty([torch.ones(1)], "0.1"),
            r"l2_penalty: 'lam' must be a real number; got str",
        ),
        (
            lambda: soft_threshold([1.0], 0.1),
            r"soft_threshold: 'x' must be a torch.Tensor",
        ),
        (
            lambda: soft_threshold_([1.0], 0.1),
            r"soft_threshold_: 'x' must be a torch.Tensor",
        ),
        (
            lambda: weight_parameters("model"),
            r"weight_parameters: 'model' must be a torch.nn.Module; got str",
        ),
        (
            lambda: l1_proximal_step_([1.0], lr=0.1, lam=0.1),
            r"l1_proximal_step_: 'params\[0\]' must be a torch.Tensor",
        ),
        (
            lambda: decoupled_weight_decay_([1.0], lr=0.1, weight_decay=0.1),
            r"decoupled_weight_decay_: 'params\[0\]'",
        ),
    ],
)
def test_bad_types_raise_type_error(call, match):
    with pytest.raises(TypeError, match=match):
        call()
