r"""Bagging and other ensembles: bootstrap resamples, combining the outputs of
several models, the error of an average of correlated predictors, and K small
MLPs trained side by side as one batched model.

Book: Part I, chapter 11, "Bagging and other ensembles".

With :math:`K` predictors whose errors :math:`\epsilon_k` on an example have
second moments :math:`\mathbb E[\epsilon_k^2] = v` and
:math:`\mathbb E[\epsilon_k\epsilon_l] = c` (:math:`k \ne l`), the error of
their average has

.. math::

    \mathbb E\Bigl[\Bigl(\frac1K\sum_k \epsilon_k\Bigr)^2\Bigr]
    = \frac{v}{K} + \frac{K-1}{K}\,c = c + \frac{v - c}{K}.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse._validation import (
    _fail,
    check_choice,
    check_generator,
    check_in_range,
    check_int,
    check_type,
)
from dlcourse.nn.mlp import ACTIVATIONS, make_mlp

__all__ = [
    "bootstrap_indices",
    "expected_distinct_fraction",
    "ensemble_log_probs",
    "majority_vote",
    "ensemble_error_variance",
    "correlated_errors",
    "StackedMLP",
    "fit_members",
]


def bootstrap_indices(
    n: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""One bootstrap resample of ``range(n)``: ``n`` draws with replacement.

    Each of the ``n`` positions holds an index drawn uniformly from
    :math:`\{0, \dots, n-1\}`, independently of the others, so an example can
    appear several times or not at all. ``x[bootstrap_indices(len(x))]`` is a
    bagging training set of the same size as ``x``.
    """
    n = check_int("bootstrap_indices", "n", n, low=1)
    check_generator("bootstrap_indices", generator)
    # i_1, ..., i_n ~ Uniform{0, ..., n-1}, independent
    return torch.randint(0, n, (n,), generator=generator)


def expected_distinct_fraction(n: int) -> float:
    r"""Expected fraction of distinct examples in a bootstrap resample of n.

    An example is missed by all :math:`n` draws with probability
    :math:`(1 - 1/n)^n`, so

    .. math::

        \mathbb E\Bigl[\tfrac{\#\text{distinct}}{n}\Bigr]
        = 1 - \Bigl(1 - \frac1n\Bigr)^n
        \;\xrightarrow[n\to\infty]{}\; 1 - e^{-1} \approx 0.632 .
    """
    n = check_int("expected_distinct_fraction", "n", n, low=1)
    # (1 - 1/n)^n = exp(n log(1 - 1/n)), accurate for large n
    return 1.0 - math.exp(n * math.log1p(-1.0 / n)) if n > 1 else 1.0


def _stacked(where: str, logits) -> torch.Tensor:
    """The members' outputs as one (K, N, C) tensor; an empty ensemble fails."""
    if isinstance(logits, torch.Tensor):
        if logits.ndim != 3:
            _fail(where, "logits", "a (K, N, C) tensor", tuple(logits.shape))
        members = list(logits)
    else:
        check_type(where, "logits", logits, (list, tuple), "a list of tensors")
        members = list(logits)
    if not members:
        raise ValueError(
            f"{where}: 'logits' must hold the outputs of at least one model; "
            "got an empty ensemble (0 models)."
        )
    for k, z in enumerate(members):
        check_type(where, f"logits[{k}]", z, torch.Tensor, "a torch.Tensor")
        if z.ndim != 2:
            _fail(where, f"logits[{k}]", "an (N, C) tensor", tuple(z.shape))
        if z.shape != members[0].shape:
            _fail(
                where,
                f"logits[{k}]",
                f"of the shape of logits[0], {tuple(members[0].shape)}",
                tuple(z.shape),
            )
    return torch.stack(members)


def ensemble_log_probs(logits, *, average: str = "probabilities"):
    r"""Log-probabilities of an ensemble from its members' logits.

    ``logits``: a list of K tensors (N, C), or one (K, N, C) tensor.

    ``average="probabilities"`` (bagging's arithmetic mean):

    .. math::

        p(y\mid x) = \frac1K \sum_k \operatorname{softmax}(z_k)_y .

    ``average="logits"``: :math:`\operatorname{softmax}(\frac1K\sum_k z_k)`,
    which is the normalized geometric mean of the members' probabilities,
    :math:`\prod_k p_k(y\mid x)^{1/K} / \sum_{y'}\prod_k p_k(y'\mid x)^{1/K}`.

    Returns (N, C) log-probabilities (computed in log space, so a member's
    probability that underflows to 0 does not give ``-inf``).
    """
    where = "ensemble_log_probs"
    check_choice(where, "average", average, ("probabilities", "logits"))
    z = _stacked(where, logits)  # (K, N, C)
    if average == "logits":
        return F.log_softmax(z.mean(dim=0), dim=-1)
    # log (1/K) sum_k p_k = logsumexp_k(log p_k) - log K
    return torch.logsumexp(F.log_softmax(z, dim=-1), dim=0) - math.log(len(z))


