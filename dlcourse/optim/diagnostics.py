r"""Looking inside training: loss Hessians, eigenvalues, per-layer statistics.

Book: Part II, chapter 2, "Challenges in neural network optimization" (and
chapter 1 for the Hessian test of a local minimum).

A model's loss is seen as a function of one flat parameter vector
:math:`\theta \in \mathbb{R}^P`, so that autograd gives its Hessian

.. math:: H_{ij}
          = \frac{\partial^2 J(\theta)}{\partial\theta_i\,\partial\theta_j},

whose eigenvalues tell a minimum (all :math:`\ge 0`) from a saddle (both
signs). ``LayerMonitor`` records, with forward and backward hooks, how large
each layer's output and the gradient flowing back into it are.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from dlcourse._validation import _fail, check_type

__all__ = [
    "flat_parameters",
    "flat_loss_function",
    "loss_hessian",
    "hessian_eigenvalues",
    "hessian_vector_product",
    "LayerMonitor",
]


def _check_data(where: str, model, x, y) -> None:
    check_type(where, "model", model, nn.Module, "a torch.nn.Module")
    check_type(where, "x", x, torch.Tensor, "a torch.Tensor")
    check_type(where, "y", y, torch.Tensor, "a torch.Tensor")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{where}: 'x' and 'y' must have the same number of rows; "
            f"got {x.shape[0]} and {y.shape[0]}."
        )


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """All parameters of ``model`` as one detached vector.

    In the order of ``model.parameters()``.
    """
    check_type(
        "flat_parameters", "model", model, nn.Module, "a torch.nn.Module"
    )
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def flat_loss_function(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[
        [torch.Tensor, torch.Tensor], torch.Tensor
    ] = F.cross_entropy,
) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""The function :math:`\theta \mapsto J(\theta)`.

    :math:`J(\theta) = \text{loss\_fn}(f(x; \theta), y)`, where ``theta`` is a
    flat vector laid out like :func:`flat_parameters`; the model's own
    parameters are not changed. The result is differentiable twice by
    autograd.
    """
    _check_data("flat_loss_function", model, x, y)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    total = sum(sizes)

    def loss_of(theta: torch.Tensor) -> torch.Tensor:
        if theta.shape != (total,):
            _fail(
                "flat_loss_function",
                "theta",
                f"of shape ({total},)",
                tuple(theta.shape),
            )
        pieces = torch.split(theta, sizes)
        params = {n: t.view(s) for n, t, s in zip(names, pieces, shapes)}
        return loss_fn(functional_call(model, params, (x,)), y)

    return loss_of


def loss_hessian(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[
        [torch.Tensor, torch.Tensor], torch.Tensor
    ] = F.cross_entropy,
) -> torch.Tensor:
    r"""The (P, P) Hessian :math:`\nabla^2_\theta J` at the model's parameters.

    Computed by ``torch.autograd.functional.hessian`` on
    :func:`flat_loss_function` (P Hessian-vector products, batched with vmap;
    P x P memory), so keep models small: P of a few hundred.
    """
    f = flat_loss_function(model, x, y, loss_fn=loss_fn)
    theta = flat_parameters(model)
    return torch.autograd.functional.hessian(f, theta, vectorize=True)


def hessian_eigenvalues(hessian: torch.Tensor) -> torch.Tensor:
    r"""Eigenvalues :math:`\lambda_1 \le \dots \le \lambda_P` of symmetric H.

    The matrix is symmetrized, :math:`\tfrac12(H + H^\top)`, before
    ``torch.linalg.eigvalsh`` to remove rounding asymmetry.
    """
    check_type(
        "hessian_eigenvalues",
        "hessian",
        hessian,
        torch.Tensor,
        "a torch.Tensor",
    )
    if hessian.ndim != 2 or hessian.shape[0] != hessian.shape[1]:
        _fail(
            "hessian_eigenvalues",
            "hessian",
            "a square matrix",
            tuple(hessian.shape),
        )
    scale = hessian.abs().max().clamp(min=1.0)
    if (hessian - hessian.T).abs().max() > 1e-4 * scale:
        _fail(
            "hessian_eigenvalues",
            "hessian",
            "symmetric",
            "a non-symmetric matrix",
        )
    return torch.linalg.eigvalsh(0.5 * (hessian + hessian.T))


