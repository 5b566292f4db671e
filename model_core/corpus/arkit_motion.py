"""Timed phones -> ARKit-52 weights per frame: the truth every corpus take is animated with.

Mouth: each phone of the unified inventory has targets on the speech-relevant ARKit channels (jaw, close,
press, funnel, pucker, roll, upper-up, lower-down, stretch, a little smile, tongue) and a dominance per
channel; the targets are blended by the dominance functions of `model_core.synth.coarticulation` (Cohen &
Massaro), with a speaker's anticipation and carry-over. Diphthongs glide between two targets. Bilabials then
get `mouthClose` solved so the head's centre lip gap is exactly zero over the acoustic closure, whatever the
jaw and the other shapes do (ARKit's own convention: mouthClose cancels jawOpen's lip parting).
Pauses relax to a resting mouth with the lips together.

Upper face: blinks (a Poisson process) and brow raises on long stressed vowels, drawn from a separate random
stream, never from phone identity, so a model can learn their rate but not hallucinate them from sound.

Weights are clamped to ARKit's 0..1 range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from model_core.corpus.phones import SILENCE, TimedPhone
from model_core.synth.coarticulation import blink_curve, bump_curve, closure_curve, dominance_blend

# The channels coarticulation blends (mouthClose is solved afterwards; Left/Right pairs share one value
# here and get the speaker's asymmetry at the end).
SPEECH_CHANNELS = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthRollLower", "mouthRollUpper", "mouthPress",
                   "mouthUpperUp", "mouthLowerDown", "mouthStretch", "mouthSmile", "mouthShrugLower",
                   "tongueOut", "jawForward")
_SIDED = ("mouthPress", "mouthUpperUp", "mouthLowerDown", "mouthStretch", "mouthSmile")

_CLOSE_RAMP = 0.06  # s: lips start closing this long before a bilabial's acoustic closure
_OPEN_RAMP = 0.05  # s: and are open again this long after its release
_REST_AFTER = 0.15  # s: a pause longer than this relaxes the mouth fully


def _p(jaw: float = 0.0, dominance: float = 0.5, **channels: float) -> tuple[dict[str, float], float]:
    return {"jawOpen": jaw, **channels}, dominance


# Per phone: targets (channels not named are 0) and how strongly the phone imposes them on its neighbours.
# Vowel jaw openings follow vowel height; rounded vowels funnel / pucker; front vowels stretch and smile a
# little. Lingual consonants have low dominance: the lips and jaw there take their shape from the vowels.
PHONE_TARGETS: dict[str, tuple[dict[str, float], float]] = {
    "iy": _p(0.08, 0.6, mouthStretch=0.35, mouthSmile=0.2),
    "ih": _p(0.12, 0.5, mouthStretch=0.25, mouthSmile=0.1),
    "ey": _p(0.16, 0.55, mouthStretch=0.25, mouthSmile=0.1, mouthLowerDown=0.1),
    "eh": _p(0.2, 0.55, mouthStretch=0.15, mouthLowerDown=0.2),
    "ae": _p(0.28, 0.6, mouthStretch=0.2, mouthLowerDown=0.3, mouthUpperUp=0.15),
    "aa": _p(0.33, 0.65, mouthLowerDown=0.25),
    "ah": _p(0.22, 0.5, mouthLowerDown=0.15),
    "ao": _p(0.28, 0.6, mouthFunnel=0.35, mouthPucker=0.15, mouthLowerDown=0.15),
    "ow": _p(0.18, 0.65, mouthFunnel=0.45, mouthPucker=0.35),
    "uh": _p(0.1, 0.5, mouthFunnel=0.25, mouthPucker=0.3),
    "uw": _p(0.07, 0.7, mouthFunnel=0.35, mouthPucker=0.65),
    "er": _p(0.12, 0.55, mouthFunnel=0.3, mouthPucker=0.15),
    "p": _p(0.05, 0.9, mouthPress=0.35, mouthRollLower=0.1, mouthRollUpper=0.1),
    "b": _p(0.05, 0.9, mouthPress=0.25, mouthRollLower=0.1, mouthRollUpper=0.1),
    "m": _p(0.04, 0.9, mouthPress=0.3, mouthRollLower=0.15, mouthRollUpper=0.1, mouthShrugLower=0.1),
    "f": _p(0.06, 0.85, mouthRollLower=0.55, mouthUpperUp=0.25, mouthShrugLower=0.15),
    "v": _p(0.06, 0.85, mouthRollLower=0.5, mouthUpperUp=0.2, mouthShrugLower=0.1),
    "th": _p(0.1, 0.6, tongueOut=0.3, mouthLowerDown=0.1),
    "dh": _p(0.1, 0.5, tongueOut=0.25, mouthLowerDown=0.1),
    "t": _p(0.08, 0.25, mouthStretch=0.05),
    "d": _p(0.08, 0.2),
    "n": _p(0.07, 0.2),
    "l": _p(0.1, 0.2, tongueOut=0.03),
    "s": _p(0.04, 0.45, mouthStretch=0.25, mouthUpperUp=0.1, jawForward=0.1),
    "z": _p(0.04, 0.4, mouthStretch=0.2, mouthUpperUp=0.1, jawForward=0.08),
    "sh": _p(0.06, 0.7, mouthFunnel=0.55, mouthPucker=0.2, mouthUpperUp=0.15),
    "zh": _p(0.06, 0.65, mouthFunnel=0.5, mouthPucker=0.2, mouthUpperUp=0.1),
    "ch": _p(0.06, 0.7, mouthFunnel=0.5, mouthPucker=0.2, mouthUpperUp=0.1),
    "jh": _p(0.06, 0.65, mouthFunnel=0.45, mouthPucker=0.2),
    "k": _p(0.12, 0.15),
    "g": _p(0.12, 0.15),
    "ng": _p(0.1, 0.15),
    "hh": _p(0.15, 0.05),
    "r": _p(0.08, 0.45, mouthFunnel=0.3, mouthPucker=0.25),
    "w": _p(0.05, 0.75, mouthPucker=0.7, mouthFunnel=0.25),
    "y": _p(0.06, 0.4, mouthStretch=0.25, mouthSmile=0.1),
    SILENCE: _p(0.0, 0.35),
}
# Diphthongs glide: (first target, second target, share of the duration on the first).
DIPHTHONGS = {"ay": ("aa", "iy", 0.55), "aw": ("aa", "uw", 0.55), "oy": ("ao", "iy", 0.5)}
BILABIAL_RELEASE = {"p": 0.01, "b": 0.006, "m": 0.0}  # s before the phone's end that the lips part


@dataclass(frozen=True)
class SpeakingStyle:
    """How one speaker articulates: amplitudes, timing, asymmetry, resting smile, blink and brow habits."""

    jaw_amp: float = 1.0
    lip_amp: float = 1.0
    anticipation: float = 0.07
    carryover: float = 0.05
    asymmetry: float = 0.0  # left = (1 + a), right = (1 - a) on the sided channels
    resting_smile: float = 0.0
    blink_rate: float = 0.25
    brow_expressiveness: float = 0.5

    def to_json(self) -> dict:
        return {k: round(v, 4) for k, v in asdict(self).items()}


def random_style(rng: np.random.Generator) -> SpeakingStyle:
    return SpeakingStyle(jaw_amp=float(rng.uniform(0.75, 1.25)), lip_amp=float(rng.uniform(0.75, 1.25)),
                         anticipation=float(rng.uniform(0.05, 0.09)), carryover=float(rng.uniform(0.035, 0.065)),
                         asymmetry=float(rng.uniform(-0.15, 0.15)), resting_smile=float(rng.uniform(0.0, 0.12)),
                         blink_rate=float(rng.uniform(0.15, 0.4)), brow_expressiveness=float(rng.uniform(0.2, 0.7)))


def _expand_diphthongs(phones: Sequence[TimedPhone]) -> list[TimedPhone]:
    out = []
    for p in phones:
        if p.symbol in DIPHTHONGS:
            first, second, share = DIPHTHONGS[p.symbol]
            mid = p.start + share * p.duration
            out += [TimedPhone(first, p.start, mid, p.word), TimedPhone(second, mid, p.end, p.word)]
        else:
            out.append(p)
    return out


def bilabial_closures(phones: Sequence[TimedPhone]) -> list[tuple[float, float]]:
    """(start, release) of every p / b / m: the span over which the lips must be shut."""
    return [(p.start, max(p.start, p.end - BILABIAL_RELEASE[p.symbol])) for p in phones
            if p.symbol in BILABIAL_RELEASE]


def frame_times(duration: float, fps: float) -> np.ndarray:
    """Frame k shows time k / fps; a take of d seconds has round(d * fps) frames."""
    return np.arange(int(round(duration * fps))) / fps


def _rest_curve(phones: Sequence[TimedPhone], times: np.ndarray) -> np.ndarray:
    """1 deep inside pauses longer than _REST_AFTER (and before the first / after the last phone), else 0."""
    spans = [(p.start + 0.5 * _REST_AFTER, p.end - 0.5 * _REST_AFTER) for p in phones
             if p.symbol == SILENCE and p.duration > _REST_AFTER]
    return closure_curve([(a, b) for a, b in spans if b > a], times, 0.1, 0.1)


def speech_weights(phones: Sequence[TimedPhone], times: np.ndarray, style: SpeakingStyle) -> dict[str, np.ndarray]:
    """Blended SPEECH_CHANNELS (T,) each, before the lip-closure solve."""
    phones = _expand_diphthongs(phones)
    if not phones:
        return {c: np.zeros(len(times)) for c in SPEECH_CHANNELS}
    targets = np.array([[PHONE_TARGETS[p.symbol][0].get(c, 0.0) for c in SPEECH_CHANNELS] for p in phones])
    dominance = np.array([[PHONE_TARGETS[p.symbol][1]] * len(SPEECH_CHANNELS) for p in phones])
    blended = dominance_blend(phones, times, targets, dominance, style.anticipation, style.carryover)
    rest = _rest_curve(phones, times)
    out = {}
    for j, c in enumerate(SPEECH_CHANNELS):
        amp = style.jaw_amp if c in ("jawOpen", "jawForward") else style.lip_amp
        out[c] = amp * blended[:, j] * (1.0 - rest)
    out["mouthSmile"] = out["mouthSmile"] + style.resting_smile
    return out


def upper_face_weights(phones: Sequence[TimedPhone], times: np.ndarray, style: SpeakingStyle,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Blinks (both eyes, the second a touch weaker), brow raises on long vowels, cheek squint with smiles."""
    duration = float(times[-1]) if len(times) else 0.0
    left, right = np.zeros(len(times)), np.zeros(len(times))
    t = float(rng.uniform(-1.0, 0.0)) / style.blink_rate
    while True:
        t += 0.6 + float(rng.exponential(max(1.0 / style.blink_rate - 0.6, 0.1)))
        if t >= duration:
            break
        amplitude = 1.0 if rng.random() > 0.1 else float(rng.uniform(0.5, 0.8))
        b = blink_curve(times, t, amplitude)
        left = np.maximum(left, b)
        right = np.maximum(right, b * float(rng.uniform(0.9, 1.0)))
    brows = np.zeros(len(times))
    for p in phones:
        if p.symbol in PHONE_TARGETS and p.symbol != SILENCE and p.duration > 0.14 \
                and PHONE_TARGETS[p.symbol][0]["jawOpen"] > 0.15 and rng.random() < style.brow_expressiveness:
            c = 0.5 * (p.start + p.end)
            brows = np.maximum(brows, float(rng.uniform(0.2, 0.6)) * bump_curve(times, c - 0.15, c + 0.05, c + 0.4))
    return {"eyeBlinkLeft": left, "eyeBlinkRight": right, "browInnerUp": brows,
            "browOuterUpLeft": 0.7 * brows, "browOuterUpRight": 0.7 * brows}


