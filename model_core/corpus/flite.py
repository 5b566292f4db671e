"""flite voices (kal, kal16, awb, rms, slt; Debian flite, BSD-like): text -> 16 kHz audio, phones by alignment.

flite prints no timings we can trust, so the phones come from pocketsphinx forced alignment against the words
festival's front end makes of the text; the alignment's check travels with the take (rejected ones included).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_core.corpus.align import Aligner, Alignment, transcript_words
from model_core.corpus.tools import ToolMissing, decode_audio, require_program

FLITE_VOICES = {
    "kal": "US male diphone (8 kHz)", "kal16": "US male diphone", "awb": "Scottish male (CMU ARCTIC)",
    "rms": "US male (CMU ARCTIC)", "slt": "US female (CMU ARCTIC)",
}
FLITE_LICENCE = "BSD-like (CMU / Edinburgh), Debian package flite"


@dataclass
class FliteTake:
    """Audio from a flite voice and its forced alignment."""

    voice: str
    text: str
    audio: np.ndarray
    alignment: Alignment


def speak(text: str, voice: str = "kal16", timeout: float = 60.0) -> np.ndarray:
    """flite audio for `text`, resampled to 16 kHz mono float32 (kal speaks at 8 kHz)."""
    if voice not in FLITE_VOICES:
        raise KeyError(f"unknown flite voice '{voice}'; known: {', '.join(FLITE_VOICES)}")
    flite = require_program("flite", "flite")
    with tempfile.TemporaryDirectory(prefix="jt_flite_") as tmp:
        wav = Path(tmp) / "out.wav"
        out = subprocess.run([flite, "-voice", voice, "-t", text, "-o", str(wav)], capture_output=True,
                             timeout=timeout)
        if out.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"flite {voice} failed: {out.stderr.decode(errors='replace')[-300:]}")
        return decode_audio(wav)


def synthesize(text: str, voice: str = "kal16", aligner: Aligner | None = None) -> FliteTake:
    """Speak with flite, then force-align: phones of the unified inventory with their check."""
    audio = speak(text, voice)
    try:
        from model_core.corpus.festival import normalised_words

        words = normalised_words(text)  # same number/abbreviation expansion flite's front end does
    except ToolMissing:
        words = transcript_words(text)
    return FliteTake(voice, text, audio, (aligner or Aligner()).align(audio, words))
