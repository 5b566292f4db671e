"""Per-frame prosody of a take (loudness, pitch, speech/pause, accents) for the life layer.

Pure module (stdlib + numpy) so it runs inside Blender's bundled Python.

Frame ``k`` describes the audio around ``k / fps`` seconds (windows are centred on it), the same convention as
the model's motion frames. The pipeline, all vectorised over frames:

* The audio is band-limited and resampled to 8 kHz by FFT (one real FFT of the whole take, zero-padded to a
  length with small prime factors), and everything below 50 Hz (rumble, DC) is dropped. 8 kHz keeps all the
  periodicity a 60-400 Hz voice has and makes the pitch search cheap: a 60 s take at 48 kHz takes 0.1-0.3 s.
* Loudness: RMS level in dB re full scale (a full-scale square wave is 0 dB) over ``max(40 ms, 1 / fps)``,
  floored at -120 dB. It is a level, not a perceptual loudness (no weighting): only its changes are used.
* Pitch: the cumulative-mean-normalised difference function of YIN (de Cheveigne & Kawahara 2002, JASA 111:
  1917-1930) on a 40 ms integration window, lags 2.5-16.7 ms (400-60 Hz), computed for all frames at once with
  one batch of FFTs. The period is the first dip below 0.15 (or, where none is, below the deepest dip + 0.1),
  followed down to its local minimum: taking the first dip keeps YIN off the sub-octaves. When the dip at
  twice that lag is under 3/4 as deep (and the first is not already below 0.1), that is the period (a
  strong second harmonic put the first dip at half of it: octave-up errors on low voices). Parabolic
  interpolation refines the lag. A frame is voiced when its dip is below 0.25 and it is louder than the
  speech threshold; f0 is NaN elsewhere. Last, a voiced frame more than 9 semitones off the median voiced
  f0 within +-300 ms is moved by an octave when that lands it within 4 semitones, else made unvoiced: real
  speech does not jump an octave between two frames, pitch trackers do.
* Speech/pause: frames louder than an adaptive threshold set from the take's own level distribution,
  ``max(p10 + 0.3 (p97 - p10), p97 - 35 dB)`` with p10/p97 its 10th/97th percentile levels: the noise floor
  and the level of loud speech. Scaling the take by any gain shifts all three by the same dB, so the frames
  chosen do not change. Gaps shorter than 180 ms (stop closures, short breaths) are bridged, then speech
  islands shorter than 60 ms (clicks) dropped. A take whose levels span less than 6 dB is uniform: all
  speech if louder than -70 dBFS, else all silence (the one case where an absolute level decides).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .arrays import real_array, require_finite

_WORK_RATE = 8000  # Hz the audio is resampled to for all analysis
_HIGHPASS_HZ = 50.0
_F0_MIN_HZ = 60.0
_F0_MAX_HZ = 400.0
_YIN_WINDOW_S = 0.040  # integration window: two periods of the lowest pitch and a bit
_YIN_THRESHOLD = 0.15  # first dip of the normalised difference below this is the period (YIN's absolute threshold)
_YIN_VOICED = 0.25  # dips above this are aperiodic: unvoiced
_OCTAVE_RATIO = 0.75  # a dip at twice the lag this much deeper is the real period ...
_OCTAVE_CLEAR = 0.1  # ... unless the first dip is already this clear
_OCTAVE_CONTEXT_S = 0.3  # octave jumps are judged against the median voiced f0 within +-300 ms
_LOUDNESS_WINDOW_S = 0.040
_FLOOR_DB = -120.0
_GAP_BRIDGE_S = 0.18  # shorter silences inside speech are closures or breaths, not pauses
_MIN_ISLAND_S = 0.06  # shorter loud bits are clicks, not speech
_UNIFORM_SPAN_DB = 6.0
_UNIFORM_SPEECH_DBFS = -70.0
# accents (see `accents`)
_PEAK_HALF_S = 0.10  # a peak is the maximum within +-100 ms: about one syllable either side
_ACCENT_LOUD_DB = 3.0
_ACCENT_F0_ST = 2.0
_ACCENT_F0_MAX_DROP_DB = 6.0
_ACCENT_MERGE_S = 0.25
_STRENGTH_LOUD_DB = 9.0  # loudness rise above the phrase's peaks that counts as full strength
_STRENGTH_F0_ST = 6.0  # pitch rise above the phrase's median that counts as full strength


@dataclass(frozen=True, eq=False)
class Prosody:
    """Prosody per motion frame: ``loudness_db`` (T,) float32 dBFS, ``f0_hz`` (T,) float32 (NaN unvoiced),
    ``speech`` (T,) bool (inside speech, short gaps bridged)."""

    fps: float
    loudness_db: np.ndarray
    f0_hz: np.ndarray
    speech: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.speech.shape[0])


def _positive(value: float, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{what} must be a positive finite number, got {value!r}")
    return number


def _whole(value: object, what: str, minimum: int) -> int:
    """A whole number >= minimum (floats like 30.0 accepted), or a ValueError that says what was wrong."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (math.isfinite(number) and number.is_integer() and number >= minimum):
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return int(number)


