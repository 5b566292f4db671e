"""The worker's job runner: out-of-memory retries with smaller windows, strength, smoothing, dtype."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_core.checkpoint import save_checkpoint
from model_core.worker.jobs import JobRequest
from model_core.worker.models import ModelRegistry
from tests.conftest import make_model, speech_like


@pytest.fixture()
def registry(tmp_path):
    save_checkpoint(tmp_path / "tiny.safetensors", make_model())
    return ModelRegistry([tmp_path / "tiny.safetensors", tmp_path / "missing.safetensors"], device="cpu")


def run(registry: ModelRegistry, request: JobRequest) -> np.ndarray:
    offsets, frames, fps = registry.animate(request, lambda fraction, stage: None, lambda: False)
    assert offsets.shape[0] == frames and fps == 30.0
    return offsets


def fail_on_long_windows(animator, max_samples: int) -> list[int]:
    """Fault injection: the encoder raises the real torch OOM error for inputs longer than max_samples."""
    seen: list[int] = []
    original = animator.model.encode

    def encode(input_values, *args, **kwargs):
        seen.append(input_values.shape[1])
        if input_values.shape[1] > max_samples:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return original(input_values, *args, **kwargs)

    animator.model.encode = encode
    return seen


def test_failed_checkpoint_is_reported_not_fatal(registry):
    described = {m["name"]: m for m in registry.describe()}
    assert described["tiny"]["state"] == "ready" and described["tiny"]["vertex_count"] == 40
    assert described["missing"]["state"] == "failed" and "does not exist" in described["missing"]["error"]
    with pytest.raises(LookupError, match="failed to load"):
        registry.resolve("missing")


def test_out_of_memory_retries_with_smaller_windows(registry):
    animator = registry.resolve("tiny").animator
    samples = speech_like(30.0)
    expected = animator.animate_16k(samples)
    seen = fail_on_long_windows(animator, max_samples=12 * 16000)
    offsets = run(registry, JobRequest(model="tiny", samples=samples))
    assert max(seen) > 12 * 16000 and any(n <= 12 * 16000 for n in seen)  # it tried 20 s, then 10 s windows
    assert animator.window_seconds == 20.0  # restored for the next job
    assert offsets.shape == expected.shape
    # Different windowing, same take: equal away from the (cross-faded) seams of the smaller windows.
    assert np.abs(offsets - expected).max() < 0.5 * np.abs(expected).max()


def test_out_of_memory_at_every_size_is_a_clear_error(registry):
    animator = registry.resolve("tiny").animator
    fail_on_long_windows(animator, max_samples=0)
    with pytest.raises(MemoryError, match="ran out of memory even with short windows"):
        run(registry, JobRequest(model="tiny", samples=speech_like(30.0)))
    assert animator.window_seconds == 20.0


def test_strength_smoothing_and_float16(registry):
    samples = speech_like(3.0)
    plain = run(registry, JobRequest(model="tiny", samples=samples))
    doubled = run(registry, JobRequest(model="tiny", samples=samples, strength=2.0))
    np.testing.assert_allclose(doubled, 2 * plain, rtol=1e-5, atol=1e-8)
    smooth = run(registry, JobRequest(model="tiny", samples=samples, smoothing_s=0.1))
    assert np.abs(np.diff(smooth, axis=0)).mean() < 0.7 * np.abs(np.diff(plain, axis=0)).mean()
    half = run(registry, JobRequest(model="tiny", samples=samples, dtype="float16"))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half.astype(np.float32), plain, atol=1e-3 * np.abs(plain).max() + 1e-6)
