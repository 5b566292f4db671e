"""`jambatalk bench`: inference speed and peak memory of `Animator.animate`, as a table and a JSON file.

Every (preset, device, duration) is measured in a fresh child process (`python -m model_core.cli bench --one
SPEC`), so its peak RSS belongs to that measurement alone. The child builds the network with random
weights (timing does not depend on trained values), synthesises a deterministic speech-like signal,
warms up once on a short clip and then times `animate` end to end: audio preparation (resampling,
normalisation), windowing, the network and assembling the (T, V, 3) output.

The machine this runs on may be shared, so each measurement also records how much CPU time *other*
processes used while it ran (from /proc/stat); a large `foreign_load` means the timing is pessimistic.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from model_core.inference import Animator

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = Path("bench_results") / "inference.json"
RESULT_MARKER = "JAMBATALK_BENCH_RESULT "
SCHEMA_VERSION = 1

# Targets (see docs): s of compute per s of audio, linearity, memory, warm CUDA latency.
TARGET_CPU_SPS = 0.35  # vocaset on CPU at 60 s
TARGET_CPU_SPS_SECONDS = 60.0
TARGET_LINEARITY = 1.3  # cost(600 s) / (10 x cost(60 s))
TARGET_PEAK_GB = 6.0
TARGET_CUDA_60S_MS = 50.0
LONG_SECONDS = 60.0  # --skip-long drops durations above this
WARMUP_SECONDS = 2.0
GIB = 1024**3


# -- test signal -------------------------------------------------------------------------------------------
def synth_speech(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A deterministic speech-like float32 signal: voiced syllables, fricative noise bursts and pauses.

    Voiced segments are 12 harmonics of a gliding pitch (80-250 Hz); fricatives are differentiated noise;
    the segment lengths (0.08-0.35 s) give a syllable rate near speech. Not speech, but it keeps wav2vec2's
    activations in a realistic range (pure noise or silence would not).
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    if n <= 0:
        raise ValueError("The test signal needs a positive duration.")
    ctrl_rate = 100  # control values (pitch, envelopes) at 100 Hz, interpolated to the sample rate
    n_ctrl = int(math.ceil(seconds * ctrl_rate)) + 2
    kinds, lengths = [], []
    while sum(lengths) < n_ctrl:
        kinds.append(rng.choice(3, p=[0.7, 0.2, 0.1]))  # 0 voiced, 1 fricative, 2 pause
        lengths.append(int(rng.integers(8, 36)))
    kinds_a, lengths_a = np.array(kinds), np.array(lengths)
    amps = rng.uniform(0.4, 1.0, len(kinds_a))
    voiced = np.repeat(np.where(kinds_a == 0, amps, 0.0), lengths_a)[:n_ctrl]
    fric = np.repeat(np.where(kinds_a == 1, amps * 0.5, 0.0), lengths_a)[:n_ctrl]
    smooth = np.ones(3) / 3  # 30 ms ramps instead of clicks
    voiced, fric = np.convolve(voiced, smooth, "same"), np.convolve(fric, smooth, "same")
    # Pitch: a slow random walk (phrase intonation) plus a 5 Hz wobble, kept in a speaking range.
    walk = np.cumsum(rng.normal(0.0, 2.0, n_ctrl))
    span = min(200, n_ctrl)  # subtracting a 2 s moving mean keeps the walk from drifting away
    f0 = np.clip(140.0 + walk - np.convolve(walk, np.ones(span) / span, "same")
                 + 8.0 * np.sin(2 * np.pi * 5.0 * np.arange(n_ctrl) / ctrl_rate), 80.0, 250.0)

    t_ctrl = np.arange(n_ctrl) / ctrl_rate
    t = np.arange(n) / sample_rate
    phase = 2 * np.pi * np.cumsum(np.interp(t, t_ctrl, f0)) / sample_rate
    tone = np.zeros(n)
    for k in range(1, 13):
        if k * 250.0 < sample_rate / 2:  # no harmonic above Nyquist
            tone += np.sin(k * phase) / k
    noise = rng.standard_normal(n + 1)
    signal = (np.interp(t, t_ctrl, voiced) * tone + np.interp(t, t_ctrl, fric) * np.diff(noise)
              + 1e-3 * rng.standard_normal(n))
    return (0.5 * signal / np.max(np.abs(signal))).astype(np.float32)


# -- machine and memory probes -----------------------------------------------------------------------------
def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0), so the peak covers only what follows."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_kib() -> int:
    # ru_maxrss is KiB on Linux (bytes on macOS); /proc's VmHWM honours the reset above.
    hwm = _proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def _busy_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def foreign_cpu_share(interval: float = 1.0) -> float | None:
    """Share of all cores' time that other processes used over `interval` seconds (this one is idle)."""
    before = _busy_jiffies()
    time.sleep(interval)
    after = _busy_jiffies()
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def load_now() -> dict[str, Any]:
    """The load average and other processes' CPU share over the next second (benchmarks record it)."""
    return {"loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "foreign_cpu_share": foreign_cpu_share(1.0)}


def describe_load(load: dict[str, Any]) -> str:
    share = load["foreign_cpu_share"]
    return (f"loadavg {' '.join(f'{v:.2f}' for v in load['loadavg'] or [])}; "
            f"other processes {'?' if share is None else f'{100 * share:.0f} %'} of the CPUs")


def wait_for_idle(max_wait: float, threshold: float = 0.1, interval: float = 2.0) -> float | None:
    """Wait up to `max_wait` s until other processes use under `threshold` of the CPUs; the last share seen."""
    deadline = time.monotonic() + max_wait
    share = foreign_cpu_share(min(interval, max(max_wait, 0.1)))
    while share is not None and share > threshold and time.monotonic() < deadline:
        share = foreign_cpu_share(interval)
    return share


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one), for benchmark reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info(threads: int) -> dict[str, Any]:
    import torch
    import transformers

    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_cores": available_cores(),
        "logical_cpus": os.cpu_count(),
        "memory_gb": None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "torch_threads": threads,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY",
                                                          "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
                if k in os.environ},
    }
    try:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return info


