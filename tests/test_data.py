"""Dataset layouts, splits, masks, templates, cropping, and the trusted VOCASET conversion script."""

from __future__ import annotations

import pickle  # only to *write* fake VOCASET release files for the conversion script; nothing here unpickles
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from model_core.data import MaskError, MotionCorpus, Sample, Take, crop_sample, parse_take_name, read_indices
from model_core.data.splits import VOCASET_TEST, VOCASET_TRAIN, VOCASET_VAL, split_rules
from model_core.synth.corpus import CorpusOptions, generate_corpus
from model_core.synth.files import write_npz

REPO = Path(__file__).resolve().parents[1]
PREPARE = REPO / "scripts" / "prepare_vocaset"
V = 10


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def faceformer_folder(root: Path, names: list[str], fps: int = 60, seconds: float = 1.0,
                      templates: bool = True) -> Path:
    """A tiny FaceFormer-layout folder: frame t of take k has every coordinate equal to t + 1000 k."""
    (root / "wav").mkdir(parents=True)
    (root / "vertices_npy").mkdir()
    subjects = {}
    for k, name in enumerate(names):
        sf.write(root / "wav" / f"{name}.wav", tone(seconds), 16000, subtype="PCM_16")
        frames = int(seconds * fps)
        motion = np.repeat(np.arange(frames, dtype=np.float32)[:, None] + 1000 * k, V * 3, axis=1)
        np.save(root / "vertices_npy" / f"{name}.npy", motion)
        subjects[parse_take_name(name)[0]] = np.full((V, 3), 0.5, dtype=np.float32)
    if templates:
        write_npz(root / "templates.npz", subjects)
    return root


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "corpus"
    generate_corpus(out, CorpusOptions(subjects=3, sentences=2, min_seconds=1.0, max_seconds=1.5, vertices=600),
                    progress=False)
    return out


# -- masks ------------------------------------------------------------------------------------------------------
def test_read_indices_accepts_commas_spaces_and_npy(tmp_path):
    (tmp_path / "a.txt").write_text("1, 2,3\n4 5\t6\n")
    assert read_indices(tmp_path / "a.txt").tolist() == [1, 2, 3, 4, 5, 6]
    np.save(tmp_path / "b.npy", np.array([7, 7, 8], dtype=np.int32))
    assert read_indices(tmp_path / "b.npy", vertex_count=9).tolist() == [7, 7, 8]  # duplicates are kept


@pytest.mark.parametrize(("name", "content", "message"), [
    ("masks.pkl", b"\x80\x04K\x01.", "pickle"),
    ("empty.txt", b"\n", "empty"),
    ("words.txt", b"1, two, 3", "integers"),
    ("range.txt", b"1, 99", "mesh has 10 vertices"),
])
def test_read_indices_refuses_bad_files(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(MaskError, match=message):
        read_indices(tmp_path / name, vertex_count=10)


def test_missing_masks_say_what_to_supply(tmp_path):
    root = faceformer_folder(tmp_path / "d", ["FaceTalk_170728_03272_TA_sentence01"])
    corpus = MotionCorpus(root)
    with pytest.raises(MaskError, match=r"No lip vertex indices.*prepare_vocaset --flame-masks.*--lips"):
        corpus.masks()
    (root / "regions").mkdir()
    (root / "regions" / "lips.txt").write_text("1,2,2")
    with pytest.raises(MaskError, match="No upper-face vertex indices"):
        corpus.masks()
    (tmp_path / "upper.txt").write_text("5 6 7")
    lips, upper = corpus.masks(upper=tmp_path / "upper.txt")
    assert lips.indices.tolist() == [1, 2, 2] and lips.unique.tolist() == [1, 2]
    assert "upper.txt (3 vertices)" in upper.describe()


# -- names, splits, layouts ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("stem", "subject", "sentence"), [
    ("FaceTalk_170728_03272_TA_sentence01", "FaceTalk_170728_03272_TA", 1),
    ("F2_e37", "F2", 37),
    ("Synth_01_M_sentence120", "Synth_01_M", 120),
    ("alice_take", "alice", None),
])
def test_take_names(stem, subject, sentence):
    assert parse_take_name(stem) == (subject, sentence)


def test_standard_split_presets():
    voca = split_rules("vocaset", Path("."))
    assert voca["train"].matches("x", VOCASET_TRAIN[0], 1) and voca["train"].matches("x", VOCASET_TRAIN[7], 40)
    assert not voca["train"].matches("x", VOCASET_VAL[0], 30)
    assert voca["val"].matches("x", VOCASET_VAL[1], 21) and not voca["val"].matches("x", VOCASET_VAL[1], 20)
    assert voca["test"].matches("x", VOCASET_TEST[0], 40) and not voca["test"].matches("x", VOCASET_TEST[0], 41)
    biwi = split_rules("biwi", Path("."))
    assert biwi["train"].matches("F2_e32", "F2", 32) and not biwi["train"].matches("F2_e33", "F2", 33)
    assert biwi["val"].matches("M5_e36", "M5", 36)
    assert biwi["test"].matches("F1_e37", "F1", 37) and not biwi["test"].matches("F2_e37", "F2", 37)
    assert split_rules("biwi-test-a", Path("."))["test"].matches("F2_e40", "F2", 40)


