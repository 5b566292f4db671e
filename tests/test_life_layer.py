"""The life layer (blinks, eyes, brows) and the prosody it follows, on synthetic audio and prosody."""

from __future__ import annotations

import numpy as np
import pytest

from jambatalk_blender.core import life
from jambatalk_blender.core.life import LifeSettings, blink_intensity, life_layer
from jambatalk_blender.core.prosody import Prosody, accent_strengths, accents, pauses, prosody_track

FPS = 30.0
RATE = 16000
F0 = 150.0
PHRASES = [(0.5, 3.0), (3.8, 6.5), (7.5, 11.0)]  # seconds of speech; silence elsewhere in the 12 s take
SILENCES = [(0.0, 0.5), (3.0, 3.8), (6.5, 7.5), (11.0, 12.0)]
BUMPS = [1.6, 5.0, 9.0]  # seconds of +10 dB loudness bumps (the accents)


def synthetic_speech(gain: float = 1.0) -> np.ndarray:
    """A 150 Hz pulse train (sum of its harmonics, so the period is exact) in phrases, with loud bumps."""
    t = np.arange(int(12.0 * RATE)) / RATE
    harmonics = np.arange(1, int(RATE / 2 / F0))
    pulses = np.cos(2 * np.pi * F0 * np.outer(t, harmonics[:20])).sum(axis=1) / 20
    envelope = np.zeros_like(t)
    for a, b in PHRASES:
        envelope[(t >= a) & (t < b)] = 1.0
    for c in BUMPS:
        envelope *= 1.0 + 2.16 * np.exp(-0.5 * ((t - c) / 0.06) ** 2)  # +10 dB at the peak
    return gain * 0.05 * pulses * envelope


@pytest.fixture(scope="module")
def track() -> Prosody:
    return prosody_track(synthetic_speech(), RATE, FPS)


def phrase_prosody(minutes: float, fps: float = FPS, speech_s: float = 3.0, pause_s: float = 0.8) -> Prosody:
    """Synthetic prosody: speech_s of speech, pause_s of silence, repeated."""
    n = int(minutes * 60 * fps)
    cycle = (np.arange(n) / fps) % (speech_s + pause_s)
    speech = cycle < speech_s
    return Prosody(fps=fps, loudness_db=np.where(speech, -20.0, -80.0).astype(np.float32),
                   f0_hz=np.full(n, np.nan, np.float32), speech=speech)


def blink_peaks(layer: life.LifeLayer) -> np.ndarray:
    """Seconds of each blink's full closure (start + close + half hold)."""
    return np.array([s + d * (life._CLOSE + life._HOLD / 2) for s, d in layer.blinks])


# ---------------------------------------------------------------- prosody


def test_f0_of_a_pulse_train_is_within_3_percent(track):
    voiced = np.isfinite(track.f0_hz)
    assert voiced.sum() > 0.8 * track.speech.sum()
    assert np.abs(track.f0_hz[voiced] / F0 - 1).max() < 0.03
    assert not voiced[~track.speech].any()  # silence is unvoiced


def test_pauses_are_where_the_silences_are(track):
    found = pauses(track)
    assert len(found) == len(SILENCES)
    for (start, end), (a, b) in zip(found, SILENCES, strict=True):
        assert abs(start - a * FPS) <= 2 and abs(end - min(b * FPS, track.n_frames)) <= 2
    assert track.n_frames == 12 * FPS
    assert pauses(track, min_pause_s=0.9) == [p for p in found if (p[1] - p[0]) / FPS >= 0.9]


def test_accents_are_the_loud_bumps(track):
    found = accents(track)
    assert len(found) == len(BUMPS)
    assert np.abs(found / FPS - np.array(BUMPS)).max() <= 2 / FPS
    strength = accent_strengths(track, found)
    assert ((strength > 0.7) & (strength <= 1.0)).all()  # +10 dB over a 9 dB full-strength scale


