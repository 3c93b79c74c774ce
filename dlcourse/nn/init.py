r"""Weight initialization schemes and how they carry signals through depth.

Book: Part II, chapter 4, "Parameter initialization".

For a weight matrix of shape ``(n_out, n_in)`` (``nn.Linear``), the schemes
draw independent entries with mean 0 and variance

=========================  ====================================  ============
scheme                     variance                              the notes
=========================  ====================================  ============
``zeros``                  :math:`0`                             zeros
``scaled_normal``          :math:`s^2` (:math:`s = 10`)          random
``lecun_normal``           :math:`1/n_\text{in}`                 "Xavier"
``lecun_fan_out``          :math:`1/n_\text{out}`                (absent)
``glorot_normal/uniform``  :math:`2/(n_\text{in}+n_\text{out})`  (absent)
``he_normal``              :math:`2/n_\text{in}`                 He
=========================  ====================================  ============

(LeCun et al., 1998; Glorot & Bengio, 2010; He et al., 2015.) The notes'
"random" is ``randn() * 10``, and their "Xavier" is LeCun's rule (a misnomer).
The functions are in place, end with ``_``, return the tensor and take a
``generator``; they draw with the same calls as their ``torch.nn.init`` twins,
so with equal generators they give equal tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dlcourse._validation import (
    _fail,
    check_choice,
    check_generator,
    check_in_range,
    check_int,
    check_type,
)

__all__ = [
    "SCHEMES",
    "fan_in_and_fan_out",
    "init_std",
    "zeros_",
    "scaled_normal_",
    "lecun_normal_",
    "glorot_normal_",
    "glorot_uniform_",
    "he_normal_",
    "init_linear_layers_",
    "activation_variances",
    "signal_propagation",
]

SCHEMES = (
    "zeros",
    "scaled_normal",
    "lecun_normal",
    "lecun_fan_out",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
)


def _check_tensor(where, tensor, min_dim=2):
    check_type(where, "tensor", tensor, torch.Tensor, "a torch.Tensor")
    if tensor.dim() < min_dim:
        _fail(
            where,
            "tensor",
            f"at least {min_dim}-dimensional",
            tuple(tensor.shape),
        )


def fan_in_and_fan_out(tensor: torch.Tensor) -> tuple[int, int]:
    r"""``(n_in, n_out)`` of a weight of shape ``(out, in, *kernel)``.

    .. math:: n_\text{in} = \text{in}\cdot\prod\text{kernel}, \qquad
              n_\text{out} = \text{out}\cdot\prod\text{kernel}
    """
    _check_tensor("fan_in_and_fan_out", tensor)
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def init_std(
    scheme: str, fan_in: int, fan_out: int, *, scale: float = 10.0
) -> float:
    r"""The standard deviation of ``scheme`` (see the module table).

    For ``glorot_uniform`` it is the standard deviation of the uniform law.
    """
    check_choice("init_std", "scheme", scheme, SCHEMES)
    check_int("init_std", "fan_in", fan_in, low=1)
    check_int("init_std", "fan_out", fan_out, low=1)
    scale = check_in_range("init_std", "scale", scale, low=0.0)
    glorot = math.sqrt(2.0 / (fan_in + fan_out))  # Var = 2/(n_in + n_out)
    return {
        "zeros": 0.0,
        "scaled_normal": scale,
        "lecun_normal": 1.0 / math.sqrt(fan_in),  # Var = 1/n_in
        "lecun_fan_out": 1.0 / math.sqrt(fan_out),  # Var = 1/n_out
        "glorot_normal": glorot,
        "glorot_uniform": glorot,
        "he_normal": math.sqrt(2.0) / math.sqrt(fan_in),  # Var = 2/n_in
    }[scheme]


@torch.no_grad()
def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    """Set every entry to 0 (no symmetry breaking: see the book)."""
    check_type("zeros_", "tensor", tensor, torch.Tensor, "a torch.Tensor")
    return tensor.zero_()


@torch.no_grad()
def scaled_normal_(
    tensor: torch.Tensor,
    *,
    scale: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""The notes' "random" scheme, :math:`W_{ij} \sim s\,\mathcal N(0, 1)`.

    That is ``randn() * scale``.
    """
    check_type(
        "scaled_normal_", "tensor", tensor, torch.Tensor, "a torch.Tensor"
    )
    scale = check_in_range("scaled_normal_", "scale", scale, low=0.0)
    check_generator("scaled_normal_", generator)
    return tensor.normal_(0.0, scale, generator=generator)


def _normal_(where, scheme, tensor, gain, generator):
    _check_tensor(where, tensor)
    gain = check_in_range(where, "gain", gain, low=0.0)
    check_generator(where, generator)
    std = gain * init_std(scheme, *fan_in_and_fan_out(tensor))
    with torch.no_grad():
        return tensor.normal_(0.0, std, generator=generator)


