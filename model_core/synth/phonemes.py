"""Phoneme inventory (articulation + acoustics of each sound) and random sentences with exact timings.

Every phoneme carries two things that must agree, because a model will have to learn one from the other:
its *viseme targets* (jaw opening, rounding, ...) and its *acoustic targets* (formants F1-F4, sources).
Vowel jaw opening and F1 are both derived from vowel height, rounding lowers F2/F3, bilabials are a lip
closure (silence, voice bar or nasal murmur) ended by a burst.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Articulation parameters blended by coarticulation. Lip press is not here: motion computes it so that
# bilabials close the lips exactly (see motion.py).
ARTICULATION = ("jaw_open", "lip_round", "lip_spread", "lower_lip_tuck", "upper_lip_raise")

KINDS = ("vowel", "stop", "affricate", "fricative", "nasal", "liquid", "glide", "aspirate", "silence")


@dataclass(frozen=True)
class Phoneme:
    """One sound: timing, articulation targets and the acoustic recipe voice.py follows."""

    symbol: str
    kind: str
    voiced: bool
    place: str
    duration: float  # nominal seconds at speaking rate 1
    formants: tuple[float, float, float, float]  # F1-F4 in Hz for an adult male tract (loci for consonants)
    bandwidths: tuple[float, float, float, float]
    targets: dict[str, float]  # ARTICULATION name -> target weight
    dominance: dict[str, float]  # how strongly this sound imposes each target on its neighbours
    formant_dominance: float
    voicing: float = 0.0  # glottal source amplitude during the sound (closure part for stops)
    aspiration: float = 0.0  # formant-filtered noise (h, breathy onsets)
    frication: float = 0.0  # noise through the fricative filter
    fric_centre: float = 0.0  # Hz: centre of the fricative / burst noise
    fric_bandwidth: float = 0.0
    burst: float = 0.0  # release burst amplitude at the end of a stop / affricate closure
    vot: float = 0.0  # seconds of aspiration after the release (voiceless stops)
    nasal_zero: float = 0.0  # Hz of the nasal anti-resonance; 0 for oral sounds
    height: float | None = None  # vowels only: 1 high ... 0 low
    backness: float | None = None  # vowels only: 0 front ... 1 back
    rounding: float | None = None  # vowels only: 0 spread/neutral ... 1 rounded

    def release_offset(self, duration: float) -> float | None:
        """Seconds from the phone's start to the release of its oral closure; None if it has no closure."""
        if self.kind == "stop":
            return duration - (0.006 if self.voiced else 0.010)  # the burst closes the segment
        if self.kind == "affricate":
            return 0.5 * duration  # closure, then frication
        if self.kind == "nasal":
            return duration  # the oral closure lasts the whole murmur
        return None

    @property
    def is_bilabial(self) -> bool:
        return self.place == "bilabial"

    @property
    def is_vowel(self) -> bool:
        return self.kind == "vowel"


def vowel_f1(height: float) -> float:
    """F1 of a vowel from its height: the acoustic face of jaw opening (low vowels: open jaw, high F1)."""
    return 270.0 + 480.0 * (1.0 - height)


def vowel_jaw(height: float) -> float:
    """Jaw-open target of a vowel: an affine function of height, so jaw opening and F1 move together."""
    return 0.1 + 0.9 * (1.0 - height)


def _vowel(symbol: str, height: float, backness: float, rounding: float, f2: float, f3: float,
           duration: float) -> Phoneme:
    spread = (1.0 - backness) * (1.0 - rounding) * (0.4 + 0.6 * height)
    targets = {"jaw_open": vowel_jaw(height), "lip_round": rounding, "lip_spread": spread,
               "lower_lip_tuck": 0.0, "upper_lip_raise": 0.2 * spread}
    dominance = {"jaw_open": 1.0, "lip_round": 0.9 if rounding > 0 else 0.5, "lip_spread": 0.8,
                 "lower_lip_tuck": 0.3, "upper_lip_raise": 0.5}
    return Phoneme(symbol, "vowel", True, "vowel", duration, (vowel_f1(height), f2, f3, 3500.0),
                   (70.0, 90.0, 140.0, 200.0), targets, dominance, formant_dominance=1.0, voicing=1.0,
                   height=height, backness=backness, rounding=rounding)


