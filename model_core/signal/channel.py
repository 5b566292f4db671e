"""What a room, a microphone, a phone line and a codec do to speech: pure numpy/scipy functions on 16 kHz audio.

Every function takes and returns float64 audio of the same length and draws randomness only from the `rng`
it is given, so a training crop's augmentation is a function of its seed.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import warnings

import numpy as np
import soundfile as sf
from scipy.signal import butter, fftconvolve, resample_poly, sosfiltfilt

SAMPLE_RATE = 16000
NOISE_KINDS = ("white", "pink", "brown", "babble")
CODECS = ("mp3", "vorbis", "opus")
_SOUNDFILE_CODECS = {"mp3": ("MP3", "MPEG_LAYER_III"), "vorbis": ("OGG", "VORBIS"), "opus": ("OGG", "OPUS")}
_FFMPEG_CODECS = {"mp3": ("mp3", "libmp3lame"), "vorbis": ("ogg", "libvorbis"), "opus": ("ogg", "libopus")}
_warned: set[str] = set()


def power(audio: np.ndarray) -> float:
    return float(np.mean(np.square(audio, dtype=np.float64))) if len(audio) else 0.0


# -- band-limiting --------------------------------------------------------------------------------------------------
def _filter(audio: np.ndarray, order: int, cutoff: float | list[float], kind: str, rate: int) -> np.ndarray:
    # Zero-phase (forward-backward): a causal filter would delay the speech against the motion.
    sos = butter(order, cutoff, btype=kind, fs=rate, output="sos")
    if len(audio) <= 3 * (2 * len(sos) + 1):
        return audio
    return sosfiltfilt(sos, audio)


def mu_law(audio: np.ndarray) -> np.ndarray:
    """8-bit G.711 mu-law quantisation (the telephone's own), for audio in [-1, 1]."""
    x = np.clip(audio, -1.0, 1.0)
    code = np.round(np.sign(x) * np.log1p(255.0 * np.abs(x)) / np.log(256.0) * 127.0) / 127.0
    return np.sign(code) * np.expm1(np.abs(code) * np.log(256.0)) / 255.0


def telephone(audio: np.ndarray, companding: bool = True) -> np.ndarray:
    """Narrowband telephone: 8 kHz round trip, optional mu-law, 300-3400 Hz band-pass."""
    x = np.asarray(audio, dtype=np.float64)
    narrow = resample_poly(x, 1, 2)
    if companding:
        peak = float(np.max(np.abs(narrow))) if len(narrow) else 0.0
        scale = 0.9 / peak if peak > 0.9 else 1.0  # mu-law clips at full scale; keep the level, never the clip
        narrow = mu_law(narrow * scale) / scale
    narrow = _filter(narrow, 8, [300.0, 3400.0], "bandpass", SAMPLE_RATE // 2)
    wide = resample_poly(narrow, 2, 1)
    out = np.zeros(len(x))
    out[: min(len(x), len(wide))] = wide[: len(x)]
    return out


def band_limit(audio: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """High-pass at `low_hz` and low-pass at `high_hz` (skipped near 8 kHz, where nothing is left to cut)."""
    x = np.asarray(audio, dtype=np.float64)
    if low_hz > 0:
        x = _filter(x, 4, low_hz, "highpass", SAMPLE_RATE)
    if high_hz < 0.97 * SAMPLE_RATE / 2:
        x = _filter(x, 8, high_hz, "lowpass", SAMPLE_RATE)
    return x


# -- noise ----------------------------------------------------------------------------------------------------------
def colored_noise(length: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown), unit power."""
    white = rng.standard_normal(length)
    if exponent == 0 or length < 4:
        return white / np.sqrt(max(power(white), 1e-20))
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(length, 1.0 / SAMPLE_RATE)
    shape = np.maximum(freqs, 20.0) ** (-exponent / 2.0)  # flat below 20 Hz: no huge DC drift in brown noise
    shape[0] = 0.0
    noise = np.fft.irfft(spectrum * shape, n=length)
    return noise / np.sqrt(max(power(noise), 1e-20))


def babble(audio: np.ndarray, rng: np.random.Generator, voices: int = 4) -> np.ndarray:
    """Speech-like noise from the take's own audio: reversed or chunk-shuffled copies, summed, unit power.

    Nothing in it lines up with the take's motion, so the model learns to follow the loudest voice.
    """
    x = np.asarray(audio, dtype=np.float64)
    out = np.zeros(len(x))
    for _ in range(voices):
        if rng.random() < 0.5:
            copy = x[::-1]
        else:
            chunk = int(rng.integers(1600, 4800))  # 100-300 ms: syllable-sized pieces
            pieces = [x[i: i + chunk] for i in range(0, len(x), chunk)]
            copy = np.concatenate([pieces[i] for i in rng.permutation(len(pieces))]) if pieces else x
        out += np.roll(copy, int(rng.integers(0, max(1, len(x)))))
    return out / np.sqrt(power(out)) if power(out) > 0 else out


def noise_of(kind: str, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unit-power noise of `kind` (white, pink, brown or babble) as long as `audio`."""
    if kind == "babble" and power(audio) > 0:
        return babble(audio, rng)
    exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}.get(kind, 1.0)
    return colored_noise(len(audio), exponent, rng)


def add_noise(audio: np.ndarray, snr_db: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    """`audio` plus noise of `kind` at `snr_db` (signal power over the whole crop / noise power)."""
    x = np.asarray(audio, dtype=np.float64)
    signal = power(x)
    if signal <= 0:
        return x.copy()
    noise = noise_of(kind, x, rng)
    return x + noise * np.sqrt(signal / 10.0 ** (snr_db / 10.0))


# -- room -----------------------------------------------------------------------------------------------------------
def room_response(rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: the direct path (1 at t=0) plus exponentially decaying noise.

    The tail decays by 60 dB in `rt60` seconds and starts after a 2-5 ms pre-delay; its energy is `drr_db`
    below the direct path's. The direct path stays at t=0, so reverb never shifts speech against motion.
    """
    length = max(2, int(rt60 * SAMPLE_RATE))
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.907755 * t / rt60)  # ln(1000): -60 dB at rt60
    tail[: int(rng.uniform(0.002, 0.005) * SAMPLE_RATE)] = 0.0
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / max(power(tail) * length, 1e-20))
    tail[0] = 1.0
    return tail


def reverb(audio: np.ndarray, rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    return fftconvolve(x, room_response(rt60, drr_db, rng))[: len(x)]


# -- level ----------------------------------------------------------------------------------------------------------
def gain(audio: np.ndarray, gain_db: float, soft_clip: bool) -> np.ndarray:
    """Scale by `gain_db`; where that passes full scale, soft-clip (tanh) or scale back under it."""
    x = np.asarray(audio, dtype=np.float64) * 10.0 ** (gain_db / 20.0)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0.99:
        return x
    return np.tanh(x) if soft_clip else x * (0.99 / peak)


# -- codecs ---------------------------------------------------------------------------------------------------------
def _warn_once(key: str, text: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(text, RuntimeWarning, stacklevel=3)


def codec_backend(codec: str) -> str | None:
    """'soundfile' when libsndfile encodes `codec` (MP3 needs libsndfile >= 1.1), else 'ffmpeg' if installed."""
    fmt, subtype = _SOUNDFILE_CODECS[codec]
    if fmt in sf.available_formats() and subtype in sf.available_subtypes(fmt):
        return "soundfile"
    return "ffmpeg" if shutil.which("ffmpeg") else None


def _soundfile_round_trip(audio: np.ndarray, codec: str, quality: float) -> np.ndarray:
    fmt, subtype = _SOUNDFILE_CODECS[codec]
    buffer = io.BytesIO()
    sf.write(buffer, audio.astype(np.float32), SAMPLE_RATE, format=fmt, subtype=subtype, compression_level=quality)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float64", always_2d=False)
    return decoded


def _ffmpeg_round_trip(audio: np.ndarray, codec: str, quality: float) -> np.ndarray:
    container, encoder = _FFMPEG_CODECS[codec]
    bitrate = f"{int(round(48 - 32 * quality))}k"  # compression level 0..1 -> 48..16 kbit/s
    raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1"]
    encoded = subprocess.run(["ffmpeg", "-v", "error", *raw, "-i", "pipe:0", "-c:a", encoder, "-b:a", bitrate,
                              "-f", container, "pipe:1"], input=audio.astype("<f4").tobytes(),
                             capture_output=True, check=True, timeout=60).stdout
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", *raw, "pipe:1"], input=encoded,
                             capture_output=True, check=True, timeout=60).stdout
    return np.frombuffer(decoded, dtype="<f4").astype(np.float64)


def _undo_delay(decoded: np.ndarray, original: np.ndarray, max_lag: int = 2048) -> np.ndarray:
    """Line the decoded audio up with the original (encoders may add a delay) and give it the same length."""
    n = len(original)
    if len(decoded) == 0 or power(original) <= 0:
        return np.zeros(n)
    size = 1 << int(np.ceil(np.log2(len(decoded) + n)))
    corr = np.fft.irfft(np.fft.rfft(decoded, size) * np.conj(np.fft.rfft(original, size)), size)
    lags = np.concatenate([corr[: max_lag + 1], corr[-max_lag:]])
    lag = int(np.argmax(lags))
    lag = lag if lag <= max_lag else lag - len(lags)
    shifted = decoded[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), decoded])
    out = np.zeros(n)
    out[: min(n, len(shifted))] = shifted[:n]
    return out


def codec_round_trip(audio: np.ndarray, codec: str, quality: float, backend: str | None = "auto") -> np.ndarray:
    """Encode and decode through `codec` (mp3, vorbis, opus) at compression level `quality` (0 best .. 1 worst).

    Same length and timing as the input. Without an encoder it returns the input unchanged and warns once:
    a missing codec must never stop training.
    """
    x = np.asarray(audio, dtype=np.float64)
    chosen = codec_backend(codec) if backend == "auto" else backend
    if chosen is None:
        _warn_once(codec, f"Augmentation: no {codec} encoder (libsndfile >= 1.1 or ffmpeg); that round trip is "
                          "skipped.")
        return x.copy()
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    scale = 0.99 / peak if peak > 0.99 else 1.0  # encoders take full-scale audio
    try:
        trip = _soundfile_round_trip if chosen == "soundfile" else _ffmpeg_round_trip
        decoded = trip(x * scale, codec, quality)
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        _warn_once(f"{codec}-{chosen}", f"Augmentation: the {codec} round trip through {chosen} failed ({exc}); "
                                        "it is skipped.")
        return x.copy()
    return _undo_delay(decoded, x * scale) / scale
