"""dlcourse.nn.batchnorm against torch.nn.BatchNorm1d and autograd."""

import itertools

import pytest
import torch

from dlcourse.nn.batchnorm import BatchNorm1d, batch_norm, batch_norm_backward

OPTIONS = list(
    itertools.product(
        [(True, True), (True, False), (False, True)],  # affine, bias
        [True, False],  # track_running_stats
        [0.1, 0.5, None],  # momentum
        [2, 3],  # input rank: (N, C) or (N, C, L)
    )
)


def _inputs(rank, steps=6, seed=0, dtype=torch.float64):
    """Batches in float64, where both implementations agree to ~1e-12."""
    g = torch.Generator().manual_seed(seed)
    shape = (16, 5) if rank == 2 else (8, 5, 7)
    # features with different means and scales, as after a linear layer
    scale = torch.tensor([0.1, 1.0, 3.0, 10.0, 0.5], dtype=dtype)
    shift = torch.tensor([-2.0, 0.0, 5.0, 1.0, 30.0], dtype=dtype)
    view = (1, 5) if rank == 2 else (1, 5, 1)
    for _ in range(steps):
        x = torch.randn(shape, generator=g, dtype=dtype)
        yield (x * scale.view(view) + shift.view(view)).requires_grad_()


def test_options_cover_the_grid():
    assert len(OPTIONS) == 36


@pytest.mark.parametrize(("affine_bias", "track", "momentum", "rank"), OPTIONS)
def test_train_then_eval_equals_torch(affine_bias, track, momentum, rank):
    affine, bias = affine_bias
    kwargs = dict(
        affine=affine,
        bias=bias,
        track_running_stats=track,
        momentum=momentum,
        dtype=torch.float64,
    )
    ours, theirs = BatchNorm1d(5, **kwargs), torch.nn.BatchNorm1d(5, **kwargs)
    if affine:  # non-trivial gamma and beta
        with torch.no_grad():
            for m in (ours, theirs):
                m.weight.copy_(torch.linspace(0.5, 2.0, 5))
                if bias:
                    m.bias.copy_(torch.linspace(-1.0, 1.0, 5))
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for x in _inputs(rank):
        x2 = x.detach().clone().requires_grad_()
        y, y2 = ours(x), theirs(x2)
        torch.testing.assert_close(y, y2)
        g = torch.randn(
            y.shape,
            generator=torch.Generator().manual_seed(1),
            dtype=torch.float64,
        )
        (y * g).sum().backward()
        (y2 * g).sum().backward()
        torch.testing.assert_close(x.grad, x2.grad)
    if affine:
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad)
        if bias:
            torch.testing.assert_close(ours.bias.grad, theirs.bias.grad)
        else:
            assert ours.bias is None and theirs.bias is None
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)
    ours.eval()
    theirs.eval()
    for x in _inputs(rank, steps=2, seed=5):
        torch.testing.assert_close(ours(x), theirs(x))
    if track:
        # evaluation uses the running statistics, so it is not the training
        # output of the same batch
        x = next(_inputs(rank, steps=1, seed=9))
        ours.train()
        assert not torch.allclose(ours(x), theirs(x))
    assert repr(ours) == repr(theirs)


def test_float32_agrees_to_float32_precision():
    ours, theirs = BatchNorm1d(5), torch.nn.BatchNorm1d(5)
    for x in _inputs(3, dtype=torch.float32):
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours.running_var, theirs.running_var)


def test_state_dict_loads_both_ways():
    ours, theirs = BatchNorm1d(5), torch.nn.BatchNorm1d(5)
    for x in _inputs(2, dtype=torch.float32):
        theirs(x)
    ours.load_state_dict(theirs.state_dict())
    assert int(ours.num_batches_tracked) == 6
    back = torch.nn.BatchNorm1d(5)
    back.load_state_dict(ours.state_dict())
    ours.eval()
    back.eval()
    x = next(_inputs(2, seed=3, dtype=torch.float32))
    torch.testing.assert_close(ours(x), back(x))


