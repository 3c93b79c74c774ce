"""dlcourse.optim.adaptive_analysis: the wrapper against torch.optim bit for
bit, the constant-gradient steps against their closed forms, the sparse
problem's frequencies and labels against their distributions.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from dlcourse.nn.mlp import make_mlp
from dlcourse.optim.adaptive import (
    adagrad_update_,
    adam_update_,
    notes_adagrad_update_,
    notes_adam_update_,
    rmsprop_update_,
)
from dlcourse.optim.adaptive_analysis import (
    UpdateOptimizer,
    constant_gradient_steps,
    sparse_logistic_data,
    uncorrected_adam_step_ratio,
)


def _train(make_optimizer, steps=30):
    torch.manual_seed(0)
    model = make_mlp([5, 8, 3], generator=torch.Generator().manual_seed(1))
    optimizer = make_optimizer(model.parameters())
    g = torch.Generator().manual_seed(2)
    for _ in range(steps):
        x = torch.randn(16, 5, generator=g)
        y = torch.randint(0, 3, (16,), generator=g)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


@pytest.mark.parametrize(
    "update, twin, hyper",
    [
        (adam_update_, torch.optim.Adam, dict(lr=1e-2, betas=(0.8, 0.99))),
        (adagrad_update_, torch.optim.Adagrad, dict(lr=0.1)),
        (rmsprop_update_, torch.optim.RMSprop, dict(lr=1e-2, alpha=0.9)),
    ],
)
def test_update_optimizer_equals_torch_bit_for_bit(update, twin, hyper):
    ours = _train(lambda p: UpdateOptimizer(p, update, **hyper))
    theirs = _train(lambda p: twin(p, foreach=False, **hyper))
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_update_optimizer_runs_the_notes_form_and_returns_the_closure():
    p = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = UpdateOptimizer([p], notes_adagrad_update_, lr=0.5, eps=1e-6)

    def closure():
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 5.0
    g = torch.tensor([2.0, -4.0])
    expected = torch.tensor([1.0, -2.0]) - 0.5 * g / torch.sqrt(g**2 + 1e-6)
    torch.testing.assert_close(p.detach(), expected)


def test_update_optimizer_skips_parameters_without_gradients():
    p, q = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    opt = UpdateOptimizer([p, q], adam_update_, lr=0.1)
    p.grad = torch.ones(2)
    opt.step()
    assert torch.equal(q.detach(), torch.ones(2)) and not opt.state[q]


def test_update_optimizer_rejects_a_non_callable():
    with pytest.raises(TypeError, match=r"UpdateOptimizer: 'update' must be"):
        UpdateOptimizer([torch.ones(1, requires_grad=True)], "adam", lr=0.1)


def test_update_optimizer_lets_the_update_check_its_hyperparameters():
    p = torch.ones(1, requires_grad=True)
    opt = UpdateOptimizer([p], adam_update_, lr=-1.0)
    p.grad = torch.ones(1)
    with pytest.raises(ValueError, match=r"adam_update_: 'lr' must be >= 0"):
        opt.step()


def test_constant_gradient_steps_of_adam_are_the_learning_rate():
    steps = constant_gradient_steps(adam_update_, steps=50, grad=0.3, lr=0.01)
    torch.testing.assert_close(
        steps, torch.full((50,), 0.01 * 0.3 / (0.3 + 1e-8), dtype=steps.dtype)
    )


def test_notes_adam_steps_follow_the_uncorrected_ratio():
    t = torch.arange(1, 2001)
    for betas in [(0.9, 0.999), (0.5, 0.99), (0.0, 0.9)]:
        steps = constant_gradient_steps(
            notes_adam_update_, steps=2000, grad=2.0, lr=1e-3, betas=betas
        )
        ratio = uncorrected_adam_step_ratio(t, betas=betas)
        # the step is lr m / (sqrt(c) + eps) with m = r1 g, sqrt(c) = r2 |g|
        torch.testing.assert_close(steps / 1e-3, ratio, rtol=1e-6, atol=0)


def test_uncorrected_ratio_closed_form_values():
    r = uncorrected_adam_step_ratio(torch.tensor([1, 2]), betas=(0.9, 0.999))
    torch.testing.assert_close(
        r,
        torch.tensor(
            [0.1 / math.sqrt(0.001), 0.19 / math.sqrt(1 - 0.999**2)],
            dtype=torch.float64,
        ),
    )
    assert uncorrected_adam_step_ratio(3).shape == ()
    # long after the start the bias vanishes
    assert abs(uncorrected_adam_step_ratio(100_000).item() - 1) < 1e-12


def test_rmsprop_first_step_is_lr_over_sqrt_one_minus_alpha():
    steps = constant_gradient_steps(rmsprop_update_, steps=3, lr=1e-3)
    expected = [1e-3 / math.sqrt(1 - 0.99**t) for t in (1, 2, 3)]
    torch.testing.assert_close(
        steps, torch.tensor(expected, dtype=torch.float64), rtol=1e-6, atol=0
    )


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(update=1, steps=3), TypeError, "'update' must be a callable"),
        (dict(update=adam_update_, steps=0), ValueError, "'steps' must be"),
        (
            dict(update=adam_update_, steps=2, grad="1"),
            TypeError,
            "'grad' must be a real number",
        ),
        (
            dict(update=adam_update_, steps=2, grad=math.inf),
            ValueError,
            "'grad' must be finite",
        ),
    ],
)
def test_constant_gradient_steps_checks(kwargs, exc, match):
    with pytest.raises(exc, match=rf"constant_gradient_steps: {match}"):
        constant_gradient_steps(kwargs.pop("update"), **kwargs)


@pytest.mark.parametrize(
    "t, betas, match",
    [
        (0, (0.9, 0.999), "'t' must be step numbers >= 1"),
        (1.5, (0.9, 0.999), "'t' must be step numbers >= 1"),
        (torch.tensor([]), (0.9, 0.999), "'t' must be step numbers >= 1"),
        (1, (0.9,), r"'betas' must be a pair"),
        (1, 0.9, r"'betas' must be a pair"),
        (1, (0.9, 1.0), r"'betas\[1\]' must be"),
        (1, (-0.1, 0.9), r"'betas\[0\]' must be"),
    ],
)
def test_uncorrected_ratio_checks(t, betas, match):
    with pytest.raises(
        ValueError, match=f"uncorrected_adam_step_ratio: {match}"
    ):
        uncorrected_adam_step_ratio(t, betas=betas)


def test_sparse_logistic_data_frequencies_and_labels():
    freqs = [0.5, 0.1, 0.01]
    n = 40_000
    data = sparse_logistic_data(
        n, freqs, generator=torch.Generator().manual_seed(0)
    )
    x, y, w = data["x"], data["y"], data["w"]
    assert x.shape == (n, 3) and y.shape == (n,) and w.shape == (3,)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    for j, p in enumerate(freqs):
        se = math.sqrt(p * (1 - p) / n)
        assert abs(x[:, j].mean().item() - p) < 4 * se
    # labels: the mean of y equals the mean of sigmoid(x w) within 4 s.e.
    prob = torch.sigmoid(x @ w)
    se = math.sqrt((prob * (1 - prob)).sum().item()) / n
    assert abs(y.mean().item() - prob.mean().item()) < 4 * se


def test_sparse_logistic_data_is_reproducible_and_scaled():
    a = sparse_logistic_data(
        50, [0.3, 0.2], generator=torch.Generator().manual_seed(3)
    )
    b = sparse_logistic_data(
        50, [0.3, 0.2], generator=torch.Generator().manual_seed(3)
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = sparse_logistic_data(
        50,
        [0.3, 0.2],
        weight_std=2.0,
        generator=torch.Generator().manual_seed(3),
    )
    torch.testing.assert_close(c["w"], 2 * a["w"])


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((0, [0.5]), {}, ValueError, "'n' must be >= 1"),
        ((10, 0.5), {}, TypeError, "'frequencies' must be a list"),
        ((10, []), {}, ValueError, "'frequencies' must be a non-empty list"),
        ((10, [0.5, 1.5]), {}, ValueError, r"'frequencies\[1\]' must be"),
        ((10, [0.5]), dict(weight_std=-1.0), ValueError, "'weight_std'"),
        ((10, [0.5]), dict(generator=1), TypeError, "'generator' must be"),
    ],
)
def test_sparse_logistic_data_checks(args, kwargs, exc, match):
    with pytest.raises(exc, match=f"sparse_logistic_data: {match}"):
        sparse_logistic_data(*args, **kwargs)
