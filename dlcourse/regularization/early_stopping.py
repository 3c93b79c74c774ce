r"""Early stopping: patience, the best-parameter copy, and two ways to reuse
the validation set.

Book: Part I, chapter 8, "Early stopping".

:class:`EarlyStopping` watches a validation metric, keeps a copy of the best
parameters and says when to stop; :func:`fit_early_stopping` is a training loop
around it; :func:`replay_early_stopping` replays it on a recorded curve. The two
retraining strategies of Goodfellow et al. (2016, algorithms 7.2 and 7.3) are
:func:`retrain_on_all_data` and :func:`continue_on_all_data` (with a bound on
the number of updates, which the original lacks). The spectral filters behind
"early stopping ≈ L2" are in :mod:`dlcourse.regularization.early_stopping_l2`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse._validation import (
    check_choice,
    check_in_range,
    check_int,
    check_type,
)

__all__ = [
    "EarlyStopping",
    "replay_early_stopping",
    "mean_loss",
    "train_updates",
    "fit_early_stopping",
    "retrain_on_all_data",
    "continue_on_all_data",
]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _as_float(where: str, value) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{where}: 'value' must be a real number; "
            f"got {type(value).__name__}."
        )
    return float(value)


class EarlyStopping:
    r"""Stop after ``patience`` evaluations in a row without improvement.

    An evaluation improves on the best value :math:`v^*` so far when
    :math:`v < v^* - \delta` (``mode="min"``) or :math:`v > v^* + \delta`
    (``mode="max"``), with :math:`\delta` = ``min_delta``; the first finite
    value always improves. A non-finite value (``nan``, ``±inf``: a diverged
    loss) never improves and counts towards the patience. On each improvement
    ``step`` stores a detached copy of ``model.state_dict()`` (not aliased to
    the live tensors).

    Attributes: ``best`` (value), ``best_step`` (1-based number of the
    evaluation that gave it, 0 before any), ``num_steps``, ``num_bad``
    (evaluations since the last improvement), ``best_state`` (dict or ``None``),
    ``should_stop``.
    """

    def __init__(
        self, *, patience: int, min_delta: float = 0.0, mode: str = "min"
    ):
        self.patience = check_int("EarlyStopping", "patience", patience, low=1)
        self.min_delta = check_in_range(
            "EarlyStopping", "min_delta", min_delta, low=0.0
        )
        self.mode = check_choice("EarlyStopping", "mode", mode, ("min", "max"))
        self.best = math.inf if mode == "min" else -math.inf
        self.best_step = self.num_steps = self.num_bad = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.should_stop = False

    def improves(self, value: float) -> bool:
        """Whether ``value`` would count as an improvement on :attr:`best`."""
        value = _as_float("EarlyStopping.improves", value)
        if not math.isfinite(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, model: nn.Module | None = None) -> bool:
        """Record one evaluation; copy ``model``'s state if it improved.

        Returns ``should_stop``.
        """
        if model is not None:
            check_type(
                "EarlyStopping.step",
                "model",
                model,
                nn.Module,
                "a torch.nn.Module or None",
            )
        value = _as_float("EarlyStopping.step", value)
        self.num_steps += 1
        if self.improves(value):
            self.best, self.best_step, self.num_bad = value, self.num_steps, 0
            if model is not None:
                self.best_state = {
                    k: v.detach().clone() for k, v in model.state_dict().items()
                }
        else:
            self.num_bad += 1
        self.should_stop = self.num_bad >= self.patience
        return self.should_stop

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best recorded parameters into ``model``.

        A copy is loaded; the record stays intact.
        """
        check_type(
            "EarlyStopping.restore",
            "model",
            model,
            nn.Module,
            "a torch.nn.Module",
        )
        if self.best_state is None:
            raise RuntimeError(
                "EarlyStopping.restore: no state recorded; "
                "call step(value, model) "
                "with a model and a finite value first."
            )
        model.load_state_dict(
            {k: v.clone() for k, v in self.best_state.items()}
        )
        return model


def replay_early_stopping(
    values, *, patience: int, min_delta: float = 0.0, mode: str = "min"
) -> tuple[int, int | None]:
    """Run :class:`EarlyStopping` on a recorded curve.

    Returns ``(best_step, stop_step or None)``.

    Steps are 1-based positions in ``values``; ``stop_step`` is ``None`` if the
    curve ends before the patience runs out, and ``best_step`` is then the best
    so far.
    """
    stopper = EarlyStopping(patience=patience, min_delta=min_delta, mode=mode)
    for v in values:
        if stopper.step(v):
            return stopper.best_step, stopper.num_steps
    return stopper.best_step, None


