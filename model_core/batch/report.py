"""The batch's summary: a CSV (one row per line, for a spreadsheet) and a JSON (totals and rows), written
atomically; and the closing lines on the console, with each failed line's sentence."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import TextIO

from model_core.mesh_cache import atomic_open

COLUMNS = ("line", "audio", "output", "status", "error", "audio_seconds", "frames", "fps", "compute_s",
           "batch_lines", "files", "model", "fingerprint", "worker", "at_s")
FAILURES_SHOWN = 20


def summarise(rows: list[dict], total_lines: int, wall_s: float, *, engine: str, workers: int,
              interrupted: bool, temp_files_removed: int = 0, first_row_s: float | None = None) -> dict:
    counts = Counter(row["status"] for row in rows)
    computed = [row for row in rows if row["status"] == "done"]
    audio_s = sum(row["audio_seconds"] or 0.0 for row in computed)
    compute_s = sum(row["compute_s"] or 0.0 for row in computed)
    return {
        "lines": total_lines, "done": counts["done"], "skipped": counts["skipped"], "failed": counts["failed"],
        "not_run": total_lines - len(rows), "interrupted": interrupted, "engine": engine, "workers": workers,
        "wall_s": round(wall_s, 3), "lines_per_s": round(len(rows) / wall_s, 3) if wall_s > 0 else None,
        "computed_lines_per_s": round(len(computed) / wall_s, 3) if wall_s > 0 else None,
        "audio_seconds_done": round(audio_s, 3), "compute_s_done": round(compute_s, 3),
        "first_row_s": None if first_row_s is None else round(first_row_s, 3),
        "temp_files_removed": temp_files_removed,
    }


def write_report(base: str | Path, rows: list[dict], summary: dict) -> tuple[Path, Path]:
    """`base`.csv and `base`.json; rows in manifest order. The pipeline's own columns follow ours in the CSV."""
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=lambda row: row["line"])
    extras = list(dict.fromkeys(key for row in rows for key in row.get("extra", {})))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([*COLUMNS, *extras])
    for row in rows:
        cells = [";".join(row[c]) if c == "files" else ("" if row.get(c) is None else row[c]) for c in COLUMNS]
        writer.writerow(cells + [row.get("extra", {}).get(key, "") for key in extras])
    paths = base.with_name(base.name + ".csv"), base.with_name(base.name + ".json")
    with atomic_open(paths[0]) as fh:
        fh.write(text.getvalue().encode("utf-8"))
    with atomic_open(paths[1]) as fh:
        fh.write(json.dumps({"summary": summary, "lines": rows}, indent=1).encode("utf-8"))
    return paths


def print_summary(summary: dict, rows: list[dict], reports: tuple[Path, Path], stream: TextIO) -> None:
    s = summary
    state = "Interrupted: " if s["interrupted"] else ""
    rate = f" ({s['lines_per_s']:.2f} lines/s)" if s["lines_per_s"] else ""
    print(f"{state}{s['lines']} lines: {s['done']} done, {s['skipped']} skipped (already done), {s['failed']} failed"
          + (f", {s['not_run']} not run" if s["not_run"] else "") + f" in {s['wall_s']:.1f} s{rate}.", file=stream)
    failed = sorted((row for row in rows if row["status"] == "failed"), key=lambda row: row["line"])
    for row in failed[:FAILURES_SHOWN]:
        print(f"  line {row['line']} ({row['output']}): {row['error']}", file=stream)
    if len(failed) > FAILURES_SHOWN:
        print(f"  ... and {len(failed) - FAILURES_SHOWN} more failed lines: see the report.", file=stream)
    if s["interrupted"] or s["not_run"]:
        print("  Run the same command again to resume: finished lines are skipped.", file=stream)
    print(f"Report: {reports[0]} and {reports[1]}", file=stream)
