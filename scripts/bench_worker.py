"""Worker protocol benchmark: round-trip overhead on a 60 s take and throughput with concurrent clients.

Runs a real worker subprocess (small preset, random weights: timing does not need trained ones) and the
real client. The overhead of a take is the client's wall time for submit + wait + result (including a first
touch of every page of the result, so a mapped file pays for its page mapping too) minus the worker's own
compute time for the job. It is measured for float32 and float16 results, each fetched over HTTP (what a
remote worker does) and as a file in the worker's private directory (what a worker started by the add-on
does), and split into phases: submit, noticing the end, fetching. Prints a table and writes JSON (default
bench_results/worker.json), with the machine's load: other processes share the CPU on small machines.

    python scripts/bench_worker.py [--take-seconds 60] [--repeats 3] [--clients 4] [--takes-per-client 3]
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

from jambatalk_blender.core.local_worker import LocalWorker  # noqa: E402
from jambatalk_blender.core.worker_client import WorkerClient  # noqa: E402
from model_core.bench import cpu_model, describe_load, load_now  # noqa: E402
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


def touch_pages(offsets: np.ndarray) -> int:
    """Read one byte of every page of the result: a mapped file's pages are mapped on first access."""
    return int(offsets.reshape(-1).view(np.uint8)[::4096].sum())


def one_take(client: WorkerClient, audio: bytes, name: str, dtype: str = "float32") -> dict:
    """submit + wait + result, as the Blender bake does them; wall time split into its phases."""
    started = time.perf_counter()
    job = client.submit(audio, client=name, dtype=dtype)
    submitted = time.perf_counter()
    status = client.wait(job)
    finished = time.perf_counter()
    offsets, meta = client.result(job)
    touch_pages(offsets)
    fetched = time.perf_counter()
    assert offsets.dtype == np.dtype(dtype) and offsets.shape == (meta["frames"], meta["vertices"], 3)
    wall = fetched - started
    size_mb = offsets.nbytes / 2**20
    del offsets
    # Not part of the round trip: the same result fetched again at once, when the memory the first fetch freed
    # is still at hand. The gap to fetch_s is the cost of first touching fresh memory of the result's size.
    refetch_started = time.perf_counter()
    touch_pages(client.result(job)[0])
    refetch_s = time.perf_counter() - refetch_started
    return {"dtype": dtype, "wall_s": wall, "compute_s": status["compute_s"], "queued_s": status["queued_s"],
            "overhead_s": wall - status["compute_s"], "submit_s": submitted - started,
            # waiting beyond the job's time on the worker: queueing, start-up and noticing the end (can be < 0:
            # the job may start before the submit reply has reached the client)
            "wait_extra_s": (finished - submitted) - status["compute_s"], "fetch_s": fetched - finished,
            "refetch_s": refetch_s, "frames": int(meta["frames"]), "result_mb": size_mb}


def summarise(runs: list[dict]) -> dict:
    median = {key: float(np.median([r[key] for r in runs]))
              for key in ("compute_s", "overhead_s", "submit_s", "wait_extra_s", "fetch_s", "refetch_s", "wall_s")}
    fraction = median["overhead_s"] / median["compute_s"]
    return {"runs": runs, **{f"median_{k}": v for k, v in median.items()},
            "best_overhead_s": min(r["overhead_s"] for r in runs), "overhead_fraction": fraction,
            "result_mb": runs[0]["result_mb"], "target_fraction": TARGET, "pass": fraction <= TARGET}