# -- one measurement ---------------------------------------------------------------------------------------
def build_random_animator(spec: dict[str, Any]) -> Animator:
    """An Animator around a randomly initialised network of `spec["preset"]` (weights do not affect timing)."""
    import torch

    from model_core.checkpoint import CheckpointInfo, LoadedCheckpoint
    from model_core.config import preset
    from model_core.inference import Animator
    from model_core.model import JambaTalk

    torch.manual_seed(spec.get("seed", 0))
    config = preset(spec["preset"])
    model = JambaTalk(config)
    # The official zero head predicts no motion; small random values make the output non-trivial.
    torch.nn.init.normal_(model.output_map.weight, std=1e-3)
    torch.nn.init.normal_(model.output_map.bias, std=1e-4)
    checkpoint = LoadedCheckpoint(model, CheckpointInfo(config=config, name=f"random-{spec['preset']}"), None)
    return Animator(checkpoint, device=spec["device"], precision=spec.get("precision", "auto"),
                    backend=spec.get("backend", "auto"), window_seconds=spec.get("window_seconds", 20.0),
                    overlap_seconds=spec.get("overlap_seconds", 2.0), max_seconds=max(3600.0, spec["seconds"]))


def measure_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Time `animate` on `spec["seconds"]` of audio; meant to run in a fresh process (peak RSS is per process).

    spec keys: preset, device, seconds, repeats, threads, sample_rate, precision, backend, seed,
    window_seconds, overlap_seconds.
    """
    import torch

    threads = int(spec.get("threads") or available_cores())
    torch.set_num_threads(threads)
    device = spec["device"]
    cuda = device.startswith("cuda")
    sample_rate = int(spec.get("sample_rate", 16000))
    started = time.perf_counter()
    animator = build_random_animator(spec)
    build_s = time.perf_counter() - started
    baseline_kib = _proc_status_kib("VmRSS") or _peak_rss_kib()
    cuda_baseline = torch.cuda.memory_allocated() if cuda else 0

    audio = synth_speech(spec["seconds"], sample_rate, seed=spec.get("seed", 0))
    warm = audio[: int(min(WARMUP_SECONDS, spec["seconds"]) * sample_rate)]
    animator.animate(warm, sample_rate)  # first-call costs: allocator, oneDNN primitives, kernels
    if cuda:
        # "Warm" on a GPU means every window shape has been seen (cuDNN/cuBLAS plans); cheap there.
        animator.animate(audio, sample_rate)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    peak_scope = "animate" if _reset_peak_rss() else "process"

    times, cpu_times, foreign = [], [], []
    offsets = None
    for _ in range(max(1, int(spec.get("repeats", 1)))):
        offsets = None  # free the previous output first, so repeats do not inflate the peak
        jiffies0, cpu0, t0 = _busy_jiffies(), time.process_time(), time.perf_counter()
        offsets = animator.animate(audio, sample_rate)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        jiffies1 = _busy_jiffies()
        times.append(wall)
        cpu_times.append(cpu)
        if jiffies0 and jiffies1 and jiffies1[1] > jiffies0[1]:
            # CPU time spent by *other* processes, as a fraction of all cores' time during the run.
            tick = os.sysconf("SC_CLK_TCK")
            busy_s = (jiffies1[0] - jiffies0[0]) / tick
            total_s = (jiffies1[1] - jiffies0[1]) / tick
            foreign.append(max(0.0, (busy_s - cpu) / total_s))
    assert offsets is not None
    # Read the peaks before the output checks below, whose temporaries (|offsets|) are the bench's own.
    peak_kib = _peak_rss_kib()
    cuda_peak = torch.cuda.max_memory_allocated() if cuda else 0
    finite = bool(np.isfinite(offsets).all())
    max_abs = float(max(np.abs(chunk).max() for chunk in np.array_split(offsets, 64) if chunk.size))
    best = min(times)
    result: dict[str, Any] = {
        "preset": spec["preset"],
        "device": device,
        "precision": _precision_name(animator.autocast_dtype),
        "audio_seconds": round(len(audio) / sample_rate, 3),
        "sample_rate": sample_rate,
        "motion_frames": int(offsets.shape[0]),
        "vertices": int(offsets.shape[1]),
        "fps": animator.fps,
        "windows": _window_count(animator, offsets.shape[0]),
        "repeats": len(times),
        "threads": threads,
        "compute_seconds": round(best, 4),
        "compute_seconds_median": round(statistics.median(times), 4),
        "compute_seconds_all": [round(t, 4) for t in times],
        "cpu_seconds": round(cpu_times[times.index(best)], 4),
        "seconds_per_audio_second": round(best / spec["seconds"], 5),
        "realtime_factor": round(spec["seconds"] / best, 3),
        "foreign_load": round(foreign[times.index(best)], 3) if len(foreign) == len(times) else None,
        "build_seconds": round(build_s, 2),
        "output_finite": finite,
        "output_max_abs": max_abs,
    }
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


def _precision_name(dtype: Any) -> str:
    import torch

    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))


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


# -- targets and report ------------------------------------------------------------------------------------
def _target(limit: float, value: float, unit: str) -> dict[str, Any]:
    return {"limit": limit, "value": round(value, 4), "unit": unit, "pass": bool(value <= limit)}


def evaluate_targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add `targets` to each row (in place) and return the linearity checks, one per preset and device."""
    for row in rows:
        targets = {"peak_memory": _target(TARGET_PEAK_GB, row["peak_memory_gb"], "GB")}
        cpu = row["device"] == "cpu"
        at_60 = abs(row["audio_seconds"] - TARGET_CPU_SPS_SECONDS) < 0.5
        if cpu and row["preset"] == "vocaset" and at_60:
            targets["cpu_speed"] = _target(TARGET_CPU_SPS, row["seconds_per_audio_second"], "s/s")
        if not cpu and at_60:
            targets["cuda_60s_latency"] = _target(TARGET_CUDA_60S_MS, row["compute_seconds"] * 1000, "ms")
        row["targets"] = targets
    linearity = []
    for key in dict.fromkeys((r["preset"], r["device"]) for r in rows):
        by_len = {round(r["audio_seconds"]): r for r in rows if (r["preset"], r["device"]) == key}
        if 60 in by_len and 600 in by_len:
            ratio = by_len[600]["compute_seconds"] / (10 * by_len[60]["compute_seconds"])
            check = {"preset": key[0], "device": key[1], "ratio": round(ratio, 3),
                     "limit": TARGET_LINEARITY, "pass": bool(ratio <= TARGET_LINEARITY)}
            if by_len[60].get("cpu_seconds") and by_len[600].get("cpu_seconds"):
                # The same ratio in process CPU time: less sensitive to other load on a shared machine.
                check["ratio_cpu_time"] = round(by_len[600]["cpu_seconds"] / (10 * by_len[60]["cpu_seconds"]), 3)
            linearity.append(check)
    return linearity


