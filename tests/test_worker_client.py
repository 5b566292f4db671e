"""The worker client on its own: errors an animator can act on, proxy bypass, starting a local worker."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import struct
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jambatalk_blender.core.local_worker import LocalWorker
from jambatalk_blender.core.npy_reader import parse_npy_header
from jambatalk_blender.core.protocol import MAX_NPY_HEADER_BYTES
from jambatalk_blender.core.worker_client import WorkerClient, encode_params, private_directory
from jambatalk_blender.core.worker_errors import (
    JobCancelledByUser,
    VertexCountMismatch,
    WorkerAuthError,
    WorkerError,
    WorkerNotRunning,
    WorkerStartError,
    check_vertex_count,
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


# -- a stand-in worker, to send the client what a real worker never would -------------------------------------
Reply = tuple[int, dict[str, str], bytes]


class FakeWorker:
    """A loopback HTTP server whose replies a test chooses: `routes` maps a path (without query) to a function
    of the full request path returning (status, headers, body). Every request is recorded with its time."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[str], Reply]] = {}
        self.requests: list[tuple[float, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                fake.requests.append((time.monotonic(), self.path))
                route = fake.routes.get(self.path.split("?", 1)[0])
                status, headers, body = route(self.path) if route else (404, {}, b"{}")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)  # HTTP/1.0: the connection closes after this, even if the body is short

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.client = WorkerClient(f"http://127.0.0.1:{self.server.server_address[1]}", "t" * 32, timeout=10)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def fake() -> Iterator[FakeWorker]:
    worker = FakeWorker()
    yield worker
    worker.close()


def npy(array: np.ndarray, **save_args: object) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **save_args)
    return buffer.getvalue()


def npy_with_header(header: str, data: bytes = b"", version: int = 1) -> bytes:
    """A .npy image with exactly this header text (padded like numpy's) and data."""
    text = header.encode("latin-1") + b"\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(text)) + text + data


def result_reply(body: bytes, frames: int, vertices: int, **overrides: str) -> Callable[[str], Reply]:
    headers = {"Content-Type": "application/octet-stream", "X-JambaTalk-Fps": "30.0",
               "X-JambaTalk-Start-Seconds": "0.0", "X-JambaTalk-Frames": str(frames),
               "X-JambaTalk-Vertices": str(vertices), "Content-Length": str(len(body)), **overrides}
    return lambda path: (200, headers, body)


OFFSETS = np.random.default_rng(3).normal(size=(6, 5, 3)).astype(np.float32)


@pytest.mark.parametrize("dtype", ["<f4", "<f2", ">f4", ">f2"])
def test_result_round_trip_of_each_accepted_dtype(fake: FakeWorker, dtype: str) -> None:
    fake.routes["/jobs/j/result"] = result_reply(npy(OFFSETS.astype(dtype)), 6, 5, **{"X-JambaTalk-Fps": "25.0"})
    offsets, meta = fake.client.result("j")
    assert offsets.dtype == np.dtype(dtype).newbyteorder("=") and offsets.dtype.isnative
    np.testing.assert_array_equal(offsets, OFFSETS.astype(dtype))
    assert meta == {"fps": 25.0, "start_s": 0.0, "frames": 6, "vertices": 5, "output": "vertices", "shape": (6, 5, 3)}
    assert offsets.flags.writeable and offsets.flags.c_contiguous and offsets.flags.aligned