def _consonant(symbol: str, kind: str, voiced: bool, place: str, duration: float,
               formants: tuple[float, float, float], visemes: dict[str, tuple[float, float]],
               **acoustics: float) -> Phoneme:
    """visemes: name -> (target, dominance); unnamed parameters are left to the neighbours (low dominance)."""
    targets = {name: 0.0 for name in ARTICULATION}
    dominance = {"jaw_open": 0.3, "lip_round": 0.08, "lip_spread": 0.1, "lower_lip_tuck": 0.3,
                 "upper_lip_raise": 0.2}
    for name, (target, dom) in visemes.items():
        targets[name], dominance[name] = target, dom
    nasal = kind == "nasal"
    bandwidths = (100.0, 200.0, 300.0, 300.0) if nasal else (80.0, 110.0, 160.0, 220.0)
    formant_dominance = acoustics.pop("formant_dominance", 0.5)
    return Phoneme(symbol, kind, voiced, place, duration, (*formants, 3500.0), bandwidths, targets, dominance,
                   formant_dominance=formant_dominance, **acoustics)


_BILABIAL = {"jaw_open": (0.12, 0.45), "lower_lip_tuck": (0.0, 0.9), "upper_lip_raise": (0.0, 0.5)}
_LABIODENTAL = {"jaw_open": (0.12, 0.6), "lower_lip_tuck": (1.0, 1.0), "upper_lip_raise": (0.5, 0.8),
                "lip_round": (0.0, 0.2)}
_DENTAL = {"jaw_open": (0.2, 0.5)}
_ALVEOLAR = {"jaw_open": (0.2, 0.45), "lip_spread": (0.15, 0.1)}
_SIBILANT = {"jaw_open": (0.08, 0.8), "lip_spread": (0.35, 0.3), "upper_lip_raise": (0.15, 0.3)}
_POSTALVEOLAR = {"jaw_open": (0.12, 0.7), "lip_round": (0.6, 0.7), "lip_spread": (0.0, 0.5)}
_VELAR = {"jaw_open": (0.3, 0.2)}

