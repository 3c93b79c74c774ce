r"""Parameter tying and sharing: a penalty between two models, its closed form
for ridge regression, and convolution as a dense layer with tied entries.

Book: Part I, chapter 9, "Parameter tying and sharing".

*Tying* keeps two parameter vectors and penalizes their distance,

.. math::

    \Omega(w_A, w_B) = \lambda\,\lVert w_A - w_B\rVert_2^2 ;

*sharing* stores one vector and uses it in both places, the limit
:math:`\lambda \to \infty`. A convolution shares one kernel across all
positions: it is a locally connected layer (a kernel per position) whose
kernels are all equal, and a dense layer whose matrix is circulant (circular
padding) or Toeplitz (zero padding). Shapes follow ``torch.nn.Conv1d``:
``(B, C, L)`` for a batch of ``C``-channel signals of length ``L``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from dlcourse._validation import (
    _fail,
    check_choice,
    check_generator,
    check_in_range,
    check_int,
    check_type,
)
from dlcourse.regularization.underconstrained import ridge

__all__ = [
    "tying_penalty",
    "tied_ridge",
    "shared_ridge",
    "shift",
    "equivariance_gap",
    "conv1d_matrix",
    "LocallyConnected1d",
    "make_cnn1d",
    "conv1d_parameter_count",
    "locally_connected1d_parameter_count",
    "linear_parameter_count",
    "count_parameters",
]

MODES = ("circular", "zeros")


def _tensors(where, name, params) -> list[torch.Tensor]:
    if isinstance(params, torch.Tensor):
        params = [params]
    params = list(params)
    for i, p in enumerate(params):
        check_type(where, f"{name}[{i}]", p, torch.Tensor, "a torch.Tensor")
    return params


def tying_penalty(
    params_a: Iterable[torch.Tensor],
    params_b: Iterable[torch.Tensor],
    *,
    lam: float,
) -> torch.Tensor:
    r"""The tying penalty between corresponding tensors of two models.

    .. math::

        \Omega(w_A, w_B) = \lambda \sum_j \lVert w_{A,j} - w_{B,j}\rVert_2^2,
        \qquad \nabla_{w_A}\Omega = 2\lambda (w_A - w_B) = -\nabla_{w_B}\Omega.

    ``params_a[j]`` and ``params_b[j]`` must have the same shape. For two
    models it equals ``multitask.soft_sharing_penalty([params_a, params_b])``.
    """
    where = "tying_penalty"
    lam = check_in_range(where, "lam", lam, low=0.0)
    a = _tensors(where, "params_a", params_a)
    b = _tensors(where, "params_b", params_b)
    if len(a) != len(b):
        _fail(where, "params_b", f"{len(a)} tensors, as params_a", len(b))
    for j, (p, q) in enumerate(zip(a, b)):
        if p.shape != q.shape:
            _fail(
                where,
                f"params_b[{j}]",
                f"of shape {tuple(p.shape)}",
                tuple(q.shape),
            )
    if not a:
        return torch.zeros(())
    # lam * sum_j ||w_{A,j} - w_{B,j}||^2
    return lam * sum((p - q).pow(2).sum() for p, q in zip(a, b))


def _check_task(where, tag, x, y, p=None) -> None:
    check_type(where, f"x_{tag}", x, torch.Tensor, "a torch.Tensor")
    if not x.is_floating_point() or x.ndim != 2:
        _fail(
            where, f"x_{tag}", "a floating-point matrix (n, p)", tuple(x.shape)
        )
    if p is not None and x.shape[1] != p:
        _fail(
            where, f"x_{tag}", f"a matrix with p = {p} columns", tuple(x.shape)
        )
    check_type(where, f"y_{tag}", y, torch.Tensor, "a torch.Tensor")
    if y.shape != (x.shape[0],):
        _fail(where, f"y_{tag}", f"of shape ({x.shape[0]},)", tuple(y.shape))


def _check_tasks(where, x_a, y_a, x_b, y_b) -> None:
    _check_task(where, "a", x_a, y_a)
    _check_task(where, "b", x_b, y_b, x_a.shape[1])


def tied_ridge(
    x_a: torch.Tensor,
    y_a: torch.Tensor,
    x_b: torch.Tensor,
    y_b: torch.Tensor,
    *,
    alpha: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Two ridge regressions tied by :func:`tying_penalty`, in closed form.

    Minimizes

    .. math::

        J = \lVert X_A w_A - y_A\rVert^2 + \lVert X_B w_B - y_B\rVert^2
        + \alpha\bigl(\lVert w_A\rVert^2 + \lVert w_B\rVert^2\bigr)
        + \lambda \lVert w_A - w_B\rVert^2 .

    Setting :math:`\nabla J = 0` gives one linear system of size :math:`2p`,

    .. math::

        \begin{pmatrix}
        X_A^\top X_A + (\alpha+\lambda) I & -\lambda I \\
        -\lambda I & X_B^\top X_B + (\alpha+\lambda) I
        \end{pmatrix}
        \begin{pmatrix} w_A \\ w_B \end{pmatrix}
        = \begin{pmatrix} X_A^\top y_A \\ X_B^\top y_B \end{pmatrix},

    positive definite for :math:`\alpha > 0`. ``lam = 0`` gives two separate
    ridge fits; as :math:`\lambda\to\infty` both tend to :func:`shared_ridge`.
    Returns ``(w_a, w_b)``.
    """
    where = "tied_ridge"
    _check_tasks(where, x_a, y_a, x_b, y_b)
    alpha = check_in_range(where, "alpha", alpha, low=0.0, low_inclusive=False)
    lam = check_in_range(where, "lam", lam, low=0.0)
    p = x_a.shape[1]
    eye = torch.eye(p, dtype=x_a.dtype)
    # the Hessian of J / 2, (2p, 2p)
    h = torch.block_diag(x_a.T @ x_a, x_b.T @ x_b) + (alpha + lam) * torch.eye(
        2 * p, dtype=x_a.dtype
    )
    h[:p, p:] = h[p:, :p] = -lam * eye
    rhs = torch.cat([x_a.T @ y_a.to(x_a.dtype), x_b.T @ y_b.to(x_a.dtype)])
    w = torch.linalg.solve(h, rhs)
    return w[:p], w[p:]


