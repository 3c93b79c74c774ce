r"""Semi-supervised learning: pseudo-labels above a confidence threshold, and
one trunk shared by a reconstruction (generative) loss and a classification
(discriminative) loss.

Book: Part I, chapter 6, "Semi-supervised learning".

Pseudo-labelling (self-training, Lee 2013) turns confident predictions on
unlabelled inputs into training labels. The shared model trades the supervised
criterion :math:`-\log P(y\mid x)` on labelled inputs against a reconstruction
error on *all* inputs (a stand-in for :math:`-\log P(x)`), computed from the
same hidden code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse._validation import _fail, check_in_range, check_int, check_type
from dlcourse.nn.mlp import make_mlp

__all__ = [
    "select_confident",
    "pseudo_label",
    "ReconstructionClassifier",
    "semi_supervised_loss",
    "fit_semi_supervised",
]


def _check_rows(
    where: str, names: Sequence[str], tensors: Sequence[torch.Tensor]
) -> None:
    for name, t in zip(names, tensors):
        check_type(where, name, t, torch.Tensor, "a torch.Tensor")
    n = {t.shape[0] for t in tensors}
    if len(n) != 1:
        rows = ", ".join(
            f"{name}: {t.shape[0]}" for name, t in zip(names, tensors)
        )
        raise ValueError(
            f"{where}: {' and '.join(repr(s) for s in names)} must have "
            f"the same number of rows; got {rows}."
        )


def select_confident(
    probs: torch.Tensor, *, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Which rows to pseudo-label, and with which class.

    .. math::

        \hat y_i = \arg\max_k p_{ik}, \qquad
        \text{keep } i \iff \max_k p_{ik} \ge \tau .

    Parameters
    ----------
    probs : torch.Tensor
        (n, k) class probabilities, each row summing to 1 (softmax outputs).
    threshold : float
        The confidence threshold :math:`\tau` in [0, 1]. ``0`` keeps every row;
        ``1`` keeps only rows with a probability of exactly 1.

    Returns
    -------
    (mask, labels) : (n,) bool and (n,) int64 tensors
        ``labels`` is given for every row, kept or not.
    """
    check_type(
        "select_confident", "probs", probs, torch.Tensor, "a torch.Tensor"
    )
    tau = check_in_range("select_confident", "threshold", threshold, 0.0, 1.0)
    if probs.ndim != 2 or probs.shape[1] < 1:
        _fail(
            "select_confident",
            "probs",
            "a 2-D (n, k) tensor",
            tuple(probs.shape),
        )
    sums = probs.sum(dim=1)
    if (probs < 0).any() or not torch.allclose(
        sums, torch.ones_like(sums), atol=1e-4
    ):
        _fail(
            "select_confident",
            "probs",
            "non-negative with rows summing to 1",
            "a row sum of %.4g" % sums[(sums - 1).abs().argmax()].item(),
        )
    confidence, labels = probs.max(dim=1)
    return confidence >= tau, labels


