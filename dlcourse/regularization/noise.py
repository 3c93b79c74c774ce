r"""Noise robustness: noise on the inputs, on the weights and on the targets.

Book: Part I, chapter 5, "Noise robustness".

* **Input noise** (:func:`add_input_noise`): every minibatch sees
  :math:`\tilde x = x + \sigma\varepsilon`,
  :math:`\varepsilon\sim\mathcal N(0, I)`. For least squares its expected loss
  is ridge regression with :math:`\alpha = n\sigma^2` (Bishop 1995); the
  Monte-Carlo :func:`noisy_least_squares` checks that against
  :func:`dlcourse.regularization.underconstrained.ridge`.
* **Weight noise** (:func:`perturbed_weights`): the forward and backward pass
  run at :math:`w + \epsilon_W`, :math:`\epsilon_W\sim\mathcal N(0,\eta I)`;
  the optimizer then updates the clean weights. :func:`weight_noise_terms`
  computes the terms of the small-:math:`\eta` expansion of the expected loss.
  :func:`weight_noise_loss` estimates the expected loss itself by Monte Carlo.
* **Label smoothing** (noise on the targets) and the calibration measure it is
  judged by live in :mod:`dlcourse.regularization.calibration`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from torch.func import functional_call, hessian, jacrev, vmap

from dlcourse._validation import (
    check_generator,
    check_in_range,
    check_int,
    check_type,
)

__all__ = [
    "add_input_noise",
    "noisy_least_squares",
    "perturbed_weights",
    "weight_noise_terms",
    "weight_noise_loss",
]


def _check_xy(
    where: str, X: torch.Tensor, y: torch.Tensor, x_name: str = "X"
) -> None:
    check_type(where, x_name, X, torch.Tensor, "a torch.Tensor")
    check_type(where, "y", y, torch.Tensor, "a torch.Tensor")
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"{where}: '{x_name}' must be (n, d) and 'y' (n,) with the same n; "
            f"got {tuple(X.shape)} and {tuple(y.shape)}."
        )


def add_input_noise(
    x: torch.Tensor, *, sigma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Return :math:`\tilde x = x + \sigma\varepsilon`, with
    :math:`\varepsilon\sim\mathcal N(0, I)`.

    Call it on every minibatch (a fresh draw each time) to train with input
    noise, e.g. as
    ``loss_fn(model(add_input_noise(x_b, sigma=0.1, generator=g)), y_b)``.
    """
    check_type("add_input_noise", "x", x, torch.Tensor, "a torch.Tensor")
    sigma = check_in_range("add_input_noise", "sigma", sigma, low=0.0)
    check_generator("add_input_noise", generator)
    noise = torch.randn(
        x.shape, generator=generator, dtype=x.dtype, device=x.device
    )
    return x + sigma * noise


def noisy_least_squares(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    sigma: float,
    n_draws: int,
    generator: torch.Generator | None = None,
    chunk: int = 256,
) -> torch.Tensor:
    r"""Least squares on ``n_draws`` noisy copies of the data (Monte Carlo).

    With :math:`\tilde X_r = X + \sigma E_r` (entries of :math:`E_r` standard
    normal), this minimizes
    :math:`\frac1R\sum_{r=1}^R \lVert \tilde X_r w - y\rVert^2`:

    .. math::

        w_R = \Bigl(\tfrac1R\sum_r \tilde X_r^\top \tilde X_r\Bigr)^{-1}
              \tfrac1R\sum_r \tilde X_r^\top y
        \;\xrightarrow{R\to\infty}\; (X^\top X + n\sigma^2 I)^{-1} X^\top y ,

    the ridge solution with :math:`\alpha = n\sigma^2`, because
    :math:`\mathbb E[\tilde X^\top \tilde X] = X^\top X + n\sigma^2 I` and
    :math:`\mathbb E[\tilde X^\top y] = X^\top y`. Copies are drawn ``chunk``
    at a time.
    """
    _check_xy("noisy_least_squares", X, y)
    sigma = check_in_range("noisy_least_squares", "sigma", sigma, low=0.0)
    check_int("noisy_least_squares", "n_draws", n_draws, low=1)
    check_int("noisy_least_squares", "chunk", chunk, low=1)
    check_generator("noisy_least_squares", generator)
    gram = torch.zeros(X.shape[1], X.shape[1], dtype=X.dtype, device=X.device)
    moment = torch.zeros(X.shape[1], dtype=X.dtype, device=X.device)
    for start in range(0, n_draws, chunk):
        r = min(chunk, n_draws - start)
        Xr = add_input_noise(
            X.expand(r, *X.shape), sigma=sigma, generator=generator
        )  # (r, n, d)
        gram += Xr.reshape(-1, X.shape[1]).T @ Xr.reshape(
            -1, X.shape[1]
        )  # sum_r Xr^T Xr
        moment += Xr.reshape(-1, X.shape[1]).T @ y.repeat(r)  # sum_r Xr^T y
    return torch.linalg.solve(gram / n_draws, moment / n_draws)


@contextlib.contextmanager
def perturbed_weights(
    model: nn.Module, *, eta: float, generator: torch.Generator | None = None
) -> Iterator[nn.Module]:
    r"""Inside the block the parameters are :math:`w + \epsilon_W`, with
    :math:`\epsilon_W\sim\mathcal N(0, \eta I)`.

    ``eta`` is the noise *variance* (the notes' :math:`\eta`). On exit the exact
    original values are copied back, also after an exception. Gradients computed
    inside the block (at the perturbed point) stay in ``.grad``, so one step of
    weight-noise training reads::

        with perturbed_weights(model, eta=1e-3, generator=g):
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
        optimizer.step()  # updates the clean weights
    """
    check_type(
        "perturbed_weights", "model", model, nn.Module, "a torch.nn.Module"
    )
    eta = check_in_range("perturbed_weights", "eta", eta, low=0.0)
    check_generator("perturbed_weights", generator)
    params = list(model.parameters())
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            # w <- w + sqrt(eta) * N(0, I)
            p.add_(
                torch.randn(p.shape, generator=generator, dtype=p.dtype),
                alpha=eta**0.5,
            )
    try:
        yield model
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)


