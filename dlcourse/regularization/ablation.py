r"""Putting it together: an ablation of regularizers on one fixed MLP.

Book: Part I, chapter 15, "Putting it together".

Three pieces: augmentations of 1-D signals that mimic how ``mnist1d`` makes
its examples (a circular shift, an amplitude scale, a linear "shear" ramp,
Gaussian noise); :func:`train_rows`, which trains many MLPs of one
architecture side by side, each with its own :class:`RowConfig` (decoupled
weight decay, hidden dropout, augmentation, label smoothing) and seed; and
:func:`run_ablation`, which adds the regularizers one at a time, each
strength chosen on validation accuracy, to a growing configuration.

With :math:`t` evenly spaced in :math:`[-\tfrac12, \tfrac12]`, the
``mnist1d`` generator (``mnist1d.transform.transform``) pads a template,
scales it by :math:`1 + a(u - \tfrac12)`, rolls it circularly, adds
correlated noise where the padding is zero and white noise everywhere, adds
a shear :math:`-c\,t` with :math:`c = b(u - \tfrac12)`, and subsamples to
40 points. The augmentations here apply the same kinds of change to a
finished 40-point signal :math:`x`:

.. math::

    x'_j = (1 + \alpha)\,x_{(j - k) \bmod L} + \gamma\,t_j + \sigma\,z_j,

with :math:`k \sim U\{-m..m\}`, :math:`\alpha \sim U(-a, a)`,
:math:`\gamma \sim U(-b, b)` and :math:`z_j \sim \mathcal N(0, 1)`.

The generator also stretches the template (its random padding) and shears
the signal *after* rolling it; :func:`warp_signals` therefore moves only the
signal minus its least-squares line :math:`\ell(t) = c_0 + c_1 t`,

.. math::

    x'_j = \ell(t_j) + \operatorname{lerp}(x - \ell)
    \bigl((j - \tfrac L2)/s + \tfrac L2 - u \bmod L\bigr),

a circular shift by a real :math:`u` and a stretch by :math:`s` about the
centre, by linear interpolation. :func:`augment_signals` uses it (with
:math:`u \sim U(-m, m)`, :math:`\log s \sim U(-\log(1+r), \log(1+r))`)
when a stretch :math:`r > 0` is asked for; :func:`row_log_probs` uses it for
test-time augmentation (probabilities averaged over warped copies).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from dlcourse._store import cached_arrays, digest
from dlcourse._validation import (
    _fail,
    check_choice,
    check_generator,
    check_in_range,
    check_int,
    check_type,
)
from dlcourse.nn.mlp import make_mlp
from dlcourse.regularization.calibration import label_smoothing_cross_entropy
from dlcourse.regularization.dropout import dropout
from dlcourse.regularization.ensembles import StackedMLP, ensemble_log_probs

__all__ = [
    "circular_shift",
    "warp_signals",
    "augment_signals",
    "RowConfig",
    "RowRun",
    "train_rows",
    "run_ablation",
    "row_log_probs",
]


def _check_signals(where: str, x) -> torch.Tensor:
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    if x.ndim < 1 or not x.is_floating_point():
        _fail(where, "x", "a floating-point tensor (..., L)", x.dtype)
    return x


def circular_shift(x: torch.Tensor, shifts) -> torch.Tensor:
    r"""Roll each signal (last axis) by its own number of samples.

    :math:`x'_j = x_{(j - k) \bmod L}`: ``shifts`` is an int or an integer
    tensor broadcastable against ``x.shape[:-1]`` (one shift per signal).
    Shifting by ``k`` and then by ``-k`` gives ``x`` back exactly.
    """
    where = "circular_shift"
    x = _check_signals(where, x)
    if isinstance(shifts, int) and not isinstance(shifts, bool):
        return torch.roll(x, shifts, dims=-1)
    check_type(where, "shifts", shifts, torch.Tensor, "an int or a tensor")
    if shifts.is_floating_point() or shifts.dtype == torch.bool:
        _fail(where, "shifts", "an integer tensor", shifts.dtype)
    length = x.shape[-1]
    k = shifts.expand(x.shape[:-1]).unsqueeze(-1)  # (..., 1)
    index = (torch.arange(length) - k) % length  # (..., L): j - k mod L
    return x.gather(-1, index)


def _line(x):
    """Least-squares line c0 + c1 t of each signal, t in [-1/2, 1/2]."""
    t = torch.linspace(-0.5, 0.5, x.shape[-1], dtype=x.dtype)
    c0 = x.mean(-1, keepdim=True)
    tc = t - t.mean()
    c1 = (x * tc).sum(-1, keepdim=True) / (tc * tc).sum()
    return c0 + c1 * tc


def warp_signals(x: torch.Tensor, shift, stretch=1.0) -> torch.Tensor:
    r"""Trend-aware circular shift by a real amount, and stretch.

    :math:`x'_j = \ell(t_j) + \operatorname{lerp}(x - \ell)(p_j)`,
    :math:`p_j = ((j - L/2)/s + L/2 - u) \bmod L` (module documentation):
    the least-squares line :math:`\ell` of each signal stays, the rest moves
    by ``shift`` = :math:`u` samples and is stretched by ``stretch`` =
    :math:`s > 0`, read off by circular linear interpolation. Both may be
    numbers or tensors broadcastable against ``x.shape[:-1] + (1,)``. An
    integer shift with ``stretch = 1`` is :func:`circular_shift` of
    :math:`x - \ell`, plus :math:`\ell`.
    """
    where = "warp_signals"
    x = _check_signals(where, x)
    shift = torch.as_tensor(shift, dtype=x.dtype)
    stretch = torch.as_tensor(stretch, dtype=x.dtype)
    if bool((stretch <= 0).any()):
        _fail(where, "stretch", "> 0", stretch)
    length = x.shape[-1]
    line = _line(x)
    rest = x - line
    j = torch.arange(length, dtype=x.dtype)
    pos = ((j - length / 2) / stretch + length / 2 - shift) % length
    low = pos.floor()
    w = pos - low  # interpolation weight of the right neighbour
    i0 = low.long()  # in 0..L (pos can round up to L)
    # the signal continued circularly, ext[L + k] = rest[k], so that i0 + 1
    # needs no wrapping either
    ext = torch.cat([rest, rest[..., :2]], dim=-1)
    shape = torch.broadcast_shapes(rest.shape, pos.shape)
    ext = ext.expand(*shape[:-1], length + 2)
    i0, w = i0.expand(shape), w.expand(shape)
    moved = ext.gather(-1, i0) * (1 - w) + ext.gather(-1, i0 + 1) * w
    return line + moved


def augment_signals(
    x: torch.Tensor,
    *,
    max_shift=0,
    scale=0.0,
    shear=0.0,
    noise=0.0,
    stretch=0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Random shift, scale, shear and noise, one draw per signal.

    :math:`x' = (1 + \alpha)\,\operatorname{roll}_k(x) + \gamma t
    + \sigma z` (the chapter's formula), with ``max_shift`` = :math:`m`,
    ``scale`` = :math:`a`, ``shear`` = :math:`b`, ``noise`` = :math:`\sigma`.
    With ``stretch`` = :math:`r > 0` (anywhere), the roll is replaced by
    :func:`warp_signals` with a real shift :math:`u \sim U(-m, m)` and a
    stretch :math:`s = (1 + r)^{v}`, :math:`v \sim U(-1, 1)`.
    Each may be a number or a tensor broadcastable against
    ``x.shape[:-1] + (1,)`` (e.g. one per model, shape (M, 1, 1)). The label
    of a signal does not change: every transform is one the generator of
    ``mnist1d`` applies to its own examples.
    """
    where = "augment_signals"
    x = _check_signals(where, x)
    check_generator(where, generator)
    m, a, b, s, r = (
        _amount(where, name, v, integer=name == "max_shift")
        for name, v in (
            ("max_shift", max_shift),
            ("scale", scale),
            ("shear", shear),
            ("noise", noise),
            ("stretch", stretch),
        )
    )
    shape = x.shape[:-1] + (1,)  # one draw per signal

    def uniform(width):  # U(-width, width), shape (..., 1)
        u = torch.rand(shape, generator=generator, dtype=x.dtype)
        return (2 * u - 1) * width

    if bool(torch.as_tensor(r).gt(0).any()):
        u = uniform(m)  # a real shift in (-m, m)
        v = uniform(1.0)
        out = warp_signals(x, u, torch.exp(v * torch.log1p(torch.as_tensor(r))))
    else:
        # k ~ U{-m..m}: floor(u (2m + 1)) - m
        k = torch.rand(shape, generator=generator) * (2 * m + 1)
        out = circular_shift(x, (torch.floor(k) - m).long().squeeze(-1))
    out = out * (1 + uniform(a))  # amplitude: (1 + alpha) x
    t = torch.linspace(-0.5, 0.5, x.shape[-1], dtype=x.dtype)
    out = out + uniform(b) * t  # shear: + gamma t
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return out + s * z  # noise: + sigma z


