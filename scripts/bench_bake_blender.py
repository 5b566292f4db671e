"""Bake benchmark, Blender side: the extension's bake path end to end with the real bpy module.

Builds a FLAME-sized (5023-vertex) mesh in an empty factory scene, makes the same synthetic 5-minute take as
`scripts/bench_bake.py`, and runs exactly what a bake runs once the worker's result is in, without a worker:
`bake_plan.plan_bake` (the pure plan: decompose / resample / reduce) -> `bpy_writers.write_plan`:
* editable basis (SHAPE_KEYS): shape keys, a new Action, one F-curve per key;
* mesh cache: a PC2 file + Mesh Cache modifier;
* character re-bake: a 52-key ARKit character and a 60 s take of ARKit weights with the life layer, planned and
  written again as Re-bake does (the target: under 1 s).
Every repeat starts from a fresh scene. Then the scene is evaluated (depsgraph) on sampled frames, plus the frame
numpy predicts to be worst, and compared with neutral + offsets. Settings are the operator's (`BakeOptions`).
Targets: shape-key bake <= 3 s, PC2 mode <= 1 s, character re-bake < 1 s. Prints a table; the JSON
(default bench_results/bake_blender.json) keeps one entry per bpy version and settings.

    .venv-blender/bin/python scripts/bench_bake_blender.py [--seconds 300] [--repeats 3] [--fps 30]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# bpy writes its user config (extension repos, prefs) here: keep it out of ~/.config.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="jt-bench-user-"))

import bpy  # noqa: E402  (after the environment above)
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jambatalk_blender import bake_apply, bpy_writers, compat  # noqa: E402
from jambatalk_blender.core import bake_math, keyframes, timing  # noqa: E402
from jambatalk_blender.core.bake_plan import BakeOptions, clear_cache, plan_bake  # noqa: E402
from jambatalk_blender.core.life import LifeSettings  # noqa: E402
from jambatalk_blender.core.names import ARKIT_52  # noqa: E402
from jambatalk_blender.core.take import Take  # noqa: E402
from model_core.bench.probes import busy_jiffies, cpu_model, foreign_share  # noqa: E402  (torch-free module)
from scripts.bench_bake import MODEL_FPS, TARGET_BAKE_S, TARGET_PC2_S, synthetic_take  # noqa: E402

FIRST_FRAME = 1.0  # scene frame of the take's first sample (a strip starting at frame 1)
TAKE = "bench"
REBAKE_SECONDS = 60.0
TARGET_REBAKE_S = 1.0


# -- scene ---------------------------------------------------------------------------------------------------
def fresh_head(head: np.ndarray, fps: int, frames: int) -> bpy.types.Object:
    """An empty factory scene at ``fps`` holding one active mesh object with ``head``'s vertices (no faces:
    nothing in a bake depends on them)."""
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    scene.frame_start, scene.frame_end = int(FIRST_FRAME), int(FIRST_FRAME) + frames - 1
    mesh = bpy.data.meshes.new("head")
    mesh.vertices.add(head.shape[0])
    mesh.vertices.foreach_set("co", np.ascontiguousarray(head, dtype=np.float32).ravel())
    mesh.update()
    obj = bpy.data.objects.new("head", mesh)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj


@contextlib.contextmanager
def time_calls(targets: dict[str, tuple[Any, str]]) -> Iterator[dict[str, float]]:
    """Seconds spent in each ``module.function`` of ``targets`` ({slot: (module, name)}) while inside. The bpy
    writers look these helpers up on their modules at call time, so wrapping the module attribute sees them."""
    spent = dict.fromkeys(targets, 0.0)
    originals = {slot: getattr(module, name) for slot, (module, name) in targets.items()}

    def timed_call(fn: Callable, slot: str) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[slot] += time.perf_counter() - t0
        return wrapper

    for slot, (module, name) in targets.items():
        setattr(module, name, timed_call(originals[slot], slot))
    try:
        yield spent
    finally:
        for slot, (module, name) in targets.items():
            setattr(module, name, originals[slot])


class Laps:
    """Wall and CPU seconds (this process, all its threads) of consecutive stages."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._t, self._c = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        t, c = time.perf_counter(), time.process_time()
        self.wall[name], self.cpu[name] = t - self._t, c - self._c
        self._t, self._c = t, c


