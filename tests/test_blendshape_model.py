"""The blendshapes output kind: K named weights through the head's basis, in the network, checkpoints and Animator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_core.checkpoint import CheckpointError, CheckpointInfo, load_checkpoint, save_checkpoint
from model_core.inference import Animator
from tests.conftest import make_model, speech_like, tiny_config

NAMES = ["jawOpen", "mouthClose", "mouthFunnel", "eyeBlinkLeft"]


def blendshape_model(seed: int = 0):
    model = make_model(tiny_config(output_kind="blendshapes", blendshape_names=list(NAMES)), seed=seed, head_std=3.0)
    torch.manual_seed(seed + 1)
    torch.nn.init.constant_(model.output_map.bias, 0.5)  # weights spread across and beyond 0..1
    model.set_blendshape_basis(torch.randn(len(NAMES), 40, 3) * 0.01)
    return model


def test_config_requires_names_for_blendshapes_only():
    with pytest.raises(ValueError, match="blendshape_names"):
        tiny_config(output_kind="blendshapes")
    with pytest.raises(ValueError, match="blendshape_names"):
        tiny_config(blendshape_names=["jawOpen"])
    with pytest.raises(ValueError, match="output_kind"):
        tiny_config(output_kind="mesh")
    assert tiny_config(output_kind="blendshapes", blendshape_names=NAMES).output_channels == 4


def test_offsets_are_clamped_weights_through_the_basis():
    model = blendshape_model()
    features = torch.randn(1, 12, model.config.audio_feature_in)
    raw = model.decode_channels(features)
    assert raw.shape == (1, 12, 4) and (raw < 0).any() and (raw > 0).any()  # the clamp matters here
    offsets = model.decode(features)
    expected = raw.clamp(0, 1) @ model.blendshape_basis
    assert torch.allclose(offsets, expected) and offsets.shape == (1, 12, 120)
    assert not torch.allclose(offsets, raw @ model.blendshape_basis)


def test_checkpoint_carries_basis_names_landmarks_and_sources(tmp_path):
    model = blendshape_model()
    info = CheckpointInfo(config=model.config, head={"name": "h", "landmarks": {"lip_upper": 3, "chin": 7}},
                          sources=[{"source": "asterisk", "licence": "CC-BY-SA-3.0"}])
    path = save_checkpoint(tmp_path / "b.safetensors", model, info, template=np.zeros((40, 3), np.float32))
    loaded = load_checkpoint(path)
    assert loaded.config.blendshape_names == NAMES and loaded.info.landmarks == {"lip_upper": 3, "chin": 7}
    assert loaded.info.sources[0]["licence"] == "CC-BY-SA-3.0"
    assert torch.equal(loaded.model.blendshape_basis, model.blendshape_basis)
    bad = CheckpointInfo(config=model.config, head={"landmarks": {"chin": 400}})
    save_checkpoint(tmp_path / "bad.safetensors", model, bad)
    with pytest.raises(CheckpointError, match="landmarks"):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_animator_gives_weights_and_the_matching_offsets(tmp_path):
    model = blendshape_model()
    path = save_checkpoint(tmp_path / "b.safetensors", model, CheckpointInfo(config=model.config))
    animator = Animator(path, device="cpu")
    audio = speech_like(3.0)
    weights = animator.animate_weights(audio, 16000)
    offsets = animator.animate(audio, 16000)
    assert animator.output_kind == "blendshapes" and animator.blendshape_names == NAMES
    assert weights.shape == (offsets.shape[0], 4) and weights.min() >= 0 and weights.max() <= 1
    assert 0 < (weights == 0).mean() < 1  # the trained-free head spans the range, so clamping happens
    assert np.allclose(offsets, animator.weights_to_offsets(weights), atol=1e-6)


def test_windowed_weights_match_one_pass_away_from_seams(tmp_path):
    model = blendshape_model(seed=3)
    path = save_checkpoint(tmp_path / "b.safetensors", model, CheckpointInfo(config=model.config))
    audio = speech_like(9.0, seed=2)
    whole = Animator(path, device="cpu").animate_weights(audio, 16000)
    windowed = Animator(path, device="cpu", window_seconds=4.0, overlap_seconds=1.0).animate_weights(audio, 16000)
    assert windowed.shape == whole.shape and windowed.min() >= 0 and windowed.max() <= 1
    assert np.abs(windowed - whole).max() < 0.35  # a global-context model differs a little, never wildly


def test_vertex_models_refuse_weight_calls(tmp_path):
    model = make_model()
    path = save_checkpoint(tmp_path / "v.safetensors", model, CheckpointInfo(config=model.config))
    animator = Animator(path, device="cpu")
    assert animator.output_kind == "vertices" and animator.blendshape_names == []
    with pytest.raises(ValueError, match="vertex offsets"):
        animator.animate_weights(speech_like(1.0), 16000)
