"""Reproduce the shipped ARKit model: the blendshape corpus -> training -> real-speech and held-out-voice scores.

Stages (each prints its wall time): build the corpus (skipped when WORK/corpus already holds the same one),
train `models/arkit/train.toml`, fine-tune its best checkpoint with `models/arkit/finetune.toml` (the lip
closure and opening terms), score the fine-tune's best checkpoint on real recordings (`jambatalk score-speech`: the
held-out Asterisk prompts and the LibriVox clips) and on the held-out synthetic voices (LVE against the static
template, jaw-opening r, bilabial closures), then install the checkpoint and its scores into models/arkit/.

    scripts/train_arkit_model [--work runs/arkit-model] [--threads 2] [--minutes 80] [--no-install]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_core.precision import ERROR_RECORD_KEY  # noqa: E402
from scripts.model_recipe import install_checkpoint, jambatalk, recipe_parser, run_recipe  # noqa: E402

MODEL_DIR = ROOT / "models" / "arkit"
# Two stages: the whole recipe (train.toml), then a fine-tune that teaches closures without mumbling.
CONFIGS = [MODEL_DIR / "train.toml", MODEL_DIR / "finetune.toml"]
CHECKPOINT_NAME = "jambatalk-arkit-small.safetensors"
VOICES = "asterisk,festival,flite,formant"
SEED = 0


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


def score(checkpoint: Path, corpus: Path, work: Path, threads: int) -> dict:
    import torch

    from model_core.evaluation.corpus_scores import score_corpus_split
    from model_core.evaluation.precision_check import precision_errors
    from model_core.evaluation.seams import real_speech_minutes, seam_report
    from model_core.evaluation.speech_sources import builtin_recordings
    from model_core.inference import Animator

    torch.set_num_threads(threads)
    cards = {}
    for degradation in ("none", "telephone", "noise15", "mp3"):
        path = work / f"speech_scorecard_{degradation}.json"
        jambatalk("score-speech", str(checkpoint), "--json", str(path), "--device", "cpu", "--precision", "fp32",
                  "--degrade", degradation, "--quiet")
        cards[degradation] = json.loads(path.read_text(encoding="utf-8"))
    seams = seam_report(Animator(checkpoint, device="cpu", precision="fp32"), real_speech_minutes(10.0))
    # Each fast CPU path's error against fp32 over the same recordings: installed into the checkpoint, it lets
    # `--precision auto` pick a fast path only if that path stays within half the bake tolerance for this model.
    errors = precision_errors(checkpoint, [r.samples for r in builtin_recordings()])
    return {"real_speech": cards.pop("none"),
            "robustness": {k: {"overall": v["overall"], "rest": v["rest"]} for k, v in cards.items()},
            "held_out_voices": score_corpus_split(checkpoint, corpus, "test"),
            # The held-out Asterisk prompts against the corpus's truth for them: LVE, jaw r and how far the lips
            # open on vowels, on real speech.
            "held_out_prompts": score_corpus_split(checkpoint, corpus, "test", ("asterisk",)),
            "ten_minute_take": seams,
            ERROR_RECORD_KEY: errors}


def install(run: Path, corpus: Path, scores: dict) -> None:
    """Copy the best checkpoint into models/arkit/ under its own name, without this machine's paths."""

    def without_local_paths(provenance: dict) -> None:
        config = json.loads(json.dumps(provenance.get("train_config", {})))
        config.get("data", {})["dir"] = "corpus"
        # run_recipe's WORK/<stem> folders: the last stage's, started from the one before it.
        previous, last = (stage.stem for stage in CONFIGS[-2:])
        config.get("train", {})["output_dir"] = last
        if config.get("model", {}).get("init_from"):
            config["model"]["init_from"] = f"{previous}/best.safetensors"
        provenance["train_config"] = config
        provenance[ERROR_RECORD_KEY] = scores[ERROR_RECORD_KEY]

    install_checkpoint(run, MODEL_DIR / CHECKPOINT_NAME, scores, name="jambatalk-arkit-small",
                       data_dir=f"jambatalk synth-corpus --head makehuman --voices {VOICES} --seed {SEED} "
                                "(see models/arkit/)",
                       made_by="scripts/train_arkit_model",
                       config="models/arkit/train.toml, then models/arkit/finetune.toml",
                       adjust_provenance=without_local_paths)
    meta = json.loads((corpus / "meta.json").read_text(encoding="utf-8"))
    (MODEL_DIR / "corpus_meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"[train_arkit_model] installed {MODEL_DIR / CHECKPOINT_NAME}, metrics.json and corpus_meta.json")


def main() -> int:
    parser = recipe_parser(__doc__, "arkit-model", "models/arkit/")
    parser.add_argument("--minutes", type=float, default=80.0, help="minutes of speech in the corpus (80)")
    args = parser.parse_args()
    return run_recipe(args, "train_arkit_model", CONFIGS, lambda corpus: make_corpus(corpus, args.minutes),
                      lambda checkpoint, corpus, work: score(checkpoint, corpus, work, args.threads),
                      lambda scores: scores["held_out_voices"]["summary"], install)


if __name__ == "__main__":
    raise SystemExit(main())
