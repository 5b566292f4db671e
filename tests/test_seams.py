"""The long-take seam check: joins of cross-faded windows are found, and a seamless model is called seamless."""

from __future__ import annotations

import numpy as np

from model_core.checkpoint import CheckpointInfo, save_checkpoint
from model_core.evaluation.seams import join_frames, seam_report
from model_core.inference import Animator
from model_core.windowing import plan_windows
from tests.conftest import make_model, speech_like, tiny_config


def test_join_frames_are_where_each_cross_fade_starts_and_ends():
    assert join_frames(500, 600, 60).size == 0  # one window: nothing to join
    windows = plan_windows(1500, 600, 60)
    joins = join_frames(1500, 600, 60)
    assert list(joins) == sorted({s for s, _ in windows[1:]} | {e for _, e in windows[:-1]})
    assert list(joins) == [540, 600, 1080, 1140]


def test_seam_report_on_a_windowed_take(tmp_path):
    model = make_model(tiny_config(causal_attention=True))
    path = save_checkpoint(tmp_path / "m.safetensors", model, CheckpointInfo(config=model.config))
    animator = Animator(path, device="cpu", window_seconds=4.0, overlap_seconds=1.0)
    audio = speech_like(14.0)
    report = seam_report(animator, audio)
    frames = len(animator.animate(audio, 16000))
    assert report["frames"] == frames and report["joins"] == len(join_frames(frames, 120, 30)) == 8
    assert report["max_step_at_joins_mm"] >= 0 and report["p99_step_elsewhere_mm"] > 0
    assert isinstance(report["seamless"], bool)
    assert np.isfinite(report["max_step_elsewhere_mm"])
