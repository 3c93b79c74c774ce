r"""Batch normalization from scratch, a twin of ``torch.nn.BatchNorm1d``.

Book: Part II, chapter 7, "Optimization strategies and meta-algorithms".

``batch_norm`` is the computation (training: the minibatch's statistics;
evaluation: the running ones), ``batch_norm_backward`` its gradient in
closed form (checked against autograd), and ``BatchNorm1d`` the module with
the same arguments, parameters, buffers, ``state_dict`` and outputs as
``torch.nn.BatchNorm1d`` (the tests compare them in train and eval mode for
every option).
"""

from __future__ import annotations

import torch
from torch import nn

from dlcourse._validation import check_in_range, check_int, check_type

__all__ = ["batch_norm", "batch_norm_backward", "BatchNorm1d"]


def _reduce_dims(x: torch.Tensor) -> list[int]:
    # (N, C): over the batch; (N, C, L): over the batch and the length
    return [0] if x.dim() == 2 else [0, 2]


def _shape(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v[None, :] if x.dim() == 2 else v[None, :, None]


def batch_norm(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    r"""Normalize each feature (channel) of ``x``, shape (N, C) or (N, C, L).

    With the statistics over the :math:`m` values of a feature in the batch
    (over N, or over N and L),

    .. math::

        \mu_B = \tfrac1m \textstyle\sum_i x_i, \qquad
        \sigma_B^2 = \tfrac1m \textstyle\sum_i (x_i - \mu_B)^2, \qquad
        y_i = \gamma\, \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}
              + \beta .

    ``training=True`` (or no running statistics) uses :math:`\mu_B,
    \sigma_B^2` and, if running statistics are given, updates them in place:
    :math:`\hat\mu \leftarrow (1-\rho)\hat\mu + \rho\mu_B`,
    :math:`\hat\sigma^2 \leftarrow (1-\rho)\hat\sigma^2 + \rho\,
    \frac{m}{m-1}\sigma_B^2` with :math:`\rho` = ``momentum`` (the running
    variance is the *unbiased* estimate, the normalization uses the biased
    one, as in PyTorch). ``training=False`` uses the running statistics.
    ``weight`` :math:`\gamma` and ``bias`` :math:`\beta` may be ``None``.
    """
    where = "batch_norm"
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    if x.dim() not in (2, 3):
        raise ValueError(
            f"{where}: 'x' must have shape (N, C) or (N, C, L); "
            f"got {tuple(x.shape)}."
        )
    check_type(where, "training", training, bool, "a bool")
    check_in_range(where, "momentum", momentum, low=0.0, high=1.0)
    check_in_range(where, "eps", eps, low=0.0, low_inclusive=False)
    if (running_mean is None) != (running_var is None):
        raise ValueError(
            f"{where}: 'running_mean' and 'running_var' must both be tensors "
            "or both be None."
        )
    dims = _reduce_dims(x)
    use_batch = training or running_mean is None
    if use_batch:
        m = x.numel() // x.shape[1]
        if m < 2 and training:
            raise ValueError(
                f"{where}: training needs more than 1 value per feature; "
                f"got input of shape {tuple(x.shape)}."
            )
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, correction=0)
        if training and running_mean is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
                unbiased = var * (m / (m - 1))
                running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
    else:
        mean, var = running_mean, running_var
    y = (x - _shape(mean, x)) * _shape(torch.rsqrt(var + eps), x)
    if weight is not None:
        y = y * _shape(weight, x)
    if bias is not None:
        y = y + _shape(bias, x)
    return y


def batch_norm_backward(
    grad_out: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Gradients of training-mode batch norm, in closed form.

    With :math:`\hat x = (x-\mu_B)/\sqrt{\sigma_B^2+\epsilon}` and the upstream
    gradient :math:`g = \partial L/\partial y`, over the :math:`m` values of
    each feature:

    .. math::

        \frac{\partial L}{\partial \beta} = \textstyle\sum_i g_i, \qquad
        \frac{\partial L}{\partial \gamma} = \textstyle\sum_i g_i \hat x_i,
        \qquad
        \frac{\partial L}{\partial x_i} = \frac{\gamma}
            {\sqrt{\sigma_B^2+\epsilon}}
            \Big(g_i - \tfrac1m\textstyle\sum_j g_j
                 - \hat x_i\, \tfrac1m\textstyle\sum_j g_j \hat x_j\Big).

    The two subtracted means are the paths through :math:`\mu_B` and
    :math:`\sigma_B^2`: the gradient w.r.t. :math:`x` sums to zero over the
    batch and is orthogonal to :math:`\hat x`. Returns
    ``(grad_x, grad_weight, grad_bias)``.
    """
    where = "batch_norm_backward"
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    check_type(where, "grad_out", grad_out, torch.Tensor, "a torch.Tensor")
    if grad_out.shape != x.shape or x.dim() not in (2, 3):
        raise ValueError(
            f"{where}: 'grad_out' and 'x' must have the same shape, (N, C) or "
            f"(N, C, L); got {tuple(grad_out.shape)} and {tuple(x.shape)}."
        )
    dims = _reduce_dims(x)
    mean = x.mean(dim=dims)
    inv_std = torch.rsqrt(x.var(dim=dims, correction=0) + eps)
    x_hat = (x - _shape(mean, x)) * _shape(inv_std, x)
    grad_bias = grad_out.sum(dim=dims)
    grad_weight = (grad_out * x_hat).sum(dim=dims)
    gamma = torch.ones_like(mean) if weight is None else weight
    g_mean = grad_out.mean(dim=dims)
    gx_mean = (grad_out * x_hat).mean(dim=dims)
    grad_x = _shape(gamma * inv_std, x) * (
        grad_out - _shape(g_mean, x) - x_hat * _shape(gx_mean, x)
    )
    return grad_x, grad_weight, grad_bias


class BatchNorm1d(nn.Module):
    """``torch.nn.BatchNorm1d`` rebuilt on :func:`batch_norm`.

    Same arguments and defaults, parameters ``weight`` (ones) and ``bias``
    (zeros, unless ``bias=False``) if ``affine``, buffers ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` if ``track_running_stats``,
    and the same ``state_dict``. ``momentum=None`` uses the cumulative average
    (:math:`\\rho = 1/\\text{batches seen}`), as torch does.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ):
        super().__init__()
        where = "BatchNorm1d"
        check_int(where, "num_features", num_features, low=1)
        check_in_range(where, "eps", eps, low=0.0, low_inclusive=False)
        if momentum is not None:
            check_in_range(where, "momentum", momentum, low=0.0, high=1.0)
        check_type(where, "affine", affine, bool, "a bool")
        check_type(where, "bias", bias, bool, "a bool")
        check_type(
            where,
            "track_running_stats",
            track_running_stats,
            bool,
            "a bool",
        )
        factory = {"device": device, "dtype": dtype}
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features, **factory))
            if bias:
                self.bias = nn.Parameter(torch.zeros(num_features, **factory))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer(
                "running_mean", torch.zeros(num_features, **factory)
            )
            self.register_buffer(
                "running_var", torch.ones(num_features, **factory)
            )
            self.register_buffer(
                "num_batches_tracked",
                torch.tensor(0, dtype=torch.long, device=device),
            )
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batch seen."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Running statistics reset; weight 1 and bias 0."""
        self.reset_running_stats()
        if self.affine:
            nn.init.ones_(self.weight)
            if self.bias is not None:
                nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Batch statistics in training (or without running ones), else the
        running statistics."""
        if x.dim() not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d: input must have shape (N, {self.num_features}) "
                f"or (N, {self.num_features}, L); got {tuple(x.shape)}."
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_running = not self.training and self.track_running_stats
        return batch_norm(
            x,
            self.running_mean if self.training or use_running else None,
            self.running_var if self.training or use_running else None,
            self.weight,
            self.bias,
            training=self.training or not use_running,
            momentum=factor,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )
