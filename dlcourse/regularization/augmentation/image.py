r"""Image augmentations: flip, crop, rotation, colour, noise, erasing, mixup.

Book: Part I, chapter 4, "Dataset augmentation".

Images are ``(H, W)``, ``(N, H, W)`` (grayscale batch) or ``(N, C, H, W)``;
every transform returns a tensor of the same shape and dtype. Random choices
are made per image from ``generator`` (``None``: torch's global generator), so
equal generators give equal results. Pixel values are not clamped: clamp
afterwards if the model expects a fixed range.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from dlcourse._validation import (
    _fail,
    check_generator,
    check_in_range,
    check_int,
    check_real,
    check_type,
)

__all__ = [
    "horizontal_flip",
    "random_crop",
    "rotate",
    "random_rotation",
    "random_brightness_contrast",
    "add_gaussian_noise",
    "random_erasing",
    "MixupBatch",
    "mixup",
]


def _as_nchw(where: str, images, *, floating: bool = False) -> torch.Tensor:
    """View ``images`` as ``(N, C, H, W)``.

    Reshape a result back with ``out.reshape(images.shape)``.
    """
    check_type(where, "images", images, torch.Tensor, "a torch.Tensor")
    if images.ndim not in (2, 3, 4):
        _fail(
            where,
            "images",
            "of shape (H, W), (N, H, W) or (N, C, H, W)",
            tuple(images.shape),
        )
    if floating and not images.is_floating_point():
        raise TypeError(
            f"{where}: 'images' must be a floating-point tensor;"
            f" got {images.dtype}."
        )
    if images.ndim == 2:
        return images[None, None]
    return images[:, None] if images.ndim == 3 else images


def horizontal_flip(
    images: torch.Tensor,
    *,
    p: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Mirror each image left-right with probability ``p``.

    :math:`x'_{ij} = x_{i,W-1-j}`. Only label-preserving where the class is
    mirror-symmetric (cats, cars), never for characters: a mirrored "b" is a
    "d".
    """
    where = "horizontal_flip"
    x = _as_nchw(where, images)
    p = check_in_range(where, "p", p, 0, 1)
    check_generator(where, generator)
    flip = torch.rand(x.shape[0], generator=generator) < p  # (N,)
    return torch.where(flip[:, None, None, None], x.flip(-1), x).reshape(
        images.shape
    )


