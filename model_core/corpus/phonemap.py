"""Map any festival phone onto the unified inventory by the articulatory features festival reports for it.

Festival phone sets describe each phone with the same feature names (radio, Italian, Finnish, Russian, Catalan
…): vc (vowel?), vlng (s short, l long, d diphthong, a schwa), vheight, vfront, vrnd, ctype (s stop, f fricative,
a affricate, n nasal, l lateral/liquid, r approximant), cplace (l labial, b labio-dental, d dental, a alveolar,
p palatal/post-alveolar, v velar, g glottal), cvox. The rule, so no hand table per language is needed:

* a phone festival lists as silence -> `sil`;
* a vowel -> the ARPAbet vowel nearest in (height, frontness, rounding, length class), height and frontness
  normalised to 0..1 by their position in the phone set's declared value list (Russian counts height the other
  way round: the voice registry says so);
* a consonant -> the ARPAbet consonant nearest in (manner, place along the vocal tract, voicing); place weighs
  most because the face shows place (lips, teeth, tongue tip), voicing least because it does not show at all;
* a non-vowel without a manner but with vowel features is a glide: front -> y, back or rounded -> w;
* a syllabic consonant (vowel with a manner: English el/em/en) follows the consonant rule.
A feature a phone set lacks (value 0 or -) is left out of the distance. Phone sets without place and height
features (festival's Czech) fall back to a SAMPA name table (`SAMPA_FALLBACK`).
"""

from __future__ import annotations

from model_core.corpus.phones import SILENCE

# ARPAbet vowels: (height 0 high .. 1 low, front 0 front .. 1 back, rounded, length class).
# Corrected from festival's radio set (whose own comment says awb's values are wrong): ey/ow are the English mid
# vowels [e]/[o] with an off-glide, so they are what a foreign mid vowel looks like on the face.
_VOWELS: dict[str, tuple[float, float, bool, str]] = {
    "iy": (0.0, 0.0, False, "l"), "ih": (0.2, 0.15, False, "s"), "ey": (0.4, 0.0, False, "l"),
    "eh": (0.55, 0.05, False, "s"), "ae": (0.85, 0.1, False, "s"), "aa": (1.0, 0.8, False, "l"),
    "ah": (0.6, 0.5, False, "a"), "ao": (0.75, 1.0, True, "l"), "ow": (0.45, 1.0, True, "l"),
    "uh": (0.2, 0.85, True, "s"), "uw": (0.0, 1.0, True, "l"),
}
# Diphthongs a foreign diphthong ('d') may become: the features of their first element.
_DIPHTHONGS: dict[str, tuple[float, float, bool, str]] = {
    "ay": (1.0, 0.5, False, "d"), "aw": (1.0, 0.6, False, "d"), "oy": (0.6, 1.0, True, "d"),
    "ey": (0.4, 0.0, False, "d"), "ow": (0.45, 1.0, True, "d"),
}
# ARPAbet consonants: (manner, place, voiced) in festival's codes.
_CONSONANTS: dict[str, tuple[str, str, bool]] = {
    "p": ("s", "l", False), "b": ("s", "l", True), "t": ("s", "a", False), "d": ("s", "a", True),
    "k": ("s", "v", False), "g": ("s", "v", True), "ch": ("a", "p", False), "jh": ("a", "p", True),
    "f": ("f", "b", False), "v": ("f", "b", True), "th": ("f", "d", False), "dh": ("f", "d", True),
    "s": ("f", "a", False), "z": ("f", "a", True), "sh": ("f", "p", False), "zh": ("f", "p", True),
    "hh": ("f", "g", False), "m": ("n", "l", True), "n": ("n", "a", True), "ng": ("n", "v", True),
    "l": ("l", "a", True), "r": ("r", "a", True), "w": ("r", "l", True), "y": ("r", "p", True),
}
# Place as a position from the lips back; palatal sits a little nearer velar than alveolar (a palatal stop
# looks like k more than t), and labial is far from labio-dental because only labials close the lips.
_PLACE_POS = {"l": 0.0, "b": 1.5, "d": 2.5, "a": 3.0, "p": 4.1, "v": 5.0, "g": 6.5}
_MANNER_COST = {frozenset("sa"): 1.5, frozenset("fa"): 1.5, frozenset("lr"): 1.0, frozenset("sf"): 2.5}

