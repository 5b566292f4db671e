"""Tests for model_core.mesh_cache: PC2/MDD/NPY byte layout, round-trips and atomic writes."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from jambatalk_blender.core.mesh_cache import write_pc2 as core_write_pc2
from model_core import mesh_cache
from model_core.mesh_cache import read_mdd, read_pc2, write_mdd, write_npy, write_pc2


@pytest.fixture
def frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((7, 5, 3)).astype(np.float32)


def _only_file(directory) -> list[str]:
    return sorted(os.listdir(directory))


# --------------------------------------------------------------------------- PC2


def test_pc2_round_trip_exact(tmp_path, frames):
    path = tmp_path / "anim.pc2"
    write_pc2(path, frames, start_frame=3.0, sample_rate=0.5)
    back, header = read_pc2(path)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, frames)
    assert header == {
        "version": 1,
        "num_points": 5,
        "start_frame": 3.0,
        "sample_rate": 0.5,
        "num_samples": 7,
    }


def test_pc2_bytes_match_hand_packed_layout(tmp_path, frames):
    path = tmp_path / "anim.pc2"
    write_pc2(path, frames)
    raw = path.read_bytes()
    header = b"POINTCACHE2\x00" + struct.pack("<i", 1) + struct.pack("<i", 5)
    header += struct.pack("<f", 0.0) + struct.pack("<f", 1.0) + struct.pack("<i", 7)
    assert len(header) == 32
    assert raw[:32] == header
    body = struct.pack(f"<{frames.size}f", *frames.ravel().tolist())
    assert raw[32:] == body
    assert len(raw) == 32 + 7 * 5 * 3 * 4


def test_pc2_converts_float64(tmp_path):
    data = np.arange(2 * 3 * 3, dtype=np.float64).reshape(2, 3, 3) / 7
    path = tmp_path / "f64.pc2"
    write_pc2(path, data)
    back, _ = read_pc2(path)
    np.testing.assert_array_equal(back, data.astype(np.float32))


def test_pc2_reader_rejects_garbage(tmp_path, frames):
    bad = tmp_path / "bad.pc2"
    bad.write_bytes(b"NOTACACHE123" + b"\0" * 40)
    with pytest.raises(ValueError, match="not a PC2 file"):
        read_pc2(bad)
    good = tmp_path / "good.pc2"
    write_pc2(good, frames)
    truncated = tmp_path / "trunc.pc2"
    truncated.write_bytes(good.read_bytes()[:-4])
    with pytest.raises(ValueError, match="header implies"):
        read_pc2(truncated)
    tiny = tmp_path / "tiny.pc2"
    tiny.write_bytes(b"POINT")
    with pytest.raises(ValueError, match="too short"):
        read_pc2(tiny)


# --------------------------------------------------------------------------- MDD


def test_mdd_round_trip_exact(tmp_path, frames):
    path = tmp_path / "anim.mdd"
    write_mdd(path, frames, fps=30.0)
    back, times = read_mdd(path)
    np.testing.assert_array_equal(back, frames)
    np.testing.assert_array_equal(times, (np.arange(7) / 30.0).astype(np.float32))
    assert back.dtype == np.float32 and times.dtype == np.float32


def test_mdd_bytes_are_big_endian_hand_packed(tmp_path, frames):
    path = tmp_path / "anim.mdd"
    write_mdd(path, frames, fps=25.0)
    raw = path.read_bytes()
    expected = struct.pack(">ii", 7, 5)
    expected += struct.pack(">7f", *[i / 25.0 for i in range(7)])
    for frame in frames:
        expected += struct.pack(f">{frame.size}f", *frame.ravel().tolist())
    assert raw == expected


# --------------------------------------------------------------------------- NPY


def test_npy_round_trip_exact_without_pickle(tmp_path, frames):
    path = tmp_path / "offsets.npy"
    write_npy(path, frames)
    back = np.load(path, allow_pickle=False)
    assert back.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(back, frames)


def test_npy_keeps_exact_file_name(tmp_path, frames):
    path = tmp_path / "offsets.bin"
    write_npy(path, frames)
    assert _only_file(tmp_path) == ["offsets.bin"]
    np.testing.assert_array_equal(np.load(path, allow_pickle=False), frames)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 3)),
        np.zeros((4, 3, 2)),
        np.zeros((2, 4, 3, 1)),
        np.zeros((0, 4, 3)),
        np.zeros((4, 0, 3)),
        np.full((2, 2, 3), np.nan),
        np.full((2, 2, 3), np.inf),
        np.full((2, 2, 3), 1e39),  # finite float64 but inf in float32
        np.zeros((2, 2, 3), dtype=complex),
        np.array([[["a", "b", "c"]]]),
    ],
)
@pytest.mark.parametrize("writer", ["pc2", "mdd", "npy"])
def test_invalid_frames_rejected(tmp_path, bad, writer):
    path = tmp_path / f"out.{writer}"
    with pytest.raises(ValueError):
        if writer == "pc2":
            write_pc2(path, bad)
        elif writer == "mdd":
            write_mdd(path, bad, fps=30)
        else:
            write_npy(path, bad)
    assert _only_file(tmp_path) == []


@pytest.mark.parametrize("fps", [0, -30, float("nan"), float("inf")])
def test_bad_fps_rejected(tmp_path, frames, fps):
    with pytest.raises(ValueError, match="fps"):
        write_mdd(tmp_path / "a.mdd", frames, fps=fps)


@pytest.mark.parametrize(("start", "rate"), [(float("nan"), 1.0), (0.0, 0.0), (0.0, -1.0)])
def test_bad_pc2_timing_rejected(tmp_path, frames, start, rate):
    with pytest.raises(ValueError):
        write_pc2(tmp_path / "a.pc2", frames, start_frame=start, sample_rate=rate)


# --------------------------------------------------------------------------- atomicity


@pytest.mark.parametrize("writer", ["pc2", "mdd", "npy"])
def test_write_leaves_no_temp_file(tmp_path, frames, writer):
    path = tmp_path / f"anim.{writer}"
    {
        "pc2": lambda: write_pc2(path, frames),
        "mdd": lambda: write_mdd(path, frames, 30),
        "npy": lambda: write_npy(path, frames),
    }[writer]()
    assert _only_file(tmp_path) == [path.name]


@pytest.mark.parametrize("writer", [write_pc2, core_write_pc2], ids=["model_core", "extension"])
def test_invalid_input_does_not_clobber_existing_file(tmp_path, frames, writer):
    """The command line's up-front check and the extension's per-block one both leave the old file as it was."""
    path = tmp_path / "anim.pc2"
    writer(path, frames)
    before = path.read_bytes()
    bad = frames.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        writer(path, bad)
    assert path.read_bytes() == before
    assert _only_file(tmp_path) == ["anim.pc2"]


def test_failure_mid_write_keeps_old_file_and_cleans_up(tmp_path, frames, monkeypatch):
    path = tmp_path / "anim.mdd"
    write_mdd(path, frames, fps=30)
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(mesh_cache.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        write_mdd(path, frames * 2, fps=30)
    assert path.read_bytes() == before
    assert _only_file(tmp_path) == ["anim.mdd"]


def test_overwrite_replaces_content(tmp_path, frames):
    path = tmp_path / "anim.pc2"
    write_pc2(path, frames)
    write_pc2(path, frames[:2] + 1)
    back, header = read_pc2(path)
    np.testing.assert_array_equal(back, frames[:2] + 1)
    assert header["num_samples"] == 2


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_permissions_new_and_existing(tmp_path, frames):
    new = tmp_path / "new.pc2"
    write_pc2(new, frames)
    assert new.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
    existing = tmp_path / "existing.pc2"
    existing.write_bytes(b"old")
    existing.chmod(0o640)
    write_pc2(existing, frames)
    assert existing.stat().st_mode & 0o777 == 0o640
