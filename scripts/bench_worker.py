"""Worker protocol benchmark: round-trip overhead on a 60 s take and throughput with concurrent clients.

Runs a real worker subprocess (small preset, random weights: timing does not need trained ones) and the
real client. Prints a table and writes JSON (default bench_results/worker.json).

    python scripts/bench_worker.py [--take-seconds 60] [--clients 4] [--takes-per-client 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jambatalk_blender.worker_client import LocalWorker  # noqa: E402
from model_core.bench import cpu_model  # noqa: E402
from scripts.make_demo_audio import synth_utterance  # noqa: E402


def wav_bytes(seconds: float, seed: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, synth_utterance(seconds, seed=seed), 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def make_checkpoint(path: Path) -> None:
    import torch

    from model_core.checkpoint import CheckpointInfo, save_checkpoint
    from model_core.config import preset
    from model_core.model import JambaTalk

    torch.manual_seed(0)
    model = JambaTalk(preset("small"))
    torch.nn.init.normal_(model.vertice_map_r.weight, std=1e-3)
    save_checkpoint(path, model, CheckpointInfo(config=model.config, name="bench-small"))


def one_take(client, audio: bytes, name: str) -> dict:
    started = time.perf_counter()
    job = client.submit(audio, client=name)
    status = client.wait(job, poll_s=0.02)
    offsets, meta = client.result(job)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "compute_s": status["compute_s"], "queued_s": status["queued_s"],
            "frames": int(offsets.shape[0]), "result_mb": offsets.nbytes / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--take-seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--takes-per-client", type=int, default=3)
    parser.add_argument("--client-take-seconds", type=float, default=20.0)
    parser.add_argument("--json", default=str(ROOT / "bench_results" / "worker.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "bench-small.safetensors"
        make_checkpoint(checkpoint)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with LocalWorker.start(sys.executable, [str(checkpoint)], device="cpu", env=env, cwd=str(ROOT)) as worker:
            client = worker.client
            take = wav_bytes(args.take_seconds, seed=1)
            one_take(client, wav_bytes(5.0, seed=2), "warm-up")
            runs = [one_take(client, take, "solo") for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["wall_s"] - r["compute_s"])
            overhead = [r["wall_s"] - r["compute_s"] for r in runs]
            median_overhead = float(np.median(overhead))
            median_compute = float(np.median([r["compute_s"] for r in runs]))

            # Throughput: the same total audio, first from one client in series, then from N clients at once.
            clips = [wav_bytes(args.client_take_seconds, seed=10 + i) for i in range(args.clients)]
            serial_start = time.perf_counter()
            for clip in clips:
                for _ in range(args.takes_per_client):
                    one_take(client, clip, "serial")
            serial_wall = time.perf_counter() - serial_start
            results: list[dict] = []
            lock = threading.Lock()

            def run_client(index: int) -> None:
                for _ in range(args.takes_per_client):
                    r = one_take(client, clips[index], f"client-{index}")
                    with lock:
                        results.append(r)

            threads = [threading.Thread(target=run_client, args=(i,)) for i in range(args.clients)]
            concurrent_start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            concurrent_wall = time.perf_counter() - concurrent_start

    audio_total = args.clients * args.takes_per_client * args.client_take_seconds
    report = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "model": "small preset, random weights, 5023 vertices, CPU",
        "round_trip": {"take_seconds": args.take_seconds, "runs": runs,
                       "median_compute_s": median_compute, "median_overhead_s": median_overhead,
                       "overhead_fraction": median_overhead / median_compute,
                       "best_overhead_s": best["wall_s"] - best["compute_s"],
                       "target_fraction": 0.10, "pass": median_overhead / median_compute <= 0.10},
        "throughput": {"clients": args.clients, "takes_per_client": args.takes_per_client,
                       "take_seconds": args.client_take_seconds, "jobs": len(results),
                       "serial_wall_s": serial_wall, "concurrent_wall_s": concurrent_wall,
                       "serial_audio_s_per_s": audio_total / serial_wall,
                       "concurrent_audio_s_per_s": audio_total / concurrent_wall,
                       "max_queued_s": max(r["queued_s"] for r in results)},
    }
    rt, tp = report["round_trip"], report["throughput"]
    print(f"{'measure':44} {'value':>12}")
    take = f"{args.take_seconds:g} s take"
    print(f"{take + ': worker compute (median)':44} {rt['median_compute_s']:>10.3f} s")
    print(f"{take + ': protocol overhead (median)':44} {rt['median_overhead_s']:>10.3f} s")
    print(f"{'overhead / compute (target <= 10%)':44} {100 * rt['overhead_fraction']:>10.1f} % "
          f"{'PASS' if rt['pass'] else 'FAIL'}")
    print(f"{'result size':44} {runs[0]['result_mb']:>9.1f} MB")
    print(f"{'throughput, 1 client serial':44} {tp['serial_audio_s_per_s']:>8.1f} audio-s/s")
    print(f"{f'throughput, {args.clients} clients at once':44} {tp['concurrent_audio_s_per_s']:>8.1f} audio-s/s")
    print(f"{'longest wait in queue (concurrent)':44} {tp['max_queued_s']:>10.3f} s")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
