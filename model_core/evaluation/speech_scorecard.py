"""What a mouth does against the phones of real speech: pure measures on arrays (no I/O, no model).

Everything is measured on the output mesh (template + offsets) at a few landmark vertices, in millimetres:

- lip gap: the vertical distance upper-lip centre minus lower-lip centre, minus the neutral's (0: as at rest,
  which is closed on our heads; negative: pressed or tucked);
- jaw opening: how far the chin moved down from the neutral (y is up).

Frame k of a track shows time k / fps. Phones are `TimedPhone`s of the unified inventory (ARPAbet + sil).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from model_core.corpus.phones import BILABIALS, SILENCE, VOWELS, TimedPhone, merge_silences
from model_core.synth.scoring import pearson

OPEN_VOWELS = ("aa", "ae", "ah", "ao", "aw", "ay")
CLOSED_MM = 1.0
NEAR_MM = 2.0
LONG_PAUSE_S = 0.15
MAX_LAG_S = 0.2
TARGET_SMOOTH_S = 0.04  # the jaw is a heavy articulator: the target is a blurred phone staircase
REQUIRED_LANDMARKS = ("lip_upper", "lip_lower", "chin")


@dataclass(frozen=True)
class MouthTracks:
    """Per-frame lip gap and jaw opening in mm of one take at `fps`."""

    lip_gap_mm: np.ndarray
    jaw_mm: np.ndarray
    fps: float

    @property
    def frames(self) -> int:
        return int(self.lip_gap_mm.shape[0])


def mouth_tracks(vertices: np.ndarray, template: np.ndarray, landmarks: dict[str, int], fps: float) -> MouthTracks:
    """vertices (T, V, 3) or (T, V*3) absolute positions in metres, template (V, 3) the neutral."""
    missing = [name for name in REQUIRED_LANDMARKS if name not in landmarks]
    if missing:
        raise ValueError(f"The landmarks lack {', '.join(missing)}; "
                         f"the scorecard needs {', '.join(REQUIRED_LANDMARKS)}.")
    t = np.asarray(template, dtype=np.float64).reshape(-1, 3)
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, t.shape[0], 3)
    up, lo, chin = landmarks["lip_upper"], landmarks["lip_lower"], landmarks["chin"]
    gap = (v[:, up, 1] - v[:, lo, 1]) - (t[up, 1] - t[lo, 1])
    jaw = t[chin, 1] - v[:, chin, 1]
    return MouthTracks(gap * 1000.0, jaw * 1000.0, float(fps))


def frames_within(start: float, end: float, fps: float, frames: int) -> np.ndarray:
    """Indices of the frames whose time lies in [start, end)."""
    first = max(0, math.ceil(start * fps - 1e-6))
    last = min(frames, math.ceil(end * fps - 1e-6))
    return np.arange(first, last)


def class_mask(phones: list[TimedPhone], symbols: tuple[str, ...], fps: float, frames: int) -> np.ndarray:
    """(frames,) True where the frame's time lies inside a phone of `symbols`."""
    mask = np.zeros(frames, dtype=bool)
    for p in phones:
        if p.symbol in symbols:
            mask[frames_within(p.start, p.end, fps, frames)] = True
    return mask


def phone_window(start: float, end: float, fps: float, frames: int, slack: int = 1) -> np.ndarray:
    """The frames showing [start, end] (from the last frame at or before the start to the first at or after the
    end), widened by `slack` frames each side: the synthetic scorecard's closure window, made safe against
    rounding (aligners give times on a 10 ms grid that often falls exactly on a frame)."""
    first = max(0, math.floor(start * fps + 1e-6) - slack)
    last = min(frames - 1, math.ceil(end * fps - 1e-6) + slack)
    return np.arange(first, last + 1)


def bilabial_minima(lip_gap_mm: np.ndarray, phones: list[TimedPhone], fps: float) -> list[float]:
    """The smallest lip gap (mm) near each p/b/m, within one frame of its span (see `phone_window`)."""
    out = []
    for p in phones:
        if p.symbol in BILABIALS:
            window = phone_window(p.start, p.end, fps, len(lip_gap_mm))
            if window.size:
                out.append(float(lip_gap_mm[window].min()))
    return out


def long_pauses(phones: list[TimedPhone], min_seconds: float = LONG_PAUSE_S) -> list[TimedPhone]:
    """Pauses (neighbouring silences joined) longer than `min_seconds`, the take's lead-in and tail included."""
    return [p for p in merge_silences(phones) if p.symbol == SILENCE and p.duration > min_seconds]


