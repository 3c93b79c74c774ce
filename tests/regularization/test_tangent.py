"""dlcourse.regularization.tangent against exact math and autograd."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from dlcourse.nn import make_mlp
from dlcourse.regularization.ensembles import StackedMLP
from dlcourse.regularization.tangent import (
    KINDS,
    ContractiveAutoencoder,
    fit_tangent_prop,
    jacobian_tangents,
    principal_angles,
    tangent_distance,
    tangent_prop_penalty,
    tangent_vectors,
    transform_images,
)

PARAM = {
    "translate_x": "dx",
    "translate_y": "dy",
    "rotate": "angle",
    "scale": "scale",
}


def _images(n=4, h=8, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, h, w, generator=g, dtype=torch.float64)


def _blur(images, sigma):
    """The Gaussian blur of each image, one pixel at a time."""
    n, h, w = images.shape
    out = torch.zeros_like(images)
    for i in range(h):
        for j in range(w):
            for q in range(h):
                for p in range(w):
                    d2 = (i - q) ** 2 + (j - p) ** 2
                    g = math.exp(-d2 / (2 * sigma**2)) / (
                        2 * math.pi * sigma**2
                    )
                    out[:, i, j] += g * images[:, q, p]
    return out


def test_identity_transform_is_the_gaussian_blur():
    x = _images(2, 5, 6)
    torch.testing.assert_close(transform_images(x, sigma=0.7), _blur(x, 0.7))


def test_integer_shift_of_the_model_moves_the_blur_by_whole_pixels():
    x = torch.zeros(1, 9, 9, dtype=torch.float64)
    x[0, 4, 4] = 1.0  # a single bump: the blur is a Gaussian at (4, 4)
    moved = transform_images(x, dx=2.0, dy=-1.0, sigma=0.8)
    expected = transform_images(torch.roll(x, (-1, 2), (1, 2)), sigma=0.8)
    torch.testing.assert_close(moved, expected)


def test_rotation_by_a_quarter_turn_is_rot90():
    x = _images(3, 7, 7)
    turned = transform_images(x, angle=math.pi / 2, sigma=0.6)
    # counter-clockwise on screen = torch.rot90 over (rows, columns)
    expected = torch.rot90(transform_images(x, sigma=0.6), 1, dims=(1, 2))
    torch.testing.assert_close(turned, expected)


def test_per_image_parameters_equal_one_call_per_image():
    x = _images(3)
    dx = torch.tensor([0.3, -0.5, 1.0], dtype=torch.float64)
    angle = torch.tensor([0.1, 0.0, -0.2], dtype=torch.float64)
    batch = transform_images(x, dx=dx, angle=angle, scale=0.1)
    for i in range(3):
        one = transform_images(
            x[i : i + 1], dx=dx[i].item(), angle=angle[i].item(), scale=0.1
        )
        torch.testing.assert_close(batch[i : i + 1], one)


@pytest.mark.parametrize("sigma", [0.5, 0.8, 1.3])
def test_analytic_tangents_are_the_derivative_of_the_transform(sigma):
    x = _images(5)
    analytic = tangent_vectors(x, KINDS, sigma=sigma)
    h = 1e-5
    for k, kind in enumerate(KINDS):
        plus = transform_images(x, sigma=sigma, **{PARAM[kind]: h})
        minus = transform_images(x, sigma=sigma, **{PARAM[kind]: -h})
        torch.testing.assert_close(
            analytic[:, k], (plus - minus) / (2 * h), rtol=0, atol=1e-8
        )


def test_tangent_vectors_shape_and_default_kinds():
    x = _images(2, 6, 5)
    assert tangent_vectors(x).shape == (2, 3, 6, 5)
    assert tangent_vectors(x, ["scale"]).shape == (2, 1, 6, 5)


def _direct_tangent_distance(x, y, tx, ty):
    out = torch.empty(len(x), len(y), dtype=x.dtype)
    for i in range(len(x)):
        for j in range(len(y)):
            cols = [
                t
                for t in (
                    tx[i].T if tx is not None else None,
                    -ty[j].T if ty is not None else None,
                )
                if t is not None
            ]
            d = (y[j] - x[i])[:, None]
            if not cols:
                out[i, j] = d.pow(2).sum()
                continue
            a = torch.cat(cols, dim=1)
            coef = torch.linalg.lstsq(a, d).solution
            out[i, j] = (a @ coef - d).pow(2).sum()
    return out


@pytest.mark.parametrize("sides", ["none", "x", "y", "both"])
def test_tangent_distance_is_the_least_squares_minimum(sides):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 12, generator=g, dtype=torch.float64)
    y = torch.randn(3, 12, generator=g, dtype=torch.float64)
    tx = torch.randn(4, 2, 12, generator=g, dtype=torch.float64)
    ty = torch.randn(3, 3, 12, generator=g, dtype=torch.float64)
    tx = tx if sides in ("x", "both") else None
    ty = ty if sides in ("y", "both") else None
    torch.testing.assert_close(
        tangent_distance(x, y, tx, ty), _direct_tangent_distance(x, y, tx, ty)
    )


def test_tangent_distance_is_zero_on_the_plane_and_dependent_tangents():
    g = torch.Generator().manual_seed(2)
    y = torch.randn(2, 10, generator=g, dtype=torch.float64)
    t = torch.randn(2, 2, 10, generator=g, dtype=torch.float64)
    x = y + 0.7 * t[:, 0] - 1.5 * t[:, 1]  # on the planes of y
    d = tangent_distance(x, y, None, t)
    assert d[0, 0] < 1e-12 and d[1, 1] < 1e-12
    doubled = torch.cat([t, 3 * t[:, :1]], dim=1)  # a repeated direction
    torch.testing.assert_close(
        tangent_distance(x, y, None, doubled), tangent_distance(x, y, None, t)
    )
    # identical planes on both sides share every direction: pseudo-inverse
    same = tangent_distance(y, y, t, t)
    assert torch.isfinite(same).all() and same.diagonal().abs().max() < 1e-12
    torch.testing.assert_close(same, _direct_tangent_distance(y, y, t, t))


def test_tangent_distance_is_not_a_metric():
    # a, c: horizontal tangent lines; b: a vertical one (in the plane)
    p = torch.tensor([[0.0, 0.0], [5.0, 1.0], [5.0, 10.0]], dtype=torch.float64)
    t = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 0.0]]]).double()
    two = tangent_distance(p, p, t, t)
    one = tangent_distance(p, p, None, t)  # row to the column's line
    expected_two = torch.tensor(
        [[0.0, 0.0, 100.0], [0.0, 0.0, 0.0], [100.0, 0.0, 0.0]]
    ).double()
    expected_one = torch.tensor(
        [[0.0, 25.0, 100.0], [1.0, 0.0, 81.0], [100.0, 0.0, 0.0]]
    ).double()
    torch.testing.assert_close(two, expected_two, rtol=0, atol=1e-12)
    torch.testing.assert_close(one, expected_one, rtol=0, atol=1e-12)
    # two different points at distance 0, and sqrt(D) breaks the triangle
    assert two.sqrt()[0, 2] > two.sqrt()[0, 1] + two.sqrt()[1, 2]
    assert one.sqrt()[2, 0] > one.sqrt()[2, 1] + one.sqrt()[1, 0]


def test_principal_angles_of_equal_and_orthogonal_subspaces():
    eye = torch.eye(5, dtype=torch.float64)
    torch.testing.assert_close(
        principal_angles(eye[:2], 3 * eye[[1, 0]]), torch.zeros(2).double()
    )
    torch.testing.assert_close(
        principal_angles(eye[:2], eye[2:4]),
        torch.full((2,), math.pi / 2, dtype=torch.float64),
    )


def _net(seed=0):
    return make_mlp(
        [6, 5, 4],
        activation="tanh",
        generator=torch.Generator().manual_seed(seed),
    ).double()


@pytest.mark.parametrize("on", ["logits", "probabilities"])
def test_penalty_equals_the_explicit_jacobian(on):
    net = _net()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 6, generator=g, dtype=torch.float64)
    t = torch.randn(5, 2, 6, generator=g, dtype=torch.float64)

    def out(z):
        return net(z) if on == "logits" else torch.softmax(net(z), -1)

    jac = torch.stack(
        [torch.autograd.functional.jacobian(out, xi) for xi in x]
    )  # (5, 4, 6)
    expected = (jac @ t.transpose(1, 2)).pow(2).sum() / 5
    torch.testing.assert_close(tangent_prop_penalty(net, x, t, on=on), expected)


def test_penalty_equals_finite_differences_and_func_jvp():
    net = _net(1)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(7, 6, generator=g, dtype=torch.float64)
    t = torch.randn(7, 3, 6, generator=g, dtype=torch.float64)
    h = 1e-6
    with torch.no_grad():
        fd = sum(
            (net(x + h * t[:, k]) - net(x - h * t[:, k])).pow(2).sum()
            for k in range(3)
        ) / (4 * h**2 * 7)
    jvp = (
        sum(
            torch.func.jvp(net, (x,), (t[:, k],))[1].pow(2).sum()
            for k in range(3)
        )
        / 7
    )
    pen = tangent_prop_penalty(net, x, t)
    torch.testing.assert_close(pen, fd, rtol=1e-7, atol=0)
    torch.testing.assert_close(pen, jvp)


def test_penalty_gradient_matches_double_backward():
    net = _net(2)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    t = torch.randn(4, 2, 6, generator=g, dtype=torch.float64)
    params = list(net.parameters())[:-1]  # the output bias: no effect on J
    ours = torch.autograd.grad(tangent_prop_penalty(net, x, t), params)
    jac = torch.stack(
        [
            torch.autograd.functional.jacobian(net, xi, create_graph=True)
            for xi in x
        ]
    )
    ref = torch.autograd.grad(
        (jac @ t.transpose(1, 2)).pow(2).sum() / 4, params
    )
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_penalty_of_a_stack_is_one_value_per_member():
    mlps = [_net(s) for s in range(3)]
    stack = StackedMLP(mlps)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(3, 5, 6, generator=g, dtype=torch.float64)
    t = torch.randn(3, 5, 2, 6, generator=g, dtype=torch.float64)
    pen = tangent_prop_penalty(stack, x, t)
    assert pen.shape == (3,)
    for k, mlp in enumerate(mlps):
        torch.testing.assert_close(
            pen[k], tangent_prop_penalty(mlp, x[k], t[k])
        )


def test_penalty_vanishes_for_a_model_invariant_along_the_tangent():
    w = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 2.0]], dtype=torch.float64)

    def model(z):
        return z @ w.T  # constant along (1, 1, 0)

    g = torch.Generator().manual_seed(9)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64).expand(4, 1, 3)
    assert tangent_prop_penalty(model, x, t).item() == 0.0


def test_fit_tangent_prop_stack_equals_separate_trainings():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 8, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (2, 8), generator=g)
    t = torch.randn(2, 8, 2, 6, generator=g, dtype=torch.float64)
    lam = torch.tensor([0.0, 0.5], dtype=torch.float64)
    mlps = [_net(s) for s in range(2)]
    stack = StackedMLP(mlps)
    hist = fit_tangent_prop(
        stack,
        x,
        y,
        t,
        lam=lam,
        steps=5,
        optimizer=torch.optim.Adam(stack.parameters(), lr=1e-2),
    )
    assert len(hist["loss"]) == len(hist["penalty"]) == 5
    for k, mlp in enumerate(mlps):
        fit_tangent_prop(
            mlp,
            x[k],
            y[k],
            t[k],
            lam=lam[k].item(),
            steps=5,
            optimizer=torch.optim.Adam(mlp.parameters(), lr=1e-2),
        )
        torch.testing.assert_close(stack(x[k])[k], mlp(x[k]))


def test_contractive_penalty_is_the_jacobian_frobenius_norm():
    cae = ContractiveAutoencoder(
        6, 4, generator=torch.Generator().manual_seed(0)
    ).double()
    x = torch.randn(
        5, 6, generator=torch.Generator().manual_seed(10), dtype=torch.float64
    )
    jac = torch.stack(
        [torch.autograd.functional.jacobian(cae.encode, xi) for xi in x]
    )
    torch.testing.assert_close(cae.jacobian_penalty(x), jac.pow(2).sum() / 5)
    assert cae(x).shape == (5, 6)


def test_jacobian_tangents_of_a_linear_encoder_are_its_singular_vectors():
    g = torch.Generator().manual_seed(8)
    w = torch.randn(4, 7, generator=g, dtype=torch.float64)
    x = torch.randn(3, 7, generator=g, dtype=torch.float64)
    tangents, values = jacobian_tangents(lambda z: z @ w.T, x, 2)
    _, s, vh = torch.linalg.svd(w)
    assert tangents.shape == (3, 2, 7) and values.shape == (3, 2)
    torch.testing.assert_close(values, s[:2].expand(3, 2))
    # singular vectors up to sign: compare the projections
    torch.testing.assert_close(
        tangents.transpose(1, 2) @ tangents, (vh[:2].T @ vh[:2]).expand(3, 7, 7)
    )


def test_jacobian_tangents_are_orthonormal_and_follow_autograd():
    cae = ContractiveAutoencoder(
        5, 4, generator=torch.Generator().manual_seed(1)
    ).double()
    x = torch.randn(
        3, 5, generator=torch.Generator().manual_seed(11), dtype=torch.float64
    )
    tangents, values = jacobian_tangents(cae.encode, x, 3)
    eye = torch.eye(3, dtype=torch.float64).expand(3, 3, 3)
    torch.testing.assert_close(tangents @ tangents.transpose(1, 2), eye)
    for i, xi in enumerate(x):
        jac = torch.autograd.functional.jacobian(cae.encode, xi)
        torch.testing.assert_close(values[i], torch.linalg.svdvals(jac)[:3])


def test_principal_angles_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 9)), rng.normal(size=(4, 9))
    ours = principal_angles(torch.tensor(a), torch.tensor(b))
    ref = np.sort(scipy.linalg.subspace_angles(a.T, b.T))
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-10)
    same = principal_angles(torch.tensor(a), torch.tensor(2 * a[::-1].copy()))
    assert same.abs().max() < 1e-6


def test_argument_checks():
    x = _images(2)
    with pytest.raises(TypeError, match="transform_images: 'images' must be"):
        transform_images([1.0])
    with pytest.raises(ValueError, match=r"'images' must be a floating-point"):
        transform_images(torch.zeros(2, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"'sigma' must be > 0; got 0"):
        transform_images(x, sigma=0)
    with pytest.raises(ValueError, match=r"'dx' must be a float or a floating"):
        transform_images(x, dx=torch.zeros(3))
    with pytest.raises(TypeError, match=r"'angle' must be a real number"):
        transform_images(x, angle="10")
    with pytest.raises(ValueError, match=r"'kinds\[0\]' must be one of"):
        tangent_vectors(x, ("shear",))
    with pytest.raises(ValueError, match=r"'kinds' must be a non-empty"):
        tangent_vectors(x, ())
    with pytest.raises(TypeError, match=r"'kinds' must be a tuple or list"):
        tangent_vectors(x, "rotate")
    p = torch.zeros(3, 4)
    with pytest.raises(ValueError, match=r"tangent_distance: 'y' must be"):
        tangent_distance(p, torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"'tangents_y' must be 2 rows"):
        tangent_distance(p, torch.zeros(2, 4), None, torch.zeros(3, 1, 4))
    with pytest.raises(ValueError, match=r"'tangents_x' must be a tensor"):
        tangent_distance(p, p, torch.zeros(3, 4))
    net = _net()
    with pytest.raises(TypeError, match=r"'model' must be a callable"):
        tangent_prop_penalty(3, torch.zeros(2, 6), torch.zeros(2, 1, 6))
    with pytest.raises(ValueError, match=r"'tangents' must be a tensor of"):
        tangent_prop_penalty(net, torch.zeros(2, 6), torch.zeros(3, 1, 6))
    with pytest.raises(ValueError, match=r"'on' must be one of"):
        tangent_prop_penalty(
            net, torch.zeros(2, 6), torch.zeros(2, 1, 6), on="softmax"
        )
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    xs, ys = torch.zeros(4, 6, dtype=torch.float64), torch.zeros(4).long()
    with pytest.raises(ValueError, match=r"fit_tangent_prop: 'steps' must be"):
        fit_tangent_prop(net, xs, ys, optimizer=opt, steps=0)
    with pytest.raises(ValueError, match=r"'y' must be shape \(4,\)"):
        fit_tangent_prop(net, xs, ys[:3], optimizer=opt, steps=1)
    with pytest.raises(ValueError, match=r"'lam' must be >= 0"):
        fit_tangent_prop(net, xs, ys, optimizer=opt, steps=1, lam=-1.0)
    with pytest.raises(ValueError, match=r"'lam' must be a tensor of values"):
        fit_tangent_prop(
            net, xs, ys, optimizer=opt, steps=1, lam=torch.tensor([-1.0])
        )
    with pytest.raises(TypeError, match=r"'optimizer' must be an Optimizer"):
        fit_tangent_prop(net, xs, ys, optimizer=None, steps=1)
    with pytest.raises(ValueError, match=r"'n_hidden' must be >= 1"):
        ContractiveAutoencoder(4, 0)
    with pytest.raises(TypeError, match=r"'encoder' must be a callable"):
        jacobian_tangents(None, torch.zeros(2, 3), 1)
    with pytest.raises(ValueError, match=r"'k' must be <= the input dim"):
        jacobian_tangents(lambda z: z, torch.zeros(2, 3), 4)
    with pytest.raises(ValueError, match=r"'k' must be <= the code size"):
        jacobian_tangents(lambda z: z[:, :1], torch.zeros(2, 3), 2)
    with pytest.raises(TypeError, match=r"tangent_distance: 'x' must be a t"):
        tangent_distance([[0.0]], p)
    with pytest.raises(TypeError, match=r"penalty: 'tangents' must be a torch"):
        tangent_prop_penalty(net, torch.zeros(2, 6), None)
    with pytest.raises(TypeError, match=r"fit_tangent_prop: 'model' must be"):
        fit_tangent_prop(lambda z: z, xs, ys, optimizer=opt, steps=1)
    with pytest.raises(ValueError, match=r"fit_tangent_prop: 'on' must be"):
        fit_tangent_prop(net, xs, ys, optimizer=opt, steps=1, on="softmax")
    with pytest.raises(TypeError, match=r"fit_tangent_prop: 'y' must be a t"):
        fit_tangent_prop(net, xs, [0, 0, 0, 0], optimizer=opt, steps=1)
    with pytest.raises(ValueError, match=r"'n_in' must be >= 1"):
        ContractiveAutoencoder(0, 4)
    with pytest.raises(ValueError, match=r"jacobian_tangents: 'k' must be >="):
        jacobian_tangents(lambda z: z, torch.zeros(2, 3), 0)
    with pytest.raises(ValueError, match=r"jacobian_tangents: 'x' must be a"):
        jacobian_tangents(lambda z: z, torch.zeros(3), 1)
    with pytest.raises(TypeError, match=r"principal_angles: 'b' must be a t"):
        principal_angles(torch.zeros(2, 3), [[0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match=r"principal_angles: 'a' must be"):
        principal_angles(torch.zeros(5, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"'b' must be vectors of size 3"):
        principal_angles(torch.zeros(2, 3), torch.zeros(2, 4))
