"""The blendshape corpus: determinism, what is stored, the reader, and train / evaluate reading it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model_core.cli import main as cli_main
from model_core.corpus.build import BuildOptions, build_corpus
from model_core.corpus.phones import TimedPhone
from model_core.corpus.takes import SpokenTake
from model_core.corpus.writer import CorpusWriter
from model_core.data.blendshape_corpus import BlendshapeCorpus, open_corpus
from model_core.data.phone_labels import frame_labels, phone_class
from model_core.heads import load_head
from model_core.heads.cli import SHIPPED_HEAD

OPTIONS = BuildOptions(seed=3, minutes=0.5, voices=("formant",), formant_speakers=3)


@pytest.fixture(scope="module")
def head():
    return load_head(SHIPPED_HEAD)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, head) -> Path:
    out = tmp_path_factory.mktemp("bs") / "corpus"
    build_corpus(out, head, SHIPPED_HEAD, OPTIONS, progress=False)
    return out


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_corpus(corpus, head, tmp_path):
    again = tmp_path / "again"
    build_corpus(again, head, SHIPPED_HEAD, OPTIONS, progress=False)
    assert _digest(again) == _digest(corpus)
    other = tmp_path / "other"
    build_corpus(other, head, SHIPPED_HEAD, BuildOptions(**{**OPTIONS.__dict__, "seed": 4}), progress=False)
    assert _digest(other)["speakers.json"] != _digest(corpus)["speakers.json"]


def test_takes_store_weights_phones_and_identities_not_vertices(corpus, head):
    meta = json.loads((corpus / "meta.json").read_text())
    assert meta["blendshape_names"] == head.blendshape_names and meta["head"]["landmarks"] == head.landmarks
    assert meta["takes"] == len(list((corpus / "weights").glob("*.npy"))) > 5
    assert meta["sources"]["formant"]["timings"] == ["exact"] and meta["rejected"]["count"] == 0
    speakers = json.loads((corpus / "speakers.json").read_text())
    assert len(speakers) == 3 and all(len(s["coefficients"]) == len(head.identity_names) for s in speakers.values())
    take = json.loads(next((corpus / "takes").glob("*.json")).read_text())
    assert take["phones"] and take["text_source"] and take["licence"] and take["split"] in ("train", "val")
    w = np.load(corpus / "weights" / f"{take['take']}.npy")
    assert w.shape == (take["frames"], 52) and 0 <= w.min() and w.max() <= 1
    size = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file())
    assert size < 6e6  # no vertex arrays: seconds of speech cost kilobytes
    readme = (corpus / "README.md").read_text()
    assert "formant" in readme and "Rejected alignments: 0" in readme and "Mika Suominen" in readme


def test_reader_computes_each_speakers_vertices_from_the_head(corpus, head):
    reader = open_corpus(corpus)
    assert isinstance(reader, BlendshapeCorpus) and reader.fps == 30.0 and reader.vertex_count == head.vertex_count
    take = reader.split("train")[0]
    sample = reader.load(take)
    stored = np.load(take.vertices)[::2]
    assert sample.weights.shape == stored.shape and sample.frames == len(stored)
    neutral = reader.template(take.subject)
    expected = head.pose(stored, neutral=neutral).reshape(len(stored), -1)
    assert np.allclose(sample.vertices, expected, atol=1e-6)
    others = [s for s in reader.templates if s != take.subject]
    assert np.abs(reader.template(others[0]) - neutral).max() > 1e-3  # every voice has its own face
    lips, upper = reader.masks()
    assert 30 < len(lips.unique) < 600 and len(upper.unique) > 200
    record = json.loads((corpus / "takes" / f"{take.name}.json").read_text())
    assert np.array_equal(sample.phones, frame_labels(record["phones"], sample.frames, 30.0))
    spoken = [p for p in record["phones"] if p["symbol"] != "sil"]
    middle = (spoken[0]["start"] + spoken[0]["end"]) / 2
    assert sample.phones[int(round(middle * 30))] == phone_class(spoken[0]["symbol"])


def test_rejected_alignments_are_counted_and_listed(tmp_path, head):
    writer = CorpusWriter(tmp_path / "c", head, SHIPPED_HEAD, seed=0)
    good = SpokenTake("asterisk", "asterisk-allison", "hello", "en", "hello", "Asterisk prompts",
                      np.zeros(16000, np.float32), [TimedPhone("sil", 0, 1.0)], "aligned", "CC-BY-SA-3.0",
                      check={"ok": True, "reasons": []})
    bad = SpokenTake(**{**good.__dict__, "key": "vm-goodbye", "check": {"ok": False, "reasons": ["coverage 40 %"]}})
    assert writer.add(good) and not writer.add(bad)
    meta = writer.finish({"options": {}})
    assert meta["rejected"] == {"count": 1, "seconds": 1.0, "takes": ["asterisk-allison_vm-goodbye"]}
    assert json.loads((tmp_path / "c" / "rejected.json").read_text())[0]["reasons"] == ["coverage 40 %"]


def test_cli_refuses_bad_options(tmp_path, capsys):
    assert cli_main(["synth-corpus", str(tmp_path / "x"), "--head", "makehuman", "--voices", "espeak"]) == 2
    assert "--voices" in capsys.readouterr().err


def test_a_missing_tool_is_one_sentence_naming_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no festival, flite or ffmpeg on this PATH
    assert cli_main(["synth-corpus", str(tmp_path / "x"), "--head", "makehuman", "--voices", "festival",
                     "--minutes", "0.1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "festival is not installed" in err and "scripts/setup_corpus_tools" in err and len(err.splitlines()) == 1


def test_train_and_evaluate_read_the_blendshape_corpus(corpus, tmp_path, capsys):
    from tests.test_training import write_config

    before = torch.get_num_threads()
    config = write_config(tmp_path / "t.toml", {
        "data": {"dir": str(corpus)}, "model": {"preset": "small"},
        "train": {"output_dir": str(tmp_path / "run"), "epochs": 1, "lr": 1e-3, "batch_size": 4, "max_seconds": 0.5,
                  "num_threads": 1, "eval_every": 1, "lip_gap_weight": 100.0,
                  "closure_weight": 100.0}})
    try:
        assert cli_main(["train", str(config), "--quiet"]) == 0
    finally:
        torch.set_num_threads(before)
    assert "blendshape corpus" in capsys.readouterr().out
    report = tmp_path / "val.json"
    assert cli_main(["evaluate", str(tmp_path / "run" / "best.safetensors"), "--data", str(corpus), "--split", "val",
                     "--json", str(report), "--quiet"]) == 0
    data = json.loads(report.read_text())
    assert data["layout"] == "blendshape" and data["sequences"]
    from model_core.checkpoint import load_checkpoint

    trained = load_checkpoint(tmp_path / "run" / "best.safetensors")
    head = load_head(corpus / "head.safetensors")
    assert trained.config.output_kind == "blendshapes" and trained.config.blendshape_names == head.blendshape_names
    assert np.allclose(trained.model.blendshape_basis.numpy(), head.blendshapes.reshape(52, -1))
    assert trained.info.landmarks == head.landmarks and trained.info.sources[0]["source"] == "formant"
    assert "formant" in trained.info.licence and "No FLAME" in trained.info.licence
    log = (tmp_path / "run" / "log.csv").read_text()
    assert "train_weight_mse" in log and "train_lip_gap_mse" in log and "train_closure_mse" in log
    from model_core.evaluation.corpus_scores import score_corpus_split

    scores = score_corpus_split(tmp_path / "run" / "best.safetensors", corpus, "val", ("formant",))
    summary = scores["summary"]
    assert summary["takes"] == len(data["sequences"]) and 0 < summary["lve_ratio"] < 5
    assert -1 <= summary["jaw_r_mean"] <= 1 and summary["closures"] > 0
    # The truth opens the lips on open vowels; the ratio compares the model's opening with it.
    assert summary["open_vowel_gap_true_mm"] > 0.5
    assert summary["open_vowel_gap_ratio"] == pytest.approx(
        summary["open_vowel_gap_mm"] / summary["open_vowel_gap_true_mm"])


def test_phone_supervision_trains_the_encoder_and_stays_out_of_the_checkpoint(corpus, tmp_path):
    from model_core.checkpoint import load_checkpoint
    from model_core.training.config import config_from_dict
    from model_core.training.trainer import Trainer

    def config(folder: Path, **train):
        return config_from_dict({"data": {"dir": str(corpus)},
                                 "model": {"preset": "small", "freeze_feature_extractor": False},
                                "train": {"output_dir": str(folder), "epochs": 2, "lr": 1e-3, "batch_size": 1,
                                          "max_seconds": 0.5, "num_threads": 1, "eval_every": 1,
                                          "phone_weight": 0.01, **train}})

    before = torch.get_num_threads()
    try:
        Trainer(config(tmp_path / "a"), progress=False).run()
        Trainer(config(tmp_path / "b", epochs=1), progress=False).run()
        Trainer(config(tmp_path / "b"), resume=True, progress=False).run()
        Trainer(config(tmp_path / "c", phone_weight=0.0), progress=False).run()
    finally:
        torch.set_num_threads(before)
    rows = (tmp_path / "a" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    first, last = (dict(zip(header, r.split(","), strict=True)) for r in (rows[1], rows[2]))
    assert all(0 < float(row["train_phone_ce"]) < 10 and 0 <= float(row["train_phone_accuracy"]) <= 1
               for row in (first, last))
    saved = load_checkpoint(tmp_path / "a" / "last.safetensors").model.state_dict()
    assert not any("phone" in k for k in saved)  # a training aid: inference never needs it
    unsupervised = load_checkpoint(tmp_path / "c" / "last.safetensors").model.state_dict()
    cnn = "audio_encoder.feature_extractor.conv_layers.0.conv.weight"
    assert not torch.equal(saved[cnn], unsupervised[cnn])  # the phones' gradient reaches the encoder's first layer
    from safetensors.numpy import load_file

    state = load_file(str(tmp_path / "a" / "state.safetensors"))
    assert any(k.startswith("module.phone_probe.") for k in state)
    resumed = load_checkpoint(tmp_path / "b" / "last.safetensors").model.state_dict()
    assert all(torch.equal(saved[k], resumed[k]) for k in saved)  # the probe resumes exactly, so the run does


def test_held_out_voices_and_asterisk_test_prompts_are_test_only():
    from model_core.corpus.writer import HELD_OUT_VOICES, split_of

    base = dict(source="festival", key="0001", language="en", text="t", text_source="s",
                audio=np.zeros(160, np.float32), phones=[], timing="exact", licence="l")
    assert all(split_of(SpokenTake(voice=v, **base)) == "test" for v in HELD_OUT_VOICES)
    splits = {split_of(SpokenTake(voice="festival-kal", **{**base, "key": f"{k:04d}"})) for k in range(200)}
    assert splits == {"train", "val"}
    assert split_of(SpokenTake(voice="asterisk-allison", split="test", **base)) == "test"


def test_lip_gap_loss_measures_the_gap_between_the_two_landmarks():
    from model_core.training.losses import lip_gap_mse

    target = torch.zeros(1, 3, 4 * 3)
    pred = torch.zeros(1, 3, 4 * 3)
    pred[0, :, 1 * 3 + 1] = torch.tensor([0.0, 0.002, 0.0])  # the upper lip (vertex 1) rises 2 mm on frame 1
    pred[0, :, 2 * 3 + 0] = 5.0  # another coordinate: ignored
    loss = lip_gap_mse(pred, target, upper=1, lower=3)
    gap_mse = 0.002 ** 2 / 3
    velocity_mse = (0.002 ** 2 + 0.002 ** 2) / 2
    assert float(loss) == pytest.approx(gap_mse + velocity_mse, rel=1e-5)
    assert float(lip_gap_mse(pred, pred, 1, 3)) == 0.0
