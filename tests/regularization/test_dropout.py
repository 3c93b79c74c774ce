"""dlcourse.regularization.dropout against torch.nn.Dropout and exact math."""

import itertools
import math

import pytest
import torch
from torch import nn

from dlcourse.regularization.dropout import (
    Dropout,
    all_masks,
    dropout,
    linear_dropout_loss_by_enumeration,
    linear_dropout_penalty,
    linear_dropout_solution,
    mask_ensemble,
    mask_probabilities,
    mc_dropout,
)

PS = [0.1, 0.5, 0.8]


def _x(*shape, seed=0, dtype=torch.float32):
    # nonzero entries, so that a zero in the output is a dropped unit
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g, dtype=dtype) + 0.5) * torch.sign(
        torch.randn(*shape, generator=g, dtype=dtype)
    )


# ------------------------------------------------------ the twin of nn.Dropout


@pytest.mark.parametrize("p", PS)
def test_same_mask_gives_exactly_torch_output_and_gradient(p):
    x = _x(300, 40).requires_grad_()
    torch.manual_seed(3)
    out_torch = nn.Dropout(p)(x)
    (g_torch,) = torch.autograd.grad(out_torch.sum(), x)
    mask = out_torch.detach() != 0  # torch's mask, read off its output
    out_ours = dropout(x, p, mask=mask)
    (g_ours,) = torch.autograd.grad(out_ours.sum(), x)
    torch.testing.assert_close(out_ours, out_torch, rtol=0, atol=0)
    torch.testing.assert_close(g_ours, g_torch, rtol=0, atol=0)


@pytest.mark.parametrize("p", PS)
def test_same_seed_gives_the_same_draw_as_torch(p):
    x = _x(64, 128)
    torch.manual_seed(7)
    expected = nn.Dropout(p)(x)
    torch.manual_seed(7)
    assert torch.equal(Dropout(p)(x), expected)
    torch.manual_seed(7)
    assert torch.equal(dropout(x, p), expected)


@pytest.mark.parametrize("p", PS)
def test_output_mean_and_variance_match_theory_and_torch(p):
    # E[x m / (1-p)] = x, Var = x^2 p / (1-p); 400k draws of x = 1.5
    n, x = 400_000, 1.5
    ones = torch.full((n,), x)
    g = torch.Generator().manual_seed(11)
    ours = Dropout(p, generator=g)(ones).double()
    torch.manual_seed(11)
    theirs = nn.Dropout(p)(ones).double()
    var = x**2 * p / (1 - p)
    # standard errors of the sample mean, variance and drop rate; with
    # q = 1 - p, X - x is x p / q (prob. q) or -x (prob. p)
    q = 1 - p
    se_mean = math.sqrt(var / n)
    mu4 = q * (x * p / q) ** 4 + p * x**4  # E[(X - x)^4]
    se_var = math.sqrt(mu4 / n - var**2 * (n - 3) / (n * (n - 1)))
    se_rate = math.sqrt(p * (1 - p) / n)
    for out in (ours, theirs):
        assert abs(out.mean().item() - x) < 5 * se_mean
        assert abs(out.var().item() - var) < 5 * se_var
        assert abs((out == 0).double().mean().item() - p) < 5 * se_rate
        values = out.unique().tolist()
        assert values[0] == 0.0 and values[1:] == [pytest.approx(x / q)]


def test_each_unit_is_dropped_independently():
    # pairs of units: P(both kept) = (1 - p)^2, within 5 standard errors
    p, n = 0.3, 200_000
    g = torch.Generator().manual_seed(5)
    kept = dropout(torch.ones(n, 2), p, generator=g) != 0
    both = (kept[:, 0] & kept[:, 1]).double().mean().item()
    q = (1 - p) ** 2
    assert abs(both - q) < 5 * math.sqrt(q * (1 - q) / n)


def test_eval_mode_and_training_false_are_the_identity():
    x = _x(5, 7)
    model = Dropout(0.5).eval()
    assert model(x) is x and nn.Dropout(0.5).eval()(x) is x
    assert dropout(x, 0.9, training=False) is x
    torch.testing.assert_close(dropout(x, 0.0), x, rtol=0, atol=0)
    assert repr(Dropout(0.25)) == "Dropout(p=0.25)"


