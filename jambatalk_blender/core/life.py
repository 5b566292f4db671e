"""The life layer: blinks, small eye movements and brow raises on ARKit channels, from prosody or from nothing.

Pure module (stdlib + numpy) so it runs inside Blender's bundled Python. The speech model drives the mouth;
this layer keeps the upper face alive. Everything is computed in seconds and sampled at frame ``k / fps``,
so prosody analysed at another frame rate (the model's 30 fps) can drive a 24 fps scene.

Each part draws from its own random stream, ``SeedSequence([seed, part])``, so switching one part off or
changing its strength never moves another's events, and the same inputs and seed give identical curves.

Blinks
  Rate: 26 blinks/min while talking, 17/min at rest (150 healthy adults: Bentivoglio et al. 1997, Mov. Disord.
  12:1028-1034). Speakers blink at the ends of phrases and in pauses (Nakano & Kitazawa 2010, Exp. Brain Res.
  205:577-581); listeners, too, blink more in a speaker's pauses (Holtze et al., Adv. Cogn. Psychol.).
  The rule: the first second of each pause (a silence of at least 0.25 s that follows speech) has 3x the blink
  intensity of speech, the shorter gaps count as speech, and the two are scaled together so the talking part
  of the take (speech + those pause onsets) averages 26/min. The rest of long silences, and silence before
  the first word, blink at the resting 17/min. Without prosody the whole take is talk: 26/min.
  Timing: a renewal process in the time warped by that intensity (expected blinks so far): the gaps are
  gamma distributed (shape 2: right-skewed, no tiny gaps; mean one expected blink) and never shorter than
  0.5 s between blink starts (a refractory gap longer than any blink). The first blink comes after a random
  fraction of a gap, so takes do not all start with the same pause.
  Shape: total durations log-normal, median 220 ms, clipped to 120-380 ms (spontaneous blinks last about
  100-400 ms; they are longer and more variable than reflex blinks, VanderWerf et al. 2003, J. Neurophysiol.
  89:2784). The lid closes 1.45x faster than it opens (closing is 40-47 % faster: Sforza et al. 2008,
  Ophthalmic Physiol. Opt. 28:345-353) with a closed hold of 10 % of the blink between: close 37 %, hold 10 %,
  open 53 %. The hold is centred on a frame so every blink reaches its full closure in the curve. 30 % of the
  blinks are partial (closing to 60-90 %; about half of spontaneous blinks are incomplete, Ousler et al. 2014,
  Clin. Ophthalmol. 8:869-874, a share toned down here), the rest close to 95-100 %. Both eyes blink together,
  each with its own amplitude (up to 3 % less) and onset within +-2 ms, and a touch of eyeSquint (0.1) as the
  lower lid rises.
Eyes
  Fixations and small saccades around the point the character looks at, conjugate (looking to the
  character's right is eyeLookOutRight + eyeLookInLeft). Fixation durations log-normal, median 350 ms,
  clipped to 0.15-2 s (the eyes move every 200-350 ms in scene viewing, fixations usually last 150-500 ms:
  Rayner & Castelhano 2007, Scholarpedia 2(10):3649; a face-to-face talker has one face to look at, hence the
  upper half and a long tail). Each target is drawn around the previous one pulled halfway to centre
  (sd 2 deg horizontally, 1.2 deg vertically, kept within +-6 / +-4 deg), so most saccades are 1-3 deg and
  the gaze never wanders off. A saccade's duration grows linearly with its amplitude (the "main sequence",
  Bahill, Clark & Stark 1975, Math. Biosci.): 21 ms + 2.2 ms/deg, the usual linear fit, at least 30 ms,
  on a smoothstep. Angles become weights at 1/30 per degree
  horizontally and 1/25 vertically (full eyeLook* ~ 30 / 25 deg): 3 deg ~ 0.1.
  During each blink the eyes dip 2 deg down and 1 deg nasally (both eyes in) and are back before the lids
  have fully reopened (Collewijn, van der Steen & Steinman 1985, J. Neurophysiol.; Riggs et al. 1987, Invest.
  Ophthalmol. Vis. Sci. 28:334-342). This part needs blinks on; it belongs to the eyes' strength.
Brows
  Raises (browInnerUp and browOuterUpLeft/Right) on accents from `prosody.accents`: brow raises cluster on
  pitch accents, begin before them and peak on them (Cave et al. 1996, ICSLP; Kim, Cvejic & Davis 2014,
  Speech Commun.; Gast 2023, Behav. Sci. 13:52); not every accent gets one (Cave et al. found 71 %
  of rapid raises with an F0 rise, not the converse). The rule: accents of strength >= 0.8 always raise,
  weaker ones with probability 0.5 x strength; raises are at least 1.5 s apart (stronger first). On read
  speech (Russian TTS units) this gives a raise every 2.5-4 s of speech: lively without looking surprised.
  Amplitude 0.2 + 0.4 x strength on browInnerUp, 0.7 of that on the outer brows (+-5 % L/R). Shape:
  smoothstep rise over 150 ms peaking on the accent, smoothstep decay over 400 ms; overlapping raises take
  the larger. Without prosody there are no accents and so no brow raises: ``LifeLayer.accents`` is empty
  and no brow channel is driven.

Strengths scale each part's curves; the summed curves are clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from . import prosody as prosody_mod
from .prosody import Prosody

# blinks
BLINKS_PER_MIN_TALKING = 26.0  # Bentivoglio et al. 1997, conversation
BLINKS_PER_MIN_REST = 17.0  # Bentivoglio et al. 1997, rest
PAUSE_BOOST = 3.0  # blink intensity in a phrase-boundary window relative to speech
BOUNDARY_WINDOW_S = 1.0  # how much of a pause's start counts as the phrase boundary
MIN_PAUSE_S = 0.25  # shorter silences are hesitations inside speech
_GAP_SHAPE = 2.0  # gamma shape of the inter-blink gaps (in expected blinks)
REFRACTORY_S = 0.5  # minimum time between blink starts
BLINK_MEDIAN_S = 0.22
_BLINK_SIGMA = 0.25
BLINK_MIN_S = 0.12
BLINK_MAX_S = 0.38
_CLOSE, _HOLD, _OPEN = 0.9 / 2.45, 0.1, 0.9 * 1.45 / 2.45  # close 1.45x faster than open; 10 % hold
_PARTIAL_SHARE = 0.3
_EYE_ASYM = 0.03
_EYE_LAG_S = 0.002
_SQUINT = 0.1
# eyes
FIXATION_MEDIAN_S = 0.35
_FIXATION_SIGMA = 0.5
FIXATION_MIN_S = 0.15
FIXATION_MAX_S = 2.0
_GAZE_SD_DEG = (2.0, 1.2)  # horizontal, vertical
_GAZE_LIMIT_DEG = (6.0, 4.0)
_GAZE_PULL = 0.5  # share of the way back to centre before each new target is drawn
_SACCADE_BASE_S = 0.021
_SACCADE_PER_DEG_S = 0.0022
SACCADE_MIN_S = 0.030
DEG_PER_WEIGHT = (30.0, 25.0)  # degrees of gaze for a full eyeLook* weight, horizontal / vertical
_BLINK_DIP_DEG = (1.0, 2.0)  # nasal, down
# brows
_BROW_SURE = 0.8
_BROW_CHANCE = 0.5  # weaker accents raise the brows with probability _BROW_CHANCE x strength
_BROW_SPACING_S = 1.5
_BROW_RISE_S = 0.15
_BROW_DECAY_S = 0.40
_BROW_BASE, _BROW_GAIN = 0.2, 0.4
_BROW_OUTER = 0.7
_BROW_ASYM = 0.05

BLINK_CHANNELS = ("eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft", "eyeSquintRight")
EYE_CHANNELS = ("eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeLookDownLeft",
                "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight", "eyeLookDownRight")
BROW_CHANNELS = ("browInnerUp", "browOuterUpLeft", "browOuterUpRight")
_STREAMS = {"blinks": 1, "eyes": 2, "brows": 3}


@dataclass(frozen=True)
class LifeSettings:
    """What the life layer adds and how strongly; ``seed`` picks one of its many equally plausible takes."""

    seed: int = 0
    blinks: bool = True
    blink_strength: float = 1.0
    eyes: bool = True
    eye_strength: float = 1.0
    brows: bool = True
    brow_strength: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a whole number >= 0, got {self.seed!r}")
        for name in ("blink_strength", "eye_strength", "brow_strength"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value)
                                                                                      and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, eq=False)
class LifeLayer:
    """The layer's curves: ``channels`` maps ARKit names to (T,) float32 weights in [0, 1]; ``blinks`` lists
    ``(start_s, duration_s)`` of each blink and ``accents`` the time (s) of each brow raise's peak."""

    fps: float
    channels: dict[str, np.ndarray] = field(default_factory=dict)
    blinks: list[tuple[float, float]] = field(default_factory=list)
    accents: list[float] = field(default_factory=list)

    def driven(self) -> tuple[str, ...]:
        """The channels this layer writes (the parts switched on, limited to the character's channels)."""
        return tuple(self.channels)


