r"""Dropout: inverted dropout, the exact mask ensemble, the linear penalty.

Book: Part I, chapter 12, "Dropout".

* **Inverted dropout** (:func:`dropout`, :class:`Dropout`): during training
  every unit is kept with probability :math:`1-p` and the kept ones are scaled
  by :math:`1/(1-p)`,

  .. math::

      \tilde h = \frac{m\odot h}{1-p}, \qquad
      m_j \sim \operatorname{Bernoulli}(1-p) \text{ independently},

  so that :math:`\mathbb E[\tilde h] = h` and a test-time pass needs no
  change. :math:`p` is the *drop* probability, as in ``torch.nn.Dropout``,
  whose twin, draw for draw, is :class:`Dropout`.
* **The mask ensemble** (:func:`all_masks`, :func:`mask_probabilities`,
  :func:`mask_ensemble`, :func:`mc_dropout`): the predictions of every
  sub-network, averaged arithmetically or geometrically, exactly (all
  :math:`2^d` masks of a small layer) or by Monte-Carlo sampling.
* **Linear regression** (:func:`linear_dropout_penalty`,
  :func:`linear_dropout_loss_by_enumeration`, :func:`linear_dropout_solution`):
  inverted dropout on the inputs of :math:`\hat y = Xw` has the expected loss
  :math:`\lVert y - Xw\rVert^2 + \frac{p}{1-p}\sum_j w_j^2 (X^\top X)_{jj}`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dlcourse._validation import (
    check_generator,
    check_in_range,
    check_int,
    check_type,
)

__all__ = [
    "dropout",
    "Dropout",
    "all_masks",
    "mask_probabilities",
    "mask_ensemble",
    "mc_dropout",
    "linear_dropout_penalty",
    "linear_dropout_loss_by_enumeration",
    "linear_dropout_solution",
]

MAX_MASK_UNITS = 20  # 2**20 masks: beyond that, enumeration is not "small"


def _check_p(where: str, p):
    """A drop probability in [0, 1): a number, or a tensor of them."""
    if isinstance(p, torch.Tensor):
        if not p.is_floating_point():
            raise TypeError(
                f"{where}: 'p' must be a real number or a floating-point "
                f"tensor; got a tensor of dtype {p.dtype}."
            )
        if bool(((p >= 0) & (p < 1)).all()):
            return p
        raise ValueError(
            f"{where}: 'p' must be in [0, 1) (a drop probability; 1 would "
            "drop every unit and divide by 0); got a tensor with values in "
            f"[{p.min().item():g}, {p.max().item():g}]."
        )
    check_in_range(where, "p", p, 0.0, 1.0, high_inclusive=False)
    return float(p)


def dropout(
    x: torch.Tensor,
    p: float | torch.Tensor = 0.5,
    *,
    training: bool = True,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Inverted dropout: :math:`\tilde x = x \odot m \cdot \frac{1}{1-p}`.

    Parameters
    ----------
    x : Tensor
        Inputs or hidden activations, any shape.
    p : float or Tensor
        Drop probability in [0, 1), or a tensor of them broadcastable against
        ``x`` (one per model of a stacked ensemble, e.g. shape (M, 1, 1)).
    training : bool
        If False, return ``x`` itself: inverted dropout needs no change at
        test time (the weight-scaling rule is built into the training pass).
    mask : Tensor or None
        A given keep mask of 0/1 (or bool), broadcastable against ``x``;
        drawn when None.
    generator : torch.Generator or None
        Source of the mask. With None the default generator draws it exactly
        as ``torch.nn.functional.dropout`` does, so both give the same output
        after the same ``torch.manual_seed``.
    """
    check_type("dropout", "x", x, torch.Tensor, "a torch.Tensor")
    p = _check_p("dropout", p)
    check_type("dropout", "training", training, bool, "a bool")
    check_generator("dropout", generator)
    if not training:
        return x
    if mask is None and isinstance(p, float):
        # m_j ~ Bernoulli(1 - p), drawn as torch's native_dropout draws it
        mask = torch.empty_like(x).bernoulli_(1 - p, generator=generator)
    elif mask is None:
        # one rate per slice: m_j = [u_j >= p], u_j ~ U[0, 1), P(keep) = 1 - p
        u = torch.rand(x.shape, dtype=x.dtype, generator=generator)
        mask = (u >= p).to(x.dtype)
    else:
        check_type("dropout", "mask", mask, torch.Tensor, "a torch.Tensor")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(
                "dropout: 'mask' must hold only 0 and 1 (keep or drop); got "
                f"values in [{mask.min().item():g}, {mask.max().item():g}]."
            )
        mask = mask.to(x.dtype)
    # x * m / (1 - p), in torch's order: (x * m) * (1 / (1 - p))
    return x * mask * (1.0 / (1.0 - p))