def test_generator_makes_the_mask_repeatable():
    x = _x(50, 50)
    a = dropout(x, 0.5, generator=torch.Generator().manual_seed(1))
    b = dropout(x, 0.5, generator=torch.Generator().manual_seed(1))
    c = dropout(x, 0.5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_input_and_hidden_dropout_in_a_network_match_torch():
    # the same net with torch's and our modules, on input and hidden units:
    # after the same seed, the same draws, so the same training output
    def net(drop):
        torch.manual_seed(0)
        return nn.Sequential(
            drop(0.2), nn.Linear(20, 30), nn.ReLU(), drop(0.5), nn.Linear(30, 4)
        )

    x = _x(64, 20)
    train, test = [], []
    for drop in (nn.Dropout, Dropout):
        model = net(drop)
        torch.manual_seed(9)
        train.append(model(x))
        test.append(model.eval()(x))
    torch.testing.assert_close(train[1], train[0], rtol=0, atol=0)
    torch.testing.assert_close(test[1], test[0], rtol=0, atol=0)
    assert not torch.equal(train[0], test[0])


def test_a_tensor_of_p_drops_each_model_at_its_own_rate():
    p = torch.tensor([0.0, 0.25, 0.75]).view(3, 1, 1)  # 3 stacked models
    g = torch.Generator().manual_seed(4)
    out = dropout(torch.ones(3, 20_000, 10), p, generator=g)
    rates = (out == 0).double().mean(dim=(1, 2))
    torch.testing.assert_close(rates, p.flatten().double(), atol=0.01, rtol=0)
    torch.testing.assert_close(
        out.mean(dim=(1, 2)).double(),
        torch.ones(3, dtype=torch.float64),
        atol=0.03,
        rtol=0,
    )
    kept = out[2][out[2] != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 4.0))


# --------------------------------------------------------- argument checks


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_p_outside_zero_one_is_refused(bad):
    match = r"dropout: 'p' must be (in \[0, 1\)|finite); got"
    with pytest.raises(ValueError, match=match):
        dropout(torch.ones(3), bad)
    with pytest.raises(ValueError, match=r"Dropout: 'p' must be"):
        Dropout(bad)


def test_p_of_the_wrong_type_and_bad_tensors_are_refused():
    with pytest.raises(TypeError, match=r"dropout: 'p' must be a real number"):
        dropout(torch.ones(3), "0.5")
    with pytest.raises(TypeError, match=r"Dropout: 'p' must be a real number"):
        Dropout(True)
    with pytest.raises(ValueError, match=r"'p' must be in \[0, 1\) .*got a "):
        dropout(torch.ones(2, 3), torch.tensor([[0.5], [1.0]]))
    with pytest.raises(TypeError, match=r"'p' must be a real number or a "):
        dropout(torch.ones(3), torch.tensor([1, 0]))  # integer tensor


def test_other_arguments_of_dropout_are_checked():
    with pytest.raises(TypeError, match=r"dropout: 'x' must be a torch.Tensor"):
        dropout([1.0, 2.0], 0.5)
    with pytest.raises(TypeError, match=r"dropout: 'training' must be a bool"):
        dropout(torch.ones(3), 0.5, training=1)
    with pytest.raises(TypeError, match=r"dropout: 'generator' must be"):
        dropout(torch.ones(3), 0.5, generator=0)
    with pytest.raises(TypeError, match=r"Dropout: 'generator' must be"):
        Dropout(0.5, generator=0)
    with pytest.raises(TypeError, match=r"dropout: 'mask' must be a torch"):
        dropout(torch.ones(3), 0.5, mask=[1, 0, 1])
    with pytest.raises(ValueError, match=r"'mask' must hold only 0 and 1"):
        dropout(torch.ones(3), 0.5, mask=torch.tensor([1.0, 0.5, 0.0]))


# ------------------------------------------------------ the mask ensemble


def test_all_masks_are_every_binary_vector_once():
    masks = all_masks(4)
    assert masks.shape == (16, 4) and masks.dtype == torch.float64
    assert {tuple(r) for r in masks.int().tolist()} == set(
        itertools.product((0, 1), repeat=4)
    )
    assert masks[0].sum() == 0 and masks[-1].sum() == 4
    with pytest.raises(ValueError, match=r"all_masks: 'd' must be >= 1"):
        all_masks(0)
    with pytest.raises(ValueError, match=r"all_masks: 'd' must be <= 20"):
        all_masks(21)
    with pytest.raises(TypeError, match=r"all_masks: 'd' must be an int"):
        all_masks(3.0)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_mask_probabilities_are_the_bernoulli_product(p):
    masks = all_masks(5)
    probs = mask_probabilities(masks, p)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-14)
    for m, q in zip(masks.tolist()[:8], probs.tolist()):
        assert q == pytest.approx(
            math.prod((1 - p) if b else p for b in m), rel=1e-14
        )
    if p == 0.5:
        torch.testing.assert_close(probs, torch.full_like(probs, 2.0**-5))
    with pytest.raises(ValueError, match=r"mask_probabilities: 'p' must"):
        mask_probabilities(masks, 1.0)
    with pytest.raises(TypeError, match=r"mask_probabilities: 'masks' must"):
        mask_probabilities([[0, 1]], 0.5)


