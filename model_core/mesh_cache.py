"""Vertex-cache writers (PC2, MDD, NPY) that Blender's Mesh Cache modifier and importers read.

Every writer validates first and then writes atomically (temp file in the same directory, then
``os.replace``), so a failed export never leaves a half-written or clobbered cache behind.
Note: PC2/MDD store absolute vertex positions per frame; pass rest pose + offsets, not raw offsets,
when the file is meant for the Mesh Cache modifier.
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

PC2_SIGNATURE = b"POINTCACHE2\0"
PC2_VERSION = 1
# signature, version, num_points, start_frame, sample_rate, num_samples (little-endian).
_PC2_HEADER = struct.Struct("<12siiffi")
# num_frames, num_points (big-endian, as MDD has always been).
_MDD_HEADER = struct.Struct(">ii")
_INT32_MAX = 2**31 - 1

PathLike = str | os.PathLike[str]


def _validate_frames(frames: np.ndarray) -> np.ndarray:
    """Check a (T, V, 3) finite array with T, V >= 1 and return it as C-contiguous float32."""
    arr = np.asarray(frames)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"vertex frames must have shape (T, V, 3), got {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError("vertex frames must contain at least one frame (T >= 1)")
    if arr.shape[1] < 1:
        raise ValueError("vertex frames must contain at least one vertex (V >= 1)")
    if arr.shape[0] > _INT32_MAX or arr.shape[1] > _INT32_MAX:
        raise ValueError(f"vertex frames shape {arr.shape} does not fit the int32 cache header")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"vertex frames must be real numbers, got dtype {arr.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    # Checked after the cast: float64 values beyond float32 range become inf, which caches can't hold.
    if not np.isfinite(out).all():
        raise ValueError("vertex frames contain NaN or infinite values (or values too large for float32)")
    return out


def _finite(value: float, what: str, *, positive: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        kind = "a positive finite" if positive else "a finite"
        raise ValueError(f"{what} must be {kind} number, got {value!r}")
    return value


@contextlib.contextmanager
def atomic_open(path: PathLike) -> Iterator[BinaryIO]:
    """Yield a temp file next to ``path``; it replaces ``path`` only if the block succeeds."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # Keep an existing file's permissions; mkstemp's 0600 would surprise users of new files.
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_pc2(path: PathLike, frames: np.ndarray, start_frame: float = 0.0, sample_rate: float = 1.0) -> None:
    """Write a little-endian Point Cache 2 file. ``sample_rate`` is frames between samples (1.0)."""
    data = _validate_frames(frames)
    start = _finite(start_frame, "start_frame")
    step = _finite(sample_rate, "sample_rate", positive=True)
    num_samples, num_points = data.shape[:2]
    header = _PC2_HEADER.pack(PC2_SIGNATURE, PC2_VERSION, num_points, start, step, num_samples)
    with atomic_open(path) as fh:
        fh.write(header)
        fh.write(data.astype("<f4", copy=False).tobytes())


def read_pc2(path: PathLike) -> tuple[np.ndarray, dict]:
    """Read a PC2 file -> ((T, V, 3) float32 frames, header dict)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < _PC2_HEADER.size:
        raise ValueError(f"{os.fspath(path)} is too short to be a PC2 file ({len(raw)} bytes)")
    signature, version, num_points, start, step, num_samples = _PC2_HEADER.unpack_from(raw)
    if signature != PC2_SIGNATURE:
        raise ValueError(f"{os.fspath(path)} is not a PC2 file (bad signature {signature!r})")
    if num_points < 0 or num_samples < 0:
        raise ValueError(
            f"{os.fspath(path)} has a corrupt PC2 header ({num_samples} samples, {num_points} points)"
        )
    expected = _PC2_HEADER.size + num_samples * num_points * 12
    if len(raw) != expected:
        raise ValueError(f"{os.fspath(path)} is {len(raw)} bytes; its PC2 header implies {expected}")
    body = np.frombuffer(raw, dtype="<f4", offset=_PC2_HEADER.size)
    frames = body.reshape(num_samples, num_points, 3).astype(np.float32)
    header = {
        "version": version,
        "num_points": num_points,
        "start_frame": start,
        "sample_rate": step,
        "num_samples": num_samples,
    }
    return frames, header


def write_mdd(path: PathLike, frames: np.ndarray, fps: float) -> None:
    """Write a big-endian MDD file; frame ``i`` is stamped ``i / fps`` seconds."""
    data = _validate_frames(frames)
    rate = _finite(fps, "fps", positive=True)
    num_frames, num_points = data.shape[:2]
    times = (np.arange(num_frames, dtype=np.float64) / rate).astype(">f4")
    with atomic_open(path) as fh:
        fh.write(_MDD_HEADER.pack(num_frames, num_points))
        fh.write(times.tobytes())
        fh.write(data.astype(">f4").tobytes())


def read_mdd(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an MDD file -> ((T, V, 3) float32 frames, (T,) float32 frame times in seconds)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < _MDD_HEADER.size:
        raise ValueError(f"{os.fspath(path)} is too short to be an MDD file ({len(raw)} bytes)")
    num_frames, num_points = _MDD_HEADER.unpack_from(raw)
    if num_frames < 0 or num_points < 0:
        raise ValueError(
            f"{os.fspath(path)} has a corrupt MDD header ({num_frames} frames, {num_points} points)"
        )
    expected = _MDD_HEADER.size + num_frames * 4 + num_frames * num_points * 12
    if len(raw) != expected:
        raise ValueError(f"{os.fspath(path)} is {len(raw)} bytes; its MDD header implies {expected}")
    times = np.frombuffer(raw, dtype=">f4", count=num_frames, offset=_MDD_HEADER.size).astype(np.float32)
    body = np.frombuffer(raw, dtype=">f4", offset=_MDD_HEADER.size + num_frames * 4)
    return body.reshape(num_frames, num_points, 3).astype(np.float32), times


def write_npy(path: PathLike, offsets: np.ndarray) -> None:
    """Save (T, V, 3) offsets as a little-endian float32 ``.npy`` (no pickle), atomically."""
    data = _validate_frames(offsets).astype("<f4", copy=False)
    with atomic_open(path) as fh:
        np.save(fh, data, allow_pickle=False)
