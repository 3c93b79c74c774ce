r"""Convergence rates of gradient descent and heavy-ball momentum on quadratics.

Book: Part II, chapter 3, "Basic algorithms" (rate vs condition number, best
momentum).

On :math:`f(\theta) = \tfrac12 \theta^\top A \theta` with eigenvalues in
:math:`[\mu, L]` and :math:`\kappa = L/\mu`, the classical results are:

* gradient descent with :math:`\alpha = 2/(L+\mu)` contracts the error by
  :math:`(\kappa-1)/(\kappa+1)` per step;
* heavy-ball momentum (Polyak, 1964),
  :math:`\theta_{t+1} = \theta_t - \alpha\nabla f(\theta_t)
  + \beta(\theta_t - \theta_{t-1})`,
  with :math:`\alpha = 4/(\sqrt L+\sqrt\mu)^2`,
  :math:`\beta = \bigl((\sqrt\kappa-1)/(\sqrt\kappa+1)\bigr)^2`, contracts it by
  :math:`(\sqrt\kappa-1)/(\sqrt\kappa+1)` per step (asymptotically).

This is ``torch.optim.SGD(lr=α, momentum=β)``: its iterates obey the same
recurrence. Its stability limit is :math:`\alpha L < 2(1+\beta)` (plain GD:
:math:`\alpha L < 2`), and at Polyak's parameters every eigen-direction
contracts at the same rate :math:`\sqrt\beta` (complex roots).
"""

from __future__ import annotations

import math

import torch

from dlcourse._validation import _fail, check_in_range, check_int

__all__ = [
    "gd_optimal_step",
    "gd_rate",
    "heavy_ball_parameters",
    "heavy_ball_rate",
    "heavy_ball_spectral_radius",
    "fit_contraction",
    "heavy_ball_errors",
]


def _curvatures(where, L, mu):
    mu = check_in_range(where, "mu", mu, low=0.0, low_inclusive=False)
    L = check_in_range(where, "L", L, low=mu)
    return L, mu


def gd_optimal_step(L: float, mu: float) -> float:
    r"""The step :math:`\alpha^* = 2/(L+\mu)`.

    It minimizes GD's worst-case contraction over the spectrum.
    """
    L, mu = _curvatures("gd_optimal_step", L, mu)
    return 2.0 / (L + mu)


def gd_rate(kappa: float) -> float:
    r"""GD's contraction per step at :math:`\alpha^*`.

    It is :math:`(\kappa-1)/(\kappa+1)`.
    """
    kappa = check_in_range("gd_rate", "kappa", kappa, low=1.0)
    return (kappa - 1.0) / (kappa + 1.0)


def heavy_ball_parameters(L: float, mu: float) -> tuple[float, float]:
    r"""Polyak's optimal heavy-ball parameters ``(alpha, beta)``.

    :math:`\alpha = 4/(\sqrt L+\sqrt\mu)^2`,
    :math:`\beta = ((\sqrt\kappa-1)/(\sqrt\kappa+1))^2`.
    """
    L, mu = _curvatures("heavy_ball_parameters", L, mu)
    alpha = 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2
    s = math.sqrt(L / mu)
    beta = ((s - 1.0) / (s + 1.0)) ** 2
    return alpha, beta


def heavy_ball_rate(kappa: float) -> float:
    r"""Heavy ball's asymptotic contraction per step at Polyak's parameters.

    It is :math:`(\sqrt\kappa-1)/(\sqrt\kappa+1) = \sqrt{\beta^*}`.
    """
    kappa = check_in_range("heavy_ball_rate", "kappa", kappa, low=1.0)
    s = math.sqrt(kappa)
    return (s - 1.0) / (s + 1.0)


