"""dlcourse.optim.second_order against exact math: Newton steps by hand,
conjugate gradients against torch.linalg.solve, Hutchinson's estimate
against the exact diagonal (unbiased; exact for a diagonal Hessian), and
AdaHessian against its update written out and a Newton step."""

import math

import pytest
import torch

from dlcourse.optim.second_order import (
    AdaHessian,
    adahessian_update_,
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


def test_conjugate_gradient_warm_start():
    """From the solution: no step; from a random x0: the same solution."""
    A = _spd(6, cond=10.0)
    g = torch.Generator().manual_seed(6)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    exact = torch.linalg.solve(A, b)
    x, norms = conjugate_gradient(lambda v: A @ v, b, x0=exact, tol=1e-8)
    assert len(norms) == 1 and norms[0] < 1e-8 * float(b.norm())
    torch.testing.assert_close(x, exact)
    x0 = 10 * torch.randn(6, generator=g, dtype=torch.float64)
    x, norms = conjugate_gradient(
        lambda v: A @ v, b, x0=x0, tol=1e-12, max_iter=50
    )
    # the first residual is b - A x0, not b
    assert norms[0] == pytest.approx(float((b - A @ x0).norm()))
    torch.testing.assert_close(x, exact)


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


def test_adahessian_power_zero_is_dampened_momentum():
    """k = 0, beta1 = 0.9, eps = 0.1: lr * m_t / (1 - beta1^t) / (1 + eps)."""
    w = torch.nn.Parameter(torch.tensor([1.0, -0.5], dtype=torch.float64))
    lr, b1, eps = 0.05, 0.9, 0.1
    opt = AdaHessian([w], lr=lr, betas=(b1, 0.99), eps=eps, hessian_power=0.0)
    ref, m = w.detach().clone(), torch.zeros(2, dtype=torch.float64)
    for t in range(1, 4):
        m = b1 * m + (1 - b1) * 4 * ref**3  # the EMA of the gradients
        ref = ref - lr * m / (1 - b1**t) / (1 + eps)
        opt.step(lambda: (w**4).sum())
        torch.testing.assert_close(w.detach(), ref, rtol=1e-12, atol=0)


def _reference_adahessian(groups, closure, probes, steps):
    """AdaHessian written out, with per-group hyperparameters: the same
    probe stream, |D| averaged over dims 2.. when the group asks for it."""
    params = [p for gr in groups for p in gr["params"] if p.requires_grad]
    ref = {p: p.detach().clone() for p in params}
    m = {p: torch.zeros_like(p) for p in params}
    v = {p: torch.zeros_like(p) for p in params}
    out = []
    for t in range(1, steps + 1):
        loss = closure()
        grads = torch.autograd.grad(loss, params, create_graph=True)
        zs = [rademacher_like(p, probes) for p in params]
        hzs = torch.autograd.grad(grads, params, grad_outputs=zs)
        dz = {
            p: (gr.detach(), z * hz)
            for p, gr, z, hz in zip(params, grads, zs, hzs)
        }
        with torch.no_grad():
            for gr in groups:
                lr, (b1, b2) = gr["lr"], gr["betas"]
                eps, wd, k = gr["eps"], gr["weight_decay"], gr["k"]
                for p in gr["params"]:
                    if not p.requires_grad:
                        continue
                    g, d = dz[p]
                    d = d.abs()
                    if gr["spatial"] and p.dim() > 2:
                        dims = tuple(range(2, p.dim()))
                        d = d.mean(dim=dims, keepdim=True).expand_as(d)
                    m[p] = b1 * m[p] + (1 - b1) * g
                    v[p] = b2 * v[p] + (1 - b2) * d * d
                    denom = (v[p].sqrt() / math.sqrt(1 - b2**t)) ** k + eps
                    step = m[p] / (1 - b1**t) / denom + wd * ref[p]
                    ref[p] = ref[p] - lr * step
                    p.copy_(ref[p])
        out.append({p: r.clone() for p, r in ref.items()})
    return out


def test_adahessian_groups_conv2d_and_eps_outside_the_power():
    """float64; a Conv2d kernel (4-D), two groups with their own lr, betas,
    eps, k and spatial averaging, and a frozen parameter. eps = 0.1 is
    large enough to tell (sqrt v)^k + eps from (sqrt v + eps)^k."""
    g = torch.Generator().manual_seed(7)
    conv = torch.nn.Conv2d(2, 3, 3).double()
    lin = torch.nn.Linear(3 * 4, 2).double()
    lin.bias.requires_grad_(False)
    x = torch.randn(5, 2, 4, 4, generator=g, dtype=torch.float64)
    y = torch.randn(5, 2, generator=g, dtype=torch.float64)

    def closure():
        return (lin(torch.tanh(conv(x)).flatten(1)) - y).pow(2).mean()

    spec = [
        dict(
            params=list(conv.parameters()),
            lr=0.05,
            betas=(0.8, 0.9),
            eps=0.1,
            weight_decay=0.01,
            k=0.5,
            spatial=True,
        ),
        dict(
            params=list(lin.parameters()),
            lr=0.2,
            betas=(0.5, 0.7),
            eps=0.1,
            weight_decay=0.0,
            k=1.0,
            spatial=False,
        ),
    ]
    start = [p.detach().clone() for gr in spec for p in gr["params"]]
    expected = _reference_adahessian(
        spec, closure, torch.Generator().manual_seed(9), steps=4
    )
    with torch.no_grad():
        for p, s in zip([p for gr in spec for p in gr["params"]], start):
            p.copy_(s)
    opt = AdaHessian(
        [
            dict(
                params=gr["params"],
                lr=gr["lr"],
                betas=gr["betas"],
                eps=gr["eps"],
                weight_decay=gr["weight_decay"],
                hessian_power=gr["k"],
                spatial_average=gr["spatial"],
            )
            for gr in spec
        ],
        generator=torch.Generator().manual_seed(9),
    )
    for t in range(4):
        opt.step(closure)
        for p, r in expected[t].items():
            torch.testing.assert_close(p.detach(), r, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(lin.bias.detach(), start[-1], rtol=0, atol=0)
    assert lin.bias not in opt.state


def test_adahessian_eps_is_added_after_the_power():
    """One step, beta1 = 0, k = 1/2 on a diagonal quadratic: the step is
    g / (sqrt|h| + eps), not g / sqrt(|h| + eps)."""
    h = torch.tensor([4.0, 0.25], dtype=torch.float64)
    w = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    opt = AdaHessian([w], lr=1.0, betas=(0.0, 0.5), eps=0.1, hessian_power=0.5)
    opt.step(lambda: 0.5 * (h * w**2).sum())
    expected = 1 - h / (h.sqrt() + 0.1)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-12, atol=0)


def test_adahessian_spatial_average_on_a_2x2_kernel_by_hand():
    """A 2x2x1x1 kernel, loss sum_k c_k w_k^2 / 2 (H = diag c): D = c, and
    the (1x1) spatial average changes nothing; a 1x1x2x1 kernel averages
    its two positions: |D| = (c1 + c2) / 2 for both."""
    c = torch.tensor([1.0, 3.0, 5.0, 7.0], dtype=torch.float64)
    w = torch.nn.Parameter(torch.ones(2, 2, 1, 1, dtype=torch.float64))
    opt = AdaHessian([w], lr=1.0, betas=(0.0, 0.0), eps=0.0)
    opt.step(lambda: 0.5 * (c * w.flatten() ** 2).sum())
    torch.testing.assert_close(w.detach(), torch.zeros_like(w))  # Newton
    u = torch.nn.Parameter(torch.ones(1, 1, 2, 1, dtype=torch.float64))
    cu = torch.tensor([1.0, 3.0], dtype=torch.float64)
    opt = AdaHessian([u], lr=1.0, betas=(0.0, 0.0), eps=0.0)
    opt.step(lambda: 0.5 * (cu * u.flatten() ** 2).sum())
    # step g / mean|D| = c / 2 per entry: 1 - c / 2
    torch.testing.assert_close(u.detach().flatten(), 1 - cu / 2)


def test_adahessian_skips_parameters_the_loss_does_not_use():
    used = torch.nn.Parameter(torch.tensor([2.0]))
    linear = torch.nn.Parameter(torch.tensor([1.0]))  # constant gradient
    unused = torch.nn.Parameter(torch.tensor([5.0]))
    opt = AdaHessian([used, linear, unused], lr=0.1, eps=1.0)
    opt.step(lambda: used.pow(2).sum() + 3 * linear.sum())
    assert used.item() < 2.0 and linear.item() < 1.0
    assert unused.item() == 5.0 and unused not in opt.state
    # the linear term has no curvature: D = 0, so the step is lr * g / eps
    assert linear.item() == pytest.approx(1.0 - 0.1 * 3 / 1.0)
    assert float(opt.state[linear]["exp_hessian_diag_sq"]) == 0.0


def test_adahessian_arguments():
    w = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match=r"AdaHessian.step: 'closure' must be"):
        AdaHessian([w]).step()
    bad = [
        (dict(lr=-0.1), ValueError, r"AdaHessian: 'lr' must be >= 0"),
        (dict(betas=(0.9, 1.0)), ValueError, r"AdaHessian: 'betas\[1\]' must"),
        (dict(betas=(-0.1, 0.9)), ValueError, r"AdaHessian: 'betas\[0\]' must"),
        (dict(betas=0.9), ValueError, r"AdaHessian: 'betas' must be a pair"),
        (dict(betas=(0.9,)), ValueError, r"AdaHessian: 'betas' must be a pair"),
        (dict(eps=-1e-3), ValueError, r"AdaHessian: 'eps' must be >= 0"),
        (
            dict(weight_decay=-0.1),
            ValueError,
            r"AdaHessian: 'weight_decay' must be >= 0",
        ),
        (
            dict(hessian_power=2.0),
            ValueError,
            r"AdaHessian: 'hessian_power' must be in \[0, 1\]",
        ),
        (
            dict(spatial_average=1),
            TypeError,
            r"AdaHessian: 'spatial_average' must be a bool",
        ),
        (dict(generator=0), TypeError, r"AdaHessian: 'generator' must be"),
    ]
    for kwargs, exc, match in bad:
        with pytest.raises(exc, match=match):
            AdaHessian([w], **kwargs)


