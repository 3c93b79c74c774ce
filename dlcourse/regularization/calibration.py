r"""Label smoothing (noise on the targets) and the calibration it is judged by.

Book: Part I, chapter 5, "Noise robustness".

Label smoothing replaces the one-hot target of a :math:`k`-class softmax by a
softer distribution :math:`q`. Two conventions are in use:

.. math::

    \text{notes (Goodfellow et al.)}:\quad q_j = \begin{cases} 1-\varepsilon & j = y\\
    \varepsilon/(k-1) & j \ne y\end{cases}
    \qquad
    \text{PyTorch (Szegedy et al.)}:\quad q = (1-\varepsilon)\,e_y + \varepsilon/k .

They are the same family: the notes' :math:`\varepsilon` equals PyTorch's
:math:`\varepsilon' = \varepsilon\,k/(k-1)` (:func:`notes_to_torch_epsilon`).

Calibration: a classifier is calibrated when, among the examples it predicts with
confidence :math:`p`, a fraction :math:`p` is right. :func:`expected_calibration_error`
measures the gap with equal-width confidence bins (Guo et al. 2017).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlcourse._validation import check_choice, check_in_range, check_int, check_type

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
        raise ValueError(f"{where}: 'y' must be a 1-D tensor of class indices (int64); got shape {tuple(y.shape)}, {y.dtype}.")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{where}: 'y' must hold classes in [0, {num_classes - 1}]; got {y.min().item()}..{y.max().item()}.")


def _check_eps(where: str, eps: float, form: str) -> float:
    check_choice(where, "form", form, FORMS)
    # PyTorch accepts eps = 1 (uniform targets); in the notes' form eps = 1 puts 0 on the true class
    return check_in_range(where, "eps", eps, 0.0, 1.0, high_inclusive=form == "torch")


def smoothed_targets(
    y: torch.Tensor, *, num_classes: int, eps: float, form: str = "torch"
) -> torch.Tensor:
    r"""The smoothed target distributions, one row per label, shape ``(n, k)``.

    .. math::

        \text{form="notes"}:\ q = (1-\varepsilon)\,e_y + \tfrac{\varepsilon}{k-1}(1 - e_y),
        \qquad
        \text{form="torch"}:\ q = (1-\varepsilon)\,e_y + \tfrac{\varepsilon}{k}\mathbf 1 .

    Each row sums to 1. ``eps`` must be in [0, 1] for ``"torch"`` (as in
    ``torch.nn.functional.cross_entropy``) and in [0, 1) for ``"notes"``.
    """
    check_int("smoothed_targets", "num_classes", num_classes, low=2)
    eps = _check_eps("smoothed_targets", eps, form)
    _check_labels("smoothed_targets", y, num_classes)
    onehot = F.one_hot(y, num_classes).to(torch.get_default_dtype())
    if form == "notes":
        # 1 - eps on the true class, eps / (k - 1) on each of the k - 1 others
        return (1.0 - eps) * onehot + eps / (num_classes - 1) * (1.0 - onehot)
    # (1 - eps) onehot + eps / k
    return (1.0 - eps) * onehot + eps / num_classes


def notes_to_torch_epsilon(eps: float, *, num_classes: int) -> float:
    r"""PyTorch's ``label_smoothing`` that gives the notes' targets: :math:`\varepsilon k/(k-1)`.

    Both forms give the true class :math:`1-\varepsilon_\text{notes}` exactly when
    :math:`1-\varepsilon' + \varepsilon'/k = 1-\varepsilon_\text{notes}`. The result
    exceeds 1 (outside PyTorch's range) when :math:`\varepsilon_\text{notes} > (k-1)/k`:
    then the notes' target gives the true class *less* mass than each wrong one.
    """
    check_int("notes_to_torch_epsilon", "num_classes", num_classes, low=2)
    eps = _check_eps("notes_to_torch_epsilon", eps, "notes")
    return eps * num_classes / (num_classes - 1)


def label_smoothing_cross_entropy(
    logits: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    form: str = "torch",
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Cross-entropy against smoothed targets: :math:`-\sum_j q_j \log\operatorname{softmax}(z)_j`.

    With ``form="torch"`` this equals
    ``torch.nn.functional.cross_entropy(logits, y, label_smoothing=eps, reduction=...)``
    (without class weights or ``ignore_index``). ``reduction`` is ``"mean"``,
    ``"sum"`` or ``"none"`` (one loss per example).
    """
    check_type("label_smoothing_cross_entropy", "logits", logits, torch.Tensor, "a torch.Tensor")
    check_type("label_smoothing_cross_entropy", "y", y, torch.Tensor, "a torch.Tensor")
    check_choice("label_smoothing_cross_entropy", "reduction", reduction, ("mean", "sum", "none"))
    eps = _check_eps("label_smoothing_cross_entropy", eps, form)
    if logits.ndim != 2 or logits.shape[1] < 2 or logits.shape[0] != y.shape[0]:
        raise ValueError(
            "label_smoothing_cross_entropy: 'logits' must be (n, k) with k >= 2 and 'y' (n,); "
            f"got {tuple(logits.shape)} and {tuple(y.shape)}."
        )
    q = smoothed_targets(y, num_classes=logits.shape[1], eps=eps, form=form).to(logits.dtype)
    losses = -(q * torch.log_softmax(logits, dim=1)).sum(dim=1)  # (n,)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


@dataclass
class Reliability:
    """Data of a reliability diagram: per confidence bin ``(edges[b], edges[b+1]]``.

    ``confidence`` and ``accuracy`` are the bin means (NaN for an empty bin) and
    ``count`` the number of examples in each bin.
    """

    edges: torch.Tensor  # (n_bins + 1,)
    confidence: torch.Tensor  # (n_bins,)
    accuracy: torch.Tensor  # (n_bins,)
    count: torch.Tensor  # (n_bins,)


def expected_calibration_error(
    probs: torch.Tensor, y: torch.Tensor, *, n_bins: int = 15
) -> tuple[float, Reliability]:
    r"""ECE with equal-width confidence bins, and the reliability-diagram data.

    The confidence of a prediction is :math:`\hat p_i = \max_j p_{ij}`. With bins
    :math:`B_b = \bigl(\tfrac{b-1}{M}, \tfrac bM\bigr]` (Guo et al. 2017),

    .. math::

        \mathrm{ECE} = \sum_{b=1}^{M} \frac{\lvert B_b\rvert}{n}\,
        \bigl\lvert \operatorname{acc}(B_b) - \operatorname{conf}(B_b)\bigr\rvert .

    ``probs`` are probabilities (rows of a softmax), shape ``(n, k)``; ``y`` the labels.
    """
    check_type("expected_calibration_error", "probs", probs, torch.Tensor, "a torch.Tensor")
    check_type("expected_calibration_error", "y", y, torch.Tensor, "a torch.Tensor")
    check_int("expected_calibration_error", "n_bins", n_bins, low=1)
    if probs.ndim != 2 or y.ndim != 1 or probs.shape[0] != y.shape[0] or len(y) == 0:
        raise ValueError(
            "expected_calibration_error: 'probs' must be (n, k) and 'y' (n,) with the same n >= 1; "
            f"got {tuple(probs.shape)} and {tuple(y.shape)}."
        )
    if probs.min() < 0 or not torch.allclose(probs.sum(1), torch.ones((), dtype=probs.dtype), atol=1e-4):
        raise ValueError("expected_calibration_error: 'probs' must be non-negative rows summing to 1 (apply softmax to logits).")
    conf, pred = probs.max(dim=1)
    correct = (pred == y).to(probs.dtype)
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=probs.dtype)
    # bin b holds edges[b] < conf <= edges[b + 1]
    bins = torch.bucketize(conf, edges[1:-1], right=False)
    count = torch.bincount(bins, minlength=n_bins)
    conf_sum = torch.zeros(n_bins, dtype=probs.dtype).index_add_(0, bins, conf)
    acc_sum = torch.zeros(n_bins, dtype=probs.dtype).index_add_(0, bins, correct)
    # sum_b |B_b| / n * |acc(B_b) - conf(B_b)| = sum_b |acc_sum_b - conf_sum_b| / n
    ece = ((acc_sum - conf_sum).abs().sum() / len(y)).item()
    nonempty = count.to(probs.dtype).where(count > 0, torch.tensor(float("nan"), dtype=probs.dtype))
    return ece, Reliability(edges, conf_sum / nonempty, acc_sum / nonempty, count)
