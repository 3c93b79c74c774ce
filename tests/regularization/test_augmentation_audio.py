"""dlcourse.regularization.augmentation.audio: exact math and FFT peaks."""

import math

import pytest
import torch

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

FS = 8000


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _peak_hz(x, fs=FS):
    # independent of dominant_frequency: numpy's FFT and frequency grid
    import numpy as np

    spec = np.abs(np.fft.rfft(x.double().numpy()))
    spec[0] = 0
    return float(np.fft.rfftfreq(len(x), 1 / fs)[spec.argmax()])


def _tone(f=440.0, duration=1.0):
    return tone_mixture(
        [f, 3 * f], amplitudes=[1.0, 0.3], sample_rate=FS, duration=duration
    )


def test_tone_mixture_is_the_sum_of_sines():
    x = tone_mixture(
        [100.0, 250.0], amplitudes=[2.0, -0.5], sample_rate=1000, duration=0.01
    )
    t = torch.arange(10, dtype=torch.float64) / 1000
    expected = 2 * torch.sin(2 * math.pi * 100 * t) - 0.5 * torch.sin(
        2 * math.pi * 250 * t
    )
    torch.testing.assert_close(x, expected.float())
    assert x.dtype == torch.float32 and x.shape == (10,)


def test_dominant_frequency_finds_the_loudest_tone_per_row():
    x = torch.stack([_tone(440.0), _tone(600.0)])
    torch.testing.assert_close(
        dominant_frequency(x, sample_rate=FS),
        torch.tensor([440.0, 600.0], dtype=torch.float64),
    )
    assert dominant_frequency(x[0], sample_rate=FS).item() == _peak_hz(x[0])


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 30.0])
def test_noise_snr_measured_equals_requested(snr):
    x = torch.stack([_tone(), 0.1 * _tone(300.0)])
    noisy = add_noise_snr(x, snr_db=snr, generator=_gen())
    noise = (noisy - x).double()
    measured = 10 * torch.log10(
        x.double().pow(2).mean(1) / noise.pow(2).mean(1)
    )
    torch.testing.assert_close(
        measured, torch.full((2,), snr, dtype=torch.float64), rtol=0, atol=1e-3
    )
    assert noisy.shape == x.shape and noisy.dtype == x.dtype
    # the added noise has mean zero
    assert noise.mean().abs().item() < 0.05 * noise.std().item()


def test_noise_reproducible_and_seed_dependent():
    x = _tone()
    a = add_noise_snr(x, snr_db=5.0, generator=_gen(1))
    assert torch.equal(a, add_noise_snr(x, snr_db=5.0, generator=_gen(1)))
    assert not torch.equal(a, add_noise_snr(x, snr_db=5.0, generator=_gen(2)))


def test_time_shift_is_a_roll_or_a_zero_padded_shift():
    x = torch.arange(1.0, 7.0)
    torch.testing.assert_close(
        time_shift(x, 2), torch.tensor([5.0, 6, 1, 2, 3, 4])
    )
    torch.testing.assert_close(
        time_shift(x, 2, mode="zeros"), torch.tensor([0.0, 0, 1, 2, 3, 4])
    )
    torch.testing.assert_close(
        time_shift(x, -2, mode="zeros"), torch.tensor([3.0, 4, 5, 6, 0, 0])
    )
    torch.testing.assert_close(time_shift(x, 10, mode="zeros"), torch.zeros(6))
    torch.testing.assert_close(time_shift(x, 0), x)


def test_random_time_shift_rows_are_shifts_within_range():
    x = torch.randn(50, 40, generator=_gen())
    out = random_time_shift(x, max_shift=3, generator=_gen(5))
    shifts = []
    for row, o in zip(x, out):
        hits = [s for s in range(-3, 4) if torch.equal(torch.roll(row, s), o)]
        assert len(hits) == 1
        shifts.append(hits[0])
    assert set(shifts) == set(range(-3, 4))
    assert torch.equal(
        out, random_time_shift(x, max_shift=3, generator=_gen(5))
    )
    assert not torch.equal(
        out, random_time_shift(x, max_shift=3, generator=_gen(6))
    )


def test_speed_two_halves_the_length_and_doubles_the_frequency():
    x = _tone(440.0)
    fast = change_speed(x, 2.0)
    assert fast.shape == (len(x) // 2,)
    torch.testing.assert_close(
        fast, x[::2]
    )  # exact: it reads every other sample
    assert _peak_hz(fast) == pytest.approx(880.0, abs=FS / len(fast))


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.25])
def test_speed_factor_scales_length_and_frequency(factor):
    x = _tone(400.0)
    out = change_speed(torch.stack([x, x]), factor)
    assert out.shape == (2, round(len(x) / factor))
    assert _peak_hz(out[0]) == pytest.approx(
        400.0 * factor, abs=FS / out.shape[1]
    )
    torch.testing.assert_close(change_speed(x, 1.0), x)