def test_adahessian_update_arguments():
    p, state = torch.zeros(2), {}
    where = "adahessian_update_"
    with pytest.raises(TypeError, match=rf"{where}: 'grad' must be a torch"):
        adahessian_update_(p, [0.0, 0.0], p, state)
    with pytest.raises(ValueError, match=rf"{where}: 'd' must be of shape"):
        adahessian_update_(p, p, torch.zeros(3), state)
    with pytest.raises(TypeError, match=rf"{where}: 'state' must be a dict"):
        adahessian_update_(p, p, p, None)
    with pytest.raises(ValueError, match=rf"{where}: 'eps' must be >= 0"):
        adahessian_update_(p, p, p, state, eps=-1.0)
    assert state == {}  # nothing done on a rejected call


def test_other_arguments():
    with pytest.raises(ValueError, match=r"newton_step: 'grad' must be \(n,\)"):
        newton_step(torch.zeros(2), torch.zeros(3, 3))
    with pytest.raises(
        ValueError, match=r"newton_step: 'damping' must be >= 0"
    ):
        newton_step(torch.zeros(2), torch.eye(2), damping=-1.0)
    with pytest.raises(TypeError, match=r"newton_step: 'grad' must be a torch"):
        newton_step([0.0, 0.0], torch.eye(2))
    with pytest.raises(
        TypeError, match=r"newton_step: 'hessian' must be a torch"
    ):
        newton_step(torch.zeros(2), [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"newton_step: .* the same dtype"):
        newton_step(torch.zeros(2), torch.eye(2, dtype=torch.float64))

    def cg(**kwargs):
        args = dict(matvec=lambda v: v, b=torch.ones(2))
        args.update(kwargs)
        return conjugate_gradient(args.pop("matvec"), args.pop("b"), **args)

    with pytest.raises(
        ValueError, match=r"conjugate_gradient: 'b' must be \(n,\)"
    ):
        cg(b=torch.zeros(2, 2))
    with pytest.raises(TypeError, match=r"conjugate_gradient: 'b' must be a"):
        cg(b=[1.0, 1.0])
    with pytest.raises(
        TypeError, match=r"conjugate_gradient: 'matvec' must be callable"
    ):
        cg(matvec=torch.eye(2))
    with pytest.raises(
        ValueError, match=r"conjugate_gradient: 'max_iter' must be >= 1"
    ):
        cg(max_iter=0)
    with pytest.raises(ValueError, match=r"conjugate_gradient: 'tol' must be"):
        cg(tol=-1.0)
    with pytest.raises(TypeError, match=r"conjugate_gradient: 'x0' must be a"):
        cg(x0=[0.0, 0.0])
    with pytest.raises(
        ValueError, match=r"conjugate_gradient: 'x0' must be of shape \(2,\)"
    ):
        cg(x0=torch.zeros(3))
    with pytest.raises(
        ValueError, match=r"hutchinson_diagonal: 'n_probes' must be >= 1"
    ):
        hutchinson_diagonal(lambda vs: vs, [torch.zeros(2)], n_probes=0)
    with pytest.raises(
        TypeError, match=r"hutchinson_diagonal: 'hvp' must be callable"
    ):
        hutchinson_diagonal(None, [torch.zeros(2)])
    for like in ([], [[0.0, 1.0]]):
        with pytest.raises(
            TypeError, match=r"hutchinson_diagonal: 'like' must be a non-empty"
        ):
            hutchinson_diagonal(lambda vs: vs, like)
    with pytest.raises(
        TypeError, match=r"hutchinson_diagonal: 'generator' must be"
    ):
        hutchinson_diagonal(lambda vs: vs, [torch.zeros(2)], generator=3)
    with pytest.raises(TypeError, match=r"rademacher_like: 'generator' must"):
        rademacher_like(torch.zeros(2), generator="seed")
    with pytest.raises(TypeError, match=r"rademacher_like: 't' must be a"):
        rademacher_like([0.0, 0.0])