# -- the two modes, as BakeJob.apply runs them ---------------------------------------------------------------
SUB = "  "  # stage names starting with this are parts of the stage above them, not added to the total


def shape_key_bake(obj: bpy.types.Object, scene: bpy.types.Scene, offsets: np.ndarray,
                   settings: BakeOptions) -> tuple[dict, Laps, bake_math.Basis, np.ndarray, list]:
    """(summary, stage laps, basis, scene-rate weights, curves): the bake's SHAPE_KEYS path (plan, then write)."""
    laps = Laps()
    scene_fps = timing.effective_fps(scene.render.fps, scene.render.fps_base)
    clear_cache()  # a fresh bake: the decomposition is not cached yet
    take = Take(TAKE, "vertices", offsets, MODEL_FPS, FIRST_FRAME)
    plan = plan_bake(take, [bake_apply.target_mesh(obj)], settings, scene_fps, f"JT_{TAKE}_001")
    laps.lap("plan (decompose, resample, reduce)")
    parts = {f"{SUB}shape keys": (compat, "add_shape_key"), f"{SUB}F-curves": (compat, "write_fcurve")}
    with time_calls(parts) as spent:
        info = bpy_writers.write_plan(plan, [obj])
    laps.lap("bpy write")
    laps.wall.update(spent)
    laps.wall[f"{SUB}rest (Action, slot...)"] = laps.wall["bpy write"] - sum(spent.values())
    # For the checks only (not timed): the same decomposition, and the plan's keys as reduced curves.
    basis = bake_math.decompose(offsets, variance_target=settings.variance_target, max_keys=settings.max_keys,
                                error_tolerance_m=settings.tolerance_m)
    weights = timing.resample_to_scene(basis.weights, MODEL_FPS, scene_fps)
    curves = [keyframes.KeyCurve(np.rint(c.frames - FIRST_FRAME).astype(np.int64), c.values)
              for c in plan.objects[0].curves]
    return info, laps, basis, weights, curves


def pc2_bake(obj: bpy.types.Object, scene: bpy.types.Scene, offsets: np.ndarray) -> tuple[dict, Laps, np.ndarray]:
    """(summary, stage laps, scene-rate offsets): the bake's MESH_CACHE path (plan, then write)."""
    laps = Laps()
    scene_fps = timing.effective_fps(scene.render.fps, scene.render.fps_base)
    take = Take(TAKE, "vertices", offsets, MODEL_FPS, FIRST_FRAME)
    plan = plan_bake(take, [bake_apply.target_mesh(obj)], BakeOptions(mode="MESH_CACHE"), scene_fps,
                     f"JT_{TAKE}_001")
    laps.lap("plan (resample)")
    with time_calls({f"{SUB}PC2 file (fsync'd)": (bpy_writers, "write_pc2")}) as spent:
        info = bpy_writers.write_plan(plan, [obj])
    laps.lap("bpy write")
    laps.wall.update(spent)
    laps.wall[f"{SUB}modifier + rest"] = laps.wall["bpy write"] - sum(spent.values())
    return info, laps, plan.objects[0].mesh_cache


