"""dlcourse.training.

The loop equals a hand-written one; accuracy; bad input.
"""

import pytest
import torch
import torch.nn.functional as F

from dlcourse.nn import make_mlp
from dlcourse.training import accuracy, fit


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=g)
    return x, (x[:, 0] > 0).long()


def test_fit_equals_a_hand_written_loop_and_reports_loss():
    x, y = _data()
    a = make_mlp([4, 8, 2], generator=torch.Generator().manual_seed(0))
    b = make_mlp([4, 8, 2], generator=torch.Generator().manual_seed(0))
    hist = fit(
        a,
        x,
        y,
        optimizer=torch.optim.SGD(a.parameters(), lr=0.1),
        epochs=3,
        batch_size=16,
        generator=torch.Generator().manual_seed(5),
    )
    opt, g, losses = (
        torch.optim.SGD(b.parameters(), lr=0.1),
        torch.Generator().manual_seed(5),
        [],
    )
    for _ in range(3):
        perm, total = torch.randperm(50, generator=g), 0.0
        for s in range(0, 50, 16):
            idx = perm[s : s + 16]
            loss = F.cross_entropy(b(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / 50)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)
    assert hist["loss"] == pytest.approx(losses) and hist[
        "objective"
    ] == pytest.approx(losses)


def test_fit_adds_the_penalty_and_calls_the_hooks():
    x, y = _data()
    m = make_mlp([4, 2], generator=torch.Generator().manual_seed(0))
    calls = []
    hist = fit(
        m,
        x,
        y,
        optimizer=torch.optim.SGD(m.parameters(), lr=0.0),
        epochs=1,
        batch_size=25,
        generator=torch.Generator().manual_seed(0),
        penalty=lambda mod: torch.tensor(2.0),
        before_step=lambda mod: calls.append(("before", mod)),
        after_step=lambda mod: calls.append(("after", mod)),
    )
    assert calls == [("before", m), ("after", m)] * 2
    assert hist["objective"][0] == pytest.approx(hist["loss"][0] + 2.0)


def test_accuracy_counts_and_restores_mode():
    m = torch.nn.Linear(2, 2)
    with torch.no_grad():
        m.weight.copy_(torch.eye(2))
        m.bias.zero_()
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    m.train()
    assert accuracy(m, x, torch.tensor([0, 1, 1, 1])) == 0.75
    assert m.training


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(epochs=0), ValueError, r"fit: 'epochs' must be >= 1; got 0"),
        (
            dict(batch_size=0),
            ValueError,
            r"fit: 'batch_size' must be >= 1; got 0",
        ),
        (
            dict(generator=None),
            TypeError,
            r"fit: 'generator' must be a torch.Generator; got NoneType",
        ),
        (
            dict(optimizer="sgd"),
            TypeError,
            r"fit: 'optimizer' must be a torch.optim.Optimizer; got str",
        ),
        (
            dict(y=torch.zeros(3, dtype=torch.long)),
            ValueError,
            r"fit: 'x' and 'y' must have the same number of rows; got 50 and 3",
        ),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, exc, match):
    x, y = _data()
    m = make_mlp([4, 2])
    args = dict(
        x=x,
        y=y,
        optimizer=torch.optim.SGD(m.parameters(), lr=0.1),
        epochs=1,
        batch_size=8,
        generator=torch.Generator(),
    )
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fit(m, args.pop("x"), args.pop("y"), **args)


def test_accuracy_rejects_bad_arguments():
    with pytest.raises(
        TypeError, match=r"accuracy: 'model' must be a torch.nn.Module; got str"
    ):
        accuracy("m", torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(
        ValueError,
        match=r"accuracy: 'x' and 'y' must have the same number of rows; "
        r"got 2 and 3",
    ):
        accuracy(torch.nn.Linear(2, 2), torch.zeros(2, 2), torch.zeros(3))
