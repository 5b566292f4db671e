"""`jambatalk batch` throughput: lines/s one by one, batched, with --workers 2 and through a local Ray instance.

Makes N short lines (default 200, 2-6 s, 48 kHz 16-bit WAV: what a VO studio delivers) of the house test signal,
then runs the real command once per configuration, each into a fresh output folder (ARKit CSV, the shipped model,
CPU), and once more on the batched one's folder to time a resume where every line is skipped. Each run's wall
time covers the whole command; its start-up is the time to the first finished line (interpreter, imports, model
loads, Ray's start), its steady rate the pace between the 10th and 90th percentile of the lines' arrival in the
report. Ray's overhead is Ray against the local engine with the same number of workers.

Then, in this process, the per-line cost split into the host's share (decode, resample, hash, write) and the
network's (one by one and batched), with the network's FLOPs counted by torch; from those, an estimate of the
GPU-hours 50,000 lines take on one H200 (the assumptions are printed with it). The machine may be shared: the
load before and after is recorded, and timings from a busy machine are pessimistic.

    python scripts/bench_batch.py [--lines 200] [--repeats 2] [--skip-ray] [--json bench_results/batch.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model_core.bench import cpu_model, describe_load, load_now, synth_speech  # noqa: E402

SHIPPED = ROOT / "models" / "arkit" / "jambatalk-arkit-small.safetensors"
SOURCE_RATE = 48000
ESTIMATE_LINES = 50_000
# One H200 (SXM): dense BF16 tensor peak ~989 TFLOP/s. This network is narrow (D=64, a 256-wide wav2vec2), so its
# matmuls reach a small fraction of that; 5% is assumed. Each batched pass also pays kernel launches, ~5 us each
# (no CUDA graphs), counted as the CPU run's leaf operators with each selective scan as one fused kernel.
H200_BF16_FLOPS = 989e12
ASSUMED_UTILISATION = 0.05
LAUNCH_S = 5e-6


def make_lines(folder: Path, count: int, low: float, high: float, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i, seconds in enumerate(rng.uniform(low, high, count)):
        path = folder / f"vo_{i:04d}.wav"
        sf.write(path, synth_speech(float(seconds), SOURCE_RATE, seed=i), SOURCE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def run_batch(audio: Path, out: Path, *extra: str) -> dict:
    """The whole command's wall time, its start-up and its steady pace.

    Start-up: the command's wall time up to its first finished line (interpreter, imports, models, Ray's start).
    Steady: lines per second between the 10th and the 90th percentile of the lines' arrival in the report, which
    leaves out the start-up and the last stragglers of the run.
    """
    command = [sys.executable, "-m", "model_core.cli", "batch", str(audio), "--out", str(out), "--checkpoint",
               str(SHIPPED), "--format", "arkit-csv", "--device", "cpu", "--quiet", "--json", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    arrivals = sorted(row["at_s"] for row in json.loads((out / "batch-report.json").read_text())["lines"])
    low, high = int(0.1 * len(arrivals)), int(0.9 * len(arrivals))
    span = arrivals[high] - arrivals[low]
    return {"args": list(extra), "command_wall_s": round(wall, 3), "lines_per_s": round(len(arrivals) / wall, 3),
            "startup_s": round(wall - summary["wall_s"] + summary["first_row_s"], 3),
            "steady_lines_per_s": round((high - low) / span, 3) if span > 0 else None, "summary": summary}


def per_line_costs(paths: list[Path], batch_lines: int) -> dict:
    """The host's and the network's share of a line, measured in this process on a sample of the lines."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from model_core.arkit_formats import write_live_link_csv
    from model_core.audio_io import decode_audio_bytes
    from model_core.batch.state import sha256_bytes
    from model_core.inference import Animator

    torch.set_num_threads(os.cpu_count() or 1)
    animator = Animator(SHIPPED, device="cpu")
    sample = paths[: batch_lines * 4]
    started = time.perf_counter()
    takes = []
    for path in sample:
        data = path.read_bytes()
        sha256_bytes(data)
        takes.append(decode_audio_bytes(data, name=str(path)).samples)
    decode_s = (time.perf_counter() - started) / len(sample)
    animator.animate_batch_16k(takes[:2])  # warm-up
    started = time.perf_counter()
    outputs = [animator.animate_weights_16k(t) for t in takes]
    alone_s = (time.perf_counter() - started) / len(sample)
    order = np.argsort([len(t) for t in takes])
    groups = [[takes[i] for i in order[k: k + batch_lines]] for k in range(0, len(takes), batch_lines)]
    started = time.perf_counter()
    for group in groups:
        animator.animate_batch_16k(group)
    batched_s = (time.perf_counter() - started) / len(sample)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        for i, weights in enumerate(outputs):
            write_live_link_csv(Path(tmp) / f"{i}.csv", weights, animator.blendshape_names, animator.fps)
        write_s = (time.perf_counter() - started) / len(sample)
    # The same calls as a batched pass, under no_grad: the counter cannot see through inference_mode's
    # parametrised (weight-normed) convolution.
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        features, frames = animator.model.encode_batch([torch.from_numpy(t) for t in groups[0]])
        mask = torch.arange(features.shape[1])[None] < torch.tensor(frames)[:, None]
        animator.model.decode_channels(features, key_mask=mask)
    operator_calls = kernel_launches(animator, groups[0])
    audio_s = float(np.mean([len(t) for t in takes])) / 16000
    return {"sample_lines": len(sample), "mean_audio_s": round(audio_s, 3), "host_decode_hash_s": decode_s,
            "host_write_csv_s": write_s, "network_alone_s": alone_s, "network_batched_s": batched_s,
            "flops_per_line": counter.get_total_flops() / len(groups[0]),
            "operator_calls_per_pass": operator_calls, "lines_per_pass": len(groups[0])}


