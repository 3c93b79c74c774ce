"""dlcourse.regularization.constraints against closed forms, brute force and
torch.renorm."""

import math

import pytest
import torch

from dlcourse.regularization.constraints import (
    l2_ball_multiplier,
    max_norm,
    max_norm_,
    project_l2_ball,
    project_l2_ball_,
    projected_gradient_descent,
)


def _randn(*shape, seed=0):
    return torch.randn(
        *shape,
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64,
    )


def test_projection_is_the_nearest_point_of_the_ball_brute_force():
    # every point of a fine polar grid of the disc of radius 1.5: none is closer
    r = torch.linspace(0, 1.5, 301, dtype=torch.float64)
    phi = torch.linspace(0, 2 * math.pi, 1441, dtype=torch.float64)
    grid = torch.stack(
        [r[:, None] * phi.cos(), r[:, None] * phi.sin()], -1
    ).reshape(-1, 2)
    for z in ([3.0, -1.0], [0.2, 0.4], [-1.5, 0.0], [0.0, 7.0]):
        z = torch.tensor(z, dtype=torch.float64)
        best = grid[(grid - z).norm(dim=1).argmin()]
        proj = project_l2_ball(z, 1.5)
        assert (proj - z).norm() <= (best - z).norm() + 1e-12
        torch.testing.assert_close(proj, best, atol=5e-3, rtol=0)


def test_projection_closed_form_inside_unchanged_and_idempotent():
    z = torch.tensor([3.0, 4.0], dtype=torch.float64)  # norm 5
    torch.testing.assert_close(
        project_l2_ball(z, 2.0), torch.tensor([1.2, 1.6], dtype=torch.float64)
    )
    inside = torch.tensor([0.3, -0.4], dtype=torch.float64)
    assert torch.equal(project_l2_ball(inside, 1.0), inside)
    assert torch.equal(project_l2_ball(torch.zeros(3), 1.0), torch.zeros(3))
    assert torch.equal(
        project_l2_ball(z, 0.0), torch.zeros(2, dtype=torch.float64)
    )
    x = _randn(6, 5)
    once = project_l2_ball(x, 0.7)
    assert once.norm().item() == pytest.approx(0.7)
    torch.testing.assert_close(project_l2_ball(once, 0.7), once)


def test_projection_satisfies_the_obtuse_angle_condition():
    # <z - P(z), w - P(z)> <= 0 for every w in the ball characterises the
    # projection
    z = _randn(10, seed=1) * 3
    p = project_l2_ball(z, 1.0)
    w = _randn(500, 10, seed=2)
    w = (
        w
        / w.norm(dim=1, keepdim=True)
        * torch.rand(
            500,
            1,
            dtype=torch.float64,
            generator=torch.Generator().manual_seed(3),
        )
    )
    assert ((w - p) @ (z - p)).max().item() <= 1e-12


def test_in_place_projection_treats_each_tensor_as_its_own_ball():
    a, b = _randn(4, 3, seed=4) * 5, _randn(2, seed=5) * 0.01
    expected = [project_l2_ball(a, 1.0), b.clone()]
    project_l2_ball_([a, b], 1.0)
    torch.testing.assert_close(a, expected[0])
    assert torch.equal(b, expected[1])
    c = _randn(5, seed=6) * 4
    project_l2_ball_(c, 2.0)  # a single tensor is accepted
    assert c.norm().item() == pytest.approx(2.0)


def test_max_norm_by_hand():
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, -10.0]])
    expected = torch.tensor([[1.2, 1.6], [0.3, 0.4], [0.0, -2.0]])
    torch.testing.assert_close(max_norm(w, 2.0), expected)
    max_norm_([w], 2.0)
    torch.testing.assert_close(w, expected)


def test_max_norm_matches_torch_renorm_and_differs_from_frobenius():
    w = (
        _randn(20, 7, seed=7)
        * torch.linspace(0.1, 3, 20, dtype=torch.float64)[:, None]
    )
    c = 1.5
    torch.testing.assert_close(
        max_norm(w, c),
        torch.renorm(w, p=2, dim=0, maxnorm=c),
        atol=1e-6,
        rtol=1e-6,
    )
    rows = max_norm(w, c).norm(dim=1)
    assert rows.max().item() <= c + 1e-12
    frob = project_l2_ball(w, c * math.sqrt(20))
    assert (
        frob.norm(dim=1).max().item() > c
    )  # one ball for the matrix: some rows stay long
    small = w.norm(dim=1) < c
    torch.testing.assert_close(
        max_norm(w, c)[small], w[small]
    )  # short rows untouched
    assert (
        frob[small].norm(dim=1) < w[small].norm(dim=1)
    ).all()  # Frobenius shrinks them


