"""Geometric measures on corpus (or predicted) vertices: lip gap, jaw opening, eye opening.

They take the corpus `meta.json` (or its folder, or the loaded dict) for the landmark vertex indices, and
vertices as (V, 3), (T, V, 3) or VOCASET-style flattened (T, V*3) absolute positions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

Meta = dict[str, Any]


def load_meta(meta: Meta | str | Path) -> Meta:
    """The corpus metadata from a dict, a corpus folder or a meta.json path."""
    if isinstance(meta, dict):
        return meta
    path = Path(meta)
    if path.is_dir():
        path = path / "meta.json"
    return json.loads(path.read_text(encoding="utf-8"))


def as_frames(vertices: np.ndarray, vertex_count: int) -> np.ndarray:
    """(T, V, 3) view of (V, 3), (T, V, 3) or (T, V*3) vertices."""
    v = np.asarray(vertices)
    if v.ndim == 2 and v.shape == (vertex_count, 3):
        v = v[None]
    v = v.reshape(v.shape[0], -1, 3) if v.ndim == 2 else v
    if v.ndim != 3 or v.shape[1:] != (vertex_count, 3):
        raise ValueError(f"Expected vertices for a {vertex_count}-vertex mesh, got shape {np.shape(vertices)}.")
    return v


def lip_gap(vertices: np.ndarray, meta: Meta | str | Path) -> np.ndarray:
    """(T,) vertical distance in metres from the lower to the upper lip at the mouth centre (0: closed).

    Slightly negative values mean the lower lip rose above the upper lip's edge (e.g. tucked under it for f/v).
    """
    m = load_meta(meta)
    v = as_frames(vertices, m["vertex_count"])
    marks = m["landmarks"]
    return v[:, marks["lip_upper"], 1] - v[:, marks["lip_lower"], 1]


def lip_gaps(vertices: np.ndarray, meta: Meta | str | Path) -> np.ndarray:
    """(T, P) lip gaps along the whole mouth seam, corner to corner (P = meta['lip_pairs'])."""
    m = load_meta(meta)
    v = as_frames(vertices, m["vertex_count"])
    pairs = np.asarray(m["lip_pairs"], dtype=np.int64)
    return v[:, pairs[:, 0], 1] - v[:, pairs[:, 1], 1]


def jaw_opening(vertices: np.ndarray, meta: Meta | str | Path, template: np.ndarray | None = None) -> np.ndarray:
    """(T,) chin-to-nose-tip distance in metres; minus the template's when one is given (0 at rest).

    The nose tip never moves, so this grows with the jaw and nothing else on the lower face.
    """
    m = load_meta(meta)
    v = as_frames(vertices, m["vertex_count"])
    marks = m["landmarks"]
    d = np.linalg.norm(v[:, marks["chin"]] - v[:, marks["nose_tip"]], axis=-1)
    if template is not None:
        t = as_frames(template, m["vertex_count"])[0]
        d = d - float(np.linalg.norm(t[marks["chin"]] - t[marks["nose_tip"]]))
    return d


def eye_opening(vertices: np.ndarray, meta: Meta | str | Path, side: str = "left") -> np.ndarray:
    """(T,) distance in metres between the upper and lower lid at the eye's centre (about 0 when blinking)."""
    m = load_meta(meta)
    v = as_frames(vertices, m["vertex_count"])
    marks = m["landmarks"]
    return np.linalg.norm(v[:, marks[f"eye_{side}_upper"]] - v[:, marks[f"eye_{side}_lower"]], axis=-1)