def _amount(where, name, value, *, integer=False):
    """A non-negative number, or a tensor of them (as a float tensor)."""
    if isinstance(value, torch.Tensor):
        if bool((value < 0).any()):
            _fail(where, name, ">= 0", f"a tensor with min {value.min()}")
        return value.to(torch.get_default_dtype())
    if integer:
        return float(check_int(where, name, value, low=0))
    return check_in_range(where, name, value, low=0.0)


@dataclass(frozen=True)
class RowConfig:
    """The regularizers of one row of the ablation.

    ``weight_decay``: decoupled decay :math:`w \\leftarrow (1 - \\eta\\lambda)
    w` of the weights (not the biases), as ``torch.optim.AdamW``;
    ``dropout``: drop probability of the hidden units, in [0, 1);
    ``max_shift``, ``scale``, ``shear``, ``noise``, ``stretch``: the
    augmentation (:func:`augment_signals`); ``label_smoothing``: PyTorch's
    :math:`\\varepsilon` in [0, 1]; ``members``: ensemble size, >= 1.
    """

    weight_decay: float = 0.0
    dropout: float = 0.0
    max_shift: int = 0
    scale: float = 0.0
    shear: float = 0.0
    noise: float = 0.0
    label_smoothing: float = 0.0
    members: int = 1
    stretch: float = 0.0

    def __post_init__(self):
        where = "RowConfig"
        check_in_range(where, "weight_decay", self.weight_decay, low=0.0)
        check_in_range(
            where, "dropout", self.dropout, 0.0, 1.0, high_inclusive=False
        )
        check_int(where, "max_shift", self.max_shift, low=0)
        for name in ("scale", "shear", "noise", "stretch"):
            check_in_range(where, name, getattr(self, name), low=0.0)
        check_in_range(where, "label_smoothing", self.label_smoothing, 0, 1)
        check_type(where, "members", self.members, int, "an int")
        if self.members < 1:
            raise ValueError(
                f"{where}: 'members' must be >= 1 (an ensemble needs at "
                f"least one model); got {self.members}."
            )


