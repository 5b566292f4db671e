"""Animator: the high-level inference entry, windowing of long takes, input handling, cancellation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_core.audio_io import AudioError, normalise_for_wav2vec2
from model_core.inference import Animator, JobCancelled
from model_core.windowing import crossfade_weights, plan_windows
from tests.conftest import loaded, make_model, speech_like, tiny_config

SR = 16000


def local_model():
    """A model whose receptive field is a few frames: no attention mixing, fast-forgetting Mamba states."""
    model = make_model(tiny_config(pattern="ME"))
    with torch.no_grad():
        for layer in model.audio_encoder.encoder.layers:
            layer.attention.v_proj.weight.zero_()
            layer.attention.out_proj.weight.zero_()
        for module in model.modules():
            if hasattr(module, "dt_proj"):
                module.dt_proj.weight.zero_()
                module.dt_proj.bias.fill_(3.0)  # softplus(3) ~ 3: the state decays by >= e^-3 per frame
    return model


def seam_mask(total: int, windows: list[tuple[int, int]], margin: int) -> np.ndarray:
    near = np.zeros(total, dtype=bool)
    for start, end in windows:
        near[max(0, start - margin): start + margin] = True
        near[max(0, end - margin): end + margin] = True
    return near


@pytest.mark.parametrize(("total", "window", "overlap"), [(10, 20, 4), (600, 600, 60), (601, 600, 60),
                                                          (5399, 600, 60), (1000, 90, 30), (991, 90, 30)])
def test_windows_cover_the_take_and_weights_sum_to_one(total, window, overlap):
    windows = plan_windows(total, window, overlap)
    coverage = np.zeros(total)
    for (start, end), weight in zip(windows, crossfade_weights(windows), strict=True):
        assert 0 <= start < end <= total and end - start <= window
        coverage[start:end] += weight
    np.testing.assert_allclose(coverage, 1.0)
    for (_, e0), (s1, _) in zip(windows, windows[1:], strict=False):
        assert e0 - s1 == overlap


def test_single_window_is_the_official_single_pass():
    model = make_model()
    audio = speech_like(4.0)
    offsets = Animator(loaded(model), device="cpu").animate(audio, SR)
    with torch.no_grad():
        direct = model(torch.from_numpy(normalise_for_wav2vec2(audio))[None])[0].numpy()
    np.testing.assert_allclose(offsets, direct, rtol=0, atol=1e-6)


def test_three_minute_take_equals_unwindowed_away_from_seams_and_has_no_steps():
    model = local_model()
    audio = speech_like(180.0, seed=4)
    windowed = Animator(loaded(model), device="cpu").animate(audio, SR)
    whole = Animator(loaded(model), device="cpu", window_seconds=1e9).animate(audio, SR)
    assert windowed.shape == whole.shape == (model.motion_frames_for(len(audio)), 40, 3)
    windows = plan_windows(len(whole), 600, 60)
    assert len(windows) >= 9
    scale = np.abs(whole).max()
    away = ~seam_mask(len(whole), windows, margin=20)  # wav2vec2 pos-conv + Mamba conv reach ~18 frames
    err = np.abs(windowed - whole).max(axis=(1, 2)) / scale
    assert err[away].max() < 1e-5
    assert err.max() < 2e-2
    # No step at seams: frame-to-frame motion inside overlaps is no larger than the take's own.
    jumps = np.abs(np.diff(windowed, axis=0)).max(axis=(1, 2))
    own = np.abs(np.diff(whole, axis=0)).max(axis=(1, 2))
    assert jumps.max() <= 1.05 * own.max()


def test_seams_stay_smooth_for_a_model_with_global_context():
    model = make_model(tiny_config(pattern="METE"), head_std=0.05)
    audio = speech_like(50.0, seed=9)
    animator = Animator(loaded(model), device="cpu", window_seconds=12.0, overlap_seconds=2.0)
    out = animator.animate(audio, SR)
    windows = plan_windows(len(out), 360, 60)
    jumps = np.abs(np.diff(out, axis=0)).max(axis=(1, 2))
    near = seam_mask(len(out) - 1, windows, margin=3)
    assert jumps[near].max() <= 1.5 * np.percentile(jumps[~near], 99.5)


def test_any_rate_stereo_int_pcm_matches_float_mono():
    model = make_model()
    animator = Animator(loaded(model), device="cpu")
    t = np.arange(int(3.0 * 48000)) / 48000
    mono = (0.4 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 2 * t)).astype(np.float32)
    stereo_int = (np.stack([mono, mono], axis=1) * 32767).astype(np.int16)
    a = animator.animate(mono, 48000)
    b = animator.animate(stereo_int, 48000)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 1e-3 * np.abs(a).max()


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros(16000, dtype=np.float32), "silent"),
        (np.full(16000, np.nan, dtype=np.float32), "NaN"),
        (np.zeros(0, dtype=np.float32), "no audio samples"),
    ],
)
def test_bad_audio_gets_a_clear_error(samples, message):
    animator = Animator(loaded(make_model()), device="cpu")
    with pytest.raises(AudioError, match=message):
        animator.animate(samples, SR)


def test_too_long_audio_is_refused():
    animator = Animator(loaded(make_model()), device="cpu", max_seconds=2.0)
    with pytest.raises(AudioError, match="limit"):
        animator.animate(speech_like(3.0), SR)


def test_subjects():
    plain = Animator(loaded(make_model()), device="cpu")
    with pytest.raises(ValueError, match="no subjects"):
        plain.animate(speech_like(1.0), SR, subject="anna")
    styled = Animator(loaded(make_model(tiny_config(style_names=["anna", "ben"], style_embedding=True))),
                      device="cpu")
    assert styled.style_names == ["anna", "ben"]
    with pytest.raises(ValueError, match="knows: anna, ben"):
        styled.animate(speech_like(1.0), SR, subject="zoe")
    assert styled.animate(speech_like(1.0), SR, subject="ben").shape[1:] == (40, 3)


def test_progress_and_cancel_at_window_boundaries():
    animator = Animator(loaded(make_model()), device="cpu", window_seconds=3.0, overlap_seconds=0.5)
    seen: list[tuple[float, str]] = []
    animator.animate(speech_like(10.0), SR, progress=lambda f, s: seen.append((f, s)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) >= 5
    calls = []

    def cancel_after_two() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(JobCancelled):
        animator.animate(speech_like(10.0), SR, should_cancel=cancel_after_two)
    assert len(calls) == 3


def test_window_settings_are_checked():
    with pytest.raises(ValueError, match="twice"):
        Animator(loaded(make_model()), device="cpu", window_seconds=3.0, overlap_seconds=2.0)