def character_weights(seconds: float, seed: int = 0) -> np.ndarray:
    """(T, 52) smooth speech-rate ARKit weights in [0, 1] at the model's rate (a stand-in for the worker's)."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * MODEL_FPS)
    t = np.arange(frames)[:, None] / MODEL_FPS
    rates = rng.uniform(1.0, 5.0, (1, 52))
    phases = rng.uniform(0, 2 * np.pi, (1, 52))
    return (0.5 + 0.45 * np.sin(2 * np.pi * rates * t + phases)).astype(np.float32)


def character_rebake(obj: bpy.types.Object, scene: bpy.types.Scene, seconds: float) -> tuple[dict, Laps]:
    """A Character Shape Keys bake, then Re-bake's work with new settings: plan + remove + write, timed."""
    scene_fps = timing.effective_fps(scene.render.fps, scene.render.fps_base)
    take = Take("rebake", "weights", character_weights(seconds), MODEL_FPS, FIRST_FRAME, channels=ARKIT_52)
    target = [bake_apply.target_mesh(obj)]
    life = LifeSettings(seed=1)
    bpy_writers.write_plan(plan_bake(take, target, BakeOptions(life=life), scene_fps, "JT_rebake_001"), [obj])
    laps = Laps()
    plan = plan_bake(take, target, BakeOptions(strength=0.7, smoothing_s=0.04, life=LifeSettings(seed=2)),
                     scene_fps, "JT_rebake_001")
    laps.lap("plan (smooth, map, life, reduce)")
    bpy_writers.remove_bake("JT_rebake_001", "rebake", [obj])
    info = bpy_writers.write_plan(plan, [obj])
    laps.lap("bpy write")
    return info, laps


