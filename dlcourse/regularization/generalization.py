r"""Capacity and generalization: polynomial fits, random features, MLP width.

Book: Part I, chapter 0, "What regularization is for: training vs test error".

Three families of models whose capacity is one integer:

* polynomials of degree :math:`D` in the Legendre basis on :math:`[-1, 1]`
  (:func:`legendre_features`), fitted by least squares;
* random ReLU features :math:`\phi(x) = \max(0, W^\top x + b)/\sqrt{p}` with
  :math:`p` features (:class:`RandomReLUFeatures`), fitted by the minimum-norm
  least-squares solution (:func:`min_norm_least_squares`), the limit of ridge
  regression as :math:`\lambda \to 0`;
* one-hidden-layer MLPs of width :math:`h` (:func:`width_sweep`).

The sweeps return errors as tensors of shape (seeds, capacities); they never
print or plot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from dlcourse._validation import (
    _fail,
    check_generator,
    check_in_range,
    check_int,
    check_type,
)
from dlcourse.nn import make_mlp
from dlcourse.regularization.ensembles import StackedMLP, fit_members

__all__ = [
    "legendre_features",
    "min_norm_least_squares",
    "mean_squared_error",
    "RandomReLUFeatures",
    "random_features_sweep",
    "width_sweep",
]


def _floating(where: str, name: str, x, ndim: tuple[int, ...]) -> None:
    check_type(where, name, x, torch.Tensor, "a torch.Tensor")
    if x.ndim not in ndim or not x.is_floating_point():
        dims = " or ".join(f"{d}-D" for d in ndim)
        _fail(
            where,
            name,
            f"a {dims} floating-point tensor",
            f"{x.dtype} of shape {tuple(x.shape)}",
        )


def legendre_features(x: torch.Tensor, degree: int) -> torch.Tensor:
    r"""The Legendre design matrix :math:`[P_0(x), \dots, P_D(x)]`, (n, D + 1).

    The polynomials come from Bonnet's recurrence,

    .. math::

        P_0 = 1, \quad P_1 = x, \quad
        (k + 1)\,P_{k+1}(x) = (2k + 1)\,x\,P_k(x) - k\,P_{k-1}(x),

    and are orthogonal on :math:`[-1, 1]`,
    :math:`\int_{-1}^{1} P_j P_k\,dx = \tfrac{2}{2k+1}\delta_{jk}`, so that on
    points spread over the interval the columns are far better conditioned
    than the monomials :math:`1, x, \dots, x^D` (same span, same fit).
    ``x`` is a 1-D tensor with entries in :math:`[-1, 1]`.
    """
    where = "legendre_features"
    _floating(where, "x", x, (1,))
    check_int(where, "degree", degree, low=0)
    if x.numel() and x.abs().max().item() > 1.0:
        _fail(
            where,
            "x",
            "in [-1, 1]",
            f"values from {x.min().item():g} to {x.max().item():g}",
        )
    cols = [torch.ones_like(x), x]
    for k in range(1, degree):
        # (k + 1) P_{k+1} = (2k + 1) x P_k - k P_{k-1}
        cols.append(((2 * k + 1) * x * cols[k] - k * cols[k - 1]) / (k + 1))
    return torch.stack(cols[: degree + 1], dim=1)


def _check_system(where: str, features, targets) -> None:
    _floating(where, "features", features, (2,))
    _floating(where, "targets", targets, (1, 2))
    if targets.shape[0] != features.shape[0]:
        _fail(
            where,
            "targets",
            f"{features.shape[0]} rows, one per row of 'features'",
            targets.shape[0],
        )


def _filter(s: torch.Tensor, n: int, p: int, ridge: float) -> torch.Tensor:
    # f(s) = s / (s^2 + ridge) for ridge > 0; for ridge = 0, 1/s on the
    # singular values above rounding, max(n, p) eps s_1, and 0 below (pinv)
    if ridge > 0:
        return s / (s * s + ridge)
    cut = max(n, p) * torch.finfo(s.dtype).eps * (s.max() if s.numel() else 1)
    keep = s > cut
    return torch.where(keep, 1.0 / torch.where(keep, s, 1.0), 0.0)


def _svd_solve(u, s, vh, targets, ridge: float) -> torch.Tensor:
    # w = V diag(f(s)) U^T y
    y = targets if targets.ndim == 2 else targets[:, None]
    filt = _filter(s, u.shape[0], vh.shape[1], ridge)
    w = vh.mT @ (filt[:, None] * (u.mT @ y))
    return w if targets.ndim == 2 else w[:, 0]


def min_norm_least_squares(
    features: torch.Tensor, targets: torch.Tensor, *, ridge: float = 0.0
) -> torch.Tensor:
    r"""Least squares, ridge-penalized or of minimum norm, by one SVD.

    With :math:`\Phi = U \operatorname{diag}(s) V^\top` (n rows, p columns),

    .. math::

        w_\lambda = \operatorname*{arg\,min}_w
            \lVert \Phi w - y\rVert_2^2 + \lambda \lVert w\rVert_2^2
        = V \operatorname{diag}\!\Bigl(\frac{s_i}{s_i^2 + \lambda}\Bigr)
          U^\top y ,

    and for ``ridge`` :math:`\lambda = 0` the limit
    :math:`w_0 = \Phi^+ y = V \operatorname{diag}(1/s_i) U^\top y` (singular
    values below rounding, :math:`\max(n, p)\,\varepsilon\,s_1`, count as
    zero, as in ``torch.linalg.pinv``): the least-squares solution of
    smallest norm. When :math:`p \ge n` and :math:`\Phi` has rank n it
    interpolates, :math:`\Phi w_0 = y`. ``targets`` is (n,) or (n, k);
    the result is (p,) or (p, k).
    """
    where = "min_norm_least_squares"
    _check_system(where, features, targets)
    lam = check_in_range(where, "ridge", ridge, low=0.0)
    u, s, vh = torch.linalg.svd(features, full_matrices=False)
    return _svd_solve(u, s, vh, targets.to(features.dtype), lam)


def mean_squared_error(
    predictions: torch.Tensor, targets: torch.Tensor
) -> float:
    r"""Squared error summed over outputs, averaged over rows.

    :math:`\frac1n \sum_i \lVert \hat y_i - y_i\rVert_2^2` (for one output
    per row, the usual mean squared error).
    """
    where = "mean_squared_error"
    _floating(where, "predictions", predictions, (1, 2))
    check_type(where, "targets", targets, torch.Tensor, "a torch.Tensor")
    if targets.shape != predictions.shape:
        _fail(
            where,
            "targets",
            f"of the shape of 'predictions', {tuple(predictions.shape)}",
            tuple(targets.shape),
        )
    sq = (predictions - targets) ** 2
    return (sq.sum() / max(predictions.shape[0], 1)).item()


class RandomReLUFeatures:
    r"""A fixed random ReLU layer: :math:`\phi(x) = \max(0, xW + b)/\sqrt{p}`.

    :math:`W \in \mathbb{R}^{d \times p}` has entries
    :math:`\mathcal N(0, 1/d)` and :math:`b \in \mathbb{R}^p` entries
    :math:`\mathcal N(0, 1)`, drawn once from ``generator`` and never trained:
    only a linear model on top of :math:`\phi` is fitted. The scale
    :math:`1/\sqrt p` keeps :math:`\phi(x)^\top\phi(x')` of order one for any
    p, so a ridge :math:`\lambda` means the same at every p.
    ``first(q)`` is the map made of the first q features (rescaled).
    """

    def __init__(
        self,
        in_features: int,
        num_features: int,
        *,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
    ):
        where = "RandomReLUFeatures"
        check_int(where, "in_features", in_features, low=1)
        check_int(where, "num_features", num_features, low=1)
        check_generator(where, generator)
        scale = 1.0 / math.sqrt(in_features)
        self.weight = scale * torch.randn(
            in_features, num_features, generator=generator, dtype=dtype
        )  # (d, p)
        self.bias = torch.randn(num_features, generator=generator, dtype=dtype)

    @property
    def num_features(self) -> int:
        return self.weight.shape[1]

    def first(self, num_features: int) -> RandomReLUFeatures:
        """The map of the first ``num_features`` features (a view, no copy)."""
        p = self.num_features
        check_int("RandomReLUFeatures.first", "num_features", num_features, 1)
        if num_features > p:
            _fail(
                "RandomReLUFeatures.first",
                "num_features",
                f"<= {p}",
                num_features,
            )
        out = object.__new__(RandomReLUFeatures)
        out.weight = self.weight[:, :num_features]
        out.bias = self.bias[:num_features]
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        where = "RandomReLUFeatures"
        _floating(where, "x", x, (2,))
        if x.shape[1] != self.weight.shape[0]:
            _fail(
                where,
                "x",
                f"of shape (n, {self.weight.shape[0]})",
                tuple(x.shape),
            )
        z = x.to(self.weight.dtype) @ self.weight + self.bias  # (n, p)
        return torch.relu(z) / math.sqrt(self.num_features)


def random_features_sweep(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    evaluate: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    num_features: Sequence[int],
    *,
    seeds: Sequence[int],
    ridges: Sequence[float] = (0.0,),
) -> dict[str, torch.Tensor]:
    r"""Errors of random-features ridge regression against the number p.

    For every seed, one :class:`RandomReLUFeatures` map with
    ``max(num_features)`` features is drawn from ``torch.Generator`` seeded
    with it; each p uses its first p features, and each ridge in ``ridges``
    (0 for the minimum-norm fit) is fitted on ``(x_train, y_train)`` by
    :func:`min_norm_least_squares` (one SVD per p for all ridges). Returns
    ``{"train": ..., name: ...}`` for every ``name`` in ``evaluate``, each a
    (seeds, ridges, p) tensor of :func:`mean_squared_error`.
    """
    where = "random_features_sweep"
    _check_system(where, x_train, y_train)
    check_type(where, "evaluate", evaluate, Mapping, "a dict name -> (x, y)")
    sets = {"train": (x_train, y_train)}
    for name, xy in evaluate.items():
        if name == "train":
            _fail(where, "evaluate", "a dict without the key 'train'", name)
        if not isinstance(xy, tuple) or len(xy) != 2:
            _fail(where, f"evaluate[{name!r}]", "an (x, y) pair", type(xy))
        _check_system(where, *xy)
        sets[name] = xy
    ps = [check_int(where, "num_features[i]", p, low=1) for p in num_features]
    lams = [check_in_range(where, "ridges[i]", lam, low=0.0) for lam in ridges]
    if not ps or not lams or not seeds:
        _fail(where, "num_features, ridges, seeds", "non-empty", "an empty one")
    # targets as (n, k) columns, so that one code path serves (n,) and (n, k)
    sets = {
        n: (x, y if y.ndim == 2 else y[:, None]) for n, (x, y) in sets.items()
    }
    y_train = sets["train"][1]
    shape = (len(seeds), len(lams), len(ps))
    out = {name: torch.empty(shape, dtype=torch.float64) for name in sets}
    for i, seed in enumerate(seeds):
        gen = torch.Generator().manual_seed(check_int(where, "seed", seed, 0))
        phi_all = RandomReLUFeatures(x_train.shape[1], max(ps), generator=gen)
        for k, p in enumerate(ps):
            phi = phi_all.first(p)
            feats = {name: phi(x) for name, (x, _) in sets.items()}  # (N, p)
            u, s, vh = torch.linalg.svd(feats["train"], full_matrices=False)
            uty = u.mT @ y_train.to(u.dtype)  # (r, k)
            # predictions Phi_eval V diag(f(s)) U^T y, with Phi_eval V once
            proj = {name: f @ vh.mT for name, f in feats.items()}
            for j, lam in enumerate(lams):
                coef = _filter(s, len(x_train), p, lam)[:, None] * uty
                for name, (_, y) in sets.items():
                    pred = proj[name] @ coef
                    err = mean_squared_error(pred, y.to(pred.dtype))
                    out[name][i, j, k] = err
    return out


def _check_labelled(where: str, x_name: str, y_name: str, x, y) -> None:
    # a (n, d) floating-point input and its n class labels (int64)
    _floating(where, x_name, x, (2,))
    check_type(where, y_name, y, torch.Tensor, "a torch.Tensor")
    if y.ndim != 1 or y.dtype != torch.long or len(y) != len(x):
        _fail(
            where,
            y_name,
            f"an int64 tensor of {len(x)} class labels, one per row",
            f"{y.dtype} of shape {tuple(y.shape)}",
        )


def width_sweep(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    evaluate: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    widths: Sequence[int],
    *,
    seeds: Sequence[int],
    steps: int,
    lr: float,
) -> dict[str, dict[str, torch.Tensor]]:
    r"""Train one-hidden-layer MLPs of each width; accuracy and loss.

    For every width h, one ``make_mlp([d, h, C])`` per seed (initialized
    from ``torch.Generator`` seeded with it) is trained on all of
    ``(x_train, y_train)`` with full-batch Adam (``lr``) for ``steps``
    steps, the seeds together as one :class:`StackedMLP` (K separate
    trainings). Returns ``{"accuracy": {...}, "loss": {...}}``, each mapping
    ``"train"`` and every name in ``evaluate`` to a (seeds, widths) tensor;
    the loss is the mean cross-entropy.
    """
    where = "width_sweep"
    _check_labelled(where, "x_train", "y_train", x_train, y_train)
    check_type(where, "evaluate", evaluate, Mapping, "a dict name -> (x, y)")
    for name, xy in evaluate.items():
        if name == "train":
            _fail(where, "evaluate", "a dict without the key 'train'", name)
        if not isinstance(xy, tuple) or len(xy) != 2:
            _fail(where, f"evaluate[{name!r}]", "an (x, y) pair", type(xy))
        _check_labelled(
            where, f"evaluate[{name!r}][0]", f"evaluate[{name!r}][1]", *xy
        )
        if xy[0].shape[1] != x_train.shape[1]:
            _fail(
                where,
                f"evaluate[{name!r}][0]",
                f"of shape (m, {x_train.shape[1]}), as 'x_train'",
                tuple(xy[0].shape),
            )
    hs = [check_int(where, "widths[i]", h, low=1) for h in widths]
    seeds = [check_int(where, "seeds[i]", s, low=0) for s in seeds]
    check_int(where, "steps", steps, low=1)
    lr = check_in_range(where, "lr", lr, low=0.0, low_inclusive=False)
    if not hs or not seeds:
        _fail(where, "widths, seeds", "non-empty", "an empty one")
    sets = {"train": (x_train, y_train), **evaluate}
    classes = int(y_train.max().item()) + 1
    n, d = x_train.shape
    out = {
        key: {name: torch.empty(len(seeds), len(hs)) for name in sets}
        for key in ("accuracy", "loss")
    }
    for j, h in enumerate(hs):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        model = StackedMLP(
            [make_mlp([d, h, classes], generator=g) for g in gens]
        )
        fit_members(
            model,
            x_train,
            y_train,
            torch.arange(n).repeat(len(seeds), 1),  # every member: all rows
            optimizer=torch.optim.Adam(model.parameters(), lr=lr),
            epochs=steps,
            batch_size=n,  # full batch: one step an epoch
            generator=torch.Generator().manual_seed(0),
        )
        with torch.no_grad():
            for name, (x, y) in sets.items():
                logits = model(x)  # (K, N, C)
                hits = (logits.argmax(dim=-1) == y).float().mean(dim=1)
                out["accuracy"][name][:, j] = hits
                loss = F.cross_entropy(
                    logits.transpose(1, 2),  # (K, C, N)
                    y.expand(len(seeds), -1),
                    reduction="none",
                ).mean(dim=1)
                out["loss"][name][:, j] = loss
    return out
