"""Data augmentation for images, audio and text (Part I, chapter 4).

Import from the submodules or from here; every transform takes
``generator: torch.Generator | None`` for its random choices.
"""

from dlcourse.regularization.augmentation.audio import (
    add_noise_snr,
    change_speed,
    dominant_frequency,
    pitch_shift,
    random_pitch_shift,
    random_speed,
    random_time_shift,
    time_shift,
    tone_mixture,
)
from dlcourse.regularization.augmentation.image import (
    MixupBatch,
    add_gaussian_noise,
    horizontal_flip,
    mixup,
    random_brightness_contrast,
    random_crop,
    random_erasing,
    random_rotation,
    rotate,
)
from dlcourse.regularization.augmentation.text import (
    SYNONYMS,
    random_deletion,
    random_insertion,
    random_swap,
    synonym_replacement,
    word_shuffle,
)

__all__ = [
    # image
    "horizontal_flip",
    "random_crop",
    "rotate",
    "random_rotation",
    "random_brightness_contrast",
    "add_gaussian_noise",
    "random_erasing",
    "MixupBatch",
    "mixup",
    # audio
    "tone_mixture",
    "dominant_frequency",
    "add_noise_snr",
    "time_shift",
    "random_time_shift",
    "change_speed",
    "random_speed",
    "pitch_shift",
    "random_pitch_shift",
    # text
    "SYNONYMS",
    "word_shuffle",
    "random_swap",
    "synonym_replacement",
    "random_insertion",
    "random_deletion",
]
