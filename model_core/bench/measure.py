"""One benchmark measurement, meant for a fresh process (`python -m model_core.cli bench --one SPEC`) so that its
peak memory is its own: build the network (random weights of a preset, or the shipped model), warm up, time
`Animator.animate` end to end, and measure the path's error against the exact float32 path on the same audio."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model_core.bench.probes import (
    GIB,
    available_cores,
    peak_rss_kib,
    proc_status_kib,
    reset_peak_rss,
    timed_runs,
)
from model_core.bench.signals import recorded_speech, synth_speech
from model_core.evaluation.precision_check import max_vertex_error_mm, max_vertex_offset_mm

if TYPE_CHECKING:
    from model_core.inference import Animator

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULT_MARKER = "JAMBATALK_BENCH_RESULT "
WARMUP_SECONDS = 60.0  # the warm-up run sees every window shape of takes up to this long
SHIPPED = "shipped"  # the preset name that means the model we ship, on recorded speech
SHIPPED_CHECKPOINT = REPO_ROOT / "models" / "arkit" / "jambatalk-arkit-small.safetensors"
ACCURACY_MAX_SECONDS = 60.0  # longer takes are not also run in float32 for the error column


def build_animator(spec: dict[str, Any], precision: str | None = None) -> Animator:
    """The shipped model, or a randomly initialised network of `spec["preset"]` (weights do not affect timing)."""
    import torch

    from model_core.checkpoint import CheckpointInfo, LoadedCheckpoint
    from model_core.config import preset
    from model_core.inference import Animator
    from model_core.model import JambaTalk

    options = {"device": spec["device"], "precision": precision or spec.get("precision", "auto"),
               "backend": spec.get("backend", "auto"), "window_seconds": spec.get("window_seconds", 20.0),
               "overlap_seconds": spec.get("overlap_seconds", 2.0), "max_seconds": max(3600.0, spec["seconds"])}
    if spec["preset"] == SHIPPED:
        return Animator(SHIPPED_CHECKPOINT, **options)
    torch.manual_seed(spec.get("seed", 0))
    config = preset(spec["preset"])
    model = JambaTalk(config)
    # The official zero head predicts no motion; small random values make the output non-trivial.
    torch.nn.init.normal_(model.output_map.weight, std=1e-3)
    torch.nn.init.normal_(model.output_map.bias, std=1e-4)
    return Animator(LoadedCheckpoint(model, CheckpointInfo(config=config, name=f"random-{spec['preset']}"), None),
                    **options)


def bench_audio(spec: dict[str, Any]) -> tuple[np.ndarray, int]:
    """The take to animate and its rate: recorded speech at 16 kHz for the shipped model, else the synthetic
    signal at `sample_rate` (44.1 kHz by default, so resampling is timed too)."""
    if spec["preset"] == SHIPPED:
        return recorded_speech(spec["seconds"]), 16000
    rate = int(spec.get("sample_rate", 16000))
    return synth_speech(spec["seconds"], rate, seed=spec.get("seed", 0)), rate


def measure_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Time `animate` on `spec["seconds"]` of audio; meant to run in a fresh process (peak RSS is per process).

    spec keys: preset (a preset or "shipped"), device, seconds, repeats, threads, sample_rate, precision, backend,
    seed, window_seconds, overlap_seconds, accuracy_max_seconds.
    """
    import torch

    from model_core import precision

    threads = int(spec.get("threads") or available_cores())
    torch.set_num_threads(threads)
    device = spec["device"]
    cuda = device.startswith("cuda")
    audio, rate = bench_audio(spec)
    started = time.perf_counter()
    animator = build_animator(spec)
    build_s = time.perf_counter() - started
    baseline_kib = proc_status_kib("VmRSS") or peak_rss_kib()
    cuda_baseline = torch.cuda.memory_allocated() if cuda else 0

    # "Warm" means every window shape has been seen: the first call of a shape builds its oneDNN primitives (bf16
    # and int8 kernels are built per shape on a CPU) or cuDNN/cuBLAS plans; a short warm-up left the first timed
    # run of a long bf16 take far slower than the next.
    animator.animate(audio[: int(min(WARMUP_SECONDS, spec["seconds"]) * rate)], rate)
    if cuda:
        animator.animate(audio, rate)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    peak_scope = "animate" if reset_peak_rss() else "process"
    offsets, runs = timed_runs(lambda: animator.animate(audio, rate), int(spec.get("repeats", 1)),
                               torch.cuda.synchronize if cuda else None)
    # Read the peaks before the output checks below, whose temporaries (|offsets|) are the bench's own.
    peak_kib = peak_rss_kib()
    cuda_peak = torch.cuda.max_memory_allocated() if cuda else 0
    best = runs["best_s"]
    at_best = runs["runs_s"].index(best)
    result: dict[str, Any] = {
        "preset": spec["preset"],
        "device": device,
        "precision": animator.precision,
        "default": animator.precision == precision.resolve(
            animator.device, "auto", precision.accurate_paths(animator.checkpoint.info.provenance)),
        "audio_seconds": round(len(audio) / rate, 3),
        "sample_rate": rate,
        "motion_frames": int(offsets.shape[0]),
        "vertices": int(offsets.shape[1]),
        "fps": animator.fps,
        "windows": _window_count(animator, offsets.shape[0]),
        "repeats": len(runs["runs_s"]),
        "threads": threads,
        "compute_seconds": round(best, 4),
        "compute_seconds_median": round(runs["median_s"], 4),
        "compute_seconds_all": [round(t, 4) for t in runs["runs_s"]],
        "cpu_seconds": round(runs["cpu_runs_s"][at_best], 4),
        "seconds_per_audio_second": round(best / spec["seconds"], 5),
        "realtime_factor": round(spec["seconds"] / best, 3),
        "foreign_load": None if runs["foreign_runs"][at_best] is None else round(runs["foreign_runs"][at_best], 3),
        "build_seconds": round(build_s, 2),
        "output_finite": bool(np.isfinite(offsets).all()),
        "output_max_abs": float(max(np.abs(chunk).max() for chunk in np.array_split(offsets, 64) if chunk.size)),
    }
    # The float32 reference runs last, so neither its memory nor its allocations touch the figures above.
    animator = None
    gc.collect()
    result.update(_errors_against_fp32(spec, offsets, audio, rate, result["precision"]))
    if cuda:
        result["peak_memory_gb"] = round(cuda_peak / GIB, 3)
        result["baseline_memory_gb"] = round(cuda_baseline / GIB, 3)
        result["peak_rss_gb"] = round(peak_kib / 1024**2, 3)
        result["memory_kind"] = "cuda_max_allocated"
    else:
        result["peak_memory_gb"] = round(peak_kib / 1024**2, 3)
        result["baseline_memory_gb"] = round(baseline_kib / 1024**2, 3)
        result["memory_kind"] = f"rss_peak_{peak_scope}"
    return result


