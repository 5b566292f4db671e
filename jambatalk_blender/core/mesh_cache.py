"""PC2 and MDD vertex-cache writers (and readers, for tests) for Blender's Mesh Cache modifier.

Pure module (stdlib + numpy): Blender's Python cannot import model_core, which has its own copy of these
formats. Layouts (Blender API notes §4.1, from MOD_meshcache_pc2.cc / _mdd.cc):
* PC2, little-endian: ``char[12] "POINTCACHE2\\0"``, int32 version (1), int32 points, float32 start frame,
  float32 sample rate (frames between samples), int32 samples; then samples x points x float32[3].
* MDD, big-endian: int32 frames, int32 points, float32 times[frames] (seconds); then frames x points x float32[3].
Both store absolute, mesh-local vertex positions: pass ``rest`` (the neutral mesh) to write rest + offsets
without building that (F, V, 3) array in memory. In the modifier's SCENE/FRAME mode, scene frame f shows
sample ``f * frame_scale - frame_start``.

Writes are atomic: a temp file in the target folder replaces the target only once complete, so a failed or
cancelled export never leaves a half-written or clobbered cache. Frames are validated (finite, float32-sized)
block by block while writing; a bad value aborts the write and removes the temp file.
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

from .arrays import real_array, require_finite, xyz_array

PC2_SIGNATURE = b"POINTCACHE2\0"
PC2_VERSION = 1
_PC2_HEADER = struct.Struct("<12siiffi")  # signature, version, points, start frame, sample rate, samples
_MDD_HEADER = struct.Struct(">ii")  # frames, points
_INT32_MAX = 2**31 - 1
_BLOCK_BYTES = 8 << 20  # convert and write ~8 MiB at a time: bounded memory, still few system calls

PathLike = str | os.PathLike[str]


def _validated_frames(frames: np.ndarray, rest: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    data = xyz_array(frames, "Vertex frames")
    if data.shape[0] > _INT32_MAX or data.shape[1] > _INT32_MAX:
        raise ValueError(f"Vertex frames of shape {data.shape} do not fit a cache file's int32 header.")
    if rest is None:
        return data, None
    base = np.asarray(rest)
    if base.shape != data.shape[1:]:
        raise ValueError(f"The rest mesh has shape {base.shape}; the frames need ({data.shape[1]}, 3).")
    base = real_array(base, "The rest mesh").astype(np.float32)
    return data, require_finite(base, "The rest mesh contains NaN or infinite coordinates.")


def _finite(value: float, what: str, *, positive: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}.") from None
    if not math.isfinite(number) or (positive and number <= 0):
        kind = "a positive finite" if positive else "a finite"
        raise ValueError(f"{what} must be {kind} number, got {value!r}.")
    if abs(number) > np.finfo(np.float32).max:
        raise ValueError(f"{what} is too large for the file's float32 header, got {value!r}.")
    return number


def _blocks(data: np.ndarray, rest: np.ndarray | None, dtype: str) -> Iterator[bytes | memoryview]:
    """The frames (plus rest) as ``dtype`` bytes, a block of frames at a time, each checked for finiteness."""
    per_frame = data.shape[1] * 3 * 4
    step = max(1, _BLOCK_BYTES // per_frame)
    for s in range(0, data.shape[0], step):
        block = data[s:s + step]
        with np.errstate(over="ignore", invalid="ignore"):
            out = block.astype(np.float32, copy=False) if rest is None else block + rest
            out = np.asarray(out, dtype=np.float32)
        # Checked after the cast: float64 beyond the float32 range becomes inf, which caches cannot hold.
        if not np.isfinite(out).all():
            bad = s + int(np.flatnonzero(~np.isfinite(out).reshape(out.shape[0], -1).all(axis=1))[0])
            raise ValueError(f"Vertex frame {bad} contains NaN or infinite values (or values too large for "
                             "float32); nothing was written.")
        yield memoryview(np.ascontiguousarray(out, dtype=dtype)).cast("B")


@contextlib.contextmanager
def atomic_open(path: PathLike, durable: bool = True) -> Iterator[BinaryIO]:
    """Yield a temp file next to ``path``; it replaces ``path`` only if the block succeeds."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"The folder {directory} does not exist; create it before writing {path}.")
    # Keep an existing file's permissions; mkstemp's 0600 would surprise users of new files.
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if durable:  # a crash right after the rename must not leave an empty file behind
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_pc2(
    path: PathLike,
    frames: np.ndarray,
    start_frame: float = 0.0,
    sample_rate: float = 1.0,
    *,
    rest: np.ndarray | None = None,
    durable: bool = True,
) -> None:
    """Write (F, V, 3) frames (plus ``rest`` (V, 3) when given) as a little-endian PC2 file, atomically.

    ``sample_rate`` is frames between samples (1.0 = one sample per frame). ``durable=False`` skips the
    fsync (faster for scratch files; the rename is still atomic).
    """
    data, base = _validated_frames(frames, rest)
    start = _finite(start_frame, "start_frame")
    step = _finite(sample_rate, "sample_rate", positive=True)
    num_samples, num_points = data.shape[:2]
    header = _PC2_HEADER.pack(PC2_SIGNATURE, PC2_VERSION, num_points, start, step, num_samples)
    with atomic_open(path, durable) as fh:
        fh.write(header)
        for chunk in _blocks(data, base, "<f4"):
            fh.write(chunk)


