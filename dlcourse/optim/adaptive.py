r"""Adaptive learning rates: twins of ``torch.optim``'s Adagrad, RMSprop,
Adadelta, Adam and AdamW, and the lecture notes' forms where they differ.

Book: Part II, chapter 5, "Algorithms with adaptive learning rates".

Each algorithm is a pure update of one tensor (``adagrad_update_``,
``rmsprop_update_``, ``adadelta_update_``, ``adam_update_``) and a thin
``torch.optim.Optimizer`` that calls it with the same arguments, defaults,
state keys (``step``, ``sum``, ``square_avg``, ``acc_delta``, ``exp_avg``,
...) and ``state_dict`` as its namesake, so that a ``state_dict`` saved by
one loads into the other. The update is the one of torch's single-tensor
path (``foreach=False``), operation for operation; the tests compare the
iterates of every option combination over 200 steps.

The notes' forms (``notes_adagrad_update_``, ``notes_rmsprop_update_``,
``notes_adam_update_``) put :math:`\epsilon` inside the square root
(Adagrad, RMSprop) and drop Adam's bias correction; the chapter measures
what that changes.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dlcourse._validation import check_in_range, check_type

__all__ = [
    "adagrad_update_",
    "rmsprop_update_",
    "adadelta_update_",
    "adam_update_",
    "notes_adagrad_update_",
    "notes_rmsprop_update_",
    "notes_adam_update_",
    "Adagrad",
    "RMSprop",
    "Adadelta",
    "Adam",
    "AdamW",
]


# ------------------------------------------------------------------ checks


def _check_nonneg(where, **values):
    for name, value in values.items():
        check_in_range(where, name, value, low=0.0)


def _check_betas(where, betas):
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(
            f"{where}: 'betas' must be a pair (beta1, beta2) with each in "
            f"[0, 1); got {betas!r}."
        )
    for i, beta in enumerate(betas):
        check_in_range(
            where, f"betas[{i}]", beta, low=0.0, high=1.0, high_inclusive=False
        )


def _check_flags(where, **flags):
    for name, value in flags.items():
        check_type(where, name, value, bool, "a bool")


def _check_torch_only(where, **options):
    """torch's foreach/fused/capturable/differentiable paths are not offered."""
    for name, value in options.items():
        if value not in (None, False):
            raise ValueError(
                f"{where}: '{name}' must be None or False (the reference "
                f"code updates one tensor at a time); got {value!r}."
            )


def _check_tensors(where, param, grad, state):
    check_type(where, "param", param, torch.Tensor, "a torch.Tensor")
    check_type(where, "grad", grad, torch.Tensor, "a torch.Tensor")
    check_type(where, "state", state, dict, "a dict")
    if grad.is_sparse:
        raise ValueError(
            f"{where}: 'grad' must be a dense tensor; got a sparse one."
        )
    if torch.is_complex(param):
        raise ValueError(
            f"{where}: 'param' must be a real tensor; got dtype {param.dtype}."
        )
    if grad.shape != param.shape:
        raise ValueError(
            f"{where}: 'grad' must have the shape of 'param' "
            f"{tuple(param.shape)}; got {tuple(grad.shape)}."
        )


def _zeros(param):
    return torch.zeros_like(param, memory_format=torch.preserve_format)


def _new_step():
    # As torch.optim (capturable=False): a float32 scalar tensor on the CPU.
    return torch.tensor(0.0, dtype=torch.float32)


# ------------------------------------------------------------------ Adagrad


@torch.no_grad()
def _adagrad(
    param,
    grad,
    state,
    *,
    lr,
    lr_decay,
    weight_decay,
    eps,
    maximize,
    initial_accumulator_value,
):
    if "sum" not in state:
        state["step"] = _new_step()
        state["sum"] = torch.full_like(
            param,
            initial_accumulator_value,
            memory_format=torch.preserve_format,
        )
    state["step"] += 1
    t = state["step"].item()
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)
    # eta_t = eta / (1 + (t - 1) decay)
    clr = lr / (1 + (t - 1) * lr_decay)
    # G_t = G_{t-1} + g_t^2
    state["sum"].addcmul_(g, g, value=1)
    # theta_t = theta_{t-1} - eta_t g_t / (sqrt(G_t) + eps)
    param.addcdiv_(g, state["sum"].sqrt().add_(eps), value=-clr)
    return param


