"""Write a short synthetic utterance (voiced syllables with pauses) to a WAV file, for the demo."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf


def synth_utterance(seconds: float = 6.0, sample_rate: int = 16000, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 130 + 25 * np.sin(2 * np.pi * 0.5 * t) + 10 * np.sin(2 * np.pi * 2.3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    # Harmonics shaped by two moving "formant" weights stand in for vowels.
    f1 = 0.5 + 0.5 * np.sin(2 * np.pi * 1.7 * t)
    voiced = sum((f1 if k < 4 else 1 - f1) * np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 2.8 * t), 0, None) ** 0.6
    pauses = (np.sin(2 * np.pi * 0.35 * t) > -0.8).astype(float)
    hiss = rng.standard_normal(t.shape) * (np.sin(2 * np.pi * 1.1 * t) > 0.85)
    return (0.3 * voiced * syllables * pauses + 0.02 * hiss).astype(np.float32)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "demo_output/demo.wav")
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, synth_utterance(), 16000, subtype="PCM_16")
    print(f"[demo] wrote {target}")