def kernel_launches(animator, group: list[np.ndarray]) -> int:
    """Leaf operators of one batched pass, the would-be GPU kernels; each PyTorch selective scan (a loop of small
    operators on the CPU) counts as one, as mamba-ssm's fused kernel does on CUDA."""
    import torch

    from model_core.layers import mamba

    plain = mamba.selective_scan

    def labelled(*args, **kwargs):
        with torch.profiler.record_function("fused_selective_scan"):
            return plain(*args, **kwargs)

    mamba.selective_scan = labelled
    try:
        with torch.profiler.profile() as profile:
            animator.animate_batch_16k(group)
    finally:
        mamba.selective_scan = plain
    launches = 0
    for event in profile.events():
        if event.name == "fused_selective_scan":
            launches += 1
        elif event.name.startswith("aten::") and not event.cpu_children:
            parent = event.cpu_parent
            while parent is not None and parent.name != "fused_selective_scan":
                parent = parent.cpu_parent
            launches += parent is None
    return launches


def h200_estimate(costs: dict, host_cores: int) -> dict:
    """GPU-hours for ESTIMATE_LINES lines on one H200: the slower of the network (FLOPs at the assumed
    utilisation, or kernel launches) and the host work spread over `host_cores` worker processes."""
    flops_s = costs["flops_per_line"] / (H200_BF16_FLOPS * ASSUMED_UTILISATION)
    launch_s = costs["operator_calls_per_pass"] * LAUNCH_S / costs["lines_per_pass"]
    gpu_s = max(flops_s, launch_s)
    host_s = (costs["host_decode_hash_s"] + costs["host_write_csv_s"]) / host_cores
    per_line = max(gpu_s, host_s)
    cpu_batched = costs["host_decode_hash_s"] + costs["host_write_csv_s"] + costs["network_batched_s"]
    return {"lines": ESTIMATE_LINES, "gpu_flops_s_per_line": flops_s, "gpu_launch_s_per_line": launch_s,
            "host_s_per_line": host_s, "host_cores": host_cores, "bound": "GPU" if gpu_s >= host_s else "host",
            "wall_hours": ESTIMATE_LINES * per_line / 3600, "gpu_busy_hours": ESTIMATE_LINES * gpu_s / 3600,
            "this_cpu_hours": ESTIMATE_LINES * cpu_batched / 3600}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=6.0)
    parser.add_argument("--batch-lines", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--h200-host-cores", type=int, default=16, help="CPU cores feeding the GPU (estimate)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration; the best is kept")
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--json", default=str(ROOT / "bench_results" / "batch.json"))
    args = parser.parse_args()

    load_before = load_now()
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp) / "vo"
        audio.mkdir()
        paths = make_lines(audio, args.lines, args.min_seconds, args.max_seconds)
        batched = ("--batch-lines", str(args.batch_lines))
        workers = ("--workers", str(args.workers))
        configs = {"one by one": ("--batch-lines", "1"), "batched": batched,
                   f"batched, --workers {args.workers}": (*batched, *workers)}
        if not args.skip_ray:
            configs[f"ray local, {args.workers} actors"] = (*batched, *workers, "--engine", "ray")
        # Repeats interleave the configurations, and each keeps its best run: on a shared machine, the one that
        # other processes disturbed least.
        tries: dict[str, list[dict]] = {name: [] for name in configs}
        for repeat in range(args.repeats):
            for index, (name, extra) in enumerate(configs.items()):
                tries[name].append(run_batch(audio, Path(tmp) / f"run{repeat}-{index}", *extra))
                print(f"  {name}: {tries[name][-1]['lines_per_s']:.2f} lines/s", file=sys.stderr)
        runs = {name: {**max(done, key=lambda r: r["lines_per_s"]),
                       "tries_lines_per_s": [r["lines_per_s"] for r in done]} for name, done in tries.items()}
        runs["resume (all skipped)"] = run_batch(audio, Path(tmp) / "run0-1", *batched)  # batched's folder again
        costs = per_line_costs(paths, args.batch_lines)
    estimate = h200_estimate(costs, args.h200_host_cores)
    result = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                          "load_before": load_before, "load_after": load_now()},
              "model": str(SHIPPED.relative_to(ROOT)), "lines": args.lines,
              "line_seconds": [args.min_seconds, args.max_seconds], "source_rate": SOURCE_RATE, "format": "arkit-csv",
              "runs": runs, "per_line": costs, "h200_estimate": estimate}
    local = runs[f"batched, --workers {args.workers}"]
    if not args.skip_ray:
        ray = runs[f"ray local, {args.workers} actors"]
        result["ray_overhead"] = {"startup_s": ray["startup_s"] - local["startup_s"],
                                  "command_wall_s": ray["command_wall_s"] - local["command_wall_s"],
                                  "lines_per_s_ratio": ray["lines_per_s"] / local["lines_per_s"]}
    print_table(result)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"\nJSON: {args.json}")
    return 0