def test_a_quieter_take_gives_the_same_speech_pauses_and_accents(track):
    quiet = prosody_track(synthetic_speech(gain=0.1), RATE, FPS)
    assert np.array_equal(quiet.speech, track.speech)
    assert pauses(quiet) == pauses(track)
    assert np.array_equal(accents(quiet), accents(track))
    assert np.allclose(quiet.loudness_db[track.speech], track.loudness_db[track.speech] - 20, atol=0.01)
    both = np.isfinite(quiet.f0_hz) & np.isfinite(track.f0_hz)
    assert np.allclose(quiet.f0_hz[both], track.f0_hz[both], rtol=1e-4)


def test_other_sample_and_frame_rates():
    x = synthetic_speech()[: 4 * RATE]
    t = np.arange(int(4 * 44100)) / 44100
    resampled = np.interp(t, np.arange(x.size) / RATE, x)  # good enough below 4 kHz for this check
    p = prosody_track(resampled, 44100, 24.0)
    assert p.n_frames == 96 and p.fps == 24.0
    assert np.abs(np.nanmedian(p.f0_hz) / F0 - 1) < 0.03
    assert prosody_track(x, RATE, FPS, n_frames=200).n_frames == 200  # frames past the end are silence


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros(0), RATE, FPS), "empty"),
        ((np.zeros((100, 2)), RATE, FPS), "1-D"),
        ((np.array([0.0, np.nan, 0.0]), RATE, FPS), "NaN"),
        ((np.zeros(1000), 4000, FPS), "8000"),
        ((np.zeros(1000), RATE, 0.0), "fps"),
        ((np.zeros(1000), RATE, FPS, 0), "n_frames"),
        ((np.zeros(1000), "fast", FPS), "sample_rate"),
    ],
)
def test_prosody_input_is_validated(args, match):
    with pytest.raises(ValueError, match=match):
        prosody_track(*args)


def test_pauses_and_accents_validate(track):
    with pytest.raises(ValueError, match="min_pause_s"):
        pauses(track, min_pause_s=-1)
    with pytest.raises(ValueError, match="Prosody"):
        accents("not prosody")


# ---------------------------------------------------------------- blinks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blink_rate_over_ten_minutes_is_the_talking_rate(seed):
    layer = life_layer(int(600 * FPS), FPS, LifeSettings(seed=seed))
    per_minute = len(layer.blinks) / 10
    assert abs(per_minute / life.BLINKS_PER_MIN_TALKING - 1) <= 0.15


def test_blink_durations_shapes_and_gaps():
    layer = life_layer(int(600 * FPS), FPS, LifeSettings(seed=3, eyes=False, brows=False))
    starts, durations = np.array(layer.blinks).T
    assert durations.min() >= 0.1 and durations.max() <= 0.4  # spontaneous blinks: 100-400 ms
    assert 0.18 <= np.median(durations) <= 0.26
    gaps = np.diff(starts)
    assert gaps.min() >= life.REFRACTORY_S - 1e-6
    assert np.mean(gaps) > np.median(gaps)  # right-skewed intervals
    left, right = layer.channels["eyeBlinkLeft"], layer.channels["eyeBlinkRight"]
    peaks = np.round(blink_peaks(layer) * FPS).astype(int)
    assert left[peaks].min() >= 0.55 and np.median(left[peaks]) > 0.9  # every blink reaches its closure
    assert np.abs(left - right).max() < 0.08  # both eyes together, a tiny asymmetry
    assert np.abs(left - right).max() > 0
    assert np.allclose(layer.channels["eyeSquintLeft"], 0.1 * left, atol=1e-6)


def test_blinks_close_faster_than_they_open():
    fps = 240.0
    layer = life_layer(int(60 * fps), fps, LifeSettings(seed=4, eyes=False, brows=False))
    curve = layer.channels["eyeBlinkLeft"]
    for start, duration in layer.blinks[:10]:
        frames = np.arange(int(start * fps), int((start + duration) * fps) + 2)
        top = frames[np.argmax(curve[frames])]
        closing = np.count_nonzero(curve[frames[frames < top]] > 0.05)
        opening = np.count_nonzero(curve[frames[frames > top]] > 0.05)
        assert closing < opening


