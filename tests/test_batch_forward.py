"""Batched forward passes: right-padded takes in one pass give what each take gives alone (within 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_core.inference import Animator
from tests.conftest import REPO, loaded, make_model, speech_like, tiny_config

SHIPPED = REPO / "models" / "arkit" / "jambatalk-arkit-small.safetensors"
SECONDS = [2.0, 3.37, 1.21, 2.9, 1.6]


def takes(seconds=SECONDS) -> list[np.ndarray]:
    return [speech_like(s, seed=i) for i, s in enumerate(seconds)]


def one_by_one(animator: Animator, samples: list[np.ndarray], subjects=None) -> list[np.ndarray]:
    subjects = subjects or [None] * len(samples)
    if animator.output_kind == "blendshapes":
        return [animator.animate_weights_16k(x, s) for x, s in zip(samples, subjects, strict=True)]
    return [animator.animate_16k(x, s) for x, s in zip(samples, subjects, strict=True)]


def assert_same(batched: list[np.ndarray], alone: list[np.ndarray]) -> None:
    assert len(batched) == len(alone)
    for b, a in zip(batched, alone, strict=True):
        assert b.shape == a.shape
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)


def test_the_shipped_arkit_model_batches_exactly():
    animator = Animator(SHIPPED, device="cpu")
    assert animator.model.right_padding_breaks() is None
    samples = takes()
    batched = animator.animate_batch_16k(samples)
    assert_same(batched, one_by_one(animator, samples))
    assert all(b.shape[1] == 52 and 0 <= b.min() and b.max() <= 1 for b in batched)


@pytest.mark.parametrize("overrides", [{}, {"causal_attention": True}, {"audio_frame_mode": "fold_pairs"},
                                       {"pattern": "TMET", "share_weights": False}])
def test_vertex_models_batch_exactly(overrides):
    animator = Animator(loaded(make_model(tiny_config(**overrides))), device="cpu")
    samples = takes()
    batched = animator.animate_batch_16k(samples)
    assert all(b.ndim == 3 and b.shape[1:] == (40, 3) for b in batched)
    assert_same(batched, one_by_one(animator, samples))


def test_each_take_keeps_its_own_subject():
    animator = Animator(loaded(make_model(tiny_config(style_names=["a", "b"], style_embedding=True))), device="cpu")
    samples, subjects = takes()[:4], ["a", None, "b", "a"]
    assert_same(animator.animate_batch_16k(samples, subjects), one_by_one(animator, samples, subjects))


def test_a_take_longer_than_a_window_is_windowed_alone():
    animator = Animator(loaded(make_model()), device="cpu", window_seconds=3.0, overlap_seconds=0.5)
    samples = takes([2.0, 7.5, 1.5])
    assert_same(animator.animate_batch_16k(samples), one_by_one(animator, samples))


def test_without_the_attention_mask_padding_would_leak():
    """The negative control: padding does reach real frames through attention unless it is masked."""
    model = make_model(tiny_config(pattern="T"))
    animator = Animator(loaded(model), device="cpu")
    samples = takes([1.2, 3.0])
    audio = [torch.from_numpy(x) for x in samples]
    with torch.inference_mode():
        features, frames = model.encode_batch(audio)
        mask = torch.arange(features.shape[1])[None] < torch.tensor(frames)[:, None]
        masked = model.decode_channels(features, key_mask=mask)[0, : frames[0]]
        leaky = model.decode_channels(features)[0, : frames[0]]
        alone = model.decode_channels(features[:1, : frames[0]])[0]
    torch.testing.assert_close(masked, alone, rtol=0, atol=1e-5)
    assert (leaky - alone).abs().max() > 1e-3
    assert_same(animator.animate_batch_16k(samples), one_by_one(animator, samples))


def test_models_where_padding_changes_results_only_batch_equal_lengths():
    """An MoE with less capacity than tokens drops tokens by position, which padding shifts: such models must not
    pad, and still batch takes of equal length."""
    animator = Animator(loaded(make_model(tiny_config(moe_capacity_factor_eval=1.0))), device="cpu")
    assert "capacity" in animator.model.right_padding_breaks()
    samples = takes([2.0, 3.1, 2.0, 1.4])
    samples[2] = speech_like(2.0, seed=7)  # equal length, other content: shares a pass with take 0
    alone = one_by_one(animator, samples)
    assert_same(animator.animate_batch_16k(samples), alone)
    padded = animator._predict_padded(samples, [None] * 4)  # what padding would have given
    assert max(float(np.abs(p - a.reshape(len(a), -1)).max()) for p, a in zip(padded, alone, strict=True)) > 1e-4
    animator.model.set_moe_policy("random")
    assert "random" in animator.model.right_padding_breaks()
