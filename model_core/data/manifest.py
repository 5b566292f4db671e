"""`dataset.toml`: the small manifest that describes a studio's own captures (the plain layout).

    name = "studio-2025"          # shown in reports and stored in checkpoints as the topology
    fps = 60                      # frame rate of the files in vertices_npy/
    stride = 2                    # optional: keep every n-th frame (60 -> 30 fps); default 1
    units = "metres"              # optional: the unit of the vertex positions (for reports)
    lips = "regions/lips.txt"     # optional: default mask files (paths relative to this folder)
    upper_face = "regions/upper_face.txt"
    [scale]                       # optional: divide metrics by these for the "scaled" columns
    lve = 1e-5
    fdd = 1e-7
    mve = 1e-3
    [splits.train]                # subjects (and an inclusive sentence range) or explicit takes
    subjects = ["alice", "bob"]
    sentences = [1, 40]
    [splits.val]
    takes = ["carol_take01", "carol_take02"]
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

MANIFEST = "dataset.toml"
_KEYS = {"name", "fps", "stride", "units", "lips", "upper_face", "scale", "splits"}


def read_manifest(root: Path) -> dict[str, Any]:
    """The parsed and checked manifest of a plain-layout folder."""
    path = root / MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{root} has no {MANIFEST}; a plain-layout dataset needs one (docs/training.md).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}.") from exc
    unknown = set(data) - _KEYS
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}.")
    fps = data.get("fps")
    if not isinstance(fps, int | float) or isinstance(fps, bool) or fps <= 0:
        raise ValueError(f"{path} must declare the frame rate of vertices_npy/, e.g. fps = 30.")
    stride = data.get("stride", 1)
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"{path}: stride must be a positive integer (got {stride!r}).")
    scale = data.get("scale", {})
    if not isinstance(scale, dict) or set(scale) - {"lve", "fdd", "mve"}:
        raise ValueError(f"{path}: [scale] may only set lve, fdd and mve.")
    return data
