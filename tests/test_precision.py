"""The number formats a model runs in (model_core/precision.py): which one `auto` picks on which CPU, what each
path does to the network, and how far each lands from the exact float32 path, on the shipped model too."""

from __future__ import annotations

import glob

import numpy as np
import pytest
import torch
from torch import nn

from model_core import precision
from model_core.audio_io import load_audio_file
from model_core.inference import Animator
from tests.conftest import REPO, loaded, make_model, speech_like, tiny_config

SHIPPED = REPO / "models" / "arkit" / "jambatalk-arkit-small.safetensors"
CPU = torch.device("cpu")


def features(*flags: str) -> precision.CpuFeatures:
    return precision.CpuFeatures(frozenset(flags), "AVX512")


@pytest.mark.parametrize(("flags", "expected"), [
    (("avx512f", "avx512_bf16", "avx512_vnni"), "bf16"),  # AMD Zen 4, Intel Cooper Lake
    (("avx512f", "amx_bf16", "amx_int8", "amx_tile"), "bf16"),  # Intel Sapphire Rapids and later
    (("avx512f", "avx512_vnni"), "fp32"),  # Cascade Lake: no native bf16, so nothing is assumed faster
    (("avx2", "fma"), "fp32"),
    ((), "fp32"),
])
def test_auto_picks_bf16_only_where_the_cpu_computes_it(monkeypatch, flags, expected):
    monkeypatch.delenv(precision.CPU_OVERRIDE_ENV, raising=False)
    assert precision.cpu_default(features(*flags)) == expected


def test_the_environment_overrides_the_cpus_choice(monkeypatch):
    monkeypatch.setenv(precision.CPU_OVERRIDE_ENV, "INT8")
    assert precision.cpu_default(features("avx512_bf16")) == "int8"
    assert precision.resolve(CPU, "auto") == "int8"
    assert precision.resolve(CPU, "fp32") == "fp32"  # an explicit choice wins over the override
    monkeypatch.setenv(precision.CPU_OVERRIDE_ENV, "fast")
    with pytest.raises(ValueError, match="JAMBATALK_CPU_PRECISION='fast': choose one of fp32, bf16, int8"):
        precision.cpu_default()


def test_paths_that_a_device_cannot_run_are_refused_in_a_sentence():
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        precision.resolve(CPU, "fp16")
    with pytest.raises(ValueError, match="int8 runs on the CPU only"):
        precision.resolve(torch.device("cuda"), "int8")
    with pytest.raises(ValueError, match="Unknown precision 'fp8'"):
        precision.resolve(CPU, "fp8")


def test_this_machines_features_are_read():
    found = precision.cpu_features()
    assert found.capability and isinstance(found.describe(), str)


def test_bf16_stores_the_encoders_weights_and_keeps_the_decoder_exact():
    model = make_model()
    audio = speech_like(3.0)
    exact = Animator(loaded(model), device="cpu", precision="fp32").animate(audio, 16000)
    fast = Animator(loaded(make_model()), device="cpu", precision="bf16")
    encoder_linears = [m for m in fast.model.audio_encoder.modules() if isinstance(m, nn.Linear)]
    assert encoder_linears and all(m.weight.dtype == torch.bfloat16 for m in encoder_linears)
    assert fast.model.output_map.weight.dtype == torch.float32
    assert all(p.dtype == torch.float32 for n, p in fast.model.named_parameters() if not n.startswith("audio_encoder"))
    out = fast.animate(audio, 16000)
    assert out.dtype == np.float32
    error = np.abs(out - exact).max() / np.abs(exact).max()
    assert 0 < error < 0.05, error


def test_int8_quantises_the_encoders_linear_layers():
    audio = speech_like(3.0)
    exact = Animator(loaded(make_model()), device="cpu", precision="fp32").animate(audio, 16000)
    fast = Animator(loaded(make_model()), device="cpu", precision="int8")
    modules = list(fast.model.audio_encoder.modules())
    assert not any(type(m) is nn.Linear for m in modules)
    assert any(type(m).__module__.endswith("quantized.dynamic.modules.linear") for m in modules)
    assert type(fast.model.audio_feature_map) is nn.Linear  # the decoder's input map stays float32
    error = np.abs(fast.animate(audio, 16000) - exact).max() / np.abs(exact).max()
    assert 0 < error < 0.05, error


def test_windows_of_a_long_take_run_in_the_fast_path_too():
    audio = speech_like(9.0)
    model = tiny_config()
    exact = Animator(loaded(make_model(model)), device="cpu", precision="fp32", window_seconds=4.0,
                     overlap_seconds=1.0).animate(audio, 16000)
    fast = Animator(loaded(make_model(model)), device="cpu", precision="bf16", window_seconds=4.0,
                    overlap_seconds=1.0).animate(audio, 16000)
    assert fast.shape == exact.shape
    assert np.abs(fast - exact).max() / np.abs(exact).max() < 0.05


@pytest.mark.parametrize("path", ["bf16", "int8"])
def test_the_shipped_model_stays_within_half_the_bake_tolerance_on_real_speech(path):
    """The bar a default must clear (issue 14): max vertex error <= 0.05 mm against fp32, on recorded speech."""
    clips = [load_audio_file(p).samples for p in sorted(glob.glob(str(REPO / "models" / "demo-audio" / "*.wav")))]
    audio = np.concatenate(clips)
    exact = Animator(SHIPPED, device="cpu", precision="fp32").animate_16k(audio)
    fast = Animator(SHIPPED, device="cpu", precision=path).animate_16k(audio)
    error_mm = float(np.abs(fast - exact).max()) * 1000
    assert error_mm <= 0.05, f"{path}: {error_mm:.4f} mm"
