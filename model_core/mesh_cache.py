"""Vertex-cache files (PC2, MDD, NPY) that Blender's Mesh Cache modifier and importers read.

The PC2/MDD readers and writers are the extension's (jambatalk_blender/core/mesh_cache.py, stdlib + numpy):
one implementation for the CLI, batch and Blender. This module adds the stricter checks of the command line
(finite values that fit float32) and the .npy writer. Every writer writes atomically (temp file in the same
directory, then ``os.replace``), so a failed export never leaves a half-written or clobbered cache behind.
Note: PC2/MDD store absolute vertex positions per frame; pass rest pose + offsets, not raw offsets,
when the file is meant for the Mesh Cache modifier.
"""

from __future__ import annotations

import os

import numpy as np

from jambatalk_blender.core import mesh_cache as _files
from jambatalk_blender.core.arrays import require_finite, xyz_array
from jambatalk_blender.core.mesh_cache import PC2_SIGNATURE, PC2_VERSION, atomic_open, read_mdd, read_pc2

__all__ = ["PC2_SIGNATURE", "PC2_VERSION", "atomic_open", "read_mdd", "read_pc2", "write_mdd", "write_npy",
           "write_pc2"]

PathLike = str | os.PathLike[str]


def _validate_frames(frames: np.ndarray) -> np.ndarray:
    """A finite (T, V, 3) array with T, V >= 1, as C-contiguous float32: all of it checked before a byte is written."""
    data = xyz_array(frames, "Vertex frames")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(data, dtype=np.float32)
    # Checked after the cast: float64 values beyond float32 range become inf, which caches can't hold.
    return require_finite(out, "Vertex frames contain NaN or infinite values (or values too large for float32).")


def write_pc2(path: PathLike, frames: np.ndarray, start_frame: float = 0.0, sample_rate: float = 1.0) -> None:
    """Write a little-endian Point Cache 2 file. ``sample_rate`` is frames between samples (1.0)."""
    _files.write_pc2(path, _validate_frames(frames), start_frame, sample_rate)


def write_mdd(path: PathLike, frames: np.ndarray, fps: float) -> None:
    """Write a big-endian MDD file; frame ``i`` is stamped ``i / fps`` seconds."""
    _files.write_mdd(path, _validate_frames(frames), fps)


def write_npy(path: PathLike, offsets: np.ndarray) -> None:
    """Save (T, V, 3) offsets as a little-endian float32 ``.npy`` (no pickle), atomically."""
    data = _validate_frames(offsets).astype("<f4", copy=False)
    with atomic_open(path) as fh:
        np.save(fh, data, allow_pickle=False)
