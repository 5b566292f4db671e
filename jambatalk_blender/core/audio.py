"""The audio a bake sends to the worker, and reading its samples for the life layer's prosody.

`AudioSource` is plain data (the glue fills it from a sound strip or a file on the main thread). The worker
decodes the audio for the model; the extension only needs the samples for prosody (pauses, accents), and reads
PCM WAV with the standard library. Other formats go through a decoder the glue passes in (Blender's `aud`);
where neither can read the file, the bake goes on without prosody (blinks still run, brows are off).
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A decoder: (audio bytes, path or None) -> (mono float32 samples, sample rate), or raises.
Decoder = Callable[[bytes, "str | None"], "tuple[np.ndarray, int]"]


@dataclass(frozen=True)
class AudioSource:
    """Audio bytes as stored on disk, the seconds of it to animate, and the scene frame of its first sample."""

    data: bytes
    start_s: float
    end_s: float | None
    first_frame: float
    label: str  # for messages and as the default take name
    path: str | None = None  # where it came from (None for packed sounds)


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the rate of a PCM WAV (8/16/24/32-bit); ValueError for anything else."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            channels, width, rate, count = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(count)
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a PCM WAV file ({exc})") from None
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        samples = (((b[:, 2] << 24) | (b[:, 1] << 16) | (b[:, 0] << 8)) >> 8).astype(np.float32) / 8388608.0
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648.0
    else:
        raise ValueError(f"unsupported WAV sample width {width}")
    samples = samples[: (samples.size // channels) * channels].reshape(-1, channels).mean(axis=1)
    return samples.astype(np.float32), int(rate)


def source_samples(source: AudioSource, decoder: Decoder | None = None) -> tuple[np.ndarray, int] | None:
    """The mono samples the take covers (start_s .. end_s), or None when this Blender cannot decode them."""
    samples = rate = None
    try:
        samples, rate = read_wav(source.data)
    except ValueError:
        if decoder is not None:
            try:
                samples, rate = decoder(source.data, source.path)
            except Exception:  # any decoder failure only means no prosody: the bake itself goes on
                return None
    if samples is None or rate is None or rate <= 0:
        return None
    start = max(0, int(round(source.start_s * rate)))
    end = samples.shape[0] if source.end_s is None else min(samples.shape[0], int(round(source.end_s * rate)))
    if end - start < rate // 10:
        return None
    return np.ascontiguousarray(samples[start:end], dtype=np.float32), int(rate)
