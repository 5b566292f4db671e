"""The recordings the scorecard listens to: 16 kHz mono samples with a transcript (or given phone timings).

Built-in sources are real speech only: the held-out 'test' prompts of the Asterisk English sounds and the
public-domain LibriVox clips of Debian's pocketsphinx-testdata. A folder of the user's own recordings can be
added: each `NAME.wav` (or .flac, .ogg, .mp3) with `NAME.txt` (transcript, to be aligned) or
`NAME.phones.json` (a list of {"symbol", "start", "end"} in seconds, used as they are).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.audio_io import load_audio_file
from model_core.corpus.phones import TimedPhone

SOURCES = ("asterisk", "librivox")
SOURCE_LABELS = {"asterisk": "asterisk-test", "librivox": "librivox", "recordings": "recordings"}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
ASTERISK_SOUNDS = Path("/usr/share/asterisk/sounds/en")  # asterisk-core-sounds-en-g722 (16 kHz G.722)
ASTERISK_TEXT = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
TEST_PERCENT = 15
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
    """The held-out Asterisk test prompts and/or the LibriVox clips, at most `limit` of each.

    Read by the corpus's own `model_core.corpus.asterisk` where the checkout has it (so the test split is the
    one no training run sees), else by the readers below, which follow the same rules.
    """
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise ValueError(f"Unknown source {unknown[0]!r}; choose from {', '.join(SOURCES)}.")
    try:
        from model_core.corpus import asterisk
    except ImportError:
        asterisk = None
    out: list[Recording] = []
    if "asterisk" in sources:
        out += _asterisk_test(limit) if asterisk is None else _converted(asterisk.asterisk_prompts("test"), limit)
    if "librivox" in sources:
        out += _librivox(limit) if asterisk is None else _converted(asterisk.librivox_clips(), limit)
    return out


def _converted(recordings: list, limit: int | None) -> list[Recording]:
    """The corpus's recordings (decoded on demand, transcript as spoken) as ours."""
    return [Recording(r.name, SOURCE_LABELS[r.source] if r.source != "asterisk" else "asterisk-test", r.audio(),
                      r.spoken) for r in recordings[:limit]]


def asterisk_test_names(names: list[str]) -> list[str]:
    """The held-out 15 % (the corpus's rule): the first 8 bytes of the name's SHA-256 are below 15 modulo 100."""
    return [n for n in names if int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], "big") % 100 < TEST_PERCENT]


def asterisk_transcripts() -> dict[str, str]:
    """name (e.g. 'vm-review', 'digits/1') -> spoken text; non-speech ('[beep]', '<beep decending>') left out."""
    if not ASTERISK_TEXT.is_file():
        raise ValueError(f"The Asterisk transcripts are not at {ASTERISK_TEXT}: "
                         "apt-get install asterisk-core-sounds-en.")
    out = {}
    for line in gzip.decompress(ASTERISK_TEXT.read_bytes()).decode("utf-8", "replace").splitlines():
        name, sep, text = line.partition(":")
        if sep and not line.startswith(";") and text.strip() and not text.strip().startswith(("[", "<")):
            out[name.strip()] = text.strip()
    return out


def decode_g722(path: Path) -> np.ndarray:
    """16 kHz mono float32 samples of a G.722 file, decoded by ffmpeg."""
    if shutil.which("ffmpeg") is None:
        raise ValueError("Decoding the Asterisk prompts needs ffmpeg: apt-get install ffmpeg.")
    run = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "g722", "-i", str(path), "-ac", "1",
                          "-ar", "16000", "-f", "f32le", "-"], capture_output=True, check=False)
    if run.returncode != 0:
        raise ValueError(f"ffmpeg could not decode {path}: {run.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(run.stdout, dtype="<f4").copy()


def _asterisk_test(limit: int | None) -> list[Recording]:
    if not ASTERISK_SOUNDS.is_dir():
        raise ValueError(f"The Asterisk prompts are not in {ASTERISK_SOUNDS}: "
                         "apt-get install asterisk-core-sounds-en-g722.")
    texts = asterisk_transcripts()
    names = sorted(n for n in texts if (ASTERISK_SOUNDS / f"{n}.g722").is_file())
    return [Recording(n, "asterisk-test", decode_g722(ASTERISK_SOUNDS / f"{n}.g722"), texts[n])
            for n in asterisk_test_names(names)[:limit]]


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
