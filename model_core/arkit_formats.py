"""ARKit blendshape weights as files game pipelines import: the Live Link Face CSV layout and a plain JSON.

Live Link Face CSV (what Unreal's LiveLinkFaceImporter and most DCC importers read): a header of `Timecode`,
`BlendShapeCount` and the 52 ARKit channels in PascalCase (then the 9 head and eye rotation columns, written
as 0 here), one row per frame; the timecode is `HH:MM:SS:FF.mmm` (frame FF within the second at the take's
rate, then the sub-frame fraction). Channel names match case-insensitively; a channel the model lacks is 0.
No torch: the worker and other front ends can use this too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jambatalk_blender.core.livelink import (  # one writer for the CLI and the extension
    LIVE_LINK_FACE_CHANNELS,
    arkit_columns,
    live_link_csv_text,
    parse_live_link_csv,
)
from model_core.mesh_cache import atomic_open


def _atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        fh.write(text.encode("utf-8"))
    return path


def write_live_link_csv(path: str | Path, weights: np.ndarray, names: list[str], fps: float) -> Path:
    return _atomic_write(Path(path), live_link_csv_text(arkit_columns(weights, names), fps))


def write_arkit_json(path: str | Path, weights: np.ndarray, names: list[str], fps: float, source: str = "") -> Path:
    cols = arkit_columns(weights, names)
    arkit = [c[0].lower() + c[1:] for c in LIVE_LINK_FACE_CHANNELS]  # Apple's camelCase names
    data = {"format": "arkit-blendshapes", "version": 1, "fps": fps, "frames": int(len(cols)),
            "frame_time": "frame k shows time k / fps seconds from the start of the audio", "source": source,
            "names": arkit, "weights": [[round(float(v), 6) for v in row] for row in cols]}
    return _atomic_write(Path(path), json.dumps(data, separators=(",", ":")) + "\n")


def read_live_link_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(channel names, (T, 52) weights) of a Live Link Face CSV (for tests and round trips)."""
    return parse_live_link_csv(Path(path).read_text(encoding="utf-8"))
