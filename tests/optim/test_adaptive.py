"""dlcourse.optim.adaptive against torch.optim, step by step, bit for bit.

Every option combination of each optimizer runs 200 steps on a small MLP
with a new minibatch each step, side by side with its torch.optim twin
(single-tensor path); parameters after every step, the state and the
state_dict at the end must be identical. The notes' forms are checked
against the formulas written out by hand.
"""

import copy
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from dlcourse.nn.mlp import make_mlp
from dlcourse.optim import adaptive
from dlcourse.optim.adaptive import (
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    RMSprop,
    adadelta_update_,
    adagrad_update_,
    adam_update_,
    notes_adagrad_update_,
    notes_adam_update_,
    notes_rmsprop_update_,
    rmsprop_update_,
)

STEPS = 200


def _grid(**options):
    names = list(options)
    return [
        dict(zip(names, values))
        for values in itertools.product(*options.values())
    ]


GRIDS = {
    "Adagrad": (
        Adagrad,
        torch.optim.Adagrad,
        _grid(
            lr=[0.05],
            lr_decay=[0.0, 0.01],
            weight_decay=[0.0, 0.1],
            initial_accumulator_value=[0.0, 0.5],
            eps=[1e-10, 1e-3],
            maximize=[False, True],
        ),
    ),
    "RMSprop": (
        RMSprop,
        torch.optim.RMSprop,
        _grid(
            lr=[0.005],
            alpha=[0.99, 0.8],
            weight_decay=[0.0, 0.1],
            momentum=[0.0, 0.9],
            centered=[False, True],
            maximize=[False, True],
        ),
    ),
    "Adadelta": (
        Adadelta,
        torch.optim.Adadelta,
        _grid(
            lr=[1.0, 0.3],
            rho=[0.9, 0.5],
            eps=[1e-6, 1e-3],
            weight_decay=[0.0, 0.1],
            maximize=[False, True],
        ),
    ),
    "Adam": (
        Adam,
        torch.optim.Adam,
        _grid(
            lr=[0.01],
            betas=[(0.9, 0.999), (0.5, 0.9)],
            weight_decay=[0.0, 0.1],
            amsgrad=[False, True],
            maximize=[False, True],
            decoupled_weight_decay=[False, True],
        ),
    ),
    "AdamW": (
        AdamW,
        torch.optim.AdamW,
        _grid(
            lr=[0.01],
            betas=[(0.9, 0.999), (0.0, 0.5)],
            weight_decay=[0.0, 0.01, 0.3],
            amsgrad=[False, True],
            maximize=[False, True],
        ),
    ),
}
CASES = [
    pytest.param(name, hyper, id=f"{name}-{i}")
    for name, (_, _, grid) in GRIDS.items()
    for i, hyper in enumerate(grid)
]


def _models():
    g = torch.Generator().manual_seed(1)
    model = make_mlp([6, 12, 3], generator=g)
    return model, copy.deepcopy(model)


def _batches(steps=STEPS):
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        yield (
            torch.randn(16, 6, generator=g),
            torch.randint(0, 3, (16,), generator=g),
        )


def _step(model, opt, x, y, maximize):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    # maximize=True climbs: climb the negative loss so that it stays bounded
    (-loss if maximize else loss).backward()
    opt.step()


def _assert_same_state_dict(ours, theirs):
    assert ours["param_groups"] == theirs["param_groups"]
    assert ours["state"].keys() == theirs["state"].keys()
    for key, state in theirs["state"].items():
        assert list(ours["state"][key]) == list(state)
        for name, value in state.items():
            torch.testing.assert_close(
                ours["state"][key][name], value, rtol=0, atol=0
            )
            assert ours["state"][key][name].dtype == value.dtype


def test_grids_cover_every_option():
    sizes = {name: len(grid) for name, (_, _, grid) in GRIDS.items()}
    assert sizes == {
        "Adagrad": 32,
        "RMSprop": 32,
        "Adadelta": 32,
        "Adam": 32,
        "AdamW": 24,
    }


