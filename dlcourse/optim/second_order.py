r"""Approximate second-order methods: Newton's step with damping, conjugate
gradients, Hutchinson's diagonal estimator and AdaHessian.

Book: Part II, chapter 6, "Approximate second-order methods".

``hutchinson_diagonal`` estimates :math:`\operatorname{diag}(H)` from
Hessian-vector products only, :math:`E[z \odot Hz] = \operatorname{diag}(H)`
for Rademacher :math:`z`; ``AdaHessian`` (Yao et al., 2021) is Adam with
that estimate (spatially averaged, squared and averaged over steps) in place
of the squared gradient; ``adahessian_update_`` is its update of one tensor.
L-BFGS is torch's own ``torch.optim.LBFGS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from dlcourse._validation import (
    _fail,
    check_generator,
    check_in_range,
    check_int,
    check_type,
)

__all__ = [
    "newton_step",
    "conjugate_gradient",
    "rademacher_like",
    "hutchinson_diagonal",
    "adahessian_update_",
    "AdaHessian",
]


def newton_step(
    grad: torch.Tensor, hessian: torch.Tensor, *, damping: float = 0.0
) -> torch.Tensor:
    r"""The damped Newton step :math:`-(H + \lambda I)^{-1} g`.

    With :math:`\lambda = 0` it jumps to the stationary point of the local
    quadratic model, whatever its kind: at a saddle it moves *towards* the
    saddle along the negative-curvature directions. A damping :math:`\lambda`
    larger than :math:`-\lambda_{\min}(H)` makes :math:`H+\lambda I` positive
    definite, and the step a descent direction.
    """
    where = "newton_step"
    check_type(where, "grad", grad, torch.Tensor, "a torch.Tensor")
    check_type(where, "hessian", hessian, torch.Tensor, "a torch.Tensor")
    n = grad.numel()
    if grad.dim() != 1 or hessian.shape != (n, n):
        raise ValueError(
            f"{where}: 'grad' must be (n,) and 'hessian' (n, n); got "
            f"{tuple(grad.shape)} and {tuple(hessian.shape)}."
        )
    if grad.dtype != hessian.dtype:
        raise ValueError(
            f"{where}: 'grad' and 'hessian' must have the same dtype; got "
            f"{grad.dtype} and {hessian.dtype}."
        )
    check_in_range(where, "damping", damping, low=0.0)
    eye = torch.eye(n, dtype=hessian.dtype, device=hessian.device)
    return -torch.linalg.solve(hessian + damping * eye, grad)


def conjugate_gradient(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    *,
    x0: torch.Tensor | None = None,
    max_iter: int | None = None,
    tol: float = 1e-10,
) -> tuple[torch.Tensor, list[float]]:
    r"""Solve :math:`Ax = b` for a symmetric positive-definite :math:`A`
    given only ``matvec(v)`` :math:`= Av` (Hestenes and Stiefel, 1952).

    Each direction is :math:`A`-conjugate to the previous ones, and
    :math:`x_k` minimizes the :math:`A`-norm of the error,
    :math:`\lVert x - x^*\rVert_A`, over :math:`x_0 + \mathcal K_k(A, r_0)`
    (the 2-norm of the residual need not fall monotonically). So in exact
    arithmetic the method ends in at most :math:`n` steps; with :math:`k`
    distinct eigenvalues, in :math:`k` (in floating point, rounding loses
    conjugacy and an ill-conditioned system takes more). ``x0`` is the
    start (default 0), a tensor shaped like ``b``. Stops when
    :math:`\lVert r\rVert \le` ``tol`` :math:`\cdot \lVert b\rVert`.
    Returns :math:`x` and the residual norms, starting with the initial one.
    """
    where = "conjugate_gradient"
    if not callable(matvec):
        raise TypeError(f"{where}: 'matvec' must be callable; got {matvec!r}.")
    check_type(where, "b", b, torch.Tensor, "a torch.Tensor")
    if b.dim() != 1:
        raise ValueError(f"{where}: 'b' must be (n,); got {tuple(b.shape)}.")
    n = b.numel()
    max_iter = (
        n if max_iter is None else check_int(where, "max_iter", max_iter, low=1)
    )
    check_in_range(where, "tol", tol, low=0.0)
    if x0 is not None:
        check_type(where, "x0", x0, torch.Tensor, "a torch.Tensor or None")
        if x0.shape != b.shape:
            _fail(where, "x0", f"of shape {tuple(b.shape)}", tuple(x0.shape))
    x = torch.zeros_like(b) if x0 is None else x0.detach().clone()
    r = b - matvec(x)
    d = r.clone()
    rr = r @ r
    norms = [float(rr.sqrt())]
    stop = tol * float(b.norm())
    for _ in range(max_iter):
        if norms[-1] <= stop:
            break
        Ad = matvec(d)
        curvature = d @ Ad
        if curvature <= 0:
            raise ValueError(
                f"{where}: 'matvec' must be positive definite; got "
                f"d^T A d = {float(curvature):.3g} <= 0."
            )
        step = rr / curvature
        x = x + step * d
        r = r - step * Ad
        rr_new = r @ r
        d = r + (rr_new / rr) * d
        rr = rr_new
        norms.append(float(rr.sqrt()))
    return x, norms


def rademacher_like(t: torch.Tensor, generator=None) -> torch.Tensor:
    """A tensor of t's shape with independent entries +-1, each w.p. 1/2."""
    check_type("rademacher_like", "t", t, torch.Tensor, "a torch.Tensor")
    check_generator("rademacher_like", generator)
    z = torch.randint(0, 2, t.shape, generator=generator, dtype=torch.int8)
    return z.to(t.dtype) * 2 - 1