def test_more_blinks_per_second_in_pauses_than_in_speech():
    prosody = phrase_prosody(10)
    in_pause = in_speech = 0
    for seed in range(3):
        layer = life_layer(prosody.n_frames, FPS, LifeSettings(seed=seed), prosody=prosody)
        frames = np.clip(np.round(blink_peaks(layer) * FPS).astype(int), 0, prosody.n_frames - 1)
        in_speech += prosody.speech[frames].sum()
        in_pause += (~prosody.speech[frames]).sum()
        expected = blink_intensity(prosody.n_frames, FPS, prosody).sum() / FPS
        assert abs(len(layer.blinks) / expected - 1) <= 0.15
    speech_s, pause_s = prosody.speech.sum() / FPS, (~prosody.speech).sum() / FPS
    assert in_pause / pause_s > 2 * in_speech / speech_s


def test_the_blink_target_rate():
    flat = blink_intensity(300, FPS)
    assert np.allclose(flat * 60, life.BLINKS_PER_MIN_TALKING)
    prosody = phrase_prosody(1)
    rate = blink_intensity(prosody.n_frames, FPS, prosody) * 60
    assert np.isclose(rate.mean(), life.BLINKS_PER_MIN_TALKING)  # short pauses: all of it is talk
    assert np.isclose(rate[~prosody.speech].min() / rate[prosody.speech].max(), life.PAUSE_BOOST)
    silent = Prosody(fps=FPS, loudness_db=np.full(300, -90, np.float32), f0_hz=np.full(300, np.nan, np.float32),
                     speech=np.zeros(300, bool))
    assert np.allclose(blink_intensity(300, FPS, silent) * 60, life.BLINKS_PER_MIN_REST)


# ---------------------------------------------------------------- eyes and brows


def test_gaze_is_conjugate_small_and_dips_in_blinks():
    no_blinks = life_layer(int(120 * FPS), FPS, LifeSettings(seed=5, blinks=False, brows=False))
    c = no_blinks.channels
    assert np.array_equal(c["eyeLookOutRight"], c["eyeLookInLeft"])  # looking right: right out, left in
    assert np.array_equal(c["eyeLookOutLeft"], c["eyeLookInRight"])
    assert np.array_equal(c["eyeLookUpLeft"], c["eyeLookUpRight"])
    assert np.array_equal(c["eyeLookDownLeft"], c["eyeLookDownRight"])
    horizontal = c["eyeLookOutRight"] - c["eyeLookOutLeft"]
    assert 0.03 < np.median(np.abs(horizontal)) < 0.1 and np.abs(horizontal).max() <= 0.21
    moves = np.flatnonzero(np.abs(np.diff(horizontal)) > 1e-6)
    holds = np.diff(moves)
    assert 5 < np.median(holds[holds > 2]) < 20  # fixations of a few hundred ms between saccades
    with_blinks = life_layer(int(120 * FPS), FPS, LifeSettings(seed=5, brows=False)).channels
    peaks = with_blinks["eyeBlinkLeft"] > 0.9
    dip = (c["eyeLookUpLeft"] - c["eyeLookDownLeft"]) - (with_blinks["eyeLookUpLeft"] - with_blinks["eyeLookDownLeft"])
    assert 0.05 < dip[peaks].mean() <= 2 / 25 and np.abs(dip[with_blinks["eyeBlinkLeft"] == 0]).max() < 1e-4


def test_brows_rise_on_accents_only_with_prosody(track):
    n = track.n_frames
    without = life_layer(n, FPS, LifeSettings(seed=0))
    assert without.accents == [] and not set(life.BROW_CHANNELS) & set(without.driven())
    layer = life_layer(n, FPS, LifeSettings(seed=0, blinks=False, eyes=False), prosody=track)
    assert layer.driven() == life.BROW_CHANNELS
    assert len(layer.accents) == len(BUMPS)  # strong accents always raise the brows
    assert np.abs(np.array(layer.accents) - BUMPS).max() <= 2 / FPS
    inner = layer.channels["browInnerUp"]
    for t in layer.accents:
        k = int(round(t * FPS))
        assert inner[k] == inner[k - 10: k + 10].max() and 0.45 <= inner[k] <= 0.6
        assert inner[k - 5] < inner[k] and inner[k + 13] < 0.05  # ~150 ms rise, ~400 ms decay
    outer = layer.channels["browOuterUpLeft"]
    assert np.allclose(outer.max() / inner.max(), 0.7, atol=0.05)