MALFORMED_RESULTS = [
    # id, body, words in the error
    ("object dtype (pickle)", npy(np.array([{"a": 1}], dtype=object), allow_pickle=True), "not float32 or float16"),
    ("float64", npy(OFFSETS.astype(np.float64)), "not float32 or float16"),
    ("int32", npy(OFFSETS.astype(np.int32)), "not float32 or float16"),
    ("fortran order", npy(np.asfortranarray(OFFSETS)), "not in C order"),
    ("wrong shape", npy(OFFSETS[:5]), "has shape (5, 5, 3)"),
    ("not npy", b"PK\x03\x04" + bytes(400), "not a .npy file"),
    ("unknown version", b"\x93NUMPY\x09\x00" + bytes(400), "version 9.0"),
    ("code in the header", npy_with_header("{'descr': '<f4', 'fortran_order': False, "
                                          "'shape': __import__('os').getpid()}", OFFSETS.tobytes()),
     "not a Python literal"),
    ("extra header key", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (6, 5, 3), "
                                         "'x': 1}", OFFSETS.tobytes()), "exactly descr, fortran_order and shape"),
    ("header is a list", npy_with_header("['<f4', False, (6, 5, 3)]", OFFSETS.tobytes()),
     "exactly descr, fortran_order and shape"),
    ("bool in the shape", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (6, 5, True)}",
                                          OFFSETS.tobytes()), "non-negative integers"),
    ("huge header length", b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + bytes(400), "claims"),
    ("header cut short", npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (6, 5, 3)}")[:30],
     "cut short"),
    ("extra data", npy(OFFSETS) + b"\0" * 4, "data bytes for shape"),
    ("version 2 header, short data", npy_with_header("{'descr': '<f4', 'fortran_order': False, "
                                                     "'shape': (6, 5, 3)}", OFFSETS.tobytes()[:-4], version=2),
     "data bytes for shape"),
]


@pytest.mark.parametrize("body,words", [case[1:] for case in MALFORMED_RESULTS],
                         ids=[case[0] for case in MALFORMED_RESULTS])
def test_malformed_results_are_refused(fake: FakeWorker, body: bytes, words: str) -> None:
    fake.routes["/jobs/j/result"] = result_reply(body, 6, 5)
    with pytest.raises(WorkerError) as caught:
        fake.client.result("j")
    assert words in str(caught.value)
    assert str(caught.value).startswith("The worker's result for job j ") and str(caught.value).endswith(".")


def test_result_never_allocates_more_than_the_take_needs(fake: FakeWorker) -> None:
    # A Content-Length far beyond frames x vertices x 3 floats is refused before any buffer is allocated.
    fake.routes["/jobs/j/result"] = result_reply(npy(OFFSETS), 6, 5, **{"Content-Length": str(2**40)})
    with pytest.raises(WorkerError, match=r"1099511627776 bytes for a result of shape \(6, 5, 3\)"):
        fake.client.result("j")


@pytest.mark.parametrize("missing", ["X-JambaTalk-Fps", "X-JambaTalk-Frames", "Content-Length"])
def test_result_without_its_headers_is_refused(fake: FakeWorker, missing: str) -> None:
    reply = result_reply(npy(OFFSETS), 6, 5)

    def without(path: str) -> Reply:
        status, headers, body = reply(path)
        # Content-Length is added back by the handler unless present: send a wrong one for that case.
        headers = {k: v for k, v in headers.items() if k != missing}
        if missing == "Content-Length":
            headers["Content-Length"] = "many"
        return status, headers, body

    fake.routes["/jobs/j/result"] = without
    with pytest.raises(WorkerError, match="missing or bad (field|header)"):
        fake.client.result("j")


def test_truncated_result_is_an_error(fake: FakeWorker) -> None:
    body = npy(OFFSETS)
    fake.routes["/jobs/j/result"] = result_reply(body[:-40], 6, 5, **{"Content-Length": str(len(body))})
    with pytest.raises(WorkerError, match=f"the reply ended after {len(body) - 40} of {len(body)} bytes"):
        fake.client.result("j")


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.binary(max_size=200), version=st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00"]))
def test_fuzz_npy_header_parser(data: bytes, version: bytes) -> None:
    # Whatever follows the magic, the parser answers a header it fully checked or a ValueError: nothing else.
    try:
        dtype, shape, offset = parse_npy_header(b"\x93NUMPY" + version + data)
    except ValueError:
        return
    assert dtype.kind == "f" and dtype.itemsize in (2, 4) and all(n >= 0 for n in shape)
    assert 10 <= offset <= 12 + MAX_NPY_HEADER_BYTES