@dataclass
class RowRun:
    """What :func:`train_rows` returns: one entry per trained model.

    ``configs[i]`` and ``seeds[i]`` describe model ``i``; ``epochs`` the
    checkpoints; ``train_acc`` and ``val_acc`` are (checkpoints, models)
    accuracies; ``params[c]`` the stacked weights at checkpoint ``c``.
    """

    configs: list[RowConfig]
    seeds: list[int]
    epochs: list[int]
    train_acc: torch.Tensor
    val_acc: torch.Tensor
    params: list[list[torch.Tensor]]
    sizes: list[int]

    def logits(self, checkpoint: int, x: torch.Tensor) -> torch.Tensor:
        """(models, N, classes) logits of every model at a checkpoint."""
        return _forward(self.params[checkpoint], x)


def _forward(params, x, p=None, generator=None):
    """The stacked MLP; hidden dropout with rates p (M, 1, 1) if given.

    The ReLU is written as a product with its 0/1 mask, which gives the same
    values as ``torch.relu`` and a backward pass that is one product too.
    """
    weights, biases = params[0::2], params[1::2]
    h = x  # (N, n_in) or (M, N, n_in)
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = torch.baddbmm(b, h.expand(len(w), *h.shape[-2:]), w)  # (M,N,out)
        if i < len(weights) - 1:
            h = h * (h > 0).to(h.dtype)  # ReLU(h) = h [h > 0]
            if p is not None:
                h = dropout(h, p, generator=generator)
    return h