COLUMNS = [  # (header, width, row -> text)
    ("preset", 8, lambda r: r["preset"]),
    ("device", 6, lambda r: r["device"]),
    ("prec", 5, lambda r: r["precision"]),
    ("audio s", 8, lambda r: f"{r['audio_seconds']:g}"),
    ("frames", 7, lambda r: str(r["motion_frames"])),
    ("win", 4, lambda r: str(r["windows"])),
    ("compute s", 10, lambda r: f"{r['compute_seconds']:.3f}"),
    ("median s", 9, lambda r: f"{r['compute_seconds_median']:.3f}"),
    ("cpu s", 8, lambda r: f"{r['cpu_seconds']:.1f}" if "cpu_seconds" in r else "-"),
    ("s/s", 7, lambda r: f"{r['seconds_per_audio_second']:.4f}"),
    ("x RT", 7, lambda r: f"{r['realtime_factor']:.2f}"),
    ("base GB", 8, lambda r: f"{r['baseline_memory_gb']:.2f}"),
    ("peak GB", 8, lambda r: f"{r['peak_memory_gb']:.2f}"),
    ("busy", 5, lambda r: "-" if r.get("foreign_load") is None else f"{r['foreign_load']:.0%}"),
    ("targets", 0, lambda r: " ".join(f"{k}={'PASS' if v['pass'] else 'FAIL'}" for k, v in r["targets"].items())),
]


