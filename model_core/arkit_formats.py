"""ARKit blendshape weights as files game pipelines import: the Live Link Face CSV layout and a plain JSON.

Live Link Face CSV (what Unreal's LiveLinkFaceImporter and most DCC importers read): a header of `Timecode`,
`BlendShapeCount` and the 52 ARKit channels in PascalCase (then the 9 head and eye rotation columns, written
as 0 here), one row per frame; the timecode is `HH:MM:SS:FF.mmm` (frame FF within the second at the take's
rate, then the sub-frame fraction). Channel names match case-insensitively; a channel the model lacks is 0.
No torch: the worker and other front ends can use this too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

LIVE_LINK_FACE_CHANNELS = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel",
    "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft",
    "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight",
    "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft",
    "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)
LIVE_LINK_FACE_ROTATIONS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                            "RightEyeYaw", "RightEyePitch", "RightEyeRoll")


def arkit_columns(weights: np.ndarray, names: list[str]) -> np.ndarray:
    """(T, K) weights named `names` -> (T, 52) in Live Link Face order (case-insensitive; absent -> 0)."""
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] != len(names):
        raise ValueError(f"weights must be (frames, {len(names)}); got {w.shape}.")
    index = {n.lower(): i for i, n in enumerate(names)}
    matched = [index.get(c.lower()) for c in LIVE_LINK_FACE_CHANNELS]
    if all(i is None for i in matched):
        raise ValueError("None of the model's channels has an ARKit name; ARKit CSV/JSON need an ARKit model.")
    out = np.zeros((len(w), len(LIVE_LINK_FACE_CHANNELS)), dtype=np.float32)
    for j, i in enumerate(matched):
        if i is not None:
            out[:, j] = w[:, i]
    return out


def timecode(frame: int, fps: float) -> str:
    """Frame k at `fps` -> HH:MM:SS:FF.mmm (FF: whole frames within the second, .mmm: the fraction of one)."""
    seconds = frame / fps
    whole = int(np.floor(seconds + 1e-9))
    within = (seconds - whole) * fps
    ff = int(np.floor(within + 1e-6))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}:{ff:02d}.{int(round((within - ff) * 1000)) % 1000:03d}"


def _atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)
    return path


def write_live_link_csv(path: str | Path, weights: np.ndarray, names: list[str], fps: float) -> Path:
    cols = arkit_columns(weights, names)
    header = ["Timecode", "BlendShapeCount", *LIVE_LINK_FACE_CHANNELS, *LIVE_LINK_FACE_ROTATIONS]
    count = len(LIVE_LINK_FACE_CHANNELS) + len(LIVE_LINK_FACE_ROTATIONS)
    zeros = ",".join(["0"] * len(LIVE_LINK_FACE_ROTATIONS))
    lines = [",".join(header)]
    for k, row in enumerate(cols):
        lines.append(f"{timecode(k, fps)},{count}," + ",".join(f"{v:.6f}" for v in row) + f",{zeros}")
    return _atomic_write(Path(path), "\n".join(lines) + "\n")


def write_arkit_json(path: str | Path, weights: np.ndarray, names: list[str], fps: float, source: str = "") -> Path:
    cols = arkit_columns(weights, names)
    arkit = [c[0].lower() + c[1:] for c in LIVE_LINK_FACE_CHANNELS]  # Apple's camelCase names
    data = {"format": "arkit-blendshapes", "version": 1, "fps": fps, "frames": int(len(cols)),
            "frame_time": "frame k shows time k / fps seconds from the start of the audio", "source": source,
            "names": arkit, "weights": [[round(float(v), 6) for v in row] for row in cols]}
    return _atomic_write(Path(path), json.dumps(data, separators=(",", ":")) + "\n")


def read_live_link_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(channel names, (T, 52) weights) of a Live Link Face CSV (for tests and round trips)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:] if line]
    channels = header[2: 2 + len(LIVE_LINK_FACE_CHANNELS)]
    values = np.array([[float(v) for v in r[2: 2 + len(channels)]] for r in rows], dtype=np.float32)
    return channels, values.reshape(len(rows), len(channels))
