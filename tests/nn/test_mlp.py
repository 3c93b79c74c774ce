"""dlcourse.nn.make_mlp."""

import pytest
import torch
from torch import nn

from dlcourse.nn import make_mlp


def test_architecture_and_reproducible_init():
    a = make_mlp(
        [40, 100, 100, 10],
        activation="tanh",
        generator=torch.Generator().manual_seed(0),
    )
    b = make_mlp(
        [40, 100, 100, 10],
        activation="tanh",
        generator=torch.Generator().manual_seed(0),
    )
    assert [type(m) for m in a] == [
        nn.Linear,
        nn.Tanh,
        nn.Linear,
        nn.Tanh,
        nn.Linear,
    ]
    assert all(
        torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())
    )
    assert a(torch.zeros(2, 40)).shape == (2, 10)


def test_init_has_torch_linear_distribution():
    # nn.Linear draws U(-1/sqrt(n_in), 1/sqrt(n_in)): variance 1 / (3 n_in)
    w = make_mlp([400, 500], generator=torch.Generator().manual_seed(1))[
        0
    ].weight
    assert w.abs().max() <= 1 / 20
    assert w.var().item() == pytest.approx(1 / 1200, rel=0.02)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (
            dict(sizes=[3]),
            ValueError,
            r"make_mlp: 'sizes' must have at least 2 entries; got \[3\]",
        ),
        (
            dict(sizes=[3, 0]),
            ValueError,
            r"make_mlp: 'sizes\[1\]' must be >= 1; got 0",
        ),
        (
            dict(sizes=[3, 2.5]),
            TypeError,
            r"make_mlp: 'sizes\[1\]' must be an int; got float",
        ),
        (
            dict(sizes="3,2"),
            TypeError,
            r"make_mlp: 'sizes' must be a list or tuple of ints; got str",
        ),
        (
            dict(sizes=[3, 2], activation="gelu"),
            ValueError,
            r"make_mlp: 'activation' must be one of 'relu', 'tanh', 'sigmoid'; "
            r"got 'gelu'",
        ),
        (
            dict(sizes=[3, 2], generator=0),
            TypeError,
            r"make_mlp: 'generator' must be a torch.Generator or None; got int",
        ),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_mlp(**kwargs)
