"""Part I of the book: regularization. One module a chapter."""

from dlcourse.regularization.norm_penalties import (
    decoupled_weight_decay_,
    l1_penalty,
    l1_proximal_step_,
    l2_penalty,
    soft_threshold,
    soft_threshold_,
    weight_decay_groups,
    weight_parameters,
)

__all__ = [
    "decoupled_weight_decay_",
    "l1_penalty",
    "l1_proximal_step_",
    "l2_penalty",
    "soft_threshold",
    "soft_threshold_",
    "weight_decay_groups",
    "weight_parameters",
]
