r"""Weight initialization schemes and how they carry activation variance through depth.

Book: Part II, chapter 4, "Parameter initialization".

For a weight matrix of shape ``(n_out, n_in)`` (``nn.Linear``), the schemes draw
independent entries with mean 0 and variance

========================  ==================================  ==========================
scheme                    variance                            name in the lecture notes
========================  ==================================  ==========================
``zeros``                 :math:`0`                           zeros
``scaled_normal``         :math:`s^2` (:math:`s = 10`)        random (``randn() * 10``)
``lecun_normal``          :math:`1/n_\text{in}`               "Xavier" (a misnomer)
``glorot_normal/uniform`` :math:`2/(n_\text{in}+n_\text{out})`   (not in the notes)
``he_normal``             :math:`2/n_\text{in}`               He
========================  ==================================  ==========================

(LeCun et al., 1998; Glorot & Bengio, 2010; He et al., 2015.) The functions are
in place, end with ``_``, return the tensor and take a ``generator``; they draw with
the same calls as their ``torch.nn.init`` twins, so with equal generators they give
equal tensors.
"""

from __future__ import annotations

import math

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
]

SCHEMES = ("zeros", "scaled_normal", "lecun_normal", "glorot_normal", "glorot_uniform",
           "he_normal")


def _check_tensor(where, tensor, min_dim=2):
    check_type(where, "tensor", tensor, torch.Tensor, "a torch.Tensor")
    if tensor.dim() < min_dim:
        _fail(where, "tensor", f"at least {min_dim}-dimensional", tuple(tensor.shape))



def fan_in_and_fan_out(tensor: torch.Tensor) -> tuple[int, int]:
    r"""``(n_in, n_out)`` of a weight of shape ``(out, in, *kernel)``.

    .. math:: n_\text{in} = \text{in}\cdot\prod\text{kernel}, \qquad
              n_\text{out} = \text{out}\cdot\prod\text{kernel}
    """
    _check_tensor("fan_in_and_fan_out", tensor)
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def init_std(scheme: str, fan_in: int, fan_out: int, *, scale: float = 10.0) -> float:
    r"""The standard deviation of ``scheme`` (see the module table); uniform: of the uniform law."""
    check_choice("init_std", "scheme", scheme, SCHEMES)
    check_int("init_std", "fan_in", fan_in, low=1)
    check_int("init_std", "fan_out", fan_out, low=1)
    scale = check_in_range("init_std", "scale", scale, low=0.0)
    return {
        "zeros": 0.0,
        "scaled_normal": scale,
        "lecun_normal": 1.0 / math.sqrt(fan_in),  # Var = 1/n_in
        "glorot_normal": math.sqrt(2.0 / (fan_in + fan_out)),  # Var = 2/(n_in + n_out)
        "glorot_uniform": math.sqrt(2.0 / (fan_in + fan_out)),
        "he_normal": math.sqrt(2.0) / math.sqrt(fan_in),  # Var = 2/n_in
    }[scheme]


@torch.no_grad()
def zeros_(tensor: torch.Tensor) -> torch.Tensor:
    """Set every entry to 0 (no symmetry breaking: see the book's experiment)."""
    check_type("zeros_", "tensor", tensor, torch.Tensor, "a torch.Tensor")
    return tensor.zero_()


