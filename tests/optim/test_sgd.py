"""dlcourse.optim.sgd against torch.optim.SGD, step by step."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from dlcourse.nn.mlp import make_mlp
from dlcourse.optim.sgd import (
    SGD,
    gradient_descent_loop,
    notes_momentum_update_,
    sgd_update_,
)

COMBOS = [
    dict(momentum=m, nesterov=n, dampening=d, weight_decay=w)
    for m, n, d, w in itertools.product(
        [0.0, 0.9], [False, True], [0.0, 0.5], [0.0, 1e-2]
    )
    if not (n and (m == 0 or d != 0))  # torch.optim.SGD rejects these
]


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(48, 6, generator=g), torch.randint(
        0, 3, (48,), generator=g
    )


def _train_pair(make_ours, make_theirs, steps=100):
    x, y = _data()
    models = [
        make_mlp([6, 12, 3], generator=torch.Generator().manual_seed(1))
        for _ in range(2)
    ]
    opts = [
        make_ours(models[0].parameters()),
        make_theirs(models[1].parameters()),
    ]
    for _ in range(steps):
        for model, opt in zip(models, opts):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return models, opts


def test_combos_cover_the_valid_grid():
    assert len(COMBOS) == 10  # 16 combinations minus the 6 that torch rejects


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize(
    "hyper", COMBOS, ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items())
)
def test_100_steps_equal_torch(hyper, maximize):
    models, opts = _train_pair(
        lambda p: SGD(p, lr=0.05, maximize=maximize, **hyper),
        lambda p: torch.optim.SGD(p, lr=0.05, maximize=maximize, **hyper),
    )
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    ours, theirs = opts[0].state_dict(), opts[1].state_dict()
    assert ours["state"].keys() == theirs["state"].keys()
    for key in theirs["state"]:
        assert (
            ours["state"][key].keys()
            == theirs["state"][key].keys()
            == {"momentum_buffer"}
        )
        torch.testing.assert_close(
            ours["state"][key]["momentum_buffer"],
            theirs["state"][key]["momentum_buffer"],
            rtol=0,
            atol=0,
        )
    if hyper["momentum"] == 0:
        assert theirs["state"] == {}
    for g_ours, g_theirs in zip(ours["param_groups"], theirs["param_groups"]):
        for k in (
            "lr",
            "momentum",
            "dampening",
            "weight_decay",
            "nesterov",
            "maximize",
            "params",
        ):
            assert g_ours[k] == g_theirs[k]


def test_a_torch_state_dict_loads_into_ours_and_continues_identically():
    hyper = dict(lr=0.05, momentum=0.9, nesterov=True)
    models, opts = _train_pair(
        lambda p: torch.optim.SGD(p, **hyper),
        lambda p: torch.optim.SGD(p, **hyper),
        steps=5,
    )
    ours = SGD(models[0].parameters(), **hyper)
    ours.load_state_dict(opts[0].state_dict())
    x, y = _data()
    for model, opt in ((models[0], ours), (models[1], opts[1])):
        for _ in range(5):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_first_buffer_is_the_gradient_then_dampened():
    p, g = torch.zeros(3), torch.tensor([1.0, -2.0, 4.0])
    state = {}
    sgd_update_(p, g, state, lr=0.1, momentum=0.9, dampening=0.5)
    torch.testing.assert_close(state["momentum_buffer"], g)  # not (1 - 0.5) g
    sgd_update_(p, g, state, lr=0.1, momentum=0.9, dampening=0.5)
    torch.testing.assert_close(state["momentum_buffer"], 0.9 * g + 0.5 * g)
    torch.testing.assert_close(p, -0.1 * g - 0.1 * 1.4 * g)


def test_plain_step_and_weight_decay_by_hand():
    p, g = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0])
    sgd_update_(p, g, {}, lr=0.1, weight_decay=0.2)
    torch.testing.assert_close(
        p, torch.tensor([1.0, 2.0]) - 0.1 * (g + 0.2 * torch.tensor([1.0, 2.0]))
    )


def test_notes_momentum_is_lr_times_pytorch_buffer():
    gen = torch.Generator().manual_seed(3)
    p_notes, p_torch = torch.randn(5, generator=gen), None
    p_torch = p_notes.clone()
    s_notes, s_torch = {}, {}
    lr, gamma = 0.03, 0.8
    for _ in range(50):
        g = torch.randn(5, generator=gen)
        notes_momentum_update_(p_notes, g, s_notes, lr=lr, momentum=gamma)
        sgd_update_(p_torch, g, s_torch, lr=lr, momentum=gamma)
    torch.testing.assert_close(p_notes, p_torch, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(
        s_notes["velocity"], lr * s_torch["momentum_buffer"]
    )


def test_notes_and_pytorch_forms_differ_when_lr_changes():
    p1, p2, s1, s2 = torch.ones(1), torch.ones(1), {}, {}
    for lr in (0.1, 0.1, 0.01, 0.01):
        notes_momentum_update_(p1, torch.ones(1), s1, lr=lr, momentum=0.9)
        sgd_update_(p2, torch.ones(1), s2, lr=lr, momentum=0.9)
    assert abs(p1.item() - p2.item()) > 1e-3


INVALID = [
    (dict(lr=-0.1), "'lr' must be >= 0; got -0.1"),
    (dict(lr=0.1, momentum=-0.5), "'momentum' must be >= 0; got -0.5"),
    (
        dict(lr=0.1, weight_decay=-1e-3),
        "'weight_decay' must be >= 0; got -0.001",
    ),
    (
        dict(lr=0.1, nesterov=True),
        "'nesterov=True' requires momentum > 0 and dampening = 0",
    ),
    (
        dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
        "'nesterov=True' requires momentum > 0 and dampening = 0",
    ),
]


@pytest.mark.parametrize("kwargs, message", INVALID)
def test_invalid_arguments_raise_the_same_type_as_torch(kwargs, message):
    params = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError):
        torch.optim.SGD(params, **kwargs)
    with pytest.raises(ValueError, match="SGD: " + message.replace("(", r"\(")):
        SGD(params, **kwargs)
    with pytest.raises(ValueError, match="sgd_update_: "):
        sgd_update_(torch.zeros(2), torch.zeros(2), {}, **kwargs)


def test_type_checks():
    with pytest.raises(TypeError, match="SGD: 'nesterov' must be a bool"):
        SGD(
            [torch.zeros(1, requires_grad=True)],
            lr=0.1,
            momentum=0.9,
            nesterov=1,
        )
    with pytest.raises(TypeError, match="sgd_update_: 'state' must be a dict"):
        sgd_update_(torch.zeros(1), torch.zeros(1), None, lr=0.1)
    with pytest.raises(
        TypeError, match="notes_momentum_update_: 'state' must be a dict"
    ):
        notes_momentum_update_(
            torch.zeros(1), torch.zeros(1), [], lr=0.1, momentum=0.9
        )
    with pytest.raises(
        ValueError, match="notes_momentum_update_: 'lr' must be >= 0"
    ):
        notes_momentum_update_(
            torch.zeros(1), torch.zeros(1), {}, lr=-1.0, momentum=0.9
        )


@pytest.mark.parametrize("batch_size", [None, 1, 10])
def test_gradient_descent_loop_matches_a_hand_written_loop(batch_size):
    x, y = _data()
    models = [
        make_mlp([6, 12, 3], generator=torch.Generator().manual_seed(1))
        for _ in range(2)
    ]
    losses = gradient_descent_loop(
        models[0],
        x,
        y,
        optimizer=SGD(models[0].parameters(), lr=0.1),
        steps=12,
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(5),
    )
    opt, gen, m = (
        torch.optim.SGD(models[1].parameters(), lr=0.1),
        torch.Generator().manual_seed(5),
        batch_size or 48,
    )
    expected = []
    while len(expected) < 12:
        order = (
            torch.arange(48)
            if batch_size is None
            else torch.randperm(48, generator=gen)
        )
        for idx in torch.split(order, m):
            if len(expected) == 12:
                break
            loss = F.cross_entropy(models[1](x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            expected.append(loss.item())
    assert losses == expected
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_gradient_descent_loop_checks():
    x, y = _data()
    model = make_mlp([6, 3])
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(
        ValueError, match="'generator' must be a torch.Generator"
    ):
        gradient_descent_loop(model, x, y, optimizer=opt, steps=1, batch_size=4)
    with pytest.raises(ValueError, match="'steps' must be >= 1; got 0"):
        gradient_descent_loop(model, x, y, optimizer=opt, steps=0)
    with pytest.raises(ValueError, match="same number of rows; got 48 and 47"):
        gradient_descent_loop(model, x, y[:47], optimizer=opt, steps=1)
    with pytest.raises(
        TypeError, match="'optimizer' must be a torch.optim.Optimizer"
    ):
        gradient_descent_loop(model, x, y, optimizer=None, steps=1)
