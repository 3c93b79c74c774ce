"""dlcourse.regularization.augmentation.image: exact math and torch twins."""

import math

import pytest
import torch
import torch.nn.functional as F

from dlcourse.regularization.augmentation.image import (
    add_gaussian_noise,
    horizontal_flip,
    mixup,
    random_brightness_contrast,
    random_crop,
    random_erasing,
    random_rotation,
    rotate,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _images(*shape, seed=0):
    return torch.rand(*shape, generator=_gen(seed))


RANDOM_TRANSFORMS = {
    "flip": lambda x, g: horizontal_flip(x, p=0.5, generator=g),
    "crop": lambda x, g: random_crop(x, padding=2, generator=g),
    "rotation": lambda x, g: random_rotation(x, max_degrees=30, generator=g),
    "brightness_contrast": lambda x, g: random_brightness_contrast(
        x, brightness=0.2, contrast=0.3, generator=g
    ),
    "noise": lambda x, g: add_gaussian_noise(x, std=0.1, generator=g),
    "erasing": lambda x, g: random_erasing(x, p=0.8, generator=g),
}


@pytest.mark.parametrize("name", RANDOM_TRANSFORMS)
@pytest.mark.parametrize("shape", [(8, 8), (16, 8, 8), (16, 3, 8, 6)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_reproducibility_and_seed_dependence(name, shape, dtype):
    f = RANDOM_TRANSFORMS[name]
    x = _images(*shape).to(dtype)
    a, b = f(x, _gen(1)), f(x, _gen(1))
    assert a.shape == x.shape and a.dtype == dtype
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    if len(shape) > 2:  # a batch of 16: some image differs between seeds
        assert not torch.equal(f(x, _gen(2)), a)


def test_flip_twice_is_identity_and_matches_torch_flip():
    x = _images(5, 3, 4, 6)
    once = horizontal_flip(x, p=1.0)
    torch.testing.assert_close(once, torch.flip(x, dims=(-1,)), rtol=0, atol=0)
    torch.testing.assert_close(horizontal_flip(once, p=1.0), x, rtol=0, atol=0)
    torch.testing.assert_close(horizontal_flip(x, p=0.0), x, rtol=0, atol=0)


def test_flip_probability_is_respected():
    x = _images(4000, 2, 3)
    flipped = horizontal_flip(x, p=0.3, generator=_gen(0))
    share = (flipped != x).any(dim=(1, 2)).float().mean().item()
    assert share == pytest.approx(0.3, abs=0.03)


def test_crop_with_padding_zero_is_identity_and_integer_dtypes_work():
    x = _images(4, 2, 5, 5)
    torch.testing.assert_close(
        random_crop(x, padding=0, generator=_gen()), x, rtol=0, atol=0
    )
    ints = torch.arange(2 * 25).reshape(2, 5, 5)
    out = random_crop(ints, padding=1, generator=_gen())
    assert out.dtype == torch.int64 and out.shape == ints.shape


def test_crop_is_a_translation_with_fill():
    x = _images(200, 6, 6) + 1.0  # strictly positive: fill 0 marks the border
    out = random_crop(x, padding=2, generator=_gen(3))
    padded = F.pad(x, (2, 2, 2, 2))
    seen = set()
    for i in range(len(x)):  # each output is one window of the padded image
        hits = [
            (top, left)
            for top in range(5)
            for left in range(5)
            if torch.equal(padded[i, top : top + 6, left : left + 6], out[i])
        ]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) == 25  # every shift in -2..2 x -2..2 occurs


@pytest.mark.parametrize("k", [1, 2, 3, -1])
def test_rotate_by_multiples_of_90_is_rot90(k):
    x = _images(3, 2, 7, 7)
    torch.testing.assert_close(
        rotate(x, 90.0 * k), torch.rot90(x, k, dims=(-2, -1)), rtol=0, atol=1e-5
    )


def test_rotate_180_on_a_rectangle_and_per_image_angles():
    x = _images(2, 4, 6)
    torch.testing.assert_close(
        rotate(x, 180.0), torch.rot90(x, 2, dims=(-2, -1)), rtol=0, atol=1e-5
    )
    out = rotate(x, torch.tensor([0.0, 180.0]))
    torch.testing.assert_close(out[0], x[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(out[1], torch.rot90(x[1], 2), rtol=0, atol=1e-5)


def test_small_rotation_moves_a_point_along_a_circle():
    img = torch.zeros(21, 21)
    img[10, 18] = 1.0  # 8 pixels right of the centre (10, 10)
    out = rotate(img, 30.0)
    rows, cols = torch.meshgrid(
        torch.arange(21.0), torch.arange(21.0), indexing="ij"
    )
    mass = out.sum()
    r, c = (out * rows).sum() / mass, (out * cols).sum() / mass
    # counter-clockwise on screen: up (smaller row) and left
    assert r.item() == pytest.approx(
        10 - 8 * math.sin(math.radians(30)), abs=0.05
    )
    assert c.item() == pytest.approx(
        10 + 8 * math.cos(math.radians(30)), abs=0.05
    )


def test_random_rotation_zero_is_identity():
    x = _images(4, 6, 6)
    torch.testing.assert_close(
        random_rotation(x, max_degrees=0.0, generator=_gen()),
        x,
        rtol=0,
        atol=1e-6,
    )


def test_brightness_contrast_formula():
    x = _images(3, 2, 4, 4, seed=5)
    g = _gen(7)
    c = (2 * torch.rand(3, 1, 1, 1, generator=g) - 1) * 0.4
    b = (2 * torch.rand(3, 1, 1, 1, generator=g) - 1) * 0.2
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    expected = (1 + c) * (x - mean) + mean + b
    out = random_brightness_contrast(
        x, brightness=0.2, contrast=0.4, generator=_gen(7)
    )
    torch.testing.assert_close(out, expected)
    # the mean moves by b only, the spread around it scales by 1 + c
    torch.testing.assert_close(out.mean(dim=(1, 2, 3), keepdim=True), mean + b)


def test_noise_has_the_requested_std():
    x = torch.zeros(100, 50, 50)
    out = add_gaussian_noise(x, std=0.3, generator=_gen())
    assert out.std().item() == pytest.approx(0.3, rel=0.01)
    assert out.mean().item() == pytest.approx(0.0, abs=0.003)
    torch.testing.assert_close(add_gaussian_noise(x, std=0.0), x)


def test_random_erasing_erases_one_rectangle_in_the_scale_range():
    x = torch.ones(300, 3, 10, 10)
    out = random_erasing(
        x,
        p=1.0,
        scale=(0.1, 0.3),
        ratio=(0.5, 2.0),
        value=-1.0,
        generator=_gen(),
    )
    for img in out:
        erased = img[0] == -1.0
        assert torch.equal(erased, img[1] == -1.0)  # all channels
        rows, cols = erased.any(1).nonzero(), erased.any(0).nonzero()
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert erased.sum() == h * w  # a filled rectangle
        assert (
            0.1 * 100 - 5 <= h * w <= 0.3 * 100 + 5
        )  # area within rounding of s HW
    assert torch.equal(random_erasing(x, p=0.0, generator=_gen()), x)


def test_mixup_is_a_convex_combination_of_one_hot_labels():
    x = _images(8, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    out = mixup(x, y, alpha=0.4, num_classes=10, generator=_gen(3))
    assert 0.0 <= out.lam <= 1.0
    torch.testing.assert_close(out.targets.sum(1), torch.ones(8))
    onehot = F.one_hot(y, 10).float()
    torch.testing.assert_close(
        out.targets, out.lam * onehot + (1 - out.lam) * onehot[out.perm]
    )
    torch.testing.assert_close(
        out.inputs, out.lam * x + (1 - out.lam) * x[out.perm]
    )
    assert sorted(out.perm.tolist()) == list(range(8))
    again = mixup(x, y, alpha=0.4, num_classes=10, generator=_gen(3))
    assert again.lam == out.lam and torch.equal(again.perm, out.perm)
    other = mixup(x, y, alpha=0.4, num_classes=10, generator=_gen(4))
    assert other.lam != out.lam


def test_mixup_accepts_soft_targets_and_lambda_follows_beta():
    soft = torch.softmax(_images(6, 3), dim=1)
    out = mixup(_images(6, 5), soft, alpha=1.0, generator=_gen())
    torch.testing.assert_close(out.targets.sum(1), torch.ones(6))
    g = _gen(11)
    lams = torch.tensor(
        [
            mixup(
                torch.zeros(2, 1), torch.zeros(2, 1), alpha=2.0, generator=g
            ).lam
            for _ in range(2000)
        ]
    )
    # Beta(2, 2): mean 1/2, variance 1/20
    assert lams.mean().item() == pytest.approx(0.5, abs=0.02)
    assert lams.var().item() == pytest.approx(0.05, abs=0.005)


BAD_CALLS = [
    (
        lambda: horizontal_flip(torch.zeros(2, 2, 2, 2, 2)),
        ValueError,
        r"horizontal_flip: 'images' must be of shape \(H, W\), \(N, H, W\) "
        r"or \(N, C, H, W\)",
    ),
    (
        lambda: horizontal_flip(torch.zeros(4)),
        ValueError,
        r"'images' must be of shape",
    ),
    (
        lambda: horizontal_flip([[0.0]]),
        TypeError,
        r"'images' must be a torch.Tensor",
    ),
    (
        lambda: horizontal_flip(torch.zeros(2, 2), p=1.5),
        ValueError,
        r"horizontal_flip: 'p' must be in \[0, 1\]; got 1.5",
    ),
    (
        lambda: horizontal_flip(torch.zeros(2, 2), p=-0.1),
        ValueError,
        r"'p' must be in \[0, 1\]",
    ),
    (
        lambda: horizontal_flip(torch.zeros(2, 2), generator=0),
        TypeError,
        r"'generator' must be a torch.Generator or None",
    ),
    (
        lambda: random_crop(torch.zeros(2, 2), padding=-1),
        ValueError,
        r"random_crop: 'padding' must be >= 0; got -1",
    ),
    (
        lambda: random_crop(torch.zeros(2, 2), padding=1.5),
        TypeError,
        r"'padding' must be an int",
    ),
    (
        lambda: rotate(torch.zeros(2, 2, dtype=torch.int64), 10.0),
        TypeError,
        r"rotate: 'images' must be a floating-point tensor",
    ),
    (
        lambda: rotate(torch.zeros(3, 2, 2), torch.zeros(2)),
        ValueError,
        r"rotate: 'degrees' must be a finite number or a tensor of shape "
        r"\(3,\)",
    ),
    (
        lambda: rotate(torch.zeros(2, 2), float("nan")),
        ValueError,
        r"'degrees' must be finite",
    ),
    (
        lambda: random_rotation(torch.zeros(2, 2), max_degrees=200),
        ValueError,
        r"random_rotation: 'max_degrees' must be in \[0, 180\]; got 200",
    ),
    (
        lambda: random_brightness_contrast(
            torch.zeros(2, 2), brightness=-0.1, contrast=0.1
        ),
        ValueError,
        r"'brightness' must be >= 0",
    ),
    (
        lambda: random_brightness_contrast(
            torch.zeros(2, 2), brightness=0.1, contrast=1.5
        ),
        ValueError,
        r"'contrast' must be in \[0, 1\]",
    ),
    (
        lambda: add_gaussian_noise(torch.zeros(2, 2), std=-1.0),
        ValueError,
        r"add_gaussian_noise: 'std' must be >= 0; got -1.0",
    ),
    (
        lambda: random_erasing(torch.zeros(2, 2), p=2.0),
        ValueError,
        r"'p' must be in \[0, 1\]",
    ),
    (
        lambda: random_erasing(torch.zeros(2, 2), scale=(0.5, 0.1)),
        ValueError,
        r"'scale' must be ordered, low <= high",
    ),
    (
        lambda: random_erasing(torch.zeros(2, 2), scale=(0.0, 0.5)),
        ValueError,
        r"'scale\[0\]' must be in \(0, 1\]",
    ),
    (
        lambda: random_erasing(torch.zeros(2, 2), ratio=(0.5,)),
        ValueError,
        r"'ratio' must be a pair \(low, high\)",
    ),
    (
        lambda: random_erasing(torch.zeros(2, 2), ratio=(-1.0, 2.0)),
        ValueError,
        r"'ratio\[0\]' must be > 0",
    ),
    (
        lambda: random_erasing(torch.zeros(2, 2), max_attempts=0),
        ValueError,
        r"'max_attempts' must be >= 1",
    ),
    (
        lambda: mixup(
            torch.zeros(2, 3), torch.tensor([0, 1]), alpha=0.0, num_classes=2
        ),
        ValueError,
        r"mixup: 'alpha' must be > 0; got 0.0",
    ),
    (
        lambda: mixup(torch.zeros(2, 3), torch.tensor([0, 1]), alpha=1.0),
        ValueError,
        r"'num_classes' must be an int when 'targets' are class indices",
    ),
    (
        lambda: mixup(
            torch.zeros(2, 3), torch.tensor([0, 5]), alpha=1.0, num_classes=3
        ),
        ValueError,
        r"'targets' must be class indices in 0..2",
    ),
    (
        lambda: mixup(
            torch.zeros(2, 3), torch.tensor([0, 1, 1]), alpha=1.0, num_classes=3
        ),
        ValueError,
        r"'targets' must be of shape \(2,\) or \(2, K\)",
    ),
    (
        lambda: mixup(
            torch.zeros(2, 3, dtype=torch.int64),
            torch.tensor([0, 1]),
            alpha=1.0,
            num_classes=2,
        ),
        ValueError,
        r"'inputs' must be a floating-point tensor",
    ),
]


@pytest.mark.parametrize("call, exc, match", BAD_CALLS)
def test_bad_arguments_are_rejected(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
