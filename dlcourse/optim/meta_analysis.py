r"""Measurements for the chapter on optimization strategies and meta-algorithms.

Book: Part II, chapter 7, "Optimization strategies and meta-algorithms".

* ``StackedNet``: K deep MLPs of one architecture (optionally with batch
  normalization after every hidden linear layer, :class:`BatchNorm1d` of
  ``dlcourse.nn.batchnorm``) evaluated and trained as one batched model, each
  member with its own learning rate, so a grid of rates times seeds costs
  one forward pass; ``member(k)`` gives member k back as an ``nn.Sequential``.
* ``coupled_abs`` and ``coupled_coordinate_descent``: a convex, nonsmooth,
  non-separable function on which exact cyclic coordinate descent stops at a
  point that is not a minimum.
* ``quadratic_cd_points``: every point visited by cyclic coordinate descent
  on a quadratic (the reference ``quadratic_coordinate_descent`` returns only
  the last one).
* ``bumpy``, ``smoothed_bumpy`` and ``continuation_descent``: continuation
  by Gaussian smoothing of :math:`x^2 - a\cos(bx)`, whose smoothed form is
  known in closed form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse._validation import check_in_range, check_int, check_type
from dlcourse.nn.batchnorm import BatchNorm1d
from dlcourse.nn.mlp import ACTIVATIONS, make_mlp

__all__ = [
    "StackedNet",
    "train_stacked",
    "stacked_accuracy",
    "coupled_abs",
    "coupled_coordinate_descent",
    "quadratic_cd_points",
    "bumpy",
    "smoothed_bumpy",
    "continuation_descent",
]


class StackedNet(nn.Module):
    """K MLPs ``Linear -> [BatchNorm1d] -> activation -> ... -> Linear``.

    Member k is ``make_mlp(sizes, generator=manual_seed(seeds[k]))``, with a
    fresh batch norm (weight 1, bias 0, running mean 0, variance 1) after
    every hidden linear layer if ``batch_norm``: with and without batch
    norm, the same seed gives the same linear weights. Layer i holds the
    members' weights as one (K, n_in, n_out) tensor. Batch norm of all
    members is one ``BatchNorm1d(K * width)`` applied to the (N, K * width)
    matrix of their features, which normalizes each member's features over
    its own batch. ``model(x)`` takes (N, n_in) or (K, N, n_in) inputs and
    returns (K, N, n_out) logits.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        seeds: Sequence[int],
        *,
        batch_norm: bool,
        activation: str = "relu",
        momentum: float | None = 0.1,
    ):
        super().__init__()
        where = "StackedNet"
        check_type(where, "seeds", seeds, (list, tuple, range), "a sequence")
        if len(seeds) == 0:
            raise ValueError(f"{where}: 'seeds' must not be empty; got 0.")
        check_type(where, "batch_norm", batch_norm, bool, "a bool")
        mlps = [
            make_mlp(
                list(sizes),
                activation=activation,
                generator=torch.Generator().manual_seed(int(s)),
            )
            for s in seeds
        ]
        self.sizes, self.activation = list(sizes), activation
        self.batch_norm = batch_norm
        lin = [[m for m in mlp if isinstance(m, nn.Linear)] for mlp in mlps]
        n_layers = len(self.sizes) - 1
        self.weights = nn.ParameterList(
            torch.stack([ls[i].weight.detach().T for ls in lin])
            for i in range(n_layers)
        )  # layer i: (K, n_in, n_out)
        self.biases = nn.ParameterList(
            torch.stack([ls[i].bias.detach()[None] for ls in lin])
            for i in range(n_layers)
        )  # layer i: (K, 1, n_out)
        k = len(seeds)
        self.norms = nn.ModuleList(
            BatchNorm1d(k * n, momentum=momentum)
            if batch_norm
            else nn.Identity()
            for n in self.sizes[1:-1]
        )
        self.act = ACTIVATIONS[activation]()

    def __len__(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x  # (N, n_in) or (K, N, n_in)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b  # (K, N, n_out)
            if i < len(self.norms):
                k, n, c = h.shape
                if self.batch_norm:
                    # (K, N, C) -> (N, K * C): column k * C + c is feature c
                    # of member k, normalized over member k's batch
                    flat = h.transpose(0, 1).reshape(n, k * c)
                    h = self.norms[i](flat).reshape(n, k, c).transpose(0, 1)
                h = self.act(h)
        return h

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of each member, shape (K,); ``y`` is (N,) or
        (K, N)."""
        logits = self(x)  # (K, N, C)
        k, n, c = logits.shape
        y = y.expand(k, n)
        return (
            F.cross_entropy(
                logits.reshape(k * n, c), y.reshape(k * n), reduction="none"
            )
            .view(k, n)
            .mean(dim=1)
        )

    @torch.no_grad()
    def sgd_step_(self, lrs: torch.Tensor) -> None:
        r"""Plain SGD with member k's rate ``lrs[k]``:
        :math:`\theta_k \leftarrow \theta_k - \eta_k \nabla_{\theta_k}`,
        for the gradients of ``self.losses(...).sum()`` (the members do not
        share parameters, so member k's gradient is that of its own loss)."""
        k = len(self)
        if not isinstance(lrs, torch.Tensor) or lrs.shape != (k,):
            raise ValueError(
                f"StackedNet.sgd_step_: 'lrs' must be a tensor of shape "
                f"({k},); got {lrs!r:.60}."
            )
        for p in self.parameters():
            if p.grad is not None:
                # (K, ...) view: BatchNorm1d's K * C vector is member-major
                p.view(k, -1).sub_(lrs[:, None].to(p) * p.grad.view(k, -1))

    def member(self, k: int) -> nn.Sequential:
        """Member ``k`` as an ``nn.Sequential`` of ``nn.Linear``,
        ``BatchNorm1d`` (with its running statistics) and activations."""
        check_int("StackedNet.member", "k", k, low=0)
        if k >= len(self):
            raise ValueError(
                f"StackedNet.member: 'k' must be < {len(self)}; got {k}."
            )
        layers: list[nn.Module] = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            lin = nn.Linear(*w.shape[1:])
            with torch.no_grad():
                lin.weight.copy_(w[k].T)
                lin.bias.copy_(b[k, 0])
            layers.append(lin)
            if i < len(self.norms):
                if self.batch_norm:
                    layers.append(self._member_norm(self.norms[i], k))
                layers.append(ACTIVATIONS[self.activation]())
        return nn.Sequential(*layers)

    def _member_norm(self, stacked: BatchNorm1d, k: int) -> BatchNorm1d:
        c = stacked.num_features // len(self)
        part = slice(k * c, (k + 1) * c)
        bn = BatchNorm1d(c, momentum=stacked.momentum)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name).copy_(getattr(stacked, name)[part])
            bn.num_batches_tracked.copy_(stacked.num_batches_tracked)
        return bn


def train_stacked(
    net: StackedNet,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    lrs: torch.Tensor,
    steps: int,
    batch_size: int,
    data_seeds: Sequence[int],
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    eval_every: int,
) -> dict[str, torch.Tensor]:
    """Train every member of ``net`` by plain SGD on minibatches.

    Member k draws its minibatches (with replacement) from a generator
    seeded with ``data_seeds[k]`` and steps at rate ``lrs[k]`` (shape (K,))
    or, for a schedule, ``lrs[t, k]`` at step t (shape (steps, K)). Every
    ``eval_every`` steps the validation accuracy of each member is measured
    in eval mode (batch norm with its running statistics). Returns
    ``{"loss": (steps, K) minibatch losses, "val_acc": (steps //
    eval_every, K)}``.
    """
    where = "train_stacked"
    check_int(where, "steps", steps, low=1)
    check_int(where, "batch_size", batch_size, low=1)
    check_int(where, "eval_every", eval_every, low=1)
    k = len(net)
    if len(data_seeds) != k:
        raise ValueError(
            f"{where}: 'data_seeds' must hold {k} seeds (one per member); "
            f"got {len(data_seeds)}."
        )
    check_type(where, "lrs", lrs, torch.Tensor, "a torch.Tensor")
    if lrs.shape not in ((k,), (steps, k)):
        raise ValueError(
            f"{where}: 'lrs' must have shape ({k},) or ({steps}, {k}); "
            f"got {tuple(lrs.shape)}."
        )
    gens = [torch.Generator().manual_seed(int(s)) for s in data_seeds]
    losses, val_acc = [], []
    net.train()
    for t in range(steps):
        idx = torch.stack(
            [torch.randint(len(y), (batch_size,), generator=g) for g in gens]
        )  # (K, B)
        loss = net.losses(x[idx], y[idx])  # (K,)
        net.zero_grad()
        loss.sum().backward()
        net.sgd_step_(lrs if lrs.dim() == 1 else lrs[t])
        losses.append(loss.detach())
        if (t + 1) % eval_every == 0:
            val_acc.append(stacked_accuracy(net, x_val, y_val))
    return {"loss": torch.stack(losses), "val_acc": torch.stack(val_acc)}


@torch.no_grad()
def stacked_accuracy(
    net: StackedNet, x: torch.Tensor, y: torch.Tensor, *, train: bool = False
) -> torch.Tensor:
    """Accuracy of each member on (x, y), shape (K,): in eval mode (batch
    norm with its running statistics) or, with ``train=True``, in training
    mode (with the batch statistics of ``x``; the running statistics are
    restored afterwards)."""
    was = net.training
    saved = [b.clone() for b in net.buffers()]
    net.train(train)
    acc = (net(x).argmax(dim=-1) == y).float().mean(dim=1)
    net.train(was)
    for b, old in zip(net.buffers(), saved):
        b.copy_(old)
    return acc


def coupled_abs(xy: torch.Tensor) -> torch.Tensor:
    r"""The convex function :math:`f(x, y) = 3|x-y| - (x+y) + (x+y)^2/4`
    at the points ``xy`` (..., 2).

    With :math:`s = x+y` and :math:`d = x-y` it is
    :math:`3|d| - s + s^2/4`: minimal at :math:`d = 0, s = 2`, i.e. at
    :math:`(1, 1)` with :math:`f = -1`. Along :math:`x` at a point
    :math:`(a, a)` its one-sided derivatives are :math:`a + 2` (right) and
    :math:`a - 4` (left), so for :math:`-2 < a < 4` no coordinate move
    decreases it.
    """
    check_type("coupled_abs", "xy", xy, torch.Tensor, "a torch.Tensor")
    s, d = xy[..., 0] + xy[..., 1], xy[..., 0] - xy[..., 1]
    return 3 * d.abs() - s + s**2 / 4


def _coupled_argmin(u: float) -> float:
    # min over t of 3|t - u| - (t + u) + (t + u)^2 / 4, u = the other coordinate
    if -4 - u > u:  # stationary point of the right piece, t > u
        return -4 - u
    if 8 - u < u:  # stationary point of the left piece, t < u
        return 8 - u
    return u  # the kink: 0 is in the subdifferential


def coupled_coordinate_descent(
    x0: Sequence[float], *, sweeps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact cyclic coordinate descent on :func:`coupled_abs` from ``x0``.

    Each update is the exact minimizer along one coordinate (a piecewise
    quadratic in one variable: the stationary point of one of its two pieces,
    or the kink). Returns the points visited, (1 + 2 * sweeps, 2), float64,
    and the values of ``f`` at them.
    """
    check_int("coupled_coordinate_descent", "sweeps", sweeps, low=1)
    p = [float(v) for v in x0]
    if len(p) != 2:
        raise ValueError(
            "coupled_coordinate_descent: 'x0' must hold 2 numbers; "
            f"got {len(p)}."
        )
    points = [tuple(p)]
    for _ in range(sweeps):
        for i in (0, 1):
            p[i] = _coupled_argmin(p[1 - i])
            points.append(tuple(p))
    pts = torch.tensor(points, dtype=torch.float64)
    return pts, coupled_abs(pts)


def quadratic_cd_points(
    A: torch.Tensor, b: torch.Tensor, x0: torch.Tensor, *, sweeps: int
) -> torch.Tensor:
    r"""Every point of cyclic coordinate descent on
    :math:`\tfrac12 x^\top Ax - b^\top x`, (1 + sweeps * n, n): the update
    of :func:`~dlcourse.optim.coordinate_descent.quadratic_coordinate_descent`,
    :math:`x_i \leftarrow (b_i - \sum_{j\ne i} A_{ij}x_j)/A_{ii}`."""
    check_int("quadratic_cd_points", "sweeps", sweeps, low=1)
    x = x0.detach().clone().to(b.dtype)
    points = [x.clone()]
    for _ in range(sweeps):
        for i in range(len(b)):
            x[i] = (b[i] - A[i] @ x + A[i, i] * x[i]) / A[i, i]
            points.append(x.clone())
    return torch.stack(points)


def bumpy(x: torch.Tensor, *, a: float, b: float) -> torch.Tensor:
    r""":math:`f(x) = x^2 - a\cos(bx)`, global minimum at 0 (:math:`f = -a`,
    as :math:`f(x) \ge x^2 - a`).

    It has other local minima when :math:`ab^2 > 9.21`: a stationary point
    :math:`x \ne 0` solves :math:`\sin u / u = -2/(ab^2)` with :math:`u = bx`,
    and :math:`\sin u / u \ge -0.2172` (at :math:`u = 4.493`, where
    :math:`\tan u = u`). The condition is on :math:`ab^2`, not :math:`ab`.
    """
    return x**2 - a * torch.cos(b * x)


def smoothed_bumpy(
    x: torch.Tensor, *, a: float, b: float, sigma: float
) -> torch.Tensor:
    r"""The Gaussian smoothing :math:`f_\sigma(x) = E\,f(x + \sigma\epsilon)`,
    :math:`\epsilon \sim N(0, 1)`, of :func:`bumpy`, in closed form:

    .. math::

        f_\sigma(x) = x^2 + \sigma^2 - a\, e^{-b^2\sigma^2/2} \cos(bx)

    (from :math:`E\cos(b(x + \sigma\epsilon)) = e^{-b^2\sigma^2/2}\cos bx`).
    The ripples shrink by :math:`e^{-b^2\sigma^2/2}`; for
    :math:`a b^2 e^{-b^2\sigma^2/2} < 2` the smoothed function is convex.
    """
    check_in_range("smoothed_bumpy", "sigma", sigma, low=0.0)
    damp = math.exp(-((b * sigma) ** 2) / 2)
    return x**2 + sigma**2 - a * damp * torch.cos(b * x)


def continuation_descent(
    x0: torch.Tensor,
    *,
    a: float,
    b: float,
    sigmas: Sequence[float],
    lr: float,
    steps: int,
) -> torch.Tensor:
    r"""Gradient descent on :func:`smoothed_bumpy` for each
    :math:`\sigma` in ``sigmas`` in turn, ``steps`` steps each, every stage
    started where the previous one stopped; ``sigmas = (0,)`` is plain
    gradient descent on :func:`bumpy`. The gradient is
    :math:`2x + ab\,e^{-b^2\sigma^2/2}\sin(bx)`. Returns the final points
    (one per start in ``x0``)."""
    where = "continuation_descent"
    check_type(where, "x0", x0, torch.Tensor, "a torch.Tensor")
    check_in_range(where, "lr", lr, low=0.0, low_inclusive=False)
    check_int(where, "steps", steps, low=1)
    if len(sigmas) == 0:
        raise ValueError(f"{where}: 'sigmas' must not be empty; got 0.")
    x = x0.detach().clone()
    for sigma in sigmas:
        check_in_range(where, "sigmas[i]", sigma, low=0.0)
        damp = math.exp(-((b * sigma) ** 2) / 2)
        for _ in range(steps):
            # x <- x - lr * (2 x + a b e^{-b^2 s^2 / 2} sin(b x))
            x = x - lr * (2 * x + a * b * damp * torch.sin(b * x))
    return x