def pseudo_label(
    train: Callable[[torch.Tensor, torch.Tensor, torch.Generator], nn.Module],
    x_labelled: torch.Tensor,
    y_labelled: torch.Tensor,
    x_unlabelled: torch.Tensor,
    *,
    threshold: float,
    rounds: int,
    generator: torch.Generator,
    y_unlabelled: torch.Tensor | None = None,
    evaluate: Callable[[nn.Module], float] | None = None,
    initial_model: nn.Module | None = None,
) -> tuple[nn.Module, dict[str, list[float]]]:
    r"""Self-training: retrain on the labelled set plus confident pseudo-labels.

    Round 0 trains on the labelled set :math:`L` alone. After round :math:`r`
    the model labels the *whole* pool :math:`U` and keeps
    :math:`S_{r+1} = \{(x, \hat y(x)) : x \in U,\ \max_k p_k(x) \ge \tau\}`
    (:func:`select_confident`); round :math:`r+1` trains a fresh model,
    ``train(x, y, generator)``, on :math:`L \cup S_{r+1}`. Because the pool is
    relabelled every round, a pseudo-label can change or be dropped later.

    ``initial_model``, if given, is a model already trained on :math:`L`: it is
    used as round 0 instead of calling ``train`` (so that one labelled-only
    model can serve several thresholds); ``train`` is then called ``rounds``
    times, not ``rounds + 1``.

    ``y_unlabelled`` is used only to report how many pseudo-labels are right,
    never for training. Returns the last model and ``history``, one entry per
    round ``r``: ``n_pseudo`` (:math:`|S_r|`, 0 in round 0),
    ``pseudo_accuracy`` (share of :math:`S_r` labelled correctly; NaN if
    unknown or empty) and ``score`` (``evaluate(model_r)``, NaN if no
    ``evaluate``).
    """
    where = "pseudo_label"
    if not callable(train):
        raise TypeError(
            f"{where}: 'train' must be a callable; got {type(train).__name__}."
        )
    _check_rows(where, ("x_labelled", "y_labelled"), (x_labelled, y_labelled))
    check_type(
        where, "x_unlabelled", x_unlabelled, torch.Tensor, "a torch.Tensor"
    )
    if y_unlabelled is not None:
        _check_rows(
            where,
            ("x_unlabelled", "y_unlabelled"),
            (x_unlabelled, y_unlabelled),
        )
    tau = check_in_range(where, "threshold", threshold, 0.0, 1.0)
    check_int(where, "rounds", rounds, low=0)
    check_type(
        where, "generator", generator, torch.Generator, "a torch.Generator"
    )
    if evaluate is not None and not callable(evaluate):
        raise TypeError(
            f"{where}: 'evaluate' must be a callable or None; "
            f"got {type(evaluate).__name__}."
        )
    if initial_model is not None:
        check_type(
            where,
            "initial_model",
            initial_model,
            nn.Module,
            "a torch.nn.Module or None",
        )
    history: dict[str, list[float]] = {
        "n_pseudo": [],
        "pseudo_accuracy": [],
        "score": [],
    }
    x_pseudo, y_pseudo = x_unlabelled[:0], y_labelled[:0]
    mask = torch.zeros(x_unlabelled.shape[0], dtype=torch.bool)
    for r in range(rounds + 1):
        if r == 0 and initial_model is not None:
            model = initial_model
        else:
            model = train(
                torch.cat([x_labelled, x_pseudo]),
                torch.cat([y_labelled, y_pseudo]),
                generator,
            )
        right = math.nan
        if y_unlabelled is not None and len(y_pseudo) > 0:
            right = (y_pseudo == y_unlabelled[mask]).float().mean().item()
        history["n_pseudo"].append(len(y_pseudo))
        history["pseudo_accuracy"].append(right)
        history["score"].append(
            math.nan if evaluate is None else float(evaluate(model))
        )
        if r == rounds:
            break
        was_training = model.training
        model.eval()
        with torch.no_grad():
            probs = F.softmax(model(x_unlabelled), dim=1)  # (n_u, k)
        model.train(was_training)
        mask, labels = select_confident(probs, threshold=tau)
        x_pseudo, y_pseudo = x_unlabelled[mask], labels[mask]
    return model, history