def _errors_against_fp32(spec: dict[str, Any], offsets: np.ndarray, audio: np.ndarray, rate: int,
                         path: str) -> dict[str, Any]:
    """Max vertex error of `path`'s output against the float32 path's on the same audio, in mm (offsets are
    metres) and relative to the largest offset; None when the take is longer than the accuracy limit."""
    if path == "fp32":
        return {"max_error_mm": 0.0, "relative_error": 0.0}
    if spec["seconds"] > spec.get("accuracy_max_seconds", ACCURACY_MAX_SECONDS):
        return {"max_error_mm": None, "relative_error": None}
    exact = build_animator(spec, "fp32")
    reference = exact.animate(audio, rate)
    del exact
    gc.collect()
    error_mm = max_vertex_error_mm(offsets, reference)
    return {"max_error_mm": round(error_mm, 5),
            "relative_error": float(f"{error_mm / max_vertex_offset_mm(reference):.3g}")}


def _window_count(animator: Any, total: int) -> int:
    from model_core.windowing import plan_windows

    window = max(1, round(animator.window_seconds * animator.fps))
    return len(plan_windows(total, window, round(animator.overlap_seconds * animator.fps)))


def measure_in_subprocess(spec: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
    """Run `measure_one` in a fresh interpreter and return its result (raises RuntimeError on failure)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    if spec.get("threads"):
        # Set before torch/numpy load: the OpenMP/MKL pools size themselves at import.
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(spec["threads"])
    if spec.get("omp_wait_policy", "inherit") != "inherit":
        # Read by libgomp when it loads, so it only works for a fresh process.
        env["OMP_WAIT_POLICY"] = spec["omp_wait_policy"].upper()
    cmd = [sys.executable, "-m", "model_core.cli", "bench", "--one", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"timed out after {timeout:.0f} s") from exc
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
    raise RuntimeError(f"exit status {proc.returncode}: {tail}")
