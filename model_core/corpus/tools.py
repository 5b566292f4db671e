"""External tools the corpus needs (festival, flite, ffmpeg, pocketsphinx): one clear error when one is missing,
and decoding any audio file to the corpus format (16 kHz mono float32) through ffmpeg.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
SETUP = "scripts/setup_corpus_tools"


class ToolMissing(RuntimeError):
    """A program or package corpus building needs is not installed; the message says what to install."""


def require_program(program: str, packages: str) -> str:
    """The program's path, or ToolMissing naming the Debian packages that provide it."""
    path = shutil.which(program)
    if path is None:
        raise ToolMissing(f"{program} is not installed: run {SETUP} (apt-get install {packages}).")
    return path


def require_path(path: str | Path, packages: str, what: str) -> Path:
    """A file or folder a Debian package installs, or ToolMissing naming the package."""
    p = Path(path)
    if not p.exists():
        raise ToolMissing(f"{what} is not installed ({p} is missing): run {SETUP} (apt-get install {packages}).")
    return p


def require_pocketsphinx():
    """The pocketsphinx module (PyPI wheel with the en-us model and cmudict), or ToolMissing."""
    try:
        import pocketsphinx
    except ImportError as e:
        raise ToolMissing(f"pocketsphinx is not installed: run {SETUP} "
                          "(pip install pocketsphinx==5.1.1, the project's 'corpus' extra).") from e
    return pocketsphinx


def decode_audio(path: str | Path, input_format: str | None = None, timeout: float = 120.0) -> np.ndarray:
    """Any file ffmpeg reads -> 16 kHz mono float32 in [-1, 1] (ffmpeg resamples and downmixes)."""
    ffmpeg = require_program("ffmpeg", "ffmpeg")
    cmd = [ffmpeg, "-nostdin", "-v", "error"]
    if input_format:
        cmd += ["-f", input_format]
    cmd += ["-i", str(path), "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]
    out = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"ffmpeg could not decode {path}: {out.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(out.stdout, dtype="<i2").astype(np.float32) / 32768.0


def to_pcm16(audio: np.ndarray) -> bytes:
    """float audio in [-1, 1] -> little-endian int16 bytes (what pocketsphinx reads)."""
    return (np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