def _quadratic_pair():
    """Two copies of a weight matrix and a bias vector."""
    g = torch.Generator().manual_seed(2)
    w, b = torch.randn(12, 6, generator=g), torch.randn(12, generator=g)
    ours = [torch.nn.Parameter(w.clone()), torch.nn.Parameter(b.clone())]
    theirs = [torch.nn.Parameter(w.clone()), torch.nn.Parameter(b.clone())]
    return ours, theirs


def _noisy_gradients(steps=STEPS):
    """Gradients of a random quadratic with fresh noise at every step.

    (Written out, without autograd, so that the 152 combinations x 200 steps
    stay cheap; the MLP tests below go through autograd.)
    """
    g = torch.Generator().manual_seed(0)
    curv = [torch.rand(12, 6, generator=g) + 0.1, torch.rand(12, generator=g)]
    for _ in range(steps):
        noise = [torch.randn(12, 6, generator=g), torch.randn(12, generator=g)]
        yield lambda ps, noise=noise: [
            c * p.detach() + n for c, p, n in zip(curv, ps, noise)
        ]


@pytest.mark.parametrize(("name", "hyper"), CASES)
def test_200_steps_equal_torch(name, hyper):
    ours_cls, torch_cls, _ = GRIDS[name]
    a, b = _quadratic_pair()
    groups = [
        [{"params": [p]}, {"params": [q], "lr": hyper["lr"] / 2}]
        for p, q in (a, b)
    ]
    ours = ours_cls(groups[0], foreach=False, **hyper)
    theirs = torch_cls(groups[1], foreach=False, **hyper)
    _assert_same_state_dict(ours.state_dict(), theirs.state_dict())
    sign = -1.0 if hyper.get("maximize", False) else 1.0
    for gradients in _noisy_gradients():
        for params, opt in ((a, ours), (b, theirs)):
            for p, grad in zip(params, gradients(params)):
                # maximize=True climbs: hand it the negated gradient
                p.grad = sign * grad
            opt.step()
        # bit for bit after every step (torch.equal: assert_close is slow)
        assert all(torch.equal(p, q) for p, q in zip(a, b))
    _assert_same_state_dict(ours.state_dict(), theirs.state_dict())
    assert all(torch.isfinite(p).all() for p in a)
    # the run went somewhere: 200 steps moved the parameters
    w0 = _quadratic_pair()[0][0]
    assert (a[0] - w0).abs().max() > 1e-3


@pytest.mark.parametrize("name", list(GRIDS))
def test_defaults_equal_torch(name):
    ours_cls, torch_cls, _ = GRIDS[name]
    a, b = _models()
    ours, theirs = ours_cls(a.parameters()), torch_cls(b.parameters())
    assert ours.defaults == theirs.defaults
    for x, y in _batches(20):
        _step(a, ours, x, y, False)
        _step(b, theirs, x, y, False)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(GRIDS))
def test_state_dicts_load_both_ways(name):
    """Train 30 steps with one, continue 30 with the other: same iterates."""
    ours_cls, torch_cls, grid = GRIDS[name]
    hyper = grid[-1]
    maximize = hyper.get("maximize", False)
    batches = list(_batches(60))
    for first, second in [(ours_cls, torch_cls), (torch_cls, ours_cls)]:
        a, b = _models()
        opt_a, ref = (
            first(a.parameters(), **hyper),
            torch_cls(b.parameters(), **hyper),
        )
        for x, y in batches[:30]:
            _step(a, opt_a, x, y, maximize)
            _step(b, ref, x, y, maximize)
        opt_b = second(a.parameters(), **hyper)
        opt_b.load_state_dict(opt_a.state_dict())
        for x, y in batches[30:]:
            _step(a, opt_b, x, y, maximize)
            _step(b, ref, x, y, maximize)
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_closure_is_evaluated_and_returned():
    a, _ = _models()
    x, y = next(_batches(1))
    opt = Adam(a.parameters(), lr=0.01)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a(x), y)
        loss.backward()
        return loss

    before = [p.clone() for p in a.parameters()]
    loss = opt.step(closure)
    assert loss.item() == pytest.approx(F.cross_entropy(a(x), y).item(), 0.1)
    assert any((p != q).any() for p, q in zip(a.parameters(), before))