def lecun_normal_(
    tensor: torch.Tensor,
    *,
    gain: float = 1.0,
    mode: str = "fan_in",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r""":math:`W_{ij} \sim \mathcal N(0, g^2/n)` (LeCun et al., 1998).

    :math:`n = n_\text{in}` (``mode="fan_in"``: the notes' "Xavier", which
    keeps the forward variance) or :math:`n = n_\text{out}` (``"fan_out"``:
    keeps the variance of the backward gradients). The twin is
    ``torch.nn.init.kaiming_normal_(..., mode=mode, nonlinearity="linear")``.
    """
    check_choice("lecun_normal_", "mode", mode, ("fan_in", "fan_out"))
    scheme = "lecun_normal" if mode == "fan_in" else "lecun_fan_out"
    return _normal_("lecun_normal_", scheme, tensor, gain, generator)


def glorot_normal_(
    tensor: torch.Tensor,
    *,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r""":math:`W_{ij} \sim \mathcal N(0, g^2\,2/(n_\text{in}+n_\text{out}))`.

    Glorot & Bengio (2010); the twin is ``torch.nn.init.xavier_normal_``.
    """
    return _normal_("glorot_normal_", "glorot_normal", tensor, gain, generator)


def he_normal_(
    tensor: torch.Tensor, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    r""":math:`W_{ij} \sim \mathcal N(0, 2/n_\text{in})` (He et al., 2015).

    For ReLU layers; the twin is ``kaiming_normal_(nonlinearity="relu")``.
    """
    return _normal_("he_normal_", "he_normal", tensor, 1.0, generator)


@torch.no_grad()
def glorot_uniform_(
    tensor: torch.Tensor,
    *,
    gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r""":math:`W_{ij} \sim U(-b, b)` (Glorot & Bengio, 2010).

    The bound is :math:`b = g\sqrt{6/(n_\text{in}+n_\text{out})}`, so the
    variance is :math:`g^2\,2/(n_\text{in}+n_\text{out})`, as for
    :func:`glorot_normal_`; the twin is ``torch.nn.init.xavier_uniform_``.
    """
    _check_tensor("glorot_uniform_", tensor)
    gain = check_in_range("glorot_uniform_", "gain", gain, low=0.0)
    check_generator("glorot_uniform_", generator)
    # U(-b, b) has variance b^2 / 3
    bound = math.sqrt(3.0) * (
        gain * init_std("glorot_uniform", *fan_in_and_fan_out(tensor))
    )
    return tensor.uniform_(-bound, bound, generator=generator)


_INITS = {
    "zeros": lambda w, g: zeros_(w),
    "scaled_normal": lambda w, g: scaled_normal_(w, generator=g),
    "lecun_normal": lambda w, g: lecun_normal_(w, generator=g),
    "lecun_fan_out": lambda w, g: lecun_normal_(w, mode="fan_out", generator=g),
    "glorot_normal": lambda w, g: glorot_normal_(w, generator=g),
    "glorot_uniform": lambda w, g: glorot_uniform_(w, generator=g),
    "he_normal": lambda w, g: he_normal_(w, generator=g),
}


def init_linear_layers_(
    model: nn.Module, scheme: str, *, generator: torch.Generator | None = None
) -> nn.Module:
    """Initialize every ``nn.Linear`` weight in ``model`` by ``scheme``.

    Biases are set to 0. Layers are visited in ``model.modules()`` order, so
    equal generators give equal models.
    """
    check_type(
        "init_linear_layers_", "model", model, nn.Module, "a torch.nn.Module"
    )
    check_choice("init_linear_layers_", "scheme", scheme, SCHEMES)
    check_generator("init_linear_layers_", generator)
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            _INITS[scheme](layer.weight, generator)
            if layer.bias is not None:
                zeros_(layer.bias)
    return model


_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda z: z}


def _draw(scheme, shape, scale, dtype, generator):
    w = torch.empty(*shape, dtype=dtype)  # (n_out, n_in)
    if scheme == "scaled_normal":
        return scaled_normal_(w, scale=scale, generator=generator)
    return _INITS[scheme](w, generator)


def _check_signal_arguments(where, scheme, activation, scale, dtype, generator):
    check_choice(where, "scheme", scheme, SCHEMES)
    check_choice(where, "activation", activation, tuple(_ACTIVATIONS))
    check_in_range(where, "scale", scale, low=0.0)
    check_type(where, "dtype", dtype, torch.dtype, "a torch.dtype")
    check_generator(where, generator)


@torch.no_grad()
def activation_variances(
    scheme: str,
    activation: str,
    *,
    depth: int,
    width: int,
    batch: int,
    scale: float = 10.0,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Variance of the activations after each of ``depth`` square layers.

    A batch :math:`h^{(0)} \sim \mathcal N(0, I)` of shape ``(batch, width)``
    goes through :math:`h^{(l)} = \phi(W^{(l)} h^{(l-1)})` with
    :math:`W^{(l)}` of shape ``(width, width)`` drawn by ``scheme`` (``scale``
    for ``scaled_normal``) and :math:`\phi` ``"tanh"``, ``"relu"`` or
    ``"linear"``. Returns the variance over all entries of each
    :math:`h^{(l)}`, :math:`l = 1..\text{depth}`, shape ``(depth,)`` (in
    ``dtype``: use ``torch.float64`` to follow an exploding signal further).
    """
    where = "activation_variances"
    for name, value in (("depth", depth), ("width", width), ("batch", batch)):
        check_int(where, name, value, low=1)
    _check_signal_arguments(where, scheme, activation, scale, dtype, generator)
    phi = _ACTIVATIONS[activation]
    h = torch.randn(batch, width, generator=generator, dtype=dtype)  # (B, n)
    variances = []
    for _ in range(depth):
        w = _draw(scheme, (width, width), scale, dtype, generator)
        h = phi(h @ w.T)  # (B, n)
        variances.append(h.var(unbiased=False))
    return torch.stack(variances)


def signal_propagation(
    scheme: str,
    activation: str,
    *,
    widths: Sequence[int],
    batch: int,
    scale: float = 10.0,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    r"""Forward and backward signal sizes through layers of any ``widths``.

    A batch :math:`h^{(0)} \sim \mathcal N(0, I)` of shape
    ``(batch, widths[0])`` goes through :math:`z^{(l)} = W^{(l)} h^{(l-1)}`,
    :math:`h^{(l)} = \phi(z^{(l)})`, :math:`l = 1..L`, with :math:`W^{(l)}`
    of shape ``(widths[l], widths[l-1])`` drawn by ``scheme``. The backward
    pass starts from :math:`J = \sum r \odot h^{(L)}` with
    :math:`r \sim \mathcal N(0, I)`, so :math:`\partial J/\partial h^{(L)}`
    has variance 1, and follows

    .. math::

        \operatorname{Var}(z^{(l)}) = n_\text{in}\sigma^2\,E[(h^{(l-1)})^2],
        \qquad
        \operatorname{Var}\Bigl(\frac{\partial J}{\partial h^{(l-1)}}\Bigr)
        = n_\text{out}\sigma^2\,
          E\Bigl[\phi'(z^{(l)})^2\Bigl(\frac{\partial J}{\partial h^{(l)}}
          \Bigr)^2\Bigr].

    Draws ``h0``, then the weights in order, then ``r``, so for square layers
    ``h_var`` equals :func:`activation_variances` with an equal generator.
    Returns, over all entries of each layer (shape ``(L,)`` each):
    ``z_var`` :math:`\operatorname{Var}(z^{(l)})`, ``h_second_moment``
    :math:`E[(h^{(l)})^2]` and ``h_var`` :math:`\operatorname{Var}(h^{(l)})`
    for :math:`l = 1..L`, and ``grad_var``
    :math:`\operatorname{Var}(\partial J/\partial h^{(l)})` for
    :math:`l = 0..L-1` (the gradient arriving at each layer's input).
    """
    where = "signal_propagation"
    check_type(
        where, "widths", widths, (list, tuple), "a list or tuple of ints"
    )
    if len(widths) < 2:
        _fail(where, "widths", "at least 2 entries", list(widths))
    for i, n in enumerate(widths):
        check_int(where, f"widths[{i}]", n, low=1)
    check_int(where, "batch", batch, low=1)
    _check_signal_arguments(where, scheme, activation, scale, dtype, generator)
    phi = _ACTIVATIONS[activation]
    h = torch.randn(batch, widths[0], generator=generator, dtype=dtype)
    h.requires_grad_()
    inputs, pre = [h], []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        w = _draw(scheme, (n_out, n_in), scale, dtype, generator)
        z = inputs[-1] @ w.T  # (B, n_out)
        out = phi(z)
        out.retain_grad()
        pre.append(z)
        inputs.append(out)
    r = torch.randn(out.shape, generator=generator, dtype=dtype)
    (out * r).sum().backward()
    with torch.no_grad():
        return {
            "z_var": torch.stack([z.var(unbiased=False) for z in pre]),
            "h_second_moment": torch.stack([(a**2).mean() for a in inputs[1:]]),
            "h_var": torch.stack([a.var(unbiased=False) for a in inputs[1:]]),
            "grad_var": torch.stack(
                [a.grad.var(unbiased=False) for a in inputs[:-1]]
            ),
        }