INVENTORY: dict[str, Phoneme] = {p.symbol: p for p in (
    # Vowels: (height, backness, rounding, F2, F3, duration). F1 and the jaw target follow from height.
    _vowel("iy", 1.00, 0.00, 0.0, 2250, 2950, 0.110),
    _vowel("ih", 0.80, 0.15, 0.0, 1950, 2600, 0.075),
    _vowel("ey", 0.65, 0.10, 0.0, 2050, 2650, 0.120),
    _vowel("eh", 0.45, 0.20, 0.0, 1800, 2550, 0.090),
    _vowel("ae", 0.10, 0.25, 0.0, 1700, 2450, 0.130),
    _vowel("aa", 0.00, 0.70, 0.0, 1150, 2500, 0.130),
    _vowel("ah", 0.35, 0.50, 0.0, 1250, 2550, 0.080),
    _vowel("ao", 0.20, 0.90, 0.6, 900, 2450, 0.130),
    _vowel("ow", 0.50, 0.90, 0.8, 950, 2400, 0.120),
    _vowel("uh", 0.75, 0.80, 0.5, 1100, 2350, 0.080),
    _vowel("uw", 0.95, 1.00, 1.0, 850, 2250, 0.115),
    _vowel("er", 0.55, 0.50, 0.3, 1350, 1700, 0.110),
    # Stops: closure (silence, or a voice bar when voiced) then a burst; voiceless ones aspirate.
    _consonant("p", "stop", False, "bilabial", 0.095, (250, 900, 2200), _BILABIAL,
               burst=0.5, fric_centre=1000, fric_bandwidth=2500, vot=0.040),
    _consonant("b", "stop", True, "bilabial", 0.080, (250, 900, 2200), _BILABIAL,
               voicing=0.06, burst=0.3, fric_centre=1000, fric_bandwidth=2500, vot=0.005),
    _consonant("t", "stop", False, "alveolar", 0.085, (300, 1700, 2600), _ALVEOLAR,
               burst=0.6, fric_centre=4200, fric_bandwidth=2500, vot=0.045),
    _consonant("d", "stop", True, "alveolar", 0.070, (300, 1700, 2600), _ALVEOLAR,
               voicing=0.06, burst=0.35, fric_centre=4200, fric_bandwidth=2500, vot=0.005),
    _consonant("k", "stop", False, "velar", 0.090, (300, 1900, 2300), _VELAR,
               burst=0.6, fric_centre=2200, fric_bandwidth=900, vot=0.055, formant_dominance=0.2),
    _consonant("g", "stop", True, "velar", 0.075, (300, 1900, 2300), _VELAR,
               voicing=0.06, burst=0.35, fric_centre=2200, fric_bandwidth=900, vot=0.008, formant_dominance=0.2),
    # Affricates: a closure whose release is a sh-like frication.
    _consonant("ch", "affricate", False, "postalveolar", 0.110, (300, 1900, 2500), _POSTALVEOLAR,
               burst=0.4, frication=0.45, fric_centre=3000, fric_bandwidth=1500),
    _consonant("jh", "affricate", True, "postalveolar", 0.095, (300, 1900, 2500), _POSTALVEOLAR,
               voicing=0.08, burst=0.3, frication=0.3, fric_centre=3000, fric_bandwidth=1500),
    # Fricatives.
    _consonant("f", "fricative", False, "labiodental", 0.100, (300, 1100, 2300), _LABIODENTAL,
               frication=0.14, fric_centre=4500, fric_bandwidth=7000),
    _consonant("v", "fricative", True, "labiodental", 0.070, (300, 1100, 2300), _LABIODENTAL,
               voicing=0.35, frication=0.08, fric_centre=4500, fric_bandwidth=7000),
    _consonant("th", "fricative", False, "dental", 0.090, (300, 1400, 2600), _DENTAL,
               frication=0.09, fric_centre=5500, fric_bandwidth=7000),
    _consonant("dh", "fricative", True, "dental", 0.050, (300, 1400, 2600), _DENTAL,
               voicing=0.45, frication=0.06, fric_centre=5500, fric_bandwidth=7000),
    _consonant("s", "fricative", False, "alveolar", 0.110, (300, 1700, 2600), _SIBILANT,
               frication=0.5, fric_centre=5800, fric_bandwidth=2500),
    _consonant("z", "fricative", True, "alveolar", 0.085, (300, 1700, 2600), _SIBILANT,
               voicing=0.4, frication=0.3, fric_centre=5600, fric_bandwidth=2500),
    _consonant("sh", "fricative", False, "postalveolar", 0.110, (300, 1900, 2500), _POSTALVEOLAR,
               frication=0.45, fric_centre=3000, fric_bandwidth=1500),
    _consonant("zh", "fricative", True, "postalveolar", 0.085, (300, 1900, 2500), _POSTALVEOLAR,
               voicing=0.4, frication=0.3, fric_centre=3000, fric_bandwidth=1500),
    _consonant("hh", "aspirate", False, "glottal", 0.060, (500, 1500, 2500),
               {"jaw_open": (0.3, 0.02), "lip_round": (0.0, 0.02), "lip_spread": (0.0, 0.02),
                "lower_lip_tuck": (0.0, 0.02), "upper_lip_raise": (0.0, 0.02)},
               aspiration=0.35, formant_dominance=0.02),
    # Nasals: low murmur with an anti-resonance; m is a full lip closure.
    _consonant("m", "nasal", True, "bilabial", 0.075, (250, 1000, 2200), _BILABIAL,
               voicing=0.45, nasal_zero=750),
    _consonant("n", "nasal", True, "alveolar", 0.065, (250, 1500, 2500), _ALVEOLAR,
               voicing=0.45, nasal_zero=1450),
    _consonant("ng", "nasal", True, "velar", 0.070, (250, 1900, 2400), _VELAR,
               voicing=0.45, nasal_zero=2800, formant_dominance=0.3),
    # Liquids and glides.
    _consonant("l", "liquid", True, "alveolar", 0.065, (350, 1100, 2700), {"jaw_open": (0.3, 0.3)},
               voicing=0.75),
    _consonant("r", "liquid", True, "postalveolar", 0.065, (350, 1100, 1500),
               {"jaw_open": (0.25, 0.3), "lip_round": (0.5, 0.6)}, voicing=0.8),
    _consonant("w", "glide", True, "labiovelar", 0.065, (300, 700, 2200),
               {"jaw_open": (0.1, 0.5), "lip_round": (1.0, 1.0), "lip_spread": (0.0, 0.6)}, voicing=0.75,
               formant_dominance=0.8),
    _consonant("y", "glide", True, "palatal", 0.060, (280, 2200, 2900),
               {"jaw_open": (0.1, 0.5), "lip_spread": (0.6, 0.6)}, voicing=0.8, formant_dominance=0.8),
    # Silence: the rest pose (mouth closed) with strong dominance, so pauses return to neutral.
    _consonant("sil", "silence", False, "none", 0.200, (500, 1500, 2500),
               {name: (0.0, 1.0) for name in ARTICULATION}, formant_dominance=0.02),
)}

