"""A speech-like test signal, numpy only: the main suite and the Blender suite (whose venv has no torch) share it."""

from __future__ import annotations

import numpy as np


def speech_like(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A deterministic voiced/unvoiced signal with a moving pitch, syllable envelope and pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 3.1 * t), 0, None) ** 0.5
    noise = rng.standard_normal(t.shape) * (np.sin(2 * np.pi * 0.9 * t) > 0.7)
    return (0.25 * voiced * envelope + 0.03 * noise).astype(np.float32)