def hutchinson_diagonal(
    hvp: Callable[[list[torch.Tensor]], Sequence[torch.Tensor]],
    like: Sequence[torch.Tensor],
    *,
    n_probes: int = 1,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    r"""Hutchinson's estimate of the Hessian's diagonal (Bekas et al., 2007).

    :math:`\widehat{D} = \frac1m\sum_{k=1}^m z_k \odot H z_k` with
    Rademacher :math:`z_k` (``n_probes`` :math:`= m`). Since
    :math:`E[z_i z_j] = \delta_{ij}`, :math:`E[(z \odot Hz)_i] = H_{ii}`:
    unbiased, with variance :math:`\frac1m\sum_{j\ne i} H_{ij}^2` per entry
    (zero for a diagonal :math:`H`). ``hvp(vs)`` returns :math:`H v` for a
    list of tensors shaped like ``like`` (one per parameter).
    """
    where = "hutchinson_diagonal"
    if not callable(hvp):
        raise TypeError(f"{where}: 'hvp' must be callable; got {hvp!r}.")
    like = list(like)
    if not like or not all(isinstance(t, torch.Tensor) for t in like):
        raise TypeError(f"{where}: 'like' must be a non-empty list of tensors.")
    check_int(where, "n_probes", n_probes, low=1)
    check_generator(where, generator)
    total = [torch.zeros_like(t) for t in like]
    for _ in range(n_probes):
        zs = [rademacher_like(t, generator) for t in like]
        for acc, z, hz in zip(total, zs, hvp(zs), strict=True):
            acc.add_(z * hz)
    return [acc / n_probes for acc in total]


def _spatial_average(d: torch.Tensor) -> torch.Tensor:
    """|D| averaged over a kernel's spatial positions (dims 2.., conv)."""
    if d.dim() <= 2:
        return d.abs()
    return d.abs().mean(dim=tuple(range(2, d.dim())), keepdim=True).expand_as(d)


def _gradient_and_probe(loss, params, generator):
    """{p: (g, z * Hz)} for every parameter that reaches the loss."""
    grads = torch.autograd.grad(
        loss, params, create_graph=True, allow_unused=True
    )
    # a parameter the loss does not use is skipped, as in torch.optim
    used = [(p, g) for p, g in zip(params, grads) if g is not None]
    zs = [rademacher_like(p, generator) for p, _ in used]
    # Hz = d(g . z)/d theta, a second backward pass through g's graph
    # (a gradient without a graph is constant: its Hessian rows are 0)
    curved = [(g, z) for (_, g), z in zip(used, zs) if g.requires_grad]
    hzs = [None] * len(used)
    if curved:
        hzs = torch.autograd.grad(
            [g for g, _ in curved],
            [p for p, _ in used],
            grad_outputs=[z for _, z in curved],
            allow_unused=True,
        )
    return {
        p: (g.detach(), z * hz if hz is not None else torch.zeros_like(p))
        for (p, g), z, hz in zip(used, zs, hzs)
    }


def _check_hyper(where, lr, betas, eps, weight_decay, hessian_power):
    check_in_range(where, "lr", lr, low=0.0)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(
            f"{where}: 'betas' must be a pair with each in [0, 1); "
            f"got {betas!r}."
        )
    for i, beta in enumerate(betas):
        check_in_range(
            where, f"betas[{i}]", beta, low=0.0, high=1.0, high_inclusive=False
        )
    check_in_range(where, "eps", eps, low=0.0)
    check_in_range(where, "weight_decay", weight_decay, low=0.0)
    check_in_range(where, "hessian_power", hessian_power, low=0.0, high=1.0)


def adahessian_update_(
    param: torch.Tensor,
    grad: torch.Tensor,
    d: torch.Tensor,
    state: dict,
    *,
    lr: float = 0.15,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-4,
    weight_decay: float = 0.0,
    hessian_power: float = 1.0,
) -> torch.Tensor:
    r"""One AdaHessian step on ``param`` in place (Yao et al., 2021).

    Parameters
    ----------
    param, grad : torch.Tensor
        The parameter and its gradient :math:`g_t`.
    d : torch.Tensor
        The curvature estimate :math:`D^{(s)}_t`, shaped like ``param``:
        the (spatially averaged) :math:`|z\odot Hz|`.
    state : dict
        ``step``, ``exp_avg`` and ``exp_hessian_diag_sq``, created on the
        first call.
    lr, betas, eps, weight_decay, hessian_power
        :math:`\eta`, :math:`(\beta_1, \beta_2)`, :math:`\epsilon`,
        :math:`\lambda` and :math:`k`, as in :class:`AdaHessian`.

    Returns ``param``.
    """
    where = "adahessian_update_"
    for name, t in (("param", param), ("grad", grad), ("d", d)):
        check_type(where, name, t, torch.Tensor, "a torch.Tensor")
        if t.shape != param.shape:
            _fail(where, name, f"of shape {tuple(param.shape)}", t.shape)
    check_type(where, "state", state, dict, "a dict")
    _check_hyper(where, lr, betas, eps, weight_decay, hessian_power)
    beta1, beta2 = betas
    if not state:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param)
        state["exp_hessian_diag_sq"] = torch.zeros_like(param)
    state["step"] += 1
    t = state["step"]
    m, v = state["exp_avg"], state["exp_hessian_diag_sq"]
    # m_t <- beta1 m_{t-1} + (1 - beta1) g_t
    m.mul_(beta1).add_(grad, alpha=1 - beta1)
    # v_t <- beta2 v_{t-1} + (1 - beta2) D_t^2
    v.mul_(beta2).addcmul_(d, d, value=1 - beta2)
    c1, c2 = 1 - beta1**t, 1 - beta2**t
    # (sqrt(v_t / (1 - beta2^t)))^k + eps: eps after the power
    denom = (v.sqrt() / math.sqrt(c2)).pow(hessian_power).add_(eps)
    # theta_t <- theta_{t-1} - lr (m_t / (1 - beta1^t) / denom + wd theta)
    update = m / c1 / denom + weight_decay * param
    return param.sub_(lr * update)


