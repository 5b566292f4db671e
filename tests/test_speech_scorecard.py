"""The real-speech scorecard: its measures on hand-made mouths with known answers, then one run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from model_core.corpus.phones import TimedPhone
from model_core.evaluation.speech_scorecard import (
    MouthTracks,
    best_lag_ms,
    bilabial_minima,
    jaw_target,
    lag_curve,
    long_pauses,
    measure_take,
    mouth_tracks,
    rest_mouth,
    summarise,
)

FPS = 30.0


def tracks(gap: np.ndarray, jaw: np.ndarray | None = None) -> MouthTracks:
    gap = np.asarray(gap, dtype=np.float64)
    return MouthTracks(gap, np.zeros_like(gap) if jaw is None else np.asarray(jaw, dtype=np.float64), FPS)


def phones(*spans: tuple[str, float, float]) -> list[TimedPhone]:
    return [TimedPhone(s, a, b) for s, a, b in spans]


def test_mouth_tracks_measure_mm_against_the_neutral():
    # Landmarks 0: upper lip, 1: lower lip, 2: chin, 3: something else. The neutral mouth is 1 mm open.
    template = np.array([[0, 0.001, 0], [0, 0.0, 0], [0, -0.05, 0], [0, 0.1, 0]], dtype=np.float64)
    frames = np.repeat(template[None], 3, axis=0)
    frames[1, 1, 1] -= 0.004  # lower lip 4 mm down
    frames[1, 2, 1] -= 0.006  # chin 6 mm down
    frames[2, 0, 1] -= 0.001  # upper lip 1 mm down: the lips now touch
    t = mouth_tracks(frames.reshape(3, -1), template, {"lip_upper": 0, "lip_lower": 1, "chin": 2}, FPS)
    np.testing.assert_allclose(t.lip_gap_mm, [0.0, 4.0, -1.0], atol=1e-9)
    np.testing.assert_allclose(t.jaw_mm, [0.0, 6.0, 0.0], atol=1e-9)
    with pytest.raises(ValueError, match="chin"):
        mouth_tracks(frames, template, {"lip_upper": 0, "lip_lower": 1}, FPS)


def test_bilabial_closures_found_within_one_frame_of_the_phone_only():
    gap = np.full(60, 6.0)
    # Windows: m 0.30-0.37 s -> frames 8..13, p 0.75-0.80 s -> 21..25, b 1.30-1.36 s -> 38..42.
    gap[10] = 0.5
    gap[25] = 1.5  # the frame after the p's last one (24 shows 0.80 s exactly: no rounding may lose it)
    gap[26] = 0.2  # one frame further: not the p's
    gap[40] = 3.0
    gap[45] = 0.2  # after the b: not its closure
    ph = phones(("m", 0.30, 0.37), ("p", 0.75, 0.80), ("b", 1.30, 1.36), ("aa", 1.36, 1.6))
    np.testing.assert_allclose(bilabial_minima(gap, ph, FPS), [0.5, 1.5, 3.0])
    # A closure two frames past the span's last frame is not the phone's.
    late = np.full(60, 6.0)
    late[26] = late[27] = 0.0
    assert bilabial_minima(late, phones(("p", 0.75, 0.80)), FPS) == [6.0]

    take = measure_take("t", "hand", tracks(gap), ph)
    s = summarise([take], FPS)
    assert s["bilabials"] == 3
    assert s["bilabial_within_1mm"] == pytest.approx(1 / 3, abs=1e-3)
    assert s["bilabial_within_2mm"] == pytest.approx(2 / 3, abs=1e-3)
    assert s["bilabial_min_gap_median_mm"] == pytest.approx(1.5)


def test_jaw_by_phone_class_and_lips_in_long_pauses():
    frames = 90  # 3 s
    ph = phones(("sil", 0.0, 0.5), ("hh", 0.5, 0.6), ("aa", 0.6, 1.0), ("m", 1.0, 1.2), ("sil", 1.2, 1.3),
                ("ae", 1.3, 1.6), ("sil", 1.6, 1.7), ("sil", 1.7, 1.8), ("iy", 1.8, 3.0))
    # Frames: sil 0..14, hh 15..17, aa 18..29, m 30..35, sil 36..38, ae 39..47, sil 48..53, iy 54..89.
    jaw = np.full(frames, 2.0)
    jaw[18:30] = jaw[39:48] = 8.0
    jaw[30:36] = 1.0
    jaw[:15] = 0.5
    gap = np.full(frames, 5.0)
    gap[:15] = 2.0
    gap[48:54] = 3.0
    gap[39:48] = 7.0  # the lips open wider on the ae than on the aa
    take = measure_take("t", "hand", tracks(gap, jaw), ph)
    assert take.jaw_mm["open_vowels"] == pytest.approx(8.0)
    assert take.lip_mm["open_vowels"] == pytest.approx((12 * 5.0 + 9 * 7.0) / 21)
    assert take.jaw_mm["bilabials"] == pytest.approx(1.0)
    # Pause frames: 15 at 0.5 mm, 3 at 2 mm (1.2-1.3 s) and 6 at 2 mm (1.6-1.8 s).
    assert take.jaw_frames["pauses"] == 24
    assert take.jaw_mm["pauses"] == pytest.approx((15 * 0.5 + 9 * 2.0) / 24)
    # Long pauses: the 0.5 s lead-in and the two joined 0.1 s silences; the lone 0.1 s one is too short.
    assert [(p.start, p.end) for p in long_pauses(ph)] == [(0.0, 0.5), (1.6, 1.8)]
    np.testing.assert_allclose(take.pause_lip_gap_mm, [2.0, 3.0])
    np.testing.assert_allclose(take.pause_jaw_mm, [0.5, 2.0])
    s = summarise([take], FPS)
    assert s["long_pauses"] == 2 and s["pause_lip_gap_mm"] == pytest.approx(2.5)
    assert s["lips_open_vowels_mm"] == pytest.approx((12 * 5.0 + 9 * 7.0) / 21, abs=1e-3)


def test_jaw_and_lip_means_pool_over_frames_not_takes():
    ph = phones(("aa", 0.0, 1.0))
    short = measure_take("a", "x", tracks(np.full(10, 1.0), np.full(10, 2.0)), ph)  # 10 frames at 2 mm
    long = measure_take("b", "x", tracks(np.full(30, 3.0), np.full(30, 6.0)), ph)  # 30 frames at 6 mm
    pooled = summarise([short, long], FPS)
    assert pooled["jaw_open_vowels_mm"] == pytest.approx((10 * 2 + 30 * 6) / 40)
    assert pooled["lips_open_vowels_mm"] == pytest.approx((10 * 1 + 30 * 3) / 40)


def sentence() -> list[TimedPhone]:
    """Syllables of varied length, so the correlation has one clear peak."""
    rng = np.random.default_rng(3)
    out, t = [TimedPhone("sil", 0.0, 0.3)], 0.3
    for i in range(24):
        cons = ("m", "t", "b", "s", "p", "k")[i % 6]
        vowel = ("aa", "iy", "ae", "uw", "ah", "eh")[(i * 5) % 6]
        c, v = rng.uniform(0.05, 0.12), rng.uniform(0.08, 0.25)
        out += [TimedPhone(cons, t, t + c), TimedPhone(vowel, t + c, t + c + v)]
        t += c + v
    return out + [TimedPhone("sil", t, t + 0.4)]


@pytest.mark.parametrize("lag_ms", [-100.0, 0.0, 50.0, 66.7, 150.0])
def test_lag_recovers_a_known_delay_with_positive_meaning_late(lag_ms):
    ph = sentence()
    frames = int(ph[-1].end * FPS)
    late = [TimedPhone(p.symbol, p.start + lag_ms / 1000, p.end + lag_ms / 1000) for p in ph]
    jaw = 9.0 * jaw_target(late, FPS, frames)  # a model that opens exactly as the target, lag_ms late
    take = measure_take("t", "hand", tracks(np.zeros(frames), jaw), ph)
    assert take.lag_ms == pytest.approx(lag_ms, abs=8.0)
    assert take.lag_corr > 0.95
    assert summarise([take, take], FPS)["lag_ms"] == pytest.approx(lag_ms, abs=8.0)


def test_lag_curve_sign_on_a_plain_shift():
    rng = np.random.default_rng(0)
    target = rng.standard_normal(200)
    predicted = np.roll(target, 3)  # predicted[k] = target[k - 3]: three frames late
    curve = lag_curve(predicted, target, 6)
    assert int(np.nanargmax(curve)) - 6 == 3
    assert best_lag_ms(curve, FPS)[0] == pytest.approx(100.0, abs=5.0)


def test_rest_mouth_reports_mean_and_peak():
    r = rest_mouth(tracks(np.array([0.0, 1.0, 2.0, 1.0]), np.array([4.0, 0.0, 0.0, 0.0])))
    assert r == {"jaw_mm_mean": 1.0, "jaw_mm_max": 4.0, "lip_gap_mm_mean": 1.0, "lip_gap_mm_max": 2.0}


# -- end to end: a tiny random checkpoint, a hand-made recording with its phones (no aligner needed) ----------

LIPS = {"lip_upper": 0, "lip_lower": 1, "chin": 2}


def tiny_checkpoint(path, metadata_landmarks: dict | None = None):
    """A 40-vertex random model whose template has closed lips above a chin at vertices 0, 1, 2."""
    from safetensors.torch import load_file, save_file

    from model_core.checkpoint import CheckpointInfo, save_checkpoint
    from tests.conftest import make_model, tiny_config

    model = make_model(tiny_config(), head_std=0.02)
    template = np.random.default_rng(1).normal(scale=0.05, size=(40, 3)).astype(np.float32)
    template[0] = template[1] = (0.0, 0.0, 0.1)
    template[2] = (0.0, -0.05, 0.1)
    save_checkpoint(path, model, CheckpointInfo(config=model.config, name="tiny"), template=template)
    if metadata_landmarks is not None:  # what a head-aware trainer will write
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata())
        save_file(load_file(str(path)), str(path), metadata={**meta, "landmarks": json.dumps(metadata_landmarks)})
    return path, template


def hand_made_recording(folder):
    from tests.conftest import speech_like

    folder.mkdir()
    sf.write(folder / "take.wav", speech_like(3.0), 16000, subtype="FLOAT")
    spans = [("sil", 0.0, 0.4), ("m", 0.4, 0.5), ("aa", 0.5, 0.8), ("p", 0.8, 0.9), ("ah", 0.9, 1.2),
             ("sil", 1.2, 1.6), ("b", 1.6, 1.7), ("iy", 1.7, 2.1), ("t", 2.1, 2.2), ("ae", 2.2, 2.6), ("sil", 2.6, 3.0)]
    (folder / "take.phones.json").write_text(json.dumps([{"symbol": s, "start": a, "end": b} for s, a, b in spans]))
    return spans


def test_score_speech_end_to_end_on_a_tiny_model(tmp_path, capsys):
    from model_core.cli import main
    from model_core.inference import Animator

    ck, template = tiny_checkpoint(tmp_path / "tiny.safetensors")
    spans = hand_made_recording(tmp_path / "rec")
    (tmp_path / "lips.json").write_text(json.dumps(LIPS))
    out = tmp_path / "card.json"
    rc = main(["score-speech", str(ck), "--sources", "", "--recordings", str(tmp_path / "rec"), "--landmarks",
               str(tmp_path / "lips.json"), "--json", str(out), "--per-take", "--quiet", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "lips within 2 mm" in printed and "recordings/take" in printed and "white_noise" in printed
    card = json.loads(out.read_text())
    assert card["overall"]["takes"] == 1 and card["overall"]["bilabials"] == 3
    assert card["sources"]["recordings"]["bilabials"] == 3
    assert set(card["rest"]) == {"white_noise", "silence"} and "silence" in card["rest"]["silence"]["input"]
    assert abs(card["overall"]["lag_ms"]) <= 200.0 + 1e-6
    assert card["overall"]["long_pauses"] == 3

    # The scorecard's closures are the lip gap of template + offsets at the landmarks, recomputed here by hand.
    offsets = Animator(ck, device="cpu").animate(sf.read(tmp_path / "rec" / "take.wav", dtype="float32")[0], 16000)
    mesh = offsets + template[None]
    gap = ((mesh[:, 0, 1] - mesh[:, 1, 1]) - (template[0, 1] - template[1, 1])) * 1000.0
    expected = [gap[max(0, int(np.floor(a * 30 + 1e-6)) - 1): int(np.ceil(b * 30 - 1e-6)) + 2].min()
                for s, a, b in spans if s in ("p", "b", "m")]
    np.testing.assert_allclose(card["takes"][0]["bilabial_min_mm"], expected, atol=2e-3)


def test_landmarks_from_metadata_synthetic_topology_or_one_sentence(tmp_path, capsys):
    from model_core.cli import main
    from model_core.evaluation.landmarks import resolve_landmarks, synthetic_landmarks
    from model_core.synth.blendshapes import landmarks
    from model_core.synth.head import build_topology

    assert synthetic_landmarks(3033) == landmarks(build_topology(3000))
    assert synthetic_landmarks(40) is None

    ck, template = tiny_checkpoint(tmp_path / "meta.safetensors", metadata_landmarks=LIPS)
    assert resolve_landmarks(ck, 40, template) == (LIPS, "checkpoint metadata")
    wrong = {"lip_upper": 0, "lip_lower": 2, "chin": 1}  # the 'lips' 5 cm apart: not this head's lips
    with pytest.raises(ValueError, match="do not sit on this model's lips"):
        resolve_landmarks(ck, 40, template, _write(tmp_path / "wrong.json", wrong))

    bare, _ = tiny_checkpoint(tmp_path / "bare.safetensors")
    hand_made_recording(tmp_path / "rec")
    rc = main(["score-speech", str(bare), "--sources", "", "--recordings", str(tmp_path / "rec"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--landmarks FILE.json" in err and len(err.strip().splitlines()) == 1


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_alignment_checks_reject_what_cannot_be_trusted():
    from model_core.evaluation.speech_align import check_alignment

    good = phones(("sil", 0.0, 0.2), ("m", 0.2, 0.3), ("aa", 0.3, 0.6), ("sil", 0.6, 1.0))
    assert check_alignment(good, 1.0) == good
    with pytest.raises(ValueError, match="covers only 50 %"):
        check_alignment(good, 2.0)
    with pytest.raises(ValueError, match="implausible phone 'aa' of 900 ms"):
        check_alignment(phones(("m", 0.0, 0.1), ("aa", 0.1, 1.0)), 1.0)
    with pytest.raises(ValueError, match="no speech"):
        check_alignment(phones(("sil", 0.0, 1.0)), 1.0)


@pytest.mark.parametrize("which", ["adapter", "default"])
def test_pocketsphinx_aligns_a_librivox_clip(which):
    pytest.importorskip("pocketsphinx")
    from pathlib import Path

    from model_core.audio_io import load_audio_file
    from model_core.evaluation.speech_align import default_aligner, pocketsphinx_align

    clip = Path("/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav")
    if not clip.is_file():
        pytest.skip("Debian's pocketsphinx-testdata is not installed")
    align = pocketsphinx_align if which == "adapter" else default_aligner()[0]
    ph = align(load_audio_file(clip).samples, "He was not an ill-disposed young man.")
    assert [p.symbol for p in ph if p.word == "man"] == ["m", "ae", "n"]
    m = next(p for p in ph if p.word == "man")
    assert 2.2 < m.start < 2.45  # heard at about 2.33 s
    # A transcript that is not what is said is rejected, with why (the corpus aligner guesses a pronunciation
    # for an unknown word through festival, then finds it does not match the audio).
    with pytest.raises(ValueError, match="missing from the" if which == "adapter" else None):
        align(load_audio_file(clip).samples, "he was zzxqvk")


def test_degradations_change_what_the_model_hears_not_the_phones(tmp_path):
    from model_core.evaluation.score_speech import degrade

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 5000 * t) + 0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    assert degrade(tone, "none") is tone
    phone = degrade(tone, "telephone")
    spectrum = np.abs(np.fft.rfft(phone))
    assert spectrum[5000] < 0.02 * spectrum[1000]  # the 5 kHz tone is gone on the line, the 1 kHz one kept
    noisy = degrade(tone, "noise15")
    snr = 10 * np.log10(np.mean(tone.astype(np.float64) ** 2) / np.mean((noisy - tone).astype(np.float64) ** 2))
    assert abs(snr - 15.0) < 0.5
    mp3 = degrade(tone + 0.01 * rng.standard_normal(16000).astype(np.float32), "mp3")
    assert mp3.shape == tone.shape and not np.array_equal(mp3, tone)
    with pytest.raises(ValueError, match="degradation"):
        degrade(tone, "underwater")
