"""A source-filter formant voice: glottal pulses and noises shaped by moving vocal-tract resonances.

Sources (per sample): Rosenberg glottal pulses (pitch contour with declination, accents, jitter, shimmer),
aspiration noise, frication noise and stop bursts. Filters (per 5 ms frame, overlap-added): a cascade of
five formant resonators plus a nasal anti-resonance for voice and aspiration, and a band-shaped noise
filter for frication and bursts. Formants follow the same dominance coarticulation as the face, so jaw
opening shows up as F1, rounding as low F2/F3, and a bilabial closure as silence (or murmur) then a burst.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import lfilter

from model_core.synth.coarticulation import dominance_blend
from model_core.synth.phonemes import Phone, Sentence, vowel_jaw

SAMPLE_RATE = 16000
_HOP = 80  # 5 ms filter frames
_WIN = 4 * _HOP  # Hann window, 75 % overlap
_NFFT = 13 * _HOP  # room for 45 ms of resonator ringing after each windowed segment
_F5 = 4500.0
_LEVEL_RMS = 0.08  # voiced speech RMS before the per-subject gain (about -22 dBFS)
_NOISE_FLOOR = 1e-4  # a quiet "room" so pauses are near-silent, not digital zero
_NOISE_GAIN = 2.0  # calibrated so /s/ sits ~12 dB under vowels and /f/ ~20 dB


@dataclass(frozen=True)
class Voice:
    """One speaker's voice."""

    f0: float  # Hz, sentence-initial pitch
    vtl_scale: float  # formant multiplier: > 1 for a shorter vocal tract
    jitter: float = 0.008  # relative pitch perturbation
    shimmer: float = 0.05  # relative cycle-to-cycle amplitude perturbation
    breathiness: float = 0.03
    declination: float = 0.15  # relative pitch fall across a sentence
    accent_range: float = 0.2  # relative pitch rise of a full accent
    gain_db: float = 0.0


def random_voice(rng: np.random.Generator, female: bool) -> Voice:
    return Voice(
        f0=float(rng.uniform(185, 235) if female else rng.uniform(95, 135)),
        vtl_scale=float(rng.uniform(1.12, 1.22) if female else rng.uniform(0.95, 1.05)),
        jitter=float(rng.uniform(0.005, 0.012)), shimmer=float(rng.uniform(0.03, 0.07)),
        breathiness=float(rng.uniform(0.02, 0.06) if female else rng.uniform(0.01, 0.04)),
        declination=float(rng.uniform(0.1, 0.2)), accent_range=float(rng.uniform(0.15, 0.3)),
        gain_db=float(rng.uniform(-3.0, 3.0)),
    )


def vowel_f1_from_jaw(jaw: float) -> float:
    """F1 of a vowel articulated with jaw target `jaw` (inverse of phonemes.vowel_jaw composed with vowel_f1)."""
    return 270.0 + 480.0 * (jaw - vowel_jaw(1.0)) / (vowel_jaw(0.0) - vowel_jaw(1.0))


def _phone_formants(ph: Phone) -> np.ndarray:
    f = np.array(ph.phoneme.formants, dtype=float)
    if ph.phoneme.is_vowel:  # stress changes the jaw opening and therefore F1, in step with the face
        f[0] = vowel_f1_from_jaw(ph.jaw_target)
    return f