def weight_noise_terms(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> dict[str, float]:
    r"""Terms of the small-noise expansion of the squared loss, weight noise.

    For a scalar-output ``model`` and
    :math:`L(w) = \frac1n\sum_i (\hat y_i(w) - y_i)^2`, a Taylor expansion to
    second order and :math:`\mathbb E[\epsilon\epsilon^\top] = \eta I` give

    .. math::

        \mathbb E_{\epsilon}\,L(w + \epsilon) = L(w)
        + \eta\,\underbrace{\tfrac1n\textstyle\sum_i
          \lVert\nabla_w \hat y_i\rVert^2}_{\text{penalty}}
        + \eta\,\underbrace{\tfrac1n\textstyle\sum_i (\hat y_i - y_i)\,
          \operatorname{tr}\nabla_w^2 \hat y_i}_{\text{curvature}}
        + O(\eta^2).

    The notes (after Goodfellow et al., section 7.5) keep only the penalty; the
    curvature term vanishes where :math:`\hat y = \mathbb E[y\mid x]` and is
    small when the residuals are. Returns ``{"loss", "penalty", "curvature"}``
    (floats).
    Exact derivatives by ``torch.func``; meant for small networks.
    """
    check_type(
        "weight_noise_terms", "model", model, nn.Module, "a torch.nn.Module"
    )
    _check_xy("weight_noise_terms", x, y, "x")
    params = {k: v.detach() for k, v in model.named_parameters()}

    def predict(p, xi):  # scalar prediction for one example
        return functional_call(model, p, (xi[None],)).reshape(())

    with torch.no_grad():
        out_shape = tuple(model(x).shape)
    if out_shape not in ((len(x),), (len(x), 1)):
        raise ValueError(
            "weight_noise_terms: 'model' must output one number per example,"
            f" shape (n,) or (n, 1); got {out_shape}."
        )
    y_hat = vmap(predict, in_dims=(None, 0))(params, x)  # (n,)
    grads = vmap(jacrev(predict), in_dims=(None, 0))(
        params, x
    )  # {name: (n, *shape)}
    hessians = vmap(hessian(predict), in_dims=(None, 0))(
        params, x
    )  # {name: {name: (n, *s, *s)}}
    sq_norm = sum(g.flatten(1).pow(2).sum(1) for g in grads.values())  # (n,)
    trace = sum(
        hessians[k][k]
        .reshape(len(x), v.numel(), v.numel())
        .diagonal(dim1=1, dim2=2)
        .sum(1)
        for k, v in params.items()
    )  # (n,)
    residual = y_hat - y
    return {
        "loss": residual.pow(2).mean().item(),
        "penalty": sq_norm.mean().item(),
        "curvature": (residual * trace).mean().item(),
    }


def weight_noise_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eta: float,
    n_draws: int,
    generator: torch.Generator | None = None,
) -> float:
    r"""Monte-Carlo estimate of :math:`\mathbb E_\epsilon L(w+\epsilon)`.

    :math:`\epsilon\sim\mathcal N(0,\eta I)` and :math:`L` is the mean squared
    error of ``model`` on ``(x, y)``. Two standard variance reductions make
    the estimate sharp enough to test a Taylor expansion: the draws come in
    antithetic pairs :math:`\pm\epsilon` (``n_draws`` pairs, so the sample
    mean is exactly 0), and they are rescaled so that their sample covariance
    is exactly :math:`\eta I` (moment matching; needs ``n_draws`` at least the
    number of parameters). Then the first- and second-order terms of
    :math:`L(w+\epsilon)` are averaged exactly and only the higher orders
    carry Monte-Carlo error. The perturbed networks are evaluated at once with
    ``vmap``.
    """
    check_type(
        "weight_noise_loss", "model", model, nn.Module, "a torch.nn.Module"
    )
    _check_xy("weight_noise_loss", x, y, "x")
    eta = check_in_range("weight_noise_loss", "eta", eta, low=0.0)
    check_generator("weight_noise_loss", generator)
    params = {k: v.detach() for k, v in model.named_parameters()}
    n_params = sum(v.numel() for v in params.values())
    check_int("weight_noise_loss", "n_draws", n_draws, low=n_params)
    dtype = next(iter(params.values())).dtype
    z = torch.randn(n_draws, n_params, generator=generator, dtype=dtype)
    # moment matching: Z <- Z (Z^T Z / N)^{-1/2}, so (1/N) sum z z^T = I
    evals, evecs = torch.linalg.eigh(z.T @ z / n_draws)
    z = z @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T
    eps = eta**0.5 * z  # (N, p)

    def loss_at(e):  # L(w + e) for one flat perturbation e
        chunks = torch.split(e, [v.numel() for v in params.values()])
        p = {
            k: v + c.reshape(v.shape)
            for (k, v), c in zip(params.items(), chunks)
        }
        return (
            (functional_call(model, p, (x,)).reshape(y.shape) - y).pow(2).mean()
        )

    # antithetic pairs: average L(w + e) and L(w - e)
    return (0.5 * (vmap(loss_at)(eps) + vmap(loss_at)(-eps))).mean().item()
