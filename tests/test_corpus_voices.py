"""Voices and phone alignment: phone-set mapping, festival timings vs pocketsphinx, alignment checks, the
Asterisk split. The tools are installed by scripts/setup_corpus_tools (scripts/test runs it): a missing tool
fails these tests loudly instead of skipping them, unless JAMBATALK_NO_CORPUS_TOOLS=1 says so on purpose.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from model_core.corpus.phonemap import map_by_features
from model_core.corpus.phones import PHONES, from_arpabet

NO_TOOLS = os.environ.get("JAMBATALK_NO_CORPUS_TOOLS") == "1"
needs_tools = pytest.mark.skipif(NO_TOOLS, reason="JAMBATALK_NO_CORPUS_TOOLS=1")


def test_arpabet_aliases_map_to_the_unified_inventory():
    assert from_arpabet("AX") == "ah" and from_arpabet("axr") == "er" and from_arpabet("EY1") == "ey"
    assert from_arpabet("pau") == "sil" and from_arpabet("+NSN+") == "sil" and from_arpabet("SIL") == "sil"
    with pytest.raises(ValueError):
        from_arpabet("tS")


def test_feature_mapping_without_a_hand_table():
    decl = {"vheight": ["1", "2", "3", "-"], "vfront": ["1", "2", "3", "-"]}

    def vowel(h, f, r, length="s", **kw):
        return map_by_features("v", {"vc": "+", "vlng": length, "vheight": h, "vfront": f, "vrnd": r}, decl, **kw)

    def cons(m, p, v):
        return map_by_features("c", {"vc": "-", "ctype": m, "cplace": p, "cvox": v}, decl)

    assert vowel("1", "1", "-", "l") == "iy" and vowel("1", "3", "+", "l") == "uw"
    assert vowel("2", "1", "-") == "eh" and vowel("2", "3", "+") == "ow" and vowel("3", "3", "-") == "aa"
    # Russian numbers height 1 (low) .. 5 (high)
    ru = {"vheight": ["1", "2", "3", "4", "5", "0"], "vfront": ["1", "2", "3", "4", "5", "0"]}
    assert map_by_features("ii", {"vc": "+", "vlng": "l", "vheight": "5", "vfront": "1", "vrnd": "-"}, ru,
                           height_low_first=True) == "iy"
    assert cons("s", "l", "-") == "p" and cons("n", "l", "+") == "m" and cons("a", "p", "-") == "ch"
    assert cons("f", "b", "+") == "v" and cons("s", "p", "-") == "k"  # a palatal stop looks like k
    assert cons("l", "a", "+") == "l"  # Italian trilled r is listed as a liquid
    assert map_by_features("w", {"vc": "-", "vheight": "1", "vfront": "3", "vrnd": "+"}, decl) == "w"
    assert map_by_features("#", {}, is_silence=True) == "sil"
    assert map_by_features("s~", {"vc": "-"}) == "sh"  # Czech: no place features -> SAMPA fallback
    with pytest.raises(ValueError):
        map_by_features("??", {"vc": "-"})


@needs_tools
def test_festival_english_and_a_foreign_voice_map_onto_the_inventory():
    from model_core.corpus.festival import synthesize

    en = synthesize("Bob made a map.", "kal")
    assert en.audio.dtype == np.float32 and abs(len(en.audio) / 16000 - en.phones[-1].end) < 0.02
    assert [p.symbol for p in en.phones if p.symbol != "sil"] == ["b", "aa", "b", "m", "ey", "d", "ah", "m", "ae", "p"]
    assert en.phones[1].word.lower() == "bob" and en.phones[0].symbol == "sil"
    it = synthesize("Mamma mia, buongiorno.", "it_lp")
    symbols = [p.symbol for p in it.phones]
    assert set(symbols) <= set(PHONES) and symbols[:3] == ["sil", "m", "aa"]
    assert all(b.start == a.end for a, b in zip(it.phones, it.phones[1:], strict=False))


@needs_tools
def test_pocketsphinx_alignment_of_festival_speech_matches_festival_timing():
    from model_core.corpus.align import Aligner, boundary_errors
    from model_core.corpus.festival import synthesize

    aligner = Aligner()
    errors = []
    for text in ("The quick brown fox jumped over the lazy dog.",
                 "Please call Stella and ask her to bring these things with her from the store.",
                 "She sells sea shells by the sea shore."):
        syn = synthesize(text, "kal")
        result = aligner.align(syn.audio, syn.words)
        assert result.check.ok, result.check.reasons
        errors.append(boundary_errors(syn.phones, result.phones))
    e = np.concatenate(errors)
    assert len(e) > 80
    assert np.median(e) <= 0.020, f"median boundary error {np.median(e) * 1000:.1f} ms"


@needs_tools
def test_alignment_checks_reject_wrong_transcripts_and_silence_with_reasons():
    from model_core.corpus.align import Aligner
    from model_core.corpus.festival import synthesize

    aligner = Aligner()
    syn = synthesize("The quick brown fox jumped over the lazy dog.", "kal")
    truncated = aligner.align(syn.audio, "the quick")
    assert not truncated.check.ok and truncated.check.reasons and truncated.phones
    other = aligner.align(syn.audio, "she sells sea shells by the sea shore")
    assert not other.check.ok and other.check.reasons
    silent = aligner.align(np.zeros(32000, np.float32), "hello world")
    assert not silent.check.ok and silent.check.reasons == ["audio is silent"]
    noise = aligner.align(np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32), "hello world")
    assert not noise.check.ok and noise.check.reasons
    oov = aligner.align(syn.audio, "the quick brown fox jumped over the lazy jambatalkdog")
    assert "jambatalkdog" in oov.check.added_words  # festival's letter-to-sound gave it a pronunciation


def test_a_missing_tool_is_one_sentence_naming_what_to_install():
    from model_core.corpus.tools import ToolMissing, require_program

    with pytest.raises(ToolMissing, match=r"^no-such-tts is not installed: run scripts/setup_corpus_tools "
                                          r"\(apt-get install no-such-tts-pkg\)\.$"):
        require_program("no-such-tts", "no-such-tts-pkg")


def test_asterisk_split_is_fixed_and_disjoint():
    from model_core.corpus.asterisk import TEST_PERCENT, split_of

    names = [f"prompt-{i}" for i in range(2000)]
    share = sum(split_of(n) == "test" for n in names) / len(names)
    assert abs(share - TEST_PERCENT / 100) < 0.025
    assert [split_of(n) for n in names] == [split_of(n) for n in names]
    # pinned: a change of the rule would silently leak test prompts into training
    assert split_of("agent-loginok") == "test" and split_of("vm-goodbye") == "train"


@needs_tools
def test_asterisk_prompts_and_librivox_clips():
    from model_core.corpus.align import Aligner
    from model_core.corpus.asterisk import align_recording, asterisk_prompts, librivox_clips

    every = asterisk_prompts("all")
    train, test = asterisk_prompts("train"), asterisk_prompts("test")
    assert len(every) > 500 and {r.name for r in train} | {r.name for r in test} == {r.name for r in every}
    assert not {r.name for r in train} & {r.name for r in test}
    assert 0.12 < len(test) / len(every) < 0.18
    silent = [r for r in every if not r.spoken]
    assert silent and all(r.text[0] in "[<" for r in silent)  # tones, beeps: counted, never aligned
    aligner = Aligner()
    prompt = next(r for r in every if r.name == "agent-loginok")
    audio, result = align_recording(prompt, aligner)
    assert audio.dtype == np.float32 and result.check.ok, result.check.reasons
    assert [w for w in dict.fromkeys(p.word for p in result.phones) if w] == ["agent", "logged", "in"]
    clips = librivox_clips()
    assert len(clips) == 5 and all("tidigits" not in str(c.path) for c in clips)


@needs_tools
def test_flite_voice_is_aligned():
    from model_core.corpus.flite import synthesize

    take = synthesize("Bob bought a big blue map.", "awb")
    assert take.alignment.check.ok, take.alignment.check.reasons
    bilabials = [p for p in take.alignment.phones if p.symbol in ("b", "p", "m")]
    assert len(bilabials) == 7 and abs(len(take.audio) / 16000 - take.alignment.phones[-1].end) < 0.05


def test_sentences_record_their_source_and_are_seeded():
    from model_core.corpus.sentences import generated_english, languages, written

    assert generated_english(5, seed=3) == generated_english(5, seed=3) != generated_english(5, seed=4)
    for lang in languages():
        assert written(lang) and all(s.source and s.language == lang for s in written(lang))
