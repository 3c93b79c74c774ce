"""dlcourse.optim.second_order against exact math: Newton steps by hand,
conjugate gradients against torch.linalg.solve, Hutchinson's estimate
against the exact diagonal (unbiased; exact for a diagonal Hessian), and
AdaHessian against its update written out and a Newton step."""

import math

import pytest
import torch

from dlcourse.optim.second_order import (
    AdaHessian,
    conjugate_gradient,
    hutchinson_diagonal,
    newton_step,
    rademacher_like,
)


def _spd(n, seed=0, cond=100.0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    eig = torch.logspace(0, math.log10(cond), n, dtype=torch.float64)
    return q @ torch.diag(eig) @ q.T


def test_newton_step_minimizes_a_quadratic_in_one_step():
    A = _spd(5)
    b = torch.arange(5, dtype=torch.float64)
    x = torch.zeros(5, dtype=torch.float64)
    x = x + newton_step(A @ x - b, A)
    torch.testing.assert_close(x, torch.linalg.solve(A, b))


def test_undamped_newton_jumps_to_a_saddle_damped_escapes():
    """f = x^2 - y^2 at (1, 0.5): Newton lands on the saddle (0, 0)."""
    H = torch.diag(torch.tensor([2.0, -2.0], dtype=torch.float64))
    p = torch.tensor([1.0, 0.5], dtype=torch.float64)
    grad = H @ p
    torch.testing.assert_close(
        p + newton_step(grad, H), torch.zeros(2, dtype=torch.float64)
    )
    # damping 3 > 2 = -lambda_min: descent, away from the saddle in y
    step = newton_step(grad, H, damping=3.0)
    assert float(grad @ step) < 0
    assert abs(float(p[1] + step[1])) > abs(float(p[1]))


def test_conjugate_gradient_is_exact_in_n_steps():
    """Well conditioned (kappa = 10): n steps to 1e-12, up to rounding."""
    A = _spd(8, cond=10.0)
    b = torch.randn(
        8, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    x, norms = conjugate_gradient(lambda v: A @ v, b, tol=1e-12, max_iter=100)
    torch.testing.assert_close(x, torch.linalg.solve(A, b))
    assert 6 <= len(norms) - 1 <= 8
    # gradient descent at its best fixed step is far from done after 8 steps
    step = 2 / (1 + 10.0)
    y = torch.zeros(8, dtype=torch.float64)
    for _ in range(8):
        y = y - step * (A @ y - b)
    assert float((A @ y - b).norm()) > 1e-4 * float(b.norm())


def test_conjugate_gradient_with_k_distinct_eigenvalues_takes_k_steps():
    g = torch.Generator().manual_seed(2)
    q, _ = torch.linalg.qr(
        torch.randn(10, 10, generator=g, dtype=torch.float64)
    )
    eig = torch.tensor([1.0] * 4 + [5.0] * 3 + [20.0] * 3, dtype=torch.float64)
    A = q @ torch.diag(eig) @ q.T
    b = torch.randn(10, generator=g, dtype=torch.float64)
    x, norms = conjugate_gradient(lambda v: A @ v, b, tol=1e-10)
    assert len(norms) - 1 == 3
    torch.testing.assert_close(x, torch.linalg.solve(A, b))


def test_conjugate_gradient_rejects_indefinite():
    A = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"'matvec' must be positive definite"):
        conjugate_gradient(lambda v: A @ v, torch.ones(2, dtype=torch.float64))


def test_rademacher_entries_are_signs_with_mean_zero():
    z = rademacher_like(torch.zeros(100_000), torch.Generator().manual_seed(0))
    assert set(z.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(z.mean())) < 4 / math.sqrt(100_000)


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    d = torch.tensor([3.0, -1.0, 0.5, 7.0], dtype=torch.float64)
    est = hutchinson_diagonal(
        lambda vs: [d * vs[0]], [d], generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(est[0], d)


def test_hutchinson_is_unbiased_with_the_predicted_variance():
    A = _spd(6, cond=10.0)
    m, trials = 4, 4000
    g = torch.Generator().manual_seed(3)
    ests = torch.stack(
        [
            hutchinson_diagonal(
                lambda vs: [A @ vs[0]], [A[0]], n_probes=m, generator=g
            )[0]
            for _ in range(trials)
        ]
    )
    var = (
        (A**2).sum(1) - torch.diagonal(A) ** 2
    ) / m  # sum_{j != i} H_ij^2 / m
    se = (var / trials).sqrt()
    assert ((ests.mean(0) - torch.diagonal(A)).abs() < 4 * se).all()
    torch.testing.assert_close(ests.var(0), var, rtol=0.15, atol=0)


def test_hutchinson_on_a_network_against_the_exact_diagonal():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(20, 3, generator=g), torch.randn(20, generator=g)
    w = torch.randn(3, generator=g, requires_grad=True)

    def loss(w):
        return torch.tanh(x @ w).sub(y).pow(2).mean()

    H = torch.autograd.functional.hessian(loss, w)
    grad = torch.autograd.grad(loss(w), w, create_graph=True)[0]

    def hvp(vs):
        return torch.autograd.grad(grad, w, vs[0], retain_graph=True)

    est = hutchinson_diagonal(hvp, [w], n_probes=3000, generator=g)[0]
    torch.testing.assert_close(
        est, torch.diagonal(H), atol=0.05 * H.abs().max(), rtol=0
    )


def test_adahessian_on_a_diagonal_quadratic_is_a_newton_step():
    """beta1 = beta2 = 0, k = 1, lr = 1: step g / |diag H| = Newton's."""
    h = torch.tensor([1.0, 10.0, 100.0])
    target = torch.tensor([1.0, -2.0, 0.5])
    w = torch.nn.Parameter(torch.zeros(3))
    opt = AdaHessian([w], lr=1.0, betas=(0.0, 0.0), eps=0.0)
    opt.step(lambda: 0.5 * (h * (w - target) ** 2).sum())
    torch.testing.assert_close(w.detach(), target)


def test_adahessian_update_written_out():
    g = torch.Generator().manual_seed(5)
    conv = torch.nn.Conv1d(2, 3, 5)
    lin = torch.nn.Linear(3 * 4, 2)
    x, y = torch.randn(6, 2, 8, generator=g), torch.randn(6, 2, generator=g)
    params = list(conv.parameters()) + list(lin.parameters())

    def closure():
        return (lin(torch.tanh(conv(x)).flatten(1)) - y).pow(2).mean()

    lr, (b1, b2), eps, wd, k = 0.05, (0.8, 0.9), 1e-4, 0.01, 0.7
    ref = [p.detach().clone() for p in params]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    opt = AdaHessian(
        params,
        lr=lr,
        betas=(b1, b2),
        eps=eps,
        weight_decay=wd,
        hessian_power=k,
        generator=torch.Generator().manual_seed(9),
    )
    probes = torch.Generator().manual_seed(9)
    for t in range(1, 6):
        # the reference: the same probes, the update written out
        with torch.no_grad():
            for p, r in zip(params, ref):
                assert torch.allclose(p, r)
        loss = closure()
        grads = torch.autograd.grad(loss, params, create_graph=True)
        zs = [rademacher_like(p, probes) for p in params]
        hzs = torch.autograd.grad(grads, params, grad_outputs=zs)
        for i, (p, gr, z, hz) in enumerate(zip(params, grads, zs, hzs)):
            d = (z * hz).abs()
            if p.dim() == 3:  # the conv kernel: mean over its 5 positions
                d = d.mean(dim=2, keepdim=True).expand_as(d)
            m[i] = b1 * m[i] + (1 - b1) * gr.detach()
            v[i] = b2 * v[i] + (1 - b2) * d * d
            denom = (v[i].sqrt() / math.sqrt(1 - b2**t)) ** k + eps
            ref[i] = ref[i] - lr * (m[i] / (1 - b1**t) / denom + wd * ref[i])
        opt.step(closure)
    for p, r in zip(params, ref):
        torch.testing.assert_close(p.detach(), r)
    assert set(opt.state[params[0]]) == {
        "step",
        "exp_avg",
        "exp_hessian_diag_sq",
    }


def test_adahessian_power_zero_is_a_gradient_step():
    """k = 0 and beta1 = 0: the denominator is 1 + eps, a plain step."""
    w = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    opt = AdaHessian([w], lr=0.1, betas=(0.0, 0.5), eps=0.0, hessian_power=0.0)
    opt.step(lambda: (w**4).sum())
    # denominator 1: plain gradient step 0.1 * 4 w^3
    torch.testing.assert_close(w.detach(), torch.tensor([0.6, -0.6]))


def test_adahessian_arguments():
    w = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match=r"AdaHessian.step: 'closure' must be"):
        AdaHessian([w]).step()
    with pytest.raises(ValueError, match=r"AdaHessian: 'lr' must be >= 0"):
        AdaHessian([w], lr=-0.1)
    with pytest.raises(ValueError, match=r"AdaHessian: 'betas\[1\]' must be"):
        AdaHessian([w], betas=(0.9, 1.0))
    with pytest.raises(
        ValueError, match=r"AdaHessian: 'hessian_power' must be"
    ):
        AdaHessian([w], hessian_power=2.0)
    with pytest.raises(TypeError, match=r"AdaHessian: 'generator' must be"):
        AdaHessian([w], generator=0)


def test_other_arguments():
    with pytest.raises(ValueError, match=r"newton_step: 'grad' must be \(n,\)"):
        newton_step(torch.zeros(2), torch.zeros(3, 3))
    with pytest.raises(
        ValueError, match=r"newton_step: 'damping' must be >= 0"
    ):
        newton_step(torch.zeros(2), torch.eye(2), damping=-1.0)
    with pytest.raises(
        ValueError, match=r"conjugate_gradient: 'b' must be \(n,\)"
    ):
        conjugate_gradient(lambda v: v, torch.zeros(2, 2))
    with pytest.raises(
        ValueError, match=r"hutchinson_diagonal: 'n_probes' must be >= 1"
    ):
        hutchinson_diagonal(lambda vs: vs, [torch.zeros(2)], n_probes=0)
    with pytest.raises(
        TypeError, match=r"hutchinson_diagonal: 'hvp' must be callable"
    ):
        hutchinson_diagonal(None, [torch.zeros(2)])
