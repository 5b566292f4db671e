"""Abuse a live worker on loopback and report how it held up (issue 11): not a timed test, a soak.

    .venv/bin/python scripts/bench_worker_abuse.py [--fuzz 10000] [--idle 1000] [--json abuse.json]

Starts `jambatalk serve` on 127.0.0.1 (a small random checkpoint, default limits), then repeats the attacks of
issue 11 (idle and slow-header connections, a stalled body, a FLAC that decodes into gigabytes, a flood of
small uploads that decode large, cancelling queued jobs, a 200 MB chunked body, duplicate Authorization,
foreign Host headers) and sends `--fuzz` fuzzed requests. It samples the worker's resident memory throughout
and prints a table: replies by status, 5xx, hangs (no reply within 15 s), peak memory, memory after. Only
127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import resource
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jambatalk_blender.core.local_worker import LocalWorker  # noqa: E402

HANG_S = 15.0


class Memory(threading.Thread):
    """Samples a process's resident size every 20 ms: the peak, and the value now."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_event = pid, 0, threading.Event()

    def now(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def run(self) -> None:
        while not self.stop_event.wait(0.02):
            try:
                self.peak = max(self.peak, self.now())
            except OSError:
                return


class Tally:
    def __init__(self) -> None:
        self.status: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, key: str) -> None:
        with self.lock:
            self.status[key] += 1


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            token: str | None = None, host: str | None = None, timeout: float = HANG_S) -> tuple[int | str, bytes]:
    """One request on a fresh connection: (status, body), or ("hang" | "reset", b"")."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host or f"127.0.0.1:{port}")
        if token:
            connection.putheader("Authorization", f"Bearer {token}")
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body or b"")
        response = connection.getresponse()
        return response.status, response.read()
    except TimeoutError:
        return "hang", b""
    except (ConnectionError, http.client.HTTPException, OSError):
        return "reset", b""
    finally:
        connection.close()


def wav(seconds: float, rate: int = 16000, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.3 * np.sin(2 * np.pi * (120 + 40 * np.sin(2 * np.pi * 3 * t)) * t) + 0.02 * rng.standard_normal(len(t))
    buffer = io.BytesIO()
    sf.write(buffer, signal.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def dc_flac(seconds: int, rate: int) -> bytes:
    buffer = io.BytesIO()
    block = np.full((rate, 1), 0.25, dtype=np.float32)
    with sf.SoundFile(buffer, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(seconds):
            f.write(block)
    return buffer.getvalue()


# -- the attacks -------------------------------------------------------------------------------------------------
def idle_connections(port: int, token: str, count: int) -> dict:
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(count // 5)]
    for sock in slow:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Slow: " % port)
    latencies, statuses = [], []
    for _ in range(5):
        started = time.monotonic()
        status, _ = request(port, "GET", "/health", token=token)
        latencies.append(time.monotonic() - started)
        statuses.append(status)
    started = time.monotonic()
    closed = 0
    for sock in idle + slow:
        sock.settimeout(max(0.1, 15 - (time.monotonic() - started)))
        try:
            sock.recv(4096)  # b"" (closed quietly) or the 408 sent before the close
            closed += 1
        except ConnectionError:
            closed += 1
        except TimeoutError:
            pass
        sock.close()
    return {"open": len(idle) + len(slow), "health_statuses": statuses, "health_max_s": round(max(latencies), 3),
            "closed_by_worker": closed, "all_closed_after_s": round(time.monotonic() - started, 2)}


def stalled_body(port: int, token: str) -> dict:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                     b"Content-Length: 100000\r\n\r\nRIFF" % (port, token.encode()))
        started = time.monotonic()
        sock.settimeout(60)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except (TimeoutError, ConnectionError):
            pass
    return {"reply": reply.split(b"\r\n", 1)[0].decode(errors="replace"),
            "after_s": round(time.monotonic() - started, 2)}


def big_decode(port: int, token: str) -> dict:
    data = dc_flac(1800, 384000)
    started = time.monotonic()
    status, body = request(port, "POST", "/jobs", data, token=token, timeout=120)
    return {"upload_bytes": len(data), "status": status, "after_s": round(time.monotonic() - started, 2),
            "message": json.loads(body)["error"]["message"][:120] if body else ""}


def budget_flood(port: int, token: str) -> dict:
    data = dc_flac(1790, 16000)  # just under 30 minutes: a tiny upload, 115 MB once decoded
    replies: Counter[str] = Counter()
    jobs, retry_after = [], None
    for i in range(40):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request("POST", "/jobs", body=data, headers={"Authorization": f"Bearer {token}",
                                                               "X-JambaTalk-Params": json.dumps({"client": f"c{i}"})})
        response = connection.getresponse()
        body = response.read()
        replies[str(response.status)] += 1
        if response.status == 202:
            jobs.append(json.loads(body)["job"])
        elif response.status == 503:
            retry_after = response.getheader("Retry-After")
            break
        connection.close()
    health = json.loads(request(port, "GET", "/health", token=token)[1])
    held = health["queue"]["audio_bytes"]
    for job in jobs:
        request(port, "DELETE", f"/jobs/{job}", token=token)
    after_cancel = json.loads(request(port, "GET", "/health", token=token)[1])["queue"]["audio_bytes"]
    return {"upload_bytes": len(data), "replies": dict(replies), "retry_after": retry_after,
            "held_mb": round(held / 2**20), "limit_mb": round(health["limits"]["max_queued_audio_bytes"] / 2**20),
            "held_after_cancel_mb": round(after_cancel / 2**20)}


def chunked_200mb(port: int, token: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    chunk = os.urandom(2**20)
    connection.request("POST", "/jobs", body=(chunk for _ in range(200)), encode_chunked=True,
                       headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return {"status": response.status}


def small_ones(port: int, token: str) -> dict:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer x\r\n"
                     b"Authorization: Bearer %s\r\n\r\n" % (port, token.encode()))
        sock.settimeout(10)
        duplicate = sock.recv(4096).split(b"\r\n", 1)[0].decode()
    foreign = request(port, "GET", "/health", token=token, host=f"attacker.example:{port}")[0]
    return {"duplicate_authorization": duplicate, "foreign_host": foreign}


# -- fuzzing -----------------------------------------------------------------------------------------------------
def fuzz(port: int, token: str, count: int, tally: Tally, failures: list[dict], seed: int = 0) -> list[str]:
    base = [wav(0.4, seed=s) for s in range(4)] + [wav(0.3, rate=44100)]
    paths = ["/health", "/jobs", "/jobs/000001-abc", "/jobs/x/result", "/jobs/x/result?via=file", "/shutdownx",
             "/jobs/%00", "/" + "a" * 3000, "/jobs/000000-0?wait=0.01", "/jobs/000000-0?wait=nan"]
    methods = ["GET", "POST", "DELETE", "HEAD", "PUT", "PATCH", "OPTIONS"]
    accepted: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        rng = random.Random(seed * 1_000_003 + i)
        kind = rng.random()
        headers = {}
        if kind < 0.55:  # a submission with a mutated body and fuzzed params
            body = bytearray(rng.choice(base))
            for _ in range(rng.randint(0, 8)):
                body[rng.randrange(min(len(body), 64 if rng.random() < 0.5 else len(body)))] = rng.randrange(256)
            body = bytes(body[:rng.randint(0, len(body))]) if rng.random() < 0.3 else bytes(body)
            params = {k: rng.choice([None, 0, -1, 1e308, "x" * rng.randint(0, 80), [], {}, True, 0.2, "float16"])
                      for k in rng.sample(["model", "subject", "start_s", "end_s", "strength", "smoothing_s",
                                           "dtype", "client", "bogus"], rng.randint(0, 4))}
            headers["X-JambaTalk-Params"] = json.dumps(params) if rng.random() < 0.9 else "{" * rng.randint(1, 5000)
            method, path = "POST", "/jobs"
        else:
            body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
            method, path = rng.choice(methods), rng.choice(paths)
            if rng.random() < 0.2:
                headers["X-Junk"] = "v" * rng.randint(0, 8000)
        status, payload = request(port, method, path, body, headers, token=None if rng.random() < 0.05 else token)
        tally.add(str(status))
        if not isinstance(status, int) or status >= 500:
            with lock:  # enough to reproduce it
                failures.append({"request": i, "method": method, "path": path[:200], "status": status,
                                 "headers": {k: v[:300] for k, v in headers.items()}, "body_head": body[:64].hex(),
                                 "body_bytes": len(body), "reply": payload[:300].decode(errors="replace")})
        if status == 202:
            job = json.loads(payload)["job"]
            request(port, "DELETE", f"/jobs/{job}", token=token)
            with lock:
                accepted.append(job)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, range(count)))
    return accepted


def attack_rows(results: dict) -> list[tuple[str, str]]:
    flood = results["budget_flood"]
    return [
        ("idle+slow connections", f"{results['idle_connections']['open']} open; /health "
                                      f"{results['idle_connections']['health_statuses']} in at most "
                                      f"{results['idle_connections']['health_max_s']} s; all closed after "
                                      f"{results['idle_connections']['all_closed_after_s']} s"),
        ("stalled body", f"{results['stalled_body']['reply']} after {results['stalled_body']['after_s']} s"),
        ("30 min DC FLAC at 384 kHz", f"{results['big_decode_flac']['upload_bytes'] / 2**20:.1f} MB -> "
                                          f"{results['big_decode_flac']['status']} in "
                                          f"{results['big_decode_flac']['after_s']} s"),
        ("30 min 16 kHz FLAC flood", f"{flood['upload_bytes'] / 1e3:.0f} kB each: {flood['replies']}, "
                                         f"Retry-After {flood['retry_after']}; held {flood['held_mb']} of "
                                         f"{flood['limit_mb']} MB, {flood['held_after_cancel_mb']} MB after cancel"),
        ("200 MB chunked body", str(results["chunked_200mb"]["status"])),
        ("duplicate Authorization / foreign Host", f"{results['small_ones']['duplicate_authorization']} / "
                                                       f"{results['small_ones']['foreign_host']}"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fuzz", type=int, default=10000, help="fuzzed requests (default 10,000)")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections held open (plus a fifth slow)")
    parser.add_argument("--json", default="bench_worker_abuse.json", help="where to write the results")
    parser.add_argument("--fuzz-only", action="store_true", help="skip the attacks, only fuzz")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.idle)), hard))
    from model_core.checkpoint import save_checkpoint
    from model_core.config import preset
    from model_core.model import JambaTalk

    folder = Path(tempfile.mkdtemp(prefix="jambatalk-abuse-"))
    checkpoint = save_checkpoint(folder / "abuse.safetensors", JambaTalk(preset("small", vertex_count=200)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    worker = LocalWorker.start(sys.executable, [str(checkpoint)], device="cpu", env=env, startup_timeout_s=300)
    port, token = worker.ready["port"], worker.token
    memory = Memory(worker.pid)
    start_rss = memory.now()
    memory.start()
    results: dict = {"start_rss_mb": round(start_rss / 2**20)}
    tally = Tally()
    timings = {}
    try:
        for name, attack in (("idle_connections", lambda: idle_connections(port, token, args.idle)),
                             ("stalled_body", lambda: stalled_body(port, token)),
                             ("big_decode_flac", lambda: big_decode(port, token)),
                             ("budget_flood", lambda: budget_flood(port, token)),
                             ("chunked_200mb", lambda: chunked_200mb(port, token)),
                             ("small_ones", lambda: small_ones(port, token))) if not args.fuzz_only else ():
            started = time.monotonic()
            results[name] = attack()
            timings[name] = round(time.monotonic() - started, 1)
            print(f"{name}: {results[name]} ({timings[name]} s)", flush=True)
        started = time.monotonic()
        failures: list[dict] = []
        accepted = fuzz(port, token, args.fuzz, tally, failures)
        results["fuzz_failures"] = failures[:20]
        for failure in failures[:3]:
            print(f"fuzz failure: {failure}", flush=True)
        timings["fuzz"] = round(time.monotonic() - started, 1)
        for job in accepted:  # let anything that was already running finish
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status, body = request(port, "GET", f"/jobs/{job}?wait=5", token=token)
                if status != 200 or json.loads(body)["state"] in ("done", "failed", "cancelled"):
                    break
        time.sleep(2)
        alive = worker.alive() and request(port, "GET", "/health", token=token)[0] == 200
        results.update(fuzz_statuses=dict(sorted(tally.status.items())), timings_s=timings, alive_after=alive,
                       peak_rss_mb=round(memory.peak / 2**20), after_rss_mb=round(memory.now() / 2**20))
    finally:
        memory.stop_event.set()
        code = worker.stop()
        checkpoint.unlink(missing_ok=True)
        folder.rmdir()
    statuses = results["fuzz_statuses"]
    five = sum(n for s, n in statuses.items() if s.isdigit() and int(s) >= 500)
    results.update(exit_code=code, fuzz_5xx=five, fuzz_hangs=statuses.get("hang", 0),
                   fuzz_resets=statuses.get("reset", 0))
    rows = [("fuzzed requests", f"{sum(statuses.values())} in {timings['fuzz']} s"),
            ("fuzz replies by status", ", ".join(f"{s}: {n}" for s, n in statuses.items())),
            ("fuzz 5xx / hangs / resets", f"{five} / {results['fuzz_hangs']} / {results['fuzz_resets']}")]
    if not args.fuzz_only:
        rows += attack_rows(results)
    rows += [("worker memory: start / peak / after", f"{results['start_rss_mb']} / {results['peak_rss_mb']} / "
                                                     f"{results['after_rss_mb']} MB"),
             ("alive afterwards / exit code", f"{results['alive_after']} / {code}")]
    width = max(len(r[0]) for r in rows)
    print()
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0 if alive and five == 0 and not results["fuzz_hangs"] else 1


if __name__ == "__main__":
    sys.exit(main())
