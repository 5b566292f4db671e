"""The recordings the scorecard listens to: 16 kHz mono samples with a transcript (or given phone timings).

Built-in sources are real speech only: the held-out 'test' prompts of the Asterisk English sounds and the
public-domain LibriVox clips of Debian's pocketsphinx-testdata. A folder of the user's own recordings can be
added: each `NAME.wav` (or .flac, .ogg, .mp3) with `NAME.txt` (transcript, to be aligned) or
`NAME.phones.json` (a list of {"symbol", "start", "end"} in seconds, used as they are).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.audio_io import load_audio_file
from model_core.corpus.phones import TimedPhone

SOURCES = ("asterisk", "librivox")
SOURCE_LABELS = {"asterisk": "asterisk-test", "librivox": "librivox", "recordings": "recordings"}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")  # Debian's pocketsphinx-testdata


@dataclass(frozen=True)
class Recording:
    name: str
    source: str
    samples: np.ndarray  # 16 kHz mono float32
    text: str | None
    phones: list[TimedPhone] | None = None  # known timings: no alignment needed

    @property
    def seconds(self) -> float:
        return len(self.samples) / 16000.0


def recordings_in(folder: str | Path, limit: int | None = None) -> list[Recording]:
    """The user's own recordings in `folder` (see the module docstring); one sentence if one lacks its text."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"The recordings folder {folder} does not exist.")
    out = []
    for audio in sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)[:limit]:
        stem = audio.with_suffix("")
        timings, transcript = Path(f"{stem}.phones.json"), Path(f"{stem}.txt")
        phones, text = None, None
        if timings.is_file():
            phones = [TimedPhone.from_json(d) for d in json.loads(timings.read_text(encoding="utf-8"))]
        elif transcript.is_file():
            text = transcript.read_text(encoding="utf-8").strip()
        else:
            raise ValueError(f"{audio} has neither {transcript.name} (its transcript) nor {timings.name} beside it.")
        out.append(Recording(audio.stem, "recordings", load_audio_file(audio).samples, text, phones))
    if not out:
        raise ValueError(f"The recordings folder {folder} holds no .wav, .flac, .ogg or .mp3 files.")
    return out


def builtin_recordings(sources: tuple[str, ...] = SOURCES, limit: int | None = None) -> list[Recording]:
    """The held-out Asterisk test prompts and/or the LibriVox clips, at most `limit` of each."""
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"Unknown source {unknown[0]!r}; choose from {', '.join(SOURCES)}.")
    out: list[Recording] = []
    if "asterisk" in sources:
        out += _asterisk_test(limit)
    if "librivox" in sources:
        out += _librivox(limit)
    return out


def _asterisk_test(limit: int | None) -> list[Recording]:
    from model_core.corpus.asterisk import asterisk_prompts

    return [Recording(p.name, "asterisk-test", p.samples, p.text) for p in asterisk_prompts("test")[:limit]]


def _librivox(limit: int | None) -> list[Recording]:
    """The clips listed in the test data's `transcription` file ('<s> words </s> (name)' per line)."""
    if not (LIBRIVOX / "transcription").is_file():
        raise ValueError(f"The LibriVox clips are not in {LIBRIVOX}: apt-get install pocketsphinx-testdata.")
    out = []
    for line in (LIBRIVOX / "transcription").read_text(encoding="utf-8").splitlines()[:limit]:
        match = re.fullmatch(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\((\S+)\)\s*", line)
        if match:
            name = match.group(2)
            out.append(Recording(name, "librivox", load_audio_file(LIBRIVOX / f"{name}.wav").samples,
                                 match.group(1).strip()))
    return out
