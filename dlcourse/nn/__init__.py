"""Layers, models and initializers used across the book."""

from dlcourse.nn.mlp import ACTIVATIONS, make_mlp

__all__ = ["ACTIVATIONS", "make_mlp"]
