"""Assembly of the JambaTalk network: presets, patterns, styles, encoders, backends."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2Model

from model_core.audio_encoder import build_wav2vec2, cnn_frame_count, official_motion_frames
from model_core.config import JambaTalkConfig, preset
from model_core.layers.kernels import kernels_available
from model_core.model import JambaTalk
from tests.conftest import make_model, tiny_config


def parameter_counts(config: JambaTalkConfig) -> dict[str, int]:
    with torch.device("meta"):
        model = JambaTalk(config)
    counts: dict[str, int] = {}
    for name, p in model.named_parameters():
        top = name.split(".")[0]
        counts[top] = counts.get(top, 0) + p.numel()
    return counts


@pytest.mark.parametrize("name", ["vocaset", "biwi"])
def test_official_presets_have_official_parameter_counts(name, official_compat):
    summary = json.loads((official_compat / f"layout_{name}.json").read_text())["summary"]
    official = summary["per_top_level_module"]
    ours = parameter_counts(preset(name))
    for module in ("audio_encoder", "mamba", "mamba_moe", "transformer_decoder", "audio_feature_map",
                   "vertice_map_r"):
        assert ours[module] == official[module]["params"], module


def test_official_length_rule_truncates_like_the_release():
    assert official_motion_frames(205, 30.0) == 122
    assert official_motion_frames(410, 30.0) == 245
    assert cnn_frame_count(40000) == 124
    assert cnn_frame_count(399) == 0


def test_shared_pattern_reuses_modules_and_unshared_does_not():
    shared = JambaTalk(tiny_config(pattern="METEME"))
    layers = shared.decoder_layers()
    assert layers[0] is layers[4] and layers[1] is layers[3] is layers[5]
    unshared = JambaTalk(tiny_config(pattern="METEME", share_weights=False))
    ids = {id(m) for m in unshared.decoder_layers()}
    assert len(ids) == 6
    assert any(k.startswith("layers.5.") for k in unshared.state_dict())


@pytest.mark.parametrize("pattern", ["ME", "EE", "MM", "EM", "TMT", "E"])
def test_ablation_patterns_build_and_run(pattern):
    model = make_model(tiny_config(pattern=pattern, share_weights=False))
    with torch.no_grad():
        out = model(torch.randn(1, 16000))
    assert out.shape == (1, model.motion_frames_for(16000), 40, 3)
    assert torch.isfinite(out).all()


def test_bad_pattern_is_refused():
    with pytest.raises(ValueError, match="M, E and T"):
        tiny_config(pattern="MXT")


def test_style_embedding_changes_output_and_averages_when_absent():
    config = tiny_config(style_names=["anna", "ben", "cleo"], style_embedding=True)
    model = make_model(config)
    with torch.no_grad():
        torch.nn.init.normal_(model.style_embedding.weight, std=1.0)
        audio = torch.randn(1, 16000)
        eye = torch.eye(3)
        per_style = [model(audio, style=eye[i:i + 1]) for i in range(3)]
        average = model(audio)
        explicit_average = model(audio, style=torch.full((1, 3), 1 / 3))
    assert not torch.allclose(per_style[0], per_style[1])
    assert torch.allclose(average, explicit_average)


def test_fold_pairs_mode_folds_fifty_hertz_frames():
    config = tiny_config(audio_frame_mode="fold_pairs", motion_fps=25.0)
    model = make_model(config)
    assert model.audio_feature_map.in_features == 2 * config.audio_hidden_size
    samples = 16000 * 2 + 500
    with torch.no_grad():
        out = model(torch.randn(1, samples))
    assert out.shape[1] == cnn_frame_count(samples) // 2 == model.motion_frames_for(samples)


def test_pretrained_wav2vec2_loads_from_a_local_folder(tmp_path):
    torch.manual_seed(3)
    cfg = Wav2Vec2Config(**tiny_config().wav2vec2)
    source = Wav2Vec2Model(cfg)
    source.save_pretrained(tmp_path / "w2v")
    loaded = build_wav2vec2({}, pretrained=tmp_path / "w2v")
    for (name, a), (_, b) in zip(source.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    model = JambaTalk(tiny_config(), wav2vec2=loaded)
    assert model.audio_encoder is loaded


def test_missing_pretrained_wav2vec2_is_a_clear_error(tmp_path):
    with pytest.raises(OSError):
        build_wav2vec2({}, pretrained=tmp_path / "nowhere")


def test_backend_flag_reaches_every_mamba_layer():
    model = make_model(tiny_config(pattern="METE"))
    model.set_backend("torch")
    flags = [m.use_kernels for m in model.modules() if hasattr(m, "use_kernels")]
    assert flags and not any(flags)
    with pytest.raises(ValueError):
        model.set_backend("cuda-please")


def test_training_step_backpropagates_through_every_part():
    model = make_model(tiny_config(pattern="METE")).train()
    out = model(torch.randn(1, 12000))
    loss = out.pow(2).mean() + model.moe_aux_loss()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    for name in ("mamba.A_log", "mamba_moe.moe.experts.w1", "transformer_decoder.lrl_rope.proj.0.weight",
                 "audio_encoder.encoder.layers.0.attention.q_proj.weight"):
        assert grads[name] is not None and torch.isfinite(grads[name]).all(), name


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_kernels_and_torch_path_agree():
    if not kernels_available():
        pytest.skip("mamba-ssm / causal-conv1d kernels are not installed")
    model = make_model(preset("small", vertex_count=200)).cuda()
    audio = torch.randn(1, 16000 * 8, device="cuda")
    with torch.no_grad():
        model.set_backend("auto")
        fast = model(audio)
        model.set_backend("torch")
        slow = model(audio)
    assert float((fast - slow).abs().max() / slow.abs().max()) < 1e-3