def write_mdd(
    path: PathLike,
    frames: np.ndarray,
    fps: float,
    *,
    rest: np.ndarray | None = None,
    durable: bool = True,
) -> None:
    """Write (F, V, 3) frames (plus ``rest``) as a big-endian MDD file; frame i is stamped i / fps seconds."""
    data, base = _validated_frames(frames, rest)
    rate = _finite(fps, "fps", positive=True)
    num_frames, num_points = data.shape[:2]
    times = (np.arange(num_frames, dtype=np.float64) / rate).astype(">f4")
    with atomic_open(path, durable) as fh:
        fh.write(_MDD_HEADER.pack(num_frames, num_points))
        fh.write(times.tobytes())
        for chunk in _blocks(data, base, ">f4"):
            fh.write(chunk)


def _read(path: PathLike, kind: str, min_size: int) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < min_size:
        raise ValueError(f"{os.fspath(path)} is too short to be a {kind} file ({len(raw)} bytes).")
    return raw


def read_pc2(path: PathLike) -> tuple[np.ndarray, dict]:
    """Read a PC2 file -> ((F, V, 3) float32 frames, header dict)."""
    raw = _read(path, "PC2", _PC2_HEADER.size)
    signature, version, num_points, start, step, num_samples = _PC2_HEADER.unpack_from(raw)
    if signature != PC2_SIGNATURE:
        raise ValueError(f"{os.fspath(path)} is not a PC2 file (its signature is {signature!r}).")
    if num_points < 0 or num_samples < 0:
        raise ValueError(f"{os.fspath(path)} has a corrupt PC2 header ({num_samples} samples, {num_points} points).")
    expected = _PC2_HEADER.size + num_samples * num_points * 12
    if len(raw) != expected:
        raise ValueError(f"{os.fspath(path)} is {len(raw)} bytes, but its PC2 header implies {expected}.")
    body = np.frombuffer(raw, dtype="<f4", offset=_PC2_HEADER.size)
    header = {"version": version, "num_points": num_points, "start_frame": start, "sample_rate": step,
              "num_samples": num_samples}
    return body.reshape(num_samples, num_points, 3).astype(np.float32), header


def read_mdd(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an MDD file -> ((F, V, 3) float32 frames, (F,) float32 frame times in seconds)."""
    raw = _read(path, "MDD", _MDD_HEADER.size)
    num_frames, num_points = _MDD_HEADER.unpack_from(raw)
    if num_frames < 0 or num_points < 0:
        raise ValueError(f"{os.fspath(path)} has a corrupt MDD header ({num_frames} frames, {num_points} points).")
    expected = _MDD_HEADER.size + num_frames * 4 + num_frames * num_points * 12
    if len(raw) != expected:
        raise ValueError(f"{os.fspath(path)} is {len(raw)} bytes, but its MDD header implies {expected}.")
    times = np.frombuffer(raw, dtype=">f4", count=num_frames, offset=_MDD_HEADER.size).astype(np.float32)
    body = np.frombuffer(raw, dtype=">f4", offset=_MDD_HEADER.size + num_frames * 4)
    return body.reshape(num_frames, num_points, 3).astype(np.float32), times
