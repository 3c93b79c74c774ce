"""dlcourse.regularization.sharing against PyTorch and exact math."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlcourse.regularization.multitask import soft_sharing_penalty
from dlcourse.regularization.sharing import (
    LocallyConnected1d,
    conv1d_matrix,
    conv1d_parameter_count,
    count_parameters,
    equivariance_gap,
    linear_parameter_count,
    locally_connected1d_parameter_count,
    make_cnn1d,
    shared_ridge,
    shift,
    tied_ridge,
    tying_penalty,
)

D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _tasks(n_a=7, n_b=9, p=5, seed=0):
    g = _gen(seed)
    x_a, x_b = (torch.randn(n, p, generator=g, dtype=D) for n in (n_a, n_b))
    y_a, y_b = (
        torch.randn(n_a, generator=g, dtype=D),
        torch.randn(n_b, generator=g, dtype=D),
    )
    return x_a, y_a, x_b, y_b


def _objective(w_a, w_b, x_a, y_a, x_b, y_b, alpha, lam):
    fit = (x_a @ w_a - y_a).pow(2).sum() + (x_b @ w_b - y_b).pow(2).sum()
    ridge = alpha * (w_a.pow(2).sum() + w_b.pow(2).sum())
    return fit + ridge + tying_penalty([w_a], [w_b], lam=lam)


# ------------------------------------------------------------------- tying


def test_tying_penalty_value_and_gradient():
    a = [torch.tensor([1.0, 2.0]), torch.tensor([[0.5]])]
    b = [torch.tensor([0.0, 4.0]), torch.tensor([[-0.5]])]
    assert tying_penalty(a, b, lam=0.3).item() == pytest.approx(0.3 * 6.0)
    w_a = torch.randn(4, generator=_gen(1), requires_grad=True)
    w_b = torch.randn(4, generator=_gen(2), requires_grad=True)
    g_a, g_b = torch.autograd.grad(tying_penalty(w_a, w_b, lam=0.7), [w_a, w_b])
    torch.testing.assert_close(g_a, 2 * 0.7 * (w_a - w_b).detach())
    torch.testing.assert_close(g_b, -g_a)
    assert tying_penalty([], [], lam=1.0).item() == 0.0


def test_tying_penalty_is_soft_sharing_of_two_nets():
    g = _gen(3)
    a = [torch.randn(3, 4, generator=g), torch.randn(4, generator=g)]
    b = [torch.randn(3, 4, generator=g), torch.randn(4, generator=g)]
    torch.testing.assert_close(
        tying_penalty(a, b, lam=0.2), soft_sharing_penalty([a, b], lam=0.2)
    )


def test_tied_ridge_zeroes_the_gradient_of_its_objective():
    data = _tasks()
    w_a, w_b = tied_ridge(*data, alpha=0.3, lam=2.0)
    w_a.requires_grad_(), w_b.requires_grad_()
    grads = torch.autograd.grad(
        _objective(w_a, w_b, *data, 0.3, 2.0), [w_a, w_b]
    )
    for g in grads:
        assert g.abs().max() < 1e-10


def test_tied_ridge_at_zero_is_two_separate_ridge_fits():
    x_a, y_a, x_b, y_b = _tasks()
    w_a, w_b = tied_ridge(x_a, y_a, x_b, y_b, alpha=0.5, lam=0.0)
    eye = 0.5 * torch.eye(5, dtype=D)
    torch.testing.assert_close(
        w_a, torch.linalg.solve(x_a.T @ x_a + eye, x_a.T @ y_a)
    )
    torch.testing.assert_close(
        w_b, torch.linalg.solve(x_b.T @ x_b + eye, x_b.T @ y_b)
    )


def test_tied_ridge_tends_to_shared_ridge_like_one_over_lambda():
    data = _tasks(n_a=4, n_b=6, p=8)  # n < p for each task
    shared = shared_ridge(*data, alpha=0.2)
    gaps = []
    for lam in (1e3, 1e4, 1e5):
        w_a, w_b = tied_ridge(*data, alpha=0.2, lam=lam)
        gaps.append((w_a - w_b).norm().item())
        assert (0.5 * (w_a + w_b) - shared).norm() < 10 / lam
    assert gaps[0] / gaps[1] == pytest.approx(10, rel=1e-2)
    assert gaps[1] / gaps[2] == pytest.approx(10, rel=1e-3)


def test_shared_ridge_minimizes_the_constrained_objective():
    data = _tasks()
    w = shared_ridge(*data, alpha=0.4).requires_grad_()
    (g,) = torch.autograd.grad(_objective(w, w, *data, 0.4, 5.0), w)
    assert g.abs().max() < 1e-10  # the tie is zero and its gradient too


def test_a_shared_parameter_is_counted_once_and_gets_the_summed_gradient():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.weight = a.weight  # hard sharing: one tensor, two uses
    model = nn.ModuleList([a, b])
    assert count_parameters(model) == 6 + 2 + 2
    x = torch.randn(5, 3, generator=_gen(4))
    (a(x).sum() + b(x).sum()).backward()
    torch.testing.assert_close(a.weight.grad, 2 * x.sum(0).expand(2, 3))


# ------------------------------------------------------- shifts, equivariance


def test_shift_circular_is_roll_and_zeros_fills():
    x = torch.arange(1.0, 6.0)
    torch.testing.assert_close(shift(x, 2), torch.roll(x, 2))
    torch.testing.assert_close(
        shift(x, 2, mode="zeros"), torch.tensor([0, 0, 1, 2, 3.0])
    )
    torch.testing.assert_close(
        shift(x, -1, mode="zeros"), torch.tensor([2, 3, 4, 5, 0.0])
    )
    assert (shift(x, 7, mode="zeros") == 0).all()
    torch.testing.assert_close(shift(x, 0, mode="zeros"), x)


@pytest.mark.parametrize("s", [1, 3, -2, 12])  # 12 = 1 + L
def test_circular_conv_is_exactly_equivariant_a_dense_layer_is_not(s):
    g = _gen(5)
    torch.manual_seed(0)
    conv = nn.Conv1d(2, 3, 5, padding=2, padding_mode="circular").double()
    x = torch.randn(4, 2, 11, generator=g, dtype=D)
    assert equivariance_gap(conv, x, s).abs().max() < 1e-13
    dense = nn.Linear(22, 33).double()

    def f(t):
        return dense(t.flatten(1)).view(4, 3, 11)

    assert equivariance_gap(f, x, s).abs().max() > 0.1


def test_zero_padded_conv_differs_only_near_the_edges():
    g = _gen(6)
    w = torch.randn(3, 2, 5, generator=g, dtype=D)
    x = torch.randn(4, 2, 11, generator=g, dtype=D)

    def conv(t):
        return F.conv1d(F.pad(t, (2, 2)), w)

    s, p, n = 3, 2, 11
    gap = equivariance_gap(conv, x, s, mode="zeros").abs().amax(dim=(0, 1))
    differs = set(torch.nonzero(gap > 1e-12).flatten().tolist())
    assert differs == set(range(s - p, s)) | set(range(n - p, n))


# ----------------------------------------------------- convolution as matrix


@pytest.mark.parametrize("mode", ["circular", "zeros"])
@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 2, 5), (2, 4, 1)])
def test_conv1d_matrix_equals_f_conv1d(mode, shape):
    g = _gen(7)
    w = torch.randn(*shape, generator=g, dtype=D)
    x = torch.randn(6, shape[1], 9, generator=g, dtype=D)
    p = shape[-1] // 2
    padded = F.pad(
        x, (p, p), mode="circular" if mode == "circular" else "constant"
    )
    expected = F.conv1d(padded, w).flatten(1)
    m = conv1d_matrix(w, 9, padding_mode=mode)
    assert m.shape == (shape[0] * 9, shape[1] * 9)
    torch.testing.assert_close(x.flatten(1) @ m.T, expected)


def test_circular_conv1d_matrix_is_circulant_with_k_distinct_entries():
    w = torch.tensor([[[1.0, 2.0, 3.0]]])
    m = conv1d_matrix(w, 6)
    for r in range(6):  # each row is the previous one rolled right
        torch.testing.assert_close(m[r], torch.roll(m[0], r))
    assert set(m.flatten().tolist()) == {0.0, 1.0, 2.0, 3.0}
    z = conv1d_matrix(w, 6, padding_mode="zeros")
    assert z[0, -1] == 0 and m[0, -1] == 1.0  # no wrap-around with zeros


# --------------------------------------------------- locally connected, CNN


def test_locally_connected_with_equal_kernels_is_the_convolution():
    conv = nn.Conv1d(2, 3, 5, padding=2, padding_mode="circular").double()
    lc = LocallyConnected1d(2, 3, 5, 11).double()
    with torch.no_grad():
        lc.weight.copy_(conv.weight.expand(11, -1, -1, -1))
        lc.bias.copy_(conv.bias[:, None].expand(-1, 11))
    x = torch.randn(4, 2, 11, generator=_gen(8), dtype=D)
    torch.testing.assert_close(lc(x), conv(x))


def test_locally_connected_matches_its_formula_and_is_not_equivariant():
    lc = LocallyConnected1d(2, 3, 3, 7, generator=_gen(9)).double()
    x = torch.randn(2, 2, 7, generator=_gen(10), dtype=D)
    w, b = lc.weight.detach(), lc.bias.detach()
    out = torch.empty(2, 3, 7, dtype=D)
    for lpos in range(7):
        idx = [(lpos + j - 1) % 7 for j in range(3)]
        out[:, :, lpos] = torch.einsum("bcj,ocj->bo", x[:, :, idx], w[lpos])
    torch.testing.assert_close(lc(x), out + b)
    assert equivariance_gap(lc, x, 1).abs().max() > 1e-3


def test_make_cnn1d_is_invariant_to_circular_shifts():
    model = make_cnn1d([6, 4], length=20, n_classes=3, generator=_gen(11))
    model = model.double()
    x = torch.randn(5, 20, generator=_gen(12), dtype=D)
    for s in (1, 7, -3):
        torch.testing.assert_close(model(torch.roll(x, s, -1)), model(x))
    lc = make_cnn1d(
        [6, 4],
        length=20,
        n_classes=3,
        locally_connected=True,
        generator=_gen(11),
    ).double()
    assert (lc(torch.roll(x, 1, -1)) - lc(x)).abs().max() > 1e-4


def test_make_cnn1d_is_reproducible_and_initialized_like_pytorch():
    a = make_cnn1d([8], generator=_gen(13))
    b = make_cnn1d([8], generator=_gen(13))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    conv = a[1]
    assert conv.weight.abs().max() <= 1 / math.sqrt(5)
    assert conv.padding_mode == "circular" and conv.padding == (2,)


@pytest.mark.parametrize("bias", [True, False])
def test_parameter_counts_match_numel(bias):
    for c_in, c_out, k, n in [(1, 8, 5, 40), (3, 2, 1, 7), (4, 6, 3, 12)]:
        conv = nn.Conv1d(c_in, c_out, k, bias=bias)
        assert conv1d_parameter_count(
            c_in, c_out, k, bias=bias
        ) == count_parameters(conv)
        dense = nn.Linear(c_in * n, c_out * n, bias=bias)
        assert linear_parameter_count(
            c_in * n, c_out * n, bias=bias
        ) == count_parameters(dense)
    lc = LocallyConnected1d(4, 6, 3, 12)
    assert locally_connected1d_parameter_count(4, 6, 3, 12) == count_parameters(
        lc
    )
    assert locally_connected1d_parameter_count(
        4, 6, 3, 12, bias=False
    ) == 12 * conv1d_parameter_count(4, 6, 3, bias=False)


def test_cnn_parameter_count_formula():
    for lc in (False, True):
        model = make_cnn1d([12, 12], locally_connected=lc)
        layer = (
            (lambda a, b: locally_connected1d_parameter_count(a, b, 5, 40))
            if lc
            else (lambda a, b: conv1d_parameter_count(a, b, 5))
        )
        expected = layer(1, 12) + layer(12, 12) + linear_parameter_count(12, 10)
        assert count_parameters(model) == expected


# --------------------------------------------------------- argument checks


def test_bad_arguments_are_rejected_with_clear_messages():
    x_a, y_a, x_b, y_b = _tasks()
    with pytest.raises(ValueError, match=r"tying_penalty: 'lam' must be >= 0"):
        tying_penalty([x_a], [x_a], lam=-1.0)
    with pytest.raises(ValueError, match=r"'params_b' must be 1 tensors"):
        tying_penalty([x_a], [x_a, x_a], lam=1.0)
    with pytest.raises(ValueError, match=r"'params_b\[0\]' must be of shape"):
        tying_penalty([x_a], [x_b], lam=1.0)
    with pytest.raises(TypeError, match=r"'params_a\[0\]' must be a torch"):
        tying_penalty([1.0], [x_a], lam=1.0)
    with pytest.raises(ValueError, match=r"tied_ridge: 'alpha' must be > 0"):
        tied_ridge(x_a, y_a, x_b, y_b, alpha=0.0, lam=1.0)
    with pytest.raises(ValueError, match=r"tied_ridge: 'lam' must be finite"):
        tied_ridge(x_a, y_a, x_b, y_b, alpha=1.0, lam=math.inf)
    with pytest.raises(ValueError, match=r"'x_b' must be a matrix with p = 5"):
        tied_ridge(x_a, y_a, x_b[:, :3], y_b, alpha=1.0, lam=1.0)
    with pytest.raises(ValueError, match=r"'y_a' must be of shape \(7,\)"):
        shared_ridge(x_a, y_b, x_b, y_b, alpha=1.0)
    with pytest.raises(ValueError, match=r"'x_a' must be a floating-point"):
        shared_ridge(x_a[0], y_a, x_b, y_b, alpha=1.0)
    with pytest.raises(ValueError, match=r"shift: 'mode' must be one of"):
        shift(x_a, 1, mode="reflect")
    with pytest.raises(TypeError, match=r"shift: 's' must be an int"):
        shift(x_a, 1.5)
    with pytest.raises(TypeError, match=r"equivariance_gap: 'f' must be a"):
        equivariance_gap("conv", x_a, 1)
    with pytest.raises(ValueError, match=r"'f' must be length-preserving"):
        equivariance_gap(lambda t: t[..., 1:], x_a, 1)
    with pytest.raises(ValueError, match=r"'weight' must be of shape"):
        conv1d_matrix(torch.ones(2, 2, 4), 8)
    with pytest.raises(ValueError, match=r"'length' must be >= 1"):
        conv1d_matrix(torch.ones(2, 2, 3), 0)
    with pytest.raises(ValueError, match=r"'padding_mode' must be one of"):
        conv1d_matrix(torch.ones(2, 2, 3), 8, padding_mode="same")


def test_bad_layer_arguments_are_rejected():
    with pytest.raises(ValueError, match=r"LocallyConnected1d: 'kernel_size'"):
        LocallyConnected1d(1, 2, 4, 10)
    with pytest.raises(ValueError, match=r"'in_channels' must be >= 1"):
        LocallyConnected1d(0, 2, 3, 10)
    with pytest.raises(TypeError, match=r"'generator' must be a torch"):
        LocallyConnected1d(1, 2, 3, 10, generator=0)
    with pytest.raises(ValueError, match=r"'x' must be of shape \(B, 1, 10\)"):
        LocallyConnected1d(1, 2, 3, 10)(torch.ones(2, 1, 9))
    with pytest.raises(ValueError, match=r"make_cnn1d: 'channels' must be"):
        make_cnn1d([])
    with pytest.raises(TypeError, match=r"make_cnn1d: 'channels' must be"):
        make_cnn1d(8)
    with pytest.raises(ValueError, match=r"make_cnn1d: 'kernel_size' must be"):
        make_cnn1d([8], kernel_size=4)
    with pytest.raises(TypeError, match=r"'locally_connected' must be a bool"):
        make_cnn1d([8], locally_connected=1)
    with pytest.raises(ValueError, match=r"'kernel_size' must be >= 1"):
        conv1d_parameter_count(1, 2, 0)
    with pytest.raises(TypeError, match=r"'bias' must be a bool"):
        linear_parameter_count(3, 2, bias=1)
    with pytest.raises(ValueError, match=r"'length' must be >= 1"):
        locally_connected1d_parameter_count(1, 2, 3, 0)
    with pytest.raises(TypeError, match=r"count_parameters: 'model' must be"):
        count_parameters([torch.ones(2)])


def test_more_bad_arguments_are_rejected():
    with pytest.raises(TypeError, match=r"shift: 'x' must be a torch"):
        shift([1.0, 2.0], 1)
    with pytest.raises(ValueError, match=r"make_cnn1d: 'n_classes' must be"):
        make_cnn1d([8], n_classes=0)
    with pytest.raises(ValueError, match=r"shared_ridge: 'alpha' must be > 0"):
        shared_ridge(*_tasks(), alpha=-1.0)
    with pytest.raises(ValueError, match=r"equivariance_gap: 'mode' must be"):
        equivariance_gap(lambda t: t, torch.ones(3), 1, mode="reflect")
