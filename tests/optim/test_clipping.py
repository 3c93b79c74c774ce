"""dlcourse.optim.clipping against its twins in torch.nn.utils.

torch.nn.utils.clip_grad_norm_ and torch.nn.utils.clip_grad_value_.
"""

import math

import pytest
import torch

from dlcourse.optim.clipping import (
    clip_by_norm,
    clip_by_value,
    clip_grad_norm_,
    clip_grad_value_,
    total_grad_norm,
)


def _twin_params(seed, scale):
    """Two identical lists of parameters with random gradients.

    The last parameter has no gradient.
    """
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 4), (5,), (2, 2, 3), (1,)]
    ours, theirs = [], []
    for i, s in enumerate(shapes):
        p = torch.randn(s, generator=g, dtype=torch.float64)
        grad = scale * torch.randn(s, generator=g, dtype=torch.float64)
        a, b = p.clone().requires_grad_(), p.clone().requires_grad_()
        if i != 3:  # the last parameter has no gradient: it must be skipped
            a.grad, b.grad = grad.clone(), grad.clone()
        ours.append(a)
        theirs.append(b)
    return ours, theirs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("seed", range(10))
def test_clip_grad_norm_matches_torch(seed, norm_type):
    g = torch.Generator().manual_seed(100 + seed)
    scale = float(10 ** torch.empty(1).uniform_(-2, 2, generator=g))
    max_norm = float(10 ** torch.empty(1).uniform_(-1, 1, generator=g))
    ours, theirs = _twin_params(seed, scale)
    total = clip_grad_norm_(ours, max_norm=max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(
        theirs, max_norm, norm_type=norm_type
    )
    torch.testing.assert_close(total, expected)
    for a, b in zip(ours, theirs):
        if b.grad is None:
            assert a.grad is None
        else:
            torch.testing.assert_close(a.grad, b.grad)
    assert total_grad_norm(ours, norm_type=norm_type) <= max_norm * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(10))
def test_clip_grad_value_matches_torch(seed):
    g = torch.Generator().manual_seed(200 + seed)
    clip = float(torch.empty(1).uniform_(0.05, 2.0, generator=g))
    ours, theirs = _twin_params(seed, scale=2.0)
    clip_grad_value_(ours, clip_value=clip)
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for a, b in zip(ours, theirs):
        if b.grad is not None:
            torch.testing.assert_close(a.grad, b.grad)
            assert a.grad.abs().max() <= clip


def test_short_gradient_is_left_alone_and_single_tensor_works():
    p = torch.zeros(3, requires_grad=True)
    p.grad = torch.tensor([0.3, -0.4, 0.0])
    total = clip_grad_norm_(p, max_norm=1.0)
    torch.testing.assert_close(total, torch.tensor(0.5))
    torch.testing.assert_close(p.grad, torch.tensor([0.3, -0.4, 0.0]))


def test_total_grad_norm_by_hand_and_without_gradients():
    a, b = (
        torch.zeros(2, requires_grad=True),
        torch.zeros(1, requires_grad=True),
    )
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([-4.0])
    torch.testing.assert_close(total_grad_norm([a, b]), torch.tensor(5.0))
    torch.testing.assert_close(
        total_grad_norm([a, b], norm_type=math.inf), torch.tensor(4.0)
    )
    torch.testing.assert_close(
        total_grad_norm([a, b], norm_type=1), torch.tensor(7.0)
    )
    c = torch.zeros(2, requires_grad=True)
    assert total_grad_norm([c]).item() == 0.0
    assert clip_grad_norm_([c], max_norm=1.0).item() == 0.0


def test_norm_clipping_keeps_direction_value_clipping_does_not():
    grad = torch.tensor([100.0, 1.0], dtype=torch.float64)
    by_norm = clip_by_norm(grad, max_norm=1.0)
    by_value = clip_by_value(grad, clip_value=1.0)

    def cos(u, v):
        return (u @ v / (u.norm() * v.norm())).item()

    # norm clipping is a rescaling: s * grad with s = c / (||grad|| + 1e-6)
    torch.testing.assert_close(by_norm, grad / (grad.norm() + 1e-6))
    assert cos(by_norm, grad) == pytest.approx(1.0, abs=1e-12)
    assert by_norm.norm().item() == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(
        by_value, torch.tensor([1.0, 1.0], dtype=torch.float64)
    )
    assert math.degrees(math.acos(cos(by_value, grad))) == pytest.approx(
        45 - math.degrees(math.atan(0.01))
    )
    # the pure functions agree with the in-place ones
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    p.grad = grad.clone()
    clip_grad_norm_([p], max_norm=1.0)
    torch.testing.assert_close(p.grad, by_norm)
    assert grad.tolist() == [100.0, 1.0], (
        "the pure functions do not modify their input"
    )


