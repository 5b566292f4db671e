"""A worker process of our own: start `jambatalk serve` with the user's Python, wait for its ready line, stop it."""



from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from .protocol import PROTOCOL_VERSION, RESULT_FILE_NAME
from .worker_client import WorkerClient, private_directory
from .worker_errors import WorkerError, WorkerStartError


# -- a worker process of our own ---------------------------------------------------------------------------
class _StdoutReader(threading.Thread):
    """Reads the worker's stdout on a thread, so waiting for the ready line can time out on every platform
    (select() does not work on Windows pipes), and keeps draining it afterwards so a chatty worker can never
    block on a full pipe."""

    def __init__(self, stream: io.BufferedReader) -> None:
        super().__init__(name="jambatalk-worker-stdout", daemon=True)
        self.stream = stream
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.after_ready: collections.deque[str] = collections.deque(maxlen=50)
        self.ready_seen = threading.Event()

    def run(self) -> None:
        try:
            for raw in iter(self.stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if self.ready_seen.is_set():
                    self.after_ready.append(line)
                else:
                    self.lines.put(line)
        except (OSError, ValueError):
            pass  # the pipe was closed under us by stop()
        finally:
            self.lines.put(None)


def _parse_ready(line: str) -> dict | None:
    """The worker's ready line, or None for anything else a library might have printed first."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if isinstance(data, dict) and {"port", "token", "url", "protocol"} <= set(data):
        return data
    return None


def _tail(path: str, lines: int = 20, max_bytes: int = 16384) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _child_environment(env: Mapping[str, str] | None) -> dict[str, str]:
    if env is not None:
        return dict(env)
    child = dict(os.environ)
    # Blender's own Python settings must not leak into the worker's (different) Python installation.
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE"):
        child.pop(key, None)
    return child


class LocalWorker:
    """A worker process started by this process; it exits by itself if this process dies (--parent-pid)."""

    def __init__(self, process: subprocess.Popen, ready: dict, log_path: str, reader: _StdoutReader) -> None:
        self.process = process
        self.ready = ready
        self.log_path = log_path
        self._reader = reader
        # Results as files only through a directory the worker we started announced and that only we can write.
        result_dir = ready.get("result_dir")
        trusted = isinstance(result_dir, str) and os.path.isabs(result_dir) and private_directory(result_dir)
        self.client = WorkerClient(ready["url"], ready["token"], result_dir=result_dir if trusted else None,
                                   exit_code=process.poll)

    @property
    def url(self) -> str:
        return self.client.url

    @property
    def token(self) -> str:
        return self.client.token

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, python_executable: str, checkpoints: Sequence[str | os.PathLike[str]], *, device: str = "auto",
              extra_args: Iterable[str] = (), startup_timeout_s: float = 300.0,
              env: Mapping[str, str] | None = None, cwd: str | None = None) -> LocalWorker:
        """Run `python -m model_core.cli serve` and wait for its ready line.

        `env` replaces the environment (default: ours without PYTHONHOME/PYTHONPATH). Raises WorkerStartError
        with the tail of the worker's stderr when it exits early or is not ready within `startup_timeout_s`.
        """
        if not checkpoints:
            raise WorkerStartError("Choose at least one checkpoint for the worker to serve.")
        command = [str(python_executable), "-m", "model_core.cli", "serve", "--port", "0",
                   "--parent-pid", str(os.getpid()), "--device", device]
        for checkpoint in checkpoints:
            command += ["--checkpoint", os.fspath(checkpoint)]
        command += [str(arg) for arg in extra_args]
        # stderr goes to a file, not a pipe: nobody reads it while the worker runs, and a full pipe would
        # freeze the worker at its next warning.
        log_fd, log_path = tempfile.mkstemp(prefix="jambatalk-worker-", suffix=".log")
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_fd,
                env=_child_environment(env), cwd=cwd,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.platform == "win32" else 0)
        except OSError as exc:
            os.close(log_fd)
            with contextlib.suppress(OSError):
                os.unlink(log_path)
            raise WorkerStartError(f"Could not run the worker's Python {python_executable!r} "
                                   f"({exc.strerror or exc}); check the path in the add-on preferences.") from None
        os.close(log_fd)  # the child has its own copy
        assert process.stdout is not None
        reader = _StdoutReader(process.stdout)
        reader.start()
        try:
            ready = cls._wait_ready(process, reader, log_path, startup_timeout_s)
        except BaseException:
            cls._kill(process)
            reader.join(timeout=2)
            with contextlib.suppress(OSError):
                process.stdout.close()
            raise
        reader.ready_seen.set()
        return cls(process, ready, log_path, reader)

    @staticmethod
    def _wait_ready(process: subprocess.Popen, reader: _StdoutReader, log_path: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        exited_at: float | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerStartError(
                    f"The worker did not become ready within {timeout_s:g} s, so it was stopped. Loading a large "
                    "checkpoint on a slow disk can take a while: raise the start-up timeout, or look at its "
                    f"log ({log_path}).", stderr_tail=_tail(log_path), log_path=log_path)
            try:
                line = reader.lines.get(timeout=min(remaining, 0.25))
            except queue.Empty:
                # A grandchild may hold stdout open after the worker died, so EOF alone is not enough.
                if process.poll() is not None:
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > 1.0:
                        line = None
                    else:
                        continue
                else:
                    continue
            if line is None:
                try:
                    code = process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                raise WorkerStartError(
                    f"The worker exited with code {code} before it was ready; see the error output below "
                    f"(full log: {log_path}).", exit_code=code, stderr_tail=_tail(log_path), log_path=log_path)
            ready = _parse_ready(line)
            if ready is None:
                continue
            if ready.get("protocol") != PROTOCOL_VERSION:
                raise WorkerStartError(
                    f"The worker speaks protocol {ready.get('protocol')!r}; this add-on speaks {PROTOCOL_VERSION}. "
                    "Install matching versions of the add-on and the worker.", log_path=log_path)
            return ready

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr_tail(self, lines: int = 20) -> str:
        """The last lines the worker wrote to stderr (for error reports; gone after stop())."""
        return _tail(self.log_path, lines)

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """POST /shutdown, then SIGTERM, then kill; returns the exit code. Safe to call twice."""
        if self.process.poll() is None:
            with contextlib.suppress(WorkerError):
                WorkerClient(self.url, self.token, timeout=min(5.0, timeout_s)).shutdown()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._kill(self.process)
        self._reader.join(timeout=2)
        if self.process.stdout is not None:
            with contextlib.suppress(OSError):
                self.process.stdout.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)
        self._remove_result_dir()
        return self.process.returncode

    def _remove_result_dir(self) -> None:
        """A worker removes its result directory when it stops; one that was killed cannot. Only result files
        (bare .npy names) are removed, and the directory only if that leaves it empty."""
        directory = self.client.result_dir
        if directory is None or not private_directory(directory):
            return
        with contextlib.suppress(OSError):
            for name in os.listdir(directory):
                if RESULT_FILE_NAME.fullmatch(name):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(directory, name))
            os.rmdir(directory)

    def __enter__(self) -> LocalWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive() else f"exited {self.process.returncode}"
        return f"LocalWorker(pid={self.pid}, url={self.url!r}, {state})"