def shared_ridge(
    x_a: torch.Tensor,
    y_a: torch.Tensor,
    x_b: torch.Tensor,
    y_b: torch.Tensor,
    *,
    alpha: float,
) -> torch.Tensor:
    r"""Hard sharing: one vector :math:`w = w_A = w_B` for both tasks.

    .. math::

        w = \bigl(X_A^\top X_A + X_B^\top X_B + 2\alpha I\bigr)^{-1}
        \bigl(X_A^\top y_A + X_B^\top y_B\bigr),

    the minimizer of :func:`tied_ridge`'s objective under the constraint
    :math:`w_A = w_B` (the penalty :math:`\alpha` counts twice, once for
    each copy), i.e. ridge on the pooled data with :math:`2\alpha`.
    """
    where = "shared_ridge"
    _check_tasks(where, x_a, y_a, x_b, y_b)
    alpha = check_in_range(where, "alpha", alpha, low=0.0, low_inclusive=False)
    return ridge(torch.cat([x_a, x_b]), torch.cat([y_a, y_b]), alpha=2 * alpha)


def shift(x: torch.Tensor, s: int, *, mode: str = "circular") -> torch.Tensor:
    r"""Translate ``x`` by ``s`` positions along its last dimension.

    .. math::

        (S_s x)_i = x_{i-s} \quad
        \begin{cases}
        \text{indices mod } L & \text{(circular)}\\
        x_{i-s} = 0 \text{ outside } 0..L-1 & \text{(zeros)}
        \end{cases}

    ``s > 0`` moves the signal right. Circular: ``torch.roll(x, s, -1)``.
    """
    check_type("shift", "x", x, torch.Tensor, "a torch.Tensor")
    check_int("shift", "s", s)
    check_choice("shift", "mode", mode, MODES)
    if mode == "circular":
        return torch.roll(x, s, dims=-1)
    out = torch.zeros_like(x)
    n = x.shape[-1]
    if abs(s) < n:
        if s >= 0:
            out[..., s:] = x[..., : n - s]
        else:
            out[..., : n + s] = x[..., -s:]
    return out


def equivariance_gap(
    f: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    s: int,
    *,
    mode: str = "circular",
) -> torch.Tensor:
    r""":math:`f(S_s x) - S_s f(x)`: zero everywhere iff ``f`` commutes with
    the shift by ``s``, i.e. is translation equivariant for it.

    ``f`` must keep the length of the last dimension (a stride-1 layer with
    "same" padding), so that the same shift applies to input and output.
    """
    where = "equivariance_gap"
    if not callable(f):
        raise TypeError(f"{where}: 'f' must be a callable; got {type(f)}.")
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    check_int(where, "s", s)
    check_choice(where, "mode", mode, MODES)
    fx = f(x)
    if fx.shape[-1] != x.shape[-1]:
        _fail(
            where,
            "f",
            f"length-preserving (L = {x.shape[-1]})",
            tuple(fx.shape),
        )
    return f(shift(x, s, mode=mode)) - shift(fx, s, mode=mode)