def test_running_statistics_by_hand():
    """momentum rho: mu <- (1 - rho) mu + rho mean, var with m / (m - 1)."""
    x = torch.tensor(
        [[1.0, 10.0], [3.0, 10.0], [8.0, 13.0]], dtype=torch.float64
    )
    bn = BatchNorm1d(2, momentum=0.25, dtype=torch.float64)
    bn(x)
    mean = x.mean(0)
    var_unbiased = ((x - mean) ** 2).sum(0) / 2
    torch.testing.assert_close(bn.running_mean, 0.25 * mean)
    torch.testing.assert_close(bn.running_var, 0.75 + 0.25 * var_unbiased)
    # the cumulative average (momentum None) after k batches is their mean
    cum = BatchNorm1d(2, momentum=None, dtype=torch.float64)
    batches = list(_inputs(2, steps=4))
    for b in batches:
        cum(b[:, :2].detach())
    torch.testing.assert_close(
        cum.running_mean,
        torch.stack([b[:, :2].mean(0) for b in batches]).mean(0),
    )


def test_training_output_is_standardized():
    x = next(_inputs(3))
    y = BatchNorm1d(5, eps=1e-12, dtype=torch.float64)(x)
    zeros, ones = torch.zeros(5, dtype=y.dtype), torch.ones(5, dtype=y.dtype)
    torch.testing.assert_close(y.mean(dim=(0, 2)), zeros, atol=1e-12, rtol=0)
    torch.testing.assert_close(y.var(dim=(0, 2), correction=0), ones)


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("affine", [True, False])
def test_closed_form_backward_equals_autograd(rank, affine):
    x = next(_inputs(rank)).detach().requires_grad_()
    weight = torch.linspace(0.5, 2.0, 5, dtype=torch.double).requires_grad_()
    bias = torch.zeros(5, dtype=torch.double, requires_grad=True)
    y = batch_norm(
        x,
        None,
        None,
        weight if affine else None,
        bias if affine else None,
        training=True,
    )
    g = torch.randn(
        y.shape, dtype=torch.double, generator=torch.Generator().manual_seed(2)
    )
    (y * g).sum().backward()
    gx, gw, gb = batch_norm_backward(
        g, x.detach(), weight.detach() if affine else None
    )
    torch.testing.assert_close(gx, x.grad)
    if affine:
        torch.testing.assert_close(gw, weight.grad)
        torch.testing.assert_close(gb, bias.grad)
    # the gradient w.r.t. x sums to zero over each feature's batch
    dims = [0] if rank == 2 else [0, 2]
    torch.testing.assert_close(
        gx.sum(dim=dims), torch.zeros(5, dtype=torch.double)
    )


def test_gradcheck_in_training_mode():
    x = torch.randn(6, 3, dtype=torch.double, requires_grad=True)
    w = torch.rand(3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w: batch_norm(x, None, None, w, None, training=True), (x, w)
    )


def test_bad_arguments():
    with pytest.raises(
        ValueError, match=r"BatchNorm1d: 'num_features' must be >= 1"
    ):
        BatchNorm1d(0)
    with pytest.raises(ValueError, match=r"BatchNorm1d: 'momentum' must be"):
        BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match=r"BatchNorm1d: 'eps' must be"):
        BatchNorm1d(3, eps=0.0)
    with pytest.raises(
        TypeError, match=r"BatchNorm1d: 'affine' must be a bool"
    ):
        BatchNorm1d(3, affine=1)
    with pytest.raises(
        ValueError, match=r"BatchNorm1d: input must have shape \(N, 3\)"
    ):
        BatchNorm1d(3)(torch.zeros(4, 2))
    with pytest.raises(
        ValueError, match=r"batch_norm: training needs more than 1"
    ):
        BatchNorm1d(3)(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"batch_norm: 'running_mean' and"):
        batch_norm(torch.zeros(4, 3), torch.zeros(3), None, training=True)
    with pytest.raises(
        ValueError, match=r"batch_norm_backward: 'grad_out' and"
    ):
        batch_norm_backward(torch.zeros(4, 3), torch.zeros(4, 2))
    # evaluation with running statistics accepts a single example
    bn = BatchNorm1d(3).eval()
    assert bn(torch.ones(1, 3)).shape == (1, 3)
