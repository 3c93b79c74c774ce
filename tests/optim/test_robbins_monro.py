"""dlcourse.optim.robbins_monro: schedules and noisy SGD against exact math."""

import math

import pytest
import torch

from dlcourse.optim.robbins_monro import (
    noisy_quadratic_sgd,
    sgd_moments,
    stationary_variance,
    step_size_schedule,
)


def test_schedules():
    assert [step_size_schedule("constant", 0.1)(k) for k in (1, 5)] == [
        0.1,
        0.1,
    ]
    assert step_size_schedule("1/k", 0.5)(4) == 0.125
    assert step_size_schedule("1/k^2", 0.5)(4) == 0.5 / 16


def test_noise_free_run_is_the_product_formula():
    path = noisy_quadratic_sgd(
        step_size_schedule("1/k^2", 0.5),
        x0=2.0,
        curvature=1.0,
        noise_std=0.0,
        steps=200,
        runs=3,
    )
    expected = 2.0 * math.prod(1 - 0.5 / k**2 for k in range(1, 201))
    torch.testing.assert_close(
        path[-1], torch.full((3,), expected, dtype=torch.float64)
    )
    assert path.shape == (201, 3)


def test_one_over_k_with_unit_gain_is_the_running_mean_of_the_noise():
    gen = torch.Generator().manual_seed(0)
    path = noisy_quadratic_sgd(
        step_size_schedule("1/k", 1.0),
        x0=3.0,
        curvature=1.0,
        noise_std=1.0,
        steps=50,
        runs=4,
        generator=gen,
    )
    noise = torch.randn(
        50, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    # x_k = -(xi_1 + ... + xi_k) / k
    torch.testing.assert_close(
        path[1:], -noise.cumsum(0) / torch.arange(1, 51)[:, None]
    )


def test_constant_step_stationary_variance():
    eps, a = 0.2, 1.0
    path = noisy_quadratic_sgd(
        step_size_schedule("constant", eps),
        x0=0.0,
        curvature=a,
        noise_std=1.0,
        steps=400,
        runs=2000,
        generator=torch.Generator().manual_seed(1),
    )
    # E x^2 -> eps sigma^2 / (a (2 - eps a))
    measured = (path[200:] ** 2).mean().item()
    assert measured == pytest.approx(eps / (a * (2 - eps * a)), rel=0.05)


@pytest.mark.parametrize(
    "kind, c", [("constant", 0.1), ("1/k", 0.5), ("1/k", 2.0), ("1/k^2", 0.5)]
)
def test_moments_match_monte_carlo(kind, c):
    schedule = step_size_schedule(kind, c)
    problem = dict(x0=2.0, curvature=1.0, noise_std=1.0, steps=60)
    runs = 4000
    path = noisy_quadratic_sgd(
        schedule,
        runs=runs,
        generator=torch.Generator().manual_seed(5),
        **problem,
    )
    mean, second = sgd_moments(schedule, **problem)
    assert mean.shape == second.shape == (61,)
    assert mean[0] == 2.0 and second[0] == 4.0
    se_mean = (second - mean**2).sqrt() / math.sqrt(runs)
    se_second = (path**2).std(dim=1) / math.sqrt(runs)
    assert ((path.mean(1) - mean).abs() <= 4 * se_mean + 1e-12).all()
    assert ((((path**2).mean(1)) - second).abs() <= 4 * se_second + 1e-12).all()


def test_moments_noise_free_and_one_over_k_closed_forms():
    # no noise: E x_k = x_k, the product formula
    mean, second = sgd_moments(
        step_size_schedule("1/k^2", 0.5),
        x0=2.0,
        curvature=1.0,
        noise_std=0.0,
        steps=200,
    )
    expected = 2.0 * math.prod(1 - 0.5 / k**2 for k in range(1, 201))
    assert mean[-1].item() == pytest.approx(expected, rel=1e-12)
    assert second[-1].item() == pytest.approx(expected**2, rel=1e-12)
    # c = 1/a: x_k is minus the running mean of the noise, E x_k^2 = sigma^2 / k
    _, second = sgd_moments(
        step_size_schedule("1/k", 1.0),
        x0=3.0,
        curvature=1.0,
        noise_std=2.0,
        steps=50,
    )
    torch.testing.assert_close(
        second[1:], 4.0 / torch.arange(1, 51, dtype=torch.float64)
    )


@pytest.mark.parametrize("lr, beta", [(0.1, 0.0), (0.05, 0.9), (0.2, 0.5)])
def test_stationary_variance_matches_simulation(lr, beta):
    path = noisy_quadratic_sgd(
        step_size_schedule("constant", lr),
        x0=0.0,
        curvature=2.0,
        noise_std=1.5,
        steps=3000,
        runs=1000,
        momentum=beta,
        generator=torch.Generator().manual_seed(2),
    )
    per_run = (path[1000:] ** 2).mean(dim=0)
    se = per_run.std().item() / math.sqrt(1000)
    theory = stationary_variance(
        lr, curvature=2.0, noise_std=1.5, momentum=beta
    )
    assert abs(per_run.mean().item() - theory) < 4 * se


def test_stationary_variance_formula():
    # beta = 0: eps sigma^2 / (a (2 - eps a))
    assert stationary_variance(
        0.1, curvature=1.0, noise_std=1.0
    ) == pytest.approx(0.1 / 1.9)
    # momentum: the fixed point of the 2x2 second-moment recursion
    lr, beta, a, s2 = 0.03, 0.8, 3.0, 0.5
    p = 1 + beta - lr * a
    # V0 = p^2 V0 + beta^2 V0 - 2 p beta V1 + lr^2 s2, V1 = p V0 / (1 + beta)
    v0 = lr**2 * s2 / (1 - p**2 - beta**2 + 2 * p**2 * beta / (1 + beta))
    assert stationary_variance(
        lr, curvature=a, noise_std=math.sqrt(s2), momentum=beta
    ) == pytest.approx(v0, rel=1e-12)
    # equal effective step: nearly the same floor
    plain = stationary_variance(0.1, curvature=1.0, noise_std=1.0)
    heavy = stationary_variance(
        0.01, curvature=1.0, noise_std=1.0, momentum=0.9
    )
    assert heavy / plain == pytest.approx((2 - 0.1) / (2 - 0.01 / 1.9))


def test_momentum_is_torch_sgd_with_momentum():
    gen = torch.Generator().manual_seed(0)
    path = noisy_quadratic_sgd(
        step_size_schedule("constant", 0.05),
        x0=1.0,
        curvature=1.0,
        noise_std=0.5,
        steps=20,
        runs=3,
        momentum=0.9,
        generator=gen,
    )
    noise = torch.randn(
        20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    x = torch.full((3,), 1.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=0.05, momentum=0.9)
    for k in range(20):
        x.grad = x.detach() + 0.5 * noise[k]
        opt.step()
        torch.testing.assert_close(path[k + 1], x.detach())


def test_argument_checks():
    with pytest.raises(
        ValueError, match="step_size_schedule: 'kind' must be one of"
    ):
        step_size_schedule("1/sqrt(k)", 1.0)
    with pytest.raises(
        ValueError, match="step_size_schedule: 'c' must be > 0; got 0"
    ):
        step_size_schedule("1/k", 0.0)
    s = step_size_schedule("1/k", 1.0)
    with pytest.raises(
        ValueError, match="noisy_quadratic_sgd: 'curvature' must be > 0"
    ):
        noisy_quadratic_sgd(
            s, x0=1.0, curvature=0.0, noise_std=1.0, steps=2, runs=2
        )
    with pytest.raises(
        ValueError, match="noisy_quadratic_sgd: 'noise_std' must be >= 0"
    ):
        noisy_quadratic_sgd(
            s, x0=1.0, curvature=1.0, noise_std=-1.0, steps=2, runs=2
        )
    with pytest.raises(
        TypeError, match="noisy_quadratic_sgd: 'schedule' must be a callable"
    ):
        noisy_quadratic_sgd(
            0.1, x0=1.0, curvature=1.0, noise_std=1.0, steps=2, runs=2
        )
    with pytest.raises(
        ValueError, match=r"noisy_quadratic_sgd: 'momentum' must be in \[0, 1\)"
    ):
        noisy_quadratic_sgd(
            s,
            x0=1.0,
            curvature=1.0,
            noise_std=1.0,
            steps=2,
            runs=2,
            momentum=1.0,
        )
    with pytest.raises(
        ValueError, match="sgd_moments: 'steps' must be >= 1; got 0"
    ):
        sgd_moments(s, x0=1.0, curvature=1.0, noise_std=1.0, steps=0)
    with pytest.raises(
        TypeError, match="sgd_moments: 'schedule' must be a callable"
    ):
        sgd_moments(None, x0=1.0, curvature=1.0, noise_std=1.0, steps=3)
    with pytest.raises(
        ValueError, match="stationary_variance: 'lr' must be > 0; got 0"
    ):
        stationary_variance(0.0, curvature=1.0, noise_std=1.0)
    with pytest.raises(
        ValueError,
        match=r"stationary_variance: 'lr \* curvature' must be < 2 \(1 \+ "
        r"momentum\) = 2 for a finite floor; got 2.5",
    ):
        stationary_variance(2.5, curvature=1.0, noise_std=1.0)
    with pytest.raises(
        ValueError, match=r"stationary_variance: 'momentum' must be in \[0, 1\)"
    ):
        stationary_variance(0.1, curvature=1.0, noise_std=1.0, momentum=1.2)
