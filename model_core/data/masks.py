"""Vertex index files (lip and upper-face masks) that the user supplies, read without pickle.

Accepted: text files of integers separated by commas and/or whitespace (FaceDiffuser's and CodeTalker's
region files, our synthetic corpus's `regions/*.txt`) and integer `.npy` arrays. The FLAME masks ship as a
pickle: convert them once with `scripts/prepare_vocaset --flame-masks` (the only place that unpickles).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LIPS_FILE = "regions/lips.txt"
UPPER_FACE_FILE = "regions/upper_face.txt"
SOURCES_FILE = "regions/sources.json"

_CONVERT_HINT = ("convert a pickled mask (e.g. FLAME_masks.pkl) once with "
                 "`scripts/prepare_vocaset --flame-masks FLAME_masks.pkl OUT`")


class MaskError(ValueError):
    """A vertex mask that is missing or unusable; the message says which file and what to do."""


def read_indices(path: str | Path, vertex_count: int | None = None, what: str = "vertex indices") -> np.ndarray:
    """(N,) int64 vertex indices from a text or .npy file, order and duplicates kept."""
    path = Path(path)
    if not path.is_file():
        raise MaskError(f"The {what} file {path} does not exist.")
    if path.suffix.lower() in (".pkl", ".pickle"):
        raise MaskError(f"{path} is a pickle, which training and evaluation never load; {_CONVERT_HINT}.")
    if path.suffix.lower() == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise MaskError(f"{path} is not a plain integer .npy array ({exc}).") from exc
        if values.dtype.kind not in "iu":
            raise MaskError(f"{path} holds {values.dtype} values; {what} must be integers.")
        indices = np.asarray(values, dtype=np.int64).reshape(-1)
    else:
        tokens = [t for t in re.split(r"[,\s]+", path.read_text(encoding="utf-8", errors="replace")) if t]
        try:
            indices = np.asarray([int(t) for t in tokens], dtype=np.int64)
        except ValueError as exc:
            raise MaskError(f"{path} must hold integers separated by commas or spaces ({exc}).") from exc
    if indices.size == 0:
        raise MaskError(f"The {what} file {path} is empty.")
    if vertex_count is not None and (indices.min() < 0 or indices.max() >= vertex_count):
        raise MaskError(f"{path} has indices from {indices.min()} to {indices.max()}, but the mesh has "
                        f"{vertex_count} vertices (valid: 0..{vertex_count - 1}); is it for another topology?")
    return indices


@dataclass(frozen=True)
class RegionMask:
    """One region: its indices as given (duplicates kept, as the official lip reader uses them) and where from."""

    name: str
    indices: np.ndarray
    source: Path
    description: str = ""

    @property
    def unique(self) -> np.ndarray:
        """Sorted unique indices: what the metrics use (a duplicate would not change a max, but would a mean)."""
        return np.unique(self.indices)

    def describe(self) -> str:
        extra = f"; {self.description}" if self.description else ""
        return f"{self.name}: {self.source} ({len(self.unique)} vertices{extra})"


def region_descriptions(root: Path) -> dict[str, str]:
    """Optional notes written beside the masks (by scripts/prepare_vocaset) on where they came from."""
    path = root / SOURCES_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def load_region(
    root: Path, override: str | Path | None, default: str, name: str, vertex_count: int, flag: str
) -> RegionMask:
    """The mask the user named (`override`), else the data folder's default file, with a clear error if absent."""
    path = Path(override) if override else root / default
    if not path.is_file():
        source = f"{path} does not exist" if override else f"the data folder has no {default}"
        raise MaskError(
            f"No {name} vertex indices: {source}. Supply a text file of comma-separated vertex indices for this "
            f"mesh (for FLAME/VOCASET: the FLAME '{'lips' if name == 'lip' else 'eye_region + forehead'}' mask; "
            f"{_CONVERT_HINT}) and pass it with {flag}."
        )
    indices = read_indices(path, vertex_count, f"{name} vertex indices")
    description = region_descriptions(root).get(Path(default).stem, "") if not override else ""
    return RegionMask(name, indices, path, description)