def _column(configs, name, dtype=None):
    values = [getattr(c, name) for c in configs]
    return torch.tensor(values, dtype=dtype)[:, None, None]  # (M, 1, 1)


def train_rows(
    configs: list[RowConfig],
    seeds: list[int],
    data: dict,
    *,
    sizes: list[int],
    epochs: int,
    lr: float,
    batch_size: int,
    every: int,
    generator: torch.Generator,
    schedule: str = "constant",
    cache=False,
) -> RowRun:
    r"""Train one MLP per (config, seed) pair, all at once.

    Model ``i`` is ``make_mlp(sizes)`` initialized from seed ``seeds[i]``
    and shuffled by a generator of that seed too, so that two configs with
    the same seed start from the same weights and see the same minibatches
    (paired runs). ``data`` holds ``x``, ``y`` (training) and ``x_val``,
    ``y_val``. Each step (Adam, learning rate ``lr``) minimizes the sum of
    the models' own losses; before each update, each model's weights decay by
    :math:`(1 - \eta\lambda_i)` (AdamW's decoupled decay, applied to the
    weights only). Every ``every`` epochs the training and validation
    accuracies and a copy of the weights are kept. ``generator`` draws the
    augmentations and dropout masks. ``schedule``: ``"constant"`` (``lr``
    throughout) or ``"one-cycle"``: over the :math:`T` steps, step
    :math:`\tau` uses :math:`\eta_\tau = \eta\,\tau / (T/4)` for the first
    quarter, then :math:`\eta\,\tfrac12(1 + \cos \pi f)` with :math:`f`
    going from 0 to 1 over the rest (a warm-up, then a cosine decay); the
    decay factor is :math:`1 - \eta_\tau\lambda_i`.

    ``cache``: False (train), True (the course's cache directory, as
    :func:`dlcourse.data.load_mnist1d`) or a directory: the run is kept in
    a checksummed file named by every argument, the state of ``generator``
    and the computation's environment (torch's version and kernels, the
    numerics settings, the source of ``dlcourse``), and read back, with
    ``generator`` left in the state training leaves it in, when all of them
    are the same again.
    """
    where = "train_rows"
    check_type(where, "configs", configs, list, "a list of RowConfig")
    if not configs:
        _fail(where, "configs", "a list of at least one RowConfig", configs)
    for i, c in enumerate(configs):
        check_type(where, f"configs[{i}]", c, RowConfig, "a RowConfig")
    if len(seeds) != len(configs):
        _fail(where, "seeds", f"{len(configs)} seeds, one a config", seeds)
    check_int(where, "epochs", epochs, low=1)
    check_int(where, "batch_size", batch_size, low=1)
    check_int(where, "every", every, low=1)
    lr = check_in_range(where, "lr", lr, low=0.0, low_inclusive=False)
    check_type(where, "generator", generator, torch.Generator, "a Generator")
    check_choice(where, "schedule", schedule, ("constant", "one-cycle"))
    settings = dict(
        sizes=list(sizes),
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        every=every,
        schedule=schedule,
    )
    if cache is False:
        return _train(configs, seeds, data, generator, **settings)
    if cache is True:
        cache = None  # the default directory
    else:
        check_type(where, "cache", cache, (str, os.PathLike), "a bool or path")
    return _cached_train(
        where, cache, configs, seeds, data, generator, settings
    )


def _cached_train(where, cache_dir, configs, seeds, data, generator, settings):
    """:func:`_train` through a checksummed cache file (``cached_arrays``)."""
    key = dict(
        configs=[dataclasses.asdict(c) for c in configs],
        seeds=list(seeds),
        **settings,
        generator=hashlib.sha256(generator.get_state().numpy()).hexdigest(),
        data=digest({k: data[k].numpy() for k in ("x", "y", "x_val", "y_val")}),
    )

    def compute():
        run = _train(configs, seeds, data, generator, **settings)
        arrays = {
            "epochs": np.array(run.epochs, dtype=np.int64),
            "train_acc": run.train_acc.numpy(),
            "val_acc": run.val_acc.numpy(),
            "generator": generator.get_state().numpy(),
        }
        for c, kept in enumerate(run.params):
            arrays.update(
                {f"params_{c}_{k}": t.numpy() for k, t in enumerate(kept)}
            )
        return arrays

    arrays = cached_arrays(where, cache_dir, "ablation", key, compute)
    generator.set_state(torch.from_numpy(arrays["generator"].copy()))
    n_params = 2 * (len(settings["sizes"]) - 1)
    params = [
        [torch.from_numpy(arrays[f"params_{c}_{k}"]) for k in range(n_params)]
        for c in range(len(arrays["epochs"]))
    ]
    return RowRun(
        list(configs),
        list(seeds),
        arrays["epochs"].tolist(),
        torch.from_numpy(arrays["train_acc"]),
        torch.from_numpy(arrays["val_acc"]),
        params,
        list(settings["sizes"]),
    )


