r"""Multi-task learning: hard sharing (one trunk, a head per task), soft sharing
(a net per task, tied by a penalty between corresponding parameters), and a loop
that trains all tasks at once.

Book: Part I, chapter 7, "Multi-task learning".

Every model here is called as ``model(x, task)`` and returns that task's
outputs. With :math:`T` tasks the training objective is

.. math::

    \mathcal L(\theta) = \sum_{t=1}^{T} \frac{1}{n_t}\sum_{i=1}^{n_t}
    \ell\bigl(f_t(x^{(t)}_i;\theta),\, y^{(t)}_i\bigr) \;+\; \Omega(\theta),

where :math:`\Omega` is zero for hard sharing and the soft-sharing penalty
:func:`soft_sharing_penalty` for separate nets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlcourse._validation import _fail, check_in_range, check_int, check_type
from dlcourse.nn.mlp import make_mlp

__all__ = [
    "HardSharingNet",
    "SoftSharingNets",
    "soft_sharing_penalty",
    "fit_multitask",
    "multitask_accuracy",
]


class HardSharingNet(nn.Module):
    r"""A trunk shared by all tasks and one linear head per task.

    :math:`h = \mathrm{ReLU}(\mathrm{MLP}(x))` with layer widths
    ``[n_in, *trunk]``, then :math:`f_t(x) = W_t h + b_t` for task :math:`t`.
    The trunk's parameters receive the gradients of every task's loss; a head
    only those of its own task.
    """

    def __init__(
        self,
        n_in: int,
        trunk: Sequence[int],
        n_tasks: int,
        n_out: int = 2,
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        where = type(self).__name__
        check_int(where, "n_in", n_in, low=1)
        check_type(
            where,
            "trunk",
            trunk,
            (list, tuple),
            "a non-empty list or tuple of ints",
        )
        if len(trunk) == 0:
            _fail(
                where, "trunk", "a non-empty list or tuple of ints", list(trunk)
            )
        self.n_tasks = check_int(where, "n_tasks", n_tasks, low=1)
        check_int(where, "n_out", n_out, low=1)
        self.trunk = nn.Sequential(
            make_mlp([n_in, *trunk], generator=generator), nn.ReLU()
        )
        self.heads = nn.ModuleList(
            make_mlp([trunk[-1], n_out], generator=generator)
            for _ in range(n_tasks)
        )

    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        check_int(type(self).__name__, "task", task, low=0)
        if task >= self.n_tasks:
            _fail(
                type(self).__name__, "task", f"< n_tasks = {self.n_tasks}", task
            )
        return self.heads[task](self.trunk(x))  # (B, n_out)


class SoftSharingNets(nn.Module):
    r"""One complete network per task; ``nets[t]`` is a one-task
    :class:`HardSharingNet`.

    Nothing is shared; the nets are tied only through the penalty
    :meth:`penalty` between corresponding *trunk* parameters (heads stay free).
    With ``lam = 0`` this is single-task learning; as ``lam`` grows the trunks
    are pulled together, towards one shared trunk (hard sharing). Nets are built
    one after the other from ``generator``; with ``same_init`` (default) every
    trunk then starts as a copy of net 0's trunk, so that the penalty starts at
    zero and an infinite :math:`\lambda` is exactly the constraint of hard
    sharing.
    """

    def __init__(
        self,
        n_in: int,
        trunk: Sequence[int],
        n_tasks: int,
        n_out: int = 2,
        *,
        same_init: bool = True,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.n_tasks = check_int(type(self).__name__, "n_tasks", n_tasks, low=1)
        check_type(type(self).__name__, "same_init", same_init, bool, "a bool")
        self.nets = nn.ModuleList(
            HardSharingNet(n_in, trunk, 1, n_out, generator=generator)
            for _ in range(n_tasks)
        )
        if same_init:
            for net in self.nets[1:]:
                net.trunk.load_state_dict(self.nets[0].trunk.state_dict())

    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        check_int(type(self).__name__, "task", task, low=0)
        if task >= self.n_tasks:
            _fail(
                type(self).__name__, "task", f"< n_tasks = {self.n_tasks}", task
            )
        return self.nets[task](x, 0)  # (B, n_out)

    def trunk_parameters(self) -> list[list[torch.Tensor]]:
        """``[list(nets[t].trunk.parameters()) for t in range(n_tasks)]``."""
        return [list(net.trunk.parameters()) for net in self.nets]

    def penalty(self, lam: float) -> torch.Tensor:
        """:func:`soft_sharing_penalty` of the trunks."""
        return soft_sharing_penalty(self.trunk_parameters(), lam=lam)


def soft_sharing_penalty(
    groups: Sequence[Sequence[torch.Tensor]], *, lam: float
) -> torch.Tensor:
    r"""Squared distance between corresponding parameters of every pair of nets.

    .. math::

        \Omega(\theta) = \lambda \sum_{a<b} \sum_j
        \bigl\lVert \theta_{a,j} - \theta_{b,j}\bigr\rVert_2^2
        = \lambda\, T \sum_{a} \sum_j
        \bigl\lVert \theta_{a,j} - \bar\theta_j\bigr\rVert_2^2,
        \qquad
        \nabla_{\theta_{a,j}}\Omega
        = 2\lambda \sum_{b\ne a} (\theta_{a,j} - \theta_{b,j}),

    with :math:`T` nets and :math:`\bar\theta_j` the mean over the nets; so for
    two nets the gradient is :math:`\pm 2\lambda(\theta_A - \theta_B)`. The
    code uses the second form, :math:`T` deviations from the mean instead of
    :math:`T(T-1)/2` pairwise differences (the same value, much less work), and
    measures the deviations from net 0 first, so that equal parameters give
    exactly 0. ``groups[a][j]`` is parameter ``j`` of net ``a``; all groups must
    list tensors of the same shapes in the same order. (Duong et al. 2015 tie
    two parsers this way.)
    """
    where = "soft_sharing_penalty"
    lam = check_in_range(where, "lam", lam, low=0.0)
    check_type(
        where, "groups", groups, (list, tuple), "a list of lists of tensors"
    )
    if len(groups) < 2:
        _fail(
            where,
            "groups",
            "at least 2 parameter lists (one per net)",
            len(groups),
        )
    groups = [list(g) for g in groups]
    for a, group in enumerate(groups):
        if len(group) != len(groups[0]):
            _fail(
                where,
                f"groups[{a}]",
                f"{len(groups[0])} tensors, as groups[0]",
                len(group),
            )
        for j, p in enumerate(group):
            check_type(
                where, f"groups[{a}][{j}]", p, torch.Tensor, "a torch.Tensor"
            )
            if p.shape != groups[0][j].shape:
                _fail(
                    where,
                    f"groups[{a}][{j}]",
                    f"of shape {tuple(groups[0][j].shape)}",
                    tuple(p.shape),
                )
    n_nets = len(groups)
    total = torch.zeros(())
    for params in zip(*groups):
        # d_a = theta_{a,j} - theta_{0,j}: (T, *shape), exactly 0 for equal nets
        d = torch.stack(params) - params[0]
        # sum_{a<b} ||theta_a - theta_b||^2 = T sum_a ||d_a - mean_b d_b||^2
        total = total + n_nets * (d - d.mean(dim=0)).pow(2).sum()
    return lam * total


def _check_tasks(where: str, tasks, n_tasks: int):
    check_type(where, "tasks", tasks, (list, tuple), "a list of (x, y) pairs")
    if len(tasks) != n_tasks:
        _fail(
            where,
            "tasks",
            f"a list of {n_tasks} (x, y) pairs, one per task of the model",
            f"{len(tasks)} pairs",
        )
    for t, pair in enumerate(tasks):
        check_type(where, f"tasks[{t}]", pair, (list, tuple), "an (x, y) pair")
        if len(pair) != 2 or not all(isinstance(v, torch.Tensor) for v in pair):
            _fail(
                where,
                f"tasks[{t}]",
                "an (x, y) pair of tensors",
                type(pair).__name__,
            )
        if pair[0].shape[0] != pair[1].shape[0] or pair[0].shape[0] == 0:
            _fail(
                where,
                f"tasks[{t}]",
                "x and y with the same, non-zero number of rows",
                (pair[0].shape[0], pair[1].shape[0]),
            )


def fit_multitask(
    model: nn.Module,
    tasks: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    optimizer: torch.optim.Optimizer,
    steps: int,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    loss_fn: Callable[
        [torch.Tensor, torch.Tensor], torch.Tensor
    ] = F.cross_entropy,
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
) -> dict[str, list]:
    r"""Minimize :math:`\sum_t \ell_t + \Omega` over all tasks together.

    Takes ``steps`` optimizer steps. ``tasks[t] = (x_t, y_t)`` is task ``t``'s
    data; its loss is ``loss_fn(model(x_t, t), y_t)``. With ``batch_size=None``
    every step uses all rows of every task (full batch, no randomness);
    otherwise each task draws ``batch_size`` rows without replacement from
    ``generator``. ``penalty(model)`` is added to the objective (e.g.
    ``lambda m: m.penalty(lam)``). Returns per-step ``loss`` (sum of task
    losses), ``objective`` and ``task_loss`` (one list per task).
    """
    where = "fit_multitask"
    check_type(where, "model", model, nn.Module, "a torch.nn.Module")
    n_tasks = getattr(model, "n_tasks", None)
    if not isinstance(n_tasks, int):
        raise TypeError(
            f"{where}: 'model' must have an int attribute 'n_tasks'; "
            f"got {n_tasks!r}."
        )
    _check_tasks(where, tasks, n_tasks)
    check_type(
        where,
        "optimizer",
        optimizer,
        torch.optim.Optimizer,
        "a torch.optim.Optimizer",
    )
    check_int(where, "steps", steps, low=1)
    if batch_size is not None:
        check_int(where, "batch_size", batch_size, low=1)
        check_type(
            where,
            "generator",
            generator,
            torch.Generator,
            "a torch.Generator when 'batch_size' is given",
        )
    history: dict[str, list] = {
        "loss": [],
        "objective": [],
        "task_loss": [[] for _ in tasks],
    }
    model.train()
    for _ in range(steps):
        losses = []
        for t, (x, y) in enumerate(tasks):
            if batch_size is not None:
                idx = torch.randperm(len(x), generator=generator)[:batch_size]
                x, y = x[idx], y[idx]
            losses.append(loss_fn(model(x, t), y))
        loss = torch.stack(losses).sum()
        objective = loss + penalty(model) if penalty is not None else loss
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()
        history["loss"].append(loss.item())
        history["objective"].append(objective.item())
        for t, value in enumerate(losses):
            history["task_loss"][t].append(value.item())
    return history


def multitask_accuracy(
    model: nn.Module, tasks: Sequence[tuple[torch.Tensor, torch.Tensor]]
) -> list[float]:
    """Per-task accuracy: the share of rows of ``x_t`` on which the arg-max of
    ``model(x_t, t)`` equals ``y_t``."""
    where = "multitask_accuracy"
    check_type(where, "model", model, nn.Module, "a torch.nn.Module")
    _check_tasks(where, tasks, getattr(model, "n_tasks", len(tasks)))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        accs = [
            (model(x, t).argmax(dim=1) == y).float().mean().item()
            for t, (x, y) in enumerate(tasks)
        ]
    model.train(was_training)
    return accs
