"""The synthetic corpus: reproducible bytes, VOCASET layout, and physics a model can learn from."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.linalg import solve_toeplitz

from model_core.synth.blendshapes import SHAPE_NAMES, build_head
from model_core.synth.cli import add_synth_arguments, run_synth_cli
from model_core.synth.corpus import CorpusOptions, generate_corpus
from model_core.synth.head import HeadParams, build_topology
from model_core.synth.measures import eye_opening, jaw_opening, lip_gap, lip_gaps, load_meta
from model_core.synth.motion import Articulation, mouth_weights, upper_face_weights
from model_core.synth.phonemes import INVENTORY, Phone, Sentence
from model_core.synth.voice import Voice, synthesize
from model_core.templates import read_template

TINY = CorpusOptions(seed=0, subjects=3, sentences=2, min_seconds=2.0, max_seconds=3.0, vertices=1500)
MM = 1e-3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    generate_corpus(out, TINY, progress=False)
    return out


def takes(root: Path):
    """(name, phoneme record, vertices (T, V*3), audio) for every sentence."""
    for js in sorted((root / "phonemes").glob("*.json")):
        audio, sr = sf.read(root / "wav" / f"{js.stem}.wav", dtype="float32")
        assert sr == 16000
        yield js.stem, json.loads(js.read_text()), np.load(root / "vertices_npy" / f"{js.stem}.npy"), audio


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(corpus, tmp_path):
    again = tmp_path / "again"
    generate_corpus(again, TINY, progress=False)
    assert files_of(again) == files_of(corpus)

    # Each sentence has its own random streams: a 1 x 1 corpus with seed 0 repeats the first take exactly ...
    small = CorpusOptions(seed=0, subjects=1, sentences=1, min_seconds=2.0, max_seconds=3.0, vertices=1500)
    generate_corpus(tmp_path / "one", small, progress=False)
    name = "Synth_01_M_sentence01"
    for sub, ext in (("wav", "wav"), ("vertices_npy", "npy"), ("phonemes", "json")):
        assert (tmp_path / "one" / sub / f"{name}.{ext}").read_bytes() == (corpus / sub / f"{name}.{ext}").read_bytes()
    # ... and another seed changes sound, motion and head.
    generate_corpus(tmp_path / "seed1", dataclasses.replace(small, seed=1), progress=False)
    for sub in ("wav", "vertices_npy", "mesh"):
        a, b = sorted((tmp_path / "seed1" / sub).iterdir())[0], sorted((tmp_path / "one" / sub).iterdir())[0]
        assert a.name == b.name and a.read_bytes() != b.read_bytes()


def test_vocaset_layout_and_shapes(corpus):
    meta = load_meta(corpus)
    v = meta["vertex_count"]
    assert 1200 <= v <= 1800 and meta["fps"] == 60 and meta["sample_rate"] == 16000
    splits = json.loads((corpus / "splits.json").read_text())
    assert [splits[s]["subjects"] for s in ("train", "val", "test")] == [["Synth_01_M"], ["Synth_02_F"], ["Synth_03_M"]]
    assert all(splits[s]["sentences"] == [1, 2] for s in ("train", "val", "test"))

    with np.load(corpus / "templates.npz", allow_pickle=False) as npz:
        templates = {k: npz[k] for k in npz.files}
    assert sorted(templates) == ["Synth_01_M", "Synth_02_F", "Synth_03_M"]
    for name, t in templates.items():
        assert t.shape == (v, 3) and t.dtype == np.float32
        np.testing.assert_allclose(read_template(corpus / "mesh" / f"{name}.obj", v), t, atol=1e-6)
    assert not np.allclose(templates["Synth_01_M"], templates["Synth_02_F"])  # heads differ per subject

    for region in ("lips", "upper_face", "jaw"):
        idx = np.array([int(i) for i in (corpus / "regions" / f"{region}.txt").read_text().strip().split(",")])
        assert len(idx) > 20 and len(np.unique(idx)) == len(idx) and idx.min() >= 0 and idx.max() < v
    lips = set(np.loadtxt(corpus / "regions" / "lips.txt", delimiter=",", dtype=int).tolist())
    assert {meta["landmarks"]["lip_upper"], meta["landmarks"]["lip_lower"]} <= lips

    names = [stem for stem, *_ in takes(corpus)]
    assert names == [f"Synth_0{s}_{'F' if s == 2 else 'M'}_sentence0{k}" for s in (1, 2, 3) for k in (1, 2)]
    for stem, rec, verts, audio in takes(corpus):
        seconds = len(audio) / 16000
        assert sf.info(corpus / "wav" / f"{stem}.wav").channels == 1
        assert 2.0 <= seconds <= 3.05 and rec["num_samples"] == len(audio) == rec["duration_ms"] * 16
        assert verts.dtype == np.float32 and verts.shape[1] == v * 3
        assert abs(verts.shape[0] - round(seconds * 60)) <= 1 and rec["num_frames"] == verts.shape[0]
        assert np.load(corpus / "vertices_npy" / f"{stem}.npy", allow_pickle=False).shape == verts.shape
        phones = rec["phonemes"]
        assert phones[0]["start"] == 0 and phones[-1]["end"] * 1000 == rec["duration_ms"]
        assert all(a["end_ms"] == b["start_ms"] for a, b in zip(phones, phones[1:], strict=False))
        assert rec["weights"]["names"] == list(SHAPE_NAMES) and len(rec["weights"]["values"]) == verts.shape[0]
        # The stored vertices are exactly template + sum(weights * shapes) of the subject's recorded head.
        params = next(s["head"] for s in meta["subjects"] if s["name"] == rec["subject"])
        head = build_head(build_topology(TINY.vertices), HeadParams(**{**params, "radii": tuple(params["radii"])}))
        np.testing.assert_allclose(head.template, templates[rec["subject"]], atol=1e-7)
        posed = head.pose(np.asarray(rec["weights"]["values"])).reshape(len(verts), -1)
        np.testing.assert_allclose(verts, posed, atol=1e-6)


def test_lips_close_on_bilabials_and_part_on_open_vowels(corpus):
    meta = load_meta(corpus)
    closed, seam, open_, at_30fps = [], [], [], []
    for _, rec, verts, _ in takes(corpus):
        gap, gaps = lip_gap(verts, meta), lip_gaps(verts, meta)
        for p in rec["phonemes"]:
            k = int(round(0.5 * (p["start"] + p["end"]) * 60))
            if p["bilabial"]:
                closed.append(gap[k])
                seam.append(np.abs(gaps[k]).max())
                # A 30 fps loader ([::2]) still sees the closure: some kept frame lies inside it.
                frames = [f for f in range(0, len(gap), 2) if p["start"] <= f / 60 <= p["end"] - 0.01]
                at_30fps.append(min(abs(gap[f]) for f in frames))
            elif INVENTORY[p["symbol"]].is_vowel and INVENTORY[p["symbol"]].height <= 0.2:
                open_.append(gap[k])
    assert len(closed) >= 8 and len(open_) >= 5
    assert np.max(np.abs(closed)) < 0.1 * MM and np.max(seam) < 1 * MM and np.max(at_30fps) < 0.1 * MM
    assert np.min(open_) > 3 * MM and np.mean(open_) > 6 * MM


def _lpc_f1(x: np.ndarray, order: int = 12) -> float:
    """Lowest LPC resonance above 150 Hz with bandwidth < 500 Hz: an estimate of F1."""
    x = np.append(x[0], x[1:] - 0.63 * x[:-1]) * np.hamming(len(x))
    r = np.correlate(x, x, "full")[len(x) - 1 : len(x) + order]
    roots = np.roots(np.concatenate([[1.0], -solve_toeplitz(r[:order], r[1 : order + 1])]))
    roots = roots[np.imag(roots) > 0]
    freq, bw = np.angle(roots) * 16000 / (2 * np.pi), -np.log(np.abs(roots)) * 16000 / np.pi
    return float(np.sort(freq[(freq > 150) & (bw < 500)])[0])


def test_jaw_follows_vowel_height_and_first_formant(corpus):
    meta = load_meta(corpus)
    templates = np.load(corpus / "templates.npz", allow_pickle=False)
    jaw, height, f1, measured = [], [], [], []
    for _, rec, verts, audio in takes(corpus):
        w = np.asarray(rec["weights"]["values"])[:, SHAPE_NAMES.index("jaw_open")]
        opening = jaw_opening(verts, meta, templates[rec["subject"]])
        for p in rec["phonemes"]:
            ph = INVENTORY[p["symbol"]]
            if ph.is_vowel and p["end"] - p["start"] > 0.06:
                mid = 0.5 * (p["start"] + p["end"])
                k, s = int(round(mid * 60)), int(mid * 16000)
                jaw.append(w[k])
                height.append(ph.height)
                f1.append(_lpc_f1(audio[s - 320 : s + 320].astype(np.float64)))
                measured.append(opening[k])
    assert len(jaw) >= 20
    assert np.corrcoef(jaw, height)[0, 1] < -0.8
    assert np.corrcoef(jaw, f1)[0, 1] > 0.7  # the audio carries the jaw: open jaw, high F1
    assert np.corrcoef(jaw, measured)[0, 1] > 0.9  # and the mesh shows it (chin-to-nose distance)


def _sentence(*symbols_ms: tuple[str, int]) -> Sentence:
    phones, t = [], 0
    for sym, ms in symbols_ms:
        phones.append(Phone(sym, t, t + ms, word=0, stressed=INVENTORY[sym].is_vowel))
        t += ms
    return Sentence(tuple(phones))


def test_mouth_anticipates_the_next_sound():
    head = build_head(build_topology(1500), HeadParams())
    gap_coef = head.lip_gap_coefficients
    tuck, press = SHAPE_NAMES.index("lower_lip_tuck"), SHAPE_NAMES.index("lip_press")
    s = _sentence(("sil", 300), ("aa", 200), ("f", 100), ("aa", 200), ("m", 80), ("aa", 200), ("sil", 300))
    f_on, m_on = 0.5, 0.8
    t = np.array([f_on - 0.2, f_on - 0.03, f_on, m_on - 0.2, m_on - 0.03, m_on, m_on + 0.04])
    w = mouth_weights(s, t, Articulation(), gap_coef)
    assert w[0, tuck] < 0.05 and 0.2 < w[1, tuck] < w[2, tuck]  # the lower lip heads for the teeth before /f/
    gap = w @ gap_coef[: w.shape[1]]
    unpressed = gap - w[:, press] * gap_coef[press]
    assert w[3, press] == 0.0 and gap[3] > 5 * MM  # wide open on /aa/ ...
    assert 0.0 < gap[4] < 0.75 * unpressed[4]  # ... already closing 30 ms before /m/ ...
    assert abs(gap[5]) < 1e-9 and abs(gap[6]) < 1e-9  # ... and shut from its onset through its closure


def test_upper_face_blinks_do_not_depend_on_what_is_said(corpus):
    one = _sentence(("sil", 500), *[("aa", 150), ("b", 80)] * 60, ("sil", 500))
    other = _sentence(("sil", 500), *[("s", 115), ("iy", 115)] * 60, ("sil", 500))
    assert one.duration_ms == other.duration_ms
    style = Articulation(blink_rate=0.3)
    times = np.arange(int(one.duration * 60)) / 60
    a = upper_face_weights(one, times, style, np.random.default_rng(5))
    b = upper_face_weights(other, times, style, np.random.default_rng(5))
    np.testing.assert_array_equal(a[:, :2], b[:, :2])  # same blinks whatever the phonemes
    assert (a[:, 0] > 0.99).any() and (a[:, 0] < 0.01).mean() > 0.7

    head = build_head(build_topology(1500), HeadParams())
    meta = {"vertex_count": head.template.shape[0], "landmarks": head.landmarks}
    weights = np.zeros((2, len(SHAPE_NAMES)))
    weights[1, SHAPE_NAMES.index("blink_left")] = 1.0
    lids = eye_opening(head.pose(weights), meta, "left")
    assert lids[0] > 6 * MM and lids[1] < 0.5 * MM

    blink, jaw = [], []
    for _, rec, _, _ in takes(corpus):
        w = np.asarray(rec["weights"]["values"])
        blink.append(w[:, SHAPE_NAMES.index("blink_left")])
        jaw.append(w[:, SHAPE_NAMES.index("jaw_open")])
    blink, jaw = np.concatenate(blink), np.concatenate(jaw)
    assert blink.max() > 0.5 and abs(np.corrcoef(blink, jaw)[0, 1]) < 0.3


def test_audio_is_speech_like(corpus):
    for _, rec, _, audio in takes(corpus):
        assert np.isfinite(audio).all() and 0.02 < np.sqrt(np.mean(audio**2)) and np.abs(audio).max() < 0.95
        for p in rec["phonemes"]:
            a, b = int(p["start"] * 16000), int(p["end"] * 16000)
            trim = 640 if p["symbol"] == "sil" else (b - a) // 4  # 40 ms of ringing at the edges of silences
            core = audio[a + trim : b - trim]
            rms = float(np.sqrt(np.mean(core.astype(np.float64) ** 2)))
            if p["symbol"] == "sil":
                assert rms < 1e-3, p  # pauses and the silence around the sentence are near-silent
            elif INVENTORY[p["symbol"]].is_vowel:
                assert rms > 0.03, p  # voiced
            elif INVENTORY[p["symbol"]].kind in ("nasal", "liquid", "glide"):
                assert rms > 0.01, p  # voiced too, if quieter (nasal murmur)
            elif p["symbol"] == "p":
                assert rms < 0.01, p  # bilabial closure: silence before the burst


def test_voice_is_deterministic_and_exact_length():
    s = _sentence(("sil", 200), ("m", 80), ("aa", 150), ("sil", 200))
    voice = Voice(f0=120.0, vtl_scale=1.0)
    a = synthesize(s, voice, np.random.default_rng(3))
    assert a.dtype == np.float32 and a.shape == (630 * 16,)
    np.testing.assert_array_equal(a, synthesize(s, voice, np.random.default_rng(3)))


def test_cli_refuses_a_used_folder_unless_overwrite(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_synth_arguments(parser)
    out = tmp_path / "c"
    argv = [str(out), "--subjects", "1", "--sentences", "1", "--vertices", "900", "--max-seconds", "2", "--quiet"]
    assert run_synth_cli(parser.parse_args(argv)) == 0
    assert "1 subjects x 1 sentences" in capsys.readouterr().out
    (out / "wav" / "stale_sentence99.wav").write_bytes(b"old")
    with pytest.raises(ValueError, match="--overwrite"):
        run_synth_cli(parser.parse_args(argv))
    assert run_synth_cli(parser.parse_args([*argv, "--overwrite"])) == 0
    assert not (out / "wav" / "stale_sentence99.wav").exists()
    with pytest.raises(ValueError, match="--min-seconds"):
        run_synth_cli(parser.parse_args([*argv, "--overwrite", "--min-seconds", "4"]))