def formant_tracks(sentence: Sentence, times: np.ndarray, vtl_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(T, 4) formant frequencies and (T, 4) bandwidths in Hz, coarticulated like the face."""
    phones = sentence.phones
    log_f = np.log(np.array([_phone_formants(ph) for ph in phones]))
    bw = np.array([ph.phoneme.bandwidths for ph in phones], dtype=float)
    dom = np.array([[ph.phoneme.formant_dominance] * 4 for ph in phones])
    freq = np.exp(dominance_blend(phones, times, log_f, dom, anticipation=0.035, carryover=0.03)) * vtl_scale
    return freq, dominance_blend(phones, times, bw, dom, anticipation=0.035, carryover=0.03)


def _segments(sentence: Sentence, n: int) -> dict[str, np.ndarray]:
    """Per-sample source amplitudes (before smoothing) and the release times of closures."""
    voicing, aspiration, frication = np.zeros(n), np.zeros(n), np.zeros(n)
    vot_gate = np.ones(n)
    bursts: list[tuple[int, float, float]] = []
    sr = SAMPLE_RATE
    for ph in sentence.phones:
        p = ph.phoneme
        a, b = ph.start_ms * sr // 1000, ph.end_ms * sr // 1000
        level = (1.1 if ph.stressed else 0.9) if p.is_vowel else p.voicing
        voicing[a:b] = level
        aspiration[a:b] = p.aspiration
        release = p.release_offset(ph.duration)
        if p.kind == "affricate":
            r = a + int(release * sr)
            frication[r:b] = p.frication
        else:
            frication[a:b] = p.frication
        if p.burst > 0 and release is not None:
            r = a + int(round(release * sr))
            bursts.append((r, p.burst, 0.004 if p.voiced else 0.006))
        if p.vot > 0.015:  # voiceless stop: aspirated, voicing delayed into the next sound
            end = min(b + int(p.vot * sr), n)
            aspiration[b:end] = np.maximum(aspiration[b:end], 0.3)
            vot_gate[b:end] = np.linspace(0.0, 1.0, end - b)
    return {"voicing": voicing, "aspiration": aspiration, "frication": frication, "vot_gate": vot_gate,
            "bursts": bursts}


def _smooth(x: np.ndarray, samples: int = 80) -> np.ndarray:
    return uniform_filter1d(uniform_filter1d(x, samples, mode="nearest"), samples, mode="nearest")


def pitch_contour(sentence: Sentence, n: int, voice: Voice, rng: np.random.Generator) -> np.ndarray:
    """f0 per sample: declination, accent peaks on stressed vowels, slow jitter."""
    t = np.arange(n) / SAMPLE_RATE
    rel = 1.0 - voice.declination * t / max(t[-1], 1e-3)
    for ph in sentence.phones:
        if ph.stressed:
            c = 0.5 * (ph.start + ph.end)
            rel += (voice.accent_range * ph.accent + 0.04) * np.exp(-(((t - c) / 0.09) ** 2))
    knots = rng.normal(0.0, voice.jitter, size=n // _HOP + 2)
    jitter = np.interp(t, np.arange(len(knots)) * _HOP / SAMPLE_RATE, knots)
    return voice.f0 * rel * (1.0 + jitter)


def glottal_pulses(f0: np.ndarray, shimmer: float, rng: np.random.Generator) -> np.ndarray:
    """Differentiated Rosenberg glottal flow (opening 40 %, closing 16 % of the period), with shimmer."""
    phase = np.cumsum(f0) / SAMPLE_RATE
    p = phase % 1.0
    opening, closing = 0.40, 0.16
    flow = np.where(p < opening, 0.5 * (1.0 - np.cos(np.pi * p / opening)),
                    np.where(p < opening + closing, np.cos(0.5 * np.pi * (p - opening) / closing), 0.0))
    cycle = phase.astype(np.int64)
    gains = 1.0 + shimmer * rng.standard_normal(int(cycle[-1]) + 2)
    pulses = np.diff(flow, prepend=0.0)
    # Unit RMS whatever the pitch, so noise sources keep the same level relative to voicing for every voice.
    return pulses * gains[cycle] / max(float(np.sqrt(np.mean(pulses**2))), 1e-12)


def _resonator(freq: np.ndarray, bw: np.ndarray, hz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Klatt-style 2-pole resonator with unit gain at 0 Hz, as (gain (T, 1), denominator (T, bins)).

    H(z) = gain / (1 - b z^-1 - c z^-2) evaluated on the FFT bins; freq, bw: (T, 1). Kept as a fraction so a
    cascade multiplies denominators and divides once.
    """
    c = -np.exp(-2.0 * np.pi * bw / SAMPLE_RATE)
    b = 2.0 * np.exp(-np.pi * bw / SAMPLE_RATE) * np.cos(2.0 * np.pi * freq / SAMPLE_RATE)
    w = 2.0 * np.pi * hz / SAMPLE_RATE
    den = (1.0 - b * np.cos(w) - c * np.cos(2 * w)) + 1j * (b * np.sin(w) + c * np.sin(2 * w))
    return 1.0 - b - c, den


def _frame(x: np.ndarray, n_frames: int) -> np.ndarray:
    padded = np.concatenate([np.zeros(_WIN // 2), x, np.zeros(_WIN + _NFFT)])
    idx = np.arange(n_frames)[:, None] * _HOP + np.arange(_WIN)[None, :]
    return padded[idx] * np.hanning(_WIN + 1)[:-1][None, :]


def _overlap_add(frames: np.ndarray, n: int) -> np.ndarray:
    blocks = _NFFT // _HOP
    f = frames.reshape(len(frames), blocks, _HOP)
    out = np.zeros((len(frames) + blocks, _HOP))
    for j in range(blocks):
        out[j : j + len(frames)] += f[:, j, :]
    return out.ravel()[_WIN // 2 : _WIN // 2 + n] / 2.0  # periodic Hann at 75 % overlap sums to 2


def _noise_filter(sentence: Sentence, times: np.ndarray, hz: np.ndarray, vtl_scale: float) -> np.ndarray:
    """(T, bins) magnitude of the frication/burst filter: a band around each sound's noise centre."""
    centre, width = np.full(len(times), 3000.0), np.full(len(times), 4000.0)
    for ph in sentence.phones:
        # Sounds without noise keep the previous one's filter: burst tails spill past their segment. Later
        # phones overwrite, so frames at or past the end keep the last sound's filter.
        if ph.phoneme.fric_centre > 0:
            sel = times >= ph.start
            centre[sel], width[sel] = ph.phoneme.fric_centre, ph.phoneme.fric_bandwidth
    centre *= np.sqrt(vtl_scale)
    band = np.exp(-0.5 * ((hz[None, :] - centre[:, None]) / (0.5 * width[:, None])) ** 2)
    lowcut = 1.0 / (1.0 + (0.5 * centre[:, None] / np.maximum(hz[None, :], 1.0)) ** 4)
    return band * lowcut


def synthesize(sentence: Sentence, voice: Voice, rng: np.random.Generator) -> np.ndarray:
    """16 kHz mono float32 speech for `sentence`, exactly duration_ms * 16 samples long."""
    n = sentence.duration_ms * SAMPLE_RATE // 1000
    seg = _segments(sentence, n)
    voicing = _smooth(seg["voicing"]) * seg["vot_gate"]
    aspiration = _smooth(seg["aspiration"]) + voice.breathiness * voicing
    frication = _smooth(seg["frication"], 40)
    bursts = np.zeros(n)
    for at, amplitude, decay in seg["bursts"]:
        u = np.arange(n - at) / SAMPLE_RATE
        bursts[at:] += amplitude * np.exp(-u / decay)

    f0 = pitch_contour(sentence, n, voice, rng)
    tract_source = glottal_pulses(f0, voice.shimmer, rng) * voicing + rng.standard_normal(n) * aspiration
    noise_source = _NOISE_GAIN * rng.standard_normal(n) * (frication + bursts)

    n_frames = n // _HOP + 1
    times = np.arange(n_frames) * _HOP / SAMPLE_RATE
    hz = np.fft.rfftfreq(_NFFT, 1.0 / SAMPLE_RATE)
    freq, bw = formant_tracks(sentence, times, voice.vtl_scale)
    freq = np.concatenate([freq, np.full((n_frames, 1), _F5 * voice.vtl_scale)], axis=1)
    bw = np.concatenate([bw, np.full((n_frames, 1), 300.0)], axis=1)
    gain, den = np.ones((n_frames, 1)), np.ones((n_frames, len(hz)), dtype=complex)
    for k in range(freq.shape[1]):
        g, d = _resonator(freq[:, k : k + 1], bw[:, k : k + 1], hz)
        gain, den = gain * g, den * d
    tract = gain / den
    _apply_nasal(tract, sentence, times, hz, voice.vtl_scale)

    spectrum = np.fft.rfft(_frame(tract_source, n_frames), _NFFT) * tract
    spectrum += np.fft.rfft(_frame(noise_source, n_frames), _NFFT) * _noise_filter(sentence, times, hz,
                                                                                   voice.vtl_scale)
    audio = _overlap_add(np.fft.irfft(spectrum, _NFFT), n)
    audio = lfilter([1.0, -1.0], [1.0, -0.98], audio)  # remove DC / sub-audio drift (~50 Hz high-pass)

    speech = voicing > 0.5
    rms = float(np.sqrt(np.mean(audio[speech] ** 2))) if speech.any() else float(np.sqrt(np.mean(audio**2)))
    audio *= _LEVEL_RMS * 10 ** (voice.gain_db / 20) / max(rms, 1e-12)
    peak = float(np.max(np.abs(audio)))
    if peak > 0.9:
        audio *= 0.9 / peak
    audio += _NOISE_FLOOR * rng.standard_normal(n)
    return audio.astype(np.float32)


def _apply_nasal(tract: np.ndarray, sentence: Sentence, times: np.ndarray, hz: np.ndarray, vtl_scale: float) -> None:
    """Fade in a nasal pole-zero pair (pole at 270 Hz, zero by place) over nasal sounds only, in place."""
    nasality, zero = np.zeros(len(times)), np.full(len(times), 1000.0)
    for ph in sentence.phones:
        if ph.phoneme.nasal_zero > 0:
            sel = (times >= ph.start - 0.01) & (times < ph.end + 0.01)
            nasality[sel], zero[sel] = 1.0, ph.phoneme.nasal_zero
    nasality = uniform_filter1d(nasality, 3, mode="nearest")
    rows = np.flatnonzero(nasality > 0)
    if len(rows) == 0:
        return
    width = np.full((len(rows), 1), 150.0)
    pole_gain, pole_den = _resonator(np.full((len(rows), 1), 270.0), width, hz)
    zero_gain, zero_den = _resonator(zero[rows, None] * vtl_scale, width, hz)
    pair = (pole_gain / zero_gain) * zero_den / pole_den
    mix = nasality[rows, None]
    tract[rows] *= (1.0 - mix) + mix * pair
