"""Writers whose bytes depend only on their input: no timestamps, no pickle, fixed number formats.

`np.savez` stamps the current time into its zip entries, so the same corpus would differ run to run;
`write_npz` writes the same arrays with a fixed 1980-01-01 date instead.
"""

from __future__ import annotations

import io
import json
import wave
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Mono 16-bit PCM WAV (what VOCASET-style loaders and every audio tool read)."""
    pcm = np.round(np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())


def write_npy(path: str | Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz that `np.load(..., allow_pickle=False)` reads, byte-identical for identical input."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, buf.getvalue())


def write_json(path: str | Path, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8", newline="\n")


def write_indices(path: str | Path, indices: np.ndarray) -> None:
    """Comma-separated vertex indices on one line, as FaceDiffuser's region files."""
    Path(path).write_text(",".join(str(int(i)) for i in indices) + "\n", encoding="utf-8", newline="\n")
