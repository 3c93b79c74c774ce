"""A minibatch training loop that returns its history, and accuracy.

Used by every chapter that trains a classifier. It never prints or plots.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse._validation import check_int, check_type

__all__ = ["fit", "accuracy"]


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of ``x`` whose arg-max prediction equals ``y``."""
    check_type("accuracy", "model", model, nn.Module, "a torch.nn.Module")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            "accuracy: 'x' and 'y' must have the same number of rows; "
            f"got {x.shape[0]} and {y.shape[0]}."
        )
    was_training = model.training
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(dim=1) == y).float().mean().item()
    model.train(was_training)
    return acc


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    loss_fn: Callable[
        [torch.Tensor, torch.Tensor], torch.Tensor
    ] = F.cross_entropy,
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
    before_step: Callable[[nn.Module], None] | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` for ``epochs`` passes over shuffled minibatches.

    The objective of a minibatch is
    ``loss_fn(model(x_b), y_b) + penalty(model)``. ``before_step(model)`` and
    ``after_step(model)`` run around each ``optimizer.step()`` (for a decoupled
    weight decay or a proximal step). Returns
    ``{"loss": [...], "objective": [...]}``: the mean data loss and the mean
    penalized objective of each epoch.
    """
    check_type("fit", "model", model, nn.Module, "a torch.nn.Module")
    check_type(
        "fit",
        "optimizer",
        optimizer,
        torch.optim.Optimizer,
        "a torch.optim.Optimizer",
    )
    check_type(
        "fit", "generator", generator, torch.Generator, "a torch.Generator"
    )
    check_int("fit", "epochs", epochs, low=1)
    check_int("fit", "batch_size", batch_size, low=1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            "fit: 'x' and 'y' must have the same number of rows; "
            f"got {x.shape[0]} and {y.shape[0]}."
        )
    history: dict[str, list[float]] = {"loss": [], "objective": []}
    n = x.shape[0]
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator)
        total_loss = total_obj = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            loss = loss_fn(model(x[idx]), y[idx])
            objective = loss + penalty(model) if penalty is not None else loss
            optimizer.zero_grad()
            objective.backward()
            if before_step is not None:
                before_step(model)
            optimizer.step()
            if after_step is not None:
                after_step(model)
            total_loss += loss.item() * len(idx)
            total_obj += objective.item() * len(idx)
        history["loss"].append(total_loss / n)
        history["objective"].append(total_obj / n)
    return history
