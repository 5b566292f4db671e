"""The festival, flite and Asterisk voices as corpus sources: each yields SpokenTakes within a time budget.

Sentences: festival's English voices and the flite voices read the hand-written English sentences, then
generated ones (seeded); festival's voices in other languages read their language's written sentences (few:
a budget beyond them repeats none). The Asterisk prompts are real recordings: the training prompts until the
budget is spent, and always every held-out test prompt (split "test").
"""

from __future__ import annotations

from collections.abc import Iterator

from model_core.corpus.phones import SILENCE
from model_core.corpus.sentences import Sentence, generated_english, written
from model_core.corpus.takes import SpokenTake
from model_core.corpus.tools import ToolMissing

FLITE_SPEAKERS = ("awb", "rms", "slt", "kal16")  # kal16 and kal are one speaker: use the 16 kHz one
ASTERISK_VOICE = "asterisk-allison"


def _english(seed: int, offset: int) -> Iterator[Sentence]:
    """Written sentences first, then an endless seeded stream of generated ones (distinct per voice)."""
    yield from written("en")
    batch = 0
    while True:
        yield from generated_english(50, seed=seed * 1000 + offset * 100 + batch)
        batch += 1


def _sex(note: str) -> str | None:
    return "F" if "female" in note else "M" if "male" in note else None


def installed_festival_voices() -> list[str]:
    from model_core.corpus.festival import VOICES, require_voice

    out = []
    for name in VOICES:
        try:
            require_voice(name)
            out.append(name)
        except ToolMissing:
            continue
    if not out:
        require_voice("kal")  # raises the sentence naming what to install
    return out


def festival_takes(seed: int, seconds: float) -> Iterator[SpokenTake]:
    """Every installed voice gets an equal share; the voices of other languages run out of written sentences
    first (they read each once), and what they leave goes to the English voices."""
    from model_core.corpus.festival import VOICES, synthesize

    names = installed_festival_voices()
    order = sorted(names, key=lambda n: VOICES[n].language == "en")  # the other languages first
    left = seconds
    for i, name in enumerate(order):
        voice = VOICES[name]
        share = left / (len(order) - i)
        sentences = _english(seed, names.index(name)) if voice.language == "en" else iter(written(voice.language))
        spoken, k = 0.0, 0
        for sentence in sentences:
            if spoken >= share:
                break
            k += 1
            syn = synthesize(sentence.text, name)
            take = SpokenTake(source="festival", voice=f"festival-{name.replace('_', '-')}", key=f"{k:04d}",
                              language=voice.language, text=sentence.text, text_source=sentence.source,
                              audio=syn.audio, phones=syn.phones, timing="exact",
                              licence=f"{voice.licence} (Debian {voice.package})", sex=_sex(voice.note))
            spoken += take.duration
            yield take
        left -= spoken


def flite_takes(seed: int, seconds: float) -> Iterator[SpokenTake]:
    from model_core.corpus.align import Aligner
    from model_core.corpus.flite import FLITE_LICENCE, synthesize

    aligner = Aligner()
    share = seconds / len(FLITE_SPEAKERS)
    for i, name in enumerate(FLITE_SPEAKERS):
        spoken, k = 0.0, 0
        for sentence in _english(seed, 10 + i):
            if spoken >= share:
                break
            k += 1
            take = synthesize(sentence.text, name, aligner)
            yield SpokenTake(source="flite", voice=f"flite-{name.removesuffix('16')}", key=f"{k:04d}",
                             language="en", text=sentence.text, text_source=sentence.source, audio=take.audio,
                             phones=take.alignment.phones, timing="aligned", licence=FLITE_LICENCE,
                             sex="F" if name == "slt" else "M", check=take.alignment.check.to_json())
            spoken += len(take.audio) / 16000


def asterisk_takes(seconds: float) -> Iterator[SpokenTake]:
    """Training prompts within `seconds`, then all held-out test prompts (they are the real-speech yardstick)."""
    from model_core.corpus.align import Aligner
    from model_core.corpus.asterisk import ASTERISK_LICENCE, align_recording, asterisk_prompts, split_of

    aligner = Aligner()
    spoken = 0.0
    for rec in asterisk_prompts("all"):
        test = split_of(rec.name) == "test"
        if not test and spoken >= seconds:
            continue
        audio, alignment = align_recording(rec, aligner)
        check = alignment.check.to_json()
        if not rec.spoken.strip():
            check = {**check, "ok": False, "reasons": [*check.get("reasons", []), "the transcript holds no speech"]}
        phones = alignment.phones or []
        take = SpokenTake(source="asterisk", voice=ASTERISK_VOICE, key=rec.name, language="en", text=rec.text,
                          text_source="Asterisk prompt transcripts (core-sounds-en.txt)", audio=audio,
                          phones=phones, timing="aligned", licence=ASTERISK_LICENCE, sex="F",
                          split="test" if test else None, check=check)
        if take.ok and not any(p.symbol != SILENCE for p in phones):
            take.check = {**check, "ok": False, "reasons": ["no phones aligned"]}
        if not test and take.ok:
            spoken += take.duration
        yield take
