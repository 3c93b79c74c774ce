"""dlcourse.regularization.multitask against hand formulas, autograd and
single-task training."""

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F

from dlcourse.regularization.multitask import (
    HardSharingNet,
    SoftSharingNets,
    fit_multitask,
    multitask_accuracy,
    soft_sharing_penalty,
)


def _tasks(n_tasks=3, n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_tasks):
        x = torch.randn(n, 5, generator=g)
        out.append(
            (x, (x[:, 0] + 0.3 * torch.randn(n, generator=g) > 0).long())
        )
    return out


def test_hard_sharing_shapes_and_one_trunk_gets_every_task_gradient():
    model = HardSharingNet(
        5, [7, 6], 3, n_out=4, generator=torch.Generator().manual_seed(0)
    )
    x = torch.randn(9, 5)
    assert [tuple(model(x, t).shape) for t in range(3)] == [(9, 4)] * 3
    # parameters: one trunk (5*7+7 + 7*6+6) and three heads (6*4+4)
    assert sum(p.numel() for p in model.parameters()) == 42 + 48 + 3 * 28
    w = model.trunk[0][0].weight
    grads = [
        torch.autograd.grad(model(x, t).square().sum(), w)[0] for t in range(3)
    ]
    assert all(g.abs().sum() > 0 for g in grads)
    # the gradient of the summed loss on the shared tensor is the sum of the
    # task gradients
    (total,) = torch.autograd.grad(
        sum(model(x, t).square().sum() for t in range(3)), w
    )
    torch.testing.assert_close(total, grads[0] + grads[1] + grads[2])
    # a head is reached by its own task only
    head0 = model.heads[0][0].weight
    (g1,) = torch.autograd.grad(model(x, 1).sum(), head0, allow_unused=True)
    assert g1 is None


def _pairwise(groups, lam):
    return lam * sum(
        (pa - pb).pow(2).sum()
        for ga, gb in itertools.combinations(groups, 2)
        for pa, pb in zip(ga, gb)
    )


@pytest.mark.parametrize("n_nets", [2, 3, 5])
def test_soft_penalty_equals_the_pairwise_formula(n_nets):
    g = torch.Generator().manual_seed(n_nets)
    groups = [
        [torch.randn(3, 4, generator=g), torch.randn(4, generator=g)]
        for _ in range(n_nets)
    ]
    torch.testing.assert_close(
        soft_sharing_penalty(groups, lam=0.7), _pairwise(groups, 0.7)
    )


def test_soft_penalty_by_hand_and_its_gradient_is_two_lambda_difference():
    a = torch.tensor([1.0, 2.0, -1.0], requires_grad=True)
    b = torch.tensor([0.0, 4.0, -1.0], requires_grad=True)
    value = soft_sharing_penalty([[a], [b]], lam=0.5)
    assert value.item() == pytest.approx(0.5 * (1.0 + 4.0 + 0.0))
    ga, gb = torch.autograd.grad(value, [a, b])
    torch.testing.assert_close(ga, 2 * 0.5 * (a - b).detach())
    torch.testing.assert_close(gb, -2 * 0.5 * (a - b).detach())


def test_soft_penalty_gradient_for_many_nets_is_the_closed_form():
    g = torch.Generator().manual_seed(1)
    thetas = [torch.randn(6, generator=g, requires_grad=True) for _ in range(4)]
    grads = torch.autograd.grad(
        soft_sharing_penalty([[t] for t in thetas], lam=0.3), thetas
    )
    for a, grad in enumerate(grads):
        expected = (
            2 * 0.3 * sum(thetas[a] - thetas[b] for b in range(4) if b != a)
        )
        torch.testing.assert_close(grad, expected.detach())


def test_soft_nets_start_equal_and_penalize_trunks_only():
    model = SoftSharingNets(
        5, [6], 3, generator=torch.Generator().manual_seed(0)
    )
    assert model.penalty(1.0).item() == 0.0
    for trunk in model.trunk_parameters()[1:]:
        for p, q in zip(trunk, model.trunk_parameters()[0]):
            assert torch.equal(p, q) and p is not q
    assert not torch.equal(
        model.nets[0].heads[0][0].weight, model.nets[1].heads[0][0].weight
    )
    apart = SoftSharingNets(
        5, [6], 3, same_init=False, generator=torch.Generator().manual_seed(0)
    )
    assert apart.penalty(1.0).item() > 0
    torch.testing.assert_close(
        apart.penalty(2.0), _pairwise(apart.trunk_parameters(), 2.0)
    )


