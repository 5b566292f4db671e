"""festival voices with exact phone timings: text -> 16 kHz mono float32 audio + list[TimedPhone].

festival runs as `festival -b script.scm`; the script synthesises, resamples to 16 kHz, saves the wave and
prints one line per segment (name, end time, word, silence flag, the phone set's articulatory features).
English voices speak ARPAbet-like phones (mapped by name); other languages map by features (phonemap.py).
Timings are festival's own segment ends, so they are exact for the audio festival writes.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model_core.corpus.phonemap import map_by_features
from model_core.corpus.phones import SILENCE, TimedPhone, from_arpabet, merge_silences
from model_core.corpus.tools import SAMPLE_RATE, ToolMissing, require_path, require_program

VOICE_ROOT = Path("/usr/share/festival/voices")


@dataclass(frozen=True)
class FestivalVoice:
    """A festival voice: how to select it, where it comes from and under which licence."""

    name: str
    language: str  # ISO 639-1
    command: str  # the Scheme function selecting it
    package: str  # Debian package
    licence: str  # as read in /usr/share/doc/<package>/copyright
    folder: str  # under /usr/share/festival/voices: proves the package is installed
    arpabet: bool = False  # phones are ARPAbet-like names (English): map by name, not by features
    height_low_first: bool = False  # the phone set numbers vowel height from low to high (Russian)
    encoding: str = "utf-8"  # how festival's front end for this language expects text bytes
    ignore_voicing: bool = False  # the phone set's cvox values are wrong (Catalan): leave voicing out
    note: str = ""


VOICES: dict[str, FestivalVoice] = {v.name: v for v in (
    FestivalVoice("kal", "en", "voice_kal_diphone", "festvox-kallpc16k", "free, BSD-style (CSTR/CMU)",
                  "english/kal_diphone", arpabet=True, note="US male diphone voice"),
    FestivalVoice("ked", "en", "voice_ked_diphone", "festvox-kdlpc16k", "free, BSD-style (CSTR/CMU)",
                  "english/ked_diphone", arpabet=True, note="US male diphone voice"),
    FestivalVoice("slt", "en", "voice_cmu_us_slt_arctic_hts", "festvox-us-slt-hts", "BSD-3-clause-like (CMU ARCTIC)",
                  "us/cmu_us_slt_arctic_hts", arpabet=True, note="US female HTS voice"),
    FestivalVoice("it_lp", "it", "voice_lp_diphone", "festvox-italp16k", "GPL-2+", "italian/lp_diphone",
                  encoding="latin-1", note="Italian female diphone voice"),
    FestivalVoice("it_pc", "it", "voice_pc_diphone", "festvox-itapc16k", "GPL-2+", "italian/pc_diphone",
                  encoding="latin-1", note="Italian male diphone voice"),
    FestivalVoice("cs_ph", "cs", "voice_czech_ph", "festvox-czech-ph", "GPL-2+", "czech/czech_ph",
                  encoding="iso-8859-2", note="Czech male diphone voice; phone set has no place features"),
    FestivalVoice("fi_lj", "fi", "voice_suo_fi_lj_diphone", "festvox-suopuhe-lj", "LGPL-2.1+",
                  "finnish/suo_fi_lj_diphone", encoding="latin-1", note="Finnish female diphone voice"),
    FestivalVoice("fi_mv", "fi", "voice_hy_fi_mv_diphone", "festvox-suopuhe-mv", "LGPL-2.1+",
                  "finnish/hy_fi_mv_diphone", encoding="latin-1", note="Finnish male diphone voice"),
    FestivalVoice("ru", "ru", "voice_msu_ru_nsh_clunits", "festvox-ru", "GPL-3 (see copyright)",
                  "russian/msu_ru_nsh_clunits", height_low_first=True, note="Russian male unit-selection voice"),
    FestivalVoice("ca_ona", "ca", "voice_upc_ca_ona_hts", "festvox-ca-ona-hts", "LGPL-2.1+",
                  "catalan/upc_ca_ona_hts", encoding="latin-1", ignore_voicing=True, height_low_first=True,
                  note="Catalan female HTS voice; its phone set's voicing values are wrong"),
)}
ENGLISH_VOICES = ("kal", "ked", "slt")

_FEATURES = ("vc", "vlng", "vheight", "vfront", "vrnd", "ctype", "cplace", "cvox")

# Prints, per segment: SEG name end word is-silence feat=value..., only the features the phone set declares
# (asking for an undeclared one aborts festival). DECL lines give each feature's declared values.
_REPORT = """
(set! jt_decl (cadr (assoc 'features (PhoneSet.description))))
(set! jt_names (mapcar car jt_decl))
(mapcar (lambda (d) (format t "DECL\\t%s\\t%l\\n" (car d) (cadr d))) jt_decl)
(mapcar
  (lambda (s)
    (format t "SEG\\t%s\\t%f\\t%s\\t%s" (item.name s) (item.feat s "end")
            (item.feat s "R:SylStructure.parent.parent.name") (if (phone_is_silence (item.name s)) "1" "0"))
    (mapcar (lambda (f) (if (member f jt_names) (format t "\\t%s=%s" f (item.feat s (format nil "ph_%s" f)))))
            '(vc vlng vheight vfront vrnd ctype cplace cvox))
    (format t "\\n"))
  (utt.relation.items u 'Segment))
"""


@dataclass
class FestivalSegment:
    """festival's own view of one segment, kept for inspection and for the mapping tests."""

    name: str
    end: float
    word: str | None
    silence: bool
    features: dict[str, str] = field(default_factory=dict)


@dataclass
class Synthesis:
    """A synthesised sentence: audio at 16 kHz, unified phones with exact timings, festival's segments."""

    voice: str
    text: str
    audio: np.ndarray
    phones: list[TimedPhone]
    segments: list[FestivalSegment]
    sample_rate: int = SAMPLE_RATE

    @property
    def words(self) -> list[str]:
        """The words festival spoke (after its text normalisation), in order."""
        out: list[str] = []
        last = None
        for s in self.segments:
            if s.word and s.word != last:
                out.append(s.word)
            last = s.word
        return out


def scheme_string(text: str) -> str:
    """A Python string as a Scheme string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def require_voice(name: str) -> FestivalVoice:
    """The registry entry of an installed voice, or ToolMissing naming the package (KeyError if unknown)."""
    if name not in VOICES:
        raise KeyError(f"unknown festival voice '{name}'; known: {', '.join(VOICES)}")
    voice = VOICES[name]
    require_program("festival", f"festival {voice.package}")
    require_path(VOICE_ROOT / voice.folder, voice.package, f"the festival voice {name}")
    return voice


def run_festival(script: str, encoding: str = "utf-8", timeout: float = 120.0) -> str:
    """Run a Scheme script in batch mode; its stdout. Raises RuntimeError with festival's stderr on failure."""
    festival = require_program("festival", "festival")
    with tempfile.NamedTemporaryFile("wb", suffix=".scm", delete=False) as f:
        f.write(script.encode(encoding, errors="replace"))
        path = f.name
    try:
        out = subprocess.run([festival, "-b", path], capture_output=True, timeout=timeout)
    finally:
        Path(path).unlink(missing_ok=True)
    stdout = out.stdout.decode(encoding, errors="replace")
    if out.returncode != 0 or "SIOD ERROR" in stdout or "SIOD ERROR" in out.stderr.decode(errors="replace"):
        raise RuntimeError(f"festival failed: {(out.stderr or out.stdout).decode(encoding, errors='replace')[-500:]}")
    return stdout


def _parse(stdout: str, encoding: str) -> tuple[list[FestivalSegment], dict[str, list[str]]]:
    segments: list[FestivalSegment] = []
    declared: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        parts = line.split("\t")
        if parts[0] == "DECL" and len(parts) == 3:
            declared[parts[1]] = parts[2].strip("()").split()
        elif parts[0] == "SEG" and len(parts) >= 5:
            feats = dict(p.split("=", 1) for p in parts[5:] if "=" in p)
            word = parts[3] if parts[3] not in ("0", "") else None
            segments.append(FestivalSegment(parts[1], float(parts[2]), word, parts[4] == "1", feats))
    return segments, declared


def unified_symbol(segment: FestivalSegment, voice: FestivalVoice, declared: dict[str, list[str]]) -> str:
    """festival segment -> unified symbol: ARPAbet names for English voices, articulatory features otherwise."""
    if segment.silence:
        return SILENCE
    if voice.arpabet:
        return from_arpabet(segment.name)
    feats = {k: v for k, v in segment.features.items() if not (voice.ignore_voicing and k == "cvox")}
    return map_by_features(segment.name, feats, declared, height_low_first=voice.height_low_first)


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getframerate() != SAMPLE_RATE:
            raise RuntimeError(f"festival wrote {w.getframerate()} Hz / {8 * w.getsampwidth()} bit, not 16 kHz int16")
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
    return (x.mean(axis=1) / 32768.0).astype(np.float32)


def synthesize(text: str, voice: str = "kal", *, timeout: float = 120.0) -> Synthesis:
    """Speak `text` with a festival voice: 16 kHz mono float32 audio and its exact unified phones with words."""
    v = require_voice(voice)
    with tempfile.TemporaryDirectory(prefix="jt_festival_") as tmp:
        wav = Path(tmp) / "out.wav"
        script = (f"({v.command})\n(set! u (Utterance Text {scheme_string(text)}))\n(utt.synth u)\n"
                  f"(utt.wave.resample u {SAMPLE_RATE})\n(utt.save.wave u {scheme_string(str(wav))} 'riff)\n"
                  + _REPORT)
        stdout = run_festival(script, v.encoding, timeout)
        if not wav.is_file():
            raise RuntimeError(f"festival wrote no audio for voice {voice}: {stdout[-300:]}")
        audio = _read_wav(wav)
    segments, declared = _parse(stdout, v.encoding)
    if not segments:
        raise RuntimeError(f"festival voice {voice} produced no segments for {text!r}")
    phones: list[TimedPhone] = []
    start = 0.0
    total = len(audio) / SAMPLE_RATE
    for s in segments:
        end = min(s.end, total)
        if end > start:  # festival may emit zero-length segments (e.g. an utterance-final pause)
            phones.append(TimedPhone(unified_symbol(s, v, declared), round(start, 5), round(end, 5), s.word))
        start = max(start, end)
    if phones and phones[-1].end < total:  # the wave can outlast the last segment by a few samples
        phones.append(TimedPhone(SILENCE, phones[-1].end, total))
    return Synthesis(voice, text, audio, merge_silences(phones), segments)


def lexicon_arpabet(words: list[str]) -> dict[str, list[str] | None]:
    """ARPAbet pronunciations (uppercase, no stress) from festival's CMU lexicon, letter-to-sound for unknown words.

    Used to add words cmudict lacks to the aligner's dictionary. A word festival cannot pronounce maps to None.
    """
    if not words:
        return {}
    lines = ["(voice_kal_diphone)"]
    for w in words:
        # letter-to-sound aborts on an apostrophe; "waldo's" sounds like "waldos"
        bare = scheme_string(w.replace("'", ""))
        lines.append(f"(set! e (lex.lookup {bare} nil))\n(format t \"LEX\\t%s\" {scheme_string(w)})\n"
                     "(mapcar (lambda (syl) (mapcar (lambda (p) (format t \"\\t%s\" p)) (car syl))) (car (cddr e)))\n"
                     "(format t \"\\n\")")
    try:
        require_voice("kal")
        stdout = run_festival("\n".join(lines))
    except (ToolMissing, RuntimeError):
        return dict.fromkeys(words)
    out: dict[str, list[str] | None] = dict.fromkeys(words)
    for line in stdout.splitlines():
        parts = line.split("\t")
        if parts[0] == "LEX" and len(parts) > 2:
            try:
                out[parts[1]] = [from_arpabet(p).upper() for p in parts[2:]]
            except ValueError:
                out[parts[1]] = None
    return out


def normalised_words(text: str, voice: str = "kal") -> list[str]:
    """The words festival's English front end makes of `text` ("Mr." -> mister, "42" -> forty two), lowercase."""
    v = require_voice(voice)
    script = (f"({v.command})\n(set! u (Utterance Text {scheme_string(text)}))\n(Initialize u)\n(Text u)\n"
              "(Token_POS u)\n(Token u)\n(mapcar (lambda (w) (format t \"WORD\\t%s\\n\" (item.name w)))"
              " (utt.relation.items u 'Word))\n")
    stdout = run_festival(script, v.encoding)
    words = [line.split("\t", 1)[1].lower() for line in stdout.splitlines() if line.startswith("WORD\t")]
    return [w for w in words if any(c.isalnum() for c in w)]
