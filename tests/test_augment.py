"""Training-time augmentation: determinism, audio/motion alignment, measured effects, resting takes, config."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.signal import welch

from model_core.checkpoint import load_checkpoint
from model_core.data.dataset import Sample, Take
from model_core.data.phone_labels import SILENCE_CLASS
from model_core.signal import channel
from model_core.signal.timescale import pitch_shift, retime_frames
from model_core.synth.corpus import CorpusOptions, generate_corpus
from model_core.training.augment import REST_KINDS, augment_crop, rest_take
from model_core.training.batches import collate, crop_for
from model_core.training.config import AugmentOptions, config_from_dict
from model_core.training.trainer import Trainer

SR, FPS = 16000, 30.0
TAKE = Take("spk_01", "spk", 1, Path("spk_01.wav"), Path("spk_01.npy"))
ALL_OFF = dict(rest_share=0.0, tempo_p=0.0, pitch_p=0.0, reverb_p=0.0, noise_p=0.0, band_p=0.0, gain_p=0.0,
               codec_p=0.0)


def speechy(seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced-like audio: a 120 Hz harmonic series with a syllable-rate envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    voice = sum(np.sin(2 * np.pi * 120 * h * t) / h for h in range(1, 30))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    return (voice * envelope + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def sample_of(audio: np.ndarray, frames: int, with_weights: bool = True, seed: int = 1) -> Sample:
    rng = np.random.default_rng(seed)
    template = rng.standard_normal(12).astype(np.float32)
    vertices = template + 0.01 * rng.standard_normal((frames, 12)).astype(np.float32)
    weights = rng.random((frames, 52)).astype(np.float32) if with_weights else None
    return Sample(TAKE, audio.astype(np.float32), vertices, template, FPS, weights)


def only(**on) -> AugmentOptions:
    return AugmentOptions(enabled=True, **{**ALL_OFF, **on})


EVERYTHING = only(tempo_p=1.0, pitch_p=1.0, reverb_p=1.0, noise_p=1.0, band_p=1.0, gain_p=1.0, codec_p=1.0)


# -- determinism and the hook ---------------------------------------------------------------------------------------
def test_same_seed_epoch_position_gives_the_same_crop_and_others_differ():
    sample = sample_of(speechy(4.0), 120)
    a, plan_a = augment_crop(sample, 1.0, EVERYTHING, 7, 2, 3)
    b, plan_b = augment_crop(sample, 1.0, EVERYTHING, 7, 2, 3)
    assert plan_a.steps == plan_b.steps and len(plan_a.steps) == 7
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.vertices, b.vertices)
    assert np.array_equal(a.weights, b.weights)
    c, _ = augment_crop(sample, 1.0, EVERYTHING, 7, 2, 4)
    assert not np.array_equal(a.audio, c.audio)
    for out in (a, c):  # same counts as the plain crop, so crops still stack; wav2vec2-normalised
        assert out.audio.dtype == np.float32 and out.audio.shape == (SR,) and out.vertices.shape == (30, 12)
        assert out.weights.shape == (30, 52) and np.isfinite(out.audio).all()
        assert abs(float(out.audio.mean())) < 1e-4 and abs(float(out.audio.std()) - 1.0) < 1e-2


def test_augmentation_off_is_the_identity_bit_for_bit():
    sample = sample_of(speechy(3.0), 90)
    for max_seconds in (0.0, 1.0):
        for position in range(4):
            plain = crop_for(sample, max_seconds, 0, 1, position)
            for off in (None, AugmentOptions(), replace(EVERYTHING, enabled=False)):
                got = crop_for(sample, max_seconds, 0, 1, position, off)
                assert np.array_equal(got.audio, plain.audio) and np.array_equal(got.vertices, plain.vertices)
    crops = [crop_for(sample, 1.0, 0, 0, k) for k in range(3)]
    off = [crop_for(sample, 1.0, 0, 0, k, AugmentOptions()) for k in range(3)]
    (x,), (y,) = collate(crops, None, torch.device("cpu")), collate(off, None, torch.device("cpu"))
    assert torch.equal(x.audio, y.audio) and torch.equal(x.motion, y.motion)
    on = crop_for(sample, 1.0, 0, 0, 0, EVERYTHING)
    assert not np.array_equal(on.audio, crops[0].audio)


def test_config_section_parses_validates_and_stays_out_of_run_records_when_off():
    cfg = config_from_dict({"data": {"dir": "d"}})
    assert not cfg.augment.enabled and "augment" not in cfg.to_dict()  # old run_config.json files still match
    cfg = config_from_dict({"data": {"dir": "d"}, "augment": {"enabled": True, "tempo_range": [0.95, 1], "codecs":
                                                               ["opus"], "noise_snr_db": [15, 25]}})
    assert cfg.augment.tempo_range == [0.95, 1.0] and cfg.augment.codecs == ["opus"]
    assert cfg.to_dict()["augment"]["noise_snr_db"] == [15.0, 25.0]
    for bad, message in (({"tempo_range": [1.2, 0.9]}, "tempo_range"), ({"codecs": ["aac"]}, "codecs"),
                         ({"noise_p": 1.5}, "noise_p"), ({"tempo_method": "rubberband"}, "tempo_method"),
                         ({"gain_db": "loud"}, "wrong type"), ({"noise_kinds": ["pink", 3]}, "wrong type")):
        with pytest.raises(ValueError, match=message):
            config_from_dict({"data": {"dir": "d"}, "augment": bad})


# -- alignment ------------------------------------------------------------------------------------------------------
def _bursts(seconds: float, every: float) -> tuple[np.ndarray, list[float]]:
    """Short 1 kHz tone bursts (a click train a time-scaler can keep) and their centre times."""
    audio = np.zeros(int(seconds * SR))
    times = list(np.arange(0.2, seconds - 0.2, every))
    n = 240  # 15 ms
    for t in times:
        start = int(t * SR) - n // 2
        audio[start: start + n] += np.sin(2 * np.pi * 1000 * np.arange(n) / SR) * np.hanning(n)
    return audio + 1e-3 * np.random.default_rng(0).standard_normal(len(audio)), times


def _peaks(signal: np.ndarray, threshold: float, spacing: int) -> list[int]:
    out = []
    for i in np.flatnonzero(signal > threshold):
        if out and i - out[-1] < spacing:
            if signal[i] > signal[out[-1]]:
                out[-1] = i
        else:
            out.append(int(i))
    return out


@pytest.mark.parametrize("method", ["wsola", "speed"])
@pytest.mark.parametrize("rate", [0.9, 1.1])
def test_tempo_keeps_audio_and_motion_aligned_within_a_frame(method, rate):
    seconds, every = 6.0, 0.37
    audio, times = _bursts(seconds, every)
    frames = int(seconds * FPS)
    sample = sample_of(audio, frames)
    pulse = np.zeros(frames, np.float32)
    pulse[[int(round(t * FPS)) for t in times]] = 1.0
    sample.vertices[:, 0] = sample.template[0] + pulse  # a motion pulse at every burst
    sample.weights[:, 3] = pulse
    sample.phones = np.where(pulse > 0, 0, SILENCE_CLASS)  # phone labels travel with the motion
    opts = only(tempo_p=1.0, tempo_range=[rate, rate], tempo_method=method)
    for position in range(3):
        out, plan = augment_crop(sample, 2.5, opts, 0, 0, position)
        assert plan.tempo == pytest.approx(rate, abs=1e-3) and out.frames == 75 and len(out.audio) == 2.5 * SR
        envelope = np.convolve(np.abs(out.audio), np.ones(160) / 160, mode="same")
        heard = np.array(_peaks(envelope, 0.4 * envelope.max(), int(0.1 * SR))) / SR
        seen = np.array(_peaks(out.vertices[:, 0] - out.template[0], 0.3, 3)) / FPS
        seen_w = np.array(_peaks(out.weights[:, 3], 0.3, 3)) / FPS
        labelled = np.flatnonzero(out.phones == 0) / FPS
        assert out.phones.shape == (75,) and set(np.unique(out.phones)) <= {0, SILENCE_CLASS}
        assert len(heard) >= 5 and len(seen) >= len(heard) - 1  # bursts cut at the crop's edges may be missed
        for t in heard:
            assert np.min(np.abs(seen - t)) <= 1.0 / FPS, (t, seen)
            assert np.min(np.abs(seen_w - t)) <= 1.0 / FPS
            assert np.min(np.abs(labelled - t)) <= 1.0 / FPS
        # The bursts come every `every / rate` seconds after the tempo change.
        assert np.median(np.diff(heard)) == pytest.approx(every / rate, rel=0.03)


@pytest.mark.parametrize("frames", [31, 32, 33, 40])
def test_a_faster_tempo_on_a_take_barely_longer_than_the_crop_keeps_the_crop_counts(frames):
    sample = sample_of(speechy(frames / FPS + 0.01), frames)
    plain = crop_for(sample, 1.0, 0, 0, 0)
    out, plan = augment_crop(sample, 1.0, only(tempo_p=1.0, tempo_range=[1.1, 1.1]), 0, 0, 0)
    assert (out.frames, len(out.audio)) == (plain.frames, len(plain.audio)) == (30, SR)
    assert 1.0 < plan.tempo <= 1.1  # capped at what the take holds: never padded


def test_whole_takes_change_length_with_the_tempo_and_other_effects_keep_the_motion():
    sample = sample_of(speechy(2.0), 60)
    out, _ = augment_crop(sample, 0.0, only(tempo_p=1.0, tempo_range=[1.1, 1.1]), 0, 0, 0)
    assert len(out.audio) == round(2.0 * SR / 1.1) and out.frames == int(60 / 1.1)
    assert np.allclose(out.vertices, retime_frames(sample.vertices, 1.1, out.frames))
    out, plan = augment_crop(sample, 0.0, replace(EVERYTHING, tempo_p=0.0), 0, 0, 0)
    assert len(plan.steps) == 6 and len(out.audio) == len(sample.audio)
    assert np.array_equal(out.vertices, sample.vertices) and np.array_equal(out.weights, sample.weights)


# -- the effects, measured ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", channel.NOISE_KINDS)
def test_added_noise_has_the_asked_snr(kind):
    x = speechy(2.0).astype(np.float64) * 0.05
    for snr in (10.0, 20.0, 30.0):
        noisy = channel.add_noise(x, snr, kind, np.random.default_rng(int(snr)))
        measured = 10 * np.log10(channel.power(x) / channel.power(noisy - x))
        assert abs(measured - snr) <= 1.0, (kind, snr, measured)
    assert not np.allclose(channel.noise_of(kind, x, np.random.default_rng(0))[:100], 0)


def test_pink_and_brown_noise_tilt_downwards():
    rng = np.random.default_rng(0)
    for exponent, slope in ((1.0, -10.0), (2.0, -20.0)):  # dB per decade
        f, p = welch(channel.colored_noise(SR * 4, exponent, rng), SR, nperseg=4096)
        band = (f > 100) & (f < 6000)
        fitted = np.polyfit(np.log10(f[band]), 10 * np.log10(p[band]), 1)[0]
        assert fitted == pytest.approx(slope, abs=2.0)


def _share_above(audio: np.ndarray, hz: float) -> float:
    f, p = welch(audio, SR, nperseg=2048)
    return float(p[f > hz].sum() / p.sum())


def test_telephone_removes_energy_above_3400_hz_and_keeps_the_band():
    x = np.random.default_rng(0).standard_normal(SR * 2) * 0.1
    y = channel.telephone(x)
    assert len(y) == len(x)
    assert _share_above(x, 3600) > 0.5 and _share_above(y, 3600) < 1e-3
    f, px = welch(x, SR, nperseg=2048)
    _, py = welch(y, SR, nperseg=2048)
    inside = (f > 500) & (f < 3000)
    assert 0.7 < np.mean(py[inside]) / np.mean(px[inside]) < 1.3  # the passband survives the mu-law and filters
    assert np.mean(py[f < 150]) / np.mean(px[f < 150]) < 0.1


def test_band_limit_in_between():
    x = np.random.default_rng(1).standard_normal(SR * 2)
    y = channel.band_limit(x, 200.0, 5000.0)
    assert _share_above(y, 5600) < 2e-3 and _share_above(x, 5600) > 0.25
    f, p = welch(y, SR, nperseg=2048)
    assert p[f < 80].sum() / p.sum() < 1e-3


def _frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), 8 * len(audio)))
    return float(np.argmax(spectrum) * SR / (8 * len(audio)))


@pytest.mark.parametrize("semitones", [-4.0, -1.5, 2.0, 3.0])
def test_pitch_shift_moves_a_sine_by_the_asked_semitones_and_keeps_the_duration(semitones):
    x = np.sin(2 * np.pi * 300 * np.arange(SR) / SR)
    y = pitch_shift(x, semitones)
    assert len(y) == len(x)
    assert _frequency(y) == pytest.approx(300 * 2 ** (semitones / 12), rel=0.02)
    assert np.sqrt(channel.power(y[2000:-2000])) == pytest.approx(np.sqrt(0.5), rel=0.1)


def test_reverb_keeps_the_direct_path_and_decays_as_asked():
    rng = np.random.default_rng(0)
    h = channel.room_response(0.3, 6.0, rng)
    assert h[0] == 1.0 and len(h) == int(0.3 * SR)
    assert 10 * np.log10(1.0 / np.sum(h[1:] ** 2)) == pytest.approx(6.0, abs=0.01)
    early, late = np.sum(h[100:1600] ** 2), np.sum(h[3300:4800] ** 2)  # 0.2 s apart: 40 dB less in the tail
    assert 10 * np.log10(early / late) == pytest.approx(60 * 0.2 / 0.3, abs=3.0)
    x = speechy(1.0).astype(np.float64)
    y = channel.reverb(x, 0.3, 6.0, rng)
    lag = int(np.argmax(np.correlate(y[:4000], x[:3000], mode="valid")))
    assert len(y) == len(x) and lag == 0


def test_gain_soft_clips_or_avoids_clipping():
    x = speechy(1.0).astype(np.float64) * 0.1
    assert np.allclose(channel.gain(x, -6.0, False), x * 10 ** (-6 / 20))
    loud = channel.gain(x, 24.0, False)
    assert np.max(np.abs(loud)) == pytest.approx(0.99)
    soft = channel.gain(x, 24.0, True)
    assert np.max(np.abs(soft)) < 1.0 and not np.allclose(soft / np.max(np.abs(soft)), loud / 0.99, atol=1e-2)


def _codecs() -> list[str]:
    return [c for c in channel.CODECS if channel.codec_backend(c) is not None]


@pytest.mark.parametrize("codec", channel.CODECS)
def test_codec_round_trip_keeps_length_timing_and_level(codec):
    if channel.codec_backend(codec) is None:
        pytest.skip(f"no {codec} encoder here")
    x = speechy(1.5).astype(np.float64) * 0.1
    y = channel.codec_round_trip(x, codec, 0.5)
    assert len(y) == len(x) and not np.array_equal(x, y)
    level = 10 * np.log10(channel.power(y) / channel.power(x))
    assert abs(level) < 1.0, level
    assert np.corrcoef(x, y)[0, 1] > 0.9  # in time with the input (a shifted copy would not correlate)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_fallback_undoes_the_encoder_delay():
    x = speechy(1.5).astype(np.float64) * 0.1
    y = channel.codec_round_trip(x, "mp3", 0.3, backend="ffmpeg")
    assert len(y) == len(x) and np.corrcoef(x, y)[0, 1] > 0.9


def test_missing_codec_is_skipped_with_one_warning(monkeypatch):
    monkeypatch.setattr(channel, "_warned", set())
    x = speechy(0.5).astype(np.float64) * 0.1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert np.array_equal(channel.codec_round_trip(x, "mp3", 0.5, backend=None), x)
    assert len(caught) == 1 and "mp3" in str(caught[0].message)


# -- resting takes --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", REST_KINDS)
def test_resting_takes_have_a_resting_face_as_truth(kind):
    template = np.arange(12, dtype=np.float32)
    rest = rest_take(TAKE, template, FPS, 45, 24000, kind, np.random.default_rng(0), weight_count=52)
    assert rest.audio.shape == (24000,) and rest.audio.dtype == np.float32 and np.isfinite(rest.audio).all()
    assert rest.vertices.shape == (45, 12) and np.array_equal(rest.vertices, np.tile(template, (45, 1)))
    assert rest.weights.shape == (45, 52) and not rest.weights.any()
    assert rest.subject == "spk"
    if kind == "near_silence":  # normalisation's epsilon keeps a -80..-50 dBFS hiss quiet, as at inference
        assert 0.05 < float(rest.audio.std()) < 1.0
    elif kind != "silence":
        assert abs(float(rest.audio.std()) - 1.0) < 1e-3  # wav2vec2-normalised like any take
    assert rest_take(TAKE, template, FPS, 45, 24000, kind, np.random.default_rng(0)).weights is None
    assert rest.phones is None
    labelled = rest_take(TAKE, template, FPS, 45, 24000, kind, np.random.default_rng(0), phones=True)
    assert labelled.phones.shape == (45,) and (labelled.phones == SILENCE_CLASS).all()


def test_rest_share_replaces_crops_with_resting_takes():
    sample = sample_of(speechy(3.0), 90)
    opts = only(rest_share=1.0)
    for position in range(4):
        out, plan = augment_crop(sample, 1.0, opts, 0, 0, position)
        assert plan.rest in REST_KINDS and out.frames == 30 and len(out.audio) == SR
        assert np.array_equal(out.vertices, np.tile(sample.template, (30, 1))) and not out.weights.any()
    share = np.mean([augment_crop(sample, 1.0, only(rest_share=0.1), 0, 0, k)[1].rest is not None
                     for k in range(400)])
    assert 0.06 < share < 0.14


# -- in the training loop -------------------------------------------------------------------------------------------
def test_augmented_training_resumes_exactly_and_records_its_settings(tmp_path):
    corpus = tmp_path / "corpus"
    generate_corpus(corpus, CorpusOptions(seed=0, subjects=3, sentences=2, min_seconds=1.5, max_seconds=1.5,
                                          vertices=600), progress=False)
    augment = {"enabled": True, "rest_share": 0.25, "tempo_p": 0.7, "pitch_p": 0.5, "reverb_p": 0.5,
               "noise_p": 0.5, "band_p": 0.5, "gain_p": 0.5, "codec_p": 0.5}

    def config(out: str, epochs: int = 2, **changes):
        return config_from_dict({"data": {"dir": str(corpus)}, "augment": {**augment, **changes},
                                 "train": {"output_dir": str(tmp_path / out), "epochs": epochs, "batch_size": 2,
                                           "max_seconds": 0.5, "num_threads": 1, "lr": 1e-3}})

    before = torch.get_num_threads()
    try:
        Trainer(config("a"), progress=False).run()
        Trainer(config("b", epochs=1), progress=False).run()
        with pytest.raises(ValueError, match="augment.noise_p"):
            Trainer(config("b", noise_p=0.1), resume=True, progress=False)
        Trainer(config("b"), resume=True, progress=False).run()
    finally:
        torch.set_num_threads(before)
    a, b = (load_checkpoint(tmp_path / run / "last.safetensors") for run in "ab")
    wa, wb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.info.provenance["train_config"]["augment"]["rest_share"] == 0.25
