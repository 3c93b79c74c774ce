"""dlcourse.optim.second_order_analysis against exact math: SaddleWell's
derivatives against autograd, newton_paths against newton_step one start
at a time, the saddle's attraction and its cures, and every argument check."""

import math

import pytest
import torch

from dlcourse.objectives import Rosenbrock
from dlcourse.optim.second_order import newton_step
from dlcourse.optim.second_order_analysis import (
    SaddleWell,
    gd_paths,
    newton_paths,
)

STARTS = torch.tensor(
    [[1.0, 0.3], [-0.5, 1.7], [0.2, -0.1], [1.5, -0.8]], dtype=torch.float64
)


def test_saddlewell_derivatives_match_autograd():
    f = SaddleWell()
    for p in STARTS:
        torch.testing.assert_close(f.grad(p), torch.func.grad(f.value)(p))
        torch.testing.assert_close(f.hessian(p), torch.func.hessian(f.value)(p))
    torch.testing.assert_close(f.grad(f.saddle_point), torch.zeros(2))
    for m in f.minimizers:
        torch.testing.assert_close(f.grad(m), torch.zeros(2))
        assert float(f.value(m)) == 0.0
    assert f.hessian(STARTS).shape == (4, 2, 2)


@pytest.mark.parametrize("damping", [0.0, 0.3, 2.0])
def test_newton_paths_are_newton_steps(damping):
    f = SaddleWell()
    paths = newton_paths(f, STARTS, damping=damping, steps=3)
    assert paths.shape == (4, 4, 2) and paths.dtype == torch.float64
    for i, p in enumerate(STARTS):
        x = p.clone()
        for t in range(3):
            x = x + newton_step(f.grad(x), f.hessian(x), damping=damping)
            torch.testing.assert_close(paths[t + 1, i], x)


def test_saddle_free_newton_uses_absolute_eigenvalues():
    f = SaddleWell()
    p = torch.tensor([[0.5, 0.1]], dtype=torch.float64)
    step = p - newton_paths(f, p, saddle_free=True, steps=1)[1]
    h = f.hessian(p[0]).diagonal().abs()
    torch.testing.assert_close(step[0], f.grad(p[0]) / h)


def test_saddle_free_newton_with_a_non_diagonal_hessian():
    """Rosenbrock's Hessian is not diagonal, and indefinite at (0.5, 1)."""
    f = Rosenbrock()
    p = torch.tensor([[0.5, 1.0], [-1.0, 0.5]], dtype=torch.float64)
    paths = newton_paths(f, p, saddle_free=True, damping=0.1, steps=1)
    for i in range(2):
        h = f.hessian(p[i]).double()
        assert abs(float(h[0, 1])) > 1
        eig, vec = torch.linalg.eigh(h)
        abs_h = vec @ torch.diag(eig.abs() + 0.1) @ vec.T
        expected = p[i] - torch.linalg.solve(abs_h, f.grad(p[i]).double())
        torch.testing.assert_close(paths[1, i], expected)
    assert float(torch.linalg.eigvalsh(f.hessian(p[0]).double())[0]) < 0


def test_abs_2x2_of_a_singular_matrix():
    from dlcourse.optim.second_order_analysis import _abs_2x2

    h = torch.tensor(
        [[[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]],
        dtype=torch.float64,
    )
    # |0| = 0 (not NaN); [[1, 1], [1, 1]] is PSD, its own |H|
    torch.testing.assert_close(_abs_2x2(h), h)


def test_abs_2x2_matches_eigh():
    from dlcourse.optim.second_order_analysis import _abs_2x2

    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, 2, 2, generator=g, dtype=torch.float64)
    h = a + a.transpose(-1, -2)
    eig, vec = torch.linalg.eigh(h)
    expected = vec @ torch.diag_embed(eig.abs()) @ vec.transpose(-1, -2)
    torch.testing.assert_close(_abs_2x2(h), expected)


def test_undamped_newton_is_attracted_by_the_saddle_others_escape():
    f = SaddleWell()
    near = torch.tensor([[1.0, 0.2], [-1.0, -0.3]], dtype=torch.float64)
    to_saddle = newton_paths(f, near, steps=30)[-1]
    torch.testing.assert_close(to_saddle, torch.zeros_like(near))
    for final in (
        newton_paths(f, near, damping=2.0, steps=200)[-1],
        newton_paths(f, near, saddle_free=True, steps=30)[-1],
        gd_paths(f, near, lr=0.1, steps=300)[-1],
    ):
        torch.testing.assert_close(
            final.abs(), torch.tensor([[0.0, 1.0]] * 2).double()
        )


@pytest.mark.parametrize("damping", [0.0, 0.1, 0.3, 0.45])
def test_saddle_basin_is_the_band_of_the_two_cycle(damping):
    """For lambda < 1/2 the starts that end at the saddle are exactly
    |y| < sqrt((1 - 2 lambda) / 5), where N(y) = -y is a 2-cycle."""
    f = SaddleWell()
    edge = math.sqrt((1 - 2 * damping) / 5)
    ys = torch.linspace(-1.5, 1.5, 61, dtype=torch.float64) + 0.013
    ys = ys[(ys.abs() - edge).abs() > 5e-3]  # no start on the edge
    starts = torch.stack([torch.full_like(ys, 0.7), ys], dim=1)
    final = newton_paths(f, starts, damping=damping, steps=300)[-1]
    at_saddle = final.norm(dim=1) < 1e-6
    assert torch.equal(at_saddle, ys.abs() < edge)
    assert at_saddle.any() and not at_saddle.all()


def test_gd_paths_by_hand():
    f = SaddleWell()
    paths = gd_paths(f, STARTS, lr=0.1, steps=2)
    x1 = STARTS - 0.1 * f.grad(STARTS)
    torch.testing.assert_close(paths[1], x1)
    torch.testing.assert_close(paths[2], x1 - 0.1 * f.grad(x1))


def test_arguments():
    f = SaddleWell()
    with pytest.raises(TypeError, match=r"newton_paths: 'objective' must be"):
        newton_paths("f", STARTS, steps=1)
    with pytest.raises(
        ValueError, match=r"newton_paths: 'starts' must be of shape \(N, 2\)"
    ):
        newton_paths(f, torch.zeros(3), steps=1)
    with pytest.raises(ValueError, match=r"newton_paths: 'damping' must be"):
        newton_paths(f, STARTS, damping=-1.0, steps=1)
    with pytest.raises(TypeError, match=r"newton_paths: 'saddle_free' must"):
        newton_paths(f, STARTS, saddle_free=1, steps=1)
    with pytest.raises(ValueError, match=r"newton_paths: 'steps' must be"):
        newton_paths(f, STARTS, steps=-1)
    with pytest.raises(ValueError, match=r"gd_paths: 'lr' must be > 0"):
        gd_paths(f, STARTS, lr=0.0, steps=1)
    with pytest.raises(ValueError, match=r"gd_paths: 'steps' must be"):
        gd_paths(f, STARTS, lr=0.1, steps=-1)
    with pytest.raises(ValueError, match=r"gd_paths: 'starts' must be"):
        gd_paths(f, torch.zeros(2, 3), lr=0.1, steps=1)
    with pytest.raises(ValueError, match=r"SaddleWell.value: 'x' must be"):
        f.value(torch.zeros(3))