def test_wait_polls_a_worker_without_long_polling(fake: FakeWorker) -> None:
    # An older worker ignores ?wait= and answers at once: wait() must fall back to one request per poll_s,
    # not spin.
    started = time.monotonic()

    def status(path: str) -> Reply:
        state = "done" if time.monotonic() - started > 0.4 else "running"
        return 200, {"Content-Type": "application/json"}, json.dumps({"state": state, "progress": 0.5}).encode()

    fake.routes["/jobs/j"] = status
    seen: list[float] = []
    assert fake.client.wait("j", poll_s=0.1, on_progress=lambda p, s: seen.append(p))["state"] == "done"
    assert all("?wait=0.100" in path for _, path in fake.requests), fake.requests
    assert 4 <= len(fake.requests) <= 8, f"{len(fake.requests)} requests in 0.4 s with poll_s=0.1"
    assert len(seen) == len(fake.requests)


def test_long_poll_gets_time_beyond_the_socket_timeout(fake: FakeWorker) -> None:
    def held(path: str) -> Reply:
        time.sleep(1.5)  # the worker holds the reply for the whole wait
        return 200, {}, json.dumps({"state": "running", "waited_s": 1.5}).encode()

    fake.routes["/jobs/j"] = held
    client = WorkerClient(fake.client.url, "t" * 32, timeout=1.0)
    assert client.status("j", wait=1.5)["waited_s"] == 1.5
    with pytest.raises(WorkerError, match="finite"):
        client.status("j", wait=float("inf"))


# -- results as files in a private directory ----------------------------------------------------------------
def file_reply(name: str, size: int, frames: int = 6, vertices: int = 5) -> Reply:
    body = {"file": name, "bytes": size, "fps": 30.0, "start_s": 0.0, "frames": frames, "vertices": vertices}
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def file_client(fake: FakeWorker, directory: Path) -> WorkerClient:
    return WorkerClient(fake.client.url, "t" * 32, timeout=10, result_dir=directory)


@posix_only
@pytest.mark.parametrize("dtype", ["<f4", "<f2"])
def test_result_file_is_mapped_and_removed(fake: FakeWorker, tmp_path: Path, dtype: str) -> None:
    data = npy(OFFSETS.astype(dtype))
    (tmp_path / "000001-ab.npy").write_bytes(data)
    fake.routes["/jobs/j/result"] = lambda path: file_reply("000001-ab.npy", len(data))
    offsets, meta = file_client(fake, tmp_path).result("j")
    np.testing.assert_array_equal(offsets, OFFSETS.astype(dtype))
    assert meta == {"fps": 30.0, "start_s": 0.0, "frames": 6, "vertices": 5, "output": "vertices", "shape": (6, 5, 3)}
    assert offsets.flags.writeable and offsets.flags.aligned
    assert list(tmp_path.iterdir()) == []  # removed once mapped
    offsets[...] = 0  # copy-on-write: allowed, and the (removed) file is not touched
    assert [path for _, path in fake.requests] == ["/jobs/j/result?via=file"]


@posix_only
@pytest.mark.parametrize("name", ["../outside.npy", "/tmp/outside.npy", "sub/x.npy", "x.txt", "", "..npy/.",
                                  "x.npy\x00", 7])
def test_result_file_name_must_be_a_bare_name(fake: FakeWorker, tmp_path: Path, name: object) -> None:
    private = tmp_path / "results"
    private.mkdir(mode=0o700)
    outside = tmp_path / "outside.npy"
    outside.write_bytes(npy(OFFSETS))
    fake.routes["/jobs/j/result"] = lambda path: (200, {}, json.dumps({"file": name, "bytes": 10, "fps": 30,
                                                                       "start_s": 0, "frames": 6,
                                                                       "vertices": 5}).encode())
    with pytest.raises(WorkerError, match="is not a bare .npy name"):
        file_client(fake, private).result("j")
    assert outside.exists()  # never read nor removed


@posix_only
def test_result_file_that_is_a_link_is_refused(fake: FakeWorker, tmp_path: Path) -> None:
    private = tmp_path / "results"
    private.mkdir(mode=0o700)
    outside = tmp_path / "outside.npy"
    data = npy(OFFSETS)
    outside.write_bytes(data)
    (private / "link.npy").symlink_to(outside)
    fake.routes["/jobs/j/result"] = lambda path: file_reply("link.npy", len(data))
    with pytest.raises(WorkerError, match="cannot be opened"):
        file_client(fake, private).result("j")
    assert outside.read_bytes() == data and not (private / "link.npy").exists()