def arkit_weights(phones: Sequence[TimedPhone], duration: float, fps: float, style: SpeakingStyle,
                  names: Sequence[str], lip_gap: np.ndarray, rng: np.random.Generator,
                  rest_gap: float = 0.0) -> np.ndarray:
    """(T, len(names)) ARKit weights of a take, in the order of `names` (a head's blendshape names).

    lip_gap: (len(names),) change of the head's centre lip gap (upper minus lower lip height, metres) per unit
    of each weight; rest_gap: the gap of the speaker's neutral face. mouthClose is solved with both so
    bilabials (and long pauses) shut the lips exactly.
    """
    times = frame_times(duration, fps)
    speech = speech_weights(phones, times, style)
    channels: dict[str, np.ndarray] = {}
    for c, w in speech.items():
        if c in _SIDED:
            a = style.asymmetry
            channels[f"{c}Left"], channels[f"{c}Right"] = w * (1 + a), w * (1 - a)
        else:
            channels[c] = w
    channels.update(upper_face_weights(phones, times, style, rng))
    channels["cheekSquintLeft"] = 0.4 * channels["mouthSmileLeft"]
    channels["cheekSquintRight"] = 0.4 * channels["mouthSmileRight"]

    index = {n: i for i, n in enumerate(names)}
    missing = [c for c in [*channels, "mouthClose"] if c not in index]
    if missing:
        raise ValueError(f"The head has no blendshapes named {missing}; it needs ARKit-52 names.")
    w = np.zeros((len(times), len(names)))
    for c, values in channels.items():
        w[:, index[c]] = values
    w = np.clip(w, 0.0, 1.0)
    close = index["mouthClose"]
    gap = np.asarray(lip_gap, dtype=float)
    if gap[close] >= 0:
        raise ValueError("mouthClose does not close this head's lips (its lip-gap coefficient is not negative).")
    opening = rest_gap + w @ np.where(np.arange(len(names)) == close, 0.0, gap)
    shut = np.maximum(closure_curve(bilabial_closures(phones), times, _CLOSE_RAMP, _OPEN_RAMP),
                      _rest_curve(phones, times))
    # Just enough mouthClose to cancel the opening the other shapes make: the gap is exactly 0 when shut.
    w[:, close] = np.clip(shut * np.maximum(opening, 0.0) / -gap[close], 0.0, 1.0)
    return w.astype(np.float32)


def lip_gap_coefficients(blendshapes: np.ndarray, lip_upper: int, lip_lower: int) -> np.ndarray:
    """(K,) change of the centre lip gap per unit weight of each of a head's blendshapes (K, V, 3)."""
    return blendshapes[:, lip_upper, 1] - blendshapes[:, lip_lower, 1]
