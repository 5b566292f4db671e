"""The audio the benchmarks animate: a deterministic speech-like signal (any length, no files), and real recorded
speech (the demo's public-domain LibriVox clips, repeated to length) for the shipped model's accuracy in mm."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

DEMO_AUDIO = Path(__file__).resolve().parents[2] / "models" / "demo-audio"


def synth_speech(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A deterministic speech-like float32 signal: voiced syllables, fricative noise bursts and pauses.

    Voiced segments are 12 harmonics of a gliding pitch (80-250 Hz); fricatives are differentiated noise;
    the segment lengths (0.08-0.35 s) give a syllable rate near speech. Not speech, but it keeps wav2vec2's
    activations in a realistic range (pure noise or silence would not).
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    if n <= 0:
        raise ValueError("The test signal needs a positive duration.")
    ctrl_rate = 100  # control values (pitch, envelopes) at 100 Hz, interpolated to the sample rate
    n_ctrl = int(math.ceil(seconds * ctrl_rate)) + 2
    kinds, lengths = [], []
    while sum(lengths) < n_ctrl:
        kinds.append(rng.choice(3, p=[0.7, 0.2, 0.1]))  # 0 voiced, 1 fricative, 2 pause
        lengths.append(int(rng.integers(8, 36)))
    kinds_a, lengths_a = np.array(kinds), np.array(lengths)
    amps = rng.uniform(0.4, 1.0, len(kinds_a))
    voiced = np.repeat(np.where(kinds_a == 0, amps, 0.0), lengths_a)[:n_ctrl]
    fric = np.repeat(np.where(kinds_a == 1, amps * 0.5, 0.0), lengths_a)[:n_ctrl]
    smooth = np.ones(3) / 3  # 30 ms ramps instead of clicks
    voiced, fric = np.convolve(voiced, smooth, "same"), np.convolve(fric, smooth, "same")
    # Pitch: a slow random walk (phrase intonation) plus a 5 Hz wobble, kept in a speaking range.
    walk = np.cumsum(rng.normal(0.0, 2.0, n_ctrl))
    span = min(200, n_ctrl)  # subtracting a 2 s moving mean keeps the walk from drifting away
    f0 = np.clip(140.0 + walk - np.convolve(walk, np.ones(span) / span, "same")
                 + 8.0 * np.sin(2 * np.pi * 5.0 * np.arange(n_ctrl) / ctrl_rate), 80.0, 250.0)

    t_ctrl = np.arange(n_ctrl) / ctrl_rate
    t = np.arange(n) / sample_rate
    phase = 2 * np.pi * np.cumsum(np.interp(t, t_ctrl, f0)) / sample_rate
    tone = np.zeros(n)
    for k in range(1, 13):
        if k * 250.0 < sample_rate / 2:  # no harmonic above Nyquist
            tone += np.sin(k * phase) / k
    noise = rng.standard_normal(n + 1)
    signal = (np.interp(t, t_ctrl, voiced) * tone + np.interp(t, t_ctrl, fric) * np.diff(noise)
              + 1e-3 * rng.standard_normal(n))
    return (0.5 * signal / np.max(np.abs(signal))).astype(np.float32)


def recorded_speech(seconds: float) -> np.ndarray:
    """`seconds` of the demo's LibriVox clips at 16 kHz, one after the other and repeated to length."""
    from model_core.audio_io import TARGET_SAMPLE_RATE, load_audio_file

    clips = [load_audio_file(path).samples for path in sorted(DEMO_AUDIO.glob("*.wav"))]
    if not clips:
        raise FileNotFoundError(f"No recordings in {DEMO_AUDIO}: the shipped model is measured on them.")
    joined = np.concatenate(clips)
    n = int(round(seconds * TARGET_SAMPLE_RATE))
    return np.resize(joined, n).astype(np.float32)
