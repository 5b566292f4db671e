"""`jambatalk batch`: a folder or a manifest of lines -> animation files, a report, an exit status.

Exit status: 0 when every line is done (now or before), 1 when any line failed (the report says why), 2 when the
command cannot run (its sentence on stderr), 130 when interrupted (run it again to resume).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from model_core.output_files import FORMATS

if TYPE_CHECKING:
    from model_core.batch.manifest import BatchLine
    from model_core.batch.runner import RunnerOptions
    from model_core.batch.state import OutputFolder

REPORT_NAME = "batch-report"


def add_batch_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="a folder of audio files (searched recursively) or a manifest (.csv, .tsv, .jsonl); "
                                 "see docs/batch.md for the columns")
    p.add_argument("--out", required=True, help="output folder (also holds the resume records)")
    p.add_argument("--checkpoint", help="model for lines that name none (a folder's lines all use it)")
    p.add_argument("--format", default="npy",
                   help=f"comma-separated formats for lines that name none: {', '.join(FORMATS)} (default npy)")
    p.add_argument("--template", help="neutral mesh (.obj or .npy) for pc2/mdd; default: the checkpoint's")
    p.add_argument("--subject", default=None, help="speaking style for lines that name none")
    p.add_argument("--strength", type=float, default=1.0, help="motion strength for lines that name none (0-4)")
    p.add_argument("--smoothing", type=float, default=0.0, help="Gaussian smoothing, seconds (0-1), default 0")
    p.add_argument("--pattern", help="with a folder: a glob of the files to take, e.g. '*.wav' (default: audio)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes on this machine (default 1), or Ray actors (default: as many as fit)")
    p.add_argument("--batch-lines", type=int, default=16, help="lines per batched forward pass (1: one by one)")
    p.add_argument("--batch-seconds", type=float, default=120.0, help="padded audio seconds per forward pass")
    p.add_argument("--force", action="store_true", help="redo every line, even those already done")
    p.add_argument("--report", help=f"report path without suffix (default OUT/{REPORT_NAME}); .csv and .json")
    p.add_argument("--max-minutes", type=float, default=30.0, help="refuse longer audio (default 30)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this machine; ray: a Ray cluster through Ray Data (pip install 'jambatalk[scale]')")
    p.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray instance; 'auto': "
                                                  "the cluster this machine belongs to)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs each Ray actor reserves (e.g. 1)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0, help="CPUs each Ray actor reserves")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_batch_cli(args: argparse.Namespace) -> int:
    # Imported here: `jambatalk --help` should not pay for audio decoding and the report's modules.
    from model_core.batch.manifest import LineDefaults, parse_formats, read_lines
    from model_core.batch.progress import BatchProgress
    from model_core.batch.report import print_summary, summarise, write_report
    from model_core.batch.runner import RunnerOptions
    from model_core.batch.state import OutputFolder

    if args.workers is not None and args.workers < 1:
        raise ValueError("--workers must be 1 or more.")
    if args.batch_lines < 1 or not args.batch_seconds > 0:
        raise ValueError("--batch-lines must be 1 or more and --batch-seconds positive.")
    if args.engine == "ray":
        from model_core.batch.ray_engine import require_ray

        require_ray()
    try:
        formats = parse_formats(args.format.split(","))
    except ValueError as exc:
        raise ValueError(f"--format: {exc}.") from None
    defaults = LineDefaults(model=args.checkpoint, formats=formats, subject=args.subject, strength=args.strength,
                            smoothing_s=args.smoothing, template=args.template)
    lines = read_lines(args.input, defaults, args.pattern)
    folder = OutputFolder(args.out)
    report_base = Path(args.report) if args.report else folder.root / REPORT_NAME
    _check_report_is_not_an_output(report_base, folder, lines)
    options = RunnerOptions(out_dir=str(folder.root), device=args.device, precision=args.precision,
                            backend=args.backend, moe_policy=args.moe_policy, max_seconds=args.max_minutes * 60,
                            batch_lines=args.batch_lines, batch_seconds=args.batch_seconds, force=args.force)
    rows: list[dict] = []
    with folder.lock():
        removed = folder.sweep_temporaries((line.output, line.formats) for line in lines)
        progress = BatchProgress(len(lines), quiet=args.quiet)

        first_row_s = None

        def on_row(row: dict) -> None:
            nonlocal first_row_s
            row["at_s"] = round(time.perf_counter() - started, 3)  # when it reached the report: the run's pace
            if first_row_s is None:  # the start-up: workers, models, a Ray instance
                first_row_s = row["at_s"]
            rows.append(row)
            progress.add(row)

        started = time.perf_counter()
        interrupted, failure, workers = False, None, args.workers or 1
        try:
            workers = _run_engine(args, lines, options, on_row)
        except KeyboardInterrupt:
            interrupted = True
        except Exception as exc:  # the engine itself broke (not a line): still report what was done, then say why
            failure = exc
        finally:
            progress.close()
        summary = summarise(rows, len(lines), time.perf_counter() - started, engine=args.engine, workers=workers,
                            interrupted=interrupted or failure is not None, temp_files_removed=removed,
                            first_row_s=first_row_s)
        reports = write_report(report_base, rows, summary)
        if failure is not None:
            print_summary(summary, rows, reports, sys.stderr)
            raise failure
    print_summary(summary, rows, reports, sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(summary, indent=2))
    if interrupted:
        return 130
    return 1 if summary["failed"] or summary["not_run"] else 0


def _run_engine(args: argparse.Namespace, lines: list[BatchLine], options: RunnerOptions,
                on_row: Callable[[dict], None]) -> int:
    """Run every line on the chosen engine; returns how many workers (processes or actors) ran them."""
    if args.engine == "ray":
        from model_core.batch.ray_engine import run_ray

        return run_ray(lines, options, on_row, address=args.address, workers=args.workers,
                       gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker)
    from model_core.batch.local import run_local

    workers = args.workers or 1
    run_local(lines, options, workers, on_row)
    return workers


def _check_report_is_not_an_output(base: Path, folder: OutputFolder, lines: list[BatchLine]) -> None:
    from model_core.batch.manifest import ManifestError

    report = {base.with_name(base.name + s).resolve() for s in (".csv", ".json")}
    for line in lines:
        for fmt in line.formats:
            if folder.target(line.output, fmt).resolve() in report:
                raise ManifestError(f"Line {line.number} would write {folder.target(line.output, fmt)}, which is "
                                    "the batch report; rename its output or pass --report.")