def test_soft_sharing_at_lambda_zero_is_single_task_learning():
    tasks = _tasks()
    model = SoftSharingNets(
        5, [8], 3, same_init=False, generator=torch.Generator().manual_seed(0)
    )
    singles = [copy.deepcopy(net) for net in model.nets]
    fit_multitask(
        model,
        tasks,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        steps=20,
        penalty=lambda m: m.penalty(0.0),
    )
    for net, (x, y) in zip(singles, tasks):
        fit_multitask(
            net,
            [(x, y)],
            optimizer=torch.optim.Adam(net.parameters(), lr=1e-2),
            steps=20,
        )
    for net, joint in zip(singles, model.nets):
        for p, q in zip(net.parameters(), joint.parameters()):
            torch.testing.assert_close(p, q)


def test_fit_multitask_history_matches_the_losses_and_minibatches_are_seeded():
    tasks = _tasks()
    runs = []
    for _ in range(2):
        model = SoftSharingNets(
            5,
            [8],
            3,
            same_init=False,
            generator=torch.Generator().manual_seed(0),
        )
        h = fit_multitask(
            model,
            tasks,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            steps=4,
            batch_size=5,
            generator=torch.Generator().manual_seed(3),
            penalty=lambda m: m.penalty(0.1),
        )
        runs.append((model, h))
    assert runs[0][1] == runs[1][1]
    h = runs[0][1]
    assert len(h["loss"]) == 4 and len(h["task_loss"]) == 3
    assert h["loss"][0] == pytest.approx(
        sum(tl[0] for tl in h["task_loss"]), rel=1e-6
    )
    assert (
        h["objective"][0] > h["loss"][0]
    )  # the nets start apart: a positive penalty
    # the first full-batch loss equals a hand computation
    model = HardSharingNet(
        5, [8], 3, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        expected = sum(
            F.cross_entropy(model(x, t), y) for t, (x, y) in enumerate(tasks)
        ).item()
    h = fit_multitask(
        model,
        tasks,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        steps=1,
    )
    assert h["loss"][0] == pytest.approx(expected, rel=1e-6)


def test_multitask_accuracy_by_hand():
    model = HardSharingNet(
        5, [4], 2, generator=torch.Generator().manual_seed(0)
    )
    tasks = _tasks(2, n=10)
    with torch.no_grad():
        expected = [
            (model(x, t).argmax(1) == y).float().mean().item()
            for t, (x, y) in enumerate(tasks)
        ]
    assert multitask_accuracy(model, tasks) == expected


_T = _tasks(2, n=4)
_H = HardSharingNet(5, [3], 2)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: soft_sharing_penalty(
                [[torch.ones(2)], [torch.ones(2)]], lam=-1.0
            ),
            r"soft_sharing_penalty: 'lam' must be >= 0; got -1.0",
        ),
        (
            lambda: soft_sharing_penalty([[torch.ones(2)]], lam=1.0),
            r"'groups' must be at least 2 parameter lists \(one per net\); "
            r"got 1",
        ),
        (
            lambda: soft_sharing_penalty([[torch.ones(2)], []], lam=1.0),
            r"'groups\[1\]' must be 1 tensors, as groups\[0\]; got 0",
        ),
        (
            lambda: soft_sharing_penalty(
                [[torch.ones(2)], [torch.ones(3)]], lam=1.0
            ),
            r"'groups\[1\]\[0\]' must be of shape \(2,\); got \(3,\)",
        ),
        (
            lambda: fit_multitask(
                _H,
                _T[:1],
                optimizer=torch.optim.SGD(_H.parameters(), lr=0.1),
                steps=1,
            ),
            r"fit_multitask: 'tasks' must be a list of 2 \(x, y\) pairs, one "
            r"per task of the model; got '1 pairs'",
        ),
        (
            lambda: fit_multitask(
                _H,
                [_T[0], (_T[1][0], _T[1][1][:2])],
                optimizer=torch.optim.SGD(_H.parameters(), lr=0.1),
                steps=1,
            ),
            r"'tasks\[1\]' must be x and y with the same, non-zero number of "
            r"rows; got \(4, 2\)",
        ),
        (
            lambda: fit_multitask(
                _H,
                [_T[0], (_T[1][0],)],
                optimizer=torch.optim.SGD(_H.parameters(), lr=0.1),
                steps=1,
            ),
            r"'tasks\[1\]' must be an \(x, y\) pair of tensors",
        ),
        (
            lambda: fit_multitask(
                _H,
                _T,
                optimizer=torch.optim.SGD(_H.parameters(), lr=0.1),
                steps=0,
            ),
            r"fit_multitask: 'steps' must be >= 1; got 0",
        ),
        (
            lambda: fit_multitask(
                _H,
                _T,
                optimizer=torch.optim.SGD(_H.parameters(), lr=0.1),
                steps=1,
                batch_size=0,
                generator=torch.Generator(),
            ),
            r"'batch_size' must be >= 1; got 0",
        ),
        (
            lambda: multitask_accuracy(_H, _T * 2),
            r"multitask_accuracy: 'tasks' must be a list of 2 \(x, y\) pairs",
        ),
        (
            lambda: HardSharingNet(5, [3], 0),
            r"HardSharingNet: 'n_tasks' must be >= 1; got 0",
        ),
        (
            lambda: HardSharingNet(5, [], 2),
            r"HardSharingNet: 'trunk' must be a non-empty list or tuple of "
            r"ints; got \[\]",
        ),
        (
            lambda: HardSharingNet(0, [3], 2),
            r"HardSharingNet: 'n_in' must be >= 1; got 0",
        ),
        (
            lambda: HardSharingNet(5, [3], 2, n_out=0),
            r"HardSharingNet: 'n_out' must be >= 1; got 0",
        ),
        (
            lambda: _H(torch.ones(1, 5), 2),
            r"HardSharingNet: 'task' must be < n_tasks = 2; got 2",
        ),
        (
            lambda: _H(torch.ones(1, 5), -1),
            r"HardSharingNet: 'task' must be >= 0; got -1",
        ),
        (
            lambda: SoftSharingNets(5, [3], 0),
            r"SoftSharingNets: 'n_tasks' must be >= 1; got 0",
        ),
        (
            lambda: SoftSharingNets(5, [3], 2)(torch.ones(1, 5), 3),
            r"SoftSharingNets: 'task' must be < n_tasks = 2; got 3",
        ),
        (
            lambda: SoftSharingNets(5, [3], 2).penalty(-0.5),
            r"soft_sharing_penalty: 'lam' must be >= 0; got -0.5",
        ),
    ],
)
def test_bad_values_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: soft_sharing_penalty([[1.0], [2.0]], lam=1.0),
            r"soft_sharing_penalty: 'groups\[0\]\[0\]' must be a "
            r"torch.Tensor; got float",
        ),
        (
            lambda: soft_sharing_penalty(torch.ones(2, 2), lam=1.0),
            r"'groups' must be a list of lists of tensors; got Tensor",
        ),
        (
            lambda: soft_sharing_penalty(
                [[torch.ones(1)], [torch.ones(1)]], lam="1"
            ),
            r"'lam' must be a real number; got str",
        ),
        (
            lambda: fit_multitask(
                torch.nn.Linear(2, 2),
                _T,
                optimizer=torch.optim.SGD(_H.parameters(), lr=0.1),
                steps=1,
            ),
            r"fit_multitask: 'model' must have an int attribute 'n_tasks'; "
            r"got None",
        ),
        (
            lambda: fit_multitask(_H, _T, optimizer=None, steps=1),
            r"fit_multitask: 'optimizer' must be a torch.optim.Optimizer; "
            r"got NoneType",
        ),
        (
            lambda: fit_multitask(
                _H,
                _T,
                optimizer=torch.optim.SGD(_H.parameters(), lr=0.1),
                steps=1,
                batch_size=2,
            ),
            r"fit_multitask: 'generator' must be a torch.Generator when "
            r"'batch_size' is given; got NoneType",
        ),
        (
            lambda: fit_multitask(
                _H,
                "tasks",
                optimizer=torch.optim.SGD(_H.parameters(), lr=0.1),
                steps=1,
            ),
            r"fit_multitask: 'tasks' must be a list of \(x, y\) pairs; got str",
        ),
        (
            lambda: fit_multitask(
                _H,
                [_T[0], torch.ones(2)],
                optimizer=torch.optim.SGD(_H.parameters(), lr=0.1),
                steps=1,
            ),
            r"'tasks\[1\]' must be an \(x, y\) pair; got Tensor",
        ),
        (
            lambda: _H(torch.ones(1, 5), 1.0),
            r"HardSharingNet: 'task' must be an int; got float",
        ),
        (
            lambda: SoftSharingNets(5, [3], 2, same_init=1),
            r"SoftSharingNets: 'same_init' must be a bool; got int",
        ),
        (
            lambda: HardSharingNet(5, 3, 2),
            r"HardSharingNet: 'trunk' must be a non-empty list or tuple of "
            r"ints; got int",
        ),
    ],
)
def test_bad_types_raise_type_error(call, match):
    with pytest.raises(TypeError, match=match):
        call()