def test_random_speed_changes_length_within_range_reproducibly():
    x = _tone(duration=0.5)
    a = random_speed(x, max_change=0.2, generator=_gen(1))
    assert 0.8 * len(x) / 1.2 - 1 <= len(a) <= len(x) / 0.8 + 1
    assert torch.equal(a, random_speed(x, max_change=0.2, generator=_gen(1)))
    assert len(a) != len(random_speed(x, max_change=0.2, generator=_gen(2)))


@pytest.mark.parametrize("factor", [0.75, 1.25, 1.5, 2 ** (3 / 12)])
def test_pitch_shift_moves_the_peak_and_keeps_the_length(factor):
    x = _tone(440.0)
    out = pitch_shift(x, factor)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert _peak_hz(out) == pytest.approx(
        440.0 * factor, abs=1.0
    )  # 1 Hz = one FFT bin
    # the shifted tone keeps its loudness (frames join in phase)
    rms_ratio = out[1000:-1000].pow(2).mean().sqrt() / x.pow(2).mean().sqrt()
    assert rms_ratio.item() == pytest.approx(1.0, abs=0.1)


def test_pitch_shift_by_one_is_nearly_identity():
    x = _tone(440.0)
    torch.testing.assert_close(pitch_shift(x, 1.0), x, rtol=0, atol=1e-5)


def test_random_pitch_shift_is_reproducible_and_within_range():
    x = _tone(440.0, duration=0.5)
    a = random_pitch_shift(x, max_semitones=2.0, generator=_gen(1))
    assert torch.equal(
        a, random_pitch_shift(x, max_semitones=2.0, generator=_gen(1))
    )
    assert not torch.equal(
        a, random_pitch_shift(x, max_semitones=2.0, generator=_gen(3))
    )
    ratio = _peak_hz(a, FS) / 440.0
    assert 2 ** (-2 / 12) - 0.01 <= ratio <= 2 ** (2 / 12) + 0.01


BAD_CALLS = [
    (
        lambda: add_noise_snr(torch.zeros(2, 2, 2), snr_db=1.0),
        ValueError,
        r"add_noise_snr: 'wave' must be of shape \(T,\) or \(N, T\) "
        r"with T >= 2",
    ),
    (
        lambda: add_noise_snr(torch.zeros(5), snr_db=1.0),
        ValueError,
        r"'wave' must be non-silent",
    ),
    (
        lambda: add_noise_snr(torch.ones(5), snr_db=float("inf")),
        ValueError,
        r"'snr_db' must be finite",
    ),
    (
        lambda: add_noise_snr(torch.ones(5, dtype=torch.int64), snr_db=1.0),
        TypeError,
        r"'wave' must be a floating-point tensor",
    ),
    (
        lambda: add_noise_snr([1.0, 2.0], snr_db=1.0),
        TypeError,
        r"'wave' must be a torch.Tensor",
    ),
    (
        lambda: add_noise_snr(torch.ones(5), snr_db=1.0, generator=1),
        TypeError,
        r"'generator' must be a torch.Generator or None",
    ),
    (
        lambda: time_shift(torch.ones(5), 1.5),
        TypeError,
        r"time_shift: 'shift' must be an int",
    ),
    (
        lambda: time_shift(torch.ones(5), 1, mode="wrap"),
        ValueError,
        r"'mode' must be one of 'roll', 'zeros'; got 'wrap'",
    ),
    (
        lambda: random_time_shift(torch.ones(5), max_shift=-1),
        ValueError,
        r"random_time_shift: 'max_shift' must be >= 0; got -1",
    ),
    (
        lambda: change_speed(torch.ones(5), 0.0),
        ValueError,
        r"change_speed: 'factor' must be > 0",
    ),
    (
        lambda: random_speed(torch.ones(5), max_change=1.0),
        ValueError,
        r"random_speed: 'max_change' must be in \[0, 1\)",
    ),
    (
        lambda: pitch_shift(torch.ones(5), -2.0),
        ValueError,
        r"pitch_shift: 'factor' must be > 0",
    ),
    (
        lambda: pitch_shift(torch.ones(50), 1.2, frame_length=2),
        ValueError,
        r"'frame_length' must be >= 4",
    ),
    (
        lambda: random_pitch_shift(torch.ones(50), max_semitones=30.0),
        ValueError,
        r"'max_semitones' must be in \[0, 24\]",
    ),
    (
        lambda: tone_mixture([5000.0], sample_rate=8000, duration=1.0),
        ValueError,
        r"'frequencies\[0\]' must be in \[0, 4000\)",
    ),
    (
        lambda: tone_mixture([100.0], sample_rate=8000, duration=0.0),
        ValueError,
        r"'duration' must be > 0",
    ),
    (
        lambda: tone_mixture(
            [100.0], amplitudes=[1.0, 2.0], sample_rate=8000, duration=1.0
        ),
        ValueError,
        r"'amplitudes' must be 1 numbers, one per frequency",
    ),
    (
        lambda: dominant_frequency(torch.ones(8), sample_rate=0),
        ValueError,
        r"dominant_frequency: 'sample_rate' must be >= 1",
    ),
]


@pytest.mark.parametrize("call, exc, match", BAD_CALLS)
def test_bad_arguments_are_rejected(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