def _smooth_length(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n: FFT lengths pocketfft handles fastest."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            p = p35
            while p < n:
                p *= 2
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _resample(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """Band-limited 8 kHz version of the take (50 Hz high-passed) and its exact rate."""
    n = samples.shape[0]
    pad = int(0.05 * sample_rate) + 64  # zeros after the end keep the FFT's wrap-around out of the take
    m = _smooth_length(n + pad)
    spectrum = np.fft.rfft(samples.astype(np.float64), m)
    m_out = max(int(round(m * _WORK_RATE / sample_rate)), 2) if sample_rate != _WORK_RATE else m
    rate = sample_rate * m_out / m
    keep = min(spectrum.shape[0], m_out // 2 + 1)
    spectrum = spectrum[:keep]
    spectrum[: int(math.ceil(_HIGHPASS_HZ * m / sample_rate))] = 0.0
    if m_out % 2 == 0 and keep == m_out // 2 + 1 and m_out < m:
        spectrum[-1] = 0.0  # the new Nyquist bin would alias; drop it
    out = np.fft.irfft(spectrum, m_out) * (m_out / m)
    n_out = min(int(math.ceil(n * rate / sample_rate)), m_out)
    return out[:n_out], rate


def _frame_segments(x: np.ndarray, centres: np.ndarray, length: int) -> np.ndarray:
    """(K, length) copies of ``x`` centred on each sample index, zero outside the take."""
    half = length // 2
    padded = np.concatenate([np.zeros(half + 1), x, np.zeros(length + 1)])
    starts = np.clip(centres - half + half + 1, 0, padded.shape[0] - length)
    return np.lib.stride_tricks.sliding_window_view(padded, length)[starts]


def _loudness(x: np.ndarray, rate: float, times: np.ndarray, fps: float) -> np.ndarray:
    window = max(_LOUDNESS_WINDOW_S, 1.0 / fps)
    half = window * rate / 2.0
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    lo = np.clip(np.round(times * rate - half).astype(np.int64), 0, x.shape[0])
    hi = np.clip(np.round(times * rate + half).astype(np.int64), 0, x.shape[0])
    width = max(2.0 * half, 1.0)  # samples outside the take count as silence
    power = np.maximum(csum[hi] - csum[lo], 0.0) / width
    return np.maximum(10.0 * np.log10(power + 1e-30), _FLOOR_DB)


def _yin(x: np.ndarray, rate: float, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f0 Hz, dip depth) per frame; f0 is NaN where no lag was found."""
    window = int(round(_YIN_WINDOW_S * rate))
    tau_min = int(math.floor(rate / _F0_MAX_HZ))
    tau_max = int(math.ceil(rate / _F0_MIN_HZ)) + 1  # +1: parabolic interpolation needs the neighbour
    length = window + tau_max
    n_fft = _smooth_length(length)
    centres = np.round(times * rate).astype(np.int64)
    seg = _frame_segments(x, centres, length)
    head = seg[:, :window]
    # r(tau) = sum_{j < W} x_j x_{j+tau}; n_fft >= W + tau_max so the circular correlation never wraps
    r = np.fft.irfft(np.conj(np.fft.rfft(head, n_fft)) * np.fft.rfft(seg, n_fft), n_fft)[:, : tau_max + 1]
    sq = np.concatenate([np.zeros((seg.shape[0], 1)), np.cumsum(seg * seg, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    energy_shift = sq[:, taus + window] - sq[:, taus]
    d = np.maximum(sq[:, [window]] + energy_shift - 2.0 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        cmnd[:, 1:] = np.where(cum > 0, d[:, 1:] * taus[1:] / cum, 1.0)
    search = cmnd[:, tau_min:tau_max]  # lags tau_min .. tau_max - 1, so tau + 1 exists
    # Where no dip reaches the threshold (a fast level change, breathiness) YIN takes the global minimum,
    # which is often a multiple of the period: take the first dip within 0.1 of it instead.
    threshold = np.maximum(_YIN_THRESHOLD, search.min(axis=1) + 0.1)[:, None]
    first = (search < threshold).argmax(axis=1)
    # follow the dip down to its local minimum: the first lag at or after `first` where the curve rises again
    rising = np.concatenate([search[:, 1:] > search[:, :-1], np.ones((search.shape[0], 1), bool)], axis=1)
    after = np.arange(search.shape[1])[None, :] >= first[:, None]
    best = (rising & after).argmax(axis=1)
    tau = best + tau_min
    rows = np.arange(seg.shape[0])
    # A voice with a strong second harmonic can dip below the threshold at half its period; the true period
    # then dips much deeper at twice the lag (a real period dips about as deep at its double).
    double = 2 * tau
    near = np.clip(double[:, None] + np.arange(-2, 3)[None, :], tau_min, tau_max - 1)
    near_vals = cmnd[rows[:, None], near]
    deeper = ((double + 2 <= tau_max - 1) & (cmnd[rows, tau] > _OCTAVE_CLEAR)
              & (near_vals.min(axis=1) < _OCTAVE_RATIO * cmnd[rows, tau]))
    tau = np.where(deeper, near[rows, near_vals.argmin(axis=1)], tau)
    y0, y1, y2 = cmnd[rows, tau - 1], cmnd[rows, tau], cmnd[rows, tau + 1]
    curvature = y0 - 2.0 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(curvature > 0, 0.5 * (y0 - y2) / curvature, 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    f0 = rate / (tau + shift)
    depth = y1
    f0[(tau <= tau_min) | ~np.isfinite(f0)] = np.nan  # a minimum on the search edge is not a period
    return f0, depth


def _fix_octaves(f0: np.ndarray, fps: float) -> np.ndarray:
    """Octave jumps against the local median voiced f0 folded back, or unvoiced when they do not fold."""
    voiced = np.isfinite(f0)
    if voiced.sum() < 3:
        return f0
    st = 12.0 * np.log2(np.where(voiced, f0, 1.0))
    st[~voiced] = np.nan
    half = max(int(round(_OCTAVE_CONTEXT_S * fps)), 1)
    padded = np.concatenate([np.full(half, np.nan), st, np.full(half, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows (unvoiced stretches)
        reference = np.nanmedian(windows, axis=1)
    off = st - reference
    jump = voiced & np.isfinite(off) & (np.abs(off) > 9.0)
    folded = st - 12.0 * np.sign(off)
    good = jump & (np.abs(folded - reference) <= 4.0)
    out = f0.copy()
    out[good] = 2.0 ** (folded[good] / 12.0)
    out[jump & ~good] = np.nan
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True, end exclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _speech_mask(loudness: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(raw frames above the threshold, bridged speech mask)."""
    lo, hi = np.percentile(loudness, [10.0, 97.0])
    if hi - lo < _UNIFORM_SPAN_DB:
        raw = np.full(loudness.shape, hi > _UNIFORM_SPEECH_DBFS)
    else:
        raw = loudness > max(lo + 0.3 * (hi - lo), hi - 35.0)
    speech = raw.copy()
    bridge = _GAP_BRIDGE_S * fps
    for start, end in _runs(~speech):
        if start > 0 and end < speech.shape[0] and end - start < bridge:
            speech[start:end] = True
    island = _MIN_ISLAND_S * fps
    for start, end in _runs(speech):
        if end - start < island:
            speech[start:end] = False
    return raw, speech


def prosody_track(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int | None = None) -> Prosody:
    """Loudness, f0 and speech/pause for frames at ``k / fps`` seconds (module note).

    ``samples`` is mono float audio (1-D, any rate >= 8 kHz). ``n_frames`` defaults to the frames whose time
    lies inside the audio, ``ceil(len(samples) / sample_rate * fps)``; frames past the end see silence.
    """
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"samples must be a 1-D mono signal, got an array of shape {x.shape}")
    if x.size == 0:
        raise ValueError("samples is empty: there is no audio to analyse")
    x = real_array(x, "samples").astype(np.float64)
    require_finite(x, "samples contain NaN or infinite values; clean the audio first")
    sample_rate = _whole(sample_rate, "sample_rate (Hz)", 8000)
    fps = _positive(fps, "fps")
    if n_frames is None:
        n_frames = max(int(math.ceil(x.shape[0] / sample_rate * fps - 1e-9)), 1)
    n_frames = _whole(n_frames, "n_frames", 1)

    work, rate = _resample(x, sample_rate)
    times = np.arange(n_frames, dtype=np.float64) / fps
    loudness = _loudness(work, rate, times, fps)
    raw, speech = _speech_mask(loudness, fps)
    f0, depth = _yin(work, rate, times)
    voiced = raw & (depth < _YIN_VOICED) & np.isfinite(f0)
    f0 = _fix_octaves(np.where(voiced, f0, np.nan), fps)
    return Prosody(fps=fps, loudness_db=loudness.astype(np.float32), f0_hz=f0.astype(np.float32),
                   speech=speech)


def _check(prosody: Prosody) -> None:
    if not isinstance(prosody, Prosody):
        raise ValueError(f"expected a Prosody from prosody_track, got {type(prosody).__name__}")


def pauses(prosody: Prosody, min_pause_s: float = 0.25) -> list[tuple[int, int]]:
    """(start, end) frame ranges, end exclusive, of the silences lasting at least ``min_pause_s``.

    Silences at the take's start and end count too (the end of the last phrase is a boundary as well); a
    caller wanting only the gaps between phrases drops the ranges touching frame 0 or the last frame.
    """
    _check(prosody)
    min_pause_s = float(min_pause_s)
    if not (math.isfinite(min_pause_s) and min_pause_s >= 0):
        raise ValueError(f"min_pause_s must be a finite number of seconds >= 0, got {min_pause_s!r}")
    need = min_pause_s * prosody.fps - 1e-9
    return [(s, e) for s, e in _runs(~prosody.speech) if e - s >= max(need, 1)]


def _phrase_levels(prosody: Prosody) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: phrase id (-1 outside speech), the phrase's loudness-peak median (dB) and median f0 (st),
    plus the loudness-peak mask."""
    n = prosody.n_frames
    loud = prosody.loudness_db.astype(np.float64)
    half = max(int(round(_PEAK_HALF_S * prosody.fps)), 1)
    padded = np.concatenate([np.full(half, -np.inf), loud, np.full(half, -np.inf)])
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).max(axis=1)
    peak = (loud >= local_max) & prosody.speech
    semitones = 12.0 * np.log2(prosody.f0_hz.astype(np.float64) / 100.0)
    phrase = np.full(n, -1)
    ref_loud = np.full(n, np.nan)
    ref_st = np.full(n, np.nan)
    for i, (s, e) in enumerate(_runs(prosody.speech)):
        phrase[s:e] = i
        peaks = loud[s:e][peak[s:e]]
        ref_loud[s:e] = np.median(peaks) if peaks.size else np.median(loud[s:e])
        voiced = semitones[s:e][np.isfinite(semitones[s:e])]
        if voiced.size:
            ref_st[s:e] = np.median(voiced)
    return phrase, ref_loud, ref_st, peak


def _strengths(prosody: Prosody, ref_loud: np.ndarray, ref_st: np.ndarray) -> np.ndarray:
    loud = prosody.loudness_db.astype(np.float64)
    semitones = 12.0 * np.log2(prosody.f0_hz.astype(np.float64) / 100.0)
    loud_part = (loud - ref_loud) / _STRENGTH_LOUD_DB
    f0_part = np.where(np.isfinite(semitones) & np.isfinite(ref_st), (semitones - ref_st) / _STRENGTH_F0_ST, 0.0)
    return np.clip(np.nan_to_num(np.maximum(loud_part, f0_part), nan=0.0), 0.0, 1.0)


def accents(prosody: Prosody) -> np.ndarray:
    """Frame indices (int64, increasing) of the take's accents: stressed syllables and pitch accents.

    The rule, per phrase (a run of speech frames between pauses):
    * a loudness accent is a loudness peak (the maximum within +-100 ms, about a syllable either side) at least
      3 dB above the median level of the phrase's loudness peaks, i.e. clearly louder than its other syllables;
    * a pitch accent is an f0 peak (maximum of the voiced f0 within +-100 ms) at least 2 semitones above the
      phrase's median f0, on a frame no more than 6 dB below the phrase's typical peak (a real syllable);
    * accents closer than 250 ms are one accent: the stronger (`accent_strengths`) is kept.
    Everything is relative to the phrase, so a take's gain or a speaker's register do not matter.
    """
    _check(prosody)
    if prosody.n_frames == 0 or not prosody.speech.any():
        return np.zeros(0, dtype=np.int64)
    loud = prosody.loudness_db.astype(np.float64)
    phrase, ref_loud, ref_st, peak = _phrase_levels(prosody)
    loud_accent = peak & (loud - ref_loud >= _ACCENT_LOUD_DB)

    semitones = 12.0 * np.log2(prosody.f0_hz.astype(np.float64) / 100.0)
    half = max(int(round(_PEAK_HALF_S * prosody.fps)), 1)
    st_fill = np.where(np.isfinite(semitones), semitones, -np.inf)
    padded = np.concatenate([np.full(half, -np.inf), st_fill, np.full(half, -np.inf)])
    st_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).max(axis=1)
    with np.errstate(invalid="ignore"):
        f0_accent = (np.isfinite(semitones) & (semitones >= st_max) & (semitones - ref_st >= _ACCENT_F0_ST)
                     & (loud >= ref_loud - _ACCENT_F0_MAX_DROP_DB) & prosody.speech)

    candidates = np.flatnonzero(loud_accent | f0_accent)
    if candidates.size == 0:
        return np.zeros(0, dtype=np.int64)
    strength = _strengths(prosody, ref_loud, ref_st)
    # strongest first; a candidate survives when no stronger one in its phrase lies within the merge distance
    order = candidates[np.lexsort((candidates, -strength[candidates]))]
    merge = _ACCENT_MERGE_S * prosody.fps
    kept: list[int] = []
    for frame in order.tolist():
        if all(abs(frame - k) >= merge or phrase[k] != phrase[frame] for k in kept):
            kept.append(frame)
    return np.array(sorted(kept), dtype=np.int64)


def accent_strengths(prosody: Prosody, frames: np.ndarray) -> np.ndarray:
    """(len(frames),) float in [0, 1]: how far each frame rises above its phrase, the larger of its loudness
    over the phrase's typical peak (9 dB = 1) and its f0 over the phrase's median (6 semitones = 1)."""
    _check(prosody)
    frames = np.asarray(frames, dtype=np.int64)
    if frames.size and (frames.min() < 0 or frames.max() >= prosody.n_frames):
        raise ValueError(f"frames must lie in [0, {prosody.n_frames}), got {frames.min()}..{frames.max()}")
    if frames.size == 0:
        return np.zeros(0)
    _, ref_loud, ref_st, _ = _phrase_levels(prosody)
    return _strengths(prosody, ref_loud, ref_st)[frames]