def test_vocaset_layout_keeps_every_second_frame_and_uses_the_standard_split(tmp_path):
    names = [f"{VOCASET_TRAIN[0]}_sentence0{i}" for i in (1, 2)] + [f"{VOCASET_VAL[0]}_sentence21"]
    corpus = MotionCorpus(faceformer_folder(tmp_path / "voca", names))
    assert (corpus.layout.kind, corpus.fps, corpus.split_preset, corpus.vertex_count) == ("vocaset", 30.0, "vocaset", V)
    assert [t.name for t in corpus.split("train")] == names[:2]
    assert [t.name for t in corpus.split("val")] == names[2:]
    with pytest.raises(ValueError, match=r"'test' split of preset 'vocaset' is empty.*sentences 21-40"):
        corpus.split("test")
    sample = corpus.load(corpus.split("train")[1])
    assert sample.vertices.shape == (30, V * 3) and sample.fps == 30.0
    assert sample.vertices[:3, 0].tolist() == [1000.0, 1002.0, 1004.0]  # frames 0, 2, 4 of the 60 fps take
    assert abs(float(sample.audio.mean())) < 1e-4 and float(sample.audio.std()) == pytest.approx(1.0, abs=1e-3)
    assert sample.template.shape == (V * 3,)


def test_biwi_layout_keeps_every_frame(tmp_path):
    corpus = MotionCorpus(faceformer_folder(tmp_path / "biwi", ["F2_e01", "F2_e33", "F1_e37"], fps=25))
    assert (corpus.layout.kind, corpus.fps) == ("biwi", 25.0)
    assert corpus.load(corpus.split("test")[0]).frames == 25
    assert [t.name for t in corpus.split("val")] == ["F2_e33"]


def test_plain_layout_reads_its_manifest(tmp_path):
    root = faceformer_folder(tmp_path / "studio", ["alice_take01", "alice_take02", "bob_take01"], fps=48,
                             templates=False)
    (root / "templates").mkdir()
    for who in ("alice", "bob"):
        (root / "templates" / f"{who}.obj").write_text("".join(f"v {i} 0 0\n" for i in range(V)))
    (root / "dataset.toml").write_text(
        'name = "studio"\nfps = 48\nstride = 2\n[scale]\nlve = 1e-4\n'
        '[splits.train]\nsubjects = ["alice"]\n[splits.test]\ntakes = ["bob_take01"]\n')
    corpus = MotionCorpus(root)
    assert (corpus.layout.kind, corpus.fps, corpus.split_preset) == ("plain", 24.0, "manifest")
    assert corpus.layout.scales.lve == 1e-4 and corpus.layout.scales.fdd == 1.0
    assert [t.name for t in corpus.split("train")] == ["alice_take01", "alice_take02"]
    assert corpus.split("val", required=False) == []
    assert corpus.template("bob")[3].tolist() == [3.0, 0.0, 0.0]
    assert corpus.load(corpus.split("test")[0]).frames == 24
    (root / "dataset.toml").write_text("stride = 2\n")
    with pytest.raises(ValueError, match="must declare the frame rate"):
        MotionCorpus(root)


def test_synthetic_corpus_uses_its_splits_json(synth):
    corpus = MotionCorpus(synth)
    assert (corpus.layout.kind, corpus.fps, corpus.split_preset) == ("synthetic", 30.0, "synthetic")
    assert corpus.subjects("train") == ["Synth_01_M"] and corpus.subjects("test") == ["Synth_03_M"]
    lips, upper = corpus.masks()
    assert len(lips.unique) > 5 and len(upper.unique) > 50
    sample = corpus.load(corpus.split("val")[0])
    assert abs(len(sample.audio) / 16000 * 30 - sample.frames) <= 2  # audio and motion span the same time