class ReconstructionClassifier(nn.Module):
    r"""An encoder shared by a classification head and a decoder head.

    :math:`h = \mathrm{ReLU}(\mathrm{MLP}(x))`, logits :math:`= W_c h + b_c`,
    reconstruction :math:`\hat x = W_d h + b_d`. ``forward`` returns the
    logits, so :func:`dlcourse.training.accuracy` works on it;
    :meth:`reconstruct` returns :math:`\hat x`.
    """

    def __init__(
        self,
        n_in: int,
        hidden: Sequence[int],
        n_classes: int,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        where = "ReconstructionClassifier"
        check_int(where, "n_in", n_in, low=1)
        check_type(
            where,
            "hidden",
            hidden,
            (list, tuple),
            "a non-empty list or tuple of ints",
        )
        if len(hidden) == 0:
            _fail(
                where,
                "hidden",
                "a non-empty list or tuple of ints",
                list(hidden),
            )
        check_int(where, "n_classes", n_classes, low=2)
        self.encoder = nn.Sequential(
            make_mlp([n_in, *hidden], generator=generator), nn.ReLU()
        )
        self.classifier = make_mlp([hidden[-1], n_classes], generator=generator)
        self.decoder = make_mlp([hidden[-1], n_in], generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(x))  # (B, n_classes)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # (B, n_in)


def semi_supervised_loss(
    model: ReconstructionClassifier,
    x_labelled: torch.Tensor,
    y_labelled: torch.Tensor,
    x_unlabelled: torch.Tensor,
    *,
    lam: float,
) -> dict[str, torch.Tensor]:
    r"""Classification on labelled rows plus :math:`\lambda` times
    reconstruction on all rows.

    .. math::

        \mathcal L = \frac{1}{n_L}\sum_{i\in L} -\log p(y_i\mid x_i)
        \;+\; \lambda\,\frac{1}{(n_L + n_U)\,d}
        \sum_{i\in L\cup U}\lVert \hat x_i - x_i\rVert^2 .

    Returns ``{"loss", "classification", "reconstruction"}`` (the last two
    unweighted).
    """
    where = "semi_supervised_loss"
    check_type(
        where,
        "model",
        model,
        ReconstructionClassifier,
        "a ReconstructionClassifier",
    )
    _check_rows(where, ("x_labelled", "y_labelled"), (x_labelled, y_labelled))
    check_type(
        where, "x_unlabelled", x_unlabelled, torch.Tensor, "a torch.Tensor"
    )
    lam = check_in_range(where, "lam", lam, low=0.0)
    x_all = torch.cat([x_labelled, x_unlabelled])  # (n_L + n_U, d)
    h = model.encoder(x_all)  # one code for both heads: (n_L + n_U, k)
    logits = model.classifier(h[: x_labelled.shape[0]])  # (n_L, n_classes)
    classification = F.cross_entropy(logits, y_labelled)
    reconstruction = F.mse_loss(model.decoder(h), x_all)
    return {
        "loss": classification + lam * reconstruction,
        "classification": classification,
        "reconstruction": reconstruction,
    }


def fit_semi_supervised(
    model: ReconstructionClassifier,
    x_labelled: torch.Tensor,
    y_labelled: torch.Tensor,
    x_unlabelled: torch.Tensor,
    *,
    lam: float,
    optimizer: torch.optim.Optimizer,
    steps: int,
    batch_size: int,
    generator: torch.Generator,
) -> dict[str, list[float]]:
    r"""Minimize :func:`semi_supervised_loss` for ``steps`` steps.

    Each step draws ``batch_size`` labelled and ``batch_size`` unlabelled rows
    without replacement (all rows of a set smaller than that). With ``lam = 0``
    the decoder gets a zero gradient and this is plain supervised training on
    the labelled rows. Returns the per-step values of ``loss``,
    ``classification`` and ``reconstruction``.
    """
    where = "fit_semi_supervised"
    check_type(
        where,
        "model",
        model,
        ReconstructionClassifier,
        "a ReconstructionClassifier",
    )
    _check_rows(where, ("x_labelled", "y_labelled"), (x_labelled, y_labelled))
    check_type(
        where, "x_unlabelled", x_unlabelled, torch.Tensor, "a torch.Tensor"
    )
    check_in_range(where, "lam", lam, low=0.0)
    check_type(
        where,
        "optimizer",
        optimizer,
        torch.optim.Optimizer,
        "a torch.optim.Optimizer",
    )
    check_int(where, "steps", steps, low=1)
    check_int(where, "batch_size", batch_size, low=1)
    check_type(
        where, "generator", generator, torch.Generator, "a torch.Generator"
    )
    history: dict[str, list[float]] = {
        "loss": [],
        "classification": [],
        "reconstruction": [],
    }
    model.train()
    for _ in range(steps):
        i = torch.randperm(len(x_labelled), generator=generator)[:batch_size]
        j = torch.randperm(len(x_unlabelled), generator=generator)[:batch_size]
        parts = semi_supervised_loss(
            model, x_labelled[i], y_labelled[i], x_unlabelled[j], lam=lam
        )
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
        for key, value in parts.items():
            history[key].append(value.item())
    return history
