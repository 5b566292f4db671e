"""`jambatalk synth-corpus OUT`: argparse wiring for the synthetic corpus generator."""

from __future__ import annotations

import argparse
from pathlib import Path

from model_core.synth.corpus import CorpusOptions, clear_previous, generate_corpus


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder (VOCASET / FaceFormer layout)")
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


def run_synth_cli(args: argparse.Namespace) -> int:
    options = CorpusOptions(seed=args.seed, subjects=args.subjects, sentences=args.sentences,
                            min_seconds=args.min_seconds, max_seconds=args.max_seconds, vertices=args.vertices)
    options.validate()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a folder.")
    if out.is_dir() and any(out.iterdir()):
        if not args.overwrite:
            raise ValueError(f"{out} is not empty; pass --overwrite to replace an earlier corpus there.")
        clear_previous(out)
    summary = generate_corpus(out, options, progress=not args.quiet)
    per_subject = summary.total_audio_seconds / max(len(summary.subjects), 1)
    print(f"Wrote {len(summary.subjects)} subjects x {summary.sentences} sentences to {out}: "
          f"{summary.vertex_count} vertices, {summary.total_audio_seconds / 60:.1f} min of audio "
          f"({per_subject:.0f} s per subject), {summary.bytes_written / 1e9:.2f} GB "
          f"in {summary.elapsed_seconds:.1f} s.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (`python -m model_core.synth.cli OUT ...`) until the main CLI wires it in."""
    import sys

    parser = argparse.ArgumentParser(prog="jambatalk synth-corpus", description="Generate the synthetic corpus.")
    add_synth_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_synth_cli(args)
    except ValueError as exc:
        print(f"jambatalk synth-corpus: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
