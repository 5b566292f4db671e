"""Reproduce the shipped ARKit model: the blendshape corpus -> training -> real-speech and held-out-voice scores.

Stages (each prints its wall time): build the corpus (skipped when WORK/corpus already holds the same one),
train `models/arkit/train.toml`, score the best checkpoint on real recordings (`jambatalk score-speech`: the
held-out Asterisk prompts and the LibriVox clips) and on the held-out synthetic voices (LVE against the static
template, jaw-opening r, bilabial closures), then install the checkpoint and its scores into models/arkit/.

    scripts/train_arkit_model [--work runs/arkit-model] [--threads 2] [--minutes 80] [--no-install]
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

MODEL_DIR = ROOT / "models" / "arkit"
CONFIG = MODEL_DIR / "train.toml"
CHECKPOINT_NAME = "jambatalk-arkit-small.safetensors"
VOICES = "asterisk,festival,flite,formant"
SEED = 0


def jambatalk(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "model_core.cli", *args], cwd=ROOT, check=True)


def corpus_is_current(folder: Path, minutes: float) -> bool:
    meta = folder / "meta.json"
    if not meta.is_file():
        return False
    options = json.loads(meta.read_text(encoding="utf-8")).get("options", {})
    return options.get("seed") == SEED and options.get("minutes") == minutes and \
        options.get("voices") == VOICES.split(",")


def make_corpus(folder: Path, minutes: float) -> None:
    if corpus_is_current(folder, minutes):
        print(f"[train_arkit_model] corpus in {folder} is up to date")
        return
    jambatalk("synth-corpus", str(folder), "--head", "makehuman", "--voices", VOICES, "--minutes", str(minutes),
              "--seed", str(SEED), "--overwrite", "--quiet")


def train(corpus: Path, run: Path, threads: int) -> None:
    jambatalk("train", str(CONFIG), "--overwrite", "--quiet", "--set", f"data.dir={json.dumps(str(corpus))}",
              "--set", f"train.output_dir={json.dumps(str(run))}", "--set", f"train.num_threads={threads}")


def score(checkpoint: Path, corpus: Path, work: Path, threads: int) -> dict:
    import torch

    from model_core.evaluation.corpus_scores import score_corpus_split
    from model_core.evaluation.seams import real_speech_minutes, seam_report
    from model_core.inference import Animator

    torch.set_num_threads(threads)
    cards = {}
    for degradation in ("none", "telephone", "noise15", "mp3"):
        path = work / f"speech_scorecard_{degradation}.json"
        jambatalk("score-speech", str(checkpoint), "--json", str(path), "--device", "cpu", "--precision", "fp32",
                  "--degrade", degradation, "--quiet")
        cards[degradation] = json.loads(path.read_text(encoding="utf-8"))
    seams = seam_report(Animator(checkpoint, device="cpu", precision="fp32"), real_speech_minutes(10.0))
    return {"real_speech": cards.pop("none"),
            "robustness": {k: {"overall": v["overall"], "rest": v["rest"]} for k, v in cards.items()},
            "held_out_voices": score_corpus_split(checkpoint, corpus, "test"),
            "ten_minute_take": seams}


def install(run: Path, corpus: Path, scores: dict) -> None:
    """Copy the best checkpoint into models/arkit/ under its own name, without this machine's paths."""
    from model_core.checkpoint import load_checkpoint, save_checkpoint

    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    loaded = load_checkpoint(run / "best.safetensors")
    provenance = dict(loaded.info.provenance)
    data = dict(provenance.get("data", {}))
    data["dir"] = f"jambatalk synth-corpus --head makehuman --voices {VOICES} --seed {SEED} (see models/arkit/)"
    provenance.update(data=data, made_by="scripts/train_arkit_model", config="models/arkit/train.toml")
    config = json.loads(json.dumps(provenance.get("train_config", {})))  # no paths of the training machine
    config.get("data", {})["dir"] = "corpus"
    config.get("train", {})["output_dir"] = "train"
    provenance["train_config"] = config
    info = dataclasses.replace(loaded.info, name="jambatalk-arkit-small", provenance=provenance)
    save_checkpoint(MODEL_DIR / CHECKPOINT_NAME, loaded.model, info, template=loaded.template)
    (MODEL_DIR / "metrics.json").write_text(json.dumps(scores, indent=1) + "\n", encoding="utf-8")
    meta = json.loads((corpus / "meta.json").read_text(encoding="utf-8"))
    (MODEL_DIR / "corpus_meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"[train_arkit_model] installed {MODEL_DIR / CHECKPOINT_NAME}, metrics.json and corpus_meta.json")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=str(ROOT / "runs" / "arkit-model"), help="corpus and run folder")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--minutes", type=float, default=80.0, help="minutes of speech in the corpus (80)")
    parser.add_argument("--no-install", action="store_true", help="leave models/arkit/ as it is")
    parser.add_argument("--skip-training", action="store_true", help="score (and install) an existing run")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    corpus, run = work / "corpus", work / "train"
    timings = {}
    started = time.perf_counter()
    make_corpus(corpus, args.minutes)
    timings["corpus_s"] = time.perf_counter() - started
    if not args.skip_training:
        mark = time.perf_counter()
        train(corpus, run, args.threads)
        timings["training_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    scores = score(run / "best.safetensors", corpus, work, args.threads)
    timings["scoring_s"] = time.perf_counter() - mark
    scores["timings"] = {k: round(v, 1) for k, v in timings.items()}
    print(json.dumps(scores["held_out_voices"]["summary"], indent=1))
    for stage, seconds in timings.items():
        print(f"[train_arkit_model] {stage[:-2]:<10} {seconds:8.1f} s")
    if not args.no_install:
        install(run, corpus, scores)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
