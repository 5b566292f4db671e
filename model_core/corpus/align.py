"""Forced alignment of speech to its transcript with pocketsphinx, and a check of every alignment.

Two passes as pocketsphinx 5 wants them: word alignment, then phone alignment (`set_alignment`). Words cmudict
lacks get a pronunciation from festival's lexicon / letter-to-sound; without festival they are reported missing
and the take is rejected. Nothing is dropped silently: a rejected alignment comes back with `check.ok == False`
and its reasons, so the corpus can count and list it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from model_core.corpus.phones import SILENCE, TimedPhone, from_arpabet, merge_silences
from model_core.corpus.tools import SAMPLE_RATE, ToolMissing, require_pocketsphinx, to_pcm16

FRAME = 0.01  # pocketsphinx frame hop, seconds
MIN_PHONE = 0.010  # shorter phones are implausible (pocketsphinx's own minimum is 3 frames)
MAX_PHONE = 0.500  # a non-silence phone longer than this means the aligner stretched something over a gap
MIN_COVERAGE = 0.95  # phones must span this share of the audio
MAX_EDGE_SILENCE = 5.0  # seconds of leading or trailing silence: longer takes are trimmed before aligning
LOUD_PAUSE_DB = -12.0  # a pause holding 100 ms this close to the speech level hides untranscribed speech
# Acoustic log-score per frame (pocketsphinx units) below which the audio does not sound like the transcript.
# Measured: festival kal with its own text -12, with a different sentence -44, half wrong -27; real Asterisk
# prompts (one real speaker) typically -10 .. -20.
MIN_SCORE_PER_FRAME = -30.0
QUIET_DB = -40.0  # a word this far below the take's speech level is aligned over silence


@dataclass
class AlignmentCheck:
    """What was checked about one alignment, and why it was rejected (empty reasons when ok)."""

    ok: bool
    reasons: list[str]
    duration: float
    coverage: float = 0.0
    leading_silence: float = 0.0
    trailing_silence: float = 0.0
    short_phones: int = 0
    long_phones: int = 0
    score_per_frame: float | None = None
    missing_words: list[str] = field(default_factory=list)
    added_words: dict[str, str] = field(default_factory=dict)  # word -> pronunciation taken from festival

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Alignment:
    """Phones of the unified inventory (with their words), the words aligned, and the check."""

    phones: list[TimedPhone]
    words: list[str]
    check: AlignmentCheck


_NUMBERISH = re.compile(r"\d")


def transcript_words(text: str) -> list[str]:
    """A transcript -> lowercase dictionary words: letters, digits and inner apostrophes; '&' -> and."""
    text = text.lower().replace("&", " and ").replace("’", "'")
    return [w.strip("'") for w in re.findall(r"[a-z0-9']+", text) if w.strip("'")]


class Aligner:
    """A pocketsphinx decoder kept warm between takes (loading the model takes a third of a second)."""

    def __init__(self, use_festival_lexicon: bool = True) -> None:
        ps = require_pocketsphinx()
        self._decoder = ps.Decoder(loglevel="FATAL", bestpath=False)  # bestpath breaks pass 2 on long clips
        self._use_festival = use_festival_lexicon
        self._added: dict[str, str] = {}

    def _prepare_words(self, words: list[str]) -> tuple[list[str], list[str]]:
        """Make sure every word has a pronunciation: (missing words, words added from festival)."""
        unknown = [w for w in dict.fromkeys(words) if w not in self._added and self._decoder.lookup_word(w) is None]
        added: list[str] = [w for w in dict.fromkeys(words) if w in self._added]
        if unknown and self._use_festival:
            from model_core.corpus.festival import lexicon_arpabet

            for w, pron in lexicon_arpabet(unknown).items():
                if pron:
                    self._decoder.add_word(w, " ".join(pron), True)
                    self._added[w] = " ".join(pron)
                    added.append(w)
        missing = [w for w in unknown if w not in self._added]
        return missing, added

    def align(self, audio: np.ndarray, text: str | Sequence[str], sample_rate: int = SAMPLE_RATE) -> Alignment:
        """Align 16 kHz mono audio to its transcript (a string, or the words already normalised)."""
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"align wants {SAMPLE_RATE} Hz audio, got {sample_rate} (decode with tools.decode_audio)")
        audio = np.asarray(audio, dtype=np.float32)
        duration = len(audio) / SAMPLE_RATE
        words = transcript_words(text) if isinstance(text, str) else [w.lower() for w in text]
        if isinstance(text, str) and any(_NUMBERISH.search(w) for w in words):
            words = _spoken_numbers(text, words)
        if not words:
            return Alignment([], [], AlignmentCheck(False, ["transcript has no words"], duration))
        missing, added = self._prepare_words(words)
        if missing:
            reason = f"words missing from the dictionary and festival's lexicon: {', '.join(missing)}"
            return Alignment([], words, AlignmentCheck(False, [reason], duration, missing_words=missing))
        if float(np.max(np.abs(audio), initial=0.0)) < 1e-3:
            return Alignment([], words, AlignmentCheck(False, ["audio is silent"], duration,
                                                       added_words={w: self._added[w] for w in added}))
        phones, score = self._run(to_pcm16(audio), words)
        check = check_alignment(phones, audio, score)
        check.added_words = {w: self._added[w] for w in added}
        return Alignment(phones, words, check)

    def _run(self, pcm: bytes, words: list[str]) -> tuple[list[TimedPhone], float | None]:
        d = self._decoder
        try:
            d.set_align_text(" ".join(words))
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            d.set_alignment()
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            result = d.get_alignment()
        except RuntimeError:  # no path through the transcript (noise, silence, a very different text)
            return [], None
        if result is None:
            return [], None
        phones: list[TimedPhone] = []
        score = 0.0
        frames = 0
        for w in result:
            word = re.sub(r"\(\d+\)$", "", w.name)
            word = None if word.startswith("<") or word.startswith("+") else word
            score += w.score
            frames += w.duration
            for p in w:
                phones.append(TimedPhone(from_arpabet(p.name), round(p.start * FRAME, 4),
                                         round((p.start + p.duration) * FRAME, 4), word))
        return merge_silences(phones), (score / frames if frames else None)


def _spoken_numbers(text: str, words: list[str]) -> list[str]:
    """Digits -> the words festival would say; unchanged when festival is not installed."""
    try:
        from model_core.corpus.festival import normalised_words

        return normalised_words(text)
    except (ToolMissing, RuntimeError):
        return words


def check_alignment(phones: list[TimedPhone], audio: np.ndarray, score_per_frame: float | None) -> AlignmentCheck:
    """Coverage, edge silences, phone durations, acoustic match and speech energy of one alignment."""
    duration = len(audio) / SAMPLE_RATE
    if not phones:
        return AlignmentCheck(False, ["the aligner found no path through the transcript "
                                      "(silence, noise or a different text)"], duration)
    reasons: list[str] = []
    coverage = (phones[-1].end - phones[0].start) / duration if duration else 0.0
    lead = phones[0].duration if phones[0].symbol == SILENCE else 0.0
    trail = phones[-1].duration if phones[-1].symbol == SILENCE else 0.0
    speech = [p for p in phones if p.symbol != SILENCE]
    short = [p for p in phones if p.duration < MIN_PHONE - 1e-9]
    long = [p for p in speech if p.duration > MAX_PHONE + 1e-9]
    if coverage < MIN_COVERAGE:
        reasons.append(f"phones cover {coverage:.0%} of the audio (< {MIN_COVERAGE:.0%})")
    if not speech:
        reasons.append("no speech phones")
    if lead > MAX_EDGE_SILENCE or trail > MAX_EDGE_SILENCE:
        reasons.append(f"edge silence {lead:.2f} s / {trail:.2f} s (> {MAX_EDGE_SILENCE} s)")
    if short:
        reasons.append(f"{len(short)} phones shorter than {MIN_PHONE * 1000:.0f} ms")
    if long:
        listed = ", ".join(f"{p.symbol} {p.duration * 1000:.0f} ms" for p in long[:3])
        reasons.append(f"{len(long)} speech phones longer than {MAX_PHONE * 1000:.0f} ms ({listed})")
    if score_per_frame is not None and score_per_frame < MIN_SCORE_PER_FRAME:
        reasons.append(f"poor acoustic match ({score_per_frame:.1f}/frame < {MIN_SCORE_PER_FRAME}): "
                       "transcript may not be what is said")
    loud = _loud_pauses(phones, audio)
    if loud:
        reasons.append(f"speech-level audio inside pauses at {', '.join(f'{t:.2f} s' for t in loud[:5])} "
                       "(transcript may be incomplete)")
    quiet = _quiet_words(phones, audio)
    if quiet:
        reasons.append(f"words aligned over silence ({QUIET_DB:.0f} dB): {', '.join(quiet[:5])}")
    return AlignmentCheck(not reasons, reasons, duration, round(coverage, 4), lead, trail, len(short), len(long),
                          None if score_per_frame is None else round(score_per_frame, 2))


def _rms(audio: np.ndarray, a: float, b: float) -> float:
    seg = audio[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)]
    return float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) if len(seg) else 0.0


def _speech_level(phones: list[TimedPhone], audio: np.ndarray) -> float:
    levels = [_rms(audio, p.start, p.end) for p in phones if p.symbol != SILENCE]
    return float(np.median(levels)) if levels else 0.0


def _loud_pauses(phones: list[TimedPhone], audio: np.ndarray) -> list[float]:
    """Start times of pauses (>= 0.3 s) containing a 100 ms stretch as loud as the take's speech."""
    ref = _speech_level(phones, audio)
    if ref <= 0:
        return []
    limit = ref * 10 ** (LOUD_PAUSE_DB / 20)
    out = []
    for p in phones:
        if p.symbol == SILENCE and p.duration >= 0.3:
            peaks = [_rms(audio, t, t + 0.1) for t in np.arange(p.start, p.end - 0.1 + 1e-9, 0.05)]
            if peaks and max(peaks) > limit:
                out.append(p.start)
    return out


