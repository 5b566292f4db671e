"""Reproduce the shipped demo model: synthetic corpus -> training -> scores on the unseen test speakers.

Stages (each prints its wall time): generate the corpus (skipped when WORK/corpus already holds the same one),
train `models/demo/train.toml`, score the best checkpoint (LVE against the static template, jaw-opening
correlation, bilabial closures), then install the checkpoint and the scores into models/demo/.

    scripts/train_demo_model [--work runs/demo-model] [--threads 2] [--no-install]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_core.synth.demo_take import DEMO_CORPUS as CORPUS  # noqa: E402

DEMO_DIR = ROOT / "models" / "demo"
CONFIG = DEMO_DIR / "train.toml"
CHECKPOINT_NAME = "jambatalk-demo-small.safetensors"


def jambatalk(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "model_core.cli", *args], cwd=ROOT, check=True)


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


def train(corpus: Path, run: Path, threads: int) -> None:
    jambatalk("train", str(CONFIG), "--overwrite", "--quiet", "--set", f"data.dir={json.dumps(str(corpus))}",
              "--set", f"train.output_dir={json.dumps(str(run))}", "--set", f"train.num_threads={threads}")


def score(checkpoint: Path, corpus: Path, threads: int) -> dict:
    import torch

    from model_core.synth.scoring import score_checkpoint

    torch.set_num_threads(threads)
    return score_checkpoint(checkpoint, corpus, split="test")


DEMO_LICENCE = ("GPL-3.0-or-later, like the code that made it. Trained only on the synthetic corpus this repository "
                "generates: no real faces, voices or third-party data.")


def install(run: Path, scores: dict) -> None:
    """Copy the best checkpoint into models/demo/ under its own name and licence, without this machine's paths."""
    from model_core.checkpoint import load_checkpoint, save_checkpoint

    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    loaded = load_checkpoint(run / "best.safetensors")
    provenance = dict(loaded.info.provenance)
    data = dict(provenance.get("data", {}))
    data["dir"] = "synthetic corpus: " + json.dumps(dataclasses.asdict(CORPUS))
    provenance.update(data=data, made_by="scripts/train_demo_model", config="models/demo/train.toml")
    info = dataclasses.replace(loaded.info, name="jambatalk-demo-small", licence=DEMO_LICENCE, provenance=provenance)
    save_checkpoint(DEMO_DIR / CHECKPOINT_NAME, loaded.model, info, template=loaded.template)
    (DEMO_DIR / "metrics.json").write_text(json.dumps(scores, indent=1) + "\n", encoding="utf-8")
    print(f"[train_demo_model] installed {DEMO_DIR / CHECKPOINT_NAME} and metrics.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(ROOT / "runs" / "demo-model"), help="corpus and run folder")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--no-install", action="store_true", help="leave models/demo/ as it is")
    parser.add_argument("--skip-training", action="store_true", help="score (and install) an existing run")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    corpus, run = work / "corpus", work / "train"
    timings = {}
    started = time.perf_counter()
    make_corpus(corpus)
    timings["corpus_s"] = time.perf_counter() - started
    if not args.skip_training:
        mark = time.perf_counter()
        train(corpus, run, args.threads)
        timings["training_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    scores = score(run / "best.safetensors", corpus, args.threads)
    timings["scoring_s"] = time.perf_counter() - mark
    scores["timings"] = {k: round(v, 1) for k, v in timings.items()}
    print(json.dumps(scores["summary"], indent=1))
    for stage, seconds in timings.items():
        print(f"[train_demo_model] {stage[:-2]:<10} {seconds:8.1f} s")
    if not args.no_install:
        install(run, scores)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
