"""Layers, models and initializers used across the book.

``dlcourse.nn.init`` holds the initialization schemes of Part II, chapter 4;
``dlcourse.nn.batchnorm`` batch normalization (chapter 7), a twin of
``torch.nn.BatchNorm1d``.
"""

from dlcourse.nn.batchnorm import BatchNorm1d, batch_norm, batch_norm_backward
from dlcourse.nn.init import (
    SCHEMES,
    activation_variances,
    fan_in_and_fan_out,
    glorot_normal_,
    glorot_uniform_,
    he_normal_,
    init_linear_layers_,
    init_std,
    lecun_normal_,
    scaled_normal_,
    signal_propagation,
    zeros_,
)
from dlcourse.nn.mlp import (
    ACTIVATIONS,
    make_mlp,
)

__all__ = [
    "activation_variances",
    "ACTIVATIONS",
    "batch_norm",
    "batch_norm_backward",
    "BatchNorm1d",
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
    "signal_propagation",
    "zeros_",
]
