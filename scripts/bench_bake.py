"""Bake benchmark (pure-Python part): a synthetic 5-minute FLAME-sized take through the extension's bake maths.

Stages timed: resampling the take to the scene rate (30 -> 30 and 30 -> 24 fps), decomposition into shape keys,
keyframe reduction (0.1 mm), and PC2 writing, each with wall and CPU seconds (this process, all threads: BLAS
threads spinning count too) and the machine's load. Defaults are the bake's (`BakeSettings`: 99.9 % energy,
at most 64 keys, 0.1 mm); as the bake does, the run also passes the tolerance to the decomposition
(``error_tolerance_m``), which chooses K by the animator's tolerance as well. The bpy writes (shape keys,
F-curves, Mesh Cache) are timed by scripts/bench_bake_blender.py under bpy. Targets from the issue: shape-key
bake (decomposition + reduction, as the bake calls it: with the shapes) <= 3 s, PC2 mode (resampling +
writing) <= 1 s. Prints a table and writes JSON (default bench_results/bake.json).

    python scripts/bench_bake.py [--seconds 300] [--repeats 3] [--k-by-variance-only] [--out bench_results/bake.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jambatalk_blender.core import bake_math, keyframes, mesh_cache, timing  # noqa: E402
from model_core.bench import cpu_model, timed_runs  # noqa: E402

MODEL_FPS = 30.0
VERTICES = 5023  # FLAME
TARGET_BAKE_S = 3.0
TARGET_PC2_S = 1.0
# BakeSettings' defaults (jambatalk_blender/bake_job.py, which needs bpy to import).
DEFAULT_VARIANCE_TARGET = 0.999
DEFAULT_MAX_KEYS = 64


# -- the synthetic take --------------------------------------------------------------------------------------
def synthetic_head(vertices: int, rng: np.random.Generator) -> np.ndarray:
    """(V, 3) points on a head-sized ellipsoid, metres (a stand-in for the FLAME template)."""
    directions = rng.standard_normal((vertices, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return (directions * np.array([0.075, 0.10, 0.09])).astype(np.float32)


def deformation_fields(head: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, V, 3) smooth fields around the mouth: Gaussian bumps times smoothly varying directions."""
    mouth = np.array([0.0, -0.04, 0.08])
    fields = np.empty((count, *head.shape), dtype=np.float32)
    for i in range(count):
        centre = mouth + rng.normal(0.0, 0.03, 3)
        width = rng.uniform(0.015, 0.04)
        bump = np.exp(-np.square(head - centre).sum(axis=1) / (2 * width * width))
        field = bump[:, None] * (rng.standard_normal(3) + head @ (10.0 * rng.standard_normal((3, 3))))
        fields[i] = field * (5e-3 * 0.85**i / np.abs(field).max())  # 5 mm jaw-like first field, then smaller
    return fields