TARGET = 0.10  # overhead / compute, from the issue
CASES = [("http", "float32"), ("http", "float16"), ("file", "float32"), ("file", "float16")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--take-seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--takes-per-client", type=int, default=3)
    parser.add_argument("--client-take-seconds", type=float, default=20.0)
    parser.add_argument("--throughput-dtype", choices=("float32", "float16"), default="float32")
    parser.add_argument("--throughput-via", choices=("http", "file"), default="file")
    parser.add_argument("--json", default=str(ROOT / "bench_results" / "worker.json"))
    args = parser.parse_args()

    load_before = load_now()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "bench-small.safetensors"
        make_checkpoint(checkpoint)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with LocalWorker.start(sys.executable, [str(checkpoint)], device="cpu", env=env, cwd=str(ROOT)) as worker:
            if worker.client.result_dir is None:
                raise SystemExit("The worker offers no result directory; the file transport cannot be measured.")
            clients = {"file": worker.client, "http": WorkerClient(worker.url, worker.token)}
            take = wav_bytes(args.take_seconds, seed=1)
            one_take(clients["http"], wav_bytes(5.0, seed=2), "warm-up")
            one_take(clients["file"], wav_bytes(5.0, seed=2), "warm-up")
            # One case's repeats back to back, like a user baking takes one after another. (Interleaving them
            # makes each float32 fetch land in memory the process has not touched for seconds, which on a VM with
            # a memory balloon costs up to ~0.3 s more per 100 MB; see the warm refetch row.)
            runs = {f"{via} {dtype}": [one_take(clients[via], take, "solo", dtype) for _ in range(args.repeats)]
                    for via, dtype in CASES}

            # Throughput: the same total audio, first from one client in series, then from N clients at once.
            client = clients[args.throughput_via]
            clips = [wav_bytes(args.client_take_seconds, seed=10 + i) for i in range(args.clients)]
            serial_start = time.perf_counter()
            for clip in clips:
                for _ in range(args.takes_per_client):
                    one_take(client, clip, "serial", args.throughput_dtype)
            serial_wall = time.perf_counter() - serial_start
            results: list[dict] = []
            lock = threading.Lock()

            def run_client(index: int) -> None:
                for _ in range(args.takes_per_client):
                    r = one_take(client, clips[index], f"client-{index}", args.throughput_dtype)
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
                    "python": platform.python_version(), "load_before": load_before, "load_after": load_now()},
        "model": "small preset, random weights, 5023 vertices, CPU",
        "round_trip": {"take_seconds": args.take_seconds, **{case: summarise(r) for case, r in runs.items()}},
        "throughput": {"clients": args.clients, "takes_per_client": args.takes_per_client,
                       "dtype": args.throughput_dtype, "via": args.throughput_via,
                       "take_seconds": args.client_take_seconds, "jobs": len(results),
                       "serial_wall_s": serial_wall, "concurrent_wall_s": concurrent_wall,
                       "serial_audio_s_per_s": audio_total / serial_wall,
                       "concurrent_audio_s_per_s": audio_total / concurrent_wall,
                       "max_queued_s": max(r["queued_s"] for r in results)},
    }
    rt, tp, machine = report["round_trip"], report["throughput"], report["machine"]
    cases = list(runs)
    print(f"{'measure':46}" + "".join(f"{case:>13}" for case in cases))
    take = f"{args.take_seconds:g} s take"

    def row(label: str, key: str, scale: float = 1.0, unit: str = "s", fmt: str = ".3f") -> None:
        print(f"{label:46}" + "".join(f"{scale * rt[case][key]:>10{fmt}} {unit:<2}" for case in cases))

    row(take + ": worker compute (median)", "median_compute_s")
    row(take + ": protocol overhead (median)", "median_overhead_s")
    row("  submit (upload + decode)", "median_submit_s")
    row("  wait - compute (queue, noticing end)", "median_wait_extra_s")
    row("  fetch result (+ touch every page)", "median_fetch_s")
    row("  (fetch again at once: warm memory)", "median_refetch_s")
    row("overhead / compute (target <= 10%)", "overhead_fraction", 100.0, "%", ".1f")
    print(f"{'  verdict':46}" + "".join(f"{'PASS' if rt[case]['pass'] else 'FAIL':>13}" for case in cases))
    row("result size", "result_mb", unit="MB", fmt=".1f")
    kind = f"{args.throughput_dtype}, {args.throughput_via}"
    print(f"{f'throughput ({kind}), 1 client serial':46} {tp['serial_audio_s_per_s']:>9.1f} audio-s/s")
    print(f"{f'throughput ({kind}), {args.clients} clients at once':46} "
          f"{tp['concurrent_audio_s_per_s']:>9.1f} audio-s/s")
    print(f"{'longest wait in queue (concurrent)':46} {tp['max_queued_s']:>9.3f} s")
    for when in ("before", "after"):
        print(f"{'machine load ' + when:46} {describe_load(machine[f'load_{when}'])}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
