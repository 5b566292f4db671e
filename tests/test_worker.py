"""The inference worker end to end: a real `jambatalk serve` subprocess, driven over HTTP by the client.

One worker is shared by most tests (see tests/worker_fixtures.py); the few that need their own process
(parent death, SIGTERM, a refused non-loopback bind) start one and always stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import os
import queue
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter1d

from jambatalk_blender.core.local_worker import LocalWorker
from jambatalk_blender.core.worker_client import WorkerClient
from jambatalk_blender.core.worker_errors import (
    JobCancelledByUser,
    WaitTimeout,
    WorkerAuthError,
    WorkerError,
    WorkerNotRunning,
    WorkerRequestError,
)
from tests import worker_fixtures as wf
from tests.worker_fixtures import (
    MAX_BODY_MB,
    VERTICES,
    encode,
    expected_offsets,
    json_error,
    raw_request,
    speech,
    start_worker,
    worker_env,
)

# The session's real worker and the in-process reference, as pytest fixtures (requested by name below).
shared, checkpoint, worker, animator = wf.shared, wf.checkpoint, wf.worker, wf.animator

PARAMS = "X-JambaTalk-Params"
FPS = 30.0
CLIP = speech(2.5, seed=1)
WAV = encode(CLIP)


def long_clip() -> bytes:
    """90 s of speech in several 20 s windows, kept under the shared worker's 1 MB body cap: 8 kHz, 8-bit."""
    data = encode(speech(90.0, seed=5, sample_rate=8000), sample_rate=8000, subtype="PCM_U8")
    assert len(data) < MAX_BODY_MB * 2**20
    return data


def wait_state(client: WorkerClient, job_id: str, states: tuple[str, ...], timeout_s: float = 60.0,
               poll_s: float = 0.02) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.status(job_id)
        if status["state"] in states:
            return status
        assert time.monotonic() < deadline, f"job {job_id} never reached {states}: {status}"
        time.sleep(poll_s)


def assert_serving(worker: LocalWorker) -> None:
    assert worker.alive(), worker.stderr_tail()
    status, _, payload = raw_request(worker, "GET", "/health")
    assert status == 200 and json.loads(payload)["protocol"] == 1