def _check_training(where, optimizer, generator):
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


def _check_xy(where, x, y, xname="x", yname="y"):
    check_type(where, xname, x, torch.Tensor, "a torch.Tensor")
    check_type(where, yname, y, torch.Tensor, "a torch.Tensor")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{where}: '{xname}' and '{yname}' must have the same number "
            f"of rows; "
            f"got {x.shape[0]} and {y.shape[0]}."
        )


def mean_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Loss = F.cross_entropy,
) -> float:
    """``loss_fn(model(x), y)`` in eval mode without gradients.

    This is the objective J on a whole set.
    """
    was_training = model.training
    model.eval()
    with torch.no_grad():
        value = loss_fn(model(x), y).item()
    model.train(was_training)
    return value


def train_updates(
    model,
    x,
    y,
    *,
    optimizer,
    updates: int,
    batch_size: int,
    generator: torch.Generator,
    loss_fn: Loss = F.cross_entropy,
) -> int:
    """Take exactly ``updates`` minibatch steps over reshuffled passes of
    ``(x, y)``.

    Each pass is a fresh permutation cut into batches of ``batch_size`` (the
    last one may be smaller); a pass cut short by the count is abandoned.
    Returns ``updates``.
    """
    check_type("train_updates", "model", model, nn.Module, "a torch.nn.Module")
    _check_xy("train_updates", x, y)
    _check_training("train_updates", optimizer, generator)
    check_int("train_updates", "updates", updates, low=0)
    check_int("train_updates", "batch_size", batch_size, low=1)
    model.train()
    done = 0
    while done < updates:
        perm = torch.randperm(x.shape[0], generator=generator)
        for start in range(0, x.shape[0], batch_size):
            if done == updates:
                break
            idx = perm[start : start + batch_size]
            optimizer.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            optimizer.step()
            done += 1
    return done


def fit_early_stopping(
    model,
    x,
    y,
    x_val,
    y_val,
    *,
    optimizer,
    max_epochs: int,
    batch_size: int,
    generator: torch.Generator,
    patience: int | None = None,
    monitor: str = "val_loss",
    mode: str = "min",
    min_delta: float = 0.0,
    loss_fn: Loss = F.cross_entropy,
    metrics: Mapping[str, Callable[[nn.Module], float]] | None = None,
    restore_best: bool = True,
) -> dict:
    """Train by epochs, evaluate after each, stop by patience, restore the best
    parameters.

    After each epoch the full-set losses J(train), J(valid) and each
    ``metrics[name](model)`` are recorded; :class:`EarlyStopping` watches
    ``monitor`` (``"val_loss"`` or a key of ``metrics``, e.g. a validation
    accuracy with ``mode="max"``). ``patience=None`` never stops early (a full
    run that still tracks the best epoch). Returns a history dict with lists
    ``train_loss``, ``val_loss``, one list per metric, and ``best_epoch``,
    ``stopped_epoch`` (epochs trained), ``updates_per_epoch``, ``best_updates``
    (``best_epoch * updates_per_epoch``) and ``stopper``.
    """
    where = "fit_early_stopping"
    check_type(where, "model", model, nn.Module, "a torch.nn.Module")
    _check_xy(where, x, y)
    _check_training(where, optimizer, generator)
    if patience is not None:
        check_int(where, "patience", patience, low=1)
    _check_xy(where, x_val, y_val, "x_val", "y_val")
    check_int(where, "max_epochs", max_epochs, low=1)
    check_int(where, "batch_size", batch_size, low=1)
    metrics = dict(metrics or {})
    check_choice(where, "monitor", monitor, ("val_loss", *metrics))
    # max_epochs evaluations contain at most max_epochs - 1 failures after
    # the first
    stopper = EarlyStopping(
        patience=max_epochs if patience is None else patience,
        min_delta=min_delta,
        mode=mode,
    )
    per_epoch = math.ceil(x.shape[0] / batch_size)
    history: dict = {
        "train_loss": [],
        "val_loss": [],
        **{name: [] for name in metrics},
    }
    for _ in range(max_epochs):
        train_updates(
            model,
            x,
            y,
            optimizer=optimizer,
            updates=per_epoch,
            batch_size=batch_size,
            generator=generator,
            loss_fn=loss_fn,
        )
        history["train_loss"].append(mean_loss(model, x, y, loss_fn))
        history["val_loss"].append(mean_loss(model, x_val, y_val, loss_fn))
        for name, fn in metrics.items():
            history[name].append(fn(model))
        if stopper.step(history[monitor][-1], model):
            break
    if restore_best and stopper.best_state is not None:
        stopper.restore(model)
    history.update(
        best_epoch=stopper.best_step,
        stopped_epoch=stopper.num_steps,
        updates_per_epoch=per_epoch,
        best_updates=stopper.best_step * per_epoch,
        stopper=stopper,
    )
    return history


