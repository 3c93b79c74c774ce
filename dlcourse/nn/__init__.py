"""Layers, models and initializers used across the book (``dlcourse.nn.init``: the
initialization schemes of Part II, chapter 4).
"""

from dlcourse.nn.mlp import (
    ACTIVATIONS,
    make_mlp,
)
from dlcourse.nn.init import (
    activation_variances,
    fan_in_and_fan_out,
    glorot_normal_,
    glorot_uniform_,
    he_normal_,
    init_linear_layers_,
    init_std,
    lecun_normal_,
    scaled_normal_,
    SCHEMES,
    zeros_,
)

__all__ = [
    "activation_variances",
    "ACTIVATIONS",
    "fan_in_and_fan_out",
    "glorot_normal_",
    "glorot_uniform_",
    "he_normal_",
    "init_linear_layers_",
    "init_std",
    "lecun_normal_",
    "make_mlp",
    "scaled_normal_",
    "SCHEMES",
    "zeros_",
]