MALFORMED_FILES = [
    ("object dtype (pickle)", npy(np.array([{"a": 1}], dtype=object), allow_pickle=True), None,
     "not float32 or float16"),
    ("fortran order", npy(np.asfortranarray(OFFSETS)), None, "not in C order"),
    ("wrong shape", npy(OFFSETS[:5]), None, "has shape (5, 5, 3)"),
    ("size differs from the reply", npy(OFFSETS), 10, "not 10"),
    ("extra data", npy(OFFSETS) + b"\0" * 8, None, "data bytes for shape"),
    ("not npy", b"PK\x03\x04" + bytes(400), None, "not a .npy file"),
]


@posix_only
@pytest.mark.parametrize("data,claimed,words", [case[1:] for case in MALFORMED_FILES],
                         ids=[case[0] for case in MALFORMED_FILES])
def test_malformed_result_files_are_refused_and_removed(fake: FakeWorker, tmp_path: Path, data: bytes,
                                                        claimed: int | None, words: str) -> None:
    (tmp_path / "r.npy").write_bytes(data)
    fake.routes["/jobs/j/result"] = lambda path: file_reply("r.npy", claimed if claimed is not None else len(data))
    with pytest.raises(WorkerError) as caught:
        file_client(fake, tmp_path).result("j")
    assert words in str(caught.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code,status,keeps_asking", [("no_file_results", 400, False),
                                                      ("file_write_failed", 503, True)])
def test_result_falls_back_to_http(fake: FakeWorker, tmp_path: Path, code: str, status: int,
                                   keeps_asking: bool) -> None:
    http_reply = result_reply(npy(OFFSETS), 6, 5)

    def route(path: str) -> Reply:
        if "via=file" in path:
            return status, {}, json.dumps({"error": {"code": code, "message": "Not as a file."}}).encode()
        return http_reply(path)

    fake.routes["/jobs/j/result"] = route
    client = file_client(fake, tmp_path)
    for _ in range(2):
        offsets, _ = client.result("j")
        np.testing.assert_array_equal(offsets, OFFSETS)
    asked = [path for _, path in fake.requests]
    file_requests = ["/jobs/j/result?via=file"] * (2 if keeps_asking else 1)
    assert sorted(asked) == sorted(file_requests + ["/jobs/j/result"] * 2)
    assert (client.result_dir is not None) == keeps_asking


def test_result_file_errors_other_than_unavailable_are_raised(fake: FakeWorker, tmp_path: Path) -> None:
    fake.routes["/jobs/j/result"] = lambda path: (409, {}, json.dumps(
        {"error": {"code": "not_ready", "message": "No result: the job is running."}}).encode())
    with pytest.raises(WorkerError, match="the job is running"):
        file_client(fake, tmp_path).result("j")
    assert [path for _, path in fake.requests] == ["/jobs/j/result?via=file"]


@posix_only
def test_private_directory(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert private_directory(private)
    shared_dir = tmp_path / "shared"
    shared_dir.mkdir()
    shared_dir.chmod(0o777)
    assert not private_directory(shared_dir)
    (tmp_path / "link").symlink_to(private)
    assert not private_directory(tmp_path / "link")
    (tmp_path / "file").write_text("x")
    assert not private_directory(tmp_path / "file")
    assert not private_directory(tmp_path / "missing")


@posix_only
def test_local_worker_ignores_a_result_dir_others_can_write(tmp_path: Path) -> None:
    shared_dir = tmp_path / "shared"
    shared_dir.mkdir()
    shared_dir.chmod(0o777)
    port = free_port()
    ready = {"port": port, "token": "x" * 43, "pid": 1, "protocol": 1, "url": f"http://127.0.0.1:{port}",
             "result_dir": str(shared_dir)}
    python = fake_python(tmp_path, f"print({json.dumps(ready)!r}, flush=True)\ntime.sleep(120)")
    local = LocalWorker.start(python, ["x.safetensors"], startup_timeout_s=30)
    try:
        assert local.client.result_dir is None  # results come over HTTP, never from a directory others control
    finally:
        local.stop(timeout_s=1)
    assert shared_dir.exists()  # not ours to remove