def target_weight(symbol: str) -> float:
    """How open the jaw should be on a phone, roughly: open vowels 1, other vowels 0.5, bilabials and pauses 0,
    other consonants 0.2 (most hold the jaw nearly shut)."""
    if symbol in OPEN_VOWELS:
        return 1.0
    if symbol in VOWELS:
        return 0.5
    if symbol in BILABIALS or symbol == SILENCE:
        return 0.0
    return 0.2


def jaw_target(phones: list[TimedPhone], fps: float, frames: int, smooth_s: float = TARGET_SMOOTH_S) -> np.ndarray:
    """(frames,) phone-based jaw target, drawn on a 1 ms grid, blurred, then sampled at the frame times (so a
    phone shorter than a frame still counts)."""
    rate = 1000.0
    n = int(math.ceil(frames / fps * rate)) + 2
    grid = np.zeros(n)
    for p in phones:
        a, b = max(0, round(p.start * rate)), min(n, round(p.end * rate))
        grid[a:b] = target_weight(p.symbol)
    if smooth_s > 0:
        grid = gaussian_filter1d(grid, smooth_s * rate, mode="nearest")
    return grid[np.minimum(n - 1, np.round(np.arange(frames) / fps * rate).astype(int))]


def lag_curve(predicted: np.ndarray, target: np.ndarray, max_shift: int) -> np.ndarray:
    """Correlation of predicted[k + s] with target[k] for s = -max_shift..max_shift (NaN where undefined).

    A peak at s > 0 means the prediction comes s frames after the target: the model is late.
    """
    p, t = np.asarray(predicted, dtype=np.float64), np.asarray(target, dtype=np.float64)
    n = min(len(p), len(t))
    out = np.full(2 * max_shift + 1, np.nan)
    for i, s in enumerate(range(-max_shift, max_shift + 1)):
        a, b = (p[s:n], t[: n - s]) if s >= 0 else (p[: n + s], t[-s:n])
        if len(a) >= 3:
            out[i] = pearson(a, b)
    return out


def best_lag_ms(curve: np.ndarray, fps: float) -> tuple[float, float]:
    """(lag in ms, peak correlation) of a `lag_curve`; the peak is refined between frames by a parabola."""
    if not np.isfinite(curve).any():
        return float("nan"), float("nan")
    max_shift = (len(curve) - 1) // 2
    i = int(np.nanargmax(curve))
    offset = 0.0
    if 0 < i < len(curve) - 1 and np.isfinite(curve[i - 1]) and np.isfinite(curve[i + 1]):
        left, mid, right = curve[i - 1], curve[i], curve[i + 1]
        bend = left - 2 * mid + right
        if bend < 0:
            offset = float(np.clip(0.5 * (left - right) / bend, -0.5, 0.5))
    return (i - max_shift + offset) * 1000.0 / fps, float(curve[i])


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


@dataclass
class TakeMeasures:
    """Everything the scorecard keeps of one take."""

    name: str
    source: str
    seconds: float
    frames: int
    bilabial_min_mm: list[float]
    jaw_mm: dict[str, float]  # mean jaw opening on open vowels, bilabials, pauses (NaN where none)
    jaw_frames: dict[str, int]  # how many frames each mean is over
    lip_mm: dict[str, float]  # mean lip gap on the same frames: a mouth that shuts p, b, m must still open on vowels
    pause_lip_gap_mm: list[float]  # mean lip gap in each pause longer than LONG_PAUSE_S
    pause_jaw_mm: list[float]
    lag_ms: float
    lag_corr: float
    lag_curve: list[float] = field(repr=False)  # for pooling over takes

    def as_dict(self) -> dict[str, Any]:
        return {"take": self.name, "source": self.source, "seconds": round(self.seconds, 3), "frames": self.frames,
                "bilabial_min_mm": [round(v, 3) for v in self.bilabial_min_mm],
                "jaw_mm": {k: _round(v) for k, v in self.jaw_mm.items()}, "jaw_frames": self.jaw_frames,
                "lip_mm": {k: _round(v) for k, v in self.lip_mm.items()},
                "pause_lip_gap_mm": [round(v, 3) for v in self.pause_lip_gap_mm],
                "pause_jaw_mm": [round(v, 3) for v in self.pause_jaw_mm],
                "lag_ms": _round(self.lag_ms, 1), "lag_corr": _round(self.lag_corr)}


JAW_CLASSES = {"open_vowels": OPEN_VOWELS, "bilabials": BILABIALS, "pauses": (SILENCE,)}


