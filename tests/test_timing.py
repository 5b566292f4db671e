"""Tests for jambatalk_blender.core.timing: VSE strip -> audio window, model fps -> scene fps, frame placement."""

from __future__ import annotations

import numpy as np
import pytest

from jambatalk_blender.core.timing import (
    effective_fps,
    resample_to_scene,
    scene_frame_count,
    scene_frames,
    strip_audio_range,
)

NTSC = 30000 / 1001


# --------------------------------------------------------------------------- strip range


def test_untrimmed_strip_plays_from_file_start():
    assert strip_audio_range(1, 1, 48, 0.0, 24.0) == pytest.approx((0.0, 2.0))


def test_trimmed_strip_skips_the_trimmed_frames():
    # Sound placed at frame 10, left 25 frames trimmed off: playback starts at frame 35 = 1 s into the file.
    t0, t1 = strip_audio_range(10, 35, 50, 0.0, 25.0)
    assert t0 == pytest.approx(1.0)
    assert t1 == pytest.approx(3.0)


def test_sound_offset_adds_seconds():
    t0, t1 = strip_audio_range(10, 35, 50, 0.5, 25.0)
    assert (t0, t1) == pytest.approx((1.5, 3.5))
    t0, t1 = strip_audio_range(1, 1, 30, -0.25, 30.0)
    assert (t0, t1) == pytest.approx((-0.25, 0.75))  # negative: leading silence, documented


def test_fps_base_changes_the_seconds_per_frame():
    fps = effective_fps(30, 1.001)
    assert fps == pytest.approx(NTSC, rel=1e-12)
    t0, t1 = strip_audio_range(0, 30, 300, 0.0, fps)
    assert t0 == pytest.approx(30 * 1.001 / 30)
    assert t1 - t0 == pytest.approx(300 * 1.001 / 30)


def test_strip_range_formula_matches_the_notes():
    rng = np.random.default_rng(3)
    for _ in range(50):
        fps = rng.choice([23.976, 24.0, 25.0, 29.97, 30.0, 50.0, 60.0])
        start, trim, duration, offset = rng.uniform(-100, 100), rng.uniform(0, 50), rng.uniform(0, 500), rng.normal()
        t0, t1 = strip_audio_range(start, start + trim, duration, offset, fps)
        assert t0 == pytest.approx(trim / fps + offset)
        assert t1 == pytest.approx(t0 + duration / fps)


@pytest.mark.parametrize("bad", [0.0, -24.0, float("nan"), float("inf")])
def test_strip_range_rejects_bad_fps(bad):
    with pytest.raises(ValueError, match="scene_fps"):
        strip_audio_range(1, 1, 10, 0.0, bad)


def test_strip_range_rejects_negative_duration():
    with pytest.raises(ValueError, match="frame_final_duration"):
        strip_audio_range(1, 1, -1, 0.0, 24.0)


# --------------------------------------------------------------------------- resampling


def test_identical_fps_is_exact_and_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((17, 5, 3))
    out = resample_to_scene(x, 30, 30.0)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out, x.astype(np.float32))
    x32 = x.astype(np.float32)
    assert resample_to_scene(x32, 30, 30) is x32  # documented: no copy when nothing changes


@pytest.mark.parametrize(
    ("scene", "count"),
    [(24.0, 241), (25.0, 251), (60.0, 601), (NTSC, 300), (30.0, 301), (15.0, 151), (12.5, 126)],
)
def test_frame_count_and_values_on_a_linear_ramp(scene, count):
    model_frames = 301  # 10 s at 30 fps
    ramp = np.arange(model_frames, dtype=np.float64)[:, None, None] * np.array([1.0, -2.0, 0.5]) / 30.0
    out = resample_to_scene(np.repeat(ramp, 4, axis=1), 30, scene)
    assert out.shape == (count, 4, 3)
    assert scene_frame_count(model_frames, 30, scene) == count
    seconds = np.arange(count) / scene
    expected = seconds[:, None] * np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(out, np.broadcast_to(expected[:, None, :], out.shape), atol=2e-6)


def test_frame_count_formula_exact_at_boundaries():
    # F = floor((T - 1) * 1000 / 1001) + 1 at 29.97: 1001 model intervals are exactly 1000 scene intervals.
    assert scene_frame_count(1002, 30, NTSC) == 1001
    assert scene_frame_count(1001, 30, NTSC) == 1000  # 999.001 intervals: floor
    assert scene_frame_count(1, 30, 24) == 1
    assert scene_frame_count(2, 30, 24) == 1  # 1/30 s covers no full 1/24 s step
    assert scene_frame_count(6, 30, 24) == 5


def test_scene_frames_on_the_model_grid_copy_model_frames_exactly():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((31, 3, 3)).astype(np.float32)
    up = resample_to_scene(x, 30, 60)
    np.testing.assert_array_equal(up[::2], x)
    np.testing.assert_allclose(up[1::2], (x[:-1] + x[1:]) / 2, rtol=1e-6, atol=1e-6)
    down = resample_to_scene(x, 30, 15)
    np.testing.assert_array_equal(down, x[::2])
    ntsc = resample_to_scene(x, 30, NTSC)
    np.testing.assert_array_equal(ntsc[0], x[0])  # other NTSC frames fall between model frames


def test_resampling_weights_commutes_with_resampling_offsets():
    rng = np.random.default_rng(2)
    weights = rng.standard_normal((40, 3))
    shapes = rng.standard_normal((3, 6, 3))
    offsets = np.einsum("tk,kvc->tvc", weights, shapes)
    a = resample_to_scene(offsets, 30, 24)
    b = np.einsum("tk,kvc->tvc", resample_to_scene(weights, 30, 24), shapes)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_single_frame_take():
    x = np.ones((1, 2, 3))
    out = resample_to_scene(x, 30, 24)
    assert out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out, 1.0)


def test_resampling_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one frame"):
        resample_to_scene(np.zeros((0, 2, 3)), 30, 24)
    with pytest.raises(ValueError, match="model_fps"):
        resample_to_scene(np.zeros((3, 2, 3)), 0, 24)
    with pytest.raises(ValueError, match="real numbers"):
        resample_to_scene(np.array(["a", "b"]), 30, 24)


def test_long_take_at_ntsc_has_no_drift():
    count = 9000
    out = resample_to_scene(np.arange(count, dtype=np.float32)[:, None], 30, NTSC)
    assert out.shape[0] == int((count - 1) * 1000 / 1001) + 1
    # Scene frame j sits at model position j * 1.001.
    np.testing.assert_allclose(out[:, 0], np.arange(out.shape[0]) * 1.001, atol=1e-3)


# --------------------------------------------------------------------------- frame placement


def test_scene_frames_start_at_strip_plus_offset():
    frames = scene_frames(101, 4, timing_offset_frames=-2)
    assert frames.dtype == np.float64
    np.testing.assert_array_equal(frames, [99.0, 100.0, 101.0, 102.0])
    np.testing.assert_array_equal(scene_frames(1, 3, 0.5), [1.5, 2.5, 3.5])
    assert scene_frames(1, 0).shape == (0,)
    with pytest.raises(ValueError, match="count"):
        scene_frames(1, -1)