def _train(
    configs,
    seeds,
    data,
    generator,
    *,
    sizes,
    epochs,
    lr,
    batch_size,
    every,
    schedule,
):
    """The training of :func:`train_rows` (arguments checked)."""
    x, y = data["x"], data["y"]
    mlps = [
        make_mlp(sizes, generator=torch.Generator().manual_seed(s))
        for s in seeds
    ]
    stacked = StackedMLP(mlps)
    params = [t for wb in zip(stacked.weights, stacked.biases) for t in wb]
    optimizer = torch.optim.Adam(params, lr=lr)
    orders = [torch.Generator().manual_seed(10_000 + s) for s in seeds]
    p = _column(configs, "dropout")
    p = p if bool(p.gt(0).any()) else None  # no dropout at all: skip masks
    lam = _column(configs, "weight_decay")
    aug = {n: _column(configs, n) for n in ("scale", "shear", "noise")}
    aug["stretch"] = _column(configs, "stretch")
    aug["max_shift"] = _column(configs, "max_shift")
    augmented = any(bool(v.gt(0).any()) for v in aug.values())
    eps = [c.label_smoothing for c in configs]
    groups = {e: [i for i, v in enumerate(eps) if v == e] for e in set(eps)}
    history = {"epochs": [], "train": [], "val": [], "params": []}
    n = len(x)
    total = epochs * -(-n // batch_size)  # steps in all
    step = 0
    for epoch in range(1, epochs + 1):
        order = torch.stack([torch.randperm(n, generator=g) for g in orders])
        for start in range(0, n, batch_size):
            idx = order[:, start : start + batch_size]  # (M, B)
            xb = x[idx]  # (M, B, L)
            if augmented:  # else every transform is the identity
                xb = augment_signals(xb, **aug, generator=generator)
            logits = _forward(params, xb, p, generator)  # (M, B, C)
            loss = (
                sum(
                    label_smoothing_cross_entropy(
                        logits[m].flatten(0, 1),
                        y[idx[m]].flatten(),
                        eps=e,
                        reduction="sum",
                    )
                    for e, m in groups.items()
                )
                / idx.shape[1]
            )  # sum over models of each one's mean loss
            eta = _rate(lr, schedule, step, total)
            step += 1
            for group in optimizer.param_groups:
                group["lr"] = eta
            optimizer.zero_grad()
            loss.backward()
            with torch.no_grad():
                for w in params[0::2] if bool(lam.gt(0).any()) else []:
                    w.mul_(1 - eta * lam)  # w <- (1 - eta lambda_i) w
            optimizer.step()
        if epoch % every == 0 or epoch == epochs:
            _checkpoint(history, epoch, params, data)
    return RowRun(
        list(configs),
        list(seeds),
        history["epochs"],
        torch.stack(history["train"]),
        torch.stack(history["val"]),
        history["params"],
        list(sizes),
    )


def _rate(lr, schedule, step, total):
    """Learning rate of step ``step`` (from 0) of ``total``."""
    if schedule == "constant":
        return lr
    warm = max(1, total // 4)
    if step < warm:
        return lr * (step + 1) / warm
    f = (step - warm) / max(1, total - warm - 1)
    return lr * 0.5 * (1 + math.cos(math.pi * f))


def _accuracy(logits, y):
    return (logits.argmax(-1) == y).double().mean(-1)  # (M,)


def _checkpoint(history, epoch, params, data):
    with torch.no_grad():
        kept = [t.detach().clone() for t in params]
        history["epochs"].append(epoch)
        history["params"].append(kept)
        for split, (x, y) in (
            ("train", (data["x"], data["y"])),
            ("val", (data["x_val"], data["y_val"])),
        ):
            history[split].append(_accuracy(_forward(kept, x), y))


def _best(run: RowRun, config: RowConfig) -> tuple[int, float]:
    """Checkpoint with the best mean validation accuracy of a config."""
    cols = [i for i, c in enumerate(run.configs) if c == config]
    mean = run.val_acc[:, cols].mean(1)  # (checkpoints,)
    c = int(mean.argmax())
    return c, float(mean[c])


def run_ablation(
    stages: list[tuple[str, dict]],
    seeds: list[int],
    data: dict,
    *,
    members: list[int],
    train: dict,
    cache=False,
) -> list[dict]:
    """Add regularizers one stage at a time, each chosen on validation.

    ``stages``: ``[(row name, {field: [candidate values]}), ...]``, each
    optionally with a third item, a dict overriding ``train`` for that
    stage (e.g. more epochs for the augmented rows); a stage
    trains the current configuration with each candidate (one or more
    fields of :class:`RowConfig` changed together; a value ``None`` keeps
    the current one) for every seed, with the
    arguments ``train`` of :func:`train_rows`, and keeps the candidate and
    the checkpoint (epoch) with the best mean validation accuracy. The first
    stage is the baseline (its one candidate: ``{}``). The last row is an
    ensemble of the final configuration: ``members`` are the sizes tried
    (new members get new seeds; members are averaged in probability, as
    bagging does). A candidate equal to the current configuration is not
    trained again: it is the previous row's models, unless the stage trains
    differently from the previous row (its third item changes the
    schedule), in which case the current configuration is trained again
    under the new settings and the previous models are not a candidate: a
    stage ``(name, {}, new_settings)`` is a *control* row, the same
    regularizers under another training budget. Repeated candidates are
    tried once. Returns one dict per
    row: ``name``, ``config``, ``epoch``, ``val`` (per seed), ``tried``
    (each candidate's per-seed validation accuracy), ``stage_run`` (the
    models the stage trained), ``run``,
    ``checkpoint``, ``columns``; see :func:`row_log_probs`. ``cache``: as
    :func:`train_rows`, for every model it trains.
    """
    rows, config = [], RowConfig()
    for stage in stages:
        name, grid = stage[0], stage[1]
        stage_train = {**train, **(stage[2] if len(stage) > 2 else {})}
        candidates = _candidates(config, grid)
        # the previous row's models stand for the current configuration
        # only if this stage trains as the previous row did
        reuse = bool(rows) and stage_train == rows[-1]["train"]
        new = [c for c in candidates if not reuse or c != config]
        run = train_rows(
            [c for c in new for _ in seeds],
            [s for _ in new for s in seeds],
            data,
            **stage_train,
            cache=cache,
        )
        row = _row(name, run, new, candidates)
        row["train"] = stage_train
        tried = {c: _val_at_best(run, c) for c in new}
        # the current configuration is the previous row's models themselves
        if reuse and config in candidates:
            tried[config] = rows[-1]["val"]
            if rows[-1]["score"] >= row["score"]:
                row = {**rows[-1], "name": name, "candidates": candidates}
        row["tried"] = {c: tried[c] for c in candidates}
        row["stage_run"] = run
        rows.append(row)
        config = row["config"]
    train = {**rows[-1]["train"], "cache": cache}
    rows.append(_ensemble_row(rows[-1], seeds, data, members, train))
    return rows


def _val_at_best(run, config):
    """Per-seed validation accuracies of a config at its best checkpoint."""
    c, _ = _best(run, config)
    return run.val_acc[
        c, [i for i, cf in enumerate(run.configs) if cf == config]
    ]


def _row(name, run, configs, candidates):
    """The best of ``configs`` in ``run`` (mean validation accuracy)."""
    scores = {c: _best(run, c) for c in configs}
    config = max(configs, key=lambda c: scores[c][1])
    checkpoint, score = scores[config]
    columns = [i for i, cf in enumerate(run.configs) if cf == config]
    return dict(
        name=name,
        config=config,
        epoch=run.epochs[checkpoint],
        val=run.val_acc[checkpoint, columns],
        score=score,
        run=run,
        checkpoint=checkpoint,
        columns=columns,
        candidates=candidates,
    )


def _candidates(config, grid):
    check_type("run_ablation", "grid", grid, dict, "a dict of value lists")
    if not grid:
        return [config]
    lengths = {len(v) for v in grid.values()}
    if len(lengths) != 1:
        _fail("run_ablation", "grid", "lists of one length", lengths)
    out = []
    for values in zip(*grid.values()):  # None: keep the current value
        c = dataclasses.replace(
            config, **{k: v for k, v in zip(grid, values) if v is not None}
        )
        if c not in out:
            out.append(c)
    return out


def _ensemble_row(last, seeds, data, members, train):
    """Extra members of the last configuration; size chosen on validation."""
    check_type("run_ablation", "members", members, list, "a list of ints")
    for i, k in enumerate(members):
        check_int("run_ablation", f"members[{i}]", k, low=1)
    if not members:
        _fail("run_ablation", "members", "a non-empty list", members)
    k_max = max(members)
    config, epochs = last["config"], last["epoch"]
    first = last["run"].logits(last["checkpoint"], data["x_val"])
    first = first[last["columns"]]  # (seeds, N, C): the last row's models
    run = None  # no extra members for k_max = 1
    rest = first.new_zeros(len(seeds), 0, *first.shape[1:])
    if k_max > 1:
        extra = [100 * (j + 1) + s for s in seeds for j in range(k_max - 1)]
        run = train_rows(
            [config] * len(extra), extra, data, **{**train, "epochs": epochs}
        )
        # (seeds, k_max - 1, N, C): seed i's extra members
        rest = run.logits(-1, data["x_val"]).view(
            len(seeds), k_max - 1, *first.shape[1:]
        )

    def val_of(k):
        return _accuracy(_combine(first, rest, k), data["y_val"])

    val = {k: val_of(k) for k in members}
    k = max(members, key=lambda m: float(val[m].mean()))
    return dict(
        name="+ ensemble",
        config=dataclasses.replace(config, members=k),
        epoch=epochs,
        val=val[k],
        val_by_size=val,
        run=run,
        last=last,
    )


def _combine(first, rest, k):
    """Ensembles of k: first (S, N, C) and rest (S, R, N, C) log-probs."""
    return torch.stack(
        [
            ensemble_log_probs(torch.cat([f[None], r[: k - 1]]))
            for f, r in zip(first, rest)
        ]
    )  # (S, N, C)


def row_log_probs(
    row: dict, x: torch.Tensor, *, shifts=None, stretches=(1.0,)
) -> torch.Tensor:
    """(seeds, N, classes) log-probabilities of a row of :func:`run_ablation`.

    For a model row, each seed's model at the chosen checkpoint; for the
    ensemble row, each seed's ensemble of ``config.members`` models (the
    last row's model and its first extra members), averaged in probability.
    With ``shifts`` (a list of real shifts), test-time augmentation: the
    probabilities are averaged over the copies
    ``warp_signals(x, u, s)`` for every ``u`` in ``shifts`` and ``s`` in
    ``stretches`` as well (an ensemble over inputs).
    """
    check_type("row_log_probs", "row", row, dict, "a row of run_ablation")
    if shifts is not None:
        if len(shifts) == 0 or len(stretches) == 0:
            _fail(
                "row_log_probs",
                "shifts",
                "non-empty lists of shifts and stretches",
                (shifts, stretches),
            )
        probs = [
            row_log_probs(row, warp_signals(x, u, s)).exp()
            for u in shifts
            for s in stretches
        ]
        return torch.stack(probs).mean(0).log()
    if "last" not in row:
        logits = row["run"].logits(row["checkpoint"], x)[row["columns"]]
        return torch.log_softmax(logits, dim=-1)
    last, k = row["last"], row["config"].members
    first = last["run"].logits(last["checkpoint"], x)[last["columns"]]
    rest = first.new_zeros(len(first), 0, *first.shape[1:])
    if row["run"] is not None:
        rest = row["run"].logits(-1, x).view(len(first), -1, *first.shape[1:])
    return _combine(first, rest, k)