def _rng(seed: int, part: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAMS[part]]))


def _smoothstep(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.0, 1.0)
    return p * p * (3.0 - 2.0 * p)


# ---------------------------------------------------------------- prosody in seconds


def _talk_weights(times: np.ndarray, prosody: Prosody | None) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: blink weight (1 speech, PAUSE_BOOST phrase boundary) and whether the frame is talk."""
    if prosody is None:
        return np.ones_like(times), np.ones(times.shape, bool)
    pf = prosody.fps
    idx = np.round(times * pf).astype(np.int64)
    inside = idx < prosody.n_frames
    speech = np.zeros(times.shape, bool)
    speech[inside] = prosody.speech[idx[inside]]
    weight = np.ones_like(times)
    talk = speech.copy()
    if prosody.speech.any():
        for start, end in prosody_mod._runs(~prosody.speech):
            # a silence reaching the prosody's end goes on past it
            s, e = start / pf, (end / pf if end < prosody.n_frames else math.inf)
            silence = (times >= s) & (times < e)
            if (end - start) / pf < MIN_PAUSE_S - 1e-9:
                talk |= silence  # a hesitation: part of the phrase
            elif start > 0:
                boundary = silence & (times < s + BOUNDARY_WINDOW_S)
                weight[boundary] = PAUSE_BOOST
                talk |= boundary
        # past the prosody's end: silence; the first BOUNDARY_WINDOW_S after speech ending there is a boundary
        last_end = prosody.n_frames / pf
        if prosody.n_frames and prosody.speech[-1]:
            tail = (times >= last_end) & (times < last_end + BOUNDARY_WINDOW_S)
            weight[tail] = PAUSE_BOOST
            talk |= tail
    return weight, talk


def _prosody_accents(prosody: Prosody) -> tuple[np.ndarray, np.ndarray]:
    frames = prosody_mod.accents(prosody)
    return frames / prosody.fps, prosody_mod.accent_strengths(prosody, frames)


# ---------------------------------------------------------------- blinks


def blink_intensity(n_frames: int, fps: float, prosody: Prosody | None = None) -> np.ndarray:
    """(n_frames,) expected blinks per second at each frame (module note): the target the blinks follow."""
    times = np.arange(n_frames, dtype=np.float64) / fps
    weight, talk = _talk_weights(times, prosody)
    rate = np.full(n_frames, BLINKS_PER_MIN_REST / 60.0)
    if talk.any():
        rate[talk] = BLINKS_PER_MIN_TALKING / 60.0 * weight[talk] / weight[talk].mean()
    return rate


def _blink_events(n_frames: int, fps: float, prosody: Prosody | None, rng: np.random.Generator) -> list[dict]:
    duration_s = n_frames / fps
    rate = blink_intensity(n_frames, fps, prosody)
    # expected blinks up to the start of each frame (and the end of the take): piecewise linear in time
    grid = np.arange(n_frames + 1, dtype=np.float64) / fps
    expected = np.concatenate([[0.0], np.cumsum(rate / fps)])
    events: list[dict] = []
    t = 0.0
    level = rng.uniform() * rng.gamma(_GAP_SHAPE, 1.0 / _GAP_SHAPE)
    first = True
    while True:
        if not first:
            level = float(np.interp(t, grid, expected)) + rng.gamma(_GAP_SHAPE, 1.0 / _GAP_SHAPE)
        if level >= expected[-1]:
            break
        t_next = float(np.interp(level, expected, grid))
        if not first:
            t_next = max(t_next, t + REFRACTORY_S)
        first = False
        duration = float(np.clip(BLINK_MEDIAN_S * math.exp(_BLINK_SIGMA * rng.standard_normal()),
                                 BLINK_MIN_S, BLINK_MAX_S))
        partial = rng.uniform() < _PARTIAL_SHARE
        amplitude = rng.uniform(0.6, 0.9) if partial else rng.uniform(0.95, 1.0)
        asym = -rng.uniform(0.0, _EYE_ASYM, size=2)  # each eye up to 3 % short of the blink's amplitude
        lag = rng.uniform(-_EYE_LAG_S, _EYE_LAG_S)
        # put the middle of the closed hold on a frame so the curve reaches full closure
        closed_mid = t_next + duration * (_CLOSE + _HOLD / 2.0)
        start = t_next + round(closed_mid * fps) / fps - closed_mid
        if events and start < events[-1]["start"] + REFRACTORY_S - 1e-9:
            start += 1.0 / fps  # snapping must not break the refractory gap
        t = t_next
        if start < 0 or start + duration > duration_s:
            continue  # a blink cut by the take's edge would read as a twitch
        events.append({"start": start, "duration": duration, "amplitude": amplitude,
                       "eyes": (amplitude * (1 + asym[0]), amplitude * (1 + asym[1])), "lag": lag})
    return events


def _blink_shape(times: np.ndarray, start: float, duration: float) -> np.ndarray:
    """Lid closure 0..1: smoothstep close, hold, slower smoothstep open."""
    close, hold = duration * _CLOSE, duration * _HOLD
    opening = duration * _OPEN
    rel = times - start
    up = _smoothstep(rel / close)
    down = 1.0 - _smoothstep((rel - close - hold) / opening)
    return np.where(rel < close + hold, up, down) * ((rel >= 0) & (rel <= duration))


def _blink_curves(times: np.ndarray, fps: float, events: list[dict]) -> dict[str, np.ndarray]:
    left = np.zeros_like(times)
    right = np.zeros_like(times)
    for ev in events:
        lo = max(int((ev["start"] - 0.01) * fps), 0)
        hi = min(int((ev["start"] + ev["duration"] + 0.01) * fps) + 2, times.size)
        window = times[lo:hi]
        a_left, a_right = ev["eyes"]
        left[lo:hi] = np.maximum(left[lo:hi], a_left * _blink_shape(window, ev["start"] - ev["lag"] / 2,
                                                                     ev["duration"]))
        right[lo:hi] = np.maximum(right[lo:hi], a_right * _blink_shape(window, ev["start"] + ev["lag"] / 2,
                                                                       ev["duration"]))
    return {"eyeBlinkLeft": left, "eyeBlinkRight": right,
            "eyeSquintLeft": _SQUINT * left, "eyeSquintRight": _SQUINT * right}


# ---------------------------------------------------------------- eyes


def _gaze(times: np.ndarray, fps: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Gaze angles (deg; +h = character's right, +v = up) per frame, and the fixation durations."""
    end = times[-1] if times.size else 0.0
    h = np.zeros_like(times)
    v = np.zeros_like(times)
    # each saccade: a smoothstep over the frames it spans, then a step (added through a difference array,
    # so a long take costs per saccade, not per saccade x frame)
    steps = np.zeros((2, times.size + 1))
    pos = np.zeros(2)
    t = 0.0
    fixations: list[float] = []
    sd = np.array(_GAZE_SD_DEG)
    limit = np.array(_GAZE_LIMIT_DEG)
    while t <= end:
        fixation = float(np.clip(FIXATION_MEDIAN_S * math.exp(_FIXATION_SIGMA * rng.standard_normal()),
                                 FIXATION_MIN_S, FIXATION_MAX_S))
        target = np.clip(pos * (1.0 - _GAZE_PULL) + sd * rng.standard_normal(2), -limit, limit)
        fixations.append(fixation)
        t += fixation
        if t > end:
            break
        amplitude = float(np.hypot(*(target - pos)))
        saccade = max(SACCADE_MIN_S, _SACCADE_BASE_S + _SACCADE_PER_DEG_S * amplitude)
        i0, i1 = math.ceil(t * fps - 1e-9), min(math.ceil((t + saccade) * fps - 1e-9), times.size)
        ramp = _smoothstep((times[i0:i1] - t) / saccade)
        h[i0:i1] += (target[0] - pos[0]) * ramp
        v[i0:i1] += (target[1] - pos[1]) * ramp
        steps[:, i1] += target - pos
        pos = target
        t += saccade
    totals = np.cumsum(steps[:, : times.size], axis=1)
    return h + totals[0], v + totals[1], fixations