def _small_net(d_in=6, d=5, width=7, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)

    def w(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    W1, b1, W2, b2 = w(d, d_in), w(d), w(width, d), w(width)
    W3, b3, W_out = w(k, width), w(k), w(k, d)

    def hidden_then_relu(x, scaled):  # dropout on d units before a ReLU layer
        h = torch.relu(x @ W1.T + b1) * scaled  # (M, N, d)
        return torch.relu(h @ W2.T + b2) @ W3.T + b3

    def last_layer(x, scaled):  # dropout on the last hidden layer: affine
        return (torch.relu(x @ W1.T + b1) * scaled) @ W_out.T + b3

    return hidden_then_relu, last_layer


def test_mask_ensemble_equals_a_loop_over_every_mask():
    forward, _ = _small_net()
    x = torch.randn(9, 6, generator=torch.Generator().manual_seed(1)).double()
    p = 0.3
    out = mask_ensemble(forward, x, 5, p, chunk=7)
    arith = 0.0
    log_geo = 0.0
    for m in all_masks(5):
        q = mask_probabilities(m, p)
        probs = torch.softmax(forward(x, (m / (1 - p)).view(1, 1, 5))[0], -1)
        arith = arith + q * probs
        log_geo = log_geo + q * probs.log()
    torch.testing.assert_close(out["arithmetic"], arith)
    torch.testing.assert_close(out["geometric"], torch.softmax(log_geo, -1))
    torch.testing.assert_close(
        out["arithmetic"].sum(-1), torch.ones(9, dtype=torch.float64)
    )


def test_notes_uniform_root_is_the_geometric_mean_at_one_half_only():
    forward, _ = _small_net(seed=2)
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(3)).double()
    scaled = all_masks(5).unsqueeze(1) / 0.5
    log_p = torch.log_softmax(forward(x, scaled), -1)
    root = torch.softmax(log_p.mean(0), -1)  # (prod_mu p)^(1/2^d), normalized
    torch.testing.assert_close(
        mask_ensemble(forward, x, 5, 0.5)["geometric"], root
    )
    assert not torch.allclose(
        mask_ensemble(forward, x, 5, 0.2)["geometric"], root, atol=1e-3
    )


def test_weight_scaling_is_the_exact_geometric_mean_for_affine_logits():
    hidden_then_relu, last_layer = _small_net(seed=4)
    x = torch.randn(20, 6, generator=torch.Generator().manual_seed(5)).double()
    ones = torch.ones(1, 1, 5, dtype=torch.float64)
    for p in (0.1, 0.5, 0.7):
        geo = mask_ensemble(last_layer, x, 5, p)["geometric"]
        scaled = torch.softmax(last_layer(x, ones), -1)[0]
        torch.testing.assert_close(geo, scaled, rtol=0, atol=1e-12)
        # with a ReLU after the dropped units it is an approximation only
        geo = mask_ensemble(hidden_then_relu, x, 5, p)["geometric"]
        scaled = torch.softmax(hidden_then_relu(x, ones), -1)[0]
        assert (geo - scaled).abs().max() > 1e-3


def test_mc_dropout_is_an_unbiased_estimate_of_the_arithmetic_mean():
    forward, _ = _small_net(seed=6)
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(7)).double()
    p, n = 0.4, 40_000
    exact = mask_ensemble(forward, x, 5, p)["arithmetic"]
    g = torch.Generator().manual_seed(8)
    est = mc_dropout(forward, x, 5, p, samples=n, generator=g)
    # per-entry standard error from the spread of single-pass predictions
    passes = torch.stack(
        [
            mc_dropout(forward, x, 5, p, samples=1, generator=g)
            for _ in range(400)
        ]
    )
    assert passes.shape == (400, *exact.shape) and est.shape == exact.shape
    se = passes.std(0) / math.sqrt(n)
    assert ((est - exact).abs() <= 5 * se + 1e-12).all()


