"""The worker client on its own: errors an animator can act on, proxy bypass, starting a local worker."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from jambatalk_blender.worker_client import (
    JobCancelledByUser,
    LocalWorker,
    VertexCountMismatch,
    WorkerAuthError,
    WorkerClient,
    WorkerError,
    WorkerNotRunning,
    WorkerStartError,
    check_vertex_count,
    encode_params,
)
from tests import worker_fixtures as wf
from tests.worker_fixtures import VERTICES

# The session's real worker, as pytest fixtures (requested by name below).
shared, checkpoint, worker = wf.shared, wf.checkpoint, wf.worker


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the stand-in Python is a #! script")


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_python(tmp_path: Path, body: str) -> str:
    """An executable that stands in for the worker's Python and ignores the serve arguments."""
    script = tmp_path / "fake_python"
    script.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_connection_refused_says_not_running() -> None:
    port = free_port()
    client = WorkerClient(f"http://127.0.0.1:{port}/", "t" * 32, timeout=5)
    assert client.url == f"http://127.0.0.1:{port}"
    with pytest.raises(WorkerNotRunning) as caught:
        client.health()
    assert str(caught.value).startswith(f"The worker at http://127.0.0.1:{port} is not running (connection refused).")
    with pytest.raises(WorkerNotRunning):
        WorkerClient.connect(f"http://127.0.0.1:{port}", "t" * 32)
    assert "t" * 32 not in repr(client)  # the token never ends up in logs


def test_bad_url_is_refused_early() -> None:
    with pytest.raises(WorkerError, match="not a URL like"):
        WorkerClient("127.0.0.1:8000", "token")


def test_params_header_sends_only_set_fields() -> None:
    assert encode_params() is None
    assert encode_params(model=None, strength=None) is None
    assert json.loads(encode_params(strength=2, client="Zoë")) == {"strength": 2, "client": "Zoë"}
    assert encode_params(client="Zoë").isascii()  # header values travel as latin-1
    with pytest.raises(WorkerError, match="finite"):
        encode_params(strength=float("nan"))
    with pytest.raises(TypeError, match="speed"):
        encode_params(speed=2)


def test_vertex_count_message() -> None:
    model = {"name": "demo", "state": "ready", "vertex_count": 5023}
    with pytest.raises(VertexCountMismatch) as caught:
        check_vertex_count(model, 5000)
    assert str(caught.value) == "This mesh has 5000 vertices; the model animates 5023."
    assert (caught.value.mesh_vertices, caught.value.model_vertices) == (5000, 5023)
    check_vertex_count(model, 5023)
    failed = {"name": "broken", "state": "failed", "error": "the file is truncated"}
    with pytest.raises(WorkerError, match="not loaded on the worker: the file is truncated"):
        check_vertex_count(failed, 5023)


def test_vertex_count_against_live_health(worker: LocalWorker) -> None:
    model = worker.client.health()["models"][0]
    check_vertex_count(model, VERTICES)
    with pytest.raises(VertexCountMismatch, match=f"This mesh has 5023 vertices; the model animates {VERTICES}."):
        check_vertex_count(model, 5023)


def test_proxy_is_bypassed(worker: LocalWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(key, dead_proxy)
    for key in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(key, raising=False)
    # The test means something only if plain urllib would go through the (dead) proxy.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(worker.url + "/health", timeout=5)
    client = WorkerClient.connect(worker.url, worker.token, timeout=10)
    assert client.health()["protocol"] == 1


def test_wrong_token_is_an_auth_error(worker: LocalWorker) -> None:
    with pytest.raises(WorkerAuthError) as caught:
        WorkerClient(worker.url, "not-the-token-" * 3).health()
    assert caught.value.status == 401 and caught.value.code == "unauthorized"
    assert "refused the token" in str(caught.value)


def test_should_cancel_before_submit_round_trip_is_user_cancel(worker: LocalWorker) -> None:
    # wait() checks should_cancel first: an unknown job id must not turn a user's cancel into another error.
    with pytest.raises(JobCancelledByUser):
        worker.client.wait("no-such-job", should_cancel=lambda: True)


@posix_only
def test_start_reports_early_exit_with_stderr(tmp_path: Path) -> None:
    python = fake_python(tmp_path, "sys.stderr.write('boom: CUDA driver too old\\n'); sys.exit(3)")
    started = time.monotonic()
    with pytest.raises(WorkerStartError) as caught:
        LocalWorker.start(python, ["x.safetensors"], startup_timeout_s=30)
    assert time.monotonic() - started < 10
    assert caught.value.exit_code == 3
    assert "exited with code 3" in str(caught.value)
    assert "boom: CUDA driver too old" in str(caught.value)
    os.unlink(caught.value.log_path)  # kept for the user to read; the test has read it


@posix_only
def test_start_times_out_and_kills_the_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    python = fake_python(tmp_path, f"import os\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                                   "print('loading...', flush=True)\ntime.sleep(120)")
    started = time.monotonic()
    with pytest.raises(WorkerStartError, match="did not become ready within 1.5 s") as caught:
        LocalWorker.start(python, ["x.safetensors"], startup_timeout_s=1.5)
    os.unlink(caught.value.log_path)
    assert time.monotonic() - started < 8
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped: no orphan


@posix_only
def test_start_skips_noise_before_the_ready_line(tmp_path: Path) -> None:
    port = free_port()
    ready = {"port": port, "token": "x" * 43, "pid": 1, "protocol": 1, "url": f"http://127.0.0.1:{port}"}
    python = fake_python(tmp_path, f"print('some library says hello')\nprint({json.dumps(ready)!r}, flush=True)\n"
                                   "time.sleep(120)")
    local = LocalWorker.start(python, ["x.safetensors"], startup_timeout_s=30)
    try:
        assert (local.url, local.token) == (ready["url"], ready["token"])
        assert local.alive()
    finally:
        # Nothing answers /shutdown here, so stop() must fall back to terminating the process.
        code = local.stop(timeout_s=1)
    assert not local.alive() and code is not None
    assert not os.path.exists(local.log_path)


def test_start_with_missing_python_is_a_start_error(tmp_path: Path) -> None:
    with pytest.raises(WorkerStartError, match="Could not run the worker's Python"):
        LocalWorker.start(str(tmp_path / "no-python"), ["x.safetensors"])


def test_start_needs_a_checkpoint() -> None:
    with pytest.raises(WorkerStartError, match="at least one checkpoint"):
        LocalWorker.start(sys.executable, [])


@posix_only
def test_worker_stdout_is_drained_after_ready(tmp_path: Path) -> None:
    # A worker that keeps printing must never block on a full stdout pipe (64 KiB on Linux).
    port = free_port()
    ready = {"port": port, "token": "x" * 43, "pid": 1, "protocol": 1, "url": f"http://127.0.0.1:{port}"}
    done = tmp_path / "done"
    python = fake_python(tmp_path, f"print({json.dumps(ready)!r}, flush=True)\n"
                                   "for _ in range(5000): print('x' * 100)\n"
                                   f"sys.stdout.flush(); open({str(done)!r}, 'w').close(); time.sleep(120)")
    local = LocalWorker.start(python, ["x.safetensors"], startup_timeout_s=30)
    try:
        deadline = time.monotonic() + 20
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done.exists(), "the fake worker blocked writing to stdout"
    finally:
        local.stop(timeout_s=1)
    assert local.process.returncode is not None
