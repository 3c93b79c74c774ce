"""dlcourse.optim.risk against exact math.

By enumeration, closed forms and known functions.
"""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.objectives import Quadratic, Rosenbrock, Saddle
from dlcourse.optim.risk import (
    convexity_check,
    empirical_risk,
    gradient_variance,
    hessian_is_psd,
    jensen_gaps,
    linear_gaussian_true_risk,
    log_loss,
    minibatch_gradient_noise,
    minibatch_noise_std,
    zero_one_loss,
)


def _tiny(n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (n,), generator=g)
    model = nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 2)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model, x, y


def _flat_grad(model, x, y):
    gs = torch.autograd.grad(
        F.cross_entropy(model(x), y), list(model.parameters())
    )
    return torch.cat([g.flatten() for g in gs])


def test_losses_by_hand():
    scores = torch.tensor([2.0, -1.0, 0.5])
    y = torch.tensor([1, 1, 0])
    assert zero_one_loss(scores, y).item() == pytest.approx(2 / 3)
    expected = (
        math.log1p(math.exp(-2.0))
        + math.log1p(math.exp(1.0))
        + math.log1p(math.exp(0.5))
    ) / 3
    assert log_loss(scores, y).item() == pytest.approx(expected, rel=1e-6)
    multi = torch.tensor([[1.0, 0.0, 3.0], [0.0, 2.0, 1.0]])
    assert zero_one_loss(multi, torch.tensor([2, 0])).item() == 0.5
    torch.testing.assert_close(
        log_loss(multi, torch.tensor([2, 0])),
        F.cross_entropy(multi, torch.tensor([2, 0])),
    )
    # the log-loss bounds the 0-1 loss up to log 2
    assert (
        log_loss(scores, y).item()
        >= math.log(2) * zero_one_loss(scores, y).item()
    )


def test_empirical_risk_of_a_model():
    model, x, y = _tiny()
    assert empirical_risk(model, x, y) == pytest.approx(
        F.cross_entropy(model(x), y).item()
    )
    err = (model(x).argmax(1) != y).double().mean().item()
    assert empirical_risk(model, x, y, loss="zero_one") == pytest.approx(err)
    lin = nn.Linear(3, 1).double()
    t = torch.randn(7, dtype=torch.float64)
    assert empirical_risk(lin, x, t, loss="squared") == pytest.approx(
        ((lin(x)[:, 0] - t) ** 2).mean().item()
    )


def test_true_risk_formula_against_a_huge_sample():
    g = torch.Generator().manual_seed(1)
    w_star, w = torch.randn(4, generator=g), torch.randn(4, generator=g)
    x = torch.randn(400_000, 4, generator=g)
    y = x @ w_star + 0.3 * torch.randn(400_000, generator=g)
    monte_carlo = ((y - x @ w) ** 2).mean()
    exact = linear_gaussian_true_risk(w, w_star, noise_std=0.3)
    assert abs(monte_carlo / exact - 1) < 0.01


@pytest.mark.parametrize("m", [1, 2, 3, 5, 7])
def test_noise_formula_equals_enumeration_of_all_batches(m):
    model, x, y = _tiny(n=7)
    g = _flat_grad(model, x, y)
    batches = list(itertools.combinations(range(7), m))
    exact = sum(
        (_flat_grad(model, x[list(b)], y[list(b)]) - g).pow(2).sum().item()
        for b in batches
    ) / len(batches)
    per_example = torch.stack(
        [_flat_grad(model, x[i : i + 1], y[i : i + 1]) for i in range(7)]
    )
    trace = (per_example - g).pow(2).sum(1).mean().item()
    assert gradient_variance(model, x, y, chunk_size=3) == pytest.approx(
        trace, rel=1e-10
    )
    assert minibatch_noise_std(trace, n=7, batch_size=m) ** 2 == pytest.approx(
        exact, rel=1e-10, abs=1e-20
    )


def test_with_replacement_formula_by_enumeration():
    model, x, y = _tiny(n=4)
    g = _flat_grad(model, x, y)
    batches = list(
        itertools.product(range(4), repeat=2)
    )  # ordered, with repetition
    exact = sum(
        (_flat_grad(model, x[list(b)], y[list(b)]) - g).pow(2).sum().item()
        for b in batches
    ) / len(batches)
    trace = gradient_variance(model, x, y)
    assert minibatch_noise_std(
        trace, n=4, batch_size=2, replacement=True
    ) ** 2 == pytest.approx(exact)


def test_sampled_noise_converges_to_the_exact_value():
    model, x, y = _tiny(n=7)
    trace = gradient_variance(model, x, y)
    result = minibatch_gradient_noise(
        model,
        x,
        y,
        batch_size=3,
        num_batches=500,
        generator=torch.Generator().manual_seed(0),
    )
    exact = minibatch_noise_std(trace, n=7, batch_size=3)
    assert abs(result["std_error"] / exact - 1) < 0.08
    torch.testing.assert_close(result["full_grad"], _flat_grad(model, x, y))
    assert result["deviation_norms"].shape == (500,)
    assert result["along_grad"].abs().mean() < result["deviation_norms"].mean()
    # the full batch has no noise at all
    full = minibatch_gradient_noise(
        model,
        x,
        y,
        batch_size=7,
        num_batches=3,
        generator=torch.Generator().manual_seed(0),
    )
    assert full["std_error"] < 1e-12