def speech_weights(frames: int, count: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """(F, count) weights in [-1, 1]: band-limited 2-8 Hz motion, 0.3-2 Hz drift, and 0.3-1.5 s pauses."""
    freqs = np.fft.rfftfreq(frames, 1.0 / fps)
    band = ((freqs >= 2.0) & (freqs <= 8.0)) + 0.3 * ((freqs > 0.3) & (freqs < 2.0))
    spectrum = rng.standard_normal((count, freqs.size)) + 1j * rng.standard_normal((count, freqs.size))
    weights = np.fft.irfft(spectrum * band, n=frames, axis=1)
    weights /= np.abs(weights).max(axis=1, keepdims=True)
    talking = np.ones(frames)
    start = 0
    while start < frames:
        talk, pause = int(rng.uniform(2.0, 8.0) * fps), int(rng.uniform(0.3, 1.5) * fps)
        talking[start + talk:start + talk + pause] = 0.0
        start += talk + pause
    ramp = np.hanning(7)
    talking = np.convolve(talking, ramp / ramp.sum(), mode="same")  # ~0.2 s fades in and out of pauses
    talking[talking < 1e-3] = 0.0
    return (weights * talking).T.astype(np.float32)


def synthetic_take(seconds: float, fields: int = 20, noise_m: float = 1e-5,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """((F, V, 3) float32 offsets at 30 fps, (V, 3) rest head)."""
    rng = np.random.default_rng(seed)
    frames = int(round(seconds * MODEL_FPS))
    head = synthetic_head(VERTICES, rng)
    shapes = deformation_fields(head, fields, rng).reshape(fields, -1)
    take = (speech_weights(frames, fields, MODEL_FPS, rng) @ shapes).reshape(frames, VERTICES, 3)
    for s in range(0, frames, 1000):  # sensor-like noise, in blocks to keep memory flat
        block = take[s:s + 1000]
        block += rng.standard_normal(block.shape, dtype=np.float32) * np.float32(noise_m)
    return take, head


# -- measuring -----------------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, dict]:
    """Run fn `repeats` times: (last result, {best_s, median_s, runs_s, cpu_*, foreign_share, loadavg})."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result, runs = timed_runs(fn, repeats)
    cpus, foreign = runs["cpu_runs_s"], [share for share in runs["foreign_runs"] if share is not None]
    info = {"best_s": runs["best_s"], "median_s": runs["median_s"], "runs_s": runs["runs_s"],
            "cpu_best_s": min(cpus), "cpu_median_s": statistics.median(cpus), "cpu_runs_s": cpus,
            "foreign_share": statistics.mean(foreign) if foreign else None, "loadavg_1min_before": load}
    return result, info


def reduced_weights(curves: list, frames: int) -> np.ndarray:
    """(F, K) weights the reduced LINEAR keys show at every frame."""
    return np.stack([keyframes.evaluate_linear(c.indices, c.values, frames) for c in curves], axis=1)


def shape_key_error(weights: np.ndarray, shapes: np.ndarray, reference: np.ndarray | None) -> float:
    """Largest vertex distance (metres) between weights @ shapes and the reference take (or zero offsets)."""
    flat = shapes.reshape(shapes.shape[0], -1).astype(np.float32)
    weights = weights.astype(np.float32)
    worst = 0.0
    for s in range(0, weights.shape[0], 512):
        mesh = (weights[s:s + 512] @ flat).reshape(-1, shapes.shape[1], 3)
        target = np.zeros_like(mesh) if reference is None else reference[s:s + 512]
        worst = max(worst, bake_math.max_vertex_error(mesh, target))
    return worst


def reduction_error(weights: np.ndarray, curves: list, shapes: np.ndarray) -> float:
    """Largest vertex distance between the unreduced and the reduced shape-key mesh over the take (metres)."""
    return shape_key_error(reduced_weights(curves, weights.shape[0]) - weights, shapes, None)


def total_error(take: np.ndarray, curves: list, shapes: np.ndarray) -> float:
    """Largest vertex distance between the original take and what the reduced keys show (metres)."""
    return shape_key_error(reduced_weights(curves, take.shape[0]), shapes, take)


# -- the benchmark -------------------------------------------------------------------------------------------
def run(seconds: float, repeats: int, tolerance: float, target: float, max_keys: int, k_by_tolerance: bool,
        out_dir: Path) -> dict:
    t0 = time.perf_counter()
    take, head = synthetic_take(seconds)
    frames = take.shape[0]
    print(f"synthetic take: {frames} frames x {VERTICES} vertices ({take.nbytes / 2**20:.0f} MiB), "
          f"built in {time.perf_counter() - t0:.1f} s", flush=True)
    stages: dict[str, dict] = {}
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    k_rule = {"error_tolerance_m": tolerance} if k_by_tolerance else {}

    _, stages["resample_30_to_30"] = timed(lambda: timing.resample_to_scene(take, MODEL_FPS, 30.0), repeats)
    at24, stages["resample_30_to_24"] = timed(lambda: timing.resample_to_scene(take, MODEL_FPS, 24.0), repeats)
    frames24 = at24.shape[0]

    basis, stages["decompose"] = timed(
        lambda: bake_math.decompose(take, variance_target=target, max_keys=max_keys, **k_rule), repeats)
    _, stages["decompose_no_error_pass"] = timed(
        lambda: bake_math.decompose(take, variance_target=target, max_keys=max_keys, measure_error=False,
                                    **k_rule), repeats)
    scales = basis.scales
    curves, stages["keyframes_30fps"] = timed(
        lambda: keyframes.reduce_keyframes(basis.weights, scales, tolerance), repeats)
    weights24, stages["resample_weights_30_to_24"] = timed(
        lambda: timing.resample_to_scene(basis.weights, MODEL_FPS, 24.0), repeats)
    curves24, stages["keyframes_24fps_with_shapes"] = timed(
        lambda: keyframes.reduce_keyframes(weights24, scales, tolerance, shapes=basis.shapes), repeats)
    curves_tight, stages["keyframes_30fps_with_shapes"] = timed(
        lambda: keyframes.reduce_keyframes(basis.weights, scales, tolerance, shapes=basis.shapes), repeats)
    _, stages["keyframes_30fps_adaptive"] = timed(
        lambda: keyframes.reduce_keyframes(basis.weights, scales, tolerance, split="adaptive"), repeats)
    adaptive = keyframes.reduce_keyframes(basis.weights, scales, tolerance, split="adaptive")

    with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
        pc2 = Path(scratch) / "take.pc2"
        _, stages["pc2_write_30fps"] = timed(lambda: mesh_cache.write_pc2(pc2, take, 1.0, rest=head), repeats)
        pc2_bytes = pc2.stat().st_size
        _, stages["pc2_write_24fps"] = timed(lambda: mesh_cache.write_pc2(pc2, at24, 1.0, rest=head), repeats)
        _, stages["pc2_write_30fps_no_fsync"] = timed(
            lambda: mesh_cache.write_pc2(pc2, take, 1.0, rest=head, durable=False), repeats)

    # The bake reduces with the shapes (BakeJob.apply): those stages make the shape-key totals.
    parts = {
        "shape_key_bake_30fps_s": ["decompose", "keyframes_30fps_with_shapes"],
        "shape_key_bake_24fps_s": ["decompose", "resample_weights_30_to_24", "keyframes_24fps_with_shapes"],
        "pc2_mode_30fps_s": ["resample_30_to_30", "pc2_write_30fps"],
        "pc2_mode_24fps_s": ["resample_30_to_24", "pc2_write_24fps"],
    }

    def total(key: str) -> dict[str, float]:
        return {name: sum(stages[stage][key] for stage in names) for name, names in parts.items()}

    keys = {
        "n_keys_K": basis.n_keys,
        "explained": basis.explained_total,
        "decomposition_error_max_m": basis.error_max_m,
        "keys_written_30fps": keyframes.total_keys(curves),
        "keys_unreduced_30fps": frames * basis.n_keys,
        "keys_written_30fps_with_shapes": keyframes.total_keys(curves_tight),
        "keys_written_30fps_adaptive": keyframes.total_keys(adaptive),
        "keys_written_24fps_with_shapes": keyframes.total_keys(curves24),
        "keys_unreduced_24fps": frames24 * basis.n_keys,
        "tolerance_m": tolerance,
        "reduction_error_max_m": reduction_error(basis.weights, curves, basis.shapes),
        "reduction_error_max_m_with_shapes": reduction_error(basis.weights, curves_tight, basis.shapes),
        "reduction_error_max_m_24fps": reduction_error(weights24, curves24, basis.shapes),
        "total_error_max_m_30fps": total_error(take, curves, basis.shapes),
        "total_error_max_m_30fps_with_shapes": total_error(take, curves_tight, basis.shapes),
        "slider_min": float(basis.weight_min.min()),
        "slider_max": float(basis.weight_max.max()),
    }
    return {
        "take": {"seconds": seconds, "frames": frames, "vertices": VERTICES, "model_fps": MODEL_FPS,
                 "frames_24fps": frames24, "pc2_bytes": pc2_bytes},
        "settings": {"variance_target": target, "max_keys": max_keys, "tolerance_m": tolerance,
                     "k_by_tolerance": k_by_tolerance},
        "stages": stages,
        "totals_best_s": total("best_s"),
        "totals_median_s": total("median_s"),
        "totals_cpu_median_s": total("cpu_median_s"),
        "targets_s": {"shape_key_bake": TARGET_BAKE_S, "pc2_mode": TARGET_PC2_S},
        "result": keys,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "loadavg_before": load_before,
                    "loadavg_after": os.getloadavg() if hasattr(os, "getloadavg") else None},
    }


def table(report: dict) -> str:
    st = report["settings"]
    lines = [f"variance target {st['variance_target']}, max {st['max_keys']} keys, tolerance "
             f"{1e3 * st['tolerance_m']:g} mm, K by tolerance: {'yes' if st['k_by_tolerance'] else 'no'}",
             f"{'stage':34s} {'best s':>8s} {'median s':>9s} {'cpu s':>7s} {'busy':>6s} {'load':>5s}"]
    for name, s in report["stages"].items():
        busy = "" if s["foreign_share"] is None else f"{100 * s['foreign_share']:.0f}%"
        load = "" if s["loadavg_1min_before"] is None else f"{s['loadavg_1min_before']:.1f}"
        lines.append(f"{name:34s} {s['best_s']:8.3f} {s['median_s']:9.3f} {s['cpu_median_s']:7.3f} {busy:>6s}"
                     f" {load:>5s}")
    lines.append("")
    targets = {"shape_key_bake": report["targets_s"]["shape_key_bake"], "pc2_mode": report["targets_s"]["pc2_mode"]}
    for name, value in report["totals_best_s"].items():
        target = targets["pc2_mode" if name.startswith("pc2") else "shape_key_bake"]
        median, cpu = report["totals_median_s"][name], report["totals_cpu_median_s"][name]
        verdict = "ok" if value <= target else "OVER"
        lines.append(f"{name:34s} {value:8.3f} {median:9.3f} {cpu:7.3f}  target <= {target:g} s: {verdict}")
    r = report["result"]
    lines += [
        "",
        f"K = {r['n_keys_K']} keys, {100 * r['explained']:.3f} % of the energy, "
        f"decomposition error {1e3 * r['decomposition_error_max_m']:.4f} mm; sliders [{r['slider_min']:.3f}, "
        f"{r['slider_max']:.3f}]",
        f"keys written (30 fps, with shapes as the bake): {r['keys_written_30fps_with_shapes']} of "
        f"{r['keys_unreduced_30fps']} ({100 * r['keys_written_30fps_with_shapes'] / r['keys_unreduced_30fps']:.1f}"
        f" %); scales only {r['keys_written_30fps']}; adaptive split {r['keys_written_30fps_adaptive']}",
        f"keys written (24 fps, with shapes): {r['keys_written_24fps_with_shapes']} of {r['keys_unreduced_24fps']} "
        f"({100 * r['keys_written_24fps_with_shapes'] / r['keys_unreduced_24fps']:.1f} %)",
        f"reduction error {1e3 * r['reduction_error_max_m_with_shapes']:.4f} mm with shapes (scales only "
        f"{1e3 * r['reduction_error_max_m']:.4f} mm, 24 fps {1e3 * r['reduction_error_max_m_24fps']:.4f}"
        f" mm) vs tolerance {1e3 * r['tolerance_m']:.3f} mm; take -> reduced keys "
        f"{1e3 * r['total_error_max_m_30fps_with_shapes']:.4f} mm (scales only "
        f"{1e3 * r['total_error_max_m_30fps']:.4f} mm)",
        "cpu s = median CPU seconds of this process (all threads); busy = CPU share used by other processes "
        "during the stage; load = 1-minute load average before it (high values make timings pessimistic).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="take length (default 5 minutes)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=keyframes.DEFAULT_TOLERANCE_M, help="metres")
    parser.add_argument("--variance-target", type=float, default=DEFAULT_VARIANCE_TARGET)
    parser.add_argument("--max-keys", type=int, default=DEFAULT_MAX_KEYS)
    parser.add_argument("--k-by-variance-only", dest="k_by_tolerance", action="store_false",
                        help="choose K by the variance target alone (the bake also uses the tolerance)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench_results" / "bake.json")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = run(args.seconds, max(1, args.repeats), args.tolerance, args.variance_target, args.max_keys,
                 args.k_by_tolerance, args.out.parent)
    print(table(report))
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