def format_table(rows: list[dict[str, Any]], linearity: list[dict[str, Any]]) -> str:
    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if w else c for c, (_, w, _) in zip(cells, COLUMNS, strict=True)).rstrip()

    out = [line([h for h, _, _ in COLUMNS])]
    out.append(line(["-" * max(w, len(h)) for h, w, _ in COLUMNS]))
    out += [line([fmt(r) for _, _, fmt in COLUMNS]) for r in rows]
    if linearity:
        out.append("")
        out.append(f"Linearity cost(600 s) / (10 x cost(60 s)), target <= {TARGET_LINEARITY}:")
        for c in linearity:
            cpu = f"  (in CPU time {c['ratio_cpu_time']:.3f})" if "ratio_cpu_time" in c else ""
            out.append(f"  {c['preset']:8} {c['device']:6} {c['ratio']:.3f}  {'PASS' if c['pass'] else 'FAIL'}{cpu}")
    out.append("")
    out.append(f"Targets: vocaset on CPU <= {TARGET_CPU_SPS} s/s at 60 s; 600 s within {TARGET_LINEARITY}x of "
               f"10 x 60 s; peak memory <= {TARGET_PEAK_GB:g} GB; CUDA 60 s <= {TARGET_CUDA_60S_MS:g} ms warm.")
    out.append("cpu s = CPU time of all threads; busy = CPU share other processes used during the run "
               "(a high value makes the timing pessimistic).")
    return "\n".join(out)


# -- command line ------------------------------------------------------------------------------------------
def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", default="vocaset,small", help="comma-separated presets (default vocaset,small)")
    parser.add_argument("--durations", default="10,60,600", help="audio lengths in seconds (default 10,60,600)")
    parser.add_argument("--device", default="auto",
                        help="auto (cpu, plus cuda when available), cpu, cuda, or a list such as cpu,cuda")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per measurement; best and median kept")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help=f"where to write results (default {DEFAULT_JSON})")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all available cores)")
    parser.add_argument("--skip-long", action="store_true", help=f"drop durations above {LONG_SECONDS:g} s")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="auto: fp32 on CPU, bf16/fp16 autocast on CUDA")
    parser.add_argument("--backend", default="auto", choices=("auto", "torch"))
    parser.add_argument("--sample-rate", type=int, default=44100,
                        help="rate of the test signal; not 16000 so that resampling is timed too (default 44100)")
    parser.add_argument("--window-seconds", type=float, default=20.0, help="Animator window (default 20)")
    parser.add_argument("--overlap-seconds", type=float, default=2.0, help="Animator overlap (default 2)")
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

    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise ValueError(f"Unknown preset(s) {', '.join(unknown)}: choose from {', '.join(PRESETS)}.")
    threads = args.threads or available_cores()
    devices = _devices(args.device)
    rows, failures = [], []
    for preset_name in presets:
        for device in devices:
            for seconds in durations:
                spec = {"preset": preset_name, "device": device, "seconds": seconds, "repeats": args.repeats,
                        "threads": threads, "sample_rate": args.sample_rate, "precision": args.precision,
                        "backend": args.backend, "window_seconds": args.window_seconds,
                        "overlap_seconds": args.overlap_seconds, "seed": 0,
                        "omp_wait_policy": args.omp_wait_policy}
                label = f"{preset_name} {device} {seconds:g} s"
                print(f"measuring {label} ...", file=sys.stderr, flush=True)
                if args.wait_idle > 0:
                    share = wait_for_idle(args.wait_idle)
                    if share is not None and share > 0.1:
                        print(f"  machine still busy ({share:.0%} used by others)", file=sys.stderr, flush=True)
                try:
                    row = measure_one(spec) if args.in_process else measure_in_subprocess(spec, args.timeout)
                except (RuntimeError, ValueError) as exc:
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
        "settings": {"presets": presets, "durations": durations, "devices": devices, "repeats": args.repeats,
                     "threads": threads, "sample_rate": args.sample_rate, "precision": args.precision,
                     "backend": args.backend, "window_seconds": args.window_seconds,
                     "overlap_seconds": args.overlap_seconds, "warmup_seconds": WARMUP_SECONDS,
                     "omp_wait_policy": args.omp_wait_policy, "wait_idle": args.wait_idle,
                     "in_process": bool(args.in_process)},
        "targets": {"cpu_seconds_per_audio_second": TARGET_CPU_SPS, "linearity": TARGET_LINEARITY,
                    "peak_memory_gb": TARGET_PEAK_GB, "cuda_60s_ms": TARGET_CUDA_60S_MS},
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