def adagrad_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict,
    *,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> torch.Tensor:
    r"""One Adagrad step on ``param`` in place (Duchi et al., 2011).

    ``state`` holds ``step`` and ``sum`` (created on the first call, ``sum``
    filled with ``initial_accumulator_value``). With gradient :math:`g_t`
    (plus :math:`\lambda\theta_{t-1}` if ``weight_decay``):

    .. math::

        G_t &= G_{t-1} + g_t \odot g_t \\
        \eta_t &= \eta / (1 + (t-1)\,\text{lr\_decay}) \\
        \theta_t &= \theta_{t-1} - \eta_t\, g_t / (\sqrt{G_t} + \epsilon)

    :math:`\epsilon` is added *outside* the root, as in PyTorch; the notes
    put it inside (:func:`notes_adagrad_update_`). Only gradients are used:
    Adagrad is a first-order method (the notes call it "second order").
    Returns ``param``.
    """
    where = "adagrad_update_"
    _check_tensors(where, param, grad, state)
    _check_nonneg(
        where,
        lr=lr,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        initial_accumulator_value=initial_accumulator_value,
        eps=eps,
    )
    _check_flags(where, maximize=maximize)
    return _adagrad(
        param,
        grad,
        state,
        lr=lr,
        lr_decay=lr_decay,
        weight_decay=weight_decay,
        eps=eps,
        maximize=maximize,
        initial_accumulator_value=initial_accumulator_value,
    )


# ------------------------------------------------------------------ RMSprop


@torch.no_grad()
def _rmsprop(
    param,
    grad,
    state,
    *,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
    maximize,
):
    if "square_avg" not in state:
        state["step"] = _new_step()
        state["square_avg"] = _zeros(param)
        if momentum > 0:
            state["momentum_buffer"] = _zeros(param)
        if centered:
            state["grad_avg"] = _zeros(param)
    g = -grad if maximize else grad
    state["step"] += 1
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)
    # v_t = alpha v_{t-1} + (1 - alpha) g_t^2
    v = state["square_avg"]
    v.mul_(alpha).addcmul_(g, g, value=1 - alpha)
    if centered:
        # m_t = alpha m_{t-1} + (1 - alpha) g_t; denominator sqrt(v - m^2)
        m = state["grad_avg"]
        m.lerp_(g, 1 - alpha)
        denom = v.addcmul(m, m, value=-1).sqrt_()
    else:
        denom = v.sqrt()
    denom = denom.add_(eps)
    if momentum > 0:
        # b_t = mu b_{t-1} + g_t / denom; theta_t = theta_{t-1} - eta b_t
        buf = state["momentum_buffer"]
        buf.mul_(momentum).addcdiv_(g, denom)
        param.add_(buf, alpha=-lr)
    else:
        # theta_t = theta_{t-1} - eta g_t / (sqrt(v_t) + eps)
        param.addcdiv_(g, denom, value=-lr)
    return param


def rmsprop_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> torch.Tensor:
    r"""One RMSprop step on ``param`` in place (Hinton's lecture 6e).

    ``state`` holds ``step``, ``square_avg`` and, if used,
    ``momentum_buffer`` and ``grad_avg``:

    .. math::

        v_t &= \alpha v_{t-1} + (1-\alpha)\, g_t^2 \\
        d_t &= \sqrt{v_t - m_t^2} + \epsilon \ \ (\text{centered},
               m_t = \alpha m_{t-1} + (1-\alpha) g_t)
               \quad\text{else}\quad \sqrt{v_t} + \epsilon \\
        b_t &= \mu\, b_{t-1} + g_t / d_t, \qquad
        \theta_t = \theta_{t-1} - \eta\, b_t

    (without momentum :math:`\theta_t = \theta_{t-1} - \eta\, g_t/d_t`).
    The notes put :math:`\epsilon` inside the root
    (:func:`notes_rmsprop_update_`). Returns ``param``.
    """
    where = "rmsprop_update_"
    _check_tensors(where, param, grad, state)
    _check_nonneg(
        where,
        lr=lr,
        alpha=alpha,
        eps=eps,
        weight_decay=weight_decay,
        momentum=momentum,
    )
    _check_flags(where, centered=centered, maximize=maximize)
    return _rmsprop(
        param,
        grad,
        state,
        lr=lr,
        alpha=alpha,
        eps=eps,
        weight_decay=weight_decay,
        momentum=momentum,
        centered=centered,
        maximize=maximize,
    )


