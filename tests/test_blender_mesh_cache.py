"""Tests for jambatalk_blender.core.mesh_cache: PC2/MDD bytes, round trips, rest offsets and atomic writes."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from jambatalk_blender.core import mesh_cache
from jambatalk_blender.core.mesh_cache import read_mdd, read_pc2, write_mdd, write_pc2


@pytest.fixture
def frames() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((7, 5, 3)).astype(np.float32)


def listing(directory) -> list[str]:
    return sorted(os.listdir(directory))


# --------------------------------------------------------------------------- PC2


def test_pc2_bytes_match_the_hand_packed_layout(tmp_path, frames):
    path = tmp_path / "take.pc2"
    write_pc2(path, frames, start_frame=12.0, sample_rate=0.5)
    raw = path.read_bytes()
    assert raw[:12] == b"POINTCACHE2\x00"
    assert raw[12:32] == struct.pack("<i", 1) + struct.pack("<i", 5) + struct.pack("<ff", 12.0, 0.5) + struct.pack(
        "<i", 7)
    assert raw[32:] == struct.pack(f"<{frames.size}f", *frames.ravel().tolist())
    assert len(raw) == 32 + 7 * 5 * 12


def test_pc2_round_trip(tmp_path, frames):
    path = tmp_path / "take.pc2"
    write_pc2(path, frames, start_frame=1.0)
    back, header = read_pc2(path)
    np.testing.assert_array_equal(back, frames)
    assert back.dtype == np.float32
    assert header == {"version": 1, "num_points": 5, "start_frame": 1.0, "sample_rate": 1.0, "num_samples": 7}


def test_pc2_with_rest_writes_absolute_positions(tmp_path, frames):
    rest = np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3)
    path = tmp_path / "abs.pc2"
    write_pc2(path, frames, rest=rest)
    np.testing.assert_array_equal(read_pc2(path)[0], frames + rest)


def test_pc2_many_blocks_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(mesh_cache, "_BLOCK_BYTES", 100)  # one frame per block
    data = np.random.default_rng(1).standard_normal((9, 4, 3))
    write_pc2(tmp_path / "b.pc2", data, durable=False)
    np.testing.assert_array_equal(read_pc2(tmp_path / "b.pc2")[0], data.astype(np.float32))


# --------------------------------------------------------------------------- MDD


def test_mdd_bytes_are_big_endian(tmp_path, frames):
    path = tmp_path / "take.mdd"
    write_mdd(path, frames, fps=25.0)
    raw = path.read_bytes()
    assert raw[:8] == struct.pack(">ii", 7, 5)
    times = struct.unpack(">7f", raw[8:36])
    np.testing.assert_allclose(times, np.arange(7) / 25.0, rtol=1e-7)
    assert raw[36:] == struct.pack(f">{frames.size}f", *frames.ravel().tolist())


def test_mdd_round_trip_with_rest(tmp_path, frames):
    rest = np.ones((5, 3))
    path = tmp_path / "take.mdd"
    write_mdd(path, frames, 30000 / 1001, rest=rest)
    back, times = read_mdd(path)
    np.testing.assert_array_equal(back, frames + np.float32(1.0))
    np.testing.assert_allclose(times, np.arange(7) * 1001 / 30000, rtol=1e-6)


# --------------------------------------------------------------------------- validation and atomicity


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.zeros((3, 4)), "shape"),
        (np.zeros((3, 4, 2)), "shape"),
        (np.zeros((0, 4, 3)), "at least one frame"),
        (np.zeros((2, 0, 3)), "at least one frame"),
        (np.array([[["a", "b", "c"]]]), "real numbers"),
    ],
)
def test_bad_frames_are_rejected_before_anything_is_written(tmp_path, data, match):
    with pytest.raises(ValueError, match=match):
        write_pc2(tmp_path / "x.pc2", data)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e39])
def test_non_finite_values_abort_without_leftovers(tmp_path, monkeypatch, bad):
    monkeypatch.setattr(mesh_cache, "_BLOCK_BYTES", 60)  # the bad frame sits in a later block
    data = np.zeros((6, 5, 3))
    data[4, 2, 1] = bad
    with pytest.raises(ValueError, match="frame 4 contains NaN or infinite"):
        write_pc2(tmp_path / "x.pc2", data)
    with pytest.raises(ValueError, match="frame 4"):
        write_mdd(tmp_path / "x.mdd", data, 30)
    assert listing(tmp_path) == []


def test_successful_writes_leave_only_the_target(tmp_path, frames):
    write_pc2(tmp_path / "a.pc2", frames)
    write_pc2(tmp_path / "a.pc2", frames * 2)  # overwrite in place
    write_mdd(tmp_path / "a.mdd", frames, 24, durable=False)
    assert listing(tmp_path) == ["a.mdd", "a.pc2"]
    np.testing.assert_array_equal(read_pc2(tmp_path / "a.pc2")[0], frames * 2)


def test_overwrite_keeps_file_permissions(tmp_path, frames):
    path = tmp_path / "p.pc2"
    write_pc2(path, frames)
    assert os.stat(path).st_mode & 0o777 == 0o644
    os.chmod(path, 0o640)
    write_pc2(path, frames)
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_bad_header_numbers_and_rest(tmp_path, frames):
    with pytest.raises(ValueError, match="sample_rate"):
        write_pc2(tmp_path / "x.pc2", frames, sample_rate=0.0)
    with pytest.raises(ValueError, match="start_frame"):
        write_pc2(tmp_path / "x.pc2", frames, start_frame=float("nan"))
    with pytest.raises(ValueError, match="fps"):
        write_mdd(tmp_path / "x.mdd", frames, fps=-1)
    with pytest.raises(ValueError, match="rest mesh has shape"):
        write_pc2(tmp_path / "x.pc2", frames, rest=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="rest mesh contains NaN"):
        write_pc2(tmp_path / "x.pc2", frames, rest=np.full((5, 3), np.nan))
    with pytest.raises(ValueError, match="does not exist"):
        write_pc2(tmp_path / "missing" / "x.pc2", frames)
    assert listing(tmp_path) == []


def test_readers_reject_damaged_files(tmp_path, frames):
    path = tmp_path / "t.pc2"
    write_pc2(path, frames)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match="header implies"):
        read_pc2(path)
    path.write_bytes(b"NOTACACHE___" + bytes(20))
    with pytest.raises(ValueError, match="not a PC2 file"):
        read_pc2(path)
    path.write_bytes(b"abc")
    with pytest.raises(ValueError, match="too short"):
        read_pc2(path)
    mdd = tmp_path / "t.mdd"
    write_mdd(mdd, frames, 30)
    mdd.write_bytes(mdd.read_bytes() + b"x")
    with pytest.raises(ValueError, match="header implies"):
        read_mdd(mdd)
