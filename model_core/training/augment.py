"""Training-time augmentation of crops: tempo, pitch, reverb, noise, band-limiting, gain, codecs, resting takes.

Everything is drawn from a generator seeded by (seed, epoch, position), like the crop itself, so a resumed run
sees exactly the augmented data an uninterrupted one would. Tempo changes move the motion (vertices and, when
present, blendshape weights) with the audio; the other effects change the audio only. The result is
re-normalised as wav2vec2 expects and keeps the crop's sample and frame counts, so crops still stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from model_core.audio_io import TARGET_SAMPLE_RATE, normalise_for_wav2vec2
from model_core.data.dataset import Sample, Take, crop_sample
from model_core.data.phone_labels import SILENCE_CLASS, retime_labels
from model_core.signal import channel
from model_core.signal.timescale import fit_length, pitch_shift, retime_frames, speed, wsola
from model_core.training.config import AugmentOptions

NOMINAL_RMS = 0.05  # -26 dBFS: the level the chain works at (input crops are unit-variance)
REST_KINDS = ("silence", "near_silence", "white", "pink", "brown", "hum")


@dataclass
class Plan:
    """What happens to one crop (all random draws made up front, in a fixed order)."""

    rest: str | None = None
    tempo: float = 1.0
    semitones: float = 0.0
    reverb: tuple[float, float] | None = None  # rt60 s, direct-to-reverb dB
    noise: tuple[str, float] | None = None  # kind, SNR dB
    band: tuple[float, float] | None = None  # high-pass Hz, low-pass Hz; (0, 0) is the telephone
    gain: tuple[float, bool] | None = None  # dB, soft clip
    codec: tuple[str, float] | None = None  # codec, compression level
    steps: list[str] = field(default_factory=list)


def _uniform(rng: np.random.Generator, bounds: list[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def plan_for(opts: AugmentOptions, rng: np.random.Generator) -> Plan:
    """Draw every decision for one crop. Each effect consumes the same draws whether it fires or not, so
    changing one probability does not reshuffle the others."""
    plan = Plan()
    draws = rng.random(8)
    rest_kind = REST_KINDS[int(rng.integers(len(REST_KINDS)))]
    tempo, semitones = _uniform(rng, opts.tempo_range), _uniform(rng, opts.pitch_semitones)
    rt60, drr = _uniform(rng, opts.reverb_rt60_s), _uniform(rng, opts.reverb_drr_db)
    kind, snr = opts.noise_kinds[int(rng.integers(len(opts.noise_kinds)))], _uniform(rng, opts.noise_snr_db)
    telephone = rng.random() < opts.telephone_share
    band = (_uniform(rng, opts.highpass_hz), _uniform(rng, opts.lowpass_hz))
    gain_db, soft = _uniform(rng, opts.gain_db), bool(rng.random() < opts.soft_clip_p)
    codec, quality = opts.codecs[int(rng.integers(len(opts.codecs)))], _uniform(rng, opts.codec_quality)
    if draws[0] < opts.rest_share:
        plan.rest = rest_kind
        return plan
    if draws[1] < opts.tempo_p:
        plan.tempo = tempo
    if draws[2] < opts.pitch_p:
        plan.semitones = semitones
    if draws[3] < opts.reverb_p:
        plan.reverb = (rt60, drr)
    if draws[4] < opts.noise_p:
        plan.noise = (kind, snr)
    if draws[5] < opts.band_p:
        plan.band = (0.0, 0.0) if telephone else band
    if draws[6] < opts.gain_p:
        plan.gain = (gain_db, soft)
    if draws[7] < opts.codec_p:
        plan.codec = (codec, quality)
    return plan


def rest_take(take: Take, template: np.ndarray, fps: float, frames: int, samples: int, kind: str,
              rng: np.random.Generator, weight_count: int | None = None, phones: bool = False) -> Sample:
    """A take of noise or (near-)silence whose truth is the resting face: every frame the template, weights 0
    (and, with `phones`, every frame labelled silence).

    kind: silence (digital zero), near_silence (-80..-50 dBFS hiss and mains hum), white, pink, brown (noise at
    -40..-10 dBFS) or hum (50/60 Hz and harmonics). The audio comes back normalised as wav2vec2 expects.
    """
    if kind not in REST_KINDS:
        raise ValueError(f"Unknown resting-take kind {kind!r}: choose one of {', '.join(REST_KINDS)}.")
    if kind == "silence":
        audio = np.zeros(samples)
    elif kind in ("near_silence", "hum"):
        t = np.arange(samples) / TARGET_SAMPLE_RATE
        mains = rng.choice([50.0, 60.0])
        audio = sum(rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * mains * h * t + rng.uniform(0, 2 * np.pi))
                    for h in (1, 2, 3, 5))
        if kind == "near_silence":
            audio = audio * rng.uniform(0.0, 0.5) + channel.colored_noise(samples, rng.uniform(0.0, 1.0), rng)
            level = 10.0 ** (rng.uniform(-80.0, -50.0) / 20.0)
        else:
            level = 10.0 ** (rng.uniform(-50.0, -20.0) / 20.0)
        audio = audio / np.sqrt(max(channel.power(audio), 1e-20)) * level
    else:
        exponent = {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind]
        audio = channel.colored_noise(samples, exponent, rng) * 10.0 ** (rng.uniform(-40.0, -10.0) / 20.0)
    vertices = np.repeat(np.asarray(template, dtype=np.float32).reshape(1, -1), frames, axis=0)
    weights = None if weight_count is None else np.zeros((frames, weight_count), dtype=np.float32)
    labels = np.full(frames, SILENCE_CLASS, dtype=np.int64) if phones else None
    return Sample(take, normalise_for_wav2vec2(audio) if samples else np.zeros(0, np.float32), vertices,
                  template, fps, weights, labels)


def _retimed_crop(sample: Sample, max_frames: int, rate: float, crop_rng: np.random.Generator) -> tuple[Sample, float]:
    """The crop a tempo change needs: `rate` times longer (shorter), limited by what the take holds."""
    if max_frames <= 0:
        return sample, rate
    audio_frames = int(len(sample.audio) / TARGET_SAMPLE_RATE * sample.fps)
    usable = max(1, min(sample.frames, audio_frames))
    if usable <= max_frames:
        return sample, rate  # a whole take shorter than a crop: its length changes with the tempo
    rate = min(rate, usable / max_frames)  # never pad a sped-up crop with invented data
    return crop_sample(sample, min(usable, int(np.ceil(max_frames * rate))), crop_rng), rate


def _change_tempo(sample: Sample, rate: float, method: str, samples: int | None, frames: int | None) -> Sample:
    """Time-scale audio and motion by `rate`, to `samples` / `frames` (None: as long as the tempo makes them)."""
    if method == "speed":
        audio, rate = speed(sample.audio, rate)
    else:
        audio = wsola(sample.audio, rate)
    samples = int(round(len(sample.audio) / rate)) if samples is None else samples
    frames = max(1, int(sample.frames / rate)) if frames is None else frames
    weights = None if sample.weights is None else retime_frames(sample.weights, rate, frames)
    phones = None if sample.phones is None else retime_labels(sample.phones, rate, frames)
    return Sample(sample.take, fit_length(audio, samples), retime_frames(sample.vertices, rate, frames),
                  sample.template, sample.fps, weights, phones)


def apply_audio_effects(audio: np.ndarray, plan: Plan, rng: np.random.Generator) -> np.ndarray:
    """Pitch, room, noise, channel, level and codec, in the order a recording meets them (float64 out)."""
    x = np.asarray(audio, dtype=np.float64)
    rms = np.sqrt(channel.power(x))
    x = x * (NOMINAL_RMS / rms) if rms > 0 else x
    if plan.semitones:
        x = pitch_shift(x, plan.semitones)
        plan.steps.append(f"pitch {plan.semitones:+.2f} st")
    if plan.reverb:
        x = channel.reverb(x, *plan.reverb, rng)
        plan.steps.append("reverb rt60 {:.2f} s drr {:.1f} dB".format(*plan.reverb))
    if plan.noise:
        x = channel.add_noise(x, plan.noise[1], plan.noise[0], rng)
        plan.steps.append("{} noise {:.1f} dB SNR".format(*plan.noise))
    if plan.band == (0.0, 0.0):
        x = channel.telephone(x)
        plan.steps.append("telephone")
    elif plan.band:
        x = channel.band_limit(x, *plan.band)
        plan.steps.append("band {:.0f}-{:.0f} Hz".format(*plan.band))
    if plan.gain:
        x = channel.gain(x, *plan.gain)
        plan.steps.append("gain {:+.1f} dB{}".format(plan.gain[0], " soft-clipped" if plan.gain[1] else ""))
    if plan.codec:
        x = channel.codec_round_trip(x, *plan.codec)
        plan.steps.append("{} q{:.2f}".format(*plan.codec))
    return x


def augment_crop(sample: Sample, max_seconds: float, opts: AugmentOptions, seed: int, epoch: int,
                 position: int) -> tuple[Sample, Plan]:
    """The training crop of `sample` at (seed, epoch, position), augmented as `opts` asks, and what was done.

    The crop window comes from the same generator as `crop_for`'s; augmentation draws from its own
    (seed, epoch, position, 2) stream. Sample and frame counts equal the plain crop's.
    """
    rng = np.random.default_rng([seed, epoch, position, 2])
    crop_rng = np.random.default_rng([seed, epoch, position, 1])
    max_frames = max(1, int(round(max_seconds * sample.fps))) if max_seconds > 0 else 0
    plan = plan_for(opts, rng)
    plain = crop_sample(sample, max_frames, crop_rng) if max_frames else sample
    if plan.rest:
        weight_count = None if sample.weights is None else int(sample.weights.shape[1])
        rest = rest_take(sample.take, sample.template, sample.fps, plain.frames, len(plain.audio), plan.rest,
                         rng, weight_count, phones=sample.phones is not None)
        plan.steps.append(f"resting take ({plan.rest})")
        return rest, plan
    crop = plain
    if plan.tempo != 1.0:
        window, rate = _retimed_crop(sample, max_frames, plan.tempo,
                                     np.random.default_rng([seed, epoch, position, 1]))
        fixed = plain is not sample  # a real crop: give it the plain crop's sample and frame counts
        crop = _change_tempo(window, rate, opts.tempo_method, len(plain.audio) if fixed else None,
                             plain.frames if fixed else None)
        plan.tempo = rate
        plan.steps.append(f"tempo x{rate:.3f} ({opts.tempo_method})")
    if not (plan.steps or plan.semitones or plan.reverb or plan.noise or plan.band or plan.gain or plan.codec):
        return plain, plan  # nothing fired: the plain crop, bit for bit
    audio = apply_audio_effects(crop.audio, plan, rng)
    if not np.isfinite(audio).all():
        return plain, Plan(steps=["dropped: non-finite audio"])  # never feed NaN to training
    return Sample(crop.take, normalise_for_wav2vec2(audio), crop.vertices, crop.template, crop.fps,
                  crop.weights, crop.phones), plan