# ----------------------------------------------------------------- Adadelta


@torch.no_grad()
def _adadelta(param, grad, state, *, lr, rho, eps, weight_decay, maximize):
    if "square_avg" not in state:
        state["step"] = _new_step()
        state["square_avg"] = _zeros(param)
        state["acc_delta"] = _zeros(param)
    state["step"] += 1
    g = -grad if maximize else grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)
    # E[g^2]_t = rho E[g^2]_{t-1} + (1 - rho) g_t^2
    sq = state["square_avg"]
    sq.mul_(rho).addcmul_(g, g, value=1 - rho)
    # dx_t = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t
    acc = state["acc_delta"]
    delta = acc.add(eps).sqrt_().div_(sq.add(eps).sqrt_()).mul_(g)
    # E[dx^2]_t = rho E[dx^2]_{t-1} + (1 - rho) dx_t^2
    acc.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    # theta_t = theta_{t-1} - lr dx_t
    param.add_(delta, alpha=-lr)
    return param


def adadelta_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict,
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> torch.Tensor:
    r"""One Adadelta step on ``param`` in place (Zeiler, 2012).

    ``state`` holds ``step``, ``square_avg`` (:math:`E[g^2]`) and
    ``acc_delta`` (:math:`E[\Delta\theta^2]`):

    .. math::

        E[g^2]_t &= \rho E[g^2]_{t-1} + (1-\rho)\, g_t^2 \\
        \Delta_t &= \frac{\sqrt{E[\Delta^2]_{t-1} + \epsilon}}
                         {\sqrt{E[g^2]_t + \epsilon}}\, g_t \\
        E[\Delta^2]_t &= \rho E[\Delta^2]_{t-1} + (1-\rho)\, \Delta_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta\, \Delta_t

    The numerator gives the step the units of :math:`\theta` and replaces a
    learning rate (``lr`` = 1 is Zeiler's method). The notes' "AdaDelta"
    has no numerator: it is RMSprop (:func:`notes_rmsprop_update_`).
    Returns ``param``.
    """
    where = "adadelta_update_"
    _check_tensors(where, param, grad, state)
    _check_nonneg(where, lr=lr, eps=eps, weight_decay=weight_decay)
    check_in_range(where, "rho", rho, low=0.0, high=1.0)
    _check_flags(where, maximize=maximize)
    return _adadelta(
        param,
        grad,
        state,
        lr=lr,
        rho=rho,
        eps=eps,
        weight_decay=weight_decay,
        maximize=maximize,
    )


# --------------------------------------------------------------------- Adam


@torch.no_grad()
def _adam(
    param,
    grad,
    state,
    *,
    lr,
    betas,
    eps,
    weight_decay,
    amsgrad,
    maximize,
    decoupled_weight_decay,
):
    beta1, beta2 = betas
    if "exp_avg" not in state:
        state["step"] = _new_step()
        state["exp_avg"] = _zeros(param)
        state["exp_avg_sq"] = _zeros(param)
        if amsgrad:
            state["max_exp_avg_sq"] = _zeros(param)
    g = -grad if maximize else grad
    state["step"] += 1
    if weight_decay != 0:
        if decoupled_weight_decay:
            # AdamW: theta <- (1 - eta lambda) theta, outside the moments
            param.mul_(1 - lr * weight_decay)
        else:
            g = g.add(param, alpha=weight_decay)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    # m_t = beta1 m_{t-1} + (1 - beta1) g_t
    m.lerp_(g, 1 - beta1)
    # v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    t = state["step"].item()
    # bias corrections 1 - beta^t
    step_size = lr / (1 - beta1**t)
    c2_sqrt = (1 - beta2**t) ** 0.5
    if amsgrad:
        # vmax_t = max(vmax_{t-1}, v_t)
        vmax = state["max_exp_avg_sq"]
        torch.maximum(vmax, v, out=vmax)
        denom = (vmax.sqrt() / c2_sqrt).add_(eps)
    else:
        denom = (v.sqrt() / c2_sqrt).add_(eps)
    # theta_t = theta_{t-1} - eta m_hat_t / (sqrt(v_hat_t) + eps)
    param.addcdiv_(m, denom, value=-step_size)
    return param


