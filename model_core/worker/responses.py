"""How results leave the worker: streamed as .npy over HTTP (`NpyResponse`) or handed over as files (`FileResults`).

Both send the job's array from its own memory: the .npy header, then the array's bytes, never a joined copy.
"""

from __future__ import annotations

import io
import os
import secrets
import threading
import time
from pathlib import Path

import numpy as np
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

RESULT_CHUNK_BYTES = 2**20  # one body message of a result stream: large writes, bounded buffering
FILE_RESULT_TTL_S = 60.0  # a result file its client has not removed by then is removed by the worker


def npy_header(array: np.ndarray) -> bytes:
    """The .npy (format 1.0) header for a C-contiguous array; the data bytes follow it unchanged."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(array))
    return buffer.getvalue()


class NpyResponse(Response):
    """An array sent as a .npy file straight from its memory: the header, then the array's own bytes in
    RESULT_CHUNK_BYTES slices of a memoryview. No joined copy of the file is ever built, and the server's
    flow control (drained before each message) keeps its buffering to about one chunk."""

    def __init__(self, array: np.ndarray, headers: dict[str, str], chunk_bytes: int | None = None) -> None:
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        self.header = npy_header(array)
        self.data = memoryview(array.reshape(-1)).cast("B")
        self.chunk_bytes = max(1, int(RESULT_CHUNK_BYTES if chunk_bytes is None else chunk_bytes))
        length = len(self.header) + self.data.nbytes
        super().__init__(None, media_type="application/octet-stream",
                         headers={**headers, "Content-Length": str(length)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await send({"type": "http.response.body", "body": self.header, "more_body": self.data.nbytes > 0})
        total, step = self.data.nbytes, self.chunk_bytes
        for start in range(0, total, step):
            await send({"type": "http.response.body", "body": self.data[start:start + step],
                        "more_body": start + step < total})


class FileResults:
    """Results handed to a client on the same machine as .npy files (GET /jobs/{id}/result?via=file).

    The files go only into the worker's own private directory (created 0700 by server.py, announced in the
    ready line), each under a fresh unguessable name, created exclusively with mode 0600. The client removes a
    file once it has mapped or read it; anything left is removed after FILE_RESULT_TTL_S by a sweeper thread
    that runs while files are outstanding, and the directory with everything in it when the worker stops.
    """

    def __init__(self, directory: Path, ttl_s: float = FILE_RESULT_TTL_S) -> None:
        self.directory = directory
        self.ttl_s = ttl_s
        self._written: dict[Path, float] = {}
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None
        self._closed = threading.Event()

    def close(self) -> None:
        """Stop the sweeper thread (the files themselves go with the directory)."""
        self._closed.set()

    def _sweep_while_outstanding(self) -> None:
        interval = max(0.05, min(5.0, self.ttl_s / 4))
        while not self._closed.wait(interval):
            self.sweep()
            with self._lock:
                if not self._written:
                    self._sweeper = None  # the next write starts a new one
                    return

    def _start_sweeper_locked(self) -> None:
        if self._sweeper is None and not self._closed.is_set():
            self._sweeper = threading.Thread(target=self._sweep_while_outstanding, name="jambatalk-result-sweeper",
                                             daemon=True)
            self._sweeper.start()

    def write(self, job_id: str, array: np.ndarray) -> tuple[str, int]:
        """Write `array` as .npy; returns (file name, size in bytes). Blocking: run it off the event loop."""
        self.sweep()
        array = np.ascontiguousarray(array)
        name = f"{job_id}-{secrets.token_hex(8)}.npy"
        path = self.directory / name
        header = npy_header(array)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600)
        try:
            with open(fd, "wb", closefd=True) as f:
                f.write(header)
                f.write(memoryview(array.reshape(-1)).cast("B"))  # one write of the array's own memory
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        with self._lock:
            self._written[path] = time.monotonic()
            self._start_sweeper_locked()
        return name, len(header) + array.nbytes

    def sweep(self, max_age_s: float | None = None) -> None:
        """Remove files written more than `max_age_s` (default: the TTL) ago that are still there."""
        limit = self.ttl_s if max_age_s is None else max_age_s
        now = time.monotonic()
        with self._lock:
            old = [path for path, written in self._written.items() if now - written >= limit]
            for path in old:
                del self._written[path]
        for path in old:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