def conv1d_matrix(
    weight: torch.Tensor, length: int, *, padding_mode: str = "circular"
) -> torch.Tensor:
    r"""The matrix :math:`M` of a stride-1 "same" convolution on length ``L``.

    For ``weight`` of shape ``(C_out, C_in, k)``, odd ``k``, :math:`p=(k-1)/2`:

    .. math::

        M_{(o,l),(c,i)} = \sum_{j=0}^{k-1} w_{o,c,j}\,[\,i = l + j - p\,],

    with :math:`i` taken mod :math:`L` (circular: :math:`M` is block
    circulant) or dropped outside :math:`0..L-1` (zeros: block Toeplitz).
    Then ``F.conv1d(pad(x), weight).flatten(1) == x.flatten(1) @ M.T``:
    like PyTorch, this is a cross-correlation (the kernel is not flipped).
    Shape ``(C_out * L, C_in * L)``, rows and columns channel-major.
    """
    where = "conv1d_matrix"
    check_type(where, "weight", weight, torch.Tensor, "a torch.Tensor")
    if weight.ndim != 3 or weight.shape[-1] % 2 == 0:
        _fail(
            where,
            "weight",
            "of shape (C_out, C_in, odd k)",
            tuple(weight.shape),
        )
    n = check_int(where, "length", length, low=1)
    check_choice(where, "padding_mode", padding_mode, MODES)
    c_out, c_in, k = weight.shape
    m = weight.new_zeros(c_out, n, c_in, n)
    rows = torch.arange(n)
    for j in range(k):
        cols = rows + j - k // 2  # i = l + j - p
        if padding_mode == "circular":
            keep = torch.ones(n, dtype=torch.bool)
            cols = cols % n
        else:
            keep = (cols >= 0) & (cols < n)
        # (n_kept, C_out, C_in) += w_{:, :, j}
        m[:, rows[keep], :, cols[keep]] += weight[:, :, j]
    return m.reshape(c_out * n, c_in * n)


