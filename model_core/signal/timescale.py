"""Time-scaling of audio (tempo with or without pitch) and of per-frame motion by the same factor.

Convention: `rate` > 1 plays faster (shorter output). Output sample t shows input sample t * rate, and output
frame j shows input frame j * rate, so audio and motion stay in step whatever the rate.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import get_window, resample_poly

WSOLA_FRAME = 512  # 32 ms at 16 kHz: a few pitch periods of any voice
WSOLA_TOLERANCE = 200  # 12.5 ms search: one period of an 80 Hz voice; bounds the timing error


def wsola(audio: np.ndarray, rate: float, frame: int = WSOLA_FRAME, tolerance: int = WSOLA_TOLERANCE) -> np.ndarray:
    """Change the tempo by `rate` keeping the pitch (waveform-similarity overlap-add); float64 out.

    Each output frame is copied from near its nominal input position (centre at t * rate), shifted by up to
    `tolerance` samples to continue the previous frame's waveform, so periodic sounds join without phase jumps.
    """
    x = np.asarray(audio, dtype=np.float64)
    if abs(rate - 1.0) < 1e-9 or len(x) == 0:
        return x.copy()
    hop = frame // 2
    n_out = max(1, int(round(len(x) / rate)))
    pad = frame + tolerance
    xp = np.pad(x, (pad, pad + 3 * frame * int(np.ceil(rate))))  # room for the last frames' search
    window = get_window("hann", frame)  # periodic Hann: copies at 50 % overlap sum to one
    count = n_out // hop + 2
    out = np.zeros(count * hop + frame)
    weight = np.zeros_like(out)
    prev = None
    for k in range(count):
        # Output frame k spans [k*hop - hop, k*hop + hop): centre k*hop shows input (k*hop) * rate.
        nominal = int(round(k * hop * rate)) - hop
        pos = nominal
        if prev is not None:
            natural = xp[pad + prev + hop: pad + prev + hop + frame]
            lo = pad + nominal - tolerance
            region = xp[lo: lo + frame + 2 * tolerance]
            corr = np.correlate(region, natural, mode="valid")
            best = int(np.argmax(corr))
            if corr[best] > corr[tolerance]:  # ties (silence) stay at the nominal position
                pos = nominal - tolerance + best
        start = k * hop  # out[start] is output sample start - hop
        out[start: start + frame] += window * xp[pad + pos: pad + pos + frame]
        weight[start: start + frame] += window
        prev = pos
    out, weight = out[hop: hop + n_out], weight[hop: hop + n_out]
    return np.where(weight > 1e-6, out / np.maximum(weight, 1e-6), 0.0)


def ratio(value: float, max_denominator: int = 400) -> Fraction:
    """A small fraction close to `value` (resample_poly needs integer up/down factors)."""
    return Fraction(value).limit_denominator(max_denominator)


def speed(audio: np.ndarray, rate: float) -> tuple[np.ndarray, float]:
    """Kaldi-style speed perturbation: resample so the audio plays `rate` times faster, pitch moving with it.

    Returns the audio (float64) and the exact rate used (a ratio of small integers close to `rate`).
    """
    exact = ratio(rate)
    if exact == 1:
        return np.asarray(audio, dtype=np.float64).copy(), 1.0
    out = resample_poly(np.asarray(audio, dtype=np.float64), exact.denominator, exact.numerator)
    return out, float(exact)


def pitch_shift(audio: np.ndarray, semitones: float) -> np.ndarray:
    """Shift the pitch by `semitones` keeping the duration: WSOLA to a longer/shorter take, then resample back."""
    x = np.asarray(audio, dtype=np.float64)
    if abs(semitones) < 1e-9 or len(x) == 0:
        return x.copy()
    factor = ratio(2.0 ** (semitones / 12.0), 200)
    stretched = wsola(x, 1.0 / float(factor))  # about len * factor samples, same pitch
    out = resample_poly(stretched, factor.denominator, factor.numerator)  # back to len: pitch times factor
    return fit_length(out, len(x))


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad at the end (only ever a few samples of rounding here)."""
    if len(audio) >= length:
        return audio[:length]
    return np.pad(audio, (0, length - len(audio)))


def retime_frames(frames: np.ndarray, rate: float, count: int) -> np.ndarray:
    """`count` frames where output frame j is input frame j * rate, linearly interpolated (float32 out).

    Works for any (T, ...) per-frame array: vertices (T, V*3) or blendshape weights (T, K).
    """
    src = np.asarray(frames)
    positions = np.minimum(np.arange(count) * rate, len(src) - 1)
    i0 = np.floor(positions).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(src) - 1)
    frac = (positions - i0).reshape((-1,) + (1,) * (src.ndim - 1))
    out = src[i0].astype(np.float64) * (1.0 - frac) + src[i1].astype(np.float64) * frac
    return out.astype(np.float32)