def adam_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled_weight_decay: bool = False,
) -> torch.Tensor:
    r"""One Adam step on ``param`` in place (Kingma and Ba, 2015).

    ``state`` holds ``step``, ``exp_avg``, ``exp_avg_sq`` and, with
    ``amsgrad``, ``max_exp_avg_sq``:

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \hat m_t &= m_t / (1-\beta_1^t), \qquad
        \hat v_t = v_t / (1-\beta_2^t) \\
        \theta_t &= \theta_{t-1} - \eta\, \hat m_t / (\sqrt{\hat v_t}
                    + \epsilon)

    ``amsgrad`` (Reddi et al., 2018) uses the running maximum of
    :math:`v_t` in the denominator. ``weight_decay`` adds
    :math:`\lambda\theta` to the gradient (L2, coupled), or with
    ``decoupled_weight_decay`` multiplies :math:`\theta` by
    :math:`1-\eta\lambda` before the step (AdamW, Loshchilov and Hutter,
    2019). The notes' Adam has no bias correction
    (:func:`notes_adam_update_`). Returns ``param``.
    """
    where = "adam_update_"
    _check_tensors(where, param, grad, state)
    _check_nonneg(where, lr=lr, eps=eps, weight_decay=weight_decay)
    _check_betas(where, betas)
    _check_flags(
        where,
        amsgrad=amsgrad,
        maximize=maximize,
        decoupled_weight_decay=decoupled_weight_decay,
    )
    return _adam(
        param,
        grad,
        state,
        lr=lr,
        betas=tuple(betas),
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        maximize=maximize,
        decoupled_weight_decay=decoupled_weight_decay,
    )


# ---------------------------------------------------------- the notes' forms


@torch.no_grad()
def notes_adagrad_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict,
    *,
    lr: float,
    eps: float = 1e-6,
) -> torch.Tensor:
    r"""The notes' Adagrad, in place: :math:`c \leftarrow c + g^2`,
    :math:`\theta \leftarrow \theta - \eta\, g / \sqrt{c + \epsilon}`.

    :math:`\epsilon` is inside the root: a coordinate whose gradients are
    all zero so far gets the step :math:`\eta g/\sqrt{\epsilon}` at its first
    non-zero gradient :math:`g` (PyTorch's form: :math:`\eta g / (|g| +
    \epsilon)`, at most :math:`\eta`). ``state["cache"]`` holds :math:`c`.
    """
    where = "notes_adagrad_update_"
    _check_tensors(where, param, grad, state)
    _check_nonneg(where, lr=lr, eps=eps)
    c = state.setdefault("cache", _zeros(param))
    c.addcmul_(grad, grad)
    param.addcdiv_(grad, c.add(eps).sqrt_(), value=-lr)
    return param


@torch.no_grad()
def notes_rmsprop_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict,
    *,
    lr: float,
    decay: float = 0.9,
    eps: float = 1e-6,
) -> torch.Tensor:
    r"""The notes' RMSprop (and their "AdaDelta"), in place:
    :math:`c \leftarrow \gamma c + (1-\gamma) g^2`,
    :math:`\theta \leftarrow \theta - \eta\, g / \sqrt{c + \epsilon}`.

    ``state["cache"]`` holds :math:`c`. PyTorch's RMSprop adds
    :math:`\epsilon` outside the root (:func:`rmsprop_update_`).
    """
    where = "notes_rmsprop_update_"
    _check_tensors(where, param, grad, state)
    _check_nonneg(where, lr=lr, eps=eps)
    check_in_range(where, "decay", decay, low=0.0, high=1.0)
    c = state.setdefault("cache", _zeros(param))
    c.mul_(decay).addcmul_(grad, grad, value=1 - decay)
    param.addcdiv_(grad, c.add(eps).sqrt_(), value=-lr)
    return param


@torch.no_grad()
def notes_adam_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: dict,
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.Tensor:
    r"""The notes' Adam, in place, *without* bias correction:
    :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
    :math:`c \leftarrow \beta_2 c + (1-\beta_2) g^2`,
    :math:`\theta \leftarrow \theta - \eta\, m / (\sqrt{c} + \epsilon)`.

    With :math:`m_0 = c_0 = 0` both moments start biased towards zero: the
    first step is :math:`\eta (1-\beta_1)/\sqrt{1-\beta_2}\approx 3.16\,\eta`
    times the sign of :math:`g` for the default betas, not :math:`\eta`.
    ``state`` holds ``m`` and ``cache``.
    """
    where = "notes_adam_update_"
    _check_tensors(where, param, grad, state)
    _check_nonneg(where, lr=lr, eps=eps)
    _check_betas(where, betas)
    beta1, beta2 = betas
    m = state.setdefault("m", _zeros(param))
    c = state.setdefault("cache", _zeros(param))
    m.mul_(beta1).add_(grad, alpha=1 - beta1)
    c.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    param.addcdiv_(m, c.sqrt().add_(eps), value=-lr)
    return param


