"""dlcourse.regularization.noise and .calibration: PyTorch and exact math."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.nn import make_mlp
from dlcourse.regularization.calibration import (
    expected_calibration_error,
    label_smoothing_cross_entropy,
    notes_to_torch_epsilon,
    smoothed_targets,
)
from dlcourse.regularization.noise import (
    add_input_noise,
    noisy_least_squares,
    perturbed_weights,
    weight_noise_loss,
    weight_noise_terms,
)
from dlcourse.regularization.underconstrained import ridge

# torch.func warns about torch.jit.script on its first use, inside torch itself
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _regression(n=30, d=4, seed=0):
    g = _gen(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = X @ torch.randn(
        d, generator=g, dtype=torch.float64
    ) + 0.3 * torch.randn(n, generator=g, dtype=torch.float64)
    return X, y


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


# ------------------------------------------------------------- label smoothing


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.1, 0.3, 1.0])
@pytest.mark.parametrize("k, n", [(2, 1), (3, 7), (10, 64)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_form_matches_cross_entropy_label_smoothing(eps, k, n, reduction):
    g = _gen(k + n)
    logits = 3 * torch.randn(n, k, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g)
    ours = label_smoothing_cross_entropy(
        logits, y, eps=eps, reduction=reduction
    )
    ref = F.cross_entropy(logits, y, label_smoothing=eps, reduction=reduction)
    torch.testing.assert_close(ours, ref)


def test_torch_form_gradient_matches_cross_entropy():
    g = _gen(4)
    logits = torch.randn(16, 5, generator=g, requires_grad=True)
    y = torch.randint(0, 5, (16,), generator=g)
    (ours,) = torch.autograd.grad(
        label_smoothing_cross_entropy(logits, y, eps=0.2), logits
    )
    (ref,) = torch.autograd.grad(
        F.cross_entropy(logits, y, label_smoothing=0.2), logits
    )
    torch.testing.assert_close(ours, ref)


def test_notes_targets_by_hand():
    q = smoothed_targets(
        torch.tensor([2, 0]), num_classes=4, eps=0.3, form="notes"
    )
    expected = torch.tensor([[0.1, 0.1, 0.7, 0.1], [0.7, 0.1, 0.1, 0.1]])
    torch.testing.assert_close(q, expected)
    q_torch = smoothed_targets(
        torch.tensor([2, 0]), num_classes=4, eps=0.3, form="torch"
    )
    expected_torch = torch.tensor(
        [[0.075, 0.075, 0.775, 0.075], [0.775, 0.075, 0.075, 0.075]]
    )
    torch.testing.assert_close(q_torch, expected_torch)


def test_notes_loss_by_hand():
    # -sum_j q_j log softmax(z)_j with q = (0.8, 0.1, 0.1), written out
    logits = torch.tensor([[1.0, 2.0, 0.5]], dtype=torch.float64)
    z = torch.logsumexp(logits[0], 0)
    by_hand = -(0.8 * (2.0 - z) + 0.1 * (1.0 - z) + 0.1 * (0.5 - z))
    ours = label_smoothing_cross_entropy(
        logits, torch.tensor([1]), eps=0.2, form="notes"
    )
    torch.testing.assert_close(ours, by_hand)


@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.4])
def test_notes_form_is_torch_form_with_rescaled_eps(k, eps):
    eps = min(eps, (k - 1) / k)  # keep eps' <= 1
    g = _gen(k)
    logits = torch.randn(9, k, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (9,), generator=g)
    eps_torch = notes_to_torch_epsilon(eps, num_classes=k)
    assert eps_torch == pytest.approx(eps * k / (k - 1))
    notes = label_smoothing_cross_entropy(logits, y, eps=eps, form="notes")
    torch.testing.assert_close(
        notes, F.cross_entropy(logits, y, label_smoothing=eps_torch)
    )
    if eps > 0:  # with the same eps the two forms differ
        assert not torch.allclose(
            notes, F.cross_entropy(logits, y, label_smoothing=eps)
        )


def test_rows_sum_to_one_and_eps_zero_is_one_hot():
    y = torch.tensor([0, 3, 1])
    for form in ("notes", "torch"):
        torch.testing.assert_close(
            smoothed_targets(y, num_classes=5, eps=0.25, form=form).sum(1),
            torch.ones(3),
        )
        torch.testing.assert_close(
            smoothed_targets(y, num_classes=5, eps=0.0, form=form),
            F.one_hot(y, 5).float(),
        )


@pytest.mark.parametrize("k", [2, 3, 7, 10])
def test_notes_eps_upper_bound_gives_uniform_targets_and_torch_eps_one(k):
    # eps = (k-1)/k is the largest notes' eps: uniform targets, PyTorch's 1
    eps = (k - 1) / k
    y = torch.arange(k) % k
    q = smoothed_targets(y, num_classes=k, eps=eps, form="notes")
    torch.testing.assert_close(q, torch.full((k, k), 1 / k))
    assert notes_to_torch_epsilon(eps, num_classes=k) == 1.0
    logits = torch.randn(k, k, generator=_gen(k), dtype=torch.float64)
    torch.testing.assert_close(
        label_smoothing_cross_entropy(logits, y, eps=eps, form="notes"),
        F.cross_entropy(logits, y, label_smoothing=1.0),
    )


_K10_LOGITS, _K10_LABELS = torch.zeros(4, 10), torch.tensor([0, 3, 5, 9])


@pytest.mark.parametrize(
    "name, call",
    [
        (
            "smoothed_targets",
            lambda e: smoothed_targets(
                _K10_LABELS, num_classes=10, eps=e, form="notes"
            ),
        ),
        (
            "notes_to_torch_epsilon",
            lambda e: notes_to_torch_epsilon(e, num_classes=10),
        ),
        (
            "label_smoothing_cross_entropy",
            lambda e: label_smoothing_cross_entropy(
                _K10_LOGITS, _K10_LABELS, eps=e, form="notes"
            ),
        ),
    ],
)
@pytest.mark.parametrize("eps", [0.95, 0.9001, 1.0])
def test_notes_eps_above_k_minus_1_over_k_is_rejected(name, call, eps):
    # PyTorch's label_smoothing = eps k/(k-1) would exceed 1
    assert eps * 10 / 9 > 1
    match = (
        rf"{name}: 'eps' must be in \[0, \(k-1\)/k\] = \[0, 0.9\] for "
        rf"form='notes' with k = 10 classes .*; got {eps}\."
    )
    with pytest.raises(ValueError, match=match):
        call(eps)
    call(0.9)  # the bound itself is allowed
    # PyTorch's form allows every eps in [0, 1] (a mixture with uniform)
    q = smoothed_targets(_K10_LABELS, num_classes=10, eps=eps, form="torch")
    torch.testing.assert_close(q.sum(1), torch.ones(4))


# ---------------------------------------------------------------- calibration


def test_ece_hand_computed_example():
    # confidences 0.9, 0.9 (one right), 0.6 (right), 0.3 (wrong); 10 bins
    probs = torch.tensor(
        [[0.9, 0.1, 0.0], [0.05, 0.9, 0.05], [0.6, 0.4, 0.0], [0.3, 0.3, 0.4]]
    )
    y = torch.tensor([0, 0, 0, 1])
    ece, rel = expected_calibration_error(probs, y, n_bins=10)
    # bin (0.8, 0.9]: 2 examples, acc 0.5, conf 0.9;
    # bin (0.5, 0.6]: acc 1, conf 0.6;
    # bin (0.3, 0.4]: conf 0.4 (argmax is class 2), acc 0
    assert ece == pytest.approx((2 * 0.4 + 0.4 + 0.4) / 4)
    assert rel.count.tolist() == [0, 0, 0, 1, 0, 1, 0, 0, 2, 0]
    torch.testing.assert_close(
        rel.accuracy[[3, 5, 8]], torch.tensor([0.0, 1.0, 0.5])
    )
    torch.testing.assert_close(
        rel.confidence[[3, 5, 8]], torch.tensor([0.4, 0.6, 0.9])
    )
    assert torch.isnan(rel.accuracy[0]) and len(rel.edges) == 11


def test_ece_one_bin_is_gap_of_means_and_perfect_calibration_is_zero():
    g = _gen(1)
    probs = torch.softmax(torch.randn(50, 4, generator=g), 1)
    y = torch.randint(0, 4, (50,), generator=g)
    ece, _ = expected_calibration_error(probs, y, n_bins=1)
    conf, pred = probs.max(1)
    assert ece == pytest.approx(
        abs((pred == y).float().mean().item() - conf.mean().item()), abs=1e-6
    )
    # confidence 0.75 everywhere, exactly 3 of 4 right: calibrated
    probs = torch.tensor([[0.75, 0.25]] * 8)
    y = torch.tensor([0, 0, 0, 1, 0, 0, 0, 1])
    assert expected_calibration_error(probs, y, n_bins=15)[0] == pytest.approx(
        0.0, abs=1e-7
    )


def test_ece_bin_edges_are_right_closed():
    probs = torch.tensor([[0.5, 0.5], [0.5000001, 0.4999999]])
    _, rel = expected_calibration_error(probs, torch.tensor([0, 0]), n_bins=2)
    # 0.5 is in (0, 0.5], 0.5000001 in (0.5, 1]
    assert rel.count.tolist() == [1, 1]


# ---------------------------------------------------------------- input noise


def test_input_noise_moments_and_reproducibility():
    x = torch.zeros(20000, 3, dtype=torch.float64)
    a = add_input_noise(x, sigma=0.5, generator=_gen(3))
    b = add_input_noise(x, sigma=0.5, generator=_gen(3))
    assert torch.equal(a, b)
    assert abs(a.std().item() - 0.5) < 0.01 and abs(a.mean().item()) < 0.01
    assert torch.equal(add_input_noise(x, sigma=0.0, generator=_gen(3)), x)


def test_expected_noisy_loss_minimizer_is_ridge_by_enumeration():
    # The noisy loss is quadratic in E, so its expectation depends only on the
    # first two moments of the noise: sign noise (+-1, mean 0, variance 1)
    # gives the same expectation as Gaussian noise, and with it the
    # expectation is a finite average over all 2^(n d) sign patterns. Least
    # squares on all noisy copies = minimizer of the expected loss.
    X, y = _regression(n=4, d=2, seed=5)
    n, d = X.shape
    sigma = 0.8
    signs = torch.cartesian_prod(
        *[torch.tensor([-1.0, 1.0], dtype=X.dtype)] * (n * d)
    ).reshape(-1, n, d)
    X_all = (X + sigma * signs).reshape(-1, d)  # (2^(n d) * n, d)
    y_all = y.repeat(len(signs))
    w_expected = torch.linalg.lstsq(X_all, y_all[:, None]).solution[:, 0]
    torch.testing.assert_close(ridge(X, y, alpha=n * sigma**2), w_expected)


def test_noisy_least_squares_converges_to_ridge():
    X, y = _regression()
    sigma = 0.5
    w_ridge = ridge(X, y, alpha=X.shape[0] * sigma**2)
    errors = [
        (
            noisy_least_squares(X, y, sigma=sigma, n_draws=r, generator=_gen(r))
            - w_ridge
        )
        .norm()
        .item()
        for r in (10, 300, 10000)
    ]
    assert (
        errors[2] < errors[1] < errors[0]
        and errors[2] < 0.02 * w_ridge.norm().item()
    )
    ols = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    torch.testing.assert_close(
        noisy_least_squares(X, y, sigma=0.0, n_draws=3), ols
    )
    same = [
        noisy_least_squares(
            X, y, sigma=sigma, n_draws=50, chunk=7, generator=_gen(9)
        )
        for _ in range(2)
    ]
    assert torch.equal(same[0], same[1])  # the generator makes it reproducible


# ---------------------------------------------------------------- weight noise


def _small_net():
    return make_mlp([2, 5, 1], activation="tanh", generator=_gen(0)).double()


def test_perturbed_weights_perturbs_then_restores_exactly():
    model = _small_net()
    before = _flat(model).clone()
    with perturbed_weights(model, eta=0.01, generator=_gen(1)):
        inside = _flat(model)
        # std sqrt(0.01) = 0.1
        assert 0.05 < (inside - before).std().item() < 0.2
    assert torch.equal(_flat(model), before)
    with (
        pytest.raises(RuntimeError, match="boom"),
        perturbed_weights(model, eta=1.0),
    ):
        raise RuntimeError("boom")
    assert torch.equal(_flat(model), before)  # restored after an exception too


def test_weight_noise_training_step_uses_gradient_at_perturbed_point():
    x = torch.randn(8, 2, generator=_gen(2), dtype=torch.float64)
    y = torch.randn(8, generator=_gen(3), dtype=torch.float64)
    model, twin = _small_net(), _small_net()
    with perturbed_weights(model, eta=0.04, generator=_gen(5)):
        ((model(x)[:, 0] - y) ** 2).mean().backward()
    # the same noise added by hand to the twin
    g = _gen(5)
    with torch.no_grad():
        noisy = [
            p + 0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype)
            for p in twin.parameters()
        ]
        for p, q in zip(twin.parameters(), noisy):
            p.copy_(q)
    ((twin(x)[:, 0] - y) ** 2).mean().backward()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad)


def test_weight_noise_terms_exact_for_linear_model():
    # y_hat = w.x + b: grad = (x, 1), Hessian 0,
    # so penalty = mean(|x|^2 + 1), curvature = 0
    model = nn.Linear(3, 1).double()
    x = torch.randn(10, 3, generator=_gen(6), dtype=torch.float64)
    y = torch.randn(10, generator=_gen(7), dtype=torch.float64)
    t = weight_noise_terms(model, x, y)
    assert t["penalty"] == pytest.approx((x.pow(2).sum(1) + 1).mean().item())
    assert t["curvature"] == pytest.approx(0.0, abs=1e-12)
    # the exact expectation for a linear model: L + eta * penalty,
    # no higher orders
    mc = weight_noise_loss(
        model, x, y, eta=0.01, n_draws=200, generator=_gen(8)
    )
    assert mc == pytest.approx(t["loss"] + 0.01 * t["penalty"], rel=1e-10)


def test_weight_noise_expansion_error_shrinks_with_eta():
    model = _small_net()
    x = torch.randn(20, 2, generator=_gen(10), dtype=torch.float64)
    y = torch.sin(x[:, 0])
    t = weight_noise_terms(model, x, y)
    errs = []
    for eta in (1e-1, 1e-2, 1e-3):
        gap = (
            weight_noise_loss(
                model, x, y, eta=eta, n_draws=500, generator=_gen(11)
            )
            - t["loss"]
        ) / eta
        errs.append(abs(gap - t["penalty"] - t["curvature"]))
    assert errs[1] < 0.2 * errs[0] and errs[2] < 0.2 * errs[1]
    w = weight_noise_loss(model, x, y, eta=0.1, n_draws=100, generator=_gen(12))
    assert w == weight_noise_loss(
        model, x, y, eta=0.1, n_draws=100, generator=_gen(12)
    )


# ------------------------------------------------------------- argument checks

_X, _Y = _regression(6, 2)
_LOGITS, _LABELS = torch.zeros(3, 4), torch.tensor([0, 1, 2])
_PROBS = torch.full((3, 4), 0.25)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: smoothed_targets(_LABELS, num_classes=4, eps=-0.1),
            r"smoothed_targets: 'eps' must be in \[0, 1\]; got -0.1",
        ),
        (
            lambda: smoothed_targets(
                _LABELS, num_classes=4, eps=1.0, form="notes"
            ),
            r"'eps' must be in \[0, \(k-1\)/k\] = \[0, 0.75\].*got 1.0\.",
        ),
        (
            lambda: smoothed_targets(
                _LABELS, num_classes=4, eps=0.1, form="keras"
            ),
            r"'form' must be one of 'torch', 'notes'",
        ),
        (
            lambda: smoothed_targets(_LABELS, num_classes=1, eps=0.1),
            r"'num_classes' must be >= 2",
        ),
        (
            lambda: smoothed_targets(
                torch.tensor([0, 5]), num_classes=4, eps=0.1
            ),
            r"'y' must hold classes in \[0, 3\]",
        ),
        (
            lambda: smoothed_targets(
                torch.zeros(2, 2).long(), num_classes=4, eps=0.1
            ),
            r"'y' must be a 1-D tensor",
        ),
        (
            lambda: notes_to_torch_epsilon(1.5, num_classes=3),
            r"notes_to_torch_epsilon: 'eps' must be in \[0, \(k-1\)/k\]",
        ),
        (
            lambda: notes_to_torch_epsilon(-0.1, num_classes=3),
            r"notes_to_torch_epsilon: 'eps' must be in .*; got -0.1\.",
        ),
        (
            lambda: label_smoothing_cross_entropy(_LOGITS, _LABELS, eps=1.2),
            r"label_smoothing_cross_entropy: 'eps' must be in \[0, 1\]; "
            r"got 1.2",
        ),
        (
            lambda: label_smoothing_cross_entropy(
                _LOGITS, _LABELS[:2], eps=0.1
            ),
            r"'logits' must be \(n, k\).*got \(3, 4\) and \(2,\)",
        ),
        (
            lambda: label_smoothing_cross_entropy(
                _LOGITS, _LABELS, eps=0.1, reduction="max"
            ),
            r"'reduction' must be one of",
        ),
        (
            lambda: expected_calibration_error(_PROBS, _LABELS, n_bins=0),
            r"expected_calibration_error: 'n_bins' must be >= 1; got 0",
        ),
        (
            lambda: expected_calibration_error(_PROBS, _LABELS[:2]),
            r"'probs' must be \(n, k\) and 'y' \(n,\)",
        ),
        (
            lambda: expected_calibration_error(_LOGITS - 1, _LABELS),
            r"'probs' must be non-negative rows summing to 1",
        ),
        (
            lambda: add_input_noise(_X, sigma=-0.1),
            r"add_input_noise: 'sigma' must be >= 0; got -0.1",
        ),
        (
            lambda: add_input_noise(_X, sigma=math.inf),
            r"add_input_noise: 'sigma' must be finite",
        ),
        (
            lambda: noisy_least_squares(_X, _Y, sigma=-1.0, n_draws=2),
            r"noisy_least_squares: 'sigma' must be >= 0",
        ),
        (
            lambda: noisy_least_squares(_X, _Y, sigma=1.0, n_draws=0),
            r"noisy_least_squares: 'n_draws' must be >= 1",
        ),
        (
            lambda: noisy_least_squares(_X[:, 0], _Y, sigma=1.0, n_draws=2),
            r"'X' must be \(n, d\)",
        ),
        (
            lambda: perturbed_weights(_small_net(), eta=-1e-3).__enter__(),
            r"perturbed_weights: 'eta' must be >= 0",
        ),
        (
            lambda: weight_noise_loss(
                _small_net(), _X, _Y, eta=-1.0, n_draws=50
            ),
            r"weight_noise_loss: 'eta' must be >= 0",
        ),
        (
            lambda: weight_noise_loss(_small_net(), _X, _Y, eta=0.1, n_draws=3),
            r"'n_draws' must be >= 21",
        ),
        (
            lambda: weight_noise_terms(make_mlp([2, 3, 2]).double(), _X, _Y),
            r"weight_noise_terms: 'model' must output one number per example",
        ),
        (
            lambda: weight_noise_terms(_small_net(), _X, _Y[:2]),
            r"weight_noise_terms: 'x' must be \(n, d\)",
        ),
        (
            lambda: noisy_least_squares(_X, _Y, sigma=1.0, n_draws=2, chunk=0),
            r"noisy_least_squares: 'chunk' must be >= 1",
        ),
        (
            lambda: notes_to_torch_epsilon(0.1, num_classes=1),
            r"notes_to_torch_epsilon: 'num_classes' must be >= 2",
        ),
        (
            lambda: label_smoothing_cross_entropy(
                _LOGITS, _LABELS, eps=0.1, form="tf"
            ),
            r"'form' must be one of 'torch', 'notes'",
        ),
        (
            lambda: label_smoothing_cross_entropy(
                torch.zeros(3, 1), _LABELS, eps=0.1
            ),
            r"with k >= 2",
        ),
        (
            lambda: label_smoothing_cross_entropy(
                _LOGITS, _LABELS + 2, eps=0.1
            ),
            r"smoothed_targets: 'y' must hold classes in \[0, 3\]",
        ),
        (
            lambda: expected_calibration_error(
                torch.zeros(0, 4), torch.zeros(0).long()
            ),
            r"with the same n >= 1",
        ),
        (
            lambda: expected_calibration_error(
                _PROBS, torch.zeros(3, 1).long()
            ),
            r"'probs' must be \(n, k\) and 'y' \(n,\)",
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
            lambda: add_input_noise([1.0], sigma=0.1),
            r"add_input_noise: 'x' must be a torch.Tensor; got list",
        ),
        (
            lambda: add_input_noise(_X, sigma="0.1"),
            r"'sigma' must be a real number; got str",
        ),
        (
            lambda: add_input_noise(_X, sigma=0.1, generator=0),
            r"'generator' must be a torch.Generator or None; got int",
        ),
        (
            lambda: noisy_least_squares(_X, _Y, sigma=0.1, n_draws=2.5),
            r"'n_draws' must be an int; got float",
        ),
        (
            lambda: perturbed_weights("net", eta=0.1).__enter__(),
            r"perturbed_weights: 'model' must be a torch.nn.Module",
        ),
        (
            lambda: perturbed_weights(
                _small_net(), eta=0.1, generator=1
            ).__enter__(),
            r"'generator' must be a torch.Generator or None",
        ),
        (
            lambda: weight_noise_terms(None, _X, _Y),
            r"weight_noise_terms: 'model' must be a torch.nn.Module; "
            r"got NoneType",
        ),
        (
            lambda: weight_noise_loss(
                _small_net(), _X.tolist(), _Y, eta=0.1, n_draws=50
            ),
            r"weight_noise_loss: 'x' must be a torch.Tensor",
        ),
        (
            lambda: weight_noise_loss(
                _small_net(), _X, _Y, eta=0.1, n_draws=50, generator="g"
            ),
            r"weight_noise_loss: 'generator'",
        ),
        (
            lambda: label_smoothing_cross_entropy(_LOGITS, [0, 1, 2], eps=0.1),
            r"label_smoothing_cross_entropy: 'y' must be a torch.Tensor",
        ),
        (
            lambda: notes_to_torch_epsilon(0.1, num_classes=2.0),
            r"'num_classes' must be an int; got float",
        ),
        (
            lambda: smoothed_targets([0, 1], num_classes=2, eps=0.1),
            r"smoothed_targets: 'y' must be a torch.Tensor; got list",
        ),
        (
            lambda: label_smoothing_cross_entropy(
                [[0.0, 1.0]], _LABELS, eps=0.1
            ),
            r"'logits' must be a torch.Tensor",
        ),
        (
            lambda: expected_calibration_error(_PROBS, _LABELS, n_bins=2.0),
            r"'n_bins' must be an int; got float",
        ),
        (
            lambda: expected_calibration_error(_PROBS.tolist(), _LABELS),
            r"'probs' must be a torch.Tensor; got list",
        ),
    ],
)
def test_bad_types_raise_type_error(call, match):
    with pytest.raises(TypeError, match=match):
        call()