def random_crop(
    images: torch.Tensor,
    *,
    padding: int,
    fill: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Pad by ``padding`` pixels of ``fill``, cut an ``H x W`` window randomly.

    The window's corner is uniform on :math:`\{0, \dots, 2p\}^2`, so the
    content moves by a random shift in :math:`\{-p, \dots, p\}` along each
    axis: a translation (Simard et al., 2003). ``padding=0`` returns a copy.
    """
    where = "random_crop"
    x = _as_nchw(where, images)
    pad = check_int(where, "padding", padding, low=0)
    fill = check_real(where, "fill", fill)
    check_generator(where, generator)
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), value=fill)  # (N, C, H+2p, W+2p)
    top = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    left = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = top[:, None] + torch.arange(h)  # (N, H)
    cols = left[:, None] + torch.arange(w)  # (N, W)
    out = padded[
        torch.arange(n)[:, None, None], :, rows[:, :, None], cols[:, None, :]
    ]
    return out.permute(0, 3, 1, 2).reshape(
        images.shape
    )  # (N, H, W, C) -> (N, C, H, W)


def rotate(images: torch.Tensor, degrees) -> torch.Tensor:
    r"""Rotate counter-clockwise (as displayed) by ``degrees`` about the centre.

    Output pixel :math:`u` (coordinates from the centre, in pixels) takes the
    input value at :math:`u` rotated back by :math:`\theta`, interpolated
    bilinearly; points outside the image read 0. ``degrees`` is one number or
    one angle per image (a tensor of shape ``(N,)``). A multiple of 90° on a
    square image reproduces ``torch.rot90`` up to rounding.
    """
    where = "rotate"
    x = _as_nchw(where, images, floating=True)
    n, _, h, w = x.shape
    if isinstance(degrees, torch.Tensor):
        if degrees.shape not in ((n,), ()) or not torch.isfinite(degrees).all():
            _fail(
                where,
                "degrees",
                f"a finite number or a tensor of shape ({n},)",
                tuple(degrees.shape),
            )
        angle = torch.deg2rad(degrees.to(torch.float64)).expand(n)
    else:
        angle = torch.full(
            (n,),
            math.radians(check_real(where, "degrees", degrees)),
            dtype=torch.float64,
        )
    cos, sin = torch.cos(angle), torch.sin(angle)
    # normalized coordinates (align_corners=False): x_px = x W/2, y_px = y H/2
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    # input point = output point rotated back by the angle (y axis points down)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(
        x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return out.reshape(images.shape)


def random_rotation(
    images: torch.Tensor,
    *,
    max_degrees: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Rotate each image by an angle drawn uniformly from :math:`[-d, d]`.

    :math:`d` is ``max_degrees``; see :func:`rotate`.
    """
    where = "random_rotation"
    x = _as_nchw(where, images, floating=True)
    d = check_in_range(where, "max_degrees", max_degrees, 0, 180)
    check_generator(where, generator)
    angles = (
        2 * torch.rand(x.shape[0], generator=generator, dtype=torch.float64) - 1
    ) * d
    return rotate(images, angles if images.ndim > 2 else angles[0])


def random_brightness_contrast(
    images: torch.Tensor,
    *,
    brightness: float,
    contrast: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Scale each image's contrast about its mean and shift its brightness.

    .. math:: x' = (1 + c)\,(x - \bar x) + \bar x + b, \quad
              c \sim U[-c_\max, c_\max],\ b \sim U[-b_\max, b_\max],

    with :math:`\bar x` the mean of the image (all channels),
    :math:`b_\max` = ``brightness`` and :math:`c_\max` = ``contrast``.
    """
    where = "random_brightness_contrast"
    x = _as_nchw(where, images, floating=True)
    b_max = check_in_range(where, "brightness", brightness, low=0)
    c_max = check_in_range(where, "contrast", contrast, 0, 1)
    check_generator(where, generator)
    n = x.shape[0]
    c = (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1).to(
        x.dtype
    ) * c_max
    b = (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1).to(
        x.dtype
    ) * b_max
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((1 + c) * (x - mean) + mean + b).reshape(images.shape)


def add_gaussian_noise(
    images: torch.Tensor,
    *,
    std: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Additive Gaussian noise: :math:`x' = x + \sigma\,\varepsilon`,
    :math:`\varepsilon \sim \mathcal N(0, I)`.

    :math:`\sigma` is ``std``.
    """
    where = "add_gaussian_noise"
    x = _as_nchw(where, images, floating=True)
    std = check_in_range(where, "std", std, low=0)
    check_generator(where, generator)
    noise = torch.randn(x.shape, generator=generator).to(x.dtype)
    return (x + std * noise).reshape(images.shape)


def _check_pair(where, name, pair, low, high):
    check_type(where, name, pair, (tuple, list), "a pair (low, high)")
    if len(pair) != 2:
        _fail(where, name, "a pair (low, high)", pair)
    a = check_in_range(
        where, f"{name}[0]", pair[0], low, high, low_inclusive=False
    )
    b = check_in_range(
        where, f"{name}[1]", pair[1], low, high, low_inclusive=False
    )
    if a > b:
        _fail(where, name, "ordered, low <= high", pair)
    return a, b


def random_erasing(
    images: torch.Tensor,
    *,
    p: float = 0.5,
    scale=(0.02, 0.33),
    ratio=(0.3, 3.3),
    value: float = 0.0,
    max_attempts: int = 10,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Random erasing (Zhong et al., 2020): overwrite a random rectangle.

    With probability ``p`` an image gets a rectangle of ``value`` with area
    :math:`s\,HW` and aspect ratio :math:`r = h/w`,
    :math:`s \sim U[\text{scale}]`, :math:`r \sim U[\text{ratio}]`, so
    :math:`h = \sqrt{sHWr}`, :math:`w = \sqrt{sHW/r}`, at a uniform position;
    rectangles that do not fit are redrawn up to ``max_attempts`` times.

    Differences from the paper: it fills with random values; here one constant.
    """
    where = "random_erasing"
    x = _as_nchw(where, images).clone()
    p = check_in_range(where, "p", p, 0, 1)
    s_lo, s_hi = _check_pair(where, "scale", scale, 0, 1)
    r_lo, r_hi = _check_pair(where, "ratio", ratio, 0, None)
    value = check_real(where, "value", value)
    check_int(where, "max_attempts", max_attempts, low=1)
    check_generator(where, generator)
    n, _, h, w = x.shape
    for i in range(n):
        if torch.rand((), generator=generator) >= p:
            continue
        for _ in range(max_attempts):
            u = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
            area = h * w * (s_lo + (s_hi - s_lo) * u[0])
            r = r_lo + (r_hi - r_lo) * u[1]
            eh, ew = round(math.sqrt(area * r)), round(math.sqrt(area / r))
            if 1 <= eh <= h and 1 <= ew <= w:
                top = int(torch.randint(0, h - eh + 1, (), generator=generator))
                left = int(
                    torch.randint(0, w - ew + 1, (), generator=generator)
                )
                x[i, :, top : top + eh, left : left + ew] = value
                break
    return x.reshape(images.shape)


class MixupBatch(NamedTuple):
    """What :func:`mixup` returns.

    The mixed ``inputs``, the soft ``targets``, ``lam`` and ``perm``.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    lam: float
    perm: torch.Tensor


def mixup(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float,
    num_classes: int | None = None,
    generator: torch.Generator | None = None,
) -> MixupBatch:
    r"""Mixup (Zhang et al., 2018): convex combinations of pairs of examples.

    .. math:: \tilde x = \lambda x_i + (1-\lambda) x_{\pi(i)}, \quad
              \tilde y = \lambda y_i + (1-\lambda) y_{\pi(i)}, \quad
              \lambda \sim \mathrm{Beta}(\alpha, \alpha),

    with one :math:`\lambda` per batch and a random permutation :math:`\pi`
    of it, as in the paper's code. ``targets`` are class indices ``(N,)``
    (one-hot encoded with ``num_classes``) or probabilities ``(N, K)``; the
    soft targets go to
    ``F.cross_entropy``, which accepts probabilities. :math:`\lambda` comes from
    NumPy's Beta sampler seeded by a draw from ``generator`` (torch's has no
    generator argument).
    """
    where = "mixup"
    check_type(where, "inputs", inputs, torch.Tensor, "a torch.Tensor")
    check_type(where, "targets", targets, torch.Tensor, "a torch.Tensor")
    if inputs.ndim < 1 or not inputs.is_floating_point():
        _fail(
            where,
            "inputs",
            "a floating-point tensor (N, ...)",
            f"{inputs.dtype} {tuple(inputs.shape)}",
        )
    alpha = check_in_range(where, "alpha", alpha, 0, None, low_inclusive=False)
    check_generator(where, generator)
    n = inputs.shape[0]
    if targets.shape[:1] != (n,) or targets.ndim not in (1, 2):
        _fail(
            where,
            "targets",
            f"of shape ({n},) or ({n}, K)",
            tuple(targets.shape),
        )
    if targets.ndim == 1:
        if num_classes is None:
            _fail(
                where,
                "num_classes",
                "an int when 'targets' are class indices",
                None,
            )
        k = check_int(where, "num_classes", num_classes, low=1)
        if (
            targets.is_floating_point()
            or targets.min() < 0
            or targets.max() >= k
        ):
            _fail(
                where,
                "targets",
                f"class indices in 0..{k - 1}",
                targets.tolist()[:5],
            )
        targets = F.one_hot(targets, k).to(inputs.dtype)
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(n, generator=generator)
    # x~ = lam x_i + (1 - lam) x_perm(i); the same for the targets
    mixed_x = lam * inputs + (1 - lam) * inputs[perm]
    mixed_y = lam * targets + (1 - lam) * targets[perm]
    return MixupBatch(mixed_x, mixed_y, lam, perm)