# -- checking what Blender shows -----------------------------------------------------------------------------
def frame_errors(shown: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(F,) largest vertex distance per frame between two (F, V, 3) arrays, metres."""
    diff = shown.astype(np.float64) - reference
    return np.sqrt(np.square(diff).sum(axis=2)).max(axis=1)


def predicted_errors(curves: list, shapes: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(F,) what the reduced LINEAR keys should show vs ``reference`` (F, V, 3) per frame, from numpy."""
    frames = reference.shape[0]
    weights = np.stack([keyframes.evaluate_linear(c.indices, c.values, frames) for c in curves], axis=1)
    flat = shapes.reshape(shapes.shape[0], -1).astype(np.float32)
    out = np.empty(frames)
    for s in range(0, frames, 512):
        mesh = (weights[s:s + 512].astype(np.float32) @ flat).reshape(-1, shapes.shape[1], 3)
        out[s:s + 512] = frame_errors(mesh, reference[s:s + 512])
    return out


def sample_indices(frames: int, count: int, extra: list[int]) -> np.ndarray:
    """``count`` evenly spaced take indices (first and last included) plus ``extra``, sorted and unique."""
    even = np.linspace(0, frames - 1, max(2, count)).round().astype(np.int64)
    return np.unique(np.r_[even, np.asarray(extra, dtype=np.int64)])


def shown_offsets(obj: bpy.types.Object, neutral: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, float]:
    """((n, V, 3) evaluated offsets from ``neutral`` at take ``indices``, mean seconds per frame_set+evaluate)."""
    scene = bpy.context.scene
    out = np.empty((indices.size, *neutral.shape), dtype=np.float32)
    t0 = time.perf_counter()
    for row, i in enumerate(indices):
        scene.frame_set(int(FIRST_FRAME) + int(i))
        out[row] = compat.evaluated_coordinates(obj, bpy.context.evaluated_depsgraph_get()) - neutral
    return out, (time.perf_counter() - t0) / max(1, indices.size)


def keyframes_in_blender(obj: bpy.types.Object) -> int:
    """Keyframe points actually stored in the Action on the mesh's Key."""
    action = obj.data.shape_keys.animation_data.action
    return int(sum(len(fc.keyframe_points) for fc in compat.action_fcurves(action)))


# -- the benchmark -------------------------------------------------------------------------------------------
def summarise(runs: list[dict[str, float]]) -> dict[str, dict]:
    """Per stage: best, median and every run's seconds."""
    return {name: {"best_s": min(r[name] for r in runs), "median_s": statistics.median(r[name] for r in runs),
                   "runs_s": [r[name] for r in runs]} for name in runs[0]}


def with_total(stages: dict[str, float]) -> dict[str, float]:
    return {**stages, "total": sum(v for k, v in stages.items() if not k.startswith(SUB))}


def measure(mode: str, repeats: int, take: np.ndarray, head: np.ndarray, fps: int, scratch: Path,
            settings: BakeOptions) -> tuple[dict, Any, bpy.types.Object]:
    """Run one mode ``repeats`` times, each from a fresh scene: (timings, last result, object)."""
    frames = timing.scene_frame_count(take.shape[0], MODEL_FPS, fps)
    wall, cpu, shares, result, obj = [], [], [], None, None
    for _ in range(repeats):
        obj = fresh_head(head, fps, frames)
        if mode == "MESH_CACHE":  # the cache goes next to the .blend, so it must be saved
            bpy.ops.wm.save_as_mainfile(filepath=str(scratch / "bench.blend"))
            obj = bpy.data.objects["head"]
        result = None  # free the previous run's arrays first
        j0, cpu0 = busy_jiffies(), time.process_time()
        if mode == "SHAPE_KEYS":
            result = shape_key_bake(obj, bpy.context.scene, take, settings)
        else:
            result = pc2_bake(obj, bpy.context.scene, take)
        shares.append(foreign_share(j0, busy_jiffies(), time.process_time() - cpu0))
        wall.append(with_total(result[1].wall))
        cpu.append(with_total(result[1].cpu))
    return {"wall": summarise(wall), "cpu": summarise(cpu), "foreign_share": shares}, result, obj


def check_shape_keys(obj: bpy.types.Object, head: np.ndarray, reference: np.ndarray, result: tuple,
                     samples: int) -> dict:
    """Compare what Blender shows with the take and with the unreduced keys; count the keyframes."""
    info, _, basis, weights, curves = result
    predicted = predicted_errors(curves, basis.shapes, reference)
    worst = int(predicted.argmax())
    idx = sample_indices(reference.shape[0], samples, [worst])
    shown, eval_s = shown_offsets(obj, head, idx)
    unreduced = (weights[idx] @ basis.shapes.reshape(basis.n_keys, -1)).reshape(shown.shape)
    return {
        "n_keys_K": basis.n_keys, "explained": basis.explained_total,
        "keyframes_written": info["keyframes"], "keyframes_in_blender": keyframes_in_blender(obj),
        "keyframes_unreduced": int(weights.shape[0] * basis.n_keys),
        "frames_checked": int(idx.size), "worst_predicted_frame": worst,
        "error_max_m_blender_vs_take": float(frame_errors(shown, reference[idx]).max()),
        "error_max_m_predicted_vs_take": float(predicted.max()),
        "error_max_m_decomposition": float(basis.error_max_m),
        "error_max_m_blender_vs_unreduced_keys": float(frame_errors(shown, unreduced).max()),
        "eval_ms_per_frame": 1e3 * eval_s,
    }


def check_pc2(obj: bpy.types.Object, head: np.ndarray, result: tuple, samples: int) -> dict:
    """Compare what the Mesh Cache modifier shows with the take on sampled frames."""
    info, _, resampled = result
    idx = sample_indices(resampled.shape[0], samples, [])
    shown, eval_s = shown_offsets(obj, head, idx)
    return {"frames_written": info["frames"], "pc2_bytes": os.path.getsize(info["abspath"]),
            "frames_checked": int(idx.size),
            "error_max_m_blender_vs_take": float(frame_errors(shown, resampled[idx]).max()),
            "eval_ms_per_frame": 1e3 * eval_s}


def measure_rebake(repeats: int, head: np.ndarray, fps: int) -> dict:
    """Re-bake of a 60 s Character Shape Keys take on a 52-key character of ``head``'s size, ``repeats`` times."""
    wall, cpu, keys = [], [], 0
    rng = np.random.default_rng(1)
    for _ in range(repeats):
        obj = fresh_head(head, fps, int(REBAKE_SECONDS * fps))
        obj.shape_key_add(name="Basis", from_mix=False)
        for name in ARKIT_52:  # the keys' shapes do not matter to the bake, only their names and ranges
            compat.add_shape_key(obj, name, head + rng.normal(0, 1e-3, head.shape).astype(np.float32))
        info, laps = character_rebake(obj, bpy.context.scene, REBAKE_SECONDS)
        keys = info["keyframes"]
        wall.append(with_total(laps.wall))
        cpu.append(with_total(laps.cpu))
    return {"wall": summarise(wall), "cpu": summarise(cpu), "check": {"keyframes_written": keys,
                                                                       "seconds": REBAKE_SECONDS}}


def run(seconds: float, repeats: int, fps: int, samples: int, settings: BakeOptions,
        scratch: Path) -> dict:
    t0 = time.perf_counter()
    take, head = synthetic_take(seconds)
    print(f"bpy {bpy.app.version_string}: take {take.shape[0]} frames x {take.shape[1]} vertices, built in "
          f"{time.perf_counter() - t0:.1f} s; scene at {fps} fps", flush=True)
    reference = timing.resample_to_scene(take, MODEL_FPS, fps)
    modes: dict[str, dict] = {}
    for mode in ("SHAPE_KEYS", "MESH_CACHE"):
        load_before = os.getloadavg()
        timings, result, obj = measure(mode, repeats, take, head, fps, scratch, settings)
        load_after = os.getloadavg()
        check = (check_shape_keys(obj, head, reference, result, samples) if mode == "SHAPE_KEYS"
                 else check_pc2(obj, head, result, samples))
        modes[mode] = {**timings, "check": check, "loadavg_before": load_before, "loadavg_after": load_after}
        print(f"  {mode}: best total {timings['wall']['total']['best_s']:.3f} s", flush=True)
    modes["CHARACTER_REBAKE"] = measure_rebake(repeats, head, fps)
    print(f"  CHARACTER_REBAKE: best total {modes['CHARACTER_REBAKE']['wall']['total']['best_s']:.3f} s", flush=True)
    return {
        "bpy": bpy.app.version_string,
        "take": {"seconds": seconds, "model_frames": int(take.shape[0]), "vertices": int(take.shape[1]),
                 "model_fps": MODEL_FPS, "scene_fps": fps, "scene_frames": int(reference.shape[0])},
        "settings": {"variance_target": settings.variance_target, "max_keys": settings.max_keys,
                     "tolerance_m": settings.tolerance_m, "k_by_tolerance": True},
        "targets_s": {"SHAPE_KEYS": TARGET_BAKE_S, "MESH_CACHE": TARGET_PC2_S,
                      "CHARACTER_REBAKE": TARGET_REBAKE_S},
        "modes": modes,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__},
    }