def _quiet_words(phones: list[TimedPhone], audio: np.ndarray) -> list[str]:
    """Words whose RMS is far below the speech level of the take: speech placed where nobody speaks."""
    spans: dict[tuple[str, float], list[TimedPhone]] = {}
    current: tuple[str, float] | None = None
    for p in phones:
        if p.symbol == SILENCE or p.word is None:
            current = None
            continue
        if current is None or current[0] != p.word or spans[current][-1].end != p.start:
            current = (p.word, p.start)
            spans[current] = []
        spans[current].append(p)

    levels = {k: _rms(audio, v[0].start, v[-1].end) for k, v in spans.items()}
    if not levels:
        return []
    ref = float(np.median(list(levels.values())))
    if ref <= 0:
        return [k[0] for k in levels]
    floor = ref * 10 ** (QUIET_DB / 20)
    return [k[0] for k, v in levels.items() if v < floor]


_DEFAULT: Aligner | None = None


def align(audio: np.ndarray, text: str | Sequence[str], sample_rate: int = SAMPLE_RATE) -> Alignment:
    """Align with a shared Aligner (created on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Aligner()
    return _DEFAULT.align(audio, text, sample_rate)


def boundary_errors(reference: list[TimedPhone], aligned: list[TimedPhone]) -> np.ndarray:
    """|time difference| (s) of phone boundaries both sequences share, matched by symbol order (difflib).

    A boundary counts when the phones on both sides of it match in both sequences; edges of the take are left out.
    """
    from difflib import SequenceMatcher

    a = [p.symbol for p in reference]
    b = [p.symbol for p in aligned]
    errs: list[float] = []
    for block in SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks():
        for k in range(block.size - 1):
            i, j = block.a + k, block.b + k
            errs.append(abs(reference[i].end - aligned[j].end))
    return np.asarray(errs, dtype=np.float64)
