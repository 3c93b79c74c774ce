"""dlcourse.regularization.adversarial against closed forms and autograd."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.nn import make_mlp
from dlcourse.regularization.adversarial import (
    adversarial_loss,
    adversarial_training_step,
    fgsm,
    pgd,
    project_linf,
    vat_direction,
    vat_loss,
)
from dlcourse.regularization.ensembles import StackedMLP

CLIP = (0.0, 1.0)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _mlp(seed=0, dtype=torch.float64):
    return make_mlp([6, 8, 3], generator=_gen(seed)).to(dtype)


def _data(n=20, seed=1, dtype=torch.float64):
    x = torch.rand(n, 6, generator=_gen(seed), dtype=dtype)
    y = torch.randint(0, 3, (n,), generator=_gen(seed + 1))
    return x, y


def _logistic(score, y):
    # log(1 + exp(-y s)) with y = ±1
    return F.softplus(-y * score.squeeze(-1)).sum()


# ------------------------------------------------------------------- FGSM


def test_fgsm_on_logistic_regression_is_minus_y_sign_w():
    torch.manual_seed(0)
    model = nn.Linear(5, 1).double()
    x = torch.randn(50, 5, generator=_gen(2), dtype=torch.float64)
    y = torch.randint(0, 2, (50,), generator=_gen(3)).double() * 2 - 1
    x_adv = fgsm(model, x, y, eps=0.3, loss_fn=_logistic)
    expected = x - 0.3 * y[:, None] * model.weight.detach().sign()
    torch.testing.assert_close(x_adv, expected, rtol=0, atol=1e-15)


def test_fgsm_on_logistic_regression_raises_the_loss_by_eps_norm1():
    torch.manual_seed(0)
    model = nn.Linear(5, 1).double()
    x = torch.randn(1, 5, generator=_gen(4), dtype=torch.float64)
    y = torch.ones(1, dtype=torch.float64)
    eps = 1e-6
    x_adv = fgsm(model, x, y, eps=eps, loss_fn=_logistic)
    w = model.weight.detach()[0]
    s = (model(x).squeeze() * y).item()
    # dL/ds = -y sigma(-y s): the score moves by -y eps ||w||_1
    expected = eps * w.abs().sum() * torch.sigmoid(torch.tensor(-s))
    with torch.no_grad():
        rise = _logistic(model(x_adv), y) - _logistic(model(x), y)
    torch.testing.assert_close(rise, expected, rtol=1e-5, atol=0)


def test_fgsm_sign_is_that_of_the_finite_difference_gradient():
    model, (x, y) = _mlp(), _data(n=4)
    x_adv = fgsm(model, x, y, eps=1.0)
    h = 1e-6
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            up, down = x.clone(), x.clone()
            up[i, j] += h
            down[i, j] -= h
            with torch.no_grad():
                fd = (
                    F.cross_entropy(model(up), y)
                    - F.cross_entropy(model(down), y)
                ) / (2 * h)
            if abs(fd) > 1e-8:
                assert torch.sign(x_adv[i, j] - x[i, j]) == torch.sign(fd)


def test_fgsm_clips_to_the_range_and_leaves_parameter_gradients_alone():
    model, (x, y) = _mlp(), _data()
    x_adv = fgsm(model, x, y, eps=0.5, clip=CLIP)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert not x_adv.requires_grad
    assert all(p.grad is None for p in model.parameters())


def test_fgsm_with_eps_zero_returns_the_input():
    model, (x, y) = _mlp(), _data()
    assert torch.equal(fgsm(model, x, y, eps=0.0), x)


# -------------------------------------------------------------------- PGD


def test_pgd_one_step_of_size_eps_is_fgsm():
    model, (x, y) = _mlp(), _data()
    for clip in (None, CLIP):
        a = pgd(model, x, y, eps=0.2, step_size=0.2, steps=1, clip=clip)
        assert torch.equal(a, fgsm(model, x, y, eps=0.2, clip=clip))


@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_iterates_stay_in_the_ball_and_the_range(random_start):
    model, (x, y) = _mlp(), _data()
    for steps in (1, 3, 10, 30):
        x_adv = pgd(
            model,
            x,
            y,
            eps=0.1,
            step_size=0.04,
            steps=steps,
            clip=CLIP,
            random_start=random_start,
            generator=_gen(5),
        )
        assert (x_adv - x).abs().max() <= 0.1 + 1e-12
        assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_pgd_is_the_loop_of_signed_steps_and_projections():
    model, (x, y) = _mlp(), _data()
    expected = x.clone()
    for _ in range(5):
        z = expected.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(z), y), z)
        z = expected + 0.03 * g.sign()
        expected = torch.min(torch.max(z, x - 0.1), x + 0.1).clamp(0, 1)
    got = pgd(model, x, y, eps=0.1, step_size=0.03, steps=5, clip=CLIP)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_pgd_random_start_is_seeded():
    model, (x, y) = _mlp(), _data()
    kw = dict(eps=0.1, step_size=0.02, steps=2, random_start=True)
    a = pgd(model, x, y, generator=_gen(7), **kw)
    b = pgd(model, x, y, generator=_gen(7), **kw)
    c = pgd(model, x, y, generator=_gen(8), **kw)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_pgd_on_a_stack_attacks_each_member_separately():
    nets = [make_mlp([6, 8, 3], generator=_gen(s)).double() for s in (0, 1)]
    stack = StackedMLP(nets)
    x, y = _data()

    def stack_loss(logits, yk):
        return F.cross_entropy(
            logits.flatten(0, 1), yk.flatten(), reduction="sum"
        )

    xk, yk = x.expand(2, *x.shape), y.expand(2, -1)
    together = pgd(
        stack, xk, yk, eps=0.1, step_size=0.03, steps=4, loss_fn=stack_loss
    )
    for k, net in enumerate(stack.members()):
        alone = pgd(net, x, y, eps=0.1, step_size=0.03, steps=4)
        torch.testing.assert_close(together[k], alone)


def test_project_linf_is_the_nearest_point_of_the_box():
    x = torch.tensor([0.05, 0.5, 0.95])
    z = torch.tensor([-1.0, 0.58, 2.0])
    out = project_linf(z, x, eps=0.1, clip=CLIP)
    torch.testing.assert_close(out, torch.tensor([0.0, 0.58, 1.0]))
    out = project_linf(z, x, eps=0.1)
    torch.testing.assert_close(out, torch.tensor([-0.05, 0.58, 1.05]))


# ---------------------------------------------------- adversarial training


def test_adversarial_loss_is_the_alpha_mixture():
    model, (x, y) = _mlp(), _data()
    x_adv = fgsm(model, x, y, eps=0.1, clip=CLIP)
    with torch.no_grad():
        expected = 0.3 * F.cross_entropy(model(x), y) + 0.7 * F.cross_entropy(
            model(x_adv), y
        )
    got = adversarial_loss(model, x, y, eps=0.1, alpha=0.3, clip=CLIP)
    torch.testing.assert_close(got.detach(), expected)


def test_adversarial_loss_at_eps_zero_is_the_plain_loss():
    model, (x, y) = _mlp(), _data()
    got = adversarial_loss(model, x, y, eps=0.0)
    torch.testing.assert_close(got, F.cross_entropy(model(x), y))


def test_adversarial_loss_at_alpha_zero_is_the_loss_at_the_pgd_point():
    # Madry et al.'s form: the loss at the attack only, its gradient through
    # f(x~) with x~ held constant
    model, (x, y) = _mlp(), _data()
    kw = dict(eps=0.1, step_size=0.03, steps=4, clip=CLIP)
    got = adversarial_loss(model, x, y, alpha=0.0, **kw)
    expected = F.cross_entropy(model(pgd(model, x, y, **kw)), y)
    torch.testing.assert_close(got, expected)
    grads = torch.autograd.grad(got, list(model.parameters()))
    want = torch.autograd.grad(expected, list(model.parameters()))
    for a, b in zip(grads, want):
        torch.testing.assert_close(a, b)


def test_adversarial_training_step_uses_the_gradient_of_the_loss_only():
    x, y = _data()
    a, b = _mlp(), _mlp()
    opt_a = torch.optim.SGD(a.parameters(), lr=0.5)
    value = adversarial_training_step(
        a, opt_a, x, y, eps=0.1, alpha=0.5, steps=3, step_size=0.05
    )
    # by hand: the same attack, then one SGD step on the mixture
    x_adv = pgd(b, x, y, eps=0.1, step_size=0.05, steps=3)
    loss = 0.5 * F.cross_entropy(b(x), y) + 0.5 * F.cross_entropy(b(x_adv), y)
    grads = torch.autograd.grad(loss, list(b.parameters()))
    with torch.no_grad():
        for p, g in zip(b.parameters(), grads):
            p -= 0.5 * g
    assert value == pytest.approx(loss.item())
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)


# -------------------------------------------------------------------- VAT


def _kl(model, x, r):
    with torch.no_grad():
        log_p = F.log_softmax(model(x), -1)
    log_q = F.log_softmax(model(x + r), -1)
    return (log_p.exp() * (log_p - log_q)).sum()


def test_vat_direction_converges_to_the_top_eigenvector_of_the_hessian():
    model = _mlp(seed=3)
    x = torch.rand(1, 6, generator=_gen(9), dtype=torch.float64)
    h = torch.autograd.functional.hessian(
        lambda r: _kl(model, x, r), torch.zeros_like(x)
    ).reshape(6, 6)
    top = torch.linalg.eigh(h).eigenvectors[:, -1]
    d = vat_direction(model, x, power_iterations=60, generator=_gen(0))
    assert abs(float(d.flatten() @ top)) > 1 - 1e-8
    torch.testing.assert_close(d.norm(dim=-1), torch.ones(1, dtype=d.dtype))


def test_vat_direction_gradient_matches_finite_differences():
    # one iteration is g / ||g|| with g the autograd gradient of the KL at
    # r = xi d0; check that gradient by central differences
    model = _mlp(seed=4)
    x = torch.rand(1, 6, generator=_gen(10), dtype=torch.float64)
    d0 = torch.randn(x.shape, generator=_gen(0), dtype=x.dtype)
    d0 = d0 / d0.norm()
    r0 = 1e-2 * d0
    r = r0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(_kl(model, x, r), r)
    fd = torch.zeros_like(r0)
    for j in range(6):
        e = torch.zeros_like(r0)
        e[0, j] = 1e-6
        with torch.no_grad():
            fd[0, j] = (_kl(model, x, r0 + e) - _kl(model, x, r0 - e)) / 2e-6
    torch.testing.assert_close(g, fd, rtol=1e-5, atol=1e-12)
    d = vat_direction(model, x, xi=1e-2, generator=_gen(0))
    torch.testing.assert_close(d, g / g.norm())


def test_vat_loss_is_the_kl_at_eps_d_and_its_gradient_skips_p_of_x():
    model, (x, _) = _mlp(seed=5), _data(n=7)
    d = vat_direction(model, x, power_iterations=2, generator=_gen(3))
    loss = vat_loss(model, x, eps=0.5, power_iterations=2, generator=_gen(3))
    expected = _kl(model, x, 0.5 * d) / x.shape[0]
    torch.testing.assert_close(loss, expected)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    want = torch.autograd.grad(expected, list(model.parameters()))
    for a, b in zip(grads, want):
        torch.testing.assert_close(a, b)


def test_vat_loss_is_half_eps_squared_times_the_top_eigenvalue():
    model = _mlp(seed=3)
    x = torch.rand(1, 6, generator=_gen(9), dtype=torch.float64)
    h = torch.autograd.functional.hessian(
        lambda r: _kl(model, x, r), torch.zeros_like(x)
    ).reshape(6, 6)
    lam = torch.linalg.eigvalsh(h)[-1]
    eps = 1e-3
    loss = vat_loss(model, x, eps=eps, power_iterations=60, generator=_gen(0))
    torch.testing.assert_close(loss, 0.5 * eps**2 * lam, rtol=1e-3, atol=0)


# ------------------------------------------------------- argument checks


def test_argument_checks_name_the_parameter_and_the_value():
    model, (x, y) = _mlp(), _data()
    with pytest.raises(ValueError, match=r"fgsm: 'eps' must be >= 0; got -0.1"):
        fgsm(model, x, y, eps=-0.1)
    with pytest.raises(ValueError, match=r"pgd: 'eps' must be >= 0; got -1"):
        pgd(model, x, y, eps=-1, step_size=0.1, steps=1)
    with pytest.raises(ValueError, match=r"pgd: 'steps' must be >= 1; got 0"):
        pgd(model, x, y, eps=0.1, step_size=0.1, steps=0)
    with pytest.raises(TypeError, match=r"pgd: 'steps' must be an int"):
        pgd(model, x, y, eps=0.1, step_size=0.1, steps=2.0)
    with pytest.raises(
        ValueError, match=r"pgd: 'step_size' must be > 0; got 0.0"
    ):
        pgd(model, x, y, eps=0.1, step_size=0.0, steps=3)
    with pytest.raises(
        ValueError, match=r"pgd: 'step_size' must be > 0; got -0.5"
    ):
        pgd(model, x, y, eps=0.1, step_size=-0.5, steps=3)
    with pytest.raises(TypeError, match=r"pgd: 'generator' must be"):
        pgd(model, x, y, eps=0.1, step_size=0.1, steps=1, generator=3)
    with pytest.raises(TypeError, match=r"pgd: 'random_start' must be a bool"):
        pgd(model, x, y, eps=0.1, step_size=0.1, steps=1, random_start=1)
    with pytest.raises(
        ValueError, match=r"project_linf: 'eps' must be >= 0; got -0.2"
    ):
        project_linf(x, x, eps=-0.2)
    with pytest.raises(ValueError, match=r"fgsm: 'clip' must be a pair"):
        fgsm(model, x, y, eps=0.1, clip=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"fgsm: 'clip' must be a \(low"):
        fgsm(model, x, y, eps=0.1, clip=(0.0, 0.5, 1.0))
    with pytest.raises(TypeError, match=r"fgsm: 'model' must be a torch"):
        fgsm(lambda z: z, x, y, eps=0.1)
    with pytest.raises(TypeError, match=r"fgsm: 'x' must be a torch.Tensor"):
        fgsm(model, [1.0], y, eps=0.1)
    with pytest.raises(
        ValueError, match=r"adversarial_loss: 'alpha' must be in \[0, 1\]"
    ):
        adversarial_loss(model, x, y, eps=0.1, alpha=1.5)
    with pytest.raises(
        ValueError, match=r"adversarial_loss: 'eps' must be >= 0; got -0.1"
    ):
        adversarial_loss(model, x, y, eps=-0.1)
    for eps in (0.0, 0.1):  # checked even when no attack is run
        with pytest.raises(
            ValueError, match=r"adversarial_loss: 'steps' must be >= 1; got 0"
        ):
            adversarial_loss(model, x, y, eps=eps, steps=0)
        with pytest.raises(
            ValueError,
            match=r"adversarial_loss: 'step_size' must be > 0; got -0.1",
        ):
            adversarial_loss(model, x, y, eps=eps, step_size=-0.1)
    with pytest.raises(TypeError, match=r"fgsm: 'clip\[0\]' must be a real"):
        fgsm(model, x, y, eps=0.1, clip=("0", 1.0))
    with pytest.raises(TypeError, match=r"fgsm: 'clip' must be a \(low"):
        fgsm(model, x, y, eps=0.1, clip=0.5)
    with pytest.raises(
        TypeError, match=r"adversarial_training_step: 'optimizer' must be"
    ):
        adversarial_training_step(model, None, x, y, eps=0.1)
    with pytest.raises(ValueError, match=r"vat_loss: 'eps' must be >= 0"):
        vat_loss(model, x, eps=-1.0)
    with pytest.raises(ValueError, match=r"vat_loss: 'xi' must be > 0"):
        vat_loss(model, x, eps=1.0, xi=0.0)
    with pytest.raises(
        ValueError, match=r"vat_direction: 'power_iterations' must be >= 1"
    ):
        vat_direction(model, x, power_iterations=0)
    with pytest.raises(
        ValueError, match=r"vat_direction: 'xi' must be > 0; got -1e-06"
    ):
        vat_direction(model, x, xi=-1e-6)
    with pytest.raises(TypeError, match=r"vat_direction: 'generator' must be"):
        vat_direction(model, x, generator=0)
    with pytest.raises(TypeError, match=r"vat_loss: 'generator' must be"):
        vat_loss(model, x, eps=1.0, generator=0)
    with pytest.raises(TypeError, match=r"vat_loss: 'x' must be a torch"):
        vat_loss(model, x.tolist(), eps=1.0)
    with pytest.raises(
        ValueError, match=r"vat_loss: 'power_iterations' must be >= 1"
    ):
        vat_loss(model, x, eps=1.0, power_iterations=0)
