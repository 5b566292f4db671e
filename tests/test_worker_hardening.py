"""The worker under attack or careless use (issue 11): idle and slow connections, stalled bodies, uploads that
decode into a lot of memory, a full audio budget, cancelled jobs, ambiguous auth, a bad --parent-pid, result
files left behind. One real worker with short timeouts and small limits serves most of these tests."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import select
import socket
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jambatalk_blender.core.local_worker import LocalWorker
from model_core.audio_io import AudioError, decode_audio_bytes
from model_core.worker.hosts import HostPolicy
from model_core.worker.responses import FileResults
from model_core.worker.state import WorkerSettings
from tests import worker_fixtures as wf
from tests.worker_fixtures import encode, expected_offsets, json_error, raw_request, speech, start_worker

shared, checkpoint, worker, animator = wf.shared, wf.checkpoint, wf.worker, wf.animator

HEAD_TIMEOUT_S = 2.0  # long enough for the requests below on a busy CI machine, short enough to wait for
BODY_TIMEOUT_S = 1.0
MAX_BODY_MB = 24
QUEUED_AUDIO_MB = 28  # the floor: one 24 MB upload plus one minute of decoded audio (3.84 MB)
TAKE_S = 55.0  # 3.5 MB once decoded at 16 kHz; its upload (8 kHz, 8 bit) is 440 kB


@pytest.fixture(scope="module")
def hardened(checkpoint: Path) -> Iterator[LocalWorker]:
    local = start_worker(checkpoint, "--head-timeout", str(HEAD_TIMEOUT_S), "--body-timeout", str(BODY_TIMEOUT_S),
                         "--max-body-mb", str(MAX_BODY_MB), "--max-audio-minutes", "1",
                         "--max-queued-audio-mb", str(QUEUED_AUDIO_MB))
    try:
        yield local
    finally:
        assert local.stop() == 0


def health(local: LocalWorker) -> dict:
    status, _, payload = raw_request(local, "GET", "/health", timeout=10)
    assert status == 200, payload
    return json.loads(payload)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def wait_idle(local: LocalWorker, timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        now = health(local)
        if not now["queue"]["running"] and not now["queue"]["queued"]:
            return now
        assert time.monotonic() < deadline, now
        time.sleep(0.05)


@contextlib.contextmanager
def open_files(wanted: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def read_reply(sock: socket.socket, timeout_s: float) -> bytes:
    """Everything the worker sends until it closes the connection (or the timeout)."""
    sock.settimeout(timeout_s)
    data = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def closed_by_peer(sock: socket.socket, timeout_s: float = 0.2) -> bool:
    sock.settimeout(timeout_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


# -- 1. idle and slow connections ------------------------------------------------------------------------------
@pytest.mark.skipif(sys.platform != "linux", reason="many sockets; Linux CI")
def test_idle_and_slow_connections_do_not_lock_out_a_client(hardened: LocalWorker) -> None:
    port = hardened.ready["port"]
    with open_files(2600):
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(1000)]
        slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
        opened = time.monotonic()
        try:
            for sock in slow:  # a request head that never ends
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Slow: " % port)
            took = []
            for _ in range(3):
                started = time.monotonic()
                status, _, payload = raw_request(hardened, "GET", "/health", timeout=5)
                took.append(time.monotonic() - started)
                assert status == 200, payload
            # All of that happened while the 1,100 connections were still open.
            assert time.monotonic() - opened < HEAD_TIMEOUT_S
            poller = select.poll()  # select() stops at descriptor 1023
            for sock in idle + slow:
                poller.register(sock, select.POLLIN)
            assert not poller.poll(0), "connections were closed before their head timeout"
            assert max(took) < HEAD_TIMEOUT_S, took
            # Then each one is closed by the worker: silent ones quietly, half-sent heads with a 408.
            replies = [read_reply(sock, HEAD_TIMEOUT_S + 5) for sock in idle[:50] + slow[:50]]
            assert time.monotonic() - opened < HEAD_TIMEOUT_S + 5
            assert all(reply == b"" for reply in replies[:50])
            assert all(reply.startswith(b"HTTP/1.1 408 ") and b'"request_timeout"' in reply for reply in replies[50:])
        finally:
            for sock in idle + slow:
                sock.close()
    assert health(hardened)["protocol"] == 1


def test_kept_alive_connection_cannot_idle_in_a_half_sent_head(hardened: LocalWorker) -> None:
    port = hardened.ready["port"]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n\r\n"
                     % (port, hardened.token.encode()))
        sock.settimeout(5)
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # the next request never completes
        started = time.monotonic()
        reply = read_reply(sock, HEAD_TIMEOUT_S + 5)
        assert time.monotonic() - started < HEAD_TIMEOUT_S + 2
        assert b"HTTP/1.1 408 " in first + reply  # (the end of the first reply may have come with it)


def test_stalled_body_is_a_408(hardened: LocalWorker) -> None:
    port = hardened.ready["port"]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                     b"Content-Length: 100000\r\n\r\n" % (port, hardened.token.encode()) + b"RIFF" * 250)
        started = time.monotonic()
        reply = read_reply(sock, BODY_TIMEOUT_S + 10)
    took = time.monotonic() - started
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"retry-after" not in head.lower()
    assert json_error(408, body)["code"] == "body_timeout"
    assert BODY_TIMEOUT_S * 0.9 < took < BODY_TIMEOUT_S + 3  # and the connection was closed after it
    assert health(hardened)["queue"]["audio_bytes"] == 0  # the upload's reservation was given back


# -- 2. decoding costs bounded from the header -----------------------------------------------------------------
def dc_flac(seconds: float, sample_rate: int) -> bytes:
    """A tiny FLAC of a long constant signal: very little to upload, a lot to decode."""
    buffer = io.BytesIO()
    block = np.full((sample_rate, 1), 0.25, dtype=np.float32)
    with sf.SoundFile(buffer, "w", samplerate=sample_rate, channels=1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(int(seconds)):
            f.write(block)
    return buffer.getvalue()


def test_upload_that_would_decode_into_a_lot_is_refused_from_its_header(hardened: LocalWorker) -> None:
    data = dc_flac(59, 384000)  # 22.7 million samples: within the minute, over 96,000 samples a second
    assert len(data) < 2**20
    before = rss_kib(hardened.pid)
    started = time.monotonic()
    status, _, payload = raw_request(hardened, "POST", "/jobs", data, timeout=30)
    took = time.monotonic() - started
    error = json_error(status, payload)
    assert status == 400 and error["code"] == "bad_audio" and "million samples" in error["message"], error
    assert took < 2.0
    assert rss_kib(hardened.pid) - before < 20 * 1024


def test_decoding_streams_in_blocks() -> None:
    """A 5-minute 48 kHz upload: memory is the 16 kHz result plus a few blocks, not the 48 kHz signal."""
    rate, seconds = 48000, 300
    t = np.arange(rate * seconds, dtype=np.float32) / rate
    data = encode(0.3 * np.sin(2 * np.pi * 220 * t), sample_rate=rate)
    del t
    result_bytes = seconds * 16000 * 4
    tracemalloc.start()
    try:
        audio = decode_audio_bytes(data, max_seconds=600)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert audio.samples.nbytes == result_bytes
    assert peak < result_bytes + 40 * 2**20, peak / 2**20  # the whole 48 kHz float signal alone is 55 MB
    with pytest.raises(AudioError, match="million samples"):
        decode_audio_bytes(data, max_seconds=600, max_source_samples=10_000_000)


def test_a_strip_of_a_recording_over_the_limits_is_accepted(hardened: LocalWorker, animator) -> None:
    """Only the requested range is decoded, and the limits (1 minute here) apply to it, not to the file."""
    rate = 8000
    data = encode(speech(600.0, seed=5, sample_rate=rate), sample_rate=rate, subtype="PCM_U8")  # 10 minutes, 4.8 MB
    status, _, payload = raw_request(hardened, "POST", "/jobs", data, timeout=30)
    assert status == 400 and "10.0 minutes long; the limit is 1.0 minutes" in json_error(status, payload)["message"]
    offsets, meta = hardened.client.animate(data, start_s=300.0, end_s=305.0)
    assert meta["start_s"] == 300.0
    np.testing.assert_allclose(offsets, expected_offsets(animator, data, 300.0, 305.0), atol=1e-5, rtol=0)
    params = json.dumps({"start_s": 300.0, "end_s": 380.0})
    status, _, payload = raw_request(hardened, "POST", "/jobs", data, {"X-JambaTalk-Params": params}, timeout=30)
    message = json_error(status, payload)["message"]
    assert status == 400 and "from 300 s to 380 s is 1.3 minutes long; the limit is 1.0 minutes" in message
    # What lies outside the range is never decoded: here, samples that would refuse the whole file.
    poisoned = speech(30.0, seed=6, sample_rate=rate)
    poisoned[: 10 * rate] = np.nan
    data = encode(poisoned, sample_rate=rate, subtype="FLOAT")
    status, _, payload = raw_request(hardened, "POST", "/jobs", data, timeout=30)
    assert status == 400 and "NaN" in json_error(status, payload)["message"]
    offsets, _ = hardened.client.animate(data, start_s=20.0, end_s=25.0)
    assert offsets.shape[0] > 0 and np.isfinite(offsets).all()


# -- 3. and 4. the audio budget, and cancelling frees audio at once ---------------------------------------------
def test_audio_budget_refuses_with_retry_after_and_cancel_frees_it(hardened: LocalWorker) -> None:
    take = encode(speech(TAKE_S, seed=3, sample_rate=8000), sample_rate=8000, subtype="PCM_U8")
    decoded = int(TAKE_S * 16000 * 4)
    accepted, refusal = [], None
    for i in range(20):
        params = json.dumps({"client": f"artist-{i}"})
        status, headers, payload = raw_request(hardened, "POST", "/jobs", take, {"X-JambaTalk-Params": params})
        if status != 202:
            refusal = (status, headers, payload)
            break
        accepted.append(json.loads(payload)["job"])
    try:
        assert refusal is not None, "the budget never filled"
        status, headers, payload = refusal
        error = json_error(status, payload)
        assert status == 503 and error["code"] == "busy" and "try again in about" in error["message"], error
        assert 1 <= int(headers["retry-after"]) <= 300
        now = health(hardened)
        limit = now["limits"]["max_queued_audio_bytes"]
        assert limit == QUEUED_AUDIO_MB * 2**20 and now["queue"]["audio_bytes"] <= limit
        assert len(accepted) >= limit // decoded - 2  # refused only when the budget is really full
        for job in accepted[1:]:  # the queued ones (the first may be running)
            raw_request(hardened, "DELETE", f"/jobs/{job}")
        # Their audio is freed at cancel, not when they expire.
        assert health(hardened)["queue"]["audio_bytes"] <= decoded
        status, _, payload = raw_request(hardened, "POST", "/jobs", take)
        assert status == 202, payload
        accepted.append(json.loads(payload)["job"])
    finally:
        for job in accepted:
            raw_request(hardened, "DELETE", f"/jobs/{job}")
    assert wait_idle(hardened)["queue"]["audio_bytes"] == 0


# -- 8. one bounded buffer per upload ---------------------------------------------------------------------------
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_upload_is_held_once_and_given_back(hardened: LocalWorker, chunked: bool) -> None:
    import http.client

    size = 20 * 2**20
    body = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()  # not audio: 400
    pid = hardened.pid
    before = rss_kib(pid)
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident size
    connection = http.client.HTTPConnection("127.0.0.1", hardened.ready["port"], timeout=30)
    try:
        headers = {"Authorization": f"Bearer {hardened.token}"}
        if chunked:
            chunks = (body[i:i + 65536] for i in range(0, size, 65536))
            connection.request("POST", "/jobs", body=chunks, encode_chunked=True, headers=headers)
        else:
            connection.request("POST", "/jobs", body=body, headers=headers)
        response = connection.getresponse()
        status, payload = response.status, response.read()
    finally:
        connection.close()
    assert status == 400 and json_error(status, payload)["code"] == "bad_audio"
    peak_growth = (rss_kib(pid, "VmHWM") - before) * 1024
    after_growth = (rss_kib(pid) - before) * 1024
    print(f"\nupload of {size / 2**20:.0f} MB: peak +{peak_growth / 2**20:.1f} MB, "
          f"after +{after_growth / 2**20:.1f} MB")
    assert peak_growth < 1.5 * size  # once, not two or three times
    assert after_growth < 8 * 2**20  # and given back


# -- 7. result files swept on a timer ---------------------------------------------------------------------------
def test_leftover_result_files_are_swept_without_further_writes() -> None:
    with tempfile.TemporaryDirectory() as directory:
        files = FileResults(Path(directory), ttl_s=0.3)
        try:
            name, _ = files.write("000001-abc", np.zeros((2, 4, 3), dtype=np.float32))
            assert (Path(directory) / name).exists()
            deadline = time.monotonic() + 5
            while os.listdir(directory) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert os.listdir(directory) == []  # nobody wrote another file: the timer did it
        finally:
            files.close()


# -- 9. small ones ----------------------------------------------------------------------------------------------
def test_two_authorization_headers_are_refused(worker: LocalWorker) -> None:
    port = worker.ready["port"]
    for first, second in ((worker.token, "wrong-token-0123456789"), ("wrong-token-0123456789", worker.token),
                          (worker.token, worker.token)):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                         b"Authorization: Bearer %s\r\nContent-Length: 0\r\n\r\n"
                         % (port, first.encode(), second.encode()))
            reply = read_reply(sock, 10)
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), reply[:200]
        assert json_error(400, body)["code"] == "ambiguous_header"


def test_missing_parent_pid_refuses_to_start(checkpoint: Path) -> None:
    # LocalWorker passes its own --parent-pid first; the last one given wins.
    refused = wf.refused_start(checkpoint, "--parent-pid", "999999999")
    assert "--parent-pid 999999999 is not a running process" in refused.stderr_tail


def test_token_is_not_in_reprs() -> None:
    secret = "s3cret-token-0123456789"  # bake_job.WorkerConfig (needs bpy): tests_blender/test_bake.py
    assert secret not in repr(WorkerSettings(token=secret, hosts=HostPolicy("127.0.0.1", 1)))


def test_connection_cap_closes_the_oldest_idle_connections() -> None:
    """A real uvicorn server with the guard and a cap of 20: connection 21 onwards each push out the oldest one
    still waiting for a head, so the newest (a real client's) always gets in."""
    import asyncio
    import threading

    import uvicorn
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from model_core.worker.connections import ConnectionGuard

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    guard = ConnectionGuard(head_timeout_s=30.0, max_connections=20)
    config = uvicorn.Config(guard.wrap_app(app), http=guard.protocol_factory(H11Protocol), lifespan="off",
                            log_level="warning", limit_concurrency=None)
    server = uvicorn.Server(config)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        try:
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_reply(client, 0.5).startswith(b"HTTP/1.1 200 ")
            closed = [sock for sock in idle if closed_by_peer(sock)]
            # The oldest 21 made room for the 20 newer idle ones and the client; those are still open.
            assert len(closed) == 21 and closed == idle[:21], len(closed)
            assert guard.evicted == 21 and guard.open_connections <= 20
        finally:
            for sock in idle:
                sock.close()
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def test_null_numbers_in_params_mean_their_defaults(worker: LocalWorker) -> None:
    """Found by scripts/bench_worker_abuse.py: {"start_s": null, "end_s": 0.2} was a 500."""
    body = encode(speech(0.5, seed=9))
    params = json.dumps({"start_s": None, "end_s": 0.3, "strength": None, "smoothing_s": None})
    status, _, payload = raw_request(worker, "POST", "/jobs", body, {"X-JambaTalk-Params": params})
    assert status == 202, payload
    raw_request(worker, "DELETE", f"/jobs/{json.loads(payload)['job']}")
