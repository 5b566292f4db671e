"""Our network against golden numbers of the official JambaTalk network (../shared/reference/official_compat)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from model_core.checkpoint import CheckpointError, load_checkpoint
from model_core.config import preset
from model_core.official import convert_official, expected_shapes, official_to_ours

STACK = ["stack_0_audio_feature_map", "stack_1_mamba", "stack_2_mamba_moe", "stack_3_transformer_decoder",
         "stack_4_mamba_moe", "stack_5_mamba", "stack_6_mamba_moe"]


def relative_error(ours: torch.Tensor, golden: torch.Tensor) -> float:
    return float((ours - golden).abs().max() / golden.abs().max())


@pytest.fixture(scope="module")
def golden(official_compat):
    config_json = json.loads((official_compat / "golden_small_config.json").read_text())
    config = preset("vocaset", feature_dim=64, wav2vec2=config_json["wav2vec2_config"])
    state = {k: v.float() for k, v in load_file(official_compat / "golden_small_state_dict.safetensors").items()}
    cases = load_file(official_compat / "golden_cases.safetensors")
    return config, state, cases


@pytest.fixture(scope="module")
def converted(golden, tmp_path_factory):
    """The golden weights saved as an official .pth (with training-only parts), then converted."""
    config, state, _ = golden
    official = dict(state)
    official["text_encoder.lm_head.weight"] = torch.zeros(33, 8)
    official["lip_map.weight"] = torch.zeros(4, 762)
    official["transformer.encoder.layers.0.linear1.weight"] = torch.zeros(2, 2)
    official["lm_head.bias"] = torch.zeros(33)
    folder = tmp_path_factory.mktemp("official")
    torch.save(official, folder / "vocaset.pth")
    out = convert_official(folder / "vocaset.pth", folder / "vocaset.safetensors", config=config)
    loaded = load_checkpoint(out)
    loaded.model.set_moe_policy("all")
    return loaded


def test_decoder_matches_golden_stack_and_offsets(converted, golden):
    _, _, cases = golden
    steps: list[torch.Tensor] = []
    with torch.no_grad():
        offsets = converted.model.decode(cases["case_decoder/input_hidden"], intermediates=steps)
    assert relative_error(offsets, cases["case_decoder/offsets"]) <= 1e-4
    for name, ours in zip(STACK, steps, strict=True):
        assert relative_error(ours, cases[f"case_decoder/{name}"]) <= 2e-4, name


def test_full_prediction_matches_golden(converted, golden):
    _, _, cases = golden
    model = converted.model
    audio = cases["case_full/audio_input"]
    steps: list[torch.Tensor] = []
    with torch.no_grad():
        cnn = model.audio_encoder.feature_extractor(audio).transpose(1, 2)
        encoded = model.encode(audio)
        offsets = model.decode(encoded, intermediates=steps)
    assert relative_error(cnn, cases["case_full/cnn_features"]) <= 2e-4
    assert encoded.shape[1] == model.motion_frames_for(audio.shape[1]) == 74
    assert relative_error(encoded, cases["case_full/encoder_last_hidden_state"]) <= 2e-4
    for name, ours in zip(STACK, steps, strict=True):
        assert relative_error(ours, cases[f"case_full/{name}"]) <= 2e-4, name
    vertices = offsets + cases["case_full/template"]
    assert relative_error(vertices, cases["case_full/vertices"]) <= 1e-4


def test_moe_routing_weights_match_golden(converted, golden):
    """Under policy 'all' each token's expert weights are the softmax gates of the official Top2Gating."""
    _, _, cases = golden
    model = converted.model
    captured = []
    layer = model.mamba_moe
    hook = layer.moe.gate.register_forward_hook(lambda mod, args, out: captured.append(out[0]))
    try:
        with torch.no_grad():
            model.decode(cases["case_decoder/input_hidden"])
    finally:
        hook.remove()
    assert len(captured) == 3
    for call, weights in enumerate(captured, start=1):
        assert torch.allclose(weights, cases[f"case_decoder/moe_call{call}_expert_weights"], atol=1e-4)


def test_expected_policy_is_close_to_official_monte_carlo(converted, golden):
    """The deterministic default equals the mean of the official stochastic rule (estimated by sampling)."""
    _, _, cases = golden
    model = converted.model
    hidden = cases["case_decoder/input_hidden"][:, :30]
    with torch.no_grad():
        model.set_moe_policy("expected")
        expected = model.decode(hidden)
        model.set_moe_policy("random")
        torch.manual_seed(0)
        samples = torch.stack([model.decode(hidden) for _ in range(300)])
        model.set_moe_policy("all")
    # Per-layer expectation is not the expectation of the whole stack, but it is within ~1% of it.
    assert relative_error(expected, samples.mean(0)) < 0.03
    assert relative_error(samples[0], samples[1]) > 1e-3  # the official rule really is stochastic


@pytest.mark.parametrize("preset_name", ["vocaset", "biwi"])
def test_official_layouts_convert_exactly(official_compat, preset_name):
    layout = json.loads((official_compat / f"layout_{preset_name}.json").read_text())["state_dict"]
    renamed = official_to_ours({k: k for k in layout})  # our key -> official key
    found = {ours: tuple(layout[official]["shape"]) for ours, official in renamed.items()}
    assert found == expected_shapes(preset(preset_name))
    assert len(layout) == 1077


def test_wrong_preset_names_the_problem(golden, tmp_path):
    config, state, _ = golden
    torch.save(state, tmp_path / "small.pth")
    with pytest.raises(CheckpointError, match=r"wrong shape\(s\): audio_encoder\.") as err:
        convert_official(tmp_path / "small.pth", tmp_path / "x.safetensors", preset_name="vocaset")
    assert "--preset" in str(err.value)
    assert not (tmp_path / "x.safetensors").exists()
    partial = {k: v for k, v in state.items() if not k.startswith("mamba.")}
    partial["extra.weight"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"9 missing key\(s\): mamba\..*1 unexpected key\(s\): extra\.weight"):
        convert_official(tmp_path / "partial.pth", tmp_path / "x.safetensors", config=config)
