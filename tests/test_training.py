"""Training: config files, losses, resumable state, the acceptance run on the synthetic corpus, the lip-reading
branch, and `train` / `evaluate` from the command line as a new user would run them."""

from __future__ import annotations

import json
import random
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from model_core.checkpoint import load_checkpoint
from model_core.cli import main as training_main
from model_core.data import MotionCorpus
from model_core.inference import Animator
from model_core.synth.corpus import CorpusOptions, generate_corpus
from model_core.training.config import EXAMPLE_CONFIG, config_from_dict, load_config
from model_core.training.log import LOG_COLUMNS, RunLog, read_log
from model_core.training.losses import closure_mse, lip_mse, opening_mse, velocity_mse, vertex_mse
from model_core.training.state import capture_rng, optimizer_from_flat, optimizer_to_flat, restore_rng
from model_core.training.trainer import Trainer

# The acceptance corpus: 2 train speakers x 6 sentences of 2 s (1 val and 1 test speaker), a 567-vertex head.
CORPUS = CorpusOptions(seed=0, subjects=4, sentences=6, min_seconds=2.0, max_seconds=2.0, vertices=600)
FAST = {"train": {"epochs": 2, "lr": 1e-3, "batch_size": 4, "max_seconds": 0.5, "num_threads": 1, "eval_every": 1}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train") / "corpus"
    generate_corpus(out, CORPUS, progress=False)
    return out


@pytest.fixture(autouse=True)
def keep_thread_count():
    """Training sets torch's thread count (train.num_threads); give the other tests theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def write_config(path: Path, sections: dict) -> Path:
    lines = []
    for section, table in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def merged(*tables: dict) -> dict:
    out: dict = {}
    for table in tables:
        for section, values in table.items():
            out.setdefault(section, {}).update(values)
    return out


def config_for(corpus: Path, out: Path, *extra: dict):
    raw = merged({"data": {"dir": str(corpus)}, "train": {"output_dir": str(out)}}, FAST, *extra)
    return config_from_dict(raw)


# -- config ---------------------------------------------------------------------------------------------------------
def test_example_config_is_complete_and_valid(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text(EXAMPLE_CONFIG)
    cfg = load_config(path)
    assert cfg.data.dir == str(tmp_path / "corpus")  # relative to the config file
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.grad_clip) == (1e-4, 1, 1.0)
    assert (cfg.train.vertex_weight, cfg.train.velocity_weight) == (1000.0, 1000.0)
    assert cfg.model.freeze_feature_extractor and not cfg.lip_reading.enabled


@pytest.mark.parametrize(("raw", "message"), [
    ({"train": {"epoch": 3}}, r"unknown key\(s\) epoch in \[train\]"),
    ({"training": {}}, "unknown table"),
    ({"train": {"epochs": "many"}}, "train.epochs has the wrong type"),
    ({"model": {"overrides": {"vertex_count": 5023}}}, "vertex_count"),
    ({"model": {"overrides": {"feature_dims": 8}}}, "unknown network field"),
    ({"model": {"preset": "huge"}}, "model.preset"),
    ({"lip_reading": {"enabled": True}}, "asr_model"),
    ({"train": {"lr": 0.0}}, "train.lr must be positive"),
])
def test_config_mistakes_are_named(raw, message):
    with pytest.raises(ValueError, match=message):
        config_from_dict(merged({"data": {"dir": "x"}}, raw))


def test_set_overrides_reach_nested_tables(tmp_path):
    path = write_config(tmp_path / "c.toml", {"data": {"dir": "d"}})
    cfg = load_config(path, ["train.epochs=7", "train.device=cpu", "model.overrides.wav2vec2.apply_spec_augment=false",
                             'model.pretrained_wav2vec2="w2v"'])
    assert cfg.train.epochs == 7 and cfg.train.device == "cpu"
    assert cfg.model.overrides == {"wav2vec2": {"apply_spec_augment": False}}
    assert cfg.model.pretrained_wav2vec2 == str(tmp_path / "w2v")


# -- losses and state -----------------------------------------------------------------------------------------------
def test_losses_match_hand_computed_values():
    target = torch.zeros(1, 3, 2)
    pred = torch.tensor([[[1.0, 1.0], [1.0, 1.0], [3.0, 1.0]]])
    assert float(vertex_mse(pred, target)) == pytest.approx((1 + 1 + 1 + 1 + 9 + 1) / 6)
    # Differences: [0, 0] then [2, 0] against zero velocity.
    assert float(velocity_mse(pred, target)) == pytest.approx(4 / 4)
    longer = torch.cat([pred, torch.full((1, 1, 2), 50.0)], dim=1)  # an extra frame is ignored
    assert float(vertex_mse(longer, target)) == float(vertex_mse(pred, target))


def test_lip_term_weighs_only_the_lip_coordinates():
    target = torch.zeros(1, 2, 6)  # two frames of two vertices (x, y, z each)
    pred = torch.tensor([[[1.0, 0, 0, 5.0, 5.0, 5.0], [1.0, 0, 0, 5.0, 5.0, 5.0]]])
    lips = torch.tensor([0, 1, 2])  # vertex 0 only
    assert float(lip_mse(pred, target, lips)) == pytest.approx(1 / 3 + 0.0)  # still: no velocity error
    moving = pred.clone()
    moving[0, 1, 0] = 3.0
    assert float(lip_mse(moving, target, lips)) == pytest.approx((1 + 9) / 6 + 4 / 3)


def test_closure_term_counts_only_open_lips_where_the_truth_is_shut():
    # Two vertices (upper lip 0, lower lip 1); the gap is upper y - lower y. Frames: truth shut, shut, open.
    target = torch.zeros(1, 3, 6)
    target[0, 2, 1] = 0.004  # the true lips open 4 mm on the last frame
    pred = torch.zeros(1, 3, 6)
    assert float(closure_mse(pred, target, 0, 1)) == 0.0  # shut where shut; too shut where open costs nothing here
    pred[0, 0, 1] = 0.002  # 2 mm open on a shut frame
    pred[0, 1, 4] = 0.001  # lower lip up 1 mm: the gap is negative (pressed), no cost
    pred[0, 2, 1] = 0.010  # far too open where the truth is open: another term's business
    assert float(closure_mse(pred, target, 0, 1)) == pytest.approx(0.002 ** 2 / 2)
    assert float(closure_mse(pred, target, 0, 1, threshold_m=0.005)) == pytest.approx((0.002 ** 2 + 0.006 ** 2) / 3)


def test_closure_tolerance_lets_the_lips_shut_within_k_frames_of_the_true_closure():
    # Truth: open 4 mm except a closure on frame 2. The prediction shuts one frame late (frame 3).
    target = torch.zeros(1, 6, 6)
    target[0, :, 1] = 0.004
    target[0, 2, 1] = 0.0
    pred = target.clone()
    pred[0, 2, 1], pred[0, 3, 1] = 0.004, 0.0
    assert float(closure_mse(pred, target, 0, 1)) == pytest.approx(0.004 ** 2)  # frame by frame: 4 mm open
    assert float(closure_mse(pred, target, 0, 1, tolerance_frames=1)) == 0.0  # shut within a frame: enough
    pred[0, 3, 1] = 0.004  # never shut: the smallest gap within a frame is still 4 mm
    assert float(closure_mse(pred, target, 0, 1, tolerance_frames=1)) == pytest.approx(0.004 ** 2)


def test_opening_term_counts_only_lips_more_closed_than_the_truth():
    target = torch.zeros(1, 3, 6)
    target[0, :, 1] = torch.tensor([0.0, 0.004, 0.004])  # rest, then 4 mm open
    pred = target.clone()
    pred[0, 1, 1] = 0.001  # 3 mm short of the vowel's opening
    pred[0, 2, 1] = 0.009  # too open: not this term's business
    pred[0, 0, 4] = 0.001  # the lower lip pushed 1 mm up at rest: pressed, 1 mm short
    assert float(opening_mse(pred, target, 0, 1)) == pytest.approx((0.003 ** 2 + 0.001 ** 2) / 3)
    assert float(opening_mse(target, target, 0, 1)) == 0.0


def test_init_from_starts_a_run_from_another_runs_weights(corpus, tmp_path):
    Trainer(config_for(corpus, tmp_path / "a", {"train": {"epochs": 1}}), progress=False).run()
    start = str(tmp_path / "a" / "best.safetensors")
    first = load_checkpoint(start).model.state_dict()
    second = Trainer(config_for(corpus, tmp_path / "b", {"model": {"init_from": start}}), progress=False)
    assert all(torch.equal(v, first[k]) for k, v in second.model.state_dict().items())
    other = {"model": {"init_from": start, "overrides": {"feature_dim": 32}}}
    with pytest.raises(ValueError, match="another network than this config builds"):
        Trainer(config_for(corpus, tmp_path / "c", other), progress=False)
    with pytest.raises(ValueError, match="cannot be loaded"):
        Trainer(config_for(corpus, tmp_path / "d", {"model": {"init_from": str(tmp_path / "nothing.safetensors")}}),
                progress=False)


def test_phone_weight_needs_a_corpus_that_knows_its_phones(corpus, tmp_path):
    with pytest.raises(ValueError, match="phone_weight needs the phones of every take"):
        Trainer(config_for(corpus, tmp_path / "run", {"train": {"phone_weight": 0.01}}), progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_lip_weight_trains_and_is_logged(corpus, tmp_path):
    cfg = config_for(corpus, tmp_path / "run", {"train": {"epochs": 1, "lip_weight": 500.0}})
    Trainer(cfg, progress=False).run()
    assert float(read_log(tmp_path / "run" / "log.csv")[0]["train_lip_mse"]) > 0


def test_optimizer_and_rng_state_round_trip_without_pickle():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = optimizer_to_flat(opt)
    json.dumps(meta)  # everything that is not a tensor is plain JSON
    fresh = torch.optim.Adam(net.parameters(), lr=0.5)
    optimizer_from_flat(fresh, tensors, json.loads(json.dumps(meta)))
    assert fresh.param_groups[0]["lr"] == 0.01
    for a, b in zip(opt.state.values(), fresh.state.values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in ("exp_avg", "exp_avg_sq", "step"))
    rng_tensors, rng_meta = capture_rng()
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(rng_tensors, json.loads(json.dumps(rng_meta)))
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


# -- acceptance -----------------------------------------------------------------------------------------------------
def test_small_preset_learns_lip_motion_on_the_synthetic_corpus(corpus, tmp_path):
    """Acceptance: <= 60 s of CPU training; validation LVE at least 2x better than predicting no motion."""
    cfg = config_for(corpus, tmp_path / "run", {"train": {
        "epochs": 80, "lr": 1e-3, "batch_size": 4, "max_seconds": 1.0, "eval_every": 10, "best_metric": "lve",
        "max_minutes": 1.0, "num_threads": 1}})
    started = time.perf_counter()
    outcome = Trainer(cfg, progress=False).run()
    wall = time.perf_counter() - started
    rows = [r for r in read_log(tmp_path / "run" / "log.csv") if r["val_lve"]]
    baseline = float(rows[0]["baseline_val_lve"])
    print(f"\nacceptance: {outcome.global_step} steps in {wall:.1f} s ({outcome.status}); best val LVE "
          f"{outcome.best_score:.3e} at epoch {outcome.best_epoch}; static template {baseline:.3e} "
          f"({baseline / outcome.best_score:.2f}x); per evaluation: "
          + ", ".join(f"{r['epoch']}:{float(r['val_lve']):.2e}" for r in rows))
    assert outcome.seconds <= 75.0  # 60 s budget (train.max_minutes) plus the last validation and save
    assert outcome.best_score * 2.0 <= baseline
    best = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert best.info.provenance["best_score"] == outcome.best_score
    assert best.config.vertex_count == MotionCorpus(corpus).vertex_count


# -- resume ---------------------------------------------------------------------------------------------------------
def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = weights(a / "last.safetensors"), weights(b / "last.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in read_log(a / "log.csv")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in read_log(b / "log.csv")]


def test_resume_continues_the_same_run(corpus, tmp_path):
    straight = Trainer(config_for(corpus, tmp_path / "a"), progress=False).run()
    assert straight.epochs_completed == 2
    Trainer(config_for(corpus, tmp_path / "b", {"train": {"epochs": 1}}), progress=False).run()
    resumed = Trainer(config_for(corpus, tmp_path / "b"), resume=True, progress=False).run()
    assert (resumed.epochs_completed, resumed.global_step) == (2, straight.global_step)
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_time_limit_stops_mid_epoch_and_resume_is_exact(corpus, tmp_path):
    Trainer(config_for(corpus, tmp_path / "a"), progress=False).run()
    stopped = Trainer(config_for(corpus, tmp_path / "b", {"train": {"max_minutes": 1e-6}}), progress=False).run()
    assert stopped.status == "time_limit" and stopped.global_step == 1 and stopped.epochs_completed == 0
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert state["progress"]["batches_done"] == 1
    Trainer(config_for(corpus, tmp_path / "b"), resume=True, progress=False).run()
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_runs_are_not_mixed_up(corpus, tmp_path):
    Trainer(config_for(corpus, tmp_path / "a", {"train": {"epochs": 1}}), progress=False).run()
    with pytest.raises(ValueError, match="already holds a training run"):
        Trainer(config_for(corpus, tmp_path / "a"), progress=False)
    with pytest.raises(ValueError, match=r"config changed in train.lr"):
        Trainer(config_for(corpus, tmp_path / "a", {"train": {"lr": 5e-4}}), resume=True, progress=False)
    with pytest.raises(ValueError, match="no run to resume"):
        Trainer(config_for(corpus, tmp_path / "empty"), resume=True, progress=False)
    (tmp_path / "a" / "state.json").write_text(
        (tmp_path / "a" / "state.json").read_text().replace('"token": "', '"token": "x', 1))
    with pytest.raises(ValueError, match="different steps"):
        Trainer(config_for(corpus, tmp_path / "a"), resume=True, progress=False)


def test_log_rows_after_the_saved_epoch_are_dropped_on_resume(tmp_path):
    log = RunLog(tmp_path)
    for epoch in (1, 2, 3):
        log.write({"epoch": epoch, "global_step": 3 * epoch, "train_loss": 0.5 / epoch})
    log.truncate_after(2)
    assert [r["epoch"] for r in read_log(tmp_path / "log.csv")] == ["1", "2"]
    assert read_log(tmp_path / "log.csv")[1]["train_loss"] == "0.25"


def test_a_log_written_with_fewer_columns_is_carried_over_to_todays(tmp_path):
    (tmp_path / "log.csv").write_text("epoch,global_step,train_loss\n1,3,0.5\n")  # an older version's log
    log = RunLog(tmp_path)
    log.write({"epoch": 2, "global_step": 6, "train_loss": 0.25, "train_phone_ce": 1.5})
    rows = read_log(tmp_path / "log.csv")
    assert list(rows[0]) == list(LOG_COLUMNS) and [r["train_loss"] for r in rows] == ["0.5", "0.25"]
    assert [r["train_phone_ce"] for r in rows] == ["", "1.5"]


# -- options --------------------------------------------------------------------------------------------------------
def test_style_embedding_template_and_moe_balance_reach_the_checkpoint(corpus, tmp_path):
    cfg = config_for(corpus, tmp_path / "run", {"model": {"style_embedding": True},
                                                "train": {"epochs": 1, "moe_balance_weight": 1.0}})
    trainer = Trainer(cfg, progress=False)
    trainer.run()
    ck = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert ck.config.style_embedding and ck.config.style_names == ["Synth_01_M", "Synth_02_F"]
    data = MotionCorpus(corpus)
    expected = (data.template("Synth_01_M").astype(np.float64) + data.template("Synth_02_F")) / 2
    np.testing.assert_allclose(ck.template, expected, atol=1e-6)
    assert ck.info.topology.startswith("jambatalk synthetic head")
    assert float(read_log(tmp_path / "run" / "log.csv")[0]["train_moe_balance"]) > 0
    offsets = Animator(ck, device="cpu").animate_file(corpus / "wav" / "Synth_01_M_sentence01.wav", "Synth_01_M")
    assert offsets.shape[1:] == (data.vertex_count, 3) and np.isfinite(offsets).all()


def tiny_wav2vec2_config(**extra):
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                          conv_dim=[16] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                          feat_extract_norm="layer", do_stable_layer_norm=True, **extra)


def test_pretrained_wav2vec2_is_loaded_from_a_local_folder(corpus, tmp_path):
    from transformers import Wav2Vec2Model

    torch.manual_seed(0)
    encoder = Wav2Vec2Model(tiny_wav2vec2_config())
    encoder.save_pretrained(tmp_path / "w2v")
    cfg = config_for(corpus, tmp_path / "run", {"model": {"pretrained_wav2vec2": str(tmp_path / "w2v")},
                                                "train": {"epochs": 1}})
    trainer = Trainer(cfg, progress=False)
    weight = "audio_encoder.encoder.layers.0.attention.k_proj.weight"
    assert torch.equal(trainer.model.state_dict()[weight], encoder.state_dict()[weight[len("audio_encoder."):]])
    assert not any(p.requires_grad for p in trainer.model.audio_encoder.feature_extractor.parameters())
    trainer.run()
    assert load_checkpoint(tmp_path / "run" / "last.safetensors").config.wav2vec2["hidden_size"] == 32
    with pytest.raises(ValueError, match="pretrained_wav2vec2"):
        Trainer(config_for(corpus, tmp_path / "run2", {"model": {"pretrained_wav2vec2": str(tmp_path / "none")}}),
                progress=False)


def make_tiny_asr(folder: Path) -> Path:
    """A randomly initialised Wav2Vec2ForCTC and a 13-token character vocabulary, saved like a real one."""
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor

    folder.mkdir()
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate("abcdefgh")}}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                     word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    torch.manual_seed(0)
    Wav2Vec2ForCTC(tiny_wav2vec2_config(vocab_size=len(vocab), pad_token_id=0)).save_pretrained(folder)
    return folder


def test_lip_reading_branch_trains_against_a_local_asr_model(corpus, tmp_path):
    asr = make_tiny_asr(tmp_path / "asr")
    lip = {"lip_reading": {"enabled": True, "asr_model": str(asr), "layers": 1, "heads": 2, "ffn_dim": 32}}
    trainer = Trainer(config_for(corpus, tmp_path / "run", lip), progress=False)
    assert trainer.lip.reader.lip_map.in_features == 3 * len(trainer.lips)  # duplicates kept, as official
    before = trainer.lip.reader.lip_map.weight.detach().clone()
    trainer.run()
    row = read_log(tmp_path / "run" / "log.csv")[-1]
    assert float(row["train_lip_feature_mse"]) > 0 and np.isfinite(float(row["train_lip_ctc"]))
    assert not torch.equal(before, trainer.lip.reader.lip_map.weight)
    # The lip reader is training-only: not in the model checkpoint, but in the resumable state.
    saved = load_checkpoint(tmp_path / "run" / "last.safetensors").model.state_dict()
    assert not any(k.startswith("lip") for k in saved)
    Trainer(config_for(corpus, tmp_path / "run", lip, {"train": {"epochs": 3}}), resume=True, progress=False).run()
    missing = merged(lip, {"lip_reading": {"asr_model": str(tmp_path / "nothing")}})
    with pytest.raises(ValueError, match=r"asr_model .* does not exist; it must be a local folder"):
        Trainer(config_for(corpus, tmp_path / "run2", missing), progress=False)
    (tmp_path / "empty").mkdir()
    empty = merged(lip, {"lip_reading": {"asr_model": str(tmp_path / "empty")}})
    with pytest.raises(ValueError, match="No Wav2Vec2ForCTC model could be loaded"):
        Trainer(config_for(corpus, tmp_path / "run3", empty), progress=False)


# -- command line ---------------------------------------------------------------------------------------------------
def test_train_and_evaluate_from_the_command_line(corpus, tmp_path, capsys):
    assert training_main(["train", "--example-config"]) == 0
    example = tomllib.loads(capsys.readouterr().out)
    example["data"]["dir"] = str(corpus)
    example["train"].update(output_dir="run", epochs=2, lr=1e-3, batch_size=4, max_seconds=0.5, num_threads=1)
    config = write_config(tmp_path / "train.toml", example)
    assert training_main(["train", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Training finished after 2 epochs" in out and (tmp_path / "run" / "best.safetensors").is_file()
    assert training_main(["train", str(config), "--quiet"]) == 2  # refuses to overwrite silently
    assert "--resume" in capsys.readouterr().err
    assert training_main(["train", str(config), "--quiet", "--resume", "--set", "train.epochs=3"]) == 0
    assert "after 3 epochs" in capsys.readouterr().out

    report = tmp_path / "test.json"
    assert training_main(["evaluate", str(tmp_path / "run" / "best.safetensors"), "--data", str(corpus),
                          "--split", "test", "--json", str(report), "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "regions/lips.txt" in table and "regions/upper_face.txt" in table
    assert "LVE x1e-05, FDD x1e-07" in table and "static" in table
    data = json.loads(report.read_text())
    assert data["split"] == "test" and len(data["sequences"]) == 6
    assert set(data["model"]) >= {"lve", "fdd", "mve"} and set(data["static_template"]) >= {"lve", "fdd", "mve"}
    assert data["model_scaled"]["lve"] == pytest.approx(data["model"]["lve"] / 1e-5)
    assert training_main(["evaluate", str(tmp_path / "run" / "best.safetensors"), "--data", str(corpus),
                          "--lips", str(tmp_path / "none.txt"), "--quiet"]) == 2
    assert "No lip vertex indices" in capsys.readouterr().err