def majority_vote(logits) -> torch.Tensor:
    """The class most members predict (arg-max of each member's logits).

    ``logits`` as in :func:`ensemble_log_probs`. A tie goes to the smallest
    class index among the most voted. Returns N class indices.
    """
    z = _stacked("majority_vote", logits)  # (K, N, C)
    votes = F.one_hot(z.argmax(dim=-1), z.shape[-1]).sum(dim=0)  # (N, C)
    return votes.argmax(dim=-1)  # first maximum: the smallest class index


def _check_moments(where: str, v, c, k: int) -> tuple[float, float]:
    """v >= 0 and c in [-v/(K-1), v]: the bounds of a covariance matrix."""
    v = check_in_range(where, "v", v, low=0.0)
    low = -v / (k - 1) if k > 1 else -v
    # small slack: c = -v/(K-1) computed in floating point may round below
    c = check_in_range(where, "c", c, low=low - 1e-12 * v, high=v)
    return v, c


def ensemble_error_variance(v: float, c: float, k: int) -> float:
    r"""Mean squared error of the average of ``k`` predictors' errors.

    .. math::

        \frac{v}{K} + \frac{K-1}{K}\,c

    ``v`` is each predictor's :math:`\mathbb E[\epsilon^2]` and ``c`` the
    :math:`\mathbb E[\epsilon_k\epsilon_l]` of every pair. The errors need
    not be normal nor zero-mean (then it is a mean square, not a variance).
    ``c`` must lie in :math:`[-v/(K-1), v]`, where the K×K matrix with ``v``
    on the diagonal and ``c`` elsewhere is a covariance matrix
    (:math:`[-v, v]` for K = 1).
    """
    k = check_int("ensemble_error_variance", "k", k, low=1)
    v, c = _check_moments("ensemble_error_variance", v, c, k)
    # v/K + (K-1) c / K
    return v / k + (k - 1) * c / k