def heavy_ball_spectral_radius(
    lr: float, momentum: float, eigenvalues
) -> float:
    r"""Largest root modulus of :math:`z^2 - (1+\beta-\alpha\lambda)z + \beta`.

    The maximum is over the ``eigenvalues`` :math:`\lambda`.

    Each eigen-direction of the quadratic evolves by the 2x2 matrix
    :math:`\begin{pmatrix}1+\beta-\alpha\lambda & -\beta\\ 1 & 0\end{pmatrix}`;
    its spectral radius is the asymptotic contraction per step
    (``momentum=0`` gives plain GD, :math:`\max_\lambda |1-\alpha\lambda|`).
    """
    check_in_range("heavy_ball_spectral_radius", "lr", lr, low=0.0)
    check_in_range("heavy_ball_spectral_radius", "momentum", momentum, low=0.0)
    radius = 0.0
    for lam in (
        torch.as_tensor(eigenvalues, dtype=torch.float64).flatten().tolist()
    ):
        b = 1.0 + momentum - lr * lam
        disc = complex(b * b - 4.0 * momentum) ** 0.5
        radius = max(radius, abs((b + disc) / 2), abs((b - disc) / 2))
    return radius


def fit_contraction(errors, *, start: int | None = None) -> float:
    r"""Per-step contraction :math:`\rho`.

    Fitted to :math:`\lVert e_t\rVert \approx C\rho^t`:

    A least-squares line through :math:`\log\lVert e_t\rVert` for
    :math:`t \ge` ``start`` (default: the second half, past the transient);
    errors below ``1e-250`` (near underflow) are left out. Returns
    :math:`\rho = e^{\text{slope}}`, or ``inf`` if the run diverged (an error
    is infinite or NaN).
    """
    e = torch.as_tensor(errors, dtype=torch.float64).flatten()
    if not torch.isfinite(e).all():
        return math.inf
    start = (
        len(e) // 2
        if start is None
        else check_int("fit_contraction", "start", start, low=0)
    )
    t = torch.arange(len(e), dtype=torch.float64)[start:]
    e = e[start:]
    keep = e > 1e-250
    if int(keep.sum()) < 2:
        _fail(
            "fit_contraction",
            "errors",
            "at least 2 values > 1e-250 from 'start' on",
            int(keep.sum()),
        )
    t, y = t[keep], e[keep].log()
    slope = ((t - t.mean()) * (y - y.mean())).sum() / (
        (t - t.mean()) ** 2
    ).sum()
    return math.exp(slope.item())


def heavy_ball_errors(
    eigenvalues, *, lr, momentum, steps: int, x0=None
) -> torch.Tensor:
    r"""Distances :math:`\lVert\theta_t - \theta^*\rVert` of heavy ball.

    On a diagonal quadratic with the given eigenvalues.

    ``lr`` and ``momentum`` may be tensors of one shape (a grid): all runs are
    simulated at once with
    :math:`\theta_{t+1} = \theta_t - \alpha\Lambda\theta_t
    + \beta(\theta_t - \theta_{t-1})`,
    :math:`\theta_{-1} = \theta_0` (the first step is plain GD, as in
    ``torch.optim.SGD``). Start ``x0`` defaults to all ones (every
    eigen-direction excited). Returns shape ``(steps + 1, *grid_shape)``.
    """
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64).flatten()  # (d,)
    check_int("heavy_ball_errors", "steps", steps, low=0)
    alpha = torch.as_tensor(lr, dtype=torch.float64)
    beta = torch.as_tensor(momentum, dtype=torch.float64)
    if (alpha < 0).any() or (beta < 0).any():
        _fail(
            "heavy_ball_errors", "lr and momentum", ">= 0", "a negative value"
        )
    grid = torch.broadcast_shapes(alpha.shape, beta.shape)
    x0 = (
        torch.ones_like(lam)
        if x0 is None
        else torch.as_tensor(x0, dtype=torch.float64)
    )
    if x0.shape != lam.shape:
        _fail(
            "heavy_ball_errors",
            "x0",
            f"of shape {tuple(lam.shape)}",
            tuple(x0.shape),
        )
    theta = x0.expand(*grid, len(lam)).clone()  # (*grid, d)
    prev = theta.clone()
    a, b = alpha.expand(grid)[..., None], beta.expand(grid)[..., None]
    errors = [theta.norm(dim=-1)]
    for _ in range(steps):
        # theta_{t+1} = theta_t - alpha lam theta_t
        #               + beta (theta_t - theta_{t-1})
        theta, prev = theta - a * lam * theta + b * (theta - prev), theta
        errors.append(theta.norm(dim=-1))
    return torch.stack(errors)