class Dropout(nn.Module):
    """The twin of ``torch.nn.Dropout``: :func:`dropout` when training.

    ``Dropout(p)`` zeroes each entry with probability ``p`` and scales the
    rest by ``1 / (1 - p)`` in training mode, and is the identity after
    ``.eval()``. Unlike PyTorch, ``p = 1`` is refused (it would drop every
    unit and divide by zero), and a ``generator`` may be given.
    """

    def __init__(
        self, p: float = 0.5, *, generator: torch.Generator | None = None
    ):
        super().__init__()
        self.p = _check_p("Dropout", p)
        check_generator("Dropout", generator)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(
            x, self.p, training=self.training, generator=self.generator
        )

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


def all_masks(d: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """All :math:`2^d` keep masks of ``d`` units, shape (2**d, d).

    Row ``k`` holds the binary digits of ``k`` (unit 0 is the lowest bit),
    so row 0 drops every unit and the last row keeps them all.
    """
    check_int("all_masks", "d", d, low=1)
    if d > MAX_MASK_UNITS:
        raise ValueError(
            f"all_masks: 'd' must be <= {MAX_MASK_UNITS} (2**d masks are "
            f"enumerated); got {d}."
        )
    k = torch.arange(2**d).unsqueeze(1)
    return ((k >> torch.arange(d)) & 1).to(dtype)


def mask_probabilities(masks: torch.Tensor, p: float) -> torch.Tensor:
    r""":math:`P(\mu) = \prod_j (1-p)^{\mu_j} p^{1-\mu_j}` for each row."""
    check_type(
        "mask_probabilities", "masks", masks, torch.Tensor, "a torch.Tensor"
    )
    p = _check_p("mask_probabilities", p)
    kept = masks.to(torch.float64).sum(dim=-1)
    d = masks.shape[-1]
    # (1 - p)^{|mu|} * p^{d - |mu|}
    return (1 - p) ** kept * p ** (d - kept)


ForwardFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def mask_ensemble(
    forward: ForwardFn, x: torch.Tensor, d: int, p: float, *, chunk: int = 256
) -> dict[str, torch.Tensor]:
    r"""The exact ensemble of all :math:`2^d` dropout sub-networks.

    ``forward(x, scaled_masks)`` must return logits of shape (M, N, K) for
    scaled masks :math:`\mu/(1-p)` of shape (M, 1, d). Returns, in float64,

    .. math::

        p_\text{arith}(y\mid x) = \sum_\mu P(\mu)\, p(y\mid x,\mu), \qquad
        p_\text{geo}(y\mid x) \propto \prod_\mu p(y\mid x,\mu)^{P(\mu)},

    (``"arithmetic"``, ``"geometric"``, each (N, K)), the geometric mean
    renormalized over :math:`y`. The lecture notes' :math:`2^d`-th root of the
    product is this weighting at :math:`p = 1/2` only.
    """
    _check_forward("mask_ensemble", forward, x)
    check_int("mask_ensemble", "chunk", chunk, low=1)
    p = _check_p("mask_ensemble", p)
    masks = all_masks(d)
    weights = mask_probabilities(masks, p)
    arith = geo_log = 0.0
    for start in range(0, len(masks), chunk):
        m, w = masks[start : start + chunk], weights[start : start + chunk]
        scaled = (m / (1 - p)).to(x.dtype).unsqueeze(1)  # (M, 1, d)
        log_probs = torch.log_softmax(forward(x, scaled).double(), dim=-1)
        w = w.view(-1, 1, 1)
        arith = arith + (w * log_probs.exp()).sum(0)  # sum P(mu) p(y|x,mu)
        geo_log = geo_log + (w * log_probs).sum(0)  # sum P(mu) log p(y|x,mu)
    return {"arithmetic": arith, "geometric": torch.softmax(geo_log, dim=-1)}


def mc_dropout(
    forward: ForwardFn,
    x: torch.Tensor,
    d: int,
    p: float,
    *,
    samples: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Monte-Carlo dropout: the mean of ``samples`` sub-networks' predictions.

    Each pass draws an independent mask for every example, as a network in
    training mode does: :math:`\frac1S\sum_s p(y\mid x, \mu^{(s)})`, an
    unbiased estimate of the arithmetic mean of :func:`mask_ensemble`.
    ``forward`` gets scaled masks of shape (samples, N, d). Returns (N, K).
    """
    _check_forward("mc_dropout", forward, x)
    check_int("mc_dropout", "d", d, low=1)
    check_int("mc_dropout", "samples", samples, low=1)
    p = _check_p("mc_dropout", p)
    check_generator("mc_dropout", generator)
    keep = torch.full((samples, x.shape[0], d), 1 - p, dtype=x.dtype)
    scaled = torch.bernoulli(keep, generator=generator) / (1 - p)
    return torch.softmax(forward(x, scaled).double(), dim=-1).mean(0)


def _check_forward(where, forward, x):
    if not callable(forward):
        raise TypeError(
            f"{where}: 'forward' must be a callable (x, scaled_masks) -> "
            f"logits; got {type(forward).__name__}."
        )
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    if x.ndim != 2:
        raise ValueError(
            f"{where}: 'x' must be (N, features); got shape {tuple(x.shape)}."
        )


def _check_linear(where, X, y=None, w=None):
    check_type(where, "X", X, torch.Tensor, "a torch.Tensor")
    for name, v in (("y", y), ("w", w)):
        if v is not None:
            check_type(where, name, v, torch.Tensor, "a torch.Tensor")
    n_ok = y is None or (y.ndim == 1 and len(y) == X.shape[0])
    d_ok = w is None or (w.ndim == 1 and len(w) == X.shape[-1])
    if X.ndim != 2 or not (n_ok and d_ok):
        shapes = [tuple(v.shape) for v in (X, y, w) if v is not None]
        raise ValueError(
            f"{where}: 'X' must be (n, d), 'y' (n,) and 'w' (d,); "
            f"got shapes {shapes}."
        )


def linear_dropout_penalty(
    X: torch.Tensor, w: torch.Tensor, p: float
) -> torch.Tensor:
    r""":math:`\frac{p}{1-p}\sum_j w_j^2\,(X^\top X)_{jj}`.

    What inverted dropout on the inputs adds to the expected squared error
    :math:`\lVert y - Xw\rVert^2` (a sum over examples, not a mean).
    """
    _check_linear("linear_dropout_penalty", X, w=w)
    p = _check_p("linear_dropout_penalty", p)
    # p / (1 - p) * sum_j w_j^2 * sum_i x_ij^2
    return p / (1 - p) * (w.pow(2) * X.pow(2).sum(0)).sum()


def linear_dropout_loss_by_enumeration(
    X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, p: float
) -> torch.Tensor:
    r"""The expected dropout loss, averaged over every mask of every example.

    .. math::

        \sum_i \sum_\mu P(\mu)\Bigl(y_i - \sum_j \frac{\mu_j}{1-p}
        x_{ij} w_j\Bigr)^2
        \quad\text{(independent masks per example, } 2^d \text{ each).}
    """
    _check_linear("linear_dropout_loss_by_enumeration", X, y, w)
    p = _check_p("linear_dropout_loss_by_enumeration", p)
    masks = all_masks(X.shape[1], dtype=X.dtype)  # (2^d, d)
    weights = mask_probabilities(masks, p).to(X.dtype)
    pred = (X * w) @ (masks / (1 - p)).T  # (n, 2^d): one column per mask
    return ((y.unsqueeze(1) - pred).pow(2) @ weights).sum()


def linear_dropout_solution(
    X: torch.Tensor, y: torch.Tensor, p: float
) -> torch.Tensor:
    r"""The minimizer of the expected dropout loss of a linear model.

    .. math::

        w^\star = \Bigl(X^\top X + \tfrac{p}{1-p}\,
        \operatorname{diag}(X^\top X)\Bigr)^{-1} X^\top y ,

    ridge regression with a coefficient :math:`\frac{p}{1-p}(X^\top X)_{jj}`
    of its own for each feature.
    """
    _check_linear("linear_dropout_solution", X, y)
    p = _check_p("linear_dropout_solution", p)
    gram = X.T @ X
    penalty = p / (1 - p) * torch.diag(torch.diagonal(gram))
    return torch.linalg.solve(gram + penalty, X.T @ y)