def test_parameters_without_gradient_are_left_alone():
    a, _ = _models()
    frozen = a[-1].weight
    frozen.requires_grad_(False)
    before = frozen.clone()
    opt = RMSprop([p for p in a.parameters()], momentum=0.9)
    _step(a, opt, *next(_batches(1)), False)
    assert torch.equal(frozen, before)
    assert frozen not in opt.state


# ------------------------------------------------------- pure update functions

PURE = [
    (adagrad_update_, torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.05)),
    (rmsprop_update_, torch.optim.RMSprop, dict(momentum=0.5, centered=True)),
    (adadelta_update_, torch.optim.Adadelta, dict(rho=0.8, weight_decay=0.1)),
    (adam_update_, torch.optim.Adam, dict(lr=0.05, amsgrad=True)),
]


@pytest.mark.parametrize(
    ("update", "torch_cls", "hyper"),
    PURE,
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_pure_update_equals_torch_on_one_tensor(update, torch_cls, hyper):
    g = torch.Generator().manual_seed(3)
    theta = torch.randn(4, 5, generator=g)
    p = torch.nn.Parameter(theta.clone())
    opt = torch_cls([p], foreach=False, **hyper)
    state = {}
    for _ in range(50):
        grad = torch.randn(4, 5, generator=g)
        update(theta, grad, state, **hyper)
        p.grad = grad.clone()
        opt.step()
        torch.testing.assert_close(theta, p.detach(), rtol=0, atol=0)
    assert list(state) == list(opt.state[p])


def test_adam_first_step_is_lr_times_sign():
    """With bias correction the first step has size lr (up to eps)."""
    theta = torch.zeros(5)
    grad = torch.tensor([3.0, -0.01, 1e3, -2.0, 0.5])
    adam_update_(theta, grad, {}, lr=0.1, eps=0.0)
    torch.testing.assert_close(theta, -0.1 * grad.sign())


def test_adam_by_hand():
    b1, b2, lr, eps = 0.8, 0.9, 0.1, 1e-8
    g1, g2 = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 4.0])
    theta, state = torch.tensor([0.3, -0.7]), {}
    adam_update_(theta, g1, state, lr=lr, betas=(b1, b2), eps=eps)
    adam_update_(theta, g2, state, lr=lr, betas=(b1, b2), eps=eps)
    m = (1 - b1) * (b1 * g1 + g2)
    v = (1 - b2) * (b2 * g1**2 + g2**2)
    m_hat, v_hat = m / (1 - b1**2), v / (1 - b2**2)
    expected = (
        torch.tensor([0.3, -0.7])
        - lr * (g1 / (g1.abs() + eps))
        - lr * m_hat / (v_hat.sqrt() + eps)
    )
    torch.testing.assert_close(theta, expected)


# ---------------------------------------------------------- the notes' forms


def test_notes_adam_has_no_bias_correction():
    b1, b2 = 0.9, 0.999
    theta, state = torch.zeros(3), {}
    grad = torch.tensor([2.0, -1.0, 0.1])
    notes_adam_update_(theta, grad, state, lr=0.01, betas=(b1, b2), eps=0.0)
    ratio = (1 - b1) / math.sqrt(1 - b2)  # 3.16: the first step's inflation
    torch.testing.assert_close(theta, -0.01 * ratio * grad.sign())
    theta2, state2 = torch.zeros(3), {}
    grads = [
        torch.randn(3, generator=torch.Generator().manual_seed(i))
        for i in range(5)
    ]
    m = c = torch.zeros(3)
    for g in grads:
        notes_adam_update_(theta2, g, state2, lr=0.01, betas=(b1, b2))
        m = b1 * m + (1 - b1) * g
        c = b2 * c + (1 - b2) * g**2
    torch.testing.assert_close(state2["m"], m)
    torch.testing.assert_close(state2["cache"], c)


def test_notes_adagrad_eps_inside_the_root():
    theta, state = torch.zeros(2), {}
    grad = torch.tensor([1e-4, 2.0])
    notes_adagrad_update_(theta, grad, state, lr=1.0, eps=1e-6)
    torch.testing.assert_close(theta, -grad / torch.sqrt(grad**2 + 1e-6))
    theirs = torch.zeros(2)
    adagrad_update_(theirs, grad, {}, lr=1.0, eps=1e-6)
    torch.testing.assert_close(theirs, -grad / (grad.abs() + 1e-6))
    # a tiny gradient: inside the root the step is ~ g / sqrt(eps) = 0.1,
    # outside it is ~ 1 (the sign)
    assert abs(theta[0].item()) < 0.2 < 0.9 < abs(theirs[0].item())


