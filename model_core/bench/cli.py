"""`jambatalk bench`: the arguments, the loop over presets x devices x precisions x durations (each measured in a
fresh child process), and the report as a table and a JSON file."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from model_core.bench.measure import RESULT_MARKER, SHIPPED, WARMUP_SECONDS, measure_in_subprocess, measure_one
from model_core.bench.probes import available_cores, machine_info, wait_for_idle
from model_core.bench.report import (
    TARGET_CPU_SPEEDUP,
    TARGET_CPU_SPS,
    TARGET_CUDA_60S_MS,
    TARGET_ERROR_MM,
    TARGET_LINEARITY,
    TARGET_PEAK_GB,
    TARGET_SHIPPED_SPS,
    evaluate_targets,
    format_table,
)

DEFAULT_JSON = Path("bench_results") / "inference.json"
SCHEMA_VERSION = 2
LONG_SECONDS = 60.0  # --skip-long drops durations above this
PATHS_BY_DEVICE = {"cpu": "fp32,bf16,int8", "cuda": "fp32,bf16,fp16"}


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", default="vocaset,shipped",
                        help=f"comma-separated presets with random weights, or '{SHIPPED}' (the shipped model on "
                             "recorded speech; its error is in mm) (default vocaset,shipped)")
    parser.add_argument("--durations", default="10,60,600", help="audio lengths in seconds (default 10,60,600)")
    parser.add_argument("--device", default="auto",
                        help="auto (cpu, plus cuda when available), cpu, cuda, or a list such as cpu,cuda")
    parser.add_argument("--precisions", default="all",
                        help="paths to measure side by side, e.g. fp32,bf16 (default all: "
                             f"{PATHS_BY_DEVICE['cpu']} on CPU, {PATHS_BY_DEVICE['cuda']} on CUDA; auto = the default)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per measurement; best and median kept")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help=f"where to write results (default {DEFAULT_JSON})")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all available cores)")
    parser.add_argument("--skip-long", action="store_true", help=f"drop durations above {LONG_SECONDS:g} s")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch"))
    parser.add_argument("--sample-rate", type=int, default=44100,
                        help="rate of the synthetic signal; not 16000 so that resampling is timed too (default 44100)")
    parser.add_argument("--window-seconds", type=float, default=20.0, help="Animator window (default 20)")
    parser.add_argument("--overlap-seconds", type=float, default=2.0, help="Animator overlap (default 2)")
    parser.add_argument("--accuracy-max-seconds", type=float, default=60.0,
                        help="takes up to this long are also run in fp32 for the error column (default 60)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per measurement")
    parser.add_argument("--omp-wait-policy", default="inherit", choices=("inherit", "passive", "active"),
                        help="OMP_WAIT_POLICY for the measuring processes (default: this environment's)")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before each measurement wait up to this long for other processes to go idle")
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process (quick checks; the peak RSS then includes earlier runs)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child mode: a JSON spec


def _devices(choice: str) -> list[str]:
    import torch

    if choice == "auto":
        return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    devices = _csv(choice)
    for device in devices:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("CUDA was requested but no CUDA GPU is available; use --device cpu.")
    return devices


def _paths(choice: str, device: str) -> list[str]:
    """The concrete paths to measure on `device`, fp32 first (the others are compared with it), each once."""
    from model_core import precision
    from model_core.inference import resolve_device

    names = _csv(PATHS_BY_DEVICE["cuda" if device.startswith("cuda") else "cpu"] if choice == "all" else choice)
    unknown = [n for n in names if n not in precision.PRECISIONS]
    if unknown:
        raise ValueError(f"Unknown precision(s) {', '.join(unknown)}: choose from {', '.join(precision.PRECISIONS)}.")
    resolved = [precision.resolve(resolve_device(device), n) for n in names]
    return sorted(dict.fromkeys(resolved), key=lambda p: p != "fp32")


def run_benchmark_cli(args: argparse.Namespace) -> int:
    if getattr(args, "one", None):
        result = measure_one(json.loads(args.one))
        print(RESULT_MARKER + json.dumps(result), flush=True)
        return 0
    durations = [float(d) for d in _csv(args.durations)]
    if args.skip_long:
        durations = [d for d in durations if d <= LONG_SECONDS]
    if not durations or any(d <= 0 for d in durations):
        raise ValueError("--durations needs positive numbers of seconds, e.g. 10,60.")
    presets = _csv(args.presets)
    from model_core.config import PRESETS

    unknown = [p for p in presets if p not in PRESETS and p != SHIPPED]
    if unknown:
        raise ValueError(f"Unknown preset(s) {', '.join(unknown)}: choose from {', '.join(PRESETS)} or {SHIPPED}.")
    threads = args.threads or available_cores()
    devices = _devices(args.device)
    paths = {device: _paths(args.precisions, device) for device in devices}
    rows, failures = [], []
    for preset_name in presets:
        for device in devices:
            for seconds in durations:
                for path in paths[device]:
                    spec = {"preset": preset_name, "device": device, "seconds": seconds, "repeats": args.repeats,
                            "threads": threads, "sample_rate": args.sample_rate, "precision": path,
                            "backend": args.backend, "window_seconds": args.window_seconds,
                            "overlap_seconds": args.overlap_seconds, "seed": 0,
                            "accuracy_max_seconds": args.accuracy_max_seconds,
                            "omp_wait_policy": args.omp_wait_policy}
                    label = f"{preset_name} {device} {path} {seconds:g} s"
                    print(f"measuring {label} ...", file=sys.stderr, flush=True)
                    if args.wait_idle > 0:
                        share = wait_for_idle(args.wait_idle)
                        if share is not None and share > 0.1:
                            print(f"  machine still busy ({share:.0%} used by others)", file=sys.stderr, flush=True)
                    try:
                        row = measure_one(spec) if args.in_process else measure_in_subprocess(spec, args.timeout)
                    except (RuntimeError, ValueError, OSError) as exc:
                        failures.append({"spec": spec, "error": str(exc)})
                        print(f"  failed: {exc}", file=sys.stderr, flush=True)
                        continue
                    if args.in_process:
                        row["memory_kind"] += "_in_process"
                    rows.append(row)
                    print(f"  {row['compute_seconds']:.3f} s ({row['seconds_per_audio_second']:.4f} s/s), "
                          f"peak {row['peak_memory_gb']:.2f} GB", file=sys.stderr, flush=True)
    linearity = evaluate_targets(rows)
    print(format_table(rows, linearity))
    report = {
        "schema": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(threads),
        "settings": {"presets": presets, "durations": durations, "devices": devices, "precisions": paths,
                     "repeats": args.repeats, "threads": threads, "sample_rate": args.sample_rate,
                     "backend": args.backend, "window_seconds": args.window_seconds,
                     "overlap_seconds": args.overlap_seconds, "warmup_seconds": WARMUP_SECONDS,
                     "accuracy_max_seconds": args.accuracy_max_seconds, "omp_wait_policy": args.omp_wait_policy,
                     "wait_idle": args.wait_idle, "in_process": bool(args.in_process)},
        "targets": {"cpu_seconds_per_audio_second": TARGET_CPU_SPS, "cpu_speedup": TARGET_CPU_SPEEDUP,
                    "shipped_seconds_per_audio_second": TARGET_SHIPPED_SPS, "error_mm": TARGET_ERROR_MM,
                    "linearity": TARGET_LINEARITY, "peak_memory_gb": TARGET_PEAK_GB,
                    "cuda_60s_ms": TARGET_CUDA_60S_MS},
        "results": rows,
        "linearity": linearity,
        "failures": failures,
        "all_targets_pass": bool(rows) and all(t["pass"] for r in rows for t in r["targets"].values())
        and all(c["pass"] for c in linearity),
    }
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nWrote {path}")
    return 1 if failures else 0
