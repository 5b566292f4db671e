"""`jambatalk synth-corpus OUT`: argparse wiring for both corpus generators.

`--head synthetic` (the default): the procedural egg-shaped head and the formant voice, VOCASET layout (what
the demo model trained on). `--head makehuman` (or a head file): many voices on a blendshape head with ARKit
truth (model_core/corpus/).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from model_core.synth.corpus import CorpusOptions, clear_previous, generate_corpus


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder")
    parser.add_argument("--head", default="synthetic",
                        help="synthetic (procedural head, VOCASET layout), makehuman (the shipped CC0 ARKit head) "
                             "or a head .safetensors file")
    parser.add_argument("--voices", default="formant,festival,flite,asterisk",
                        help="blendshape corpus: comma-separated sources (formant, festival, flite, asterisk)")
    parser.add_argument("--minutes", type=float, default=60.0,
                        help="blendshape corpus: minutes of speech, shared equally by the sources (default 60)")
    parser.add_argument("--formant-speakers", type=int, default=6, help="blendshape corpus: formant voices (6)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives byte-identical files (default 0)")
    parser.add_argument("--subjects", type=int, default=12, help="speakers; 12 gives 8 train / 2 val / 2 test")
    parser.add_argument("--sentences", type=int, default=40, help="sentences per speaker (default 40)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="shortest sentence (default 2)")
    parser.add_argument("--max-seconds", type=float, default=5.0, help="longest sentence (default 5)")
    parser.add_argument("--vertices", type=int, default=3000,
                        help="approximate head vertex count (default 3000; the exact count is in meta.json)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier corpus in OUT (only files this generator writes are deleted)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _prepare_out(out: Path, overwrite: bool, clear: Callable[[Path], None]) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder.")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"{out} is not empty; pass --overwrite to replace an earlier corpus there.")
        clear(out)


def run_blendshape_cli(args: argparse.Namespace) -> int:
    from model_core.corpus.build import BuildOptions, build_corpus, clear_previous
    from model_core.heads.cli import SHIPPED_HEAD, resolve_head

    options = BuildOptions(seed=args.seed, minutes=args.minutes,
                           voices=tuple(v.strip() for v in args.voices.split(",") if v.strip()),
                           formant_speakers=args.formant_speakers)
    options.validate()
    head_path = SHIPPED_HEAD if args.head in ("makehuman", "makehuman-arkit") else Path(args.head)
    head = resolve_head(str(head_path))
    out = Path(args.out)
    _prepare_out(out, args.overwrite, clear_previous)
    from model_core.corpus.tools import ToolMissing

    try:
        summary = build_corpus(out, head, head_path, options, progress=not args.quiet)
    except ToolMissing as exc:  # one sentence naming what to install
        raise ValueError(str(exc)) from None
    meta = summary.meta
    per_source = ", ".join(f"{k} {v['seconds'] / 60:.1f} min" for k, v in sorted(meta["sources"].items()))
    print(f"Wrote {meta['takes']} takes ({meta['seconds'] / 60:.1f} min: {per_source}) on {head.name} to {out} in "
          f"{summary.elapsed_seconds:.0f} s; {meta['rejected']['count']} alignments rejected (see README.md).")
    return 0


def run_synth_cli(args: argparse.Namespace) -> int:
    if args.head != "synthetic":
        return run_blendshape_cli(args)
    options = CorpusOptions(seed=args.seed, subjects=args.subjects, sentences=args.sentences,
                            min_seconds=args.min_seconds, max_seconds=args.max_seconds, vertices=args.vertices)
    options.validate()
    out = Path(args.out)
    _prepare_out(out, args.overwrite, clear_previous)
    summary = generate_corpus(out, options, progress=not args.quiet)
    per_subject = summary.total_audio_seconds / max(len(summary.subjects), 1)
    print(f"Wrote {len(summary.subjects)} subjects x {summary.sentences} sentences to {out}: "
          f"{summary.vertex_count} vertices, {summary.total_audio_seconds / 60:.1f} min of audio "
          f"({per_subject:.0f} s per subject), {summary.bytes_written / 1e9:.2f} GB "
          f"in {summary.elapsed_seconds:.1f} s.")
    return 0