class LocallyConnected1d(nn.Module):
    r"""A convolution without sharing: one kernel for every output position.

    .. math::

        h_{o,l} = b_{o,l} + \sum_{c}\sum_{j=0}^{k-1}
        W_{l,o,c,j}\; x_{c,\,(l+j-p) \bmod L},

    circular padding, stride 1, odd ``kernel_size``. ``weight`` has shape
    ``(L, C_out, C_in, k)`` and ``bias`` ``(C_out, L)``; with every
    ``weight[l]`` equal to a ``Conv1d`` kernel (and a bias constant over
    ``l``) it computes that convolution. Initialized like ``nn.Conv1d``,
    :math:`U(-1/\sqrt{C_\text{in} k}, 1/\sqrt{C_\text{in} k})`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        length: int,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        where = type(self).__name__
        for name, v in (("in_channels", in_channels), ("length", length)):
            check_int(where, name, v, low=1)
        check_int(where, "out_channels", out_channels, low=1)
        check_int(where, "kernel_size", kernel_size, low=1)
        if kernel_size % 2 == 0:
            _fail(where, "kernel_size", "odd", kernel_size)
        check_generator(where, generator)
        shape = (length, out_channels, in_channels, kernel_size)
        bound = 1.0 / math.sqrt(in_channels * kernel_size)
        self.weight = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(out_channels, length))
        with torch.no_grad():
            self.weight.uniform_(-bound, bound, generator=generator)
            self.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c_out, c_in, k = self.weight.shape
        if x.ndim != 3 or x.shape[1:] != (c_in, n):
            _fail(
                type(self).__name__,
                "x",
                f"of shape (B, {c_in}, {n})",
                tuple(x.shape),
            )
        p = k // 2
        xt = x.permute(2, 0, 1)  # (L, B, C_in)
        # window of position l, tap j: x at (l + j - p) mod L, a roll by p - j
        u = torch.cat([torch.roll(xt, p - j, dims=0) for j in range(k)], -1)
        w = self.weight.transpose(2, 3).flatten(2)  # (L, C_out, k C_in)
        # (L, B, k C_in) @ (L, k C_in, C_out) -> (L, B, C_out)
        out = torch.bmm(u, w.transpose(1, 2))
        return out.permute(1, 2, 0) + self.bias

    def extra_repr(self) -> str:
        n, c_out, c_in, k = self.weight.shape
        return f"{c_in}, {c_out}, kernel_size={k}, length={n}"


def make_cnn1d(
    channels: Sequence[int],
    *,
    kernel_size: int = 5,
    length: int = 40,
    n_classes: int = 10,
    locally_connected: bool = False,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    r"""A small 1-D CNN for inputs of shape ``(B, length)`` (e.g. mnist1d).

    ``Conv1d -> ReLU`` for each width in ``channels`` (stride 1, circular
    "same" padding), a global max over positions, then a linear layer to
    ``n_classes`` logits. Every layer commutes with circular shifts and the
    maximum ignores them, so the logits are invariant to ``torch.roll`` of
    the input. ``locally_connected=True`` puts :class:`LocallyConnected1d`
    in place of each convolution: the same receptive fields, no sharing.
    Weights and biases are drawn from ``generator`` as PyTorch draws them.
    """
    where = "make_cnn1d"
    check_type(where, "channels", channels, (list, tuple), "a list of ints")
    if not channels:
        _fail(where, "channels", "a non-empty list of ints", channels)
    for i, c in enumerate(channels):
        check_int(where, f"channels[{i}]", c, low=1)
    check_int(where, "kernel_size", kernel_size, low=1)
    if kernel_size % 2 == 0:
        _fail(where, "kernel_size", "odd", kernel_size)
    check_int(where, "length", length, low=1)
    check_int(where, "n_classes", n_classes, low=1)
    check_type(where, "locally_connected", locally_connected, bool, "a bool")
    check_generator(where, generator)
    layers: list[nn.Module] = [nn.Unflatten(1, (1, length))]  # (B, 1, L)
    for c_in, c_out in zip([1, *channels[:-1]], channels):
        if locally_connected:
            layer = LocallyConnected1d(
                c_in, c_out, kernel_size, length, generator=generator
            )
        else:
            layer = nn.Conv1d(
                c_in,
                c_out,
                kernel_size,
                padding=kernel_size // 2,
                padding_mode="circular",
            )
            _uniform_(layer, c_in * kernel_size, generator)
        layers += [layer, nn.ReLU()]  # (B, C_out, L)
    head = nn.Linear(channels[-1], n_classes)
    _uniform_(head, channels[-1], generator)
    # max over positions: (B, C, L) -> (B, C)
    layers += [nn.AdaptiveMaxPool1d(1), nn.Flatten(), head]
    return nn.Sequential(*layers)


def _uniform_(layer: nn.Module, fan_in: int, generator) -> None:
    # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from `generator`
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)


def _counts(where, **sizes) -> None:
    for name, v in sizes.items():
        check_int(where, name, v, low=1)


def conv1d_parameter_count(
    in_channels: int, out_channels: int, kernel_size: int, *, bias=True
) -> int:
    r""":math:`C_\text{out} C_\text{in} k + C_\text{out}`: no dependence on
    the length of the signal."""
    where = "conv1d_parameter_count"
    _counts(where, in_channels=in_channels, out_channels=out_channels)
    _counts(where, kernel_size=kernel_size)
    check_type(where, "bias", bias, bool, "a bool")
    return out_channels * in_channels * kernel_size + out_channels * bias


def locally_connected1d_parameter_count(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    length: int,
    *,
    bias=True,
) -> int:
    r""":math:`L\,(C_\text{out} C_\text{in} k + C_\text{out})`: a kernel and
    a bias per position, :math:`L` times a convolution's count."""
    where = "locally_connected1d_parameter_count"
    _counts(where, in_channels=in_channels, out_channels=out_channels)
    _counts(where, kernel_size=kernel_size, length=length)
    check_type(where, "bias", bias, bool, "a bool")
    per_position = (
        out_channels * in_channels * kernel_size + out_channels * bias
    )
    return length * per_position


def linear_parameter_count(
    in_features: int, out_features: int, *, bias=True
) -> int:
    r""":math:`n_\text{in} n_\text{out} + n_\text{out}`. A dense layer from
    ``(C_in, L)`` to ``(C_out, L)`` has :math:`C_\text{in} C_\text{out} L^2 +
    C_\text{out} L`."""
    where = "linear_parameter_count"
    _counts(where, in_features=in_features, out_features=out_features)
    check_type(where, "bias", bias, bool, "a bool")
    return in_features * out_features + out_features * bias


def count_parameters(model: nn.Module) -> int:
    """The number of trainable numbers: ``sum(p.numel())`` over
    ``model.parameters()``, which lists a tensor used in several places (a
    shared parameter) once."""
    check_type(
        "count_parameters", "model", model, nn.Module, "a torch.nn.Module"
    )
    return sum(p.numel() for p in model.parameters())
