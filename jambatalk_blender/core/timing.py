"""Time mapping between the sound file, the model's frames (30 fps) and the Blender scene's frames.

Pure module (stdlib + numpy) so it runs inside Blender's bundled Python. Conventions:
* Model frame ``k`` of a take sits at ``k / model_fps`` seconds after the start of the audio sent to the worker.
* The worker is sent the audio a VSE strip plays (`strip_audio_range`), so the take's time 0 is the strip's
  ``frame_final_start``; scene frame ``j`` of the take (0-based) sits at ``j / scene_fps`` seconds.
* Frame rates are converted to exact fractions (29.97 = 30000/1001), so frame counts and the samples that
  land exactly on a model frame do not depend on float rounding.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .arrays import real_array

# Enough for any fps / fps_base Blender can hold (fps_base 1.001 needs 1001) while staying far from int64
# overflow in `j * numerator` for takes of millions of frames.
_MAX_DENOMINATOR = 1_000_000
# Output frames interpolated per block: bounds the temporaries to ~block * V * 3 floats.
_BLOCK_FRAMES = 256


def _fps(value: float, what: str) -> Fraction:
    """A positive finite frame rate as an exact fraction (floats like 30/1.001 snap to 30000/1001)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{what} must be a positive finite number, got {value!r}")
    if isinstance(value, Fraction):
        return value
    return Fraction(number).limit_denominator(_MAX_DENOMINATOR)


def effective_fps(fps: float, fps_base: float = 1.0) -> float:
    """The scene's real frame rate, ``render.fps / render.fps_base`` (e.g. 30 / 1.001 = 29.97)."""
    return float(_fps(fps, "fps") / _fps(fps_base, "fps_base"))


def strip_audio_range(
    frame_start: float,
    frame_final_start: float,
    frame_final_duration: float,
    sound_offset: float,
    scene_fps: float,
) -> tuple[float, float]:
    """Seconds ``(t0, t1)`` of the sound file that a VSE sound strip plays (Blender API notes §2.1).

    ``frame_start`` is where the untrimmed sound would start on the timeline; trimming moves
    ``frame_final_start`` right of it, and ``sound_offset`` (seconds) shifts the sound inside the strip.
    ``t0`` can be negative when ``sound_offset`` is: the strip then starts with silence before the file.
    Speed changes and retiming keys are not modelled (fall back to a mixdown for those).
    """
    fps = float(_fps(scene_fps, "scene_fps"))
    values = {"frame_start": frame_start, "frame_final_start": frame_final_start,
              "frame_final_duration": frame_final_duration, "sound_offset": sound_offset}
    for name, value in values.items():
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if frame_final_duration < 0:
        raise ValueError(f"frame_final_duration must not be negative, got {frame_final_duration!r}")
    t0 = (float(frame_final_start) - float(frame_start)) / fps + float(sound_offset)
    return t0, t0 + float(frame_final_duration) / fps


def scene_frame_count(model_frames: int, model_fps: float, scene_fps: float) -> int:
    """Scene frames covering a take of ``model_frames``: ``floor((T - 1) / model_fps * scene_fps) + 1``."""
    if model_frames < 1:
        raise ValueError(f"a take needs at least one frame, got {model_frames}")
    ratio = _fps(scene_fps, "scene_fps") / _fps(model_fps, "model_fps")
    return int((model_frames - 1) * ratio) + 1  # int() of a non-negative Fraction is an exact floor


def resample_to_scene(offsets: np.ndarray, model_fps: float, scene_fps: float) -> np.ndarray:
    """Linearly resample a take from the model's frame rate to the scene's; time is axis 0.

    ``offsets`` is (T, ...) — usually (T, V, 3) vertex offsets, but (T, K) shape-key weights work too, and
    resampling the K weights after `bake_math.decompose` is far cheaper than resampling T x V x 3 offsets
    (both are linear, so the results agree). Returns float32 (F, ...), F = `scene_frame_count`. When the rates
    are equal the input is returned as a C-contiguous float32 array, without a copy if it already is one.
    """
    data = np.asarray(offsets)
    if data.ndim < 1 or data.shape[0] < 1:
        raise ValueError(f"offsets must have at least one frame along axis 0, got shape {data.shape}")
    real_array(data, "offsets")
    model, scene = _fps(model_fps, "model_fps"), _fps(scene_fps, "scene_fps")
    if model == scene:
        return np.ascontiguousarray(data, dtype=np.float32)
    count = data.shape[0]
    n_out = scene_frame_count(count, model, scene)
    # Scene frame j sits at model position j * model / scene = j * num / den: split it exactly in integers.
    step = model / scene
    num, den = step.numerator, step.denominator
    j = np.arange(n_out, dtype=np.int64)
    lower = (j * num) // den
    frac = ((j * num) % den).astype(np.float64) / den
    # The last sample can sit exactly on the last model frame: interpolate from the pair before it.
    last_pair = lower >= count - 1
    lower[last_pair] = max(count - 2, 0)
    frac[last_pair] = 1.0 if count > 1 else 0.0
    upper = np.minimum(lower + 1, count - 1)
    out = np.empty((n_out, *data.shape[1:]), dtype=np.float32)
    weight_shape = (-1,) + (1,) * (data.ndim - 1)
    for s in range(0, n_out, _BLOCK_FRAMES):
        e = min(s + _BLOCK_FRAMES, n_out)
        a = data[lower[s:e]].astype(np.float32, copy=False)
        b = data[upper[s:e]].astype(np.float32, copy=False)
        w = frac[s:e].astype(np.float32).reshape(weight_shape)
        # a + w * (b - a): exact at w == 0, so frames on the model grid copy the model frame bit for bit.
        np.subtract(b, a, out=out[s:e])
        out[s:e] *= w
        out[s:e] += a
        exact = frac[s:e] == 1.0  # w == 1 could round a + (b - a) by an ulp; write the model frame itself
        if exact.any():
            out[s:e][exact] = b[exact]
    return out


def scene_frames(first_frame: float, count: int, timing_offset_frames: float = 0.0) -> np.ndarray:
    """Scene frame numbers (float64) of a take's ``count`` frames at scene rate.

    Frame 0 of the take lands on ``first_frame + timing_offset_frames`` — normally the strip's
    ``frame_final_start`` plus the user's lead/lag offset (a "prediction delay" in frames, may be fractional).
    """
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    start = float(first_frame) + float(timing_offset_frames)
    if not math.isfinite(start):
        raise ValueError(f"first_frame + timing_offset_frames must be finite, got {start!r}")
    return start + np.arange(count, dtype=np.float64)