def stage_lines(m: dict, target: float) -> list[str]:
    lines = [f"  {'stage':30s} {'best s':>8s} {'median s':>9s} {'cpu s':>7s}"]
    for name, s in m["wall"].items():
        cpu = m["cpu"].get(name)
        cpu_text = f"{cpu['median_s']:7.3f}" if cpu else " " * 7
        verdict = f"   {'ok' if s['best_s'] <= target else 'OVER'} (target <= {target:g} s)"
        lines.append(f"  {name:30s} {s['best_s']:8.3f} {s['median_s']:9.3f} {cpu_text}"
                     f"{verdict if name == 'total' else ''}")
    return lines


def check_lines(mode: str, c: dict, tolerance_m: float) -> list[str]:
    if mode == "CHARACTER_REBAKE":
        return [f"  {c['seconds']:g} s take, 52 ARKit keys + life layer: {c['keyframes_written']} keyframes written"]
    if mode == "MESH_CACHE":
        return [f"  {c['frames_written']} frames, {c['pc2_bytes'] / 2**20:.0f} MiB; max error on "
                f"{c['frames_checked']} evaluated frames: {1e3 * c['error_max_m_blender_vs_take']:.6f} mm",
                f"  depsgraph evaluation: {c['eval_ms_per_frame']:.1f} ms per frame"]
    return [
        f"  K = {c['n_keys_K']} keys ({100 * c['explained']:.3f} % of the energy); keyframes "
        f"{c['keyframes_in_blender']} in Blender of {c['keyframes_unreduced']} unreduced "
        f"({100 * c['keyframes_in_blender'] / c['keyframes_unreduced']:.1f} %)",
        f"  max error on {c['frames_checked']} evaluated frames (incl. the worst): vs take "
        f"{1e3 * c['error_max_m_blender_vs_take']:.4f} mm (numpy, all frames: "
        f"{1e3 * c['error_max_m_predicted_vs_take']:.4f} mm; decomposition alone "
        f"{1e3 * c['error_max_m_decomposition']:.4f} mm)",
        f"  vs the unreduced keys {1e3 * c['error_max_m_blender_vs_unreduced_keys']:.4f} mm "
        f"(tolerance {1e3 * tolerance_m:.3f} mm); depsgraph evaluation {c['eval_ms_per_frame']:.1f} ms per frame",
    ]


