"""The real-speech scorecard as a table for people and as strict JSON (NaN written as null)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# (label, summary key, format); None keys are section headings.
ROWS: tuple[tuple[str, str | None, str], ...] = (
    ("takes", "takes", "{:.0f}"),
    ("rejected alignments", "rejected", "{:.0f}"),
    ("seconds of speech", "seconds", "{:.1f}"),
    ("p/b/m closures", "bilabials", "{:.0f}"),
    ("  lips within 1 mm", "bilabial_within_1mm", "pct"),
    ("  lips within 2 mm", "bilabial_within_2mm", "pct"),
    ("  median smallest gap, mm", "bilabial_min_gap_median_mm", "{:.2f}"),
    ("jaw opening, mm", None, ""),
    ("  open vowels", "jaw_open_vowels_mm", "{:.2f}"),
    ("  p/b/m", "jaw_bilabials_mm", "{:.2f}"),
    ("  pauses (sil)", "jaw_pauses_mm", "{:.2f}"),
    ("lip gap on open vowels, mm", "lips_open_vowels_mm", "{:.2f}"),
    ("pauses > 150 ms", "long_pauses", "{:.0f}"),
    ("  mean lip gap, mm", "pause_lip_gap_mm", "{:.2f}"),
    ("  mean jaw opening, mm", "pause_jaw_mm", "{:.2f}"),
    ("jaw lag, ms (+ = model late)", "lag_ms", "{:+.0f}"),
    ("  its correlation", "lag_corr", "{:.2f}"),
    ("  median of takes' lags, ms", "lag_ms_median_of_takes", "{:+.0f}"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{100 * value:.1f} %" if fmt == "pct" else fmt.format(value)


def format_report(report: dict[str, Any], per_take: bool = False) -> str:
    columns = {**report["sources"], "overall": report["overall"]}
    width = max(12, *(len(c) + 2 for c in columns))
    degraded = report.get("degradation", "none")
    lines = [f"{report['model']} ({report['checkpoint']}): {report['vertex_count']} vertices at {report['fps']:g} fps;"
             f" landmarks from {report['landmarks']['origin']}; phones by {report['aligner']}"
             + (f"; the model heard the audio degraded: {degraded}" if degraded != "none" else ""), ""]
    lines.append(f"{'':34}" + "".join(f"{c:>{width}}" for c in columns))
    for label, key, fmt in ROWS:
        cells = "" if key is None else "".join(f"{_cell(col.get(key), fmt):>{width}}" for col in columns.values())
        lines.append(f"{label:34}{cells}")
    lines += ["", f"{'mouth at rest':34}{'jaw mean':>10}{'jaw max':>10}{'lips mean':>11}{'lips max':>10}  (mm)"]
    for label, probe in report["rest"].items():
        mm = [_cell(probe[k], "{:.2f}") for k in ("jaw_mm_mean", "jaw_mm_max", "lip_gap_mm_mean", "lip_gap_mm_max")]
        lines.append(f"  {label:32}{mm[0]:>10}{mm[1]:>10}{mm[2]:>11}{mm[3]:>10}  input: {probe['input']}")
    if report["rejected"]:
        lines += ["", "rejected alignments:"] + [f"  {r['source']}/{r['take']}: {r['reason']}"
                                                for r in report["rejected"]]
    if per_take:
        names = [f"{t['source']}/{t['take']}" for t in report["takes"]]
        w = max([4, *map(len, names)]) + 1
        lines += ["", f"{'take':{w}}{'s':>6}{'p/b/m':>6}{'<=1mm':>6}{'<=2mm':>6}{'jaw open':>9}{'jaw sil':>8}"
                      f"{'pause lips':>11}{'lag ms':>8}"]
        for name, t in zip(names, report["takes"], strict=True):
            closures = t["bilabial_min_mm"]
            within = [sum(v <= mm for v in closures) for mm in (1.0, 2.0)]
            pauses = t["pause_lip_gap_mm"]
            lines.append(f"{name:{w}}{t['seconds']:6.1f}{len(closures):6d}"
                         f"{within[0]:6d}{within[1]:6d}{_cell(t['jaw_mm']['open_vowels'], '{:.2f}'):>9}"
                         f"{_cell(t['jaw_mm']['pauses'], '{:.2f}'):>8}"
                         f"{_cell(sum(pauses) / len(pauses) if pauses else None, '{:.2f}'):>11}"
                         f"{_cell(t['lag_ms'], '{:+.0f}'):>8}")
    return "\n".join(lines)


def print_report(report: dict[str, Any], per_take: bool = False) -> None:
    print(format_report(report, per_take))


def _strict(value: Any) -> Any:
    """JSON has no NaN: write it as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_strict(report), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return path