def test_unknown_folders_and_pickled_templates_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        MotionCorpus(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no wav/ or vertices_npy/.*prepare_vocaset"):
        MotionCorpus(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"Cannot tell which dataset layout.*dataset.toml"):
        MotionCorpus(faceformer_folder(tmp_path / "odd", ["someone_take1"]))
    root = faceformer_folder(tmp_path / "pkl", ["F2_e01"], fps=25, templates=False)
    (root / "templates.pkl").write_bytes(b"not read")
    with pytest.raises(ValueError, match=r"templates.pkl.*never loaded.*prepare_vocaset --convert-templates"):
        MotionCorpus(root)


# -- cropping -----------------------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(frames=st.integers(5, 90), max_frames=st.integers(1, 100), seed=st.integers(0, 1000))
def test_crops_stay_inside_the_take_and_have_a_fixed_size(frames, max_frames, seed):
    fps = 30.0
    sample = Sample(Take("s_1", "s", 1, Path("x"), Path("y")), np.arange(int(frames / fps * 16000), dtype=np.float32),
                    np.arange(frames, dtype=np.float32)[:, None].repeat(3, axis=1), np.zeros(3, np.float32), fps)
    crop = crop_sample(sample, max_frames, np.random.default_rng(seed))
    if max_frames >= frames - 1:
        assert crop.frames in (frames, min(frames, max_frames))
        return
    assert crop.frames == max_frames
    assert len(crop.audio) == round(max_frames / fps * 16000)
    start = int(crop.vertices[0, 0])
    # The audio window starts where the motion window does (within one sample).
    assert abs(float(crop.audio[0]) - start / fps * 16000) <= 1.0


# -- scripts/prepare_vocaset --------------------------------------------------------------------------------------
def fake_vocaset_release(raw: Path) -> None:
    """Pickles shaped like VOCASET's (tiny, with invented values)."""
    raw.mkdir()
    subjects = [VOCASET_TRAIN[0], VOCASET_VAL[0]]
    rng = np.random.default_rng(0)
    verts = rng.normal(size=(4 * 12, 5023, 3)).astype(np.float32)
    np.save(raw / "data_verts.npy", verts)
    index, audio = {}, {}
    row = 0
    for s in subjects:
        index[s], audio[s] = {}, {}
        for seq in ("sentence01", "sentence21"):
            index[s][seq] = {f: row + f for f in range(12)}
            row += 12
            audio[s][seq] = {"audio": (tone(0.2, 22000) * 32767).astype(np.int16), "sample_rate": 22000}
    audio[subjects[1]].pop("sentence01")  # a motion sequence without audio is skipped
    for name, obj in (("subj_seq_to_idx.pkl", index), ("raw_audio_fixed.pkl", audio),
                      ("templates.pkl", {s: rng.normal(size=(5023, 3)) for s in subjects})):
        with open(raw / name, "wb") as f:
            pickle.dump(obj, f)
    masks = {"lips": np.array([3, 4, 4, 5]), "eye_region": np.array([10, 11]), "forehead": np.array([11, 12])}
    with open(raw / "FLAME_masks.pkl", "wb") as f:
        pickle.dump(masks, f)


def test_prepare_vocaset_converts_the_raw_release(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "vocaset"
    fake_vocaset_release(raw)
    done = subprocess.run([sys.executable, str(PREPARE), str(raw), str(out), "--flame-masks",
                           str(raw / "FLAME_masks.pkl"), "--quiet"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "Wrote 3 sequences" in done.stdout and "1 without audio" in done.stdout
    verts = np.load(raw / "data_verts.npy")
    saved = np.load(out / "vertices_npy" / f"{VOCASET_TRAIN[0]}_sentence21.npy", allow_pickle=False)
    assert np.array_equal(saved, verts[12:24].reshape(12, -1))  # frames in order, 60 fps kept as stored
    assert sf.info(str(out / "wav" / f"{VOCASET_VAL[0]}_sentence21.wav")).samplerate == 22000
    assert (out / "regions" / "lips.txt").read_text().strip() == "3,4,4,5"
    assert (out / "regions" / "upper_face.txt").read_text().strip() == "10,11,12"
    corpus = MotionCorpus(out)
    assert (corpus.layout.kind, corpus.vertex_count, corpus.fps) == ("vocaset", 5023, 30.0)
    assert corpus.load(corpus.split("val")[0]).frames == 6
    lips, upper = corpus.masks()
    assert "FLAME_masks.pkl 'lips'" in lips.describe() and "eye_region" in upper.describe()


def test_prepare_vocaset_explains_missing_files_and_converts_templates(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "templates.pkl").write_bytes(pickle.dumps({"subj": np.ones((4, 3))}))
    done = subprocess.run([sys.executable, str(PREPARE), str(raw), str(tmp_path / "out")], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 2
    for name in ("data_verts.npy", "raw_audio_fixed.pkl", "subj_seq_to_idx.pkl"):
        assert name in done.stderr
    assert "- templates.pkl" not in done.stderr  # present, so not listed
    assert "voca.is.tue.mpg.de" in done.stderr
    script = runpy.run_path(str(PREPARE))  # the functions, without running main()
    script["convert_templates_trusted"](raw / "templates.pkl", tmp_path / "t.npz")
    with np.load(tmp_path / "t.npz", allow_pickle=False) as data:
        assert data["subj"].shape == (4, 3)


def test_nothing_else_unpickles():
    """Only scripts/prepare_vocaset may load pickles (VOCASET's own files, as trusted local data)."""
    pattern = re.compile(r"^\s*(import pickle|from pickle|import dill|import joblib)|pickle\.loads?\(|"
                         r"allow_pickle=True|weights_only=False", re.M)
    offenders = []
    for path in [*REPO.glob("model_core/**/*.py"), *REPO.glob("jambatalk_blender/**/*.py"), *REPO.glob("scripts/*")]:
        if path.is_file() and path.name != "prepare_vocaset" and pattern.search(path.read_text(errors="replace")):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
