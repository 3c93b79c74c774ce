r"""Label smoothing (noise on the targets) and the calibration it is judged by.

Book: Part I, chapter 5, "Noise robustness".

Label smoothing replaces the one-hot target of a :math:`k`-class softmax by a
softer distribution :math:`q`. Two conventions are in use:

.. math::

    \text{notes (Goodfellow et al.)}:\quad
    q_j = \begin{cases} 1-\varepsilon & j = y\\
    \varepsilon/(k-1) & j \ne y\end{cases}
    \qquad
    \text{PyTorch (Szegedy et al.)}:\quad
    q = (1-\varepsilon)\,e_y + \varepsilon/k .

They are the same family: the notes' :math:`\varepsilon` equals PyTorch's
:math:`\varepsilon' = \varepsilon\,k/(k-1)` (:func:`notes_to_torch_epsilon`).
PyTorch allows :math:`\varepsilon' \in [0, 1]`, so the notes' form allows
:math:`\varepsilon \in [0, (k-1)/k]` (at the upper end the target is uniform).

Calibration: a classifier is calibrated when, among the examples it predicts
with confidence :math:`p`, a fraction :math:`p` is right.
:func:`expected_calibration_error` measures the gap with equal-width
confidence bins (Guo et al. 2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlcourse._validation import (
    check_choice,
    check_in_range,
    check_int,
    check_real,
    check_type,
)

__all__ = [
    "smoothed_targets",
    "notes_to_torch_epsilon",
    "label_smoothing_cross_entropy",
    "Reliability",
    "expected_calibration_error",
]

FORMS = ("torch", "notes")


def _check_labels(where: str, y: torch.Tensor, num_classes: int) -> None:
    check_type(where, "y", y, torch.Tensor, "a torch.Tensor")
    if y.ndim != 1 or y.dtype != torch.long:
        raise ValueError(
            f"{where}: 'y' must be a 1-D tensor of class indices (int64); "
            f"got shape {tuple(y.shape)}, {y.dtype}."
        )
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"{where}: 'y' must hold classes in [0, {num_classes - 1}]; "
            f"got {y.min().item()}..{y.max().item()}."
        )


def _check_eps(where: str, eps: float, form: str, num_classes: int) -> float:
    """``eps`` in [0, 1] (PyTorch's form) or in [0, (k-1)/k] (the notes')."""
    check_choice(where, "form", form, FORMS)
    if form == "torch":  # as F.cross_entropy: eps = 1 gives uniform targets
        return check_in_range(where, "eps", eps, 0.0, 1.0)
    # The notes' eps is PyTorch's eps k/(k-1), which must not exceed 1; beyond
    # (k-1)/k the true class would get less mass than each wrong class.
    x = check_real(where, "eps", eps)
    k = num_classes
    if not 0.0 <= x <= (k - 1) / k:
        raise ValueError(
            f"{where}: 'eps' must be in [0, (k-1)/k] = [0, {(k - 1) / k:.4g}]"
            f" for form='notes' with k = {k} classes (PyTorch's"
            f" label_smoothing = eps*k/(k-1) must not exceed 1); got {eps!r}."
        )
    return x


def smoothed_targets(
    y: torch.Tensor, *, num_classes: int, eps: float, form: str = "torch"
) -> torch.Tensor:
    r"""The smoothed target distributions, one row per label, shape ``(n, k)``.

    .. math::

        \text{form="notes"}:\
        q = (1-\varepsilon)\,e_y + \tfrac{\varepsilon}{k-1}(1 - e_y),
        \qquad
        \text{form="torch"}:\
        q = (1-\varepsilon)\,e_y + \tfrac{\varepsilon}{k}\mathbf 1 .

    Each row sums to 1. ``eps`` must be in [0, 1] for ``"torch"`` (as in
    ``torch.nn.functional.cross_entropy``) and in [0, (k-1)/k] for
    ``"notes"`` (where the target becomes uniform).
    """
    check_int("smoothed_targets", "num_classes", num_classes, low=2)
    eps = _check_eps("smoothed_targets", eps, form, num_classes)
    _check_labels("smoothed_targets", y, num_classes)
    onehot = F.one_hot(y, num_classes).to(torch.get_default_dtype())
    k = num_classes
    if form == "notes":
        # 1 - eps on the true class, eps / (k - 1) on each of the k - 1 others
        return (1.0 - eps) * onehot + eps / (k - 1) * (1.0 - onehot)
    # (1 - eps) onehot + eps / k
    return (1.0 - eps) * onehot + eps / k


def notes_to_torch_epsilon(eps: float, *, num_classes: int) -> float:
    r"""PyTorch's ``label_smoothing`` that gives the notes' targets.

    Both forms give the true class :math:`1-\varepsilon_\text{notes}` exactly
    when :math:`1-\varepsilon' + \varepsilon'/k = 1-\varepsilon_\text{notes}`,
    i.e. :math:`\varepsilon' = \varepsilon_\text{notes}\,k/(k-1)`. That is
    at most 1 (PyTorch's range) for
    :math:`\varepsilon_\text{notes} \le (k-1)/k`; a larger ``eps`` raises
    ``ValueError`` (its notes' target would give the true class *less* mass
    than each wrong one).
    """
    check_int("notes_to_torch_epsilon", "num_classes", num_classes, low=2)
    eps = _check_eps("notes_to_torch_epsilon", eps, "notes", num_classes)
    # min: eps = (k-1)/k must map to 1, not to 1 + rounding
    return min(1.0, eps * num_classes / (num_classes - 1))


def label_smoothing_cross_entropy(
    logits: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    form: str = "torch",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Cross-entropy against smoothed targets.

    The loss of one example is
    :math:`-\sum_j q_j \log\operatorname{softmax}(z)_j` with :math:`q` from
    :func:`smoothed_targets`. With ``form="torch"`` this equals
    ``F.cross_entropy(logits, y, label_smoothing=eps, reduction=...)``
    (without class weights or ``ignore_index``). ``reduction`` is ``"mean"``,
    ``"sum"`` or ``"none"`` (one loss per example).
    """
    where = "label_smoothing_cross_entropy"
    check_type(where, "logits", logits, torch.Tensor, "a torch.Tensor")
    check_type(where, "y", y, torch.Tensor, "a torch.Tensor")
    check_choice(where, "reduction", reduction, ("mean", "sum", "none"))
    check_choice(where, "form", form, FORMS)
    if logits.ndim != 2 or logits.shape[1] < 2 or logits.shape[0] != y.shape[0]:
        raise ValueError(
            f"{where}: 'logits' must be (n, k) with k >= 2 and 'y' (n,); "
            f"got {tuple(logits.shape)} and {tuple(y.shape)}."
        )
    k = logits.shape[1]
    eps = _check_eps(where, eps, form, k)
    q = smoothed_targets(y, num_classes=k, eps=eps, form=form)
    losses = -(q.to(logits.dtype) * torch.log_softmax(logits, dim=1)).sum(1)
    if reduction == "none":
        return losses  # (n,)
    return losses.sum() if reduction == "sum" else losses.mean()


@dataclass
class Reliability:
    """Data of a reliability diagram: one entry per confidence bin.

    Bin ``b`` is ``(edges[b], edges[b+1]]``. ``confidence`` and ``accuracy``
    are the bin means (NaN for an empty bin) and ``count`` the number of
    examples in each bin.
    """

    edges: torch.Tensor  # (n_bins + 1,)
    confidence: torch.Tensor  # (n_bins,)
    accuracy: torch.Tensor  # (n_bins,)
    count: torch.Tensor  # (n_bins,)


def expected_calibration_error(
    probs: torch.Tensor, y: torch.Tensor, *, n_bins: int = 15
) -> tuple[float, Reliability]:
    r"""ECE with equal-width confidence bins, and the reliability-diagram data.

    The confidence of a prediction is :math:`\hat p_i = \max_j p_{ij}`. With
    bins :math:`B_b = \bigl(\tfrac{b-1}{M}, \tfrac bM\bigr]` (Guo et al. 2017),

    .. math::

        \mathrm{ECE} = \sum_{b=1}^{M} \frac{\lvert B_b\rvert}{n}\,
        \bigl\lvert \operatorname{acc}(B_b)
        - \operatorname{conf}(B_b)\bigr\rvert .

    ``probs`` are probabilities (rows of a softmax), shape ``(n, k)``; ``y``
    the labels.
    """
    where = "expected_calibration_error"
    check_type(where, "probs", probs, torch.Tensor, "a torch.Tensor")
    check_type(where, "y", y, torch.Tensor, "a torch.Tensor")
    check_int(where, "n_bins", n_bins, low=1)
    if (
        probs.ndim != 2
        or y.ndim != 1
        or probs.shape[0] != y.shape[0]
        or len(y) == 0
    ):
        raise ValueError(
            f"{where}: 'probs' must be (n, k) and 'y' (n,) with the same"
            f" n >= 1; got {tuple(probs.shape)} and {tuple(y.shape)}."
        )
    if probs.min() < 0 or not torch.allclose(
        probs.sum(1), torch.ones((), dtype=probs.dtype), atol=1e-4
    ):
        raise ValueError(
            f"{where}: 'probs' must be non-negative rows summing to 1"
            " (apply softmax to logits)."
        )
    conf, pred = probs.max(dim=1)
    correct = (pred == y).to(probs.dtype)
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=probs.dtype)
    # bin b holds edges[b] < conf <= edges[b + 1]
    bins = torch.bucketize(conf, edges[1:-1], right=False)
    count = torch.bincount(bins, minlength=n_bins)
    zeros = torch.zeros(n_bins, dtype=probs.dtype)
    conf_sum = zeros.index_add(0, bins, conf)
    acc_sum = zeros.index_add(0, bins, correct)
    # sum_b |B_b|/n |acc(B_b) - conf(B_b)| = sum_b |acc_sum_b - conf_sum_b| / n
    ece = ((acc_sum - conf_sum).abs().sum() / len(y)).item()
    nan = torch.tensor(float("nan"), dtype=probs.dtype)
    nonempty = count.to(probs.dtype).where(count > 0, nan)
    return ece, Reliability(
        edges, conf_sum / nonempty, acc_sum / nonempty, count
    )