# --------------------------------------------------------------- optimizers


class _Twin(torch.optim.Optimizer):
    """An optimizer whose step calls ``_update`` on every parameter."""

    _update: Callable
    _hyper: tuple[str, ...]

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """Update every parameter that has a gradient; return ``closure()``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        name = type(self).__name__
        for group in self.param_groups:
            hyper = {k: group[k] for k in self._hyper}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse or torch.is_complex(p):
                    raise ValueError(
                        f"{name}: parameters and gradients must be real and "
                        "dense; got a sparse gradient or a complex parameter."
                    )
                type(self)._update(p, p.grad, self.state[p], **hyper)
        return loss


class Adagrad(_Twin):
    """``torch.optim.Adagrad`` rebuilt on :func:`adagrad_update_`.

    Same arguments, defaults, state (created at construction, as torch does)
    and ``state_dict``; ``foreach``, ``differentiable`` and ``fused`` are
    accepted only as their defaults (None/False), and sparse gradients are
    not supported.
    """

    _update = staticmethod(_adagrad)
    _hyper = (
        "lr",
        "lr_decay",
        "weight_decay",
        "eps",
        "maximize",
        "initial_accumulator_value",
    )

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ):
        where = "Adagrad"
        _check_nonneg(
            where,
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        _check_flags(where, maximize=maximize)
        _check_torch_only(
            where, foreach=foreach, differentiable=differentiable, fused=fused
        )
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            fused=fused,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = _new_step()
                state["sum"] = torch.full_like(
                    p,
                    group["initial_accumulator_value"],
                    memory_format=torch.preserve_format,
                )


class RMSprop(_Twin):
    """``torch.optim.RMSprop`` rebuilt on :func:`rmsprop_update_`.

    Same arguments, defaults, state and ``state_dict``; ``capturable``,
    ``foreach`` and ``differentiable`` only as their defaults.
    """

    _update = staticmethod(_rmsprop)
    _hyper = (
        "lr",
        "alpha",
        "eps",
        "weight_decay",
        "momentum",
        "centered",
        "maximize",
    )

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        where = "RMSprop"
        _check_nonneg(
            where,
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
        )
        _check_flags(where, centered=centered, maximize=maximize)
        _check_torch_only(
            where,
            capturable=capturable,
            foreach=foreach,
            differentiable=differentiable,
        )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)


class Adadelta(_Twin):
    """``torch.optim.Adadelta`` rebuilt on :func:`adadelta_update_`.

    Same arguments, defaults, state and ``state_dict``; ``foreach``,
    ``capturable`` and ``differentiable`` only as their defaults.
    """

    _update = staticmethod(_adadelta)
    _hyper = ("lr", "rho", "eps", "weight_decay", "maximize")

    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        where = "Adadelta"
        _check_nonneg(where, lr=lr, eps=eps, weight_decay=weight_decay)
        check_in_range(where, "rho", rho, low=0.0, high=1.0)
        _check_flags(where, maximize=maximize)
        _check_torch_only(
            where,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
        )
        defaults = dict(
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            capturable=capturable,
            foreach=foreach,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)


class Adam(_Twin):
    """``torch.optim.Adam`` rebuilt on :func:`adam_update_`.

    Same arguments, defaults, state and ``state_dict``; ``foreach``,
    ``capturable``, ``differentiable`` and ``fused`` only as their defaults;
    ``lr`` and ``betas`` are numbers, not tensors.
    """

    _update = staticmethod(_adam)
    _hyper = (
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "amsgrad",
        "maximize",
        "decoupled_weight_decay",
    )

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ):
        where = type(self).__name__
        _check_nonneg(where, lr=lr, eps=eps, weight_decay=weight_decay)
        _check_betas(where, betas)
        _check_flags(
            where,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        _check_torch_only(
            where,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
        )
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)


class AdamW(Adam):
    """``torch.optim.AdamW``: :class:`Adam` with decoupled weight decay.

    Default ``weight_decay`` 1e-2; ``decoupled_weight_decay`` is always True.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )
