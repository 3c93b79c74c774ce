"""Part II of the book: optimization. One module a chapter or topic.

``SGD`` is a drop-in twin of ``torch.optim.SGD`` built on the pure
``sgd_update_``; ``Adagrad``, ``RMSprop``, ``Adadelta``, ``Adam`` and
``AdamW`` are twins of their ``torch.optim`` namesakes built on the pure
updates of ``dlcourse.optim.adaptive``.
"""

from dlcourse.optim.adaptive import (
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    RMSprop,
    adadelta_update_,
    adagrad_update_,
    adam_update_,
    notes_adagrad_update_,
    notes_adam_update_,
    notes_rmsprop_update_,
    rmsprop_update_,
)
from dlcourse.optim.clipping import (
    clip_by_norm,
    clip_by_value,
    clip_grad_norm_,
    clip_grad_value_,
    total_grad_norm,
)
from dlcourse.optim.coordinate_descent import (
    lasso_coordinate_descent,
    quadratic_coordinate_descent,
)
from dlcourse.optim.diagnostics import (
    LayerMonitor,
    flat_loss_function,
    flat_parameters,
    hessian_eigenvalues,
    hessian_vector_product,
    loss_hessian,
)
from dlcourse.optim.momentum_analysis import (
    fit_contraction,
    gd_optimal_step,
    gd_rate,
    heavy_ball_errors,
    heavy_ball_parameters,
    heavy_ball_rate,
    heavy_ball_spectral_radius,
)
from dlcourse.optim.risk import (
    convexity_check,
    empirical_risk,
    gradient_variance,
    hessian_is_psd,
    jensen_gaps,
    linear_gaussian_true_risk,
    log_loss,
    minibatch_gradient_noise,
    minibatch_noise_std,
    zero_one_loss,
)
from dlcourse.optim.robbins_monro import (
    noisy_quadratic_sgd,
    sgd_moments,
    stationary_variance,
    step_size_schedule,
)
from dlcourse.optim.schedules import (
    CosineAnnealingLR,
    LinearLR,
    PolyakAverage,
    StepLR,
    cosine_lr,
    linear_factor,
    step_lr,
)
from dlcourse.optim.second_order import (
    AdaHessian,
    conjugate_gradient,
    hutchinson_diagonal,
    newton_step,
    rademacher_like,
)
from dlcourse.optim.sgd import (
    SGD,
    gradient_descent_loop,
    notes_momentum_update_,
    sgd_update_,
)
from dlcourse.optim.trajectories import (
    notes_momentum_path,
    optimizer_path,
    sgd_path,
)

__all__ = [
    "Adadelta",
    "adadelta_update_",
    "Adagrad",
    "adagrad_update_",
    "Adam",
    "adam_update_",
    "AdamW",
    "notes_adagrad_update_",
    "notes_adam_update_",
    "notes_rmsprop_update_",
    "RMSprop",
    "rmsprop_update_",
    "AdaHessian",
    "clip_by_norm",
    "conjugate_gradient",
    "hutchinson_diagonal",
    "newton_step",
    "rademacher_like",
    "clip_by_value",
    "clip_grad_norm_",
    "clip_grad_value_",
    "convexity_check",
    "cosine_lr",
    "CosineAnnealingLR",
    "lasso_coordinate_descent",
    "linear_factor",
    "LinearLR",
    "PolyakAverage",
    "quadratic_coordinate_descent",
    "step_lr",
    "StepLR",
    "empirical_risk",
    "fit_contraction",
    "flat_loss_function",
    "flat_parameters",
    "gd_optimal_step",
    "gd_rate",
    "gradient_descent_loop",
    "gradient_variance",
    "heavy_ball_errors",
    "heavy_ball_parameters",
    "heavy_ball_rate",
    "heavy_ball_spectral_radius",
    "hessian_eigenvalues",
    "hessian_is_psd",
    "hessian_vector_product",
    "jensen_gaps",
    "LayerMonitor",
    "linear_gaussian_true_risk",
    "log_loss",
    "loss_hessian",
    "minibatch_gradient_noise",
    "minibatch_noise_std",
    "noisy_quadratic_sgd",
    "sgd_moments",
    "stationary_variance",
    "notes_momentum_path",
    "notes_momentum_update_",
    "optimizer_path",
    "SGD",
    "sgd_path",
    "sgd_update_",
    "step_size_schedule",
    "total_grad_norm",
    "zero_one_loss",
]
