"""Coarticulation by dominance functions (after Cohen & Massaro): each phone pulls a parameter towards its
target with a strength that peaks over the phone and decays before (anticipation) and after (carry-over).

Shared by the face (viseme weights) and the voice (formant tracks), so both follow the same timeline with
the same anticipation, which is what makes motion learnable from sound.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from model_core.synth.phonemes import Phone


def dominance_blend(phones: Sequence[Phone], times: np.ndarray, targets: np.ndarray, dominance: np.ndarray,
                    anticipation: float, carryover: float, core: float = 0.35) -> np.ndarray:
    """Blend per-phone targets (P, K) with dominances (P, K) at `times` (T,) -> (T, K).

    A phone's dominance is flat over the central `2 * core` of its duration and decays as a Gaussian with
    width `anticipation` seconds before that plateau and `carryover` seconds after it, so a following sound
    starts shaping the mouth tens of milliseconds before its acoustic onset.
    """
    starts = np.array([p.start for p in phones])
    ends = np.array([p.end for p in phones])
    centres = 0.5 * (starts + ends)
    half_plateau = core * (ends - starts)
    delta = np.asarray(times, dtype=float)[:, None] - centres[None, :]  # (T, P)
    outside = np.maximum(np.abs(delta) - half_plateau[None, :], 0.0)
    width = np.where(delta < 0.0, anticipation, carryover)
    shape = np.exp(-((outside / width) ** 2))  # (T, P)
    d = shape[:, :, None] * np.asarray(dominance, dtype=float)[None, :, :]  # (T, P, K)
    # A tiny floor keeps the ratio defined far from every phone (it never happens inside a sentence).
    numerator = np.einsum("tpk,pk->tk", d, np.asarray(targets, dtype=float))
    return numerator / (d.sum(axis=1) + 1e-9)


def closure_curve(intervals: Sequence[tuple[float, float]], times: np.ndarray, ramp_in: float,
                  ramp_out: float) -> np.ndarray:
    """1 inside each (start, end) interval, raised-cosine ramps of `ramp_in` s before and `ramp_out` s after.

    Used for lip closure: the lips must be shut for the whole acoustic closure, so the closing movement
    happens before the phone starts (anticipation) and the opening after the release.
    """
    t = np.asarray(times, dtype=float)
    out = np.zeros_like(t)
    for start, end in intervals:
        c = np.zeros_like(t)
        c[(t >= start) & (t <= end)] = 1.0
        before = (t > start - ramp_in) & (t < start)
        c[before] = 0.5 - 0.5 * np.cos(np.pi * (t[before] - (start - ramp_in)) / ramp_in)
        after = (t > end) & (t < end + ramp_out)
        c[after] = 0.5 + 0.5 * np.cos(np.pi * (t[after] - end) / ramp_out)
        out = np.maximum(out, c)
    return out


def blink_curve(times: np.ndarray, at: float, amplitude: float) -> np.ndarray:
    """A blink starting at `at`: 70 ms closing, 30 ms shut, 130 ms opening (raised-cosine ramps)."""
    close, hold, open_ = 0.07, 0.03, 0.13
    u = times - at
    out = np.zeros_like(times)
    closing = (u >= 0) & (u < close)
    out[closing] = 0.5 - 0.5 * np.cos(np.pi * u[closing] / close)
    out[(u >= close) & (u < close + hold)] = 1.0
    opening = (u >= close + hold) & (u < close + hold + open_)
    out[opening] = 0.5 + 0.5 * np.cos(np.pi * (u[opening] - close - hold) / open_)
    return amplitude * out


def bump_curve(times: np.ndarray, start: float, peak: float, end: float) -> np.ndarray:
    """0 -> 1 -> 0 with raised-cosine ramps from `start` up to `peak` and down to `end` (brow raises, frowns)."""
    out = np.zeros_like(times)
    rise = (times > start) & (times <= peak)
    out[rise] = 0.5 - 0.5 * np.cos(np.pi * (times[rise] - start) / (peak - start))
    fall = (times > peak) & (times < end)
    out[fall] = 0.5 + 0.5 * np.cos(np.pi * (times[fall] - peak) / (end - peak))
    return out
