r"""Audio augmentations on waveforms: noise at an SNR, time shift, speed, pitch.

Book: Part I, chapter 4, "Dataset augmentation".

Waveforms are float tensors ``(T,)`` or ``(N, T)`` of samples at one sample
rate. Noise and shifts keep the shape; a speed change resamples and so changes
the length (by the factor); a pitch shift keeps the length. Random choices come
from ``generator`` (``None``: torch's global generator). Test signals are
synthesized (:func:`tone_mixture`): nothing is downloaded.
"""

from __future__ import annotations

import math

import torch

from dlcourse._validation import (
    _fail,
    check_choice,
    check_generator,
    check_in_range,
    check_int,
    check_real,
    check_type,
)

__all__ = [
    "tone_mixture",
    "dominant_frequency",
    "add_noise_snr",
    "time_shift",
    "random_time_shift",
    "change_speed",
    "random_speed",
    "pitch_shift",
    "random_pitch_shift",
]


def _check_wave(where: str, wave) -> torch.Tensor:
    """View ``wave`` as ``(N, T)``."""
    check_type(where, "wave", wave, torch.Tensor, "a torch.Tensor")
    if wave.ndim not in (1, 2) or wave.shape[-1] < 2:
        _fail(
            where,
            "wave",
            "of shape (T,) or (N, T) with T >= 2",
            tuple(wave.shape),
        )
    if not wave.is_floating_point():
        raise TypeError(
            f"{where}: 'wave' must be a floating-point tensor;"
            f" got {wave.dtype}."
        )
    return wave.reshape(-1, wave.shape[-1])


def tone_mixture(
    frequencies, *, sample_rate: int, duration: float, amplitudes=None
) -> torch.Tensor:
    r"""A sum of sines, float32 ``(T,)``.

    :math:`x(t_n) = \sum_k a_k \sin(2\pi f_k t_n)` with :math:`t_n = n / f_s`.
    """
    where = "tone_mixture"
    check_type(
        where,
        "frequencies",
        frequencies,
        (list, tuple),
        "a list or tuple of numbers",
    )
    fs = check_int(where, "sample_rate", sample_rate, low=1)
    dur = check_in_range(
        where, "duration", duration, 0, None, low_inclusive=False
    )
    amps = [1.0] * len(frequencies) if amplitudes is None else list(amplitudes)
    if not frequencies or len(amps) != len(frequencies):
        _fail(
            where,
            "amplitudes",
            f"{len(frequencies)} numbers, one per frequency (at least one)",
            amps,
        )
    t = torch.arange(round(dur * fs), dtype=torch.float64) / fs
    wave = torch.zeros_like(t)
    for i, (f, a) in enumerate(zip(frequencies, amps)):
        f = check_in_range(
            where, f"frequencies[{i}]", f, 0, fs / 2, high_inclusive=False
        )
        wave += check_real(where, f"amplitudes[{i}]", a) * torch.sin(
            2 * math.pi * f * t
        )
    return wave.float()


def dominant_frequency(wave: torch.Tensor, *, sample_rate: int) -> torch.Tensor:
    r"""Frequency (Hz) of the largest peak of :math:`|\mathrm{rfft}(x)|`.

    One frequency per row; the DC bin is excluded. The resolution is one FFT
    bin, :math:`f_s / T` Hz.
    """
    x = _check_wave("dominant_frequency", wave)
    fs = check_int("dominant_frequency", "sample_rate", sample_rate, low=1)
    spectrum = torch.fft.rfft(x.double()).abs()
    spectrum[:, 0] = 0.0
    freq = spectrum.argmax(dim=1).double() * fs / x.shape[1]
    return freq.reshape(wave.shape[:-1])