def test_prosody_at_another_frame_rate_drives_a_24_fps_scene(track):
    layer = life_layer(int(12 * 24), 24.0, LifeSettings(seed=0), prosody=track)
    assert all(curve.shape == (288,) for curve in layer.channels.values())
    assert np.abs(np.array(layer.accents) - BUMPS).max() <= 2 / FPS


# ---------------------------------------------------------------- the layer


def test_same_seed_same_curves_other_seed_other_curves(track):
    a = life_layer(track.n_frames, FPS, LifeSettings(seed=7), prosody=track)
    b = life_layer(track.n_frames, FPS, LifeSettings(seed=7), prosody=track)
    c = life_layer(track.n_frames, FPS, LifeSettings(seed=8), prosody=track)
    assert a.driven() == b.driven() == c.driven()
    assert all(np.array_equal(a.channels[k], b.channels[k]) for k in a.driven())
    assert a.blinks == b.blinks and a.accents == b.accents
    assert a.blinks != c.blinks
    assert not np.array_equal(a.channels["eyeLookOutRight"], c.channels["eyeLookOutRight"])


def test_each_part_has_its_own_stream(track):
    n = track.n_frames
    full = life_layer(n, FPS, LifeSettings(seed=2), prosody=track)
    no_eyes = life_layer(n, FPS, LifeSettings(seed=2, eyes=False), prosody=track)
    no_blinks = life_layer(n, FPS, LifeSettings(seed=2, blinks=False), prosody=track)
    no_brows = life_layer(n, FPS, LifeSettings(seed=2, brows=False, eye_strength=0.5), prosody=track)
    assert no_eyes.blinks == full.blinks and no_brows.blinks == full.blinks
    for name in life.BLINK_CHANNELS:
        assert np.array_equal(no_eyes.channels[name], full.channels[name])
    for name in life.BROW_CHANNELS:
        assert np.array_equal(no_eyes.channels[name], full.channels[name])
        assert np.array_equal(no_blinks.channels[name], full.channels[name])
    for name in ("eyeLookOutLeft", "eyeLookOutRight"):  # the blink dip only turns the eyes in and down
        assert np.array_equal(no_blinks.channels[name], full.channels[name])
    assert not set(life.EYE_CHANNELS) & set(no_eyes.driven())
    assert np.allclose(no_brows.channels["eyeLookOutLeft"], 0.5 * full.channels["eyeLookOutLeft"], atol=1e-6)


def test_available_channels_and_strengths(track):
    n = track.n_frames
    layer = life_layer(n, FPS, LifeSettings(), prosody=track,
                       available=["eyeBlinkLeft", "eyeBlinkRight", "browInnerUp", "jawOpen"])
    assert layer.driven() == ("eyeBlinkLeft", "eyeBlinkRight", "browInnerUp")
    assert life_layer(n, FPS, LifeSettings(), available=[]).driven() == ()
    strong = life_layer(n, FPS, LifeSettings(blink_strength=3.0, brow_strength=2.5), prosody=track)
    for curve in strong.channels.values():
        assert curve.dtype == np.float32 and curve.shape == (n,)
        assert curve.min() >= 0.0 and curve.max() <= 1.0
    assert strong.channels["eyeBlinkLeft"].max() == 1.0
    off = life_layer(n, FPS, LifeSettings(blink_strength=0.0), prosody=track)
    assert off.blinks == [] and "eyeBlinkLeft" not in off.driven()
    assert life_layer(0, FPS, LifeSettings()).blinks == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_frames": -1}, "n_frames"),
        ({"n_frames": "many"}, "n_frames"),
        ({"fps": float("nan")}, "fps"),
        ({"settings": "x"}, "LifeSettings"),
        ({"prosody": np.zeros(3)}, "Prosody"),
        ({"available": "eyeBlinkLeft"}, "collection"),
    ],
)
def test_life_input_is_validated(kwargs, match):
    args = {"n_frames": 30, "fps": FPS, "settings": LifeSettings()} | kwargs
    with pytest.raises(ValueError, match=match):
        life_layer(**args)
    with pytest.raises(ValueError, match="blink_strength"):
        LifeSettings(blink_strength=-1.0)
    with pytest.raises(ValueError, match="seed"):
        LifeSettings(seed=-3)
