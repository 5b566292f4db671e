"""Tests for model_core.audio_io: decoding, resampling, downmixing, validation and normalisation."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_core import audio_io
from model_core.audio_io import (
    TARGET_SAMPLE_RATE,
    AudioError,
    DecodedAudio,
    crop_seconds,
    decode_audio_bytes,
    load_audio_file,
    normalise_for_wav2vec2,
    prepare_samples,
)


def sine(freq: float, sr: int, seconds: float, amp: float = 0.5, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.float64)


def encode(data: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def dominant_freq(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def assert_valid(d: DecodedAudio) -> None:
    assert isinstance(d, DecodedAudio)
    assert d.samples.ndim == 1 and d.samples.dtype == np.float32
    assert d.sample_rate == TARGET_SAMPLE_RATE
    assert d.samples.shape[0] >= 1
    assert np.isfinite(d.samples).all()
    assert math.isclose(d.duration_s, d.samples.shape[0] / TARGET_SAMPLE_RATE)


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("fmt", "subtype", "tol"),
    [
        ("WAV", "PCM_16", 1e-4),
        ("WAV", "PCM_24", 1e-6),
        ("WAV", "FLOAT", 1e-7),
        ("FLAC", "PCM_16", 1e-4),
        ("OGG", "VORBIS", None),
        ("MP3", "MPEG_LAYER_III", None),
    ],
)
def test_formats_decode_from_file_and_bytes(tmp_path, fmt, subtype, tol):
    x = sine(440, 16000, 1.0)
    path = tmp_path / f"clip.{fmt.lower()}"
    try:
        sf.write(path, x, 16000, format=fmt, subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as err:
        pytest.skip(f"libsndfile here cannot write {fmt}/{subtype}: {err}")
    from_file = load_audio_file(path)
    from_bytes = decode_audio_bytes(path.read_bytes(), name=path.name)
    for d in (from_file, from_bytes):
        assert_valid(d)
        assert d.source_sample_rate == 16000 and d.source_channels == 1
    np.testing.assert_array_equal(from_file.samples, from_bytes.samples)
    if tol is not None:
        # Lossless formats at 16 kHz: no resampling, samples come back as written.
        assert from_file.samples.shape[0] == x.shape[0]
        np.testing.assert_allclose(from_file.samples, x, atol=tol)
    else:
        # Lossy codecs may pad/trim a little and shift phase; the tone must survive.
        assert abs(from_file.duration_s - 1.0) < 0.1
        assert abs(dominant_freq(from_file.samples, 16000) - 440) < 3
        assert abs(rms(from_file.samples) - 0.5 / math.sqrt(2)) < 0.05


def test_int16_wav_is_scaled_by_32768_exactly():
    pcm = np.array([-32768, -16384, 0, 1, 16384, 32767], dtype=np.int16)
    pcm = np.tile(pcm, 400)
    d = decode_audio_bytes(encode(pcm, 16000, subtype="PCM_16"))
    np.testing.assert_array_equal(d.samples, pcm.astype(np.float32) / 32768)


# --------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("sr", [8000, 22050, 32000, 44100, 48000, 96000])
def test_stereo_file_resampled_to_16k_mono(tmp_path, sr):
    left = sine(1000, sr, 2.0, amp=0.5)
    stereo = np.stack([left, left], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, sr, subtype="FLOAT")
    d = load_audio_file(path)
    assert_valid(d)
    assert d.source_sample_rate == sr and d.source_channels == 2
    expected_len = len(left) * TARGET_SAMPLE_RATE / sr
    assert abs(d.samples.shape[0] - expected_len) <= 1
    # Ignore filter edge transients; the 1 kHz tone keeps its frequency and level.
    mid = d.samples[800:-800]
    assert abs(dominant_freq(mid, TARGET_SAMPLE_RATE) - 1000) <= 2
    assert rms(mid) == pytest.approx(0.5 / math.sqrt(2), rel=0.01)


def test_16k_input_is_passed_through_untouched():
    x = sine(300, 16000, 0.5).astype(np.float32)
    d = prepare_samples(x, 16000)
    np.testing.assert_array_equal(d.samples, x)


def test_resampler_is_anti_aliased():
    # 12 kHz at 48 kHz is above the new 8 kHz Nyquist: naive decimation would fold it to 4 kHz.
    d = prepare_samples(sine(12000, 48000, 1.0, amp=0.5), 48000)
    assert rms(d.samples[800:-800]) < 0.01 * 0.5


def test_odd_rate_resamples_with_exact_length():
    sr = 44101  # coprime with 16000: up/down = 16000/44101
    x = sine(1000, sr, 0.5)
    d = prepare_samples(x, sr)
    assert abs(d.samples.shape[0] - len(x) * 16000 / sr) <= 1
    assert abs(dominant_freq(d.samples, 16000) - 1000) <= 3


# --------------------------------------------------------------------------- downmix / layouts / PCM


def test_downmix_is_channel_mean():
    left = sine(500, 16000, 0.5, amp=0.6)
    right = sine(700, 16000, 0.5, amp=0.2)
    d = prepare_samples(np.stack([left, right], axis=1), 16000)
    np.testing.assert_allclose(d.samples, ((left + right) / 2).astype(np.float32), atol=1e-7)
    assert d.source_channels == 2


def test_downmix_from_stereo_file_matches_mean():
    left = sine(500, 16000, 0.5, amp=0.6)
    right = sine(700, 16000, 0.5, amp=0.2)
    d = decode_audio_bytes(encode(np.stack([left, right], axis=1), 16000, subtype="FLOAT"))
    np.testing.assert_allclose(d.samples, (left + right) / 2, atol=1e-7)


def test_multichannel_file_downmix():
    chans = np.stack([sine(200 * (i + 1), 16000, 0.25, amp=0.1 * (i + 1)) for i in range(6)], axis=1)
    d = decode_audio_bytes(encode(chans, 16000, subtype="FLOAT"))
    assert d.source_channels == 6
    np.testing.assert_allclose(d.samples, chans.mean(axis=1), atol=1e-7)


def test_channels_first_layout_accepted():
    left = sine(500, 16000, 0.5)
    right = sine(900, 16000, 0.5)
    frames_first = prepare_samples(np.stack([left, right], axis=1), 16000)
    channels_first = prepare_samples(np.stack([left, right], axis=0), 16000)
    np.testing.assert_array_equal(frames_first.samples, channels_first.samples)
    assert channels_first.source_channels == 2


def test_opposite_phase_stereo_is_silent_after_downmix():
    left = sine(500, 16000, 0.5)
    with pytest.raises(AudioError, match="is silent"):
        prepare_samples(np.stack([left, -left], axis=1), 16000)


@pytest.mark.parametrize("shape", [(3000, 3000), (2, 3, 4000)])
def test_ambiguous_or_bad_shapes_rejected(shape):
    with pytest.raises(AudioError, match="shape"):
        prepare_samples(np.full(shape, 0.1, dtype=np.float32), 16000, name="clip")


@pytest.mark.parametrize(
    ("values", "dtype", "expected"),
    [
        ([-32768, -16384, 0, 16384, 32767], np.int16, [-1.0, -0.5, 0.0, 0.5, 32767 / 32768]),
        ([-(2**31), -(2**30), 0, 2**30, 2**31 - 1], np.int32, [-1.0, -0.5, 0.0, 0.5, (2**31 - 1) / 2**31]),
        ([0, 64, 128, 192, 255], np.uint8, [-1.0, -0.5, 0.0, 0.5, 127 / 128]),
    ],
)
def test_int_pcm_scaling(values, dtype, expected):
    pcm = np.tile(np.array(values, dtype=dtype), 400)
    d = prepare_samples(pcm, 16000)
    np.testing.assert_array_equal(d.samples, np.tile(np.array(expected, dtype=np.float32), 400))


def test_big_endian_int16_accepted():
    pcm = np.tile(np.array([-32768, 0, 16384], dtype=">i2"), 1000)
    d = prepare_samples(pcm, 16000)
    np.testing.assert_array_equal(d.samples, np.tile(np.array([-1.0, 0.0, 0.5], dtype=np.float32), 1000))


def test_input_array_not_aliased_or_modified():
    x = sine(440, 16000, 0.5).astype(np.float32)
    keep = x.copy()
    d = prepare_samples(x, 16000)
    d.samples[:] = 0
    np.testing.assert_array_equal(x, keep)


def test_unsupported_dtype_rejected():
    with pytest.raises(AudioError, match="unsupported sample type"):
        prepare_samples(np.ones(4000, dtype=np.int64), 16000, name="clip")


def test_float64_input_gives_float32():
    d = prepare_samples(sine(440, 16000, 0.5), 16000)
    assert d.samples.dtype == np.float32


# --------------------------------------------------------------------------- normalisation


def test_normalisation_matches_hand_computation():
    x = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    # mean 2.5, population variance 1.25 (ddof=0).
    expected = np.array([(v - 2.5) / math.sqrt(1.25 + 1e-7) for v in (1, 2, 3, 4)], dtype=np.float32)
    out = normalise_for_wav2vec2(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_normalisation_is_float64_formula_then_cast():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000) * 0.1 + 0.01).astype(np.float32)
    x64 = x.astype(np.float64)
    mean = x64.sum() / x64.size
    var = ((x64 - mean) ** 2).sum() / x64.size
    hand = ((x64 - mean) / math.sqrt(var + 1e-7)).astype(np.float32)
    out = normalise_for_wav2vec2(x)
    np.testing.assert_allclose(out, hand, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(out, ((x64 - x64.mean()) / np.sqrt(x64.var() + 1e-7)).astype(np.float32))
    # Population variance, not the sample variance.
    ddof1 = ((x64 - x64.mean()) / np.sqrt(x64.var(ddof=1) + 1e-7)).astype(np.float32)
    assert not np.array_equal(out, ddof1)


def test_normalisation_of_constant_signal_is_finite():
    out = normalise_for_wav2vec2(np.full(100, 0.25, dtype=np.float32))
    np.testing.assert_array_equal(out, np.zeros(100, dtype=np.float32))


# --------------------------------------------------------------------------- error cases


def test_random_bytes_rejected():
    rng = np.random.default_rng(1)
    with pytest.raises(AudioError) as info:
        decode_audio_bytes(rng.bytes(4096), name="upload.bin")
    msg = str(info.value)
    assert msg.startswith("upload.bin could not be decoded as audio (soundfile: ")
    assert "Supported: WAV, FLAC, OGG, MP3" in msg


@pytest.mark.parametrize("cut", [8, 20, 30])
def test_truncated_wav_header_rejected(cut):
    data = encode(sine(440, 16000, 1.0), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match="could not be decoded as audio"):
        decode_audio_bytes(data[:cut])


def test_wav_truncated_inside_data_is_too_short():
    data = encode(sine(440, 16000, 1.0), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match="is only .* seconds long"):
        decode_audio_bytes(data[: 44 + 200])


def test_wav_truncated_mid_data_decodes_what_is_there():
    data = encode(sine(440, 16000, 1.0), 16000, subtype="PCM_16")
    d = decode_audio_bytes(data[: 44 + 2 * 8000])
    assert_valid(d)
    assert d.samples.shape[0] == 8000


def test_empty_bytes_and_empty_file(tmp_path):
    with pytest.raises(AudioError, match=r"^clip is empty \(0 bytes\)"):
        decode_audio_bytes(b"", name="clip")
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="is empty"):
        load_audio_file(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        load_audio_file(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is not a file"):
        load_audio_file(tmp_path)


def test_wav_with_no_frames():
    with pytest.raises(AudioError, match="contains no audio samples"):
        decode_audio_bytes(encode(np.zeros(0), 16000, subtype="PCM_16"))


def test_zero_length_array():
    with pytest.raises(AudioError, match="contains no audio samples"):
        prepare_samples(np.zeros(0, dtype=np.float32), 16000)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_array_rejected(bad):
    x = sine(440, 16000, 0.5)
    x[100] = bad
    with pytest.raises(AudioError, match=r"^clip contains NaN or infinite sample values"):
        prepare_samples(x, 16000, name="clip")


def test_nan_in_float_wav_rejected():
    x = sine(440, 16000, 0.5).astype(np.float32)
    x[10] = np.nan
    with pytest.raises(AudioError, match="NaN or infinite"):
        decode_audio_bytes(encode(x, 16000, subtype="FLOAT"))


def test_float_values_overflowing_the_resampler_rejected():
    with pytest.raises(AudioError, match="too large to process"):
        prepare_samples(np.full(48000, 3.4e38, dtype=np.float32), 48000)


def test_non_finite_stereo_downmix_does_not_warn():
    x = np.stack([sine(440, 16000, 0.5)] * 2, axis=1)
    x[5] = [np.inf, -np.inf]  # the mean is NaN; must be an AudioError, not a RuntimeWarning
    with np.errstate(all="raise"), pytest.raises(AudioError, match="NaN or infinite"):
        prepare_samples(x, 16000)


@pytest.mark.parametrize("level", [0.0, 5e-5])
def test_silence_rejected(level):
    rng = np.random.default_rng(2)
    x = rng.uniform(-level, level, 16000)
    with pytest.raises(AudioError, match=r"^take1\.wav is silent"):
        decode_audio_bytes(encode(x, 16000, subtype="FLOAT"), name="take1.wav")


def test_too_long_with_small_limit():
    data = encode(sine(440, 16000, 2.0), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"is 2\.0 seconds long; the limit is 1\.0 seconds"):
        decode_audio_bytes(data, max_seconds=1.0)
    with pytest.raises(AudioError, match=r"is 2\.0 seconds long; the limit is 1\.0 seconds"):
        prepare_samples(sine(440, 16000, 2.0), 16000, max_seconds=1.0)


def test_limit_is_inclusive():
    d = prepare_samples(sine(440, 16000, 1.0), 16000, max_seconds=1.0)
    assert d.samples.shape[0] == 16000


def test_long_file_refused_from_header_without_decoding(tmp_path, monkeypatch):
    # 45 minutes at 1 kHz, 8-bit: only 2.7 MB on disk, but over the default 30-minute limit.
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(45 * 60 * 1000, dtype=np.int16), 1000, subtype="PCM_U8")
    data = path.read_bytes()

    def boom(*args, **kwargs):
        raise AssertionError("audio was decoded although the header already proves it is too long")

    monkeypatch.setattr(sf, "read", boom)
    monkeypatch.setattr(sf.SoundFile, "read", boom)
    monkeypatch.setattr(sf.SoundFile, "blocks", boom)
    expected = r"is 45\.0 minutes long; the limit is 30\.0 minutes"
    with pytest.raises(AudioError, match=expected):
        load_audio_file(path)
    with pytest.raises(AudioError, match=expected):
        decode_audio_bytes(data, name="long.wav")


def test_close_to_limit_message_still_distinguishes():
    x = sine(440, 1000, 61.0)
    with pytest.raises(AudioError, match=r"is 1\.02 minutes long; the limit is 1\.00 minutes"):
        prepare_samples(x, 1000, max_seconds=60.0)


def test_too_short_rejected():
    with pytest.raises(AudioError, match=r"^clip is only 0\.05 seconds long; at least 0\.1 seconds"):
        prepare_samples(sine(440, 16000, 0.05), 16000, name="clip")


@pytest.mark.parametrize("rate", [0, -16000, 500, 999, 384001, 10**7, 44100.5, float("nan"), True, "16000"])
def test_absurd_sample_rates_rejected(rate):
    with pytest.raises(AudioError, match="sample rate"):
        prepare_samples(sine(440, 16000, 0.5), rate)


@pytest.mark.parametrize("rate", [500, 400000])
def test_absurd_sample_rate_in_file_rejected(rate):
    with pytest.raises(AudioError, match=f"sample rate of {rate} Hz"):
        decode_audio_bytes(encode(sine(100, 16000, 1.0), rate, subtype="PCM_16"))


@pytest.mark.parametrize("rate", [1000, 384000])
def test_sample_rate_bounds_accepted(rate):
    d = prepare_samples(sine(100, rate, 0.5), rate)
    assert abs(d.samples.shape[0] - 8000) <= 1


def test_bad_max_seconds_is_programmer_error():
    with pytest.raises(ValueError, match="max_seconds"):
        prepare_samples(sine(440, 16000, 0.5), 16000, max_seconds=0)


def test_audio_error_is_value_error():
    assert issubclass(AudioError, ValueError)


def test_no_torch_import():
    code = "import sys, model_core.audio_io; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- crop_seconds


@pytest.fixture
def two_seconds() -> DecodedAudio:
    return prepare_samples(sine(440, 44100, 2.0), 44100)


def test_crop_full_range_and_open_end(two_seconds):
    full = crop_seconds(two_seconds, 0.0, None)
    np.testing.assert_array_equal(full.samples, two_seconds.samples)
    again = crop_seconds(two_seconds, 0.0, two_seconds.duration_s)
    np.testing.assert_array_equal(again.samples, two_seconds.samples)
    assert full.source_sample_rate == 44100 and full.source_channels == 1


def test_crop_middle(two_seconds):
    part = crop_seconds(two_seconds, 0.5, 1.25)
    np.testing.assert_array_equal(part.samples, two_seconds.samples[8000:20000])
    assert part.duration_s == pytest.approx(0.75)
    part.samples[0] = 9.0  # a copy, not a view into the original
    assert two_seconds.samples[8000] != 9.0


def test_crop_end_within_one_sample_is_clamped(two_seconds):
    part = crop_seconds(two_seconds, 1.0, two_seconds.duration_s + 0.5 / 16000)
    assert part.samples.shape[0] == two_seconds.samples.shape[0] - 16000


@pytest.mark.parametrize(
    ("start", "end", "match"),
    [
        (-0.1, None, "negative"),
        (2.0, None, "at or past the end"),
        (5.0, 6.0, "at or past the end"),
        (0.5, 3.0, "past the end"),
        (1.0, 1.0, "must be after"),
        (1.0, 0.5, "must be after"),
        (1.0, 1.00001, "contains no samples"),
        (float("nan"), None, "finite"),
        (0.0, float("inf"), "finite"),
    ],
)
def test_crop_errors(two_seconds, start, end, match):
    with pytest.raises(AudioError, match=match):
        crop_seconds(two_seconds, start, end)


# --------------------------------------------------------------------------- decoding only a range

RANGE_CASES = [(0.0, 2.0), (3.3, 7.71), (0.00003, 0.5), (11.5, None), (6.0, 12.0)]


@pytest.mark.parametrize(("sr", "channels", "fmt", "subtype"), [
    (44100, 2, "FLAC", "PCM_24"), (48000, 1, "WAV", "FLOAT"), (16000, 1, "WAV", "PCM_16"),
    (22050, 2, "OGG", "VORBIS"), (44100, 1, "MP3", "MPEG_LAYER_III"), (96000, 1, "WAV", "PCM_16"),
])
def test_a_range_decodes_to_the_samples_a_crop_of_the_whole_gives(sr, channels, fmt, subtype):
    rng = np.random.default_rng(sr + channels)
    data = encode(rng.standard_normal((12 * sr, channels)) * 0.1, sr, fmt, subtype)
    whole = decode_audio_bytes(data)
    for start, end in RANGE_CASES:
        part = decode_audio_bytes(data, start_s=start, end_s=end)
        # Bit for bit, but for mp3: its decoder's float rounding after a seek differs in the last bits.
        np.testing.assert_allclose(part.samples, crop_seconds(whole, start, end).samples, rtol=0,
                                   atol=1e-6 if fmt == "MP3" else 0)
        assert part.source_sample_rate == sr and part.source_channels == channels


def test_only_the_range_is_decoded():
    # Samples outside the range that would refuse the file (NaN) are never read: they lie beyond the filter's reach.
    samples = sine(220, 44100, 10.0)
    samples[: 44100 * 2] = np.nan
    samples[44100 * 8:] = np.nan
    data = encode(samples, 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        decode_audio_bytes(data)
    part = decode_audio_bytes(data, start_s=3.0, end_s=7.0)
    assert part.duration_s == 4.0 and np.isfinite(part.samples).all()
    with pytest.raises(AudioError, match=r"^audio from 1 s to 3 s contains NaN"):
        decode_audio_bytes(data, start_s=1.0, end_s=3.0)


def test_limits_apply_to_the_range_not_the_file(tmp_path):
    data = encode(sine(300, 8000, 40.0), 8000)  # 40 s: over a 30 s limit
    with pytest.raises(AudioError, match="is 40.0 seconds long; the limit is 30.0 seconds"):
        decode_audio_bytes(data, max_seconds=30)
    part = decode_audio_bytes(data, max_seconds=30, start_s=32.0, end_s=37.0)
    assert part.duration_s == 5.0
    with pytest.raises(AudioError, match=r"^audio from 2 s to 34 s is 32.0 seconds long; the limit is 30.0 seconds"):
        decode_audio_bytes(data, max_seconds=30, start_s=2.0, end_s=34.0)
    with pytest.raises(AudioError, match=r"^audio from 20 s to 40 s holds 0 million samples"):
        decode_audio_bytes(data, max_seconds=30, start_s=20.0, max_source_samples=100_000)
    assert decode_audio_bytes(data, max_seconds=30, start_s=35.0, max_source_samples=100_000).duration_s == 5.0
    path = tmp_path / "long.wav"
    path.write_bytes(data)
    assert load_audio_file(path, max_seconds=30, start_s=32.0, end_s=37.0).duration_s == 5.0


def test_a_chosen_range_is_not_judged_silent_but_must_lie_in_the_file():
    data = encode(np.zeros(16000 * 3), 16000)
    with pytest.raises(AudioError, match="silent"):
        decode_audio_bytes(data)
    assert not decode_audio_bytes(data, start_s=1.0, end_s=2.0).samples.any()
    data = encode(sine(440, 44100, 2.0), 44100)
    for (start, end), match in [((2.0, None), "at or past the end"), ((0.5, 3.0), "past the end"),
                                ((1.0, 0.5), "must be after"), ((1.0, 1.00001), "contains no samples"),
                                ((-0.1, None), "negative"), ((float("nan"), None), "finite")]:
        with pytest.raises(AudioError, match=match):
            decode_audio_bytes(data, start_s=start, end_s=end)


def test_the_budget_of_a_range_is_the_range():
    info = audio_io.AudioInfo(48000, 2, 48000 * 2400)  # 40 minutes
    whole = info.output_bytes(1800)
    assert whole == 4 * (16000 * 1800 + 1)
    assert 4 * 16000 * 5 < info.output_bytes(1800, 100.0, 105.0) < 4 * 16000 * 5.2
    assert info.output_bytes(1800, 2395.0) < 4 * 16000 * 5.2
    assert audio_io.AudioInfo(48000, 2, None).output_bytes(1800, 100.0, 105.0) == whole  # length unknown: all of it
    # a file that cannot seek is decoded whole and cut, so it is budgeted whole
    assert audio_io.AudioInfo(48000, 2, 48000 * 2400, seekable=False).output_bytes(1800, 100.0, 105.0) == whole


# --------------------------------------------------------------------------- fuzzing


def _check_fuzz_result(data: bytes) -> None:
    try:
        d = decode_audio_bytes(data, max_seconds=60.0)
    except AudioError as err:
        assert str(err)
        return
    assert_valid(d)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_crash(data):
    _check_fuzz_result(data)


_SEEDS = [
    encode(sine(440, 16000, 0.3), 16000, "WAV", "PCM_16"),
    encode(sine(440, 8000, 0.3), 8000, "WAV", "FLOAT"),
    encode(sine(440, 16000, 0.3), 16000, "FLAC", "PCM_16"),
    encode(sine(440, 16000, 0.3), 16000, "OGG", "VORBIS"),
    encode(np.stack([sine(440, 22050, 0.3)] * 2, axis=1), 22050, "AIFF", "PCM_16"),
]


@st.composite
def mutated_audio(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    # Header-heavy mutations: that is where parsers go wrong.
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, min(len(data) - 1, 256)))
        data[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut] if draw(st.booleans()) else data)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_audio())
def test_mutated_audio_never_crashes(data):
    _check_fuzz_result(data)


def test_module_constants():
    assert audio_io.TARGET_SAMPLE_RATE == 16000
    assert audio_io.DEFAULT_MAX_SECONDS == 1800