def test_convexity_check_accepts_convex_and_rejects_nonconvex():
    g = torch.Generator().manual_seed(0)
    center = torch.zeros(2, dtype=torch.float64)
    quad = Quadratic(50.0, angle=0.4)
    assert convexity_check(
        quad.value, center, radius=3.0, num_segments=50, generator=g
    )["convex"]
    assert hessian_is_psd(quad.value, center)
    saddle = convexity_check(
        Saddle().value, center, radius=1.0, num_segments=50, generator=g
    )
    assert (
        not saddle["convex"]
        and saddle["max_gap"] > 0
        and saddle["violation_fraction"] > 0.2
    )
    assert not hessian_is_psd(Saddle().value, center)
    # Rosenbrock is convex near its minimum but not at (0, 1)
    assert hessian_is_psd(
        Rosenbrock().value, torch.tensor([1.0, 1.0], dtype=torch.float64)
    )
    assert not hessian_is_psd(
        Rosenbrock().value, torch.tensor([0.0, 1.0], dtype=torch.float64)
    )


def test_jensen_gaps_by_hand():
    # f(x) = x^2: gap = -alpha (1 - alpha) (a - b)^2 ; f = -x^2: the opposite
    a, b = torch.tensor([[1.0]]), torch.tensor([[3.0]])
    alphas = torch.tensor([0.0, 0.25, 0.5, 1.0])
    expected = torch.tensor([[0.0, -0.75, -1.0, 0.0]])
    torch.testing.assert_close(
        jensen_gaps(lambda v: (v**2).sum(), a, b, alphas=alphas), expected
    )
    torch.testing.assert_close(
        jensen_gaps(lambda v: -(v**2).sum(), a, b, alphas=alphas), -expected
    )


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda: zero_one_loss([1.0], torch.ones(1)),
            TypeError,
            r"zero_one_loss: 'scores' must be a torch.Tensor; got list.",
        ),
        (
            lambda: log_loss(torch.ones(3), torch.ones(2)),
            ValueError,
            r"log_loss: 'scores' must be of shape \(n,\) or \(n, k\) with n = "
            r"len\(y\) = 2; got \(3,\).",
        ),
        (
            lambda: log_loss(torch.ones(2), [1, 0]),
            TypeError,
            r"log_loss: 'y' must be a torch.Tensor; got list.",
        ),
        (
            lambda: empirical_risk(
                nn.Linear(2, 1), torch.ones(3, 2), torch.ones(3), loss="hinge"
            ),
            ValueError,
            r"empirical_risk: 'loss' must be one of 'log', 'zero_one', "
            r"'squared'; got 'hinge'.",
        ),
        (
            lambda: empirical_risk(
                nn.Linear(2, 1), torch.ones(3, 2), torch.ones(2)
            ),
            ValueError,
            r"empirical_risk: 'x' and 'y' must have the same number of rows; "
            r"got 3 and 2.",
        ),
        (
            lambda: linear_gaussian_true_risk(
                torch.ones(2), torch.ones(3), noise_std=1.0
            ),
            ValueError,
            r"linear_gaussian_true_risk: 'w' must be of the shape of w_star "
            r"\(3,\); got \(2,\).",
        ),
        (
            lambda: linear_gaussian_true_risk(
                torch.ones(2), torch.ones(2), noise_std=-1.0
            ),
            ValueError,
            r"linear_gaussian_true_risk: 'noise_std' must be >= 0; got -1.0.",
        ),
        (
            lambda: linear_gaussian_true_risk(
                1.0, torch.ones(2), noise_std=1.0
            ),
            TypeError,
            r"linear_gaussian_true_risk: 'w' must be a torch.Tensor; got "
            r"float.",
        ),
        (
            lambda: minibatch_gradient_noise(
                *_tiny(),
                batch_size=0,
                num_batches=2,
                generator=torch.Generator(),
            ),
            ValueError,
            r"minibatch_gradient_noise: 'batch_size' must be >= 1; got 0.",
        ),
        (
            lambda: minibatch_gradient_noise(
                *_tiny(),
                batch_size=8,
                num_batches=2,
                generator=torch.Generator(),
            ),
            ValueError,
            r"minibatch_gradient_noise: 'batch_size' must be <= the number of "
            r"examples 7; got 8.",
        ),
        (
            lambda: minibatch_gradient_noise(
                *_tiny(),
                batch_size=2,
                num_batches=2.5,
                generator=torch.Generator(),
            ),
            TypeError,
            r"minibatch_gradient_noise: 'num_batches' must be an int; got "
            r"float.",
        ),
        (
            lambda: minibatch_gradient_noise(
                *_tiny(), batch_size=2, num_batches=2, generator=0
            ),
            TypeError,
            r"minibatch_gradient_noise: 'generator' must be a torch.Generator; "
            r"got int.",
        ),
        (
            lambda: gradient_variance(*_tiny(), chunk_size=0),
            ValueError,
            r"gradient_variance: 'chunk_size' must be >= 1; got 0.",
        ),
        (
            lambda: gradient_variance("m", torch.ones(1), torch.ones(1)),
            TypeError,
            r"gradient_variance: 'model' must be a torch.nn.Module; got str.",
        ),
        (
            lambda: minibatch_noise_std(-1.0, n=10, batch_size=2),
            ValueError,
            r"minibatch_noise_std: 'variance' must be >= 0; got -1.0.",
        ),
        (
            lambda: minibatch_noise_std(1.0, n=1, batch_size=1),
            ValueError,
            r"minibatch_noise_std: 'n' must be >= 2; got 1.",
        ),
        (
            lambda: minibatch_noise_std(1.0, n=10, batch_size=11),
            ValueError,
            r"minibatch_noise_std: 'batch_size' must be <= n = 10 without "
            r"replacement; got 11.",
        ),
        (
            lambda: minibatch_noise_std(1.0, n=10, batch_size=2, replacement=1),
            TypeError,
            r"minibatch_noise_std: 'replacement' must be a bool; got int.",
        ),
        (
            lambda: jensen_gaps(
                3, torch.ones(1, 2), torch.ones(1, 2), alphas=torch.ones(1)
            ),
            TypeError,
            r"jensen_gaps: 'f' must be a callable; got int.",
        ),
        (
            lambda: jensen_gaps(
                sum, torch.ones(1, 2), torch.ones(2, 2), alphas=torch.ones(1)
            ),
            ValueError,
            r"jensen_gaps: 'b' must be of the shape of a, \(k, d\) = \(1, 2\); "
            r"got \(2, 2\).",
        ),
        (
            lambda: jensen_gaps(
                sum,
                torch.ones(1, 2),
                torch.ones(1, 2),
                alphas=torch.tensor([1.5]),
            ),
            ValueError,
            r"jensen_gaps: 'alphas' must be a 1-D tensor of values in \[0, "
            r"1\]; got \[1.5\].",
        ),
        (
            lambda: jensen_gaps(
                sum, torch.ones(1, 2), [1.0], alphas=torch.ones(1)
            ),
            TypeError,
            r"jensen_gaps: 'b' must be a torch.Tensor; got list.",
        ),
        (
            lambda: convexity_check(
                sum,
                torch.zeros(2),
                radius=0.0,
                num_segments=2,
                generator=torch.Generator(),
            ),
            ValueError,
            r"convexity_check: 'radius' must be > 0; got 0.0.",
        ),
        (
            lambda: convexity_check(
                sum,
                torch.zeros(2),
                radius=1.0,
                num_segments=0,
                generator=torch.Generator(),
            ),
            ValueError,
            r"convexity_check: 'num_segments' must be >= 1; got 0.",
        ),
        (
            lambda: convexity_check(
                sum,
                torch.zeros(2),
                radius=1.0,
                num_segments=1,
                num_alphas=0,
                generator=torch.Generator(),
            ),
            ValueError,
            r"convexity_check: 'num_alphas' must be >= 1; got 0.",
        ),
        (
            lambda: convexity_check(
                sum,
                torch.zeros(2),
                radius=1.0,
                num_segments=1,
                tol=-1.0,
                generator=torch.Generator(),
            ),
            ValueError,
            r"convexity_check: 'tol' must be >= 0; got -1.0.",
        ),
        (
            lambda: convexity_check(
                sum,
                [0.0],
                radius=1.0,
                num_segments=1,
                generator=torch.Generator(),
            ),
            TypeError,
            r"convexity_check: 'center' must be a torch.Tensor; got list.",
        ),
        (
            lambda: convexity_check(
                sum, torch.zeros(2), radius=1.0, num_segments=1, generator=None
            ),
            TypeError,
            r"convexity_check: 'generator' must be a torch.Generator; got "
            r"NoneType.",
        ),
        (
            lambda: hessian_is_psd(None, torch.zeros(2)),
            TypeError,
            r"hessian_is_psd: 'f' must be a callable; got NoneType.",
        ),
        (
            lambda: hessian_is_psd(sum, torch.zeros(2, 2)),
            ValueError,
            r"hessian_is_psd: 'x' must be a 1-D tensor; got \(2, 2\).",
        ),
        (
            lambda: hessian_is_psd(sum, torch.zeros(2), tol=-0.1),
            ValueError,
            r"hessian_is_psd: 'tol' must be >= 0; got -0.1.",
        ),
    ],
)
def test_argument_checks(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
