"""Shared pieces of the worker tests: a tiny checkpoint, ONE real worker process for the whole session, audio
helpers and raw HTTP access. Test modules import the fixtures by name.

pytest makes a separate fixture (and cache) for every module a fixture function is imported into, so the
checkpoint and the worker are memoised here, reference-counted, and stopped when the last user is torn down;
an atexit hook stops anything left over, so no worker outlives the test session.
"""

from __future__ import annotations

import atexit
import http.client
import io
import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jambatalk_blender.core.local_worker import LocalWorker
from jambatalk_blender.core.worker_errors import WorkerStartError
from tests.speech_audio import speech_like

REPO = Path(__file__).resolve().parents[1]
VERTICES = 40
MAX_BODY_MB = 1  # the shared worker's body cap: makes the 413 test free (no second worker needed)
SR = 16000

_lock = threading.Lock()
_shared: dict[str, object] = {}
_users = 0
_started: list[LocalWorker] = []


def worker_env() -> dict[str, str]:
    """The environment for a worker run from this checkout (model_core is not installed in the venv)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    # One intra-op thread: on a small CI machine shared with other jobs, OpenMP barriers stall whenever another
    # process holds a core, which made a window's compute time (and so cancel latency) swing tenfold.
    env["OMP_NUM_THREADS"] = "1"
    return env


def start_worker(checkpoint: Path, *extra_args: str, startup_timeout_s: float = 180.0) -> LocalWorker:
    """A real worker subprocess, remembered so that it is stopped at exit whatever happens."""
    worker = LocalWorker.start(sys.executable, [str(checkpoint)], device="cpu", extra_args=extra_args,
                               env=worker_env(), startup_timeout_s=startup_timeout_s)
    _started.append(worker)
    return worker


def refused_start(checkpoint: Path, *extra_args: str) -> WorkerStartError:
    """Start a worker that must refuse its arguments: the error, after checking it exited with code 2."""
    with pytest.raises(WorkerStartError) as caught:
        LocalWorker.start(sys.executable, [str(checkpoint)], device="cpu", extra_args=extra_args, env=worker_env(),
                          startup_timeout_s=120)
    os.unlink(caught.value.log_path)
    assert caught.value.exit_code == 2
    return caught.value


@atexit.register
def _stop_leftovers() -> None:
    for worker in _started:
        if worker.alive():
            worker.stop(timeout_s=5)


def _make_checkpoint() -> Path:
    # Imported here so that importing this module (e.g. for collection) stays cheap.
    from model_core.checkpoint import save_checkpoint
    from tests.conftest import make_model, tiny_config

    folder = Path(tempfile.mkdtemp(prefix="jambatalk-worker-tests-"))
    return save_checkpoint(folder / "tiny.safetensors", make_model(tiny_config(vertex_count=VERTICES)))


def _acquire() -> dict[str, object]:
    global _users
    with _lock:
        if not _shared:
            checkpoint = _make_checkpoint()
            _shared["checkpoint"] = checkpoint
            _shared["worker"] = start_worker(checkpoint, "--max-body-mb", str(MAX_BODY_MB))
        _users += 1
        return _shared


def _release() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users == 0 and _shared:
            worker = _shared.pop("worker")
            checkpoint = _shared.pop("checkpoint")
            assert isinstance(worker, LocalWorker) and isinstance(checkpoint, Path)
            code = worker.stop()
            checkpoint.unlink(missing_ok=True)
            checkpoint.parent.rmdir()
            assert code == 0, f"POST /shutdown should stop the worker cleanly; it exited with {code}"


@pytest.fixture(scope="session")
def shared() -> Iterator[dict[str, object]]:
    yield _acquire()
    _release()


@pytest.fixture(scope="session")
def checkpoint(shared: dict[str, object]) -> Path:
    """A small checkpoint (the 'small' preset with 40 vertices)."""
    return shared["checkpoint"]  # type: ignore[return-value]


@pytest.fixture(scope="session")
def worker(shared: dict[str, object]) -> LocalWorker:
    """The session's real worker subprocess serving `checkpoint` on the CPU (body cap MAX_BODY_MB)."""
    worker = shared["worker"]
    assert isinstance(worker, LocalWorker)
    assert worker.alive(), f"the shared worker died:\n{worker.stderr_tail()}"
    return worker


@pytest.fixture(scope="session")
def animator(checkpoint: Path):
    """The same checkpoint in this process: the reference the worker's results must equal."""
    from model_core.inference import Animator

    return Animator(checkpoint, device="cpu")


# -- audio ---------------------------------------------------------------------------------------------------
def speech(seconds: float, seed: int = 0, sample_rate: int = SR) -> np.ndarray:
    return speech_like(seconds, sample_rate=sample_rate, seed=seed)


def encode(samples: np.ndarray, sample_rate: int = SR, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def expected_offsets(animator, data: bytes, start_s: float | None = None, end_s: float | None = None) -> np.ndarray:
    """What the worker should return for these file bytes: decoded, cropped and animated in-process."""
    import torch

    from model_core.audio_io import crop_seconds, decode_audio_bytes

    audio = decode_audio_bytes(data)
    if start_s or end_s is not None:
        audio = crop_seconds(audio, start_s or 0.0, end_s)
    # One thread, like the workers here (see worker_env): with two on a busy 2-core machine this took 20x longer.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return animator.animate_16k(audio.samples)
    finally:
        torch.set_num_threads(threads)


# -- raw HTTP (to control every header, and to see exactly what the worker sends) ----------------------------
def raw_request(worker: LocalWorker, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str | bytes] | None = None, *, token: str | None = "worker",
                host: str | None = None, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; token="worker" means the worker's own token, None means no header."""
    port = worker.ready["port"]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        if token is not None:
            connection.putheader("Authorization", f"Bearer {worker.token if token == 'worker' else token}")
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body or b"")
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def json_error(status: int, payload: bytes) -> dict:
    """Check that an error reply is the protocol's JSON with one sentence; return its "error" object."""
    data = json.loads(payload)
    assert set(data) == {"error"}, data
    error = data["error"]
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"].rstrip().endswith("."), error
    return error
