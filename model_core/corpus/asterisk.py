"""Real recorded speech: the Asterisk English prompts (one speaker, Allison Smith, CC-BY-SA-3.0) and the
public-domain LibriVox clips of pocketsphinx-testdata, with transcripts, aligned by pocketsphinx.

A fixed 15 % of the Asterisk prompts is held out as test data: a prompt is in the test split when the first
8 bytes of SHA-256 of its name, as an integer, mod 100 are below 15. The rule depends on the name only, so it
never changes when prompts are added, removed or read in another order, and no training run can see them.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.corpus.align import Aligner, Alignment
from model_core.corpus.tools import decode_audio, require_path

ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en")
ASTERISK_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
ASTERISK_LICENCE = ("CC-BY-SA-3.0: Asterisk core sounds (English), voice of Allison Smith, "
                    "Copyright Digium, Inc.; attribution required")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
LIBRIVOX_LICENCE = "public domain (LibriVox recording of Jane Austen, Sense and Sensibility)"
TEST_PERCENT = 15


@dataclass(frozen=True)
class Recording:
    """One real recording with its transcript as written and as spoken words."""

    name: str
    text: str  # the transcript as published
    spoken: str  # what is actually said: symbols spelt out, stage directions removed
    path: Path
    source: str  # "asterisk" or "librivox"
    input_format: str | None = None  # ffmpeg -f for headerless files (g722)

    def audio(self) -> np.ndarray:
        """16 kHz mono float32."""
        return decode_audio(self.path, self.input_format)


def split_of(name: str) -> str:
    """'test' for the fixed held-out 15 % of prompt names, else 'train'."""
    h = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return "test" if h % 100 < TEST_PERCENT else "train"


_SYMBOLS = {"#": " pound ", "*": " star ", "&": " and ", "@": " at ", "%": " percent ", "+": " plus "}


def spoken_text(transcript: str) -> str:
    """What is said: [stage directions], <beeps> and (notes) dropped, acronyms spelt, '#' -> pound, '*' -> star."""
    text = re.sub(r"\[[^\]]*\]|<[^>]*>|\((?:note|sound)[^)]*\)", " ", transcript)  # directions, notes
    text = re.sub(r"\b[A-Z]{2,5}\b", lambda m: " ".join(m.group(0).lower()), text)  # PBX, IVR: spelt out
    for k, v in _SYMBOLS.items():
        text = text.replace(k, v)
    return " ".join(text.split())


def _transcripts() -> dict[str, str]:
    require_path(ASTERISK_TRANSCRIPTS, "asterisk-core-sounds-en", "the Asterisk English transcripts")
    out: dict[str, str] = {}
    with gzip.open(ASTERISK_TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(";") or ":" not in line:
                continue
            name, text = line.split(":", 1)
            out[name.strip()] = text.strip()
    return out


def asterisk_prompts(split: str = "all") -> list[Recording]:
    """The Asterisk English prompts with a G.722 (16 kHz) recording and a transcript, sorted by name.

    split: 'train', 'test' (the fixed held-out 15 %) or 'all'. Prompts whose transcript holds no speech
    (tones, '[sound of monkeys]') are included with an empty `spoken`, so callers can count them.
    """
    if split not in ("all", "train", "test"):
        raise ValueError(f"split must be all, train or test, not {split!r}")
    require_path(ASTERISK_SOUNDS, "asterisk-core-sounds-en-g722", "the Asterisk English prompts")
    out = []
    for name, text in sorted(_transcripts().items()):
        path = ASTERISK_SOUNDS / f"{name}.g722"
        if path.is_file() and (split == "all" or split_of(name) == split):
            out.append(Recording(name, text, spoken_text(text), path, "asterisk", "g722"))
    return out


def librivox_clips() -> list[Recording]:
    """The 5 public-domain LibriVox clips of pocketsphinx-testdata (24.7 s). The other folders there are
    skipped on purpose: tidigits is LDC-derived, cards / an4 are CMU test data of unclear provenance."""
    require_path(LIBRIVOX, "pocketsphinx-testdata", "pocketsphinx's LibriVox test clips")
    out = []
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        m = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
        if m and (LIBRIVOX / f"{m.group(2)}.wav").is_file():
            text = " ".join(m.group(1).split())
            out.append(Recording(m.group(2), text, text, LIBRIVOX / f"{m.group(2)}.wav", "librivox"))
    return out


def align_recording(rec: Recording, aligner: Aligner) -> tuple[np.ndarray, Alignment]:
    """Decode and align one recording; a prompt without speech comes back rejected with that reason."""
    audio = rec.audio()
    return audio, aligner.align(audio, rec.spoken)
