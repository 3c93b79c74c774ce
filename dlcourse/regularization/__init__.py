"""Part I of the book: regularization. One module a chapter.

The transforms of chapter 4 live in the subpackage
``dlcourse.regularization.augmentation`` (image, audio and text); everything
else is re-exported here, except the function ``dropout`` (import it from
``dlcourse.regularization.dropout``: here it would hide its own module).
"""

from dlcourse.regularization.calibration import (
    Reliability,
    expected_calibration_error,
    label_smoothing_cross_entropy,
    notes_to_torch_epsilon,
    smoothed_targets,
)
from dlcourse.regularization.constraints import (
    l2_ball_multiplier,
    max_norm,
    max_norm_,
    project_l2_ball,
    project_l2_ball_,
    projected_gradient_descent,
)
from dlcourse.regularization.dropout import (
    Dropout,
    all_masks,
    linear_dropout_loss_by_enumeration,
    linear_dropout_penalty,
    linear_dropout_solution,
    mask_ensemble,
    mask_probabilities,
    mc_dropout,
)
from dlcourse.regularization.early_stopping import (
    EarlyStopping,
    continue_on_all_data,
    fit_early_stopping,
    mean_loss,
    replay_early_stopping,
    retrain_on_all_data,
    train_updates,
)
from dlcourse.regularization.early_stopping_l2 import (
    gd_filter,
    gd_quadratic_iterate,
    ridge_filter,
)
from dlcourse.regularization.ensembles import (
    StackedMLP,
    bootstrap_indices,
    correlated_errors,
    ensemble_error_variance,
    ensemble_log_probs,
    expected_distinct_fraction,
    fit_members,
    majority_vote,
)
from dlcourse.regularization.multitask import (
    HardSharingNet,
    SoftSharingNets,
    fit_multitask,
    multitask_accuracy,
    soft_sharing_penalty,
)
from dlcourse.regularization.noise import (
    add_input_noise,
    noisy_least_squares,
    perturbed_weights,
    weight_noise_loss,
    weight_noise_terms,
)
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
from dlcourse.regularization.semi_supervised import (
    ReconstructionClassifier,
    fit_semi_supervised,
    pseudo_label,
    select_confident,
    semi_supervised_loss,
)
from dlcourse.regularization.underconstrained import (
    logistic_grad,
    logistic_loss,
    regularized_pinv,
    ridge,
    train_logistic,
)

__all__ = [
    "add_input_noise",
    "all_masks",
    "bootstrap_indices",
    "continue_on_all_data",
    "correlated_errors",
    "decoupled_weight_decay_",
    "Dropout",
    "EarlyStopping",
    "ensemble_error_variance",
    "ensemble_log_probs",
    "expected_calibration_error",
    "expected_distinct_fraction",
    "fit_early_stopping",
    "fit_members",
    "fit_multitask",
    "fit_semi_supervised",
    "gd_filter",
    "gd_quadratic_iterate",
    "HardSharingNet",
    "l1_penalty",
    "l1_proximal_step_",
    "l2_ball_multiplier",
    "l2_penalty",
    "label_smoothing_cross_entropy",
    "linear_dropout_loss_by_enumeration",
    "linear_dropout_penalty",
    "linear_dropout_solution",
    "logistic_grad",
    "logistic_loss",
    "majority_vote",
    "mask_ensemble",
    "mask_probabilities",
    "max_norm",
    "max_norm_",
    "mc_dropout",
    "mean_loss",
    "multitask_accuracy",
    "noisy_least_squares",
    "notes_to_torch_epsilon",
    "perturbed_weights",
    "project_l2_ball",
    "project_l2_ball_",
    "projected_gradient_descent",
    "pseudo_label",
    "ReconstructionClassifier",
    "regularized_pinv",
    "Reliability",
    "replay_early_stopping",
    "retrain_on_all_data",
    "ridge",
    "ridge_filter",
    "select_confident",
    "semi_supervised_loss",
    "smoothed_targets",
    "soft_sharing_penalty",
    "soft_threshold",
    "soft_threshold_",
    "SoftSharingNets",
    "StackedMLP",
    "train_logistic",
    "train_updates",
    "weight_decay_groups",
    "weight_noise_loss",
    "weight_noise_terms",
    "weight_parameters",
]
