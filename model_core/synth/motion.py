"""Face motion from a phoneme timeline: coarticulated mouth visemes plus independent blinks and brows.

Mouth: per-phone viseme targets blended by dominance functions (anticipation of ~70 ms, carry-over of
~50 ms), jaw opening from vowel height, rounding from rounding. Bilabials (p, b, m) then get a lip press
solved so the centre lip gap is exactly zero for their whole acoustic closure, whatever the jaw does.
Upper face: blinks at random times and brow raises on pitch-accented syllables, never on phoneme identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model_core.synth.blendshapes import MOUTH_SHAPES, SHAPE_NAMES, UPPER_FACE_SHAPES, Head
from model_core.synth.coarticulation import blink_curve, bump_curve, closure_curve, dominance_blend
from model_core.synth.phonemes import ARTICULATION, Sentence

_CLOSE_RAMP = 0.06  # s: the lips start closing this long before a bilabial's acoustic closure
_OPEN_RAMP = 0.05  # s: and are open again this long after its release
_LIP_SHAPES = ("lip_round", "lip_spread", "lower_lip_tuck", "upper_lip_raise")


@dataclass(frozen=True)
class Articulation:
    """A subject's speaking style: amplitudes, coarticulation timing, blink rate, brow expressiveness."""

    jaw_amp: float = 1.0
    lip_amp: float = 1.0
    anticipation: float = 0.07
    carryover: float = 0.05
    blink_rate: float = 0.25  # blinks per second
    brow_expressiveness: float = 0.6  # chance an accented syllable raises the brows


def random_articulation(rng: np.random.Generator) -> Articulation:
    return Articulation(jaw_amp=float(rng.uniform(0.8, 1.2)), lip_amp=float(rng.uniform(0.8, 1.2)),
                        anticipation=float(rng.uniform(0.06, 0.085)), carryover=float(rng.uniform(0.04, 0.06)),
                        blink_rate=float(rng.uniform(0.15, 0.35)), brow_expressiveness=float(rng.uniform(0.4, 0.8)))


def frame_times(duration_ms: int, fps: float) -> np.ndarray:
    """Frame k shows time k / fps; a sentence of d seconds has round(d * fps) frames."""
    return np.arange(int(round(duration_ms * fps / 1000.0))) / fps


def bilabial_closures(sentence: Sentence) -> list[tuple[float, float]]:
    """(start, release) seconds of every bilabial's lip closure."""
    out = []
    for ph in sentence.phones:
        if ph.phoneme.is_bilabial:
            out.append((ph.start, ph.start + ph.phoneme.release_offset(ph.duration)))
    return out


def mouth_weights(sentence: Sentence, times: np.ndarray, style: Articulation,
                  gap_coefficients: np.ndarray) -> np.ndarray:
    """(T, len(MOUTH_SHAPES)) weights. gap_coefficients: the head's centre lip gap per unit of each shape."""
    phones = sentence.phones
    targets = np.array([[ph.phoneme.targets[n] for n in ARTICULATION] for ph in phones])
    dominance = np.array([[ph.phoneme.dominance[n] for n in ARTICULATION] for ph in phones])
    targets[:, ARTICULATION.index("jaw_open")] = [ph.jaw_target for ph in phones]  # stress-dependent
    blended = dominance_blend(phones, times, targets, dominance, style.anticipation, style.carryover)
    w = np.zeros((len(times), len(MOUTH_SHAPES)))
    for j, name in enumerate(ARTICULATION):
        amp = style.jaw_amp if name == "jaw_open" else style.lip_amp
        w[:, MOUTH_SHAPES.index(name)] = amp * blended[:, j]
    press = MOUTH_SHAPES.index("lip_press")
    gap = np.asarray(gap_coefficients, dtype=float)[: len(MOUTH_SHAPES)]
    others = w @ np.where(np.arange(len(MOUTH_SHAPES)) == press, 0.0, gap)
    closure = closure_curve(bilabial_closures(sentence), times, _CLOSE_RAMP, _OPEN_RAMP)
    # Press just enough to cancel the gap the other shapes open: gap = others * (1 - closure), exactly 0 when shut.
    w[:, press] = closure * np.maximum(others, 0.0) / -gap[press]
    return w


def blink_times(duration: float, rate: float, rng: np.random.Generator) -> list[float]:
    """A Poisson process with a 0.6 s refractory gap, drawn from its own stream (no phoneme input at all)."""
    out, t = [], float(rng.uniform(-1.0, 0.0)) / rate
    while True:
        t += 0.6 + float(rng.exponential(max(1.0 / rate - 0.6, 0.1)))
        if t >= duration:
            return out
        out.append(t)


def upper_face_weights(sentence: Sentence, times: np.ndarray, style: Articulation,
                       rng: np.random.Generator) -> np.ndarray:
    """(T, len(UPPER_FACE_SHAPES)): blinks, brow raises on accents, occasional slow frowns."""
    w = np.zeros((len(times), len(UPPER_FACE_SHAPES)))
    for at in blink_times(sentence.duration, style.blink_rate, rng):
        amplitude = 1.0 if rng.random() > 0.1 else float(rng.uniform(0.5, 0.8))  # some half blinks
        left = blink_curve(times, at, amplitude)
        w[:, 0] = np.maximum(w[:, 0], left)
        w[:, 1] = np.maximum(w[:, 1], left * float(rng.uniform(0.9, 1.0)))
    for ph in sentence.phones:
        if ph.accent > 0 and rng.random() < style.brow_expressiveness:
            centre = 0.5 * (ph.start + ph.end)
            lift = ph.accent * float(rng.uniform(0.5, 1.0))
            w[:, 2] = np.maximum(w[:, 2], lift * bump_curve(times, centre - 0.15, centre + 0.05, centre + 0.4))
    if rng.random() < 0.3:
        start = float(rng.uniform(0.0, max(sentence.duration - 0.8, 0.1)))
        length = float(rng.uniform(0.6, 1.2))
        w[:, 3] = float(rng.uniform(0.2, 0.5)) * bump_curve(times, start, start + 0.3 * length, start + length)
    return w


@dataclass(frozen=True)
class Motion:
    times: np.ndarray  # (T,) seconds
    weights: np.ndarray  # (T, len(SHAPE_NAMES))

    def vertices(self, head: Head) -> np.ndarray:
        return head.pose(self.weights)

    def weight(self, name: str) -> np.ndarray:
        return self.weights[:, SHAPE_NAMES.index(name)]


def animate(sentence: Sentence, head: Head, style: Articulation, fps: float, rng: np.random.Generator) -> Motion:
    """All shape weights of one sentence at `fps` frames per second."""
    times = frame_times(sentence.duration_ms, fps)
    mouth = mouth_weights(sentence, times, style, head.lip_gap_coefficients)
    upper = upper_face_weights(sentence, times, style, rng)
    return Motion(times, np.concatenate([mouth, upper], axis=1))