def hessian_vector_product(
    f: Callable[[torch.Tensor], torch.Tensor],
    theta: torch.Tensor,
    v: torch.Tensor,
) -> torch.Tensor:
    r""":math:`H v = \nabla_\theta (\nabla_\theta f \cdot v)`, without H."""
    if not callable(f):
        raise TypeError(
            "hessian_vector_product: 'f' must be a callable; "
            f"got {type(f).__name__}."
        )
    check_type(
        "hessian_vector_product", "theta", theta, torch.Tensor, "a torch.Tensor"
    )
    check_type("hessian_vector_product", "v", v, torch.Tensor, "a torch.Tensor")
    if v.shape != theta.shape:
        _fail(
            "hessian_vector_product",
            "v",
            f"of the shape of theta {tuple(theta.shape)}",
            tuple(v.shape),
        )
    theta = theta.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(theta), theta, create_graph=True)
    (hv,) = torch.autograd.grad(g @ v, theta)
    return hv


class LayerMonitor:
    r"""Record each chosen layer's output and the gradient flowing back into it.

    After a forward and backward pass, ``stats()`` gives for every monitored
    layer (default: every ``nn.Linear``, in forward order)

    * ``activation_std``: the standard deviation of the layer's output
      :math:`a`;
    * ``output_grad_norm``: :math:`\lVert \partial J / \partial a \rVert_2`;
    * ``weight_grad_norm``: :math:`\lVert \partial J / \partial W \rVert_2`.

    Use as a context manager (``with LayerMonitor(model) as mon: ...``) or
    call ``remove()`` to take the hooks off. The gradient is caught by a
    tensor hook that the forward hook puts on the layer's output.
    """

    def __init__(self, model: nn.Module, *, layer_types=(nn.Linear,)):
        check_type(
            "LayerMonitor", "model", model, nn.Module, "a torch.nn.Module"
        )
        check_type(
            "LayerMonitor",
            "layer_types",
            layer_types,
            tuple,
            "a tuple of module classes",
        )
        self.layers = [
            (n, m)
            for n, m in model.named_modules()
            if isinstance(m, layer_types)
        ]
        if not self.layers:
            _fail(
                "LayerMonitor",
                "model",
                "a model with at least one monitored layer",
                type(model).__name__,
            )
        self._act: dict[str, float] = {}
        self._grad: dict[str, float] = {}
        self._handles = []
        for name, module in self.layers:
            self._handles.append(
                module.register_forward_hook(self._forward_hook(name))
            )

    def _forward_hook(self, name):
        # record_grad runs in backward: dJ/da of this layer's output a
        def record_grad(grad):
            self._grad[name] = grad.detach().norm().item()

        def hook(module, inputs, output):
            self._act[name] = output.detach().std().item()
            if output.requires_grad:
                output.register_hook(record_grad)

        return hook

    def stats(self) -> dict[str, dict[str, float]]:
        """``{layer name: {statistic: value}}`` for the three statistics.

        The statistics are ``activation_std``, ``output_grad_norm`` and
        ``weight_grad_norm`` (NaN for a layer the last pass did not reach).
        """
        out = {}
        for name, module in self.layers:
            w = getattr(module, "weight", None)
            out[name] = {
                "activation_std": self._act.get(name, float("nan")),
                "output_grad_norm": self._grad.get(name, float("nan")),
                "weight_grad_norm": (
                    w.grad.norm().item()
                    if w is not None and w.grad is not None
                    else float("nan")
                ),
            }
        return out

    def remove(self) -> None:
        """Take every hook off the model."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False