def _eye_curves(h: np.ndarray, v: np.ndarray, nasal: np.ndarray) -> dict[str, np.ndarray]:
    right, up = np.maximum(h, 0.0) / DEG_PER_WEIGHT[0], np.maximum(v, 0.0) / DEG_PER_WEIGHT[1]
    left, down = np.maximum(-h, 0.0) / DEG_PER_WEIGHT[0], np.maximum(-v, 0.0) / DEG_PER_WEIGHT[1]
    inward = nasal / DEG_PER_WEIGHT[0]
    # looking to the character's right: the right eye turns out, the left eye in (and vice versa)
    return {"eyeLookInLeft": right + inward, "eyeLookOutLeft": left, "eyeLookUpLeft": up, "eyeLookDownLeft": down,
            "eyeLookInRight": left + inward, "eyeLookOutRight": right, "eyeLookUpRight": up,
            "eyeLookDownRight": down}


def _blink_dip(times: np.ndarray, fps: float, events: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(nasal deg, down deg) of the eyes' dip during blinks: peaks at closure, back by mid-opening."""
    dip = np.zeros_like(times)
    for ev in events:
        close = ev["duration"] * _CLOSE
        back = ev["duration"] * (_CLOSE + _HOLD + _OPEN / 2.0)
        lo, hi = max(int(ev["start"] * fps), 0), min(int((ev["start"] + back) * fps) + 2, times.size)
        rel = times[lo:hi] - ev["start"]
        shape = np.where(rel < close, _smoothstep(rel / close), 1.0 - _smoothstep((rel - close) / (back - close)))
        dip[lo:hi] = np.maximum(dip[lo:hi], ev["amplitude"] * shape * ((rel >= 0) & (rel <= back)))
    return _BLINK_DIP_DEG[0] * dip, _BLINK_DIP_DEG[1] * dip


# ---------------------------------------------------------------- brows


def _brow_raises(accent_times: np.ndarray, strengths: np.ndarray, rng: np.random.Generator,
                 duration_s: float) -> list[tuple[float, float]]:
    """(peak time s, strength) of each brow raise (module note)."""
    draws = rng.uniform(size=accent_times.shape[0])  # one draw per accent, so the choice is stable
    chosen = (strengths >= _BROW_SURE) | (draws < _BROW_CHANCE * strengths)
    candidates = [(float(t), float(s)) for t, s, c in zip(accent_times, strengths, chosen, strict=True) if c]
    candidates.sort(key=lambda ts: (-ts[1], ts[0]))
    kept: list[tuple[float, float]] = []
    for t, s in candidates:
        if t - _BROW_RISE_S < 0 or t > duration_s:
            continue
        if all(abs(t - k) >= _BROW_SPACING_S for k, _ in kept):
            kept.append((t, s))
    return sorted(kept)


def _brow_curves(times: np.ndarray, fps: float, raises: list[tuple[float, float]], rng: np.random.Generator
                 ) -> dict[str, np.ndarray]:
    inner = np.zeros_like(times)
    outer_l = np.zeros_like(times)
    outer_r = np.zeros_like(times)
    for t, s in raises:
        amplitude = _BROW_BASE + _BROW_GAIN * s
        asym = rng.uniform(-_BROW_ASYM, _BROW_ASYM, size=2)
        lo = max(int((t - _BROW_RISE_S) * fps), 0)
        hi = min(int((t + _BROW_DECAY_S) * fps) + 2, times.size)
        rel = times[lo:hi] - t
        shape = np.where(rel < 0, _smoothstep(1.0 + rel / _BROW_RISE_S), 1.0 - _smoothstep(rel / _BROW_DECAY_S))
        curve = amplitude * shape
        inner[lo:hi] = np.maximum(inner[lo:hi], curve)
        outer_l[lo:hi] = np.maximum(outer_l[lo:hi], _BROW_OUTER * (1 + asym[0]) * curve)
        outer_r[lo:hi] = np.maximum(outer_r[lo:hi], _BROW_OUTER * (1 + asym[1]) * curve)
    return {"browInnerUp": inner, "browOuterUpLeft": outer_l, "browOuterUpRight": outer_r}


# ---------------------------------------------------------------- the layer


def life_layer(
    n_frames: int,
    fps: float,
    settings: LifeSettings,
    prosody: Prosody | None = None,
    available: Collection[str] | None = None,
) -> LifeLayer:
    """Blink, eye and brow curves for frames ``k / fps``, k < n_frames (module note).

    ``prosody`` (any frame rate) places extra blinks at phrase boundaries and brow raises on accents; without
    it the blinks follow the talking rate alone and the brows stay still. ``available`` is the character's
    channels: only those are produced (``None``: all of the layer's channels), and a part none of whose
    channels the character has is skipped (its ``blinks`` or ``accents`` list is then empty too).
    """
    n_frames = prosody_mod._whole(n_frames, "n_frames", 0)
    fps = prosody_mod._positive(fps, "fps")
    if not isinstance(settings, LifeSettings):
        raise ValueError(f"settings must be a LifeSettings, got {type(settings).__name__}")
    if prosody is not None and not isinstance(prosody, Prosody):
        raise ValueError(f"prosody must be a Prosody from prosody_track or None, got {type(prosody).__name__}")
    if isinstance(available, str):
        raise ValueError("available must be a collection of channel names, not one string")
    wanted = None if available is None else set(available)

    def shown(part: tuple[str, ...]) -> bool:
        return wanted is None or bool(wanted.intersection(part))

    times = np.arange(n_frames, dtype=np.float64) / fps
    curves: dict[str, np.ndarray] = {}
    blink_events: list[dict] = []
    if settings.blinks and settings.blink_strength > 0 and shown(BLINK_CHANNELS):
        blink_events = _blink_events(n_frames, fps, prosody, _rng(settings.seed, "blinks"))
        for name, curve in _blink_curves(times, fps, blink_events).items():
            curves[name] = settings.blink_strength * curve
    if settings.eyes and settings.eye_strength > 0 and shown(EYE_CHANNELS):
        h, v, _ = _gaze(times, fps, _rng(settings.seed, "eyes"))
        nasal, down = _blink_dip(times, fps, blink_events)
        for name, curve in _eye_curves(h, v - down, nasal).items():
            curves[name] = settings.eye_strength * curve
    raises: list[tuple[float, float]] = []
    if settings.brows and settings.brow_strength > 0 and prosody is not None and shown(BROW_CHANNELS):
        brow_rng = _rng(settings.seed, "brows")
        accent_times, strengths = _prosody_accents(prosody)
        raises = _brow_raises(accent_times, strengths, brow_rng, n_frames / fps)
        for name, curve in _brow_curves(times, fps, raises, brow_rng).items():
            curves[name] = settings.brow_strength * curve

    channels = {name: np.clip(curve, 0.0, 1.0).astype(np.float32) for name, curve in curves.items()
                if wanted is None or name in wanted}
    blinks = [(round(ev["start"], 6), round(ev["duration"], 6)) for ev in blink_events]
    return LifeLayer(fps=fps, channels=channels, blinks=blinks, accents=[round(t, 6) for t, _ in raises])