def add_noise_snr(
    wave: torch.Tensor,
    *,
    snr_db: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Add Gaussian noise whose power makes the SNR exactly ``snr_db``.

    .. math:: \mathrm{SNR}_\mathrm{dB} = 10 \log_{10} \frac{P_x}{P_n}, \qquad
              P = \tfrac1T \textstyle\sum_t x_t^2,

    so the noise drawn is rescaled to power
    :math:`P_n = P_x\, 10^{-\mathrm{SNR}/10}` (each row on its own).
    """
    where = "add_noise_snr"
    x = _check_wave(where, wave)
    snr = check_real(where, "snr_db", snr_db)
    check_generator(where, generator)
    p_signal = x.double().pow(2).mean(dim=1, keepdim=True)
    if (p_signal == 0).any():
        _fail(
            where,
            "wave",
            "non-silent (every row with nonzero power)",
            "a silent row",
        )
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    p_target = p_signal * 10 ** (-snr / 10)  # P_n = P_x 10^(-SNR/10)
    noise *= torch.sqrt(p_target / noise.pow(2).mean(dim=1, keepdim=True))
    return (x + noise.to(x.dtype)).reshape(wave.shape)


def time_shift(
    wave: torch.Tensor, shift: int, *, mode: str = "roll"
) -> torch.Tensor:
    r"""Delay by ``shift`` samples (advance if negative).

    :math:`x'_t = x_{t-s}` with :math:`s` = ``shift``. ``mode="roll"`` wraps
    the samples pushed out around to the other end; ``mode="zeros"`` drops
    them and fills the gap with silence.
    """
    where = "time_shift"
    x = _check_wave(where, wave)
    s = check_int(where, "shift", shift)
    check_choice(where, "mode", mode, ("roll", "zeros"))
    t = x.shape[1]
    if mode == "roll":
        return torch.roll(x, s, dims=1).reshape(wave.shape)
    out = torch.zeros_like(x)
    if abs(s) < t:
        if s >= 0:
            out[:, s:] = x[:, : t - s]
        else:
            out[:, : t + s] = x[:, -s:]
    return out.reshape(wave.shape)


def random_time_shift(
    wave: torch.Tensor,
    *,
    max_shift: int,
    mode: str = "roll",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Shift each row by an integer drawn uniformly from ``-m..m``.

    ``m`` is ``max_shift``; see :func:`time_shift`.
    """
    where = "random_time_shift"
    x = _check_wave(where, wave)
    m = check_int(where, "max_shift", max_shift, low=0)
    check_choice(where, "mode", mode, ("roll", "zeros"))
    check_generator(where, generator)
    shifts = torch.randint(
        -m, m + 1, (x.shape[0],), generator=generator
    ).tolist()
    out = torch.stack(
        [time_shift(row, s, mode=mode) for row, s in zip(x, shifts)]
    )
    return out.reshape(wave.shape)


def change_speed(wave: torch.Tensor, factor: float) -> torch.Tensor:
    r"""Play ``factor`` times faster: resample by linear interpolation.

    .. math:: x'_j = x(j\,r), \quad j = 0, \dots, \operatorname{round}(T/r) - 1,

    with :math:`x(\cdot)` the linear interpolation of the samples. Duration
    divides by :math:`r` and every frequency multiplies by :math:`r` (at the
    same sample rate). There is no low-pass filter: for :math:`r > 1`,
    content above :math:`f_s / (2r)` aliases.
    """
    where = "change_speed"
    x = _check_wave(where, wave)
    r = check_in_range(where, "factor", factor, 0, None, low_inclusive=False)
    t = x.shape[1]
    new_t = max(round(t / r), 1)
    pos = torch.arange(new_t, dtype=torch.float64) * r  # where x' reads x
    i0 = pos.floor().long().clamp(max=t - 1)
    i1 = (i0 + 1).clamp(max=t - 1)
    frac = (pos - i0).clamp(0, 1).to(x.dtype)
    out = x[:, i0] * (1 - frac) + x[:, i1] * frac
    return out.reshape(*wave.shape[:-1], new_t)


def random_speed(
    wave: torch.Tensor,
    *,
    max_change: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`change_speed` with one factor drawn from ``U[1 - m, 1 + m]``.

    ``m`` is ``max_change``.
    """
    where = "random_speed"
    _check_wave(where, wave)
    m = check_in_range(
        where, "max_change", max_change, 0, 1, high_inclusive=False
    )
    check_generator(where, generator)
    u = torch.rand((), generator=generator, dtype=torch.float64).item()
    return change_speed(wave, 1 - m + 2 * m * u)


def _wsola_starts(
    y: torch.Tensor, nominal: torch.Tensor, length: int, hop: int
) -> torch.Tensor:
    """Each frame's start in ``y`` (padded), within ``hop // 2`` of ``nominal``.

    The start chosen is the one whose segment best continues the previous
    frame (largest inner product).
    """
    n, tol = y.shape[0], hop // 2
    offsets, rows = torch.arange(length), torch.arange(n)[:, None]
    chosen = [nominal[0].expand(n)]
    for s in nominal[1:].tolist():
        # (N, L): the natural continuation of the previous frame
        natural = y[rows, chosen[-1][:, None] + hop + offsets]
        # (N, C, L) view, C = 2 tol + 1 candidate starts
        segs = y[:, s - tol : s + tol + length].unfold(1, length, 1)
        score = torch.einsum("ncl,nl->nc", segs, natural)
        chosen.append(s - tol + score.argmax(dim=1))
    return torch.stack(chosen, dim=1)  # (N, K)


def pitch_shift(
    wave: torch.Tensor, factor: float, *, frame_length: int = 512
) -> torch.Tensor:
    r"""Multiply every frequency by ``factor``, keep the duration (WSOLA).

    1. :func:`change_speed` by ``factor`` :math:`= r`: frequencies times
       :math:`r`, length :math:`T / r`;
    2. stretch back to length :math:`T` without changing frequencies: output
       frame :math:`k` (Hann window of ``frame_length`` samples, hop :math:`H`
       half of it, at time :math:`kH`) copies the resampled signal near time
       :math:`kH / r`; frames overlap-add, normalized by the summed windows.
       Each frame's source is moved by up to :math:`H/2` samples to the offset
       that best continues the previous frame (WSOLA, Verhelst and Roelands
       1993), so waveforms join in phase; without it, phase jumps between
       frames split a tone into side-bands spaced :math:`f_s / H` apart.

    Limits: a periodic signal is reproduced well; transients are smeared or
    doubled, tones with periods longer than about :math:`H` are not aligned, and
    formants move with the pitch ("chipmunk" voices), which a phase vocoder with
    spectral-envelope correction avoids.
    """
    where = "pitch_shift"
    x = _check_wave(where, wave)
    r = check_in_range(where, "factor", factor, 0, None, low_inclusive=False)
    length = check_int(where, "frame_length", frame_length, low=4)
    n, t = x.shape
    hop = length // 2
    pad = length + hop  # room for shifted and overhanging frames
    y = torch.nn.functional.pad(
        change_speed(x, r), (pad, pad)
    )  # (N, ~T/r + 2 pad)
    window = torch.hann_window(length, periodic=True, dtype=x.dtype)
    starts = torch.arange(-hop, t, hop)  # output frame starts, covering [0, T)
    nominal = (torch.round(starts.double() / r).long() + pad).clamp(
        hop, y.shape[1] - pad
    )
    src = _wsola_starts(y, nominal, length, hop)  # (N, K)
    offsets = torch.arange(length)
    frames = torch.gather(
        y, 1, (src[:, :, None] + offsets).reshape(n, -1)
    )  # (N, K*L)
    write = (
        starts[:, None] + offsets + hop
    ).flatten()  # into a buffer shifted by hop
    out = torch.zeros(n, t + length + hop, dtype=x.dtype)
    weight = torch.zeros(t + length + hop, dtype=x.dtype)
    out.index_add_(
        1, write, (frames.reshape(n, -1, length) * window).reshape(n, -1)
    )
    weight.index_add_(0, write, window.expand(len(starts), -1).flatten())
    out = out[:, hop : hop + t] / weight[hop : hop + t].clamp(min=1e-8)
    return out.reshape(wave.shape)


def random_pitch_shift(
    wave: torch.Tensor,
    *,
    max_semitones: float,
    frame_length: int = 512,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r""":func:`pitch_shift` by :math:`2^{s/12}`, :math:`s \sim U[-m, m]`.

    :math:`s` is in semitones and :math:`m` is ``max_semitones``.
    """
    where = "random_pitch_shift"
    _check_wave(where, wave)
    m = check_in_range(where, "max_semitones", max_semitones, 0, 24)
    check_generator(where, generator)
    s = (
        2 * torch.rand((), generator=generator, dtype=torch.float64).item() - 1
    ) * m
    return pitch_shift(wave, 2 ** (s / 12), frame_length=frame_length)