def print_table(result: dict) -> None:
    print(f"\n{result['lines']} lines of {result['line_seconds'][0]:g}-{result['line_seconds'][1]:g} s, "
          f"{result['model']}, ARKit CSV, CPU: {result['machine']['cpu']} ({result['machine']['cores']} cores)")
    print(f"{'configuration':32}{'lines/s':>9}{'wall s':>9}{'start-up s':>12}{'steady lines/s':>16}")
    for name, run in result["runs"].items():
        # Ray hands rows back a whole batch of lines at a time: its arrivals are too bursty for a steady pace.
        bursty = "ray" in run["args"] or name.startswith("resume")
        steady = "-" if run["steady_lines_per_s"] is None or bursty else f"{run['steady_lines_per_s']:.2f}"
        print(f"{name:32}{run['lines_per_s']:>9.2f}{run['command_wall_s']:>9.1f}{run['startup_s']:>12.1f}"
              f"{steady:>16}")
    if "ray_overhead" in result:
        o = result["ray_overhead"]
        print(f"Ray's overhead against the local engine with as many workers: {o['command_wall_s']:+.1f} s on the "
              f"whole run ({o['startup_s']:+.1f} s more to its first finished batch)")
    c = result["per_line"]
    print(f"Per line ({c['mean_audio_s']:.1f} s of audio; {c['sample_lines']} lines): host decode+hash "
          f"{1000 * c['host_decode_hash_s']:.1f} ms, CSV write {1000 * c['host_write_csv_s']:.1f} ms, network "
          f"{1000 * c['network_alone_s']:.1f} ms alone / {1000 * c['network_batched_s']:.1f} ms batched "
          f"({c['lines_per_pass']} per pass), {c['flops_per_line'] / 1e9:.2f} GFLOP")
    e = result["h200_estimate"]
    print(f"{e['lines']:,} lines: {e['this_cpu_hours']:.2f} h on this CPU (batched, one process); on one H200: "
          f"GPU {1000 * max(e['gpu_flops_s_per_line'], e['gpu_launch_s_per_line']):.2f} ms/line "
          f"(FLOPs at {100 * ASSUMED_UTILISATION:g}% of BF16 peak: {1000 * e['gpu_flops_s_per_line']:.3f} ms; "
          f"launches: {1000 * e['gpu_launch_s_per_line']:.2f} ms), host {1000 * e['host_s_per_line']:.2f} ms/line on "
          f"{e['host_cores']} cores -> {e['bound']}-bound, {e['wall_hours']:.3f} h of wall time on the GPU "
          f"({e['gpu_busy_hours']:.3f} GPU-hours busy)")
    for when in ("before", "after"):
        print(f"machine load {when}: {describe_load(result['machine'][f'load_{when}'])}")


if __name__ == "__main__":
    sys.exit(main())