def measure_take(name: str, source: str, tracks: MouthTracks, phones: list[TimedPhone],
                 max_lag_s: float = MAX_LAG_S) -> TakeMeasures:
    """All per-take measures of one take's mouth tracks against its phones."""
    fps, frames = tracks.fps, tracks.frames
    jaw_mm, jaw_frames, lip_mm = {}, {}, {}
    for label, symbols in JAW_CLASSES.items():
        mask = class_mask(phones, symbols, fps, frames)
        jaw_mm[label], jaw_frames[label] = _mean(tracks.jaw_mm[mask]), int(mask.sum())
        lip_mm[label] = _mean(tracks.lip_gap_mm[mask])
    pause_gap, pause_jaw = [], []
    for p in long_pauses(phones):
        inside = frames_within(p.start, p.end, fps, frames)
        if inside.size:
            pause_gap.append(_mean(tracks.lip_gap_mm[inside]))
            pause_jaw.append(_mean(tracks.jaw_mm[inside]))
    curve = lag_curve(tracks.jaw_mm, jaw_target(phones, fps, frames), int(round(max_lag_s * fps)))
    lag, corr = best_lag_ms(curve, fps)
    return TakeMeasures(name, source, frames / fps, frames, bilabial_minima(tracks.lip_gap_mm, phones, fps),
                        jaw_mm, jaw_frames, lip_mm, pause_gap, pause_jaw, lag, corr, [float(c) for c in curve])


def rest_mouth(tracks: MouthTracks) -> dict[str, float]:
    """How much the mouth moves on input that is not speech (noise, silence): it should stay at rest."""
    return {"jaw_mm_mean": _round(_mean(tracks.jaw_mm)), "jaw_mm_max": _round(float(np.max(tracks.jaw_mm))),
            "lip_gap_mm_mean": _round(_mean(tracks.lip_gap_mm)),
            "lip_gap_mm_max": _round(float(np.max(tracks.lip_gap_mm)))}


def summarise(takes: list[TakeMeasures], fps: float) -> dict[str, Any]:
    """Pooled measures over takes: closures and pauses one by one, jaw means weighted by frames, the lag from
    the frame-weighted mean correlation curve (one peak for the whole set, steadier than a median of takes)."""
    closures = np.array([v for t in takes for v in t.bilabial_min_mm])
    pause_gap = np.array([v for t in takes for v in t.pause_lip_gap_mm])
    pause_jaw = np.array([v for t in takes for v in t.pause_jaw_mm])
    jaw, lips = {}, {}
    for label in JAW_CLASSES:
        counts = np.array([t.jaw_frames[label] for t in takes], dtype=np.float64)
        for pooled, of_take in ((jaw, lambda t: t.jaw_mm), (lips, lambda t: t.lip_mm)):
            means = np.array([of_take(t)[label] if t.jaw_frames[label] else 0.0 for t in takes])
            pooled[label] = _round(float(means @ counts / counts.sum())) if counts.sum() else float("nan")
    lag, corr = float("nan"), float("nan")
    curves = [(np.array(t.lag_curve), t.frames) for t in takes if np.isfinite(t.lag_curve).any()]
    if curves:
        stack = np.stack([c for c, _ in curves])
        weights = np.array([w for _, w in curves], dtype=np.float64)[:, None] * np.isfinite(stack)
        with np.errstate(invalid="ignore"):
            pooled = np.nansum(np.nan_to_num(stack) * weights, axis=0) / weights.sum(axis=0)
        lag, corr = best_lag_ms(pooled, fps)
    take_lags = np.array([t.lag_ms for t in takes if math.isfinite(t.lag_ms)])
    return {
        "takes": len(takes),
        "seconds": round(float(sum(t.seconds for t in takes)), 2),
        "bilabials": int(closures.size),
        "bilabial_within_1mm": _share(closures <= CLOSED_MM),
        "bilabial_within_2mm": _share(closures <= NEAR_MM),
        "bilabial_min_gap_median_mm": _round(float(np.median(closures))) if closures.size else float("nan"),
        "jaw_open_vowels_mm": jaw["open_vowels"],
        "jaw_bilabials_mm": jaw["bilabials"],
        "jaw_pauses_mm": jaw["pauses"],
        "lips_open_vowels_mm": lips["open_vowels"],
        "long_pauses": int(pause_gap.size),
        "pause_lip_gap_mm": _round(_mean(pause_gap)),
        "pause_jaw_mm": _round(_mean(pause_jaw)),
        "lag_ms": _round(lag, 1),
        "lag_corr": _round(corr),
        "lag_ms_median_of_takes": _round(float(np.median(take_lags)), 1) if take_lags.size else float("nan"),
    }


def _share(flags: np.ndarray) -> float:
    return _round(float(np.mean(flags))) if flags.size else float("nan")


def _round(value: float, digits: int = 3) -> float:
    return round(value, digits) if math.isfinite(value) else float("nan")