VOWELS = tuple(s for s, p in INVENTORY.items() if p.is_vowel)
BILABIALS = tuple(s for s, p in INVENTORY.items() if p.is_bilabial)

# Relative frequencies. Bilabials are commoner than in English on purpose: lip closure is what viewers
# judge first, so the corpus shows it often.
_VOWEL_WEIGHTS = {"iy": 1.0, "ih": 1.0, "ey": 0.8, "eh": 1.0, "ae": 1.0, "aa": 1.2, "ah": 1.2, "ao": 0.8,
                  "ow": 0.8, "uh": 0.6, "uw": 1.0, "er": 0.6}
_ONSET_WEIGHTS = {"p": 0.8, "b": 0.8, "m": 0.8, "f": 0.5, "v": 0.3, "t": 0.7, "d": 0.6, "n": 0.6, "s": 0.7,
                  "z": 0.2, "sh": 0.3, "k": 0.6, "g": 0.3, "l": 0.5, "r": 0.5, "w": 0.4, "y": 0.2, "hh": 0.3,
                  "th": 0.2, "dh": 0.3, "ch": 0.2, "jh": 0.2, "zh": 0.05}
_CODA_WEIGHTS = {"p": 0.5, "b": 0.3, "m": 0.7, "f": 0.3, "v": 0.3, "t": 0.8, "d": 0.6, "n": 0.8, "s": 0.7,
                 "z": 0.5, "sh": 0.2, "k": 0.6, "g": 0.2, "ng": 0.3, "l": 0.5, "r": 0.5, "th": 0.1, "ch": 0.1}
_CLUSTERS = (("s", "t"), ("s", "p"), ("s", "k"), ("p", "l"), ("b", "r"), ("p", "r"), ("f", "l"), ("k", "l"),
             ("t", "r"), ("g", "r"))


@dataclass(frozen=True)
class Phone:
    """One phoneme token in a sentence. Times are whole milliseconds, so they are exact in JSON and samples."""

    symbol: str
    start_ms: int
    end_ms: int
    word: int = -1  # -1 for silence
    stressed: bool = False
    accent: float = 0.0  # pitch-accent strength on a stressed vowel (0: none)

    @property
    def start(self) -> float:
        return self.start_ms / 1000.0

    @property
    def end(self) -> float:
        return self.end_ms / 1000.0

    @property
    def duration(self) -> float:
        return (self.end_ms - self.start_ms) / 1000.0

    @property
    def phoneme(self) -> Phoneme:
        return INVENTORY[self.symbol]

    @property
    def jaw_target(self) -> float:
        """Jaw-open target of this token: vowels open wider when stressed, less when not (the voice's F1 follows)."""
        jaw = self.phoneme.targets["jaw_open"]
        if self.phoneme.is_vowel:
            jaw *= 1.1 if self.stressed else 0.85
        return jaw