def retrain_on_all_data(
    model,
    x_all,
    y_all,
    *,
    optimizer,
    best_epoch: int,
    updates_per_epoch: int,
    count: str,
    batch_size: int,
    generator: torch.Generator,
    loss_fn: Loss = F.cross_entropy,
) -> dict:
    """Strategy 1 (Goodfellow et al., algorithm 7.2): retrain from scratch on
    train + valid.

    ``model`` and ``optimizer`` must be freshly initialized. ``best_epoch`` and
    ``updates_per_epoch`` come from the early-stopping run on the training part
    alone. ``count="updates"`` repeats its number of parameter updates,
    ``best_epoch * updates_per_epoch``; ``count="epochs"`` repeats its number of
    passes, ``best_epoch`` epochs over the larger set (more updates). Returns
    ``{"updates": ..., "epochs": ...}`` (epochs over ``x_all``, maybe
    fractional).
    """
    where = "retrain_on_all_data"
    check_type(where, "model", model, nn.Module, "a torch.nn.Module")
    _check_xy(where, x_all, y_all, "x_all", "y_all")
    _check_training(where, optimizer, generator)
    check_int(where, "best_epoch", best_epoch, low=1)
    check_int(where, "updates_per_epoch", updates_per_epoch, low=1)
    check_choice(where, "count", count, ("epochs", "updates"))
    check_int(where, "batch_size", batch_size, low=1)
    per_epoch_all = math.ceil(x_all.shape[0] / batch_size)
    updates = best_epoch * (
        updates_per_epoch if count == "updates" else per_epoch_all
    )
    train_updates(
        model,
        x_all,
        y_all,
        optimizer=optimizer,
        updates=updates,
        batch_size=batch_size,
        generator=generator,
        loss_fn=loss_fn,
    )
    return {"updates": updates, "epochs": updates / per_epoch_all}


def continue_on_all_data(
    model,
    x_all,
    y_all,
    x_val,
    y_val,
    *,
    optimizer,
    target: float,
    updates_per_check: int,
    max_updates: int,
    batch_size: int,
    generator: torch.Generator,
    loss_fn: Loss = F.cross_entropy,
) -> dict:
    r"""Strategy 2 (Goodfellow et al., algorithm 7.3), with a bound on the
    updates.

    Keep the early-stopped parameters and train on train + valid while
    :math:`J(\theta; X_\text{valid}) > \epsilon`, where ``target``
    :math:`\epsilon` is the training objective :math:`J(\theta; X_\text{train})`
    at the stopping point; check every ``updates_per_check`` updates. The
    original loop may never end (nothing forces the validation loss below
    :math:`\epsilon`), so it also stops after ``max_updates`` updates. Returns
    ``{"reason": "criterion" or "bound", "updates": ..., "val_loss": [...]}``
    (the loss at every check, starting before any update).
    """
    where = "continue_on_all_data"
    check_type(where, "model", model, nn.Module, "a torch.nn.Module")
    _check_xy(where, x_all, y_all, "x_all", "y_all")
    _check_training(where, optimizer, generator)
    _check_xy(where, x_val, y_val, "x_val", "y_val")
    target = check_in_range(where, "target", target)
    check_int(where, "updates_per_check", updates_per_check, low=1)
    check_int(where, "max_updates", max_updates, low=1)
    check_int(where, "batch_size", batch_size, low=1)
    val_loss = [mean_loss(model, x_val, y_val, loss_fn)]
    done = 0
    while (
        not val_loss[-1] <= target
    ):  # a nan loss keeps training until the bound
        if done >= max_updates:
            return {"reason": "bound", "updates": done, "val_loss": val_loss}
        n = min(updates_per_check, max_updates - done)
        done += train_updates(
            model,
            x_all,
            y_all,
            optimizer=optimizer,
            updates=n,
            batch_size=batch_size,
            generator=generator,
            loss_fn=loss_fn,
        )
        val_loss.append(mean_loss(model, x_val, y_val, loss_fn))
    return {"reason": "criterion", "updates": done, "val_loss": val_loss}
