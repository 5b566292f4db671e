"""Forced alignment for the scorecard: transcript + 16 kHz samples -> timed phones, or a ValueError saying why not.

A thin pocketsphinx adapter (the CMU en-us model bundled in the PyPI wheel), with the checks that matter here:
every word found in the dictionary, the alignment covering the take, no phone implausibly long.
"""

from __future__ import annotations

import re

import numpy as np

from model_core.corpus.phones import SILENCE, TimedPhone, from_arpabet, merge_silences

MAX_PHONE_S = 0.6  # a speech phone longer than this means the aligner gave up and stretched one
MIN_COVERAGE = 0.9  # the phones must span this share of the take


_SPOKEN = {"0": " zero ", "1": " one ", "2": " two ", "3": " three ", "4": " four ", "5": " five ", "6": " six ",
           "7": " seven ", "8": " eight ", "9": " nine ", "*": " star ", "#": " pound ", "%": " percent "}


def words_of(text: str) -> list[str]:
    """Transcript -> lowercase dictionary words: single digits and phone keys spelt out, annotations in [] or <>
    and punctuation dropped, apostrophes kept. A number of several digits is read digit by digit."""
    text = re.sub(r"\[[^\]]*\]|<[^>]*>", " ", text.lower().replace("’", "'"))
    text = "".join(_SPOKEN.get(c, c) for c in text)
    return [w.strip("'") for w in re.findall(r"[a-z']+", text) if w.strip("'")]


def pocketsphinx_align(samples: np.ndarray, text: str) -> list[TimedPhone]:
    """Two-pass forced alignment with pocketsphinx; ValueError (one sentence) when the result fails a check."""
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise ImportError("Forced alignment needs pocketsphinx: run scripts/setup_corpus_tools "
                          "(or .venv/bin/pip install pocketsphinx).") from exc
    words = words_of(text)
    if not words:
        raise ValueError("the transcript has no words")
    decoder = Decoder(loglevel="FATAL", bestpath=False)
    unknown = [w for w in dict.fromkeys(words) if decoder.lookup_word(w) is None]
    if unknown:
        raise ValueError(f"words missing from the pronouncing dictionary: {', '.join(unknown)}")
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    decoder.set_align_text(" ".join(words))
    for second_pass in (False, True):  # words first, then phones within them
        if second_pass:
            decoder.set_alignment()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
    alignment = decoder.get_alignment()
    if alignment is None:
        raise ValueError("pocketsphinx found no alignment")
    phones = []
    for word in alignment:
        label = None if word.name.startswith(("<", "[", "+")) else re.sub(r"\(\d+\)$", "", word.name)
        for p in word:
            phones.append(TimedPhone(from_arpabet(p.name), p.start / 100, (p.start + p.duration) / 100, label))
    return check_alignment(merge_silences(phones), len(samples) / 16000.0)


def check_alignment(phones: list[TimedPhone], seconds: float) -> list[TimedPhone]:
    """The phones, or a ValueError naming the first thing wrong with them."""
    speech = [p for p in phones if p.symbol != SILENCE]
    if not speech:
        raise ValueError("the alignment holds no speech phones")
    covered = (phones[-1].end - phones[0].start) / seconds
    if covered < MIN_COVERAGE:
        raise ValueError(f"the alignment covers only {100 * covered:.0f} % of the take")
    longest = max(speech, key=lambda p: p.duration)
    if longest.duration > MAX_PHONE_S:
        raise ValueError(f"implausible phone '{longest.symbol}' of {longest.duration * 1000:.0f} ms "
                         f"at {longest.start:.2f} s")
    return phones


def corpus_aligner():
    """The corpus's own aligner (`model_core.corpus.align`: festival's lexicon for missing words, more checks),
    as this module's protocol: phones, or a ValueError with the check's reasons."""
    from model_core.corpus.align import Aligner

    aligner = Aligner()  # one warm decoder for every take

    def run(samples: np.ndarray, text: str) -> list[TimedPhone]:
        result = aligner.align(samples, text)
        if not result.check.ok:
            raise ValueError("; ".join(result.check.reasons))
        return result.phones

    return run


def default_aligner():
    """(aligner, its name for the report): the corpus's aligner where this checkout has it, else the thin
    pocketsphinx adapter above."""
    try:
        return corpus_aligner(), "pocketsphinx forced alignment (model_core.corpus.align)"
    except ImportError:
        return pocketsphinx_align, "pocketsphinx forced alignment (en-us, evaluation.speech_align adapter)"
