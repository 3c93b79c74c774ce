"""A multilayer perceptron whose initial weights come from a given generator."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dlcourse._validation import (
    check_choice,
    check_generator,
    check_int,
    check_type,
)

__all__ = ["make_mlp", "ACTIVATIONS"]

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def make_mlp(
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    r"""``Linear -> activation -> ... -> Linear`` with layer widths ``sizes``.

    ``make_mlp([40, 100, 100, 10])`` is the MLP of the mnist1d paper. Weights
    and biases are drawn as ``torch.nn.Linear`` draws them (uniform, bound
    :math:`1/\sqrt{n_\text{in}}`), but from ``generator``, so two models built
    with equal generators are equal.
    """
    check_type(
        "make_mlp", "sizes", sizes, (list, tuple), "a list or tuple of ints"
    )
    if len(sizes) < 2:
        raise ValueError(
            "make_mlp: 'sizes' must have at least 2 entries; "
            f"got {list(sizes)!r}."
        )
    for i, n in enumerate(sizes):
        check_int("make_mlp", f"sizes[{i}]", n, low=1)
    check_choice("make_mlp", "activation", activation, tuple(ACTIVATIONS))
    check_generator("make_mlp", generator)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(n_in, n_out)
        bound = 1.0 / math.sqrt(n_in)
        with torch.no_grad():
            # same distribution as nn.Linear.reset_parameters:
            # U(-1/sqrt(n_in), 1/sqrt(n_in))
            linear.weight.uniform_(-bound, bound, generator=generator)
            linear.bias.uniform_(-bound, bound, generator=generator)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)
