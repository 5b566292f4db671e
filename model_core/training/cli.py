"""`jambatalk train CONFIG` and `jambatalk evaluate CHECKPOINT --data DIR`: argparse wiring."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from model_core.data.layout import LAYOUTS
from model_core.data.splits import SPLIT_PRESETS, SPLITS
from model_core.metrics import BIWI_SCALES, NO_SCALES, VOCASET_SCALES, MetricScales
from model_core.training.config import EXAMPLE_CONFIG, load_config

SCALE_CHOICES = {"vocaset": VOCASET_SCALES, "biwi": BIWI_SCALES, "none": NO_SCALES}


# -- train ------------------------------------------------------------------------------------------------------
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="training config (TOML); see --example-config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value, e.g. --set train.epochs=5 (repeatable; TOML values)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the config's output_dir")
    parser.add_argument("--overwrite", action="store_true", help="start again, replacing a run in output_dir")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--example-config", action="store_true", help="print a commented example config and exit")


def run_train_cli(args: argparse.Namespace) -> int:
    if args.example_config:
        print(EXAMPLE_CONFIG, end="")
        return 0
    if not args.config:
        raise ValueError("Name a training config file (TOML); `jambatalk train --example-config` prints one.")
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite contradict each other; choose one.")
    from model_core.training.trainer import Trainer

    cfg = load_config(args.config, args.overrides)
    trainer = Trainer(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    print(f"Training the '{cfg.model.preset}' preset on {trainer.corpus.describe()}: {len(trainer.train_takes)} "
          f"train / {len(trainer.val_takes)} val takes, {trainer.model.config.vertex_count} vertices at "
          f"{trainer.model.config.motion_fps:g} fps, device {trainer.device}.")
    outcome = trainer.run()
    best = (f"best {cfg.train.best_metric} {outcome.best_score:.4g} at epoch {outcome.best_epoch}"
            if outcome.best_score is not None else "no validation score")
    state = "stopped at the time limit" if outcome.status == "time_limit" else "finished"
    print(f"Training {state} after {outcome.epochs_completed} epochs ({outcome.global_step} steps, "
          f"{outcome.seconds:.0f} s): {best}. Checkpoints: {outcome.output_dir / 'best.safetensors'}, "
          f"{outcome.output_dir / 'last.safetensors'}.")
    return 0


# -- evaluate ---------------------------------------------------------------------------------------------------
def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a .safetensors checkpoint")
    parser.add_argument("--data", required=True, help="dataset folder (FaceFormer layout)")
    parser.add_argument("--split", default="test", choices=SPLITS, help="which split to score (default test)")
    parser.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS))
    parser.add_argument("--split-preset", default="auto", choices=("auto", *SPLIT_PRESETS),
                        help="subject/sentence split definition (default: the layout's standard one)")
    parser.add_argument("--lips", help="lip vertex indices file (default: DATA/regions/lips.txt)")
    parser.add_argument("--upper-face", help="upper-face vertex indices file (default: DATA/regions/upper_face.txt)")
    parser.add_argument("--scale", default="auto", choices=("auto", *SCALE_CHOICES),
                        help="how the scaled columns are divided (default: the dataset's convention)")
    parser.add_argument("--json", help="where to write the JSON report (default: beside the checkpoint)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--moe-policy", default=None, choices=("expected", "all", "random"),
                        help="second-expert rule (default: the checkpoint's, normally 'expected')")
    parser.add_argument("--num-threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_evaluate_cli(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model_core.checkpoint import load_checkpoint
    from model_core.data.blendshape_corpus import open_corpus
    from model_core.training.evaluate import evaluate_samples, format_table
    from model_core.training.setup import resolve_runtime

    started = time.perf_counter()
    if args.num_threads:
        import torch

        torch.set_num_threads(args.num_threads)
    corpus = open_corpus(args.data, args.layout, args.split_preset)
    takes = corpus.split(args.split)
    lips, upper = corpus.masks(args.lips, args.upper_face)
    device, amp = resolve_runtime(args.device, args.precision)
    loaded = load_checkpoint(args.checkpoint, device=device)
    cfg = loaded.config
    if cfg.vertex_count != corpus.vertex_count:
        raise ValueError(f"{args.checkpoint} animates {cfg.vertex_count} vertices but {args.data} has "
                         f"{corpus.vertex_count}; evaluate on data of the same topology.")
    model_fps = 25.0 if cfg.audio_frame_mode == "fold_pairs" else cfg.motion_fps
    if abs(model_fps - corpus.fps) > 1e-6:
        raise ValueError(f"{args.checkpoint} predicts {model_fps:g} fps but {args.data} is at {corpus.fps:g} fps.")
    if args.moe_policy:
        loaded.model.set_moe_policy(args.moe_policy)
    scales: MetricScales = corpus.layout.scales if args.scale == "auto" else SCALE_CHOICES[args.scale]
    samples = (corpus.load(t) for t in tqdm(takes, desc=f"evaluate {args.split}", unit="take", disable=args.quiet))
    result = evaluate_samples(loaded.model, samples, lips.indices, upper.indices, device, amp)

    frames = int(result.model.get("frames", 0))
    print(f"{Path(args.checkpoint).name} on {corpus.root}, split '{args.split}' (preset {corpus.split_preset}): "
          f"{len(takes)} sequences, {frames} frames at {corpus.fps:g} fps.")
    print(f"Masks: {lips.describe()}; {upper.describe()}.")
    moe = loaded.model.moe_layers()
    print("Baseline 'static': the subject's neutral template every frame (no motion). Model output = offsets + the "
          f"subject's template{f'; MoE policy {moe[0].policy_eval}' if moe else ''}.")
    print(format_table(result, scales, corpus.layout.units))
    report = {
        "checkpoint": str(args.checkpoint), "data": str(corpus.root), "layout": corpus.layout.kind,
        "split": args.split, "split_preset": corpus.split_preset, "fps": corpus.fps, "units": corpus.layout.units,
        "masks": {"lips": {"file": str(lips.source), "vertices": int(len(lips.unique)), "note": lips.description},
                  "upper_face": {"file": str(upper.source), "vertices": int(len(upper.unique)),
                                 "note": upper.description}},
        "scales": {"label": scales.label, "lve": scales.lve, "fdd": scales.fdd, "mve": scales.mve},
        "model": result.model, "static_template": result.baseline,
        "model_scaled": {k: scales.scaled(k, v) for k, v in result.model.items() if k in ("lve", "fdd", "mve")},
        "static_template_scaled": {k: scales.scaled(k, v) for k, v in result.baseline.items()
                                   if k in ("lve", "fdd", "mve")},
        "sequences": result.sequences, "seconds": round(time.perf_counter() - started, 2),
    }
    out = Path(args.json) if args.json else Path(args.checkpoint).with_suffix(f".{args.split}-metrics.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"Wrote {out}")
    return 0