def correlated_errors(
    n: int,
    k: int,
    *,
    v: float,
    c: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``n`` draws of ``k`` normal errors with variance v, covariance c.

    Each row is :math:`\epsilon \sim \mathcal N(0, \Sigma)` with
    :math:`\Sigma = (v-c) I + c\,\mathbf 1\mathbf 1^\top`, made as
    :math:`\epsilon = \Sigma^{1/2} z` from standard normal :math:`z`
    (the symmetric square root, so that singular :math:`\Sigma` works too).
    Returns an (n, k) float64 tensor.
    """
    where = "correlated_errors"
    n = check_int(where, "n", n, low=1)
    k = check_int(where, "k", k, low=1)
    v, c = _check_moments(where, v, c, k)
    check_generator(where, generator)
    dt = torch.float64
    sigma = (v - c) * torch.eye(k, dtype=dt) + c * torch.ones(k, k, dtype=dt)
    lam, q = torch.linalg.eigh(sigma)
    # eigenvalues at rounding level are zeros of a singular Sigma
    lam = torch.where(lam > 1e-12 * lam.max(), lam, 0.0)
    root = q @ torch.diag(lam.sqrt()) @ q.T  # Sigma^(1/2)
    z = torch.randn(n, k, generator=generator, dtype=dt)
    return z @ root  # rows: z^T Sigma^(1/2), covariance Sigma


class StackedMLP(nn.Module):
    """K MLPs of one architecture, evaluated as one batched model.

    Built from models of :func:`dlcourse.nn.make_mlp` (same widths, same
    activation); layer ``l`` holds the members' weights as one
    (K, n_in, n_out) tensor, so one matrix product evaluates all members.
    ``model(x)`` takes x of shape (N, n_in), the same rows for every member,
    or (K, N, n_in), rows per member, and returns (K, N, n_out) logits.
    ``members()`` gives the members back as separate ``make_mlp`` models.
    """

    def __init__(self, mlps: Sequence[nn.Sequential]):
        super().__init__()
        where = "StackedMLP"
        check_type(where, "mlps", mlps, (list, tuple), "a list of MLPs")
        if not mlps:
            raise ValueError(
                f"{where}: 'mlps' must hold at least one MLP; got 0."
            )
        layouts = [_layout(where, k, m) for k, m in enumerate(mlps)]
        for k, layout in enumerate(layouts):
            if layout != layouts[0]:
                _fail(
                    where,
                    f"mlps[{k}]",
                    "an MLP with the widths and activation of mlps[0], "
                    f"{layouts[0]}",
                    layout,
                )
        self.sizes, self.activation = layouts[0]
        linears = [[m for m in mlp if isinstance(m, nn.Linear)] for mlp in mlps]
        self.weights = nn.ParameterList(
            torch.stack([ls[i].weight.detach().T for ls in linears])
            for i in range(len(self.sizes) - 1)
        )  # layer i: (K, n_in, n_out)
        self.biases = nn.ParameterList(
            torch.stack([ls[i].bias.detach()[None] for ls in linears])
            for i in range(len(self.sizes) - 1)
        )  # layer i: (K, 1, n_out)
        self.act = ACTIVATIONS[self.activation]()

    def __len__(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x  # (N, n_in) or (K, N, n_in)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b  # (K, N, n_out) = (K, N, n_in) @ (K, n_in, n_out)
            if i < len(self.weights) - 1:
                h = self.act(h)
        return h

    def members(self) -> list[nn.Sequential]:
        """The K members as separate ``make_mlp`` models (copies)."""
        out = []
        for k in range(len(self)):
            mlp = make_mlp(self.sizes, activation=self.activation)
            mlp = mlp.to(self.weights[0].dtype)
            linears = [m for m in mlp if isinstance(m, nn.Linear)]
            with torch.no_grad():
                for lin, w, b in zip(linears, self.weights, self.biases):
                    lin.weight.copy_(w[k].T)
                    lin.bias.copy_(b[k, 0])
            out.append(mlp)
        return out


def _layout(where: str, k: int, mlp) -> tuple[list[int], str]:
    """(widths, activation) of a make_mlp model, or an error naming it."""
    check_type(where, f"mlps[{k}]", mlp, nn.Sequential, "a make_mlp model")
    names = {cls: name for name, cls in ACTIVATIONS.items()}
    linears = list(mlp)[0::2]
    acts = {type(m) for m in list(mlp)[1::2]}
    if (
        len(mlp) % 2 == 0
        or not all(isinstance(m, nn.Linear) for m in linears)
        or len(acts) > 1
        or not acts <= set(names)
    ):
        layers = ", ".join(type(m).__name__ for m in mlp)
        _fail(
            where,
            f"mlps[{k}]",
            "a make_mlp model (Linear, activation, ..., Linear)",
            f"Sequential({layers})",
        )
    sizes = [linears[0].in_features] + [m.out_features for m in linears]
    return sizes, names[acts.pop()] if acts else "relu"


def fit_members(
    model: StackedMLP,
    x: torch.Tensor,
    y: torch.Tensor,
    rows: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
) -> dict[str, list[float]]:
    r"""Train every member of ``model`` on its own rows, all at once.

    Member k trains on ``x[rows[k]], y[rows[k]]`` (``rows``: (K, m)
    indices; all of ``range(n)`` for a plain ensemble, a bootstrap resample
    for bagging). Each epoch every member shuffles its rows with its own
    permutation (drawn from ``generator`` member by member) and takes
    minibatches of ``batch_size``. The objective of a step is the sum of the
    members' mean cross-entropies on their minibatches :math:`B_k`,

    .. math::

        \sum_{k=1}^{K} \frac{1}{|B_k|} \sum_{i \in B_k}
        \ell\bigl(f_k(x_i), y_i\bigr),

    so member k's gradient is that of its own loss: with an element-wise
    optimizer (SGD, Adam) this is K separate trainings.
    Returns ``{"loss": [...]}``, the members' mean loss of each epoch.
    """
    where = "fit_members"
    check_type(where, "model", model, StackedMLP, "a StackedMLP")
    check_type(
        where,
        "optimizer",
        optimizer,
        torch.optim.Optimizer,
        "a torch.optim.Optimizer",
    )
    check_type(
        where, "generator", generator, torch.Generator, "a torch.Generator"
    )
    check_int(where, "epochs", epochs, low=1)
    check_int(where, "batch_size", batch_size, low=1)
    if x.shape[0] != y.shape[0]:
        _fail(where, "y", f"{x.shape[0]} labels, one per row of 'x'", len(y))
    check_type(where, "rows", rows, torch.Tensor, "a (K, m) index tensor")
    shape = tuple(rows.shape)
    if (
        rows.ndim != 2
        or shape[0] != len(model)
        or shape[1] < 1
        or rows.dtype != torch.long
    ):
        _fail(
            where,
            "rows",
            f"an int64 tensor of shape ({len(model)}, m), m >= 1",
            f"{rows.dtype} of shape {shape}",
        )
    lo, hi = rows.min().item(), rows.max().item()
    if lo < 0 or hi >= x.shape[0]:
        _fail(
            where,
            "rows",
            f"indices in [0, {x.shape[0]})",
            f"indices from {lo} to {hi}",
        )
    k, m = rows.shape
    history: dict[str, list[float]] = {"loss": []}
    model.train()
    for _ in range(epochs):
        perm = torch.stack(
            [torch.randperm(m, generator=generator) for _ in range(k)]
        )
        order = rows.gather(1, perm)  # (K, m): member k's rows, shuffled
        total = 0.0
        for start in range(0, m, batch_size):
            idx = order[:, start : start + batch_size]  # (K, B)
            logits = model(x[idx])  # (K, B, C)
            # sum_k mean_b CE_k: every member's gradient is its own
            loss = (
                F.cross_entropy(
                    logits.flatten(0, 1), y[idx].flatten(), reduction="sum"
                )
                / idx.shape[1]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * idx.shape[1]
        history["loss"].append(total / (k * m))
    return history
