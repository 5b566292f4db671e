"""The steps the shipped models' recipes share (scripts/train_demo_model, scripts/train_arkit_model).

Each recipe makes its corpus, trains its `train.toml` on it through the `jambatalk` CLI, scores the best
checkpoint and installs it into models/<name>/ with its scores; what differs (the corpus, the scores, the
provenance) stays in the recipe.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def jambatalk(*args: str) -> None:
    """Run the `jambatalk` CLI of this checkout; a failure stops the recipe."""
    subprocess.run([sys.executable, "-m", "model_core.cli", *args], cwd=ROOT, check=True)


def train(config: Path, corpus: Path, run: Path, threads: int, init_from: Path | None = None) -> None:
    """One stage: `config` on `corpus` into `run`, starting from `init_from`'s weights when given."""
    start = ["--set", f"model.init_from={json.dumps(str(init_from))}"] if init_from is not None else []
    jambatalk("train", str(config), "--overwrite", "--quiet", "--set", f"data.dir={json.dumps(str(corpus))}",
              "--set", f"train.output_dir={json.dumps(str(run))}", "--set", f"train.num_threads={threads}", *start)


def recipe_parser(doc: str, work: str, model_dir: str) -> argparse.ArgumentParser:
    """The options every recipe has; a recipe adds its own before parsing."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--work", default=str(ROOT / "runs" / work), help="corpus and run folder")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--no-install", action="store_true", help=f"leave {model_dir} as it is")
    parser.add_argument("--skip-training", action="store_true", help="score (and install) an existing run")
    return parser


@contextlib.contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Record the stage's wall time in `timings` as `<stage>_s`."""
    started = time.perf_counter()
    yield
    timings[f"{stage}_s"] = time.perf_counter() - started


def run_recipe(args: argparse.Namespace, tag: str, configs: list[Path], make_corpus: Callable[[Path], None],
               score: Callable[[Path, Path, Path], dict], summary: Callable[[dict], dict],
               install: Callable[[Path, Path, dict], None]) -> int:
    """Corpus, training (unless --skip-training), scores (with the stage timings), then install (unless
    --no-install). Each config is a stage trained into WORK/<its stem>, every stage after the first starting from
    the previous stage's best checkpoint; the last stage's is scored and installed. `score(checkpoint, corpus,
    work)`, `install(run, corpus, scores)`; `summary` picks what to print."""
    work = Path(args.work).resolve()
    corpus = work / "corpus"
    runs = [work / config.stem for config in configs]
    run = runs[-1]
    timings: dict[str, float] = {}
    with timed(timings, "corpus"):
        make_corpus(corpus)
    if not args.skip_training:
        for index, config in enumerate(configs):
            stage = "training" if index == 0 else f"training_{config.stem}"
            with timed(timings, stage):
                train(config, corpus, runs[index], args.threads,
                      init_from=runs[index - 1] / "best.safetensors" if index else None)
    with timed(timings, "scoring"):
        scores = score(run / "best.safetensors", corpus, work)
    scores["timings"] = {k: round(v, 1) for k, v in timings.items()}
    print(json.dumps(summary(scores), indent=1))
    for stage, seconds in timings.items():
        print(f"[{tag}] {stage[:-2]:<10} {seconds:8.1f} s")
    if not args.no_install:
        install(run, corpus, scores)
    return 0


def install_checkpoint(run: Path, target: Path, scores: dict, *, name: str, data_dir: str, made_by: str,
                       config: str, licence: str | None = None,
                       adjust_provenance: Callable[[dict], None] | None = None) -> None:
    """Copy the run's best checkpoint to `target` under its own name (and licence), its provenance saying how it
    was made rather than this machine's paths, and write the scores as metrics.json beside it."""
    from model_core.checkpoint import load_checkpoint, save_checkpoint

    target.parent.mkdir(parents=True, exist_ok=True)
    loaded = load_checkpoint(run / "best.safetensors")
    provenance = dict(loaded.info.provenance)
    data = dict(provenance.get("data", {}))
    data["dir"] = data_dir
    provenance.update(data=data, made_by=made_by, config=config)
    if adjust_provenance is not None:
        adjust_provenance(provenance)
    changes = {"name": name, "provenance": provenance} | ({} if licence is None else {"licence": licence})
    info = dataclasses.replace(loaded.info, **changes)
    save_checkpoint(target, loaded.model, info, template=loaded.template)
    (target.parent / "metrics.json").write_text(json.dumps(scores, indent=1) + "\n", encoding="utf-8")