def assert_idle(client: WorkerClient, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (queue_now := client.health()["queue"])["running"] or queue_now["queued"]:
        assert time.monotonic() < deadline, f"the worker is still busy: {queue_now}"
        time.sleep(0.05)


# -- happy path ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base(worker: LocalWorker) -> np.ndarray:
    """The worker's result for WAV with default parameters."""
    offsets, _ = worker.client.animate(WAV, client="base")
    return offsets


def test_health(worker: LocalWorker) -> None:
    health = worker.client.health()
    assert health["protocol"] == 1
    assert health["device"] == "cpu"
    assert health["limits"]["max_body_bytes"] == MAX_BODY_MB * 2**20
    (model,) = health["models"]
    assert model["name"] == "tiny" and model["state"] == "ready" and model["error"] is None
    assert model["vertex_count"] == VERTICES
    assert model["motion_fps"] == FPS
    assert model["styles"] == []
    assert isinstance(model["licence"], str) and model["licence"]


def test_wav_result_equals_in_process(worker: LocalWorker, animator, base: np.ndarray) -> None:
    expected = expected_offsets(animator, WAV)
    progress: list[tuple[float, str]] = []
    offsets, meta = worker.client.animate(WAV, on_progress=lambda p, s: progress.append((p, s)), poll_s=0.02)
    assert offsets.dtype == np.float32
    assert offsets.shape == expected.shape == (animator.model.motion_frames_for(len(CLIP)), VERTICES, 3)
    np.testing.assert_allclose(offsets, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(base, expected, atol=1e-5, rtol=0)
    assert meta == {"fps": FPS, "start_s": 0.0, "frames": expected.shape[0], "vertices": VERTICES,
                    "output": "vertices", "shape": (expected.shape[0], VERTICES, 3)}
    assert progress[-1] == (1.0, "done")
    assert [p for p, _ in progress] == sorted(p for p, _ in progress)


def test_flac_result_equals_in_process(worker: LocalWorker, animator, tmp_path) -> None:
    flac = encode(CLIP, fmt="FLAC")
    assert flac[:4] == b"fLaC"
    path = tmp_path / "take.flac"
    path.write_bytes(flac)
    job_id = worker.client.submit_file(path, client="flac")
    worker.client.wait(job_id)
    offsets, meta = worker.client.result(job_id)
    np.testing.assert_allclose(offsets, expected_offsets(animator, flac), atol=1e-5, rtol=0)
    assert meta["frames"] == offsets.shape[0]


def test_float16_result(worker: LocalWorker, base: np.ndarray) -> None:
    offsets, meta = worker.client.animate(WAV, dtype="float16")
    assert offsets.dtype == np.float16 and offsets.shape == base.shape
    np.testing.assert_allclose(offsets.astype(np.float32), base, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("via", ["http", "file"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_result_bytes_are_the_npy_file_the_client_reads(worker: LocalWorker, dtype: str, via: str) -> None:
    # The worker streams the array from memory (or writes it to a file in its private directory); the client
    # reads it into one buffer (or maps the file) and views it. Both must agree with numpy's own .npy reader on
    # the exact bytes sent.
    client = worker.client if via == "file" else WorkerClient(worker.url, worker.token)
    assert (client.result_dir is not None) == (via == "file")
    job_id = client.submit(WAV, dtype=dtype, strength=1.5)
    client.wait(job_id)
    status, headers, payload = raw_request(worker, "GET", f"/jobs/{job_id}/result")
    assert status == 200 and int(headers["content-length"]) == len(payload)
    reference = np.load(io.BytesIO(payload), allow_pickle=False)
    offsets, meta = client.result(job_id)
    assert offsets.dtype == reference.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(offsets, reference)
    assert offsets.shape == (meta["frames"], VERTICES, 3)
    assert offsets.flags.writeable and offsets.flags.c_contiguous and offsets.flags.aligned
    offsets[0] = 7.0  # writable; for a mapped file copy-on-write: nothing reaches the worker's file
    assert os.listdir(worker.client.result_dir) == []  # the client removed the file it read
    head_status, head_headers, head_payload = raw_request(worker, "HEAD", f"/jobs/{job_id}/result")
    assert head_status == 200 and head_payload == b"" and head_headers["content-length"] == str(len(payload))


def test_result_as_a_file(worker: LocalWorker) -> None:
    directory = worker.ready["result_dir"]
    assert worker.client.result_dir == directory and os.path.isabs(directory)
    info = os.lstat(directory)
    assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()
    job_id = worker.client.submit(WAV, start_s=0.25)
    worker.client.wait(job_id)
    status, headers, payload = raw_request(worker, "GET", f"/jobs/{job_id}/result?via=file")
    assert status == 200 and headers["content-type"] == "application/json"
    reply = json.loads(payload)
    assert set(reply) == {"file", "bytes", "fps", "start_s", "frames", "vertices", "output"}
    assert os.path.basename(reply["file"]) == reply["file"] and reply["file"].startswith(job_id)
    assert (reply["fps"], reply["start_s"], reply["vertices"]) == (FPS, 0.25, VERTICES)
    path = os.path.join(directory, reply["file"])
    try:
        info = os.lstat(path)
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
        assert info.st_size == reply["bytes"]
        from_file = np.load(path, allow_pickle=False)
    finally:
        os.unlink(path)
    _, _, streamed = raw_request(worker, "GET", f"/jobs/{job_id}/result")
    np.testing.assert_array_equal(from_file, np.load(io.BytesIO(streamed), allow_pickle=False))
    assert from_file.shape == (reply["frames"], VERTICES, 3)
    # Every fetch gets a file of its own.
    second = json.loads(raw_request(worker, "GET", f"/jobs/{job_id}/result?via=file")[2])["file"]
    assert second != reply["file"]
    os.unlink(os.path.join(directory, second))
    status, _, payload = raw_request(worker, "GET", f"/jobs/{job_id}/result?via=pigeon")
    assert status == 400 and json_error(status, payload)["code"] == "bad_params"


def test_file_results_are_swept() -> None:
    from model_core.worker.responses import FileResults

    with tempfile.TemporaryDirectory() as directory:
        files = FileResults(Path(directory), ttl_s=60.0)
        array = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
        name, size = files.write("000001-abc", array)
        path = Path(directory) / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_size == size
        np.testing.assert_array_equal(np.load(path, allow_pickle=False), array)
        files.sweep()  # younger than the TTL: kept
        assert path.exists()
        files.sweep(max_age_s=0.0)
        assert not path.exists() and os.listdir(directory) == []
        files.sweep(max_age_s=0.0)  # already gone: nothing happens


def test_strength_scales_offsets(worker: LocalWorker, base: np.ndarray) -> None:
    offsets, _ = worker.client.animate(WAV, strength=2.0)
    np.testing.assert_allclose(offsets, 2.0 * base, atol=1e-6, rtol=0)
    still, _ = worker.client.animate(WAV, strength=0)
    assert not still.any()


def test_smoothing_makes_motion_smoother(worker: LocalWorker, base: np.ndarray) -> None:
    offsets, _ = worker.client.animate(WAV, smoothing_s=0.1)
    np.testing.assert_allclose(offsets, gaussian_filter1d(base, sigma=0.1 * FPS, axis=0, mode="nearest"),
                               atol=1e-5, rtol=0)
    jitter = np.abs(np.diff(offsets, axis=0)).mean()
    assert jitter < 0.5 * np.abs(np.diff(base, axis=0)).mean()


def test_crop_range(worker: LocalWorker, animator) -> None:
    offsets, meta = worker.client.animate(WAV, start_s=0.5, end_s=2.0)
    expected = expected_offsets(animator, WAV, 0.5, 2.0)
    assert offsets.shape[0] == animator.model.motion_frames_for(int(1.5 * wf.SR)) == expected.shape[0]
    assert offsets.shape[0] < animator.model.motion_frames_for(len(CLIP))
    np.testing.assert_allclose(offsets, expected, atol=1e-5, rtol=0)
    assert meta["start_s"] == 0.5 and meta["fps"] == FPS and meta["frames"] == offsets.shape[0]
    tail, meta = worker.client.animate(WAV, start_s=1.0)
    assert meta["start_s"] == 1.0
    assert tail.shape[0] == animator.model.motion_frames_for(int(1.5 * wf.SR))


def test_result_headers(worker: LocalWorker) -> None:
    job_id = worker.client.submit(WAV, start_s=0.25)
    worker.client.wait(job_id)
    status, headers, payload = raw_request(worker, "GET", f"/jobs/{job_id}/result")
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert float(headers["x-jambatalk-fps"]) == FPS
    assert float(headers["x-jambatalk-start-seconds"]) == 0.25
    assert int(headers["x-jambatalk-vertices"]) == VERTICES
    assert payload[:6] == b"\x93NUMPY"


def run_asgi(app, method: str = "GET") -> list[dict]:
    """Drive one ASGI response in-process; the messages it sends."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "method": method, "headers": []}, receive, send))
    return sent


@pytest.mark.parametrize("shape,dtype,chunk", [((5, 7, 3), np.float32, 16), ((5, 7, 3), np.float16, 100),
                                               ((5, 7, 3), np.float32, 10**6), ((0, 7, 3), np.float32, 8)])
def test_npy_response_streams_the_array_in_chunks(shape: tuple[int, ...], dtype, chunk: int) -> None:
    from model_core.worker.responses import NpyResponse

    array = np.arange(np.prod(shape), dtype=np.float32).reshape(shape).astype(dtype)
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    expected = buffer.getvalue()
    start, *bodies = run_asgi(NpyResponse(array, {"X-Test": "1"}, chunk_bytes=chunk))
    headers = dict(start["headers"])
    assert start["status"] == 200 and headers[b"content-length"] == str(len(expected)).encode()
    assert headers[b"content-type"] == b"application/octet-stream" and headers[b"x-test"] == b"1"
    assert b"".join(bytes(m["body"]) for m in bodies) == expected
    assert [m["more_body"] for m in bodies] == [True] * (len(bodies) - 1) + [False]
    assert all(len(m["body"]) <= chunk for m in bodies[1:])
    assert len(bodies) == 1 + -(-array.nbytes // chunk)  # the header, then ceil(nbytes / chunk) slices
    head = run_asgi(NpyResponse(array, {}), method="HEAD")
    assert [m.get("body") for m in head[1:]] == [b""] and not head[-1]["more_body"]


def test_job_board_watchers_see_each_state_change() -> None:
    from model_core.worker.jobs import JobBoard, JobRequest

    release = threading.Event()

    def runner(request, progress, should_cancel):
        release.wait(10)
        return np.zeros((1, 2, 3), np.float32), 1, 30.0

    board = JobBoard(runner)
    try:
        calls: list[str] = []
        job, _ = board.submit(JobRequest(model="m", samples=np.zeros(10, np.float32)))

        def record() -> None:
            calls.append(job.state)

        found = board.watch(job.id, record)
        assert found is not None and found[0] is job
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls == ["running"]
        release.set()
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls == ["running", "done"]
        board.unwatch(job, record)
        board.unwatch(job, record)  # twice: harmless
        assert job.watchers == []
        finished: list[int] = []
        assert board.watch(job.id, lambda: finished.append(1)) is not None  # already done: not registered
        assert job.watchers == [] and finished == []
        assert board.watch("no-such-job", lambda: None) is None
        # Once released (the worker is stopping), a watch on an unfinished job is answered at once.
        release.clear()
        second, _ = board.submit(JobRequest(model="m", samples=np.zeros(10, np.float32)))
        board.release_watchers()
        board.watch(second.id, lambda: finished.append(2))
        assert finished == [2]
        release.set()
    finally:
        board.stop()


# -- long polling ---------------------------------------------------------------------------------------------
def test_long_poll_returns_when_the_job_ends(worker: LocalWorker, record_property) -> None:
    client = worker.client
    before = time.monotonic()
    job_id = client.submit(long_clip(), client="long-poll")
    states = []
    while True:
        status = client.status(job_id, wait=60)
        returned = time.monotonic()
        states.append(status["state"])
        assert status["waited_s"] < 50, status
        if status["state"] in ("done", "failed", "cancelled"):
            break
    assert status["state"] == "done", status
    assert states[-2:] == ["running", "done"] or states == ["done"], states
    # The job ended at created + elapsed_s (worker clock); created lies after `before` (client clock), so this
    # bounds from above how long the reply came after the end: a long poll answers at once, not at its timeout.
    latency = returned - (before + status["elapsed_s"])
    record_property("long_poll_latency_s", round(latency, 3))
    print(f"\nlong poll: states {states}, answered at most {latency:.3f} s after the job ended")
    assert latency < 2.0
    # A finished job answers at once, whatever the wait.
    asked = time.monotonic()
    again = client.status(job_id, wait=30)
    assert again["state"] == "done" and time.monotonic() - asked < 5 and again["waited_s"] < 1
    client.result(job_id)


def test_long_poll_holds_for_its_wait_while_nothing_changes(worker: LocalWorker) -> None:
    client = worker.client
    blocker = client.submit(long_clip(), client="blocker")
    try:
        wait_state(client, blocker, ("running",))
        queued = client.submit(WAV, client="blocked")
        asked = time.monotonic()
        status = client.status(queued, wait=0.5)
        took = time.monotonic() - asked
        assert status["state"] == "queued" and status["position"] == 0 and 0.5 <= status["waited_s"] < 5
        assert took >= 0.5
        client.cancel(queued)
        assert client.status(queued, wait=10)["state"] == "cancelled"
    finally:
        client.cancel(blocker)
    wait_state(client, blocker, ("cancelled", "done", "failed"))
    assert_idle(client)


def test_bad_long_poll_wait_is_400(worker: LocalWorker) -> None:
    job_id = worker.client.submit(WAV)
    worker.client.wait(job_id)
    for value in ("-1", "abc", "nan", "inf", "", "1e999"):
        status, _, payload = raw_request(worker, "GET", f"/jobs/{job_id}?wait={value}")
        assert status == 400 and json_error(status, payload)["code"] == "bad_params", value
    status, _, payload = raw_request(worker, "GET", "/jobs/000000-doesnotexist?wait=1")
    assert status == 404 and json_error(status, payload)["code"] == "unknown_job"
    status, _, payload = raw_request(worker, "GET", f"/jobs/{job_id}?wait=0")
    assert status == 200 and json.loads(payload)["state"] == "done" and "waited_s" in json.loads(payload)
    status, _, payload = raw_request(worker, "GET", f"/jobs/{job_id}")
    assert status == 200 and "waited_s" not in json.loads(payload)  # the plain status is unchanged


# -- auth and the Host guard ----------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [None, "wrong-token-0123456789", ""])
def test_missing_or_wrong_token_is_401(worker: LocalWorker, token: str | None) -> None:
    for method, path in (("GET", "/health"), ("POST", "/jobs"), ("POST", "/shutdown")):
        status, _, payload = raw_request(worker, method, path, token=token)
        assert status == 401
        assert json_error(status, payload)["code"] == "unauthorized"
    assert_serving(worker)


def test_wrong_token_via_client(worker: LocalWorker) -> None:
    with pytest.raises(WorkerAuthError):
        WorkerClient(worker.url, worker.token[:-1] + "?").submit(WAV)


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1:1", "127.0.0.1", "attacker.test"])
def test_foreign_host_is_421(worker: LocalWorker, host: str) -> None:
    status, _, payload = raw_request(worker, "GET", "/health", host=host.format(port=worker.ready["port"]))
    assert status == 421
    assert json_error(status, payload)["code"] == "wrong_host"


def test_localhost_host_is_accepted(worker: LocalWorker) -> None:
    status, _, _ = raw_request(worker, "GET", "/health", host=f"localhost:{worker.ready['port']}")
    assert status == 200


def test_non_loopback_without_token_file_refuses_to_start(checkpoint) -> None:
    refused = wf.refused_start(checkpoint, "--host", "0.0.0.0")
    assert "requires an explicit --token-file" in refused.stderr_tail
    assert "exited with code 2" in str(refused)


# -- cancelling ------------------------------------------------------------------------------------------------
def test_cancel_running_job(worker: LocalWorker, record_property) -> None:
    client = worker.client
    job_id = client.submit(long_clip(), client="long")
    first_seen: dict[str, float] = {}
    asked_at: list[float] = []

    def should_cancel() -> bool:
        stage = client.status(job_id)["stage"]
        first_seen.setdefault(stage, time.monotonic())
        if stage.startswith("window 2 "):  # window 1 has been timed: it is what a cancel may have to wait for
            asked_at.append(time.monotonic())
            return True
        return False

    with pytest.raises(JobCancelledByUser):
        client.wait(job_id, should_cancel=should_cancel, poll_s=0.02, timeout_s=120)
    status = wait_state(client, job_id, ("cancelled", "done", "failed"), timeout_s=60)
    latency = time.monotonic() - asked_at[0]
    window_starts = {int(stage.split()[1]): t for stage, t in first_seen.items() if stage.startswith("window ")}
    window_s = window_starts[2] - window_starts[1] if 1 in window_starts else 0.0
    record_property("cancel_latency_s", round(latency, 3))
    print(f"\ncancel latency (DELETE -> cancelled): {latency:.3f} s; one window took {window_s:.3f} s")
    assert status["state"] == "cancelled" and status["progress"] < 0.5, status
    # A running job stops at its next window boundary: at most about one window's compute. 5 s is plenty on an
    # idle machine; on a CPU shared with other heavy jobs a window itself can take longer, so allow 3 windows.
    assert latency < max(5.0, 3 * window_s)
    with pytest.raises(WorkerRequestError) as caught:
        client.result(job_id)
    assert caught.value.status == 409 and caught.value.code == "not_ready"
    assert_idle(client)


def test_animate_cancels_its_job_when_it_gives_up(worker: LocalWorker) -> None:
    class Recording(WorkerClient):
        def submit(self, audio: bytes, **params) -> str:
            self.job_id = super().submit(audio, **params)
            return self.job_id

    client = Recording(worker.url, worker.token)
    with pytest.raises(WaitTimeout):
        client.animate(long_clip(), timeout_s=0.05, client="impatient")
    assert wait_state(client, client.job_id, ("cancelled", "done", "failed"))["state"] == "cancelled"
    assert_idle(client)


def test_cancelled_queued_job_never_runs(worker: LocalWorker) -> None:
    client = worker.client
    running = client.submit(long_clip(), client="first")
    wait_state(client, running, ("running",))
    queued = client.submit(WAV, client="second")
    assert client.status(queued)["state"] == "queued"
    reply = client.cancel(queued)
    assert reply["state"] == "cancelled" and reply["stage"] == "cancelled before it started"
    client.cancel(running)
    wait_state(client, running, ("cancelled",), timeout_s=30)
    assert_idle(client)
    status = client.status(queued)
    assert status["state"] == "cancelled" and status["compute_s"] == 0.0 and status["progress"] == 0.0
    assert client.cancel(queued)["state"] == "cancelled"  # cancelling again changes nothing
    with pytest.raises(WorkerRequestError) as caught:
        client.result(queued)
    assert caught.value.status == 409


# -- malformed input ---------------------------------------------------------------------------------------------
def silent_wav() -> bytes:
    return encode(np.zeros(8000, dtype=np.float32))


def nan_wav() -> bytes:
    samples = CLIP[:8000].copy()
    samples[::7] = np.nan
    return encode(samples, subtype="FLOAT")


BAD_REQUESTS = [
    # id, body, params header, status, code, words in the message
    ("random bytes", bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8)), None, 400, "bad_audio",
     "could not be decoded"),
    ("empty body", b"", None, 400, "bad_audio", "empty"),
    ("silent", silent_wav(), None, 400, "bad_audio", "silent"),
    ("nan samples", nan_wav(), None, 400, "bad_audio", "NaN"),
    ("bad json", WAV, "{strength: 2", 400, "bad_params", "not valid JSON"),
    ("json array", WAV, "[1, 2]", 400, "bad_params", "JSON object"),
    ("unknown param", WAV, '{"speed": 2, "pitch": 1}', 400, "bad_params", "pitch"),
    ("strength too high", WAV, '{"strength": 5}', 400, "bad_params", "between 0 and 4"),
    ("strength text", WAV, '{"strength": "loud"}', 400, "bad_params", "finite number"),
    ("strength nan", WAV, '{"strength": NaN}', 400, "bad_params", "finite number"),
    ("strength bool", WAV, '{"strength": true}', 400, "bad_params", "finite number"),
    ("bad dtype", WAV, '{"dtype": "float64"}', 400, "bad_params", "float16"),
    ("long client", WAV, json.dumps({"client": "x" * 65}), 400, "bad_params", "64 characters"),
    ("unknown subject", WAV, '{"subject": "Alice"}', 400, "bad_params", "Alice"),
    ("unknown model", WAV, '{"model": "vocaset"}', 404, "unknown_model", "vocaset"),
    ("start past end", WAV, '{"start_s": 9}', 400, "bad_audio", "past the end"),
    ("end before start", WAV, '{"start_s": 1, "end_s": 0.5}', 400, "bad_audio", "after the crop start"),
    ("range too short", WAV, '{"start_s": 1, "end_s": 1.001}', 400, "bad_audio", "too short"),
    ("body over the cap", b"\0" * (MAX_BODY_MB * 2**20 + 1), None, 413, "too_large", "limit"),
]


@pytest.mark.parametrize("body,header,status,code,words", [case[1:] for case in BAD_REQUESTS],
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_submissions_are_4xx_sentences(worker: LocalWorker, body: bytes, header: str | None, status: int,
                                           code: str, words: str) -> None:
    headers = {PARAMS: header} if header is not None else {}
    got, _, payload = raw_request(worker, "POST", "/jobs", body, headers)
    error = json_error(got, payload)
    assert (got, error["code"]) == (status, code), error
    assert words in error["message"]
    assert_serving(worker)


def test_bad_submission_via_client(worker: LocalWorker) -> None:
    with pytest.raises(WorkerRequestError) as caught:
        worker.client.submit(silent_wav())
    assert (caught.value.status, caught.value.code) == (400, "bad_audio")
    assert str(caught.value) == caught.value.message and "silent" in caught.value.message
    for size in (MAX_BODY_MB * 2**20 + 10, 8 * MAX_BODY_MB * 2**20):
        # Far over the cap the worker resets the connection mid-upload; the client still names the cause.
        with pytest.raises(WorkerRequestError) as caught:
            worker.client.submit(b"\0" * size)
        assert (caught.value.status, caught.value.code) == (413, "too_large")
        assert f"{MAX_BODY_MB} MB" in str(caught.value)
    assert_serving(worker)


@pytest.mark.parametrize("method,suffix", [("GET", ""), ("GET", "/result"), ("DELETE", "")])
def test_unknown_job_is_404(worker: LocalWorker, method: str, suffix: str) -> None:
    status, _, payload = raw_request(worker, method, f"/jobs/000000-doesnotexist{suffix}")
    assert status == 404 and json_error(status, payload)["code"] == "unknown_job"
    with pytest.raises(WorkerRequestError) as caught:
        worker.client.status("no such job")
    assert (caught.value.status, caught.value.code) == (404, "unknown_job")
    with pytest.raises(WorkerRequestError) as caught:
        worker.client.status("x/../../health")  # quoted: an id cannot reach another endpoint
    assert caught.value.status == 404


def test_unknown_endpoint_and_method(worker: LocalWorker) -> None:
    status, _, payload = raw_request(worker, "GET", "/nothing-here")
    assert status == 404 and json_error(status, payload)["code"] == "not_found"
    status, _, payload = raw_request(worker, "PUT", "/health", b"{}")
    assert status == 405 and json_error(status, payload)["code"] == "method_not_allowed"


# Pathological parameters that once crashed the handler (HTTP 500): they must be 400 sentences.
PATHOLOGICAL_PARAMS = [
    ("huge integer", json.dumps({"strength": 10**400})),  # math.isfinite(int) -> OverflowError
    ("deep nesting", "[" * 3000 + "]" * 3000),  # json.loads -> RecursionError
    ("lone surrogate key", '{"\\ud800": 1}'),  # echoed raw into the message; UTF-8 encoding fails
]


@pytest.mark.parametrize("header", [case[1] for case in PATHOLOGICAL_PARAMS],
                         ids=[case[0] for case in PATHOLOGICAL_PARAMS])
def test_pathological_params_are_400(worker: LocalWorker, header: str) -> None:
    status, _, payload = raw_request(worker, "POST", "/jobs", WAV, {PARAMS: header})
    assert_serving(worker)
    assert status == 400 and json_error(status, payload)["code"] == "bad_params"


def test_chunked_body_over_the_cap_is_413(worker: LocalWorker) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", worker.ready["port"], timeout=30)
    try:
        chunks = (b"\0" * 65536 for _ in range(MAX_BODY_MB * 16 + 2))
        connection.request("POST", "/jobs", body=chunks, encode_chunked=True,
                           headers={"Authorization": f"Bearer {worker.token}"})
        response = connection.getresponse()
        status, payload = response.status, response.read()
    finally:
        connection.close()
    assert_serving(worker)
    assert status == 413 and json_error(status, payload)["code"] == "too_large"


# -- fuzzing request parsing and audio decoding ----------------------------------------------------------------
TINY_WAV = encode(speech(0.25, seed=7))
KNOWN_PARAMS = ("model", "subject", "start_s", "end_s", "strength", "smoothing_s", "dtype", "client")


def texts(max_size: int) -> st.SearchStrategy[str]:
    # DEL is the one character json.dumps leaves raw that HTTP header values may not contain.
    return st.text(st.characters(blacklist_characters="\x7f"), max_size=max_size)


json_scalars = st.none() | st.booleans() | st.integers(-(10**400), 10**400) | st.floats() | texts(12)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(texts(6), inner, max_size=3), max_leaves=8)
plausible = {
    "model": st.sampled_from(["tiny", "", "Tiny", "tiny-2"]),
    "subject": st.sampled_from(["", "FaceTalk_170725_00137_TA"]),
    "start_s": st.floats(0, 0.4) | st.integers(0, 1),
    "end_s": st.floats(0, 0.4) | st.integers(0, 1),
    "strength": st.floats(-1, 5),
    "smoothing_s": st.floats(-0.1, 1.5),
    "dtype": st.sampled_from(["float32", "float16", "float64", "int8"]),
    "client": texts(70),
}
param_objects = st.fixed_dictionaries({}, optional={k: v | json_values for k, v in plausible.items()}).flatmap(
    lambda known: st.dictionaries(texts(8), json_values, max_size=2).map(lambda extra: {**extra, **known})
    | st.just(known))
header_values = st.one_of(
    st.none(),
    param_objects.map(lambda d: json.dumps(d).encode()),
    # UTF-8 bytes in a header; lone surrogates become the invalid bytes a broken client would send.
    param_objects.map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    # Anything a valid HTTP header value can hold (visible latin-1 and spaces): the worker's parser, not h11's.
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f",
                          blacklist_categories=("Cc",)), max_size=120).map(lambda t: t.encode("latin-1")),
)


def mutate(data: bytes, edits: list[tuple[int, int]], length: int) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out[:length])


header_edits = st.tuples(st.integers(0, 63), st.integers(0, 255))  # the RIFF/fmt/data headers
anywhere_edits = st.tuples(st.integers(0, len(TINY_WAV) - 1), st.integers(0, 255))
bodies = st.one_of(
    st.binary(max_size=600),
    st.builds(mutate, st.just(TINY_WAV), st.lists(header_edits | anywhere_edits, max_size=6),
              st.integers(0, len(TINY_WAV))),
    st.sampled_from([b"", TINY_WAV, encode(speech(0.25, seed=8), fmt="FLAC"), silent_wav(), nan_wav()]),
)


def test_fuzz_submissions(worker: LocalWorker) -> None:
    accepted = []
    seen: dict[int, int] = {}

    @settings(max_examples=500, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(body=bodies, header=header_values)
    def submit_once(body: bytes, header: bytes | None) -> None:
        headers = {PARAMS: header} if header is not None else {}
        status, response_headers, payload = raw_request(worker, "POST", "/jobs", body, headers, timeout=20)
        seen[status] = seen.get(status, 0) + 1
        assert response_headers["content-type"] == "application/json", (status, payload)
        if status == 202:
            reply = json.loads(payload)
            assert reply["state"] == "queued" and isinstance(reply["job"], str), reply
            accepted.append(reply["job"])
            # Cancel at once so the queue never backs up behind the fuzzer.
            cancel_status, _, cancel_payload = raw_request(worker, "DELETE", f"/jobs/{reply['job']}")
            assert cancel_status == 200, cancel_payload
        else:
            assert 400 <= status < 500, (status, payload, body[:40], header)
            json_error(status, payload)

    submit_once()
    print(f"\nfuzz: replies by status {dict(sorted(seen.items()))}")
    assert sum(seen.values()) >= 500
    assert_serving(worker)
    for job_id in accepted:  # a job already running when cancelled finishes its (single) window
        wait_state(worker.client, job_id, ("cancelled", "done", "failed"))
    assert_idle(worker.client)


# -- many clients at once -------------------------------------------------------------------------------------
def test_many_clients(worker: LocalWorker, animator) -> None:
    takes = {(artist, take): encode(speech(0.5 + 0.1 * (3 * artist + take), seed=100 + 3 * artist + take))
             for artist in range(8) for take in range(3)}
    expected = {key: expected_offsets(animator, data) for key, data in takes.items()}

    def artist_session(artist: int) -> dict:
        client = WorkerClient(worker.url, worker.token)
        jobs = {take: client.submit(takes[artist, take], client=f"artist-{artist}") for take in range(3)}
        results = {}
        for take, job_id in jobs.items():
            client.wait(job_id, poll_s=0.05, timeout_s=300)
            results[artist, take] = client.result(job_id)
        return results

    results: dict = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for part in pool.map(artist_session, range(8)):
            results.update(part)
    assert len(results) == 24
    frame_counts = set()
    for key, (offsets, meta) in results.items():
        assert offsets.shape == expected[key].shape, key
        np.testing.assert_allclose(offsets, expected[key], atol=1e-5, rtol=0, err_msg=str(key))
        assert meta["frames"] == offsets.shape[0]
        frame_counts.add(offsets.shape[0])
    assert len(frame_counts) == 24  # every take is distinguishable: nothing was swapped
    assert_idle(worker.client)


# -- process lifetime --------------------------------------------------------------------------------------------
def pid_gone(pid: int) -> bool:
    """True once the process has exited (a zombie nobody reaps counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


INTERMEDIATE = """
import os, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-m", "model_core.cli", "serve", "--checkpoint", sys.argv[1],
                           "--device", "cpu", "--port", "0", "--parent-pid", str(os.getpid())],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
ready = worker.stdout.readline().decode().strip()
print(worker.pid, ready, flush=True)
time.sleep(600)  # until the test kills us
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process semantics")
def test_worker_exits_when_its_parent_dies(checkpoint) -> None:
    parent = subprocess.Popen([sys.executable, "-c", INTERMEDIATE, str(checkpoint)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, env=worker_env())
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: lines.put(parent.stdout.readline()), daemon=True).start()
    worker_pid = None
    try:
        line = lines.get(timeout=120).decode()
        worker_pid_text, _, ready = line.partition(" ")
        worker_pid = int(worker_pid_text)
        assert json.loads(ready)["pid"] == worker_pid
        assert not pid_gone(worker_pid)
        parent.kill()
        parent.wait(timeout=10)
        killed_at = time.monotonic()
        while not pid_gone(worker_pid) and time.monotonic() - killed_at < 15:
            time.sleep(0.05)
        took = time.monotonic() - killed_at
        print(f"\nworker exit after its parent died: {took:.2f} s")
        assert pid_gone(worker_pid), "the worker outlived its parent"
        assert took < 5.0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=10)
        if worker_pid is not None and not pid_gone(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)  # our own grandchild: never leave it behind
        parent.stdout.close()


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGTERM on Windows")
def test_sigterm_stops_the_worker_cleanly(checkpoint) -> None:
    local = start_worker(checkpoint)
    answered: list[float] = []

    def long_poll(job_id: str) -> None:
        with contextlib.suppress(WorkerError):
            local.client.status(job_id, wait=60)
        answered.append(time.monotonic())

    try:
        job_id = local.client.submit(long_clip())
        wait_state(local.client, job_id, ("running",))
        # A long poll on a job queued behind it: nothing changes for it until the running job ends.
        behind = local.client.submit(long_clip(), client="behind")
        poller = threading.Thread(target=long_poll, args=(behind,))
        poller.start()
        time.sleep(0.3)  # the long poll is being held
        os.kill(local.pid, signal.SIGTERM)
        sent_at = time.monotonic()
        code = local.process.wait(timeout=60)  # the running job stops at its next window boundary
        took = time.monotonic() - sent_at
        poller.join(timeout=70)
    finally:
        local.stop()
    print(f"\nworker exit after SIGTERM with a running job: {took:.2f} s, exit code {code}; the held long poll "
          f"was answered after {answered[0] - sent_at:.2f} s")
    # Released at once, rather than held until the running job ends (or up to uvicorn's 5 s graceful timeout).
    assert answered and answered[0] - sent_at < 1.0
    assert not os.path.exists(local.ready["result_dir"])  # the worker removed its result directory
    with pytest.raises(WorkerNotRunning) as caught:
        local.client.health()  # the port is released
    # The client knows the process it started has exited: it says so, rather than "not running".
    assert "has shut down (it stopped normally)" in str(caught.value)
    assert code == 0


def test_no_file_results_flag_keeps_results_on_http(checkpoint):
    local = start_worker(checkpoint, "--no-file-results")
    try:
        assert "result_dir" not in local.ready and local.client.result_dir is None
        job = local.client.submit(WAV, client="no-files")
        local.client.wait(job, poll_s=0.05)
        offsets, _ = local.client.result(job)  # over HTTP
        assert offsets.ndim == 3 and offsets.dtype == np.float32
    finally:
        local.stop()