def test_max_norm_on_conv_kernels_uses_each_output_slice():
    k = _randn(3, 2, 4, 4, seed=8)
    out = max_norm(k, 1.0)
    for i in range(3):
        torch.testing.assert_close(out[i], project_l2_ball(k[i], 1.0))


def test_projected_gd_reaches_the_penalized_minimizer_and_its_multiplier():
    # J(w) = 1/2 (w - b)^T H (w - b); penalized minimizer (H + lam I)^-1 H b
    h = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    b = torch.tensor([2.0, -1.5], dtype=torch.float64)
    lam = 0.8
    w_lam = torch.linalg.solve(
        h + lam * torch.eye(2, dtype=torch.float64), h @ b
    )

    def grad(w):
        return h @ (w - b)

    path = projected_gradient_descent(
        grad,
        torch.zeros(2, dtype=torch.float64),
        radius=w_lam.norm().item(),
        lr=0.2,
        steps=400,
    )
    assert path.shape == (401, 2)
    torch.testing.assert_close(path[-1], w_lam)
    assert l2_ball_multiplier(path[-1], grad(path[-1])) == pytest.approx(
        lam, rel=1e-6
    )
    # a radius larger than |b|: inactive constraint, unconstrained minimum,
    # multiplier 0
    free = projected_gradient_descent(
        grad,
        torch.zeros(2, dtype=torch.float64),
        radius=10.0,
        lr=0.2,
        steps=400,
    )
    torch.testing.assert_close(free[-1], b)
    assert abs(l2_ball_multiplier(free[-1], grad(free[-1]))) < 1e-8


def test_projected_gd_starts_from_the_projected_point():
    path = projected_gradient_descent(
        lambda w: torch.zeros_like(w),
        torch.tensor([6.0, 8.0]),
        radius=1.0,
        lr=0.1,
        steps=0,
    )
    torch.testing.assert_close(path, torch.tensor([[0.6, 0.8]]))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda: project_l2_ball(torch.ones(2), -1.0),
            ValueError,
            r"project_l2_ball: 'radius' must be >= 0; got -1.0.",
        ),
        (
            lambda: project_l2_ball([1.0], 1.0),
            TypeError,
            r"project_l2_ball: 'x' must be a torch.Tensor",
        ),
        (
            lambda: project_l2_ball(torch.ones(2, dtype=torch.int64), 1.0),
            TypeError,
            r"'x' must be a floating-point tensor",
        ),
        (
            lambda: project_l2_ball(torch.ones(2), float("nan")),
            ValueError,
            r"'radius' must be finite",
        ),
        (
            lambda: project_l2_ball_([torch.ones(2)], -0.5),
            ValueError,
            r"project_l2_ball_: 'radius' must be >= 0; got -0.5.",
        ),
        (
            lambda: project_l2_ball_([torch.ones(2), "w"], 1.0),
            TypeError,
            r"'params\[1\]' must be a torch.Tensor",
        ),
        (
            lambda: max_norm(torch.ones(3), 1.0),
            ValueError,
            r"max_norm: 'weight' must have at least 2 dimensions",
        ),
        (
            lambda: max_norm(torch.ones(3, 2), -2),
            ValueError,
            r"max_norm: 'radius' must be >= 0; got -2.",
        ),
        (
            lambda: max_norm_([torch.ones(3, 2)], "1"),
            TypeError,
            r"max_norm_: 'radius' must be a real number",
        ),
        (
            lambda: projected_gradient_descent(
                None, torch.ones(2), radius=1.0, lr=0.1, steps=1
            ),
            TypeError,
            r"'grad_fn' must be a callable",
        ),
        (
            lambda: projected_gradient_descent(
                lambda w: w, torch.ones(2), radius=1.0, lr=0.0, steps=1
            ),
            ValueError,
            r"projected_gradient_descent: 'lr' must be > 0; got 0.0.",
        ),
        (
            lambda: projected_gradient_descent(
                lambda w: w, torch.ones(2), radius=1.0, lr=0.1, steps=-1
            ),
            ValueError,
            r"'steps' must be >= 0; got -1.",
        ),
        (
            lambda: projected_gradient_descent(
                lambda w: w, torch.ones(2), radius=-1.0, lr=0.1, steps=1
            ),
            ValueError,
            r"'radius' must be >= 0",
        ),
        (
            lambda: l2_ball_multiplier(torch.ones(2), torch.ones(3)),
            ValueError,
            r"must have the same shape",
        ),
        (
            lambda: l2_ball_multiplier(torch.zeros(2), torch.ones(2)),
            ValueError,
            r"'w' must be nonzero",
        ),
    ],
)
def test_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