def table(report: dict) -> str:
    t, st = report["take"], report["settings"]
    lines = [f"bpy {report['bpy']}: {t['scene_frames']} scene frames at {t['scene_fps']} fps, {t['vertices']} "
             f"vertices; variance target {st['variance_target']}, max {st['max_keys']} keys, K by tolerance: "
             f"{'yes' if st.get('k_by_tolerance') else 'no'}",
             "cpu s = median CPU seconds of this process (all threads)"]
    for mode, m in report["modes"].items():
        if "loadavg_after" in m:
            load = ", ".join(f"{x:.2f}" for x in m["loadavg_after"])
            busy = [s for s in m["foreign_share"] if s is not None]
            busy_text = f"; other processes used {100 * statistics.mean(busy):.0f} % of the CPUs" if busy else ""
            lines += ["", f"{mode} (load average before: {m['loadavg_before'][0]:.2f}, after: {load}{busy_text})"]
        else:
            lines += ["", mode]
        lines += stage_lines(m, report["targets_s"][mode])
        lines += check_lines(mode, m["check"], st["tolerance_m"])
    return "\n".join(lines)


def save(report: dict, out: Path) -> None:
    """Merge this report into ``out`` (one entry per bpy version, take and settings)."""
    existing: dict = {}
    if out.is_file():
        with contextlib.suppress(ValueError):
            existing = json.loads(out.read_text(encoding="utf-8"))
    runs = existing.get("runs", {}) if isinstance(existing.get("runs"), dict) else {}
    t, st = report["take"], report["settings"]
    rule = ", K by tolerance" if st.get("k_by_tolerance") else ""
    runs[f"bpy {report['bpy']}, {t['seconds']:g} s at {t['scene_fps']} fps, variance target "
         f"{st['variance_target']}{rule}"] = report
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"runs": runs}, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    defaults = BakeOptions(mode="SHAPE_KEYS")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="take length (default 5 minutes)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fps", type=int, default=30, help="scene frame rate (the model runs at 30)")
    parser.add_argument("--samples", type=int, default=24, help="evenly spaced frames to evaluate in Blender")
    parser.add_argument("--tolerance", type=float, default=defaults.tolerance_m, help="metres")
    parser.add_argument("--variance-target", type=float, default=defaults.variance_target)
    parser.add_argument("--max-keys", type=int, default=defaults.max_keys)
    parser.add_argument("--out", type=Path, default=ROOT / "bench_results" / "bake_blender.json")
    args = parser.parse_args(argv)
    settings = BakeOptions(mode="SHAPE_KEYS", tolerance_m=args.tolerance, variance_target=args.variance_target,
                            max_keys=args.max_keys)
    with tempfile.TemporaryDirectory(prefix="jt-bench-bake-") as scratch:
        report = run(args.seconds, max(1, args.repeats), args.fps, args.samples, settings, Path(scratch))
        bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)  # let go of the scratch .blend
    print(table(report))
    save(report, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
