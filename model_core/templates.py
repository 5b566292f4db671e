"""Reading a neutral mesh (the vertices offsets are added to) from .npy or Wavefront .obj files."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_template(path: str | Path, vertex_count: int | None = None) -> np.ndarray:
    """(V, 3) float32 vertices from a .npy array or the `v` lines of an .obj (order kept: it is sacred)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Template mesh {path} does not exist.")
    if path.suffix.lower() == ".npy":
        verts = np.load(path, allow_pickle=False)
    elif path.suffix.lower() == ".obj":
        rows = []
        with path.open("r", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("v "):
                    rows.append([float(v) for v in line.split()[1:4]])
        verts = np.asarray(rows, dtype=np.float32)
    else:
        raise ValueError(f"Template mesh {path} must be a .npy or .obj file.")
    verts = np.asarray(verts, dtype=np.float32).reshape(-1, 3)
    if vertex_count is not None and verts.shape[0] != vertex_count:
        raise ValueError(f"Template mesh {path} has {verts.shape[0]} vertices; the model animates {vertex_count}.")
    if not np.isfinite(verts).all():
        raise ValueError(f"Template mesh {path} contains NaN or infinite coordinates.")
    return verts