def test_notes_rmsprop_by_hand():
    theta, state = torch.tensor([1.0]), {}
    for g in [2.0, -1.0]:
        notes_rmsprop_update_(
            theta, torch.tensor([g]), state, lr=0.1, decay=0.5, eps=0.01
        )
    c1 = 0.5 * 4.0
    c2 = 0.5 * c1 + 0.5 * 1.0
    expected = (
        1.0 - 0.1 * 2.0 / math.sqrt(c1 + 0.01) + 0.1 / math.sqrt(c2 + 0.01)
    )
    assert theta.item() == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------- errors

BAD = [
    (Adam, dict(lr=-1e-3), r"Adam: 'lr' must be >= 0"),
    (Adam, dict(betas=(1.0, 0.9)), r"Adam: 'betas\[0\]' must be .*\[0"),
    (Adam, dict(betas=(0.9, -0.1)), r"Adam: 'betas\[1\]'"),
    (Adam, dict(betas=0.9), r"Adam: 'betas' must be a pair"),
    (Adam, dict(eps=-1.0), r"Adam: 'eps' must be >= 0"),
    (Adam, dict(foreach=True), r"Adam: 'foreach' must be None or False"),
    (Adam, dict(fused=True), r"Adam: 'fused' must be None or False"),
    (AdamW, dict(weight_decay=-0.1), r"AdamW: 'weight_decay' must be >= 0"),
    (AdamW, dict(capturable=True), r"AdamW: 'capturable' must be None"),
    (Adagrad, dict(lr_decay=-1), r"Adagrad: 'lr_decay' must be >= 0"),
    (
        Adagrad,
        dict(initial_accumulator_value=-1),
        r"Adagrad: 'initial_accumulator_value' must be >= 0",
    ),
    (RMSprop, dict(momentum=-0.5), r"RMSprop: 'momentum' must be >= 0"),
    (RMSprop, dict(alpha=-0.1), r"RMSprop: 'alpha' must be >= 0"),
    (Adadelta, dict(rho=1.5), r"Adadelta: 'rho' must be"),
    (Adadelta, dict(differentiable=True), r"Adadelta: 'differentiable'"),
]


@pytest.mark.parametrize(("cls", "bad", "match"), BAD)
def test_bad_arguments_are_named(cls, bad, match):
    a, _ = _models()
    with pytest.raises(ValueError, match=match):
        cls(a.parameters(), **bad)


def test_bad_flags_and_tensors():
    a, _ = _models()
    with pytest.raises(TypeError, match=r"RMSprop: 'centered' must be a bool"):
        RMSprop(a.parameters(), centered=1)
    with pytest.raises(TypeError, match=r"adam_update_: 'lr' must be a real"):
        adam_update_(torch.zeros(2), torch.zeros(2), {}, lr="0.1")
    with pytest.raises(ValueError, match=r"adam_update_: 'grad' must have"):
        adam_update_(torch.zeros(2), torch.zeros(3), {})
    with pytest.raises(TypeError, match=r"rmsprop_update_: 'state' must be"):
        rmsprop_update_(torch.zeros(2), torch.zeros(2), None)
    with pytest.raises(
        ValueError, match=r"adagrad_update_: 'param' must be a real"
    ):
        adagrad_update_(torch.zeros(2, dtype=torch.cfloat), torch.zeros(2), {})
    sparse = torch.zeros(3).to_sparse()
    with pytest.raises(
        ValueError, match=r"adadelta_update_: 'grad' must be a dense"
    ):
        adadelta_update_(torch.zeros(3), sparse, {})
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.zeros(3).to_sparse()
    with pytest.raises(ValueError, match=r"Adagrad: parameters and gradients"):
        Adagrad([p]).step()


def test_module_exports():
    assert set(adaptive.__all__) <= set(dir(adaptive))