@torch.no_grad()
def scaled_normal_(tensor: torch.Tensor, *, scale: float = 10.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""The notes' "random" scheme, :math:`W_{ij} \sim s\,\mathcal N(0, 1)` (``randn() * scale``)."""
    check_type("scaled_normal_", "tensor", tensor, torch.Tensor, "a torch.Tensor")
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


def lecun_normal_(tensor: torch.Tensor, *, gain: float = 1.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    r""":math:`W_{ij} \sim \mathcal N(0, g^2/n_\text{in})` (LeCun et al., 1998); the notes' "Xavier"."""
    return _normal_("lecun_normal_", "lecun_normal", tensor, gain, generator)


def glorot_normal_(tensor: torch.Tensor, *, gain: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r""":math:`W_{ij} \sim \mathcal N\bigl(0, g^2\,\tfrac{2}{n_\text{in}+n_\text{out}}\bigr)` (Glorot & Bengio, 2010)."""
    return _normal_("glorot_normal_", "glorot_normal", tensor, gain, generator)


def he_normal_(tensor: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    r""":math:`W_{ij} \sim \mathcal N(0, 2/n_\text{in})` (He et al., 2015), for ReLU layers."""
    return _normal_("he_normal_", "he_normal", tensor, 1.0, generator)


@torch.no_grad()
def glorot_uniform_(tensor: torch.Tensor, *, gain: float = 1.0,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    r""":math:`W_{ij} \sim U(-b, b)`, :math:`b = g\sqrt{6/(n_\text{in}+n_\text{out})}` (variance :math:`g^2\,2/(n_\text{in}+n_\text{out})`)."""
    _check_tensor("glorot_uniform_", tensor)
    gain = check_in_range("glorot_uniform_", "gain", gain, low=0.0)
    check_generator("glorot_uniform_", generator)
    # U(-b, b) has variance b^2 / 3
    bound = math.sqrt(3.0) * (gain * init_std("glorot_uniform", *fan_in_and_fan_out(tensor)))
    return tensor.uniform_(-bound, bound, generator=generator)


_INITS = {"zeros": lambda w, g: zeros_(w),
          "scaled_normal": lambda w, g: scaled_normal_(w, generator=g),
          "lecun_normal": lambda w, g: lecun_normal_(w, generator=g),
          "glorot_normal": lambda w, g: glorot_normal_(w, generator=g),
          "glorot_uniform": lambda w, g: glorot_uniform_(w, generator=g),
          "he_normal": lambda w, g: he_normal_(w, generator=g)}


def init_linear_layers_(model: nn.Module, scheme: str, *,
                        generator: torch.Generator | None = None) -> nn.Module:
    """Initialize the weight of every ``nn.Linear`` in ``model`` by ``scheme``, biases to 0.

    Layers are visited in ``model.modules()`` order, so equal generators give equal models.
    """
    check_type("init_linear_layers_", "model", model, nn.Module, "a torch.nn.Module")
    check_choice("init_linear_layers_", "scheme", scheme, SCHEMES)
    check_generator("init_linear_layers_", generator)
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            _INITS[scheme](layer.weight, generator)
            if layer.bias is not None:
                zeros_(layer.bias)
    return model


_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda z: z}


@torch.no_grad()
def activation_variances(scheme: str, activation: str, *, depth: int, width: int,
                         batch: int, scale: float = 10.0, dtype: torch.dtype = torch.float32,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Variance of the activations after each of ``depth`` square layers.

    A batch :math:`h^{(0)} \sim \mathcal N(0, I)` of shape ``(batch, width)`` goes
    through :math:`h^{(l)} = \phi(W^{(l)} h^{(l-1)})` with :math:`W^{(l)}` of shape
    ``(width, width)`` drawn by ``scheme`` (``scale`` for ``scaled_normal``) and
    :math:`\phi` ``"tanh"``, ``"relu"`` or ``"linear"``. Returns the variance over
    all entries of each :math:`h^{(l)}`, :math:`l = 1..\text{depth}`, shape ``(depth,)``
    (in ``dtype``: use ``torch.float64`` to follow an exploding signal further).
    """
    check_choice("activation_variances", "scheme", scheme, SCHEMES)
    check_choice("activation_variances", "activation", activation, tuple(_ACTIVATIONS))
    for name, value in (("depth", depth), ("width", width), ("batch", batch)):
        check_int("activation_variances", name, value, low=1)
    check_in_range("activation_variances", "scale", scale, low=0.0)
    check_generator("activation_variances", generator)
    phi = _ACTIVATIONS[activation]
    check_type("activation_variances", "dtype", dtype, torch.dtype, "a torch.dtype")
    h = torch.randn(batch, width, generator=generator, dtype=dtype)  # (B, n)
    variances = []
    for _ in range(depth):
        w = torch.empty(width, width, dtype=dtype)  # (n_out, n_in)
        if scheme == "scaled_normal":
            scaled_normal_(w, scale=scale, generator=generator)
        else:
            _INITS[scheme](w, generator)
        h = phi(h @ w.T)  # (B, n)
        variances.append(h.var(unbiased=False))
    return torch.stack(variances)
