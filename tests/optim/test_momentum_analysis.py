"""dlcourse.optim.momentum_analysis: rates vs simulation and the eigenvalues."""

import math

import pytest
import torch

from dlcourse.objectives import Quadratic
from dlcourse.optim.momentum_analysis import (
    fit_contraction,
    gd_optimal_step,
    gd_rate,
    heavy_ball_errors,
    heavy_ball_parameters,
    heavy_ball_rate,
    heavy_ball_spectral_radius,
)
from dlcourse.optim.trajectories import sgd_path


def test_closed_forms():
    assert gd_optimal_step(9.0, 1.0) == pytest.approx(0.2)
    assert gd_rate(9.0) == pytest.approx(0.8)
    alpha, beta = heavy_ball_parameters(9.0, 1.0)
    assert alpha == pytest.approx(4 / 16) and beta == pytest.approx(0.25)
    assert heavy_ball_rate(9.0) == pytest.approx(0.5)


@pytest.mark.parametrize("kappa", [4.0, 25.0, 400.0])
def test_spectral_radius_gives_the_rates(kappa):
    eig = torch.linspace(1.0, kappa, 7)
    assert heavy_ball_spectral_radius(
        gd_optimal_step(kappa, 1.0), 0.0, eig
    ) == pytest.approx(gd_rate(kappa))
    alpha, beta = heavy_ball_parameters(kappa, 1.0)
    assert heavy_ball_spectral_radius(alpha, beta, eig) == pytest.approx(
        heavy_ball_rate(kappa), rel=1e-6
    )
    # any other momentum at this step is slower
    for other in (0.8 * beta, min(0.99, 1.2 * beta)):
        assert (
            heavy_ball_spectral_radius(alpha, other, eig)
            > heavy_ball_rate(kappa) + 1e-4
        )


def test_heavy_ball_errors_are_torch_sgd_iterates():
    f = Quadratic(30.0)  # diagonal, eigenvalues 1 and 30
    alpha, beta = heavy_ball_parameters(30.0, 1.0)
    path = sgd_path(f, (1.0, 1.0), lr=alpha, momentum=beta, steps=60)
    errors = heavy_ball_errors([1.0, 30.0], lr=alpha, momentum=beta, steps=60)
    torch.testing.assert_close(errors, path.norm(dim=1))


def test_heavy_ball_errors_on_a_grid():
    errs = heavy_ball_errors(
        [1.0, 10.0],
        lr=torch.tensor([0.1, 0.2])[:, None],
        momentum=torch.tensor([0.0, 0.5, 0.9]),
        steps=5,
    )
    assert errs.shape == (6, 2, 3)
    single = heavy_ball_errors([1.0, 10.0], lr=0.2, momentum=0.5, steps=5)
    torch.testing.assert_close(errs[:, 1, 1], single)


@pytest.mark.parametrize("kappa", [10.0, 100.0])
def test_measured_contraction_matches_theory(kappa):
    steps = int(100 * math.sqrt(kappa))
    alpha, beta = heavy_ball_parameters(kappa, 1.0)
    rho = fit_contraction(
        heavy_ball_errors([1.0, kappa], lr=alpha, momentum=beta, steps=steps)
    )
    assert math.log(rho) / math.log(heavy_ball_rate(kappa)) == pytest.approx(
        1.0, abs=0.02
    )
    gd = heavy_ball_errors(
        [1.0, kappa], lr=gd_optimal_step(kappa, 1.0), momentum=0.0, steps=steps
    )
    assert fit_contraction(gd) == pytest.approx(gd_rate(kappa), rel=1e-9)


def test_fit_contraction_exact_geometric_and_divergence():
    assert fit_contraction(0.7 ** torch.arange(50.0)) == pytest.approx(0.7)
    assert fit_contraction(torch.tensor([1.0, 10.0, float("inf")])) == math.inf
    with pytest.raises(
        ValueError, match="fit_contraction: 'errors' must be at least 2 values"
    ):
        fit_contraction(torch.zeros(10))


def test_argument_checks():
    with pytest.raises(
        ValueError, match="gd_optimal_step: 'mu' must be > 0; got 0"
    ):
        gd_optimal_step(1.0, 0.0)
    with pytest.raises(
        ValueError, match="heavy_ball_parameters: 'L' must be >= 2; got 1"
    ):
        heavy_ball_parameters(1.0, 2.0)
    with pytest.raises(
        ValueError, match="gd_rate: 'kappa' must be >= 1; got 0.5"
    ):
        gd_rate(0.5)
    with pytest.raises(
        ValueError, match="heavy_ball_errors: 'lr and momentum' must be >= 0"
    ):
        heavy_ball_errors([1.0], lr=-0.1, momentum=0.0, steps=3)
    with pytest.raises(
        ValueError, match="heavy_ball_spectral_radius: 'momentum' must be >= 0"
    ):
        heavy_ball_spectral_radius(0.1, -0.5, [1.0])


def test_heavy_ball_errors_start_shape():
    with pytest.raises(
        ValueError,
        match=r"heavy_ball_errors: 'x0' must be of shape \(2,\); got \(3,\)",
    ):
        heavy_ball_errors(
            [1.0, 2.0], lr=0.1, momentum=0.5, steps=2, x0=[1.0, 1.0, 1.0]
        )
    errs = heavy_ball_errors(
        [1.0, 2.0], lr=0.1, momentum=0.0, steps=1, x0=[3.0, 4.0]
    )
    torch.testing.assert_close(
        errs, torch.tensor([5.0, (2.7**2 + 3.2**2) ** 0.5], dtype=torch.float64)
    )