def test_ensemble_arguments_are_checked():
    forward, _ = _small_net()
    x = torch.zeros(2, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"mask_ensemble: 'p' must be in"):
        mask_ensemble(forward, x, 5, -0.5)
    with pytest.raises(ValueError, match=r"mask_ensemble: 'chunk' must be >="):
        mask_ensemble(forward, x, 5, 0.5, chunk=0)
    with pytest.raises(ValueError, match=r"all_masks: 'd' must be <= 20"):
        mask_ensemble(forward, x, 25, 0.5)
    with pytest.raises(ValueError, match=r"mc_dropout: 'samples' must be >="):
        mc_dropout(forward, x, 5, 0.5, samples=0)
    with pytest.raises(ValueError, match=r"mc_dropout: 'p' must be in"):
        mc_dropout(forward, x, 5, 1.0, samples=3)
    with pytest.raises(TypeError, match=r"mc_dropout: 'generator' must be"):
        mc_dropout(forward, x, 5, 0.5, samples=3, generator=1)
    with pytest.raises(ValueError, match=r"mc_dropout: 'd' must be >= 1"):
        mc_dropout(forward, x, 0, 0.5, samples=3)
    with pytest.raises(TypeError, match=r"mask_ensemble: 'forward' must be a"):
        mask_ensemble(None, x, 5, 0.5)
    with pytest.raises(TypeError, match=r"mc_dropout: 'x' must be a torch"):
        mc_dropout(forward, x.tolist(), 5, 0.5, samples=3)
    with pytest.raises(ValueError, match=r"mask_ensemble: 'x' must be \(N, "):
        mask_ensemble(forward, x[0], 5, 0.5)


# ----------------------------------------- linear regression: per-feature L2


def _regression(n=30, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(0.3, 3.0, d, dtype=torch.float64)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    y = torch.randn(n, generator=g, dtype=torch.float64)
    w = torch.randn(d, generator=g, dtype=torch.float64)
    return X, y, w


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
def test_expected_dropout_loss_is_the_loss_plus_the_penalty(p):
    X, y, w = _regression()
    exact = linear_dropout_loss_by_enumeration(X, y, w, p)
    closed = (y - X @ w).pow(2).sum() + linear_dropout_penalty(X, w, p)
    torch.testing.assert_close(exact, closed, rtol=1e-12, atol=0)
    by_hand = (
        p
        / (1 - p)
        * sum(w[j] ** 2 * (X[:, j] @ X[:, j]) for j in range(X.shape[1]))
    )
    torch.testing.assert_close(linear_dropout_penalty(X, w, p), by_hand)


def test_dropout_solution_minimizes_the_expected_loss():
    X, y, _ = _regression(seed=1)
    p = 0.3
    w = linear_dropout_solution(X, y, p).requires_grad_()
    loss = (y - X @ w).pow(2).sum() + linear_dropout_penalty(X, w, p)
    (grad,) = torch.autograd.grad(loss, w)
    assert grad.abs().max().item() < 1e-10
    # and the enumerated loss is larger at any perturbed point
    for seed in range(5):
        step = 1e-2 * torch.randn(
            5, generator=torch.Generator().manual_seed(seed), dtype=X.dtype
        )
        assert linear_dropout_loss_by_enumeration(
            X, y, w.detach() + step, p
        ) > linear_dropout_loss_by_enumeration(X, y, w.detach(), p)


def test_dropout_solution_is_ridge_when_every_column_has_the_same_norm():
    X, y, _ = _regression(seed=2)
    X = X / X.norm(dim=0) * 2.0  # (X^T X)_jj = 4 for every j
    p = 0.25
    ridge = torch.linalg.solve(
        X.T @ X + p / (1 - p) * 4.0 * torch.eye(5, dtype=X.dtype), X.T @ y
    )
    torch.testing.assert_close(linear_dropout_solution(X, y, p), ridge)


def test_dropout_fit_does_not_depend_on_the_scale_of_a_feature():
    X, y, _ = _regression(seed=3)
    scale = torch.tensor([1.0, 10.0, 0.1, 1.0, 3.0], dtype=X.dtype)
    w = linear_dropout_solution(X, y, 0.4)
    w_scaled = linear_dropout_solution(X * scale, y, 0.4)
    torch.testing.assert_close(X @ w, (X * scale) @ w_scaled)


def test_linear_arguments_are_checked():
    X, y, w = _regression()
    with pytest.raises(ValueError, match=r"linear_dropout_penalty: 'p' must"):
        linear_dropout_penalty(X, w, 1.0)
    with pytest.raises(ValueError, match=r"'X' must be \(n, d\), 'y' \(n,\)"):
        linear_dropout_loss_by_enumeration(X, y[:-1], w, 0.5)
    with pytest.raises(ValueError, match=r"linear_dropout_penalty: 'X' must"):
        linear_dropout_penalty(X, w[:-1], 0.5)
    with pytest.raises(ValueError, match=r"linear_dropout_solution: 'X' must"):
        linear_dropout_solution(X[0], y, 0.5)
    with pytest.raises(TypeError, match=r"linear_dropout_solution: 'y' must"):
        linear_dropout_solution(X, y.tolist(), 0.5)
    with pytest.raises(ValueError, match=r"linear_dropout_solution: 'p' must"):
        linear_dropout_solution(X, y, -1e-3)
