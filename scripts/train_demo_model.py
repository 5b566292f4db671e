"""Reproduce the shipped demo model: synthetic corpus -> training -> scores on the unseen test speakers.

Stages (each prints its wall time): generate the corpus (skipped when WORK/corpus already holds the same one),
train `models/demo/train.toml`, score the best checkpoint (LVE against the static template, jaw-opening
correlation, bilabial closures), then install the checkpoint and the scores into models/demo/.

    scripts/train_demo_model [--work runs/demo-model] [--threads 2] [--no-install]
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_core.synth.demo_take import DEMO_CORPUS as CORPUS  # noqa: E402
from scripts.model_recipe import install_checkpoint, jambatalk, recipe_parser, run_recipe  # noqa: E402

DEMO_DIR = ROOT / "models" / "demo"
CONFIG = DEMO_DIR / "train.toml"
CHECKPOINT_NAME = "jambatalk-demo-small.safetensors"


def corpus_is_current(folder: Path) -> bool:
    meta = folder / "meta.json"
    if not meta.is_file():
        return False
    return json.loads(meta.read_text(encoding="utf-8")).get("options") == dataclasses.asdict(CORPUS)


def make_corpus(folder: Path) -> None:
    if corpus_is_current(folder):
        print(f"[train_demo_model] corpus in {folder} is up to date")
        return
    jambatalk("synth-corpus", str(folder), "--seed", str(CORPUS.seed), "--subjects", str(CORPUS.subjects),
              "--sentences", str(CORPUS.sentences), "--min-seconds", str(CORPUS.min_seconds),
              "--max-seconds", str(CORPUS.max_seconds), "--vertices", str(CORPUS.vertices), "--overwrite", "--quiet")


def score(checkpoint: Path, corpus: Path, threads: int) -> dict:
    import torch

    from model_core.synth.scoring import score_checkpoint

    torch.set_num_threads(threads)
    return score_checkpoint(checkpoint, corpus, split="test")


DEMO_LICENCE = ("GPL-3.0-or-later, like the code that made it. Trained only on the synthetic corpus this repository "
                "generates: no real faces, voices or third-party data.")


def install(run: Path, corpus: Path, scores: dict) -> None:
    """Copy the best checkpoint into models/demo/ under its own name and licence, without this machine's paths."""
    install_checkpoint(run, DEMO_DIR / CHECKPOINT_NAME, scores, name="jambatalk-demo-small",
                       data_dir="synthetic corpus: " + json.dumps(dataclasses.asdict(CORPUS)),
                       made_by="scripts/train_demo_model", config="models/demo/train.toml", licence=DEMO_LICENCE)
    print(f"[train_demo_model] installed {DEMO_DIR / CHECKPOINT_NAME} and metrics.json")


def main() -> int:
    args = recipe_parser(__doc__, "demo-model", "models/demo/").parse_args()
    return run_recipe(args, "train_demo_model", [CONFIG], make_corpus,
                      lambda checkpoint, corpus, work: score(checkpoint, corpus, args.threads),
                      lambda scores: scores["summary"], install)


if __name__ == "__main__":
    raise SystemExit(main())
