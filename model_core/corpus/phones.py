"""One phone inventory for every voice and aligner: ARPAbet (lowercase, no stress digits) plus `sil`.

pocketsphinx / cmudict speak ARPAbet, festival's English voices a near relative ("pau", "ax"); other
languages map onto the nearest ARPAbet sound by articulatory features (see festival.py). Motion is computed
from these symbols only, so every source drives the face the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

VOWELS = ("iy", "ih", "ey", "eh", "ae", "aa", "ah", "ao", "ow", "uh", "uw", "er", "aw", "ay", "oy")
CONSONANTS = ("p", "b", "t", "d", "k", "g", "ch", "jh", "f", "v", "th", "dh", "s", "z", "sh", "zh", "hh",
              "m", "n", "ng", "l", "r", "w", "y")
SILENCE = "sil"
PHONES = VOWELS + CONSONANTS + (SILENCE,)
BILABIALS = ("p", "b", "m")

# Spellings of a pause or non-speech in the tools we read: pocketsphinx fillers, festival's pause, Praat/MFA.
_SILENCE_SPELLINGS = {"sil", "sp", "spn", "pau", "h#", "#", "", "<sil>", "<s>", "</s>", "+nsn+", "+spn+",
                      "+breath+", "+cough+", "+noise+", "+um+", "+uh+", "+smack+"}
_ARPABET_ALIASES = {"ax": "ah", "axr": "er", "ix": "ih", "ux": "uw", "dx": "d", "el": "l", "em": "m",
                    "en": "n", "nx": "n", "q": "t", "hv": "hh", "wh": "w", "eng": "ng"}


@dataclass(frozen=True)
class TimedPhone:
    """A phone of the unified inventory with its time span in seconds from the start of the take."""

    symbol: str
    start: float
    end: float
    word: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @staticmethod
    def from_json(data: dict) -> TimedPhone:
        return TimedPhone(str(data["symbol"]), float(data["start"]), float(data["end"]), data.get("word"))


def from_arpabet(symbol: str) -> str:
    """ARPAbet (any case, with or without stress digits, with TIMIT extras) -> the unified symbol.

    Raises ValueError for a symbol that is not ARPAbet, so an unmapped phone set is noticed at once.
    """
    s = symbol.strip().lower()
    if s in _SILENCE_SPELLINGS or (s.startswith("+") and s.endswith("+")):
        return SILENCE
    s = s.rstrip("012")
    s = _ARPABET_ALIASES.get(s, s)
    if s not in PHONES:
        raise ValueError(f"'{symbol}' is not an ARPAbet phone.")
    return s


def merge_silences(phones: list[TimedPhone]) -> list[TimedPhone]:
    """Join neighbouring pauses into one, so a pause's length is what the listener hears."""
    out: list[TimedPhone] = []
    for p in phones:
        if out and p.symbol == SILENCE and out[-1].symbol == SILENCE:
            out[-1] = TimedPhone(SILENCE, out[-1].start, p.end)
        else:
            out.append(p)
    return out
