"""The benchmark runs end to end on a tiny case and writes a well-formed report (never asserts speed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_core import bench
from model_core.bench import measure, report
from model_core.cli import build_parser

ROW_FIELDS = {
    "preset", "device", "precision", "audio_seconds", "motion_frames", "vertices", "windows", "compute_seconds",
    "compute_seconds_median", "cpu_seconds", "seconds_per_audio_second", "realtime_factor", "peak_memory_gb",
    "baseline_memory_gb", "memory_kind", "targets", "threads", "output_finite", "output_max_abs", "default",
    "speedup", "max_error_mm", "relative_error",
}


def test_synth_speech_is_deterministic_and_speech_like() -> None:
    a = bench.synth_speech(5.0, 16000, seed=0)
    assert a.dtype == np.float32 and a.shape == (80000,)
    assert np.array_equal(a, bench.synth_speech(5.0, 16000, seed=0))
    assert not np.array_equal(a, bench.synth_speech(5.0, 16000, seed=1))
    assert 0.4 < np.abs(a).max() <= 0.5
    # Syllables and pauses alternate: the 50 ms frame energy varies a lot.
    energy = (a.reshape(-1, 800) ** 2).mean(axis=1)
    assert energy.max() > 20 * energy.min()


def test_small_preset_report(tmp_path) -> None:
    out = tmp_path / "bench.json"
    args = build_parser().parse_args(["bench", "--presets", "small", "--durations", "3", "--device", "cpu",
                                      "--precisions", "fp32", "--sample-rate", "16000", "--threads", "1",
                                      "--in-process", "--json", str(out)])
    assert args.func(args) == 0
    written = json.loads(out.read_text())
    assert {"machine", "settings", "targets", "results", "linearity", "failures"} <= set(written)
    assert written["machine"]["cpu_cores"] >= 1 and written["machine"]["torch"] and written["machine"]["cpu_features"]
    assert written["failures"] == []
    (row,) = written["results"]
    assert ROW_FIELDS <= set(row)
    assert (row["preset"], row["device"], row["precision"]) == ("small", "cpu", "fp32")
    assert row["audio_seconds"] == pytest.approx(3.0)
    assert row["motion_frames"] == 89 and row["vertices"] == 5023 and row["windows"] == 1
    assert row["compute_seconds"] > 0
    assert row["seconds_per_audio_second"] == pytest.approx(row["compute_seconds"] / 3.0, rel=1e-2)
    assert row["realtime_factor"] == pytest.approx(3.0 / row["compute_seconds"], rel=1e-2)
    assert 0 < row["baseline_memory_gb"] <= row["peak_memory_gb"] < 64
    assert row["output_finite"] and row["output_max_abs"] > 0  # the random head makes the face move
    assert row["targets"]["peak_memory"]["limit"] == report.TARGET_PEAK_GB
    assert row["speedup"] == 1.0 and row["max_error_mm"] == 0.0 and row["default"]  # tests pin fp32 as the default


def test_paths_side_by_side_with_their_error_against_fp32(tmp_path) -> None:
    """The shipped model on recorded speech in fp32, bf16 and int8: each row has its speed-up and its error in mm."""
    out = tmp_path / "bench.json"
    args = build_parser().parse_args(["bench", "--presets", "shipped", "--durations", "2", "--device", "cpu",
                                      "--precisions", "bf16,int8,fp32,auto", "--threads", "1", "--in-process",
                                      "--json", str(out)])
    assert args.func(args) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["precision"] for r in rows] == ["fp32", "bf16", "int8"]  # fp32 first; auto (fp32 here) once
    for row in rows[1:]:
        # Whether a fast path meets the bar depends on the model (precision.accurate_paths); it is judged, and
        # never further off than the bake tolerance itself.
        assert row["speedup"] > 0 and 0 < row["max_error_mm"] <= 2 * report.TARGET_ERROR_MM
        assert row["targets"]["error_mm"]["pass"] == (row["max_error_mm"] <= report.TARGET_ERROR_MM)
        assert "peak_vs_fp32" in row["targets"]
        assert row["vertices"] == 4924 and row["sample_rate"] == 16000


def test_targets_and_table() -> None:
    def row(seconds: float, compute: float) -> dict:
        return {"preset": "vocaset", "device": "cpu", "precision": "fp32", "audio_seconds": seconds,
                "motion_frames": int(seconds * 30), "windows": 1, "compute_seconds": compute,
                "compute_seconds_median": compute, "seconds_per_audio_second": compute / seconds,
                "realtime_factor": seconds / compute, "baseline_memory_gb": 1.5, "peak_memory_gb": 2.0,
                "foreign_load": 0.0, "default": False}

    rows = [row(60, 15.0), row(600, 210.0), {**row(60, 5.0), "precision": "bf16", "default": True,
                                             "max_error_mm": 0.01, "relative_error": 1e-3, "peak_memory_gb": 1.8}]
    (check,) = report.evaluate_targets(rows)
    assert check["ratio"] == pytest.approx(1.4) and not check["pass"]
    assert rows[0]["targets"]["cpu_speed"]["pass"] and "cpu_speed" not in rows[1]["targets"]
    assert rows[2]["speedup"] == 3.0 and rows[2]["targets"]["cpu_speedup"]["pass"]
    assert rows[2]["targets"]["peak_vs_fp32"]["pass"] and "cpu_speed" not in rows[2]["targets"]
    table = report.format_table(rows, [check])
    assert "cpu_speedup=PASS" in table and "FAIL" in table and len({len(x) for x in table.splitlines()[:2]}) == 1
    assert "bf16*" in table and "1.0e-03 rel" in table


@pytest.mark.slow
def test_child_process_measurement() -> None:
    # The default path: a fresh interpreter per measurement, so the peak RSS is that measurement's own.
    spec = {"preset": "small", "device": "cpu", "seconds": 1.0, "repeats": 1, "threads": 1,
            "sample_rate": 16000, "seed": 0}
    row = measure.measure_in_subprocess(spec, timeout=120)
    assert row["motion_frames"] == 29 and row["memory_kind"] in ("rss_peak_animate", "rss_peak_process")
    assert 0 < row["baseline_memory_gb"] < 64 and row["peak_memory_gb"] > 0