@dataclass(frozen=True)
class Sentence:
    phones: tuple[Phone, ...]
    words: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def duration_ms(self) -> int:
        return self.phones[-1].end_ms

    @property
    def duration(self) -> float:
        return self.duration_ms / 1000.0


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _syllable(rng: np.random.Generator) -> list[str]:
    """(C)(C)V(C): onsets and codas drawn from frequency tables."""
    phones: list[str] = []
    r = rng.random()
    if r < 0.08:
        phones += list(_CLUSTERS[int(rng.integers(len(_CLUSTERS)))])
    elif r < 0.85:
        phones.append(_pick(rng, _ONSET_WEIGHTS))
    phones.append(_pick(rng, _VOWEL_WEIGHTS))
    if rng.random() < 0.42:
        phones.append(_pick(rng, _CODA_WEIGHTS))
    return phones


def _word(rng: np.random.Generator) -> list[list[str]]:
    n = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.20]))
    return [_syllable(rng) for _ in range(n)]


def _duration_ms(rng: np.random.Generator, symbol: str, rate: float, stressed: bool) -> int:
    p = INVENTORY[symbol]
    d = p.duration / rate * float(np.exp(rng.normal(0.0, 0.15)))
    if p.is_vowel:
        d *= 1.3 if stressed else 0.85
    floor = 0.055 if p.is_bilabial else 0.035  # a visible closure needs a few frames at 60 fps
    return int(round(max(d, floor) * 1000))


def make_sentence(rng: np.random.Generator, rate: float = 1.0, min_seconds: float = 2.0,
                  max_seconds: float = 5.0) -> Sentence:
    """A random sentence: silence, words (with occasional pauses), silence; total length in [min, max] s."""
    if not 0.5 <= min_seconds <= max_seconds:
        raise ValueError(f"Sentence length range must satisfy 0.5 <= min <= max (got {min_seconds}, {max_seconds}).")
    target_ms = int(round(rng.uniform(min_seconds, max_seconds) * 1000))
    lead_ms = int(rng.integers(150, 351))
    tail_min_ms = 150
    phones: list[Phone] = [Phone("sil", 0, lead_ms)]
    words: list[tuple[str, ...]] = []
    t = lead_ms
    while True:
        syllables = _word(rng)
        stressed_syllable = int(rng.integers(len(syllables)))
        accent = float(rng.uniform(0.4, 1.0)) if rng.random() < 0.6 else 0.0
        pause_ms = int(rng.integers(120, 301)) if words and rng.random() < 0.15 else 0
        planned: list[Phone] = []
        u = t + pause_ms
        for si, syl in enumerate(syllables):
            stressed = si == stressed_syllable
            for sym in syl:
                d = _duration_ms(rng, sym, rate, stressed)
                is_vowel = INVENTORY[sym].is_vowel
                planned.append(Phone(sym, u, u + d, word=len(words), stressed=stressed and is_vowel,
                                     accent=accent if stressed and is_vowel else 0.0))
                u += d
        if u + tail_min_ms > target_ms and words:
            break
        if u + tail_min_ms > target_ms:  # the first word alone is too long: shorten the target's padding
            target_ms = u + tail_min_ms
        if pause_ms:
            phones.append(Phone("sil", t, t + pause_ms))
        phones += planned
        words.append(tuple(p.symbol for p in planned))
        t = u
    phones.append(Phone("sil", t, max(target_ms, t + tail_min_ms)))
    return Sentence(tuple(phones), tuple(words))
