"""The Live Link Face CSV layout (what Unreal's LiveLinkFaceImporter and most DCC importers read).

A header of `Timecode`, `BlendShapeCount` and the 52 ARKit channels in PascalCase (then the 9 head and eye
rotation columns, written as 0 here), one row per frame; the timecode is `HH:MM:SS:FF.mmm` (frame FF within the
second at the take's rate, then the sub-frame fraction). Channel names match case-insensitively; a channel the
source lacks is 0. Pure (stdlib + numpy): the extension exports baked curves with it and model_core's
`animate --format arkit-csv` writes model output with it, so both write the same bytes.
"""

from __future__ import annotations

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


def live_link_csv_text(columns: np.ndarray, fps: float) -> str:
    """The CSV text of (T, 52) weights already in `LIVE_LINK_FACE_CHANNELS` order."""
    cols = np.asarray(columns, dtype=np.float32)
    if cols.ndim != 2 or cols.shape[1] != len(LIVE_LINK_FACE_CHANNELS):
        raise ValueError(f"columns must be (frames, {len(LIVE_LINK_FACE_CHANNELS)}); got {cols.shape}.")
    header = ["Timecode", "BlendShapeCount", *LIVE_LINK_FACE_CHANNELS, *LIVE_LINK_FACE_ROTATIONS]
    count = len(LIVE_LINK_FACE_CHANNELS) + len(LIVE_LINK_FACE_ROTATIONS)
    zeros = ",".join(["0"] * len(LIVE_LINK_FACE_ROTATIONS))
    lines = [",".join(header)]
    for k, row in enumerate(cols):
        lines.append(f"{timecode(k, fps)},{count}," + ",".join(f"{v:.6f}" for v in row) + f",{zeros}")
    return "\n".join(lines) + "\n"


def parse_live_link_csv(text: str) -> tuple[list[str], np.ndarray]:
    """(channel names, (T, 52) weights) of a Live Link Face CSV's text (for tests and round trips)."""
    lines = text.splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:] if line]
    channels = header[2: 2 + len(LIVE_LINK_FACE_CHANNELS)]
    values = np.array([[float(v) for v in r[2: 2 + len(channels)]] for r in rows], dtype=np.float32)
    return channels, values.reshape(len(rows), len(channels))