# Phone sets without articulatory features (festival Czech): SAMPA-style names -> ARPAbet.
SAMPA_FALLBACK = {
    "a": "aa", "a:": "aa", "e": "eh", "e:": "eh", "i": "ih", "i:": "iy", "o": "ow", "o:": "ao", "u": "uh",
    "u:": "uw", "@": "ah", "b": "b", "c": "t", "c~": "ch", "ch": "hh", "x": "hh", "d": "d", "d~": "d",
    "dz": "z", "dz~": "jh", "f": "f", "g": "g", "h": "hh", "j": "y", "k": "k", "l": "l", "m": "m", "n": "n",
    "n*": "ng", "n~": "n", "p": "p", "r": "r", "r~": "zh", "r~*": "sh", "s": "s", "s~": "sh", "t": "t",
    "t~": "t", "v": "v", "z": "z", "z~": "zh", "ts": "t", "tS": "ch", "dZ": "jh", "S": "sh", "Z": "zh",
    "N": "ng", "J": "n", "L": "l", "w": "w",
}


def _scale(value: str | None, declared: list[str] | None, reverse: bool = False) -> float | None:
    """A height/frontness code -> 0..1 by its position among the phone set's declared numeric values."""
    if value is None or not value.isdigit() or value == "0":
        return None
    levels = sorted(int(v) for v in (declared or ["1", "2", "3"]) if v.isdigit() and v != "0")
    if len(levels) < 2 or int(value) not in levels:
        return None
    x = levels.index(int(value)) / (len(levels) - 1)
    return 1.0 - x if reverse else x


def _vowel(feats: dict[str, str], declared: dict[str, list[str]], height_low_first: bool) -> str:
    h = _scale(feats.get("vheight"), declared.get("vheight"), reverse=height_low_first)
    f = _scale(feats.get("vfront"), declared.get("vfront"))
    rnd = feats.get("vrnd")
    length = feats.get("vlng", "0")
    if length == "a" and h is None:
        return "ah"
    table = _DIPHTHONGS if length == "d" else _VOWELS

    def cost(ref: tuple[float, float, bool, str]) -> float:
        c = 0.0
        if h is not None:
            c += 2.0 * abs(h - ref[0])
        if f is not None:
            c += 1.5 * abs(f - ref[1])
        if rnd in ("+", "-"):
            c += 1.0 * ((rnd == "+") != ref[2])
        if length in ("s", "l", "a") and length != ref[3]:
            c += 0.3
        return c

    return min(table, key=lambda k: cost(table[k]))


def _consonant(manner: str, place: str | None, voiced: str | None) -> str:
    def cost(ref: tuple[str, str, bool]) -> float:
        c = 0.0 if manner == ref[0] else _MANNER_COST.get(frozenset((manner, ref[0])), 3.0)
        if place in _PLACE_POS:
            c += 1.2 * abs(_PLACE_POS[place] - _PLACE_POS[ref[1]])
        if voiced in ("+", "-"):
            c += 0.4 * ((voiced == "+") != ref[2])
        return c

    return min(_CONSONANTS, key=lambda k: cost(_CONSONANTS[k]))


def map_by_features(name: str, feats: dict[str, str], declared: dict[str, list[str]] | None = None, *,
                    is_silence: bool = False, height_low_first: bool = False) -> str:
    """One festival phone (its name, its ph_* features without the prefix) -> a unified symbol.

    `declared` holds the phone set's declared values per feature (used to normalise height/frontness scales).
    Raises ValueError when neither the features nor the SAMPA fallback say what the phone is.
    """
    declared = declared or {}
    if is_silence:
        return SILENCE
    vc = feats.get("vc")
    manner = feats.get("ctype")
    has_manner = manner in ("s", "f", "a", "n", "l", "r")
    has_vowel_feats = any(feats.get(k, "0") not in ("0", "-", "") for k in ("vheight", "vfront"))
    if vc == "+" and not has_manner and has_vowel_feats:
        return _vowel(feats, declared, height_low_first)
    if has_manner:
        return _consonant(manner, feats.get("cplace"), feats.get("cvox"))
    if vc in ("-", "0") and has_vowel_feats:  # a glide described by its vowel (Italian semi-vowels)
        f = _scale(feats.get("vfront"), declared.get("vfront"))
        return "w" if feats.get("vrnd") == "+" or (f is not None and f > 0.5) else "y"
    key = name if name in SAMPA_FALLBACK else name.lower().rstrip("0123456789")
    if key in SAMPA_FALLBACK:
        return SAMPA_FALLBACK[key]
    raise ValueError(f"festival phone '{name}' has no articulatory features ({feats}) and no SAMPA fallback.")
