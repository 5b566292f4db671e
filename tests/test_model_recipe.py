"""The shipped models' recipe (scripts/model_recipe.py): stages run in order, each after the first starting from
the previous stage's best checkpoint; the last stage is the one scored and installed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
import torch

from model_core.checkpoint import load_checkpoint
from model_core.synth.corpus import CorpusOptions, generate_corpus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.model_recipe import run_recipe  # noqa: E402

TINY = CorpusOptions(seed=0, subjects=2, sentences=3, min_seconds=1.0, max_seconds=1.0, vertices=600)


def stage_config(path: Path, epochs: int, lr: float) -> Path:
    path.write_text(f"""[data]
dir = "corpus"
[model]
preset = "small"
[train]
epochs = {epochs}
lr = {lr}
batch_size = 2
max_seconds = 0.5
num_threads = 1
""", encoding="utf-8")
    return path


@pytest.fixture
def keep_thread_count():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_second_stage_starts_from_the_first_and_is_the_one_installed(tmp_path, keep_thread_count):
    work = tmp_path / "work"
    configs = [stage_config(tmp_path / "train.toml", 1, 1e-3), stage_config(tmp_path / "finetune.toml", 1, 1e-4)]
    scored, installed = [], []

    def score(checkpoint: Path, corpus: Path, folder: Path) -> dict:
        scored.append(checkpoint)
        return {"summary": {"checkpoint": checkpoint.name}}

    args = argparse.Namespace(work=str(work), threads=1, no_install=False, skip_training=False)
    assert run_recipe(args, "test", configs, lambda corpus: generate_corpus(corpus, TINY, progress=False), score,
                      lambda scores: scores["summary"], lambda run, corpus, scores: installed.append(run)) == 0
    first, second = work / "train", work / "finetune"
    assert scored == [second / "best.safetensors"] and installed == [second]

    def started_from(run: Path) -> str:
        return load_checkpoint(run / "best.safetensors").info.provenance["train_config"]["model"]["init_from"]

    assert started_from(first) == "" and started_from(second) == str(first / "best.safetensors")