def test_clip_by_norm_along_a_dimension_clips_each_slice_alone():
    g = torch.Generator().manual_seed(7)
    grads = 3 * torch.randn(6, 4, generator=g, dtype=torch.float64)
    grads[2] *= 0.01  # a short row: left alone
    rows = torch.stack([clip_by_norm(r, max_norm=1.0) for r in grads])
    torch.testing.assert_close(clip_by_norm(grads, max_norm=1.0, dim=1), rows)
    torch.testing.assert_close(clip_by_norm(grads, max_norm=1.0, dim=-1), rows)
    torch.testing.assert_close(rows[2], grads[2])
    cols = torch.stack(
        [clip_by_norm(col, max_norm=1.0) for col in grads.T], dim=1
    )
    torch.testing.assert_close(clip_by_norm(grads, max_norm=1.0, dim=0), cols)
    # each row is rescaled by one positive factor, as PyTorch's clipping does
    for r, orig in zip(rows, grads):
        p = orig.clone().requires_grad_()
        p.grad = orig.clone()
        torch.nn.utils.clip_grad_norm_([p], 1.0)
        torch.testing.assert_close(r, p.grad)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda p: clip_grad_norm_(p, max_norm=-1.0),
            ValueError,
            r"clip_grad_norm_: 'max_norm' must be >= 0; got -1.0.",
        ),
        (
            lambda p: clip_grad_norm_(p, max_norm="1"),
            TypeError,
            r"clip_grad_norm_: 'max_norm' must be a real number; got str.",
        ),
        (
            lambda p: clip_grad_norm_(p, max_norm=1.0, norm_type=0),
            ValueError,
            r"clip_grad_norm_: 'norm_type' must be > 0 or inf; got 0.",
        ),
        (
            lambda p: clip_grad_norm_(p, max_norm=1.0, norm_type=-math.inf),
            ValueError,
            r"clip_grad_norm_: 'norm_type' must be finite; got -inf.",
        ),
        (
            lambda p: clip_grad_norm_([p[0], "x"], max_norm=1.0),
            TypeError,
            r"clip_grad_norm_: 'parameters\[1\]' must be a torch.Tensor; got "
            r"str.",
        ),
        (
            lambda p: clip_grad_norm_(3, max_norm=1.0),
            TypeError,
            r"clip_grad_norm_: 'parameters' must be a tensor or an iterable of "
            r"tensors; got int.",
        ),
        (
            lambda p: clip_grad_value_(p, clip_value=-0.5),
            ValueError,
            r"clip_grad_value_: 'clip_value' must be >= 0; got -0.5.",
        ),
        (
            lambda p: total_grad_norm(p, norm_type=-2),
            ValueError,
            r"total_grad_norm: 'norm_type' must be > 0 or inf; got -2.",
        ),
        (
            lambda p: clip_by_norm([1.0], max_norm=1.0),
            TypeError,
            r"clip_by_norm: 'grad' must be a torch.Tensor; got list.",
        ),
        (
            lambda p: clip_by_norm(torch.ones(2), max_norm=-1),
            ValueError,
            r"clip_by_norm: 'max_norm' must be >= 0; got -1.",
        ),
        (
            lambda p: clip_by_norm(torch.ones(2, 3), max_norm=1.0, dim=2),
            ValueError,
            r"clip_by_norm: 'dim' must be None or in \[-2, 1\]; got 2.",
        ),
        (
            lambda p: clip_by_norm(torch.ones(2), max_norm=1.0, dim=True),
            TypeError,
            r"clip_by_norm: 'dim' must be an int; got bool.",
        ),
        (
            lambda p: clip_by_value([1.0], clip_value=1.0),
            TypeError,
            r"clip_by_value: 'grad' must be a torch.Tensor; got list.",
        ),
        (
            lambda p: clip_by_value(torch.ones(2), clip_value=math.nan),
            ValueError,
            r"clip_by_value: 'clip_value' must be finite; got nan.",
        ),
    ],
)
def test_argument_checks(call, exc, match):
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(exc, match=match):
        call(p)