class AdaHessian(torch.optim.Optimizer):
    r"""AdaHessian (Yao et al., 2021): Adam with a Hessian-diagonal estimate.

    Each ``step(closure)`` (``closure()`` returns the loss, with its graph;
    no ``backward`` needed) computes the gradient :math:`g` with a graph, the
    Hutchinson estimate :math:`D = z\odot Hz` (one Rademacher probe a step,
    by double backpropagation), averages :math:`|D|` over the spatial
    positions of convolution kernels (``spatial_average``; :math:`D^{(s)}`),
    and then (:func:`adahessian_update_`)

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, \bigl(D^{(s)}_t\bigr)^2 \\
        \theta_t &= \theta_{t-1} - \eta \Big(
           \frac{m_t/(1-\beta_1^t)}{(\sqrt{v_t/(1-\beta_2^t)})^{k} + \epsilon}
           + \lambda\,\theta_{t-1}\Big)

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups; a parameter that does not reach the
        loss is skipped.
    lr, betas, eps, weight_decay : float
        :math:`\eta`, :math:`(\beta_1, \beta_2)`, :math:`\epsilon` and the
        decoupled weight decay :math:`\lambda`. Defaults are the authors'.
    hessian_power : float
        :math:`k \in [0, 1]`; 1 is the paper's default. With 0 the step is
        :math:`\eta\,\hat m_t / (1 + \epsilon)`: the bias-corrected EMA
        momentum (Adam's numerator), i.e. SGD with dampened momentum, not
        ``torch.optim.SGD(momentum=beta1)``, whose rate is
        :math:`\eta/(1-\beta_1)` in the long run.
    spatial_average : bool
        Average :math:`|D|` over dims 2.. of a tensor (conv kernels).
    generator : torch.Generator or None
        The source of the probes.

    Notes
    -----
    Differences from the paper: as in the authors' code, :math:`|D|` rather
    than :math:`D` is averaged over a kernel, and the weight decay is
    decoupled; tensors of 3 or more dims (Conv1d as well as Conv2d) are
    averaged over all their dims from 2 on; the Hessian is estimated on every
    step (the authors' later code can refresh it every few steps). With
    noise, :math:`E[D_i^2] = (H^2)_{ii}`, so :math:`\sqrt{v_t}` estimates
    :math:`\sqrt{(H^2)_{ii}} \ge |H|_{ii} \ge |H_{ii}|`, not
    :math:`|H_{ii}|`. State keys: ``step``, ``exp_avg``,
    ``exp_hessian_diag_sq``.
    """

    def __init__(
        self,
        params,
        lr: float = 0.15,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-4,
        weight_decay: float = 0.0,
        hessian_power: float = 1.0,
        *,
        spatial_average: bool = True,
        generator: torch.Generator | None = None,
    ):
        where = "AdaHessian"
        _check_hyper(where, lr, betas, eps, weight_decay, hessian_power)
        check_type(where, "spatial_average", spatial_average, bool, "a bool")
        check_generator(where, generator)
        self.generator = generator
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            hessian_power=hessian_power,
            spatial_average=spatial_average,
        )
        super().__init__(params, defaults)

    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """One update; ``closure()`` must return the loss with its graph."""
        if closure is None:
            raise ValueError(
                "AdaHessian.step: 'closure' must be a callable returning the "
                "loss (Hessian-vector products need the graph); got None."
            )
        params = [
            p for g in self.param_groups for p in g["params"] if p.requires_grad
        ]
        with torch.enable_grad():
            loss = closure()
            info = _gradient_and_probe(loss, params, self.generator)
        keys = ("lr", "betas", "eps", "weight_decay", "hessian_power")
        with torch.no_grad():
            for group in self.param_groups:
                hyper = {key: group[key] for key in keys}
                for p in group["params"]:
                    if p not in info:
                        continue
                    grad, d = info[p]
                    p.grad = grad.clone()
                    if group["spatial_average"]:
                        d = _spatial_average(d)
                    adahessian_update_(p, grad, d, self.state[p], **hyper)
        return loss.detach()
