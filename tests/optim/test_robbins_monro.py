"""dlcourse.optim.robbins_monro: schedules and SGD on a noisy quadratic against exact math."""

import math

import pytest
import torch

from dlcourse.optim.robbins_monro import noisy_quadratic_sgd, step_size_schedule


def test_schedules():
    assert [step_size_schedule("constant", 0.1)(k) for k in (1, 5)] == [0.1, 0.1]
    assert step_size_schedule("1/k", 0.5)(4) == 0.125
    assert step_size_schedule("1/k^2", 0.5)(4) == 0.5 / 16


def test_noise_free_run_is_the_product_formula():
    path = noisy_quadratic_sgd(step_size_schedule("1/k^2", 0.5), x0=2.0, curvature=1.0,
                               noise_std=0.0, steps=200, runs=3)
    expected = 2.0 * math.prod(1 - 0.5 / k**2 for k in range(1, 201))
    torch.testing.assert_close(path[-1], torch.full((3,), expected, dtype=torch.float64))
    assert path.shape == (201, 3)


def test_one_over_k_with_unit_gain_is_the_running_mean_of_the_noise():
    gen = torch.Generator().manual_seed(0)
    path = noisy_quadratic_sgd(step_size_schedule("1/k", 1.0), x0=3.0, curvature=1.0,
                               noise_std=1.0, steps=50, runs=4, generator=gen)
    noise = torch.randn(50, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    # x_k = -(xi_1 + ... + xi_k) / k
    torch.testing.assert_close(path[1:], -noise.cumsum(0) / torch.arange(1, 51)[:, None])


def test_constant_step_stationary_variance():
    eps, a = 0.2, 1.0
    path = noisy_quadratic_sgd(step_size_schedule("constant", eps), x0=0.0, curvature=a,
                               noise_std=1.0, steps=400, runs=2000,
                               generator=torch.Generator().manual_seed(1))
    # E x^2 -> eps sigma^2 / (a (2 - eps a))
    measured = (path[200:] ** 2).mean().item()
    assert measured == pytest.approx(eps / (a * (2 - eps * a)), rel=0.05)


def test_argument_checks():
    with pytest.raises(ValueError, match="step_size_schedule: 'kind' must be one of"):
        step_size_schedule("1/sqrt(k)", 1.0)
    with pytest.raises(ValueError, match="step_size_schedule: 'c' must be > 0; got 0"):
        step_size_schedule("1/k", 0.0)
    s = step_size_schedule("1/k", 1.0)
    with pytest.raises(ValueError, match="noisy_quadratic_sgd: 'curvature' must be > 0"):
        noisy_quadratic_sgd(s, x0=1.0, curvature=0.0, noise_std=1.0, steps=2, runs=2)
    with pytest.raises(ValueError, match="noisy_quadratic_sgd: 'noise_std' must be >= 0"):
        noisy_quadratic_sgd(s, x0=1.0, curvature=1.0, noise_std=-1.0, steps=2, runs=2)
    with pytest.raises(TypeError, match="noisy_quadratic_sgd: 'schedule' must be a callable"):
        noisy_quadratic_sgd(0.1, x0=1.0, curvature=1.0, noise_std=1.0, steps=2, runs=2)
