"""HTTP client for the JambaTalk inference worker (protocol v1, see docs/protocol.md).

This module runs inside Blender's own Python, so it imports only the standard library and numpy: torch and
model_core live in the worker process (local_worker.py starts one with the user's chosen Python). Errors are
in worker_errors.py, the .npy reader in npy_reader.py, the protocol's names in protocol.py.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import mmap
import os
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .npy_reader import parse_npy_header
from .protocol import (
    MAX_NPY_HEADER_BYTES,
    PARAM_FIELDS,
    PARAMS_HEADER,
    PROTOCOL_VERSION,
    RESULT_FILE_NAME,
    RESULT_HEADERS,
)
from .worker_errors import (
    JobCancelledByUser,
    JobFailed,
    WaitTimeout,
    WorkerAuthError,
    WorkerError,
    WorkerNotRunning,
    WorkerRequestError,
    WorkerShutDown,
    WorkerTimeout,
    WorkerUnreachable,
)

MAX_HOLD_S = 10.0  # longest long poll wait() asks for when nothing needs checking in between

ProgressCallback = Callable[[float, str], None]


def encode_params(**fields: Any) -> str | None:
    """The X-JambaTalk-Params header value: only the fields that are set (not None); None when there are none."""
    unknown = sorted(set(fields) - set(PARAM_FIELDS))
    if unknown:
        raise TypeError(f"Unknown job parameter(s): {', '.join(unknown)}.")
    params = {k: v for k, v in fields.items() if v is not None}
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise WorkerError(f"The job parameter {key} must be a finite number; got {value}.")
    if not params:
        return None
    # ensure_ascii: header values travel as latin-1, so any non-ASCII name must be \u-escaped JSON.
    return json.dumps(params, ensure_ascii=True, separators=(",", ":"))


# -- HTTP client -------------------------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The worker never redirects; following one would hand the bearer token to another address."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None  # urllib then raises HTTPError for the 3xx, which becomes a WorkerRequestError


def private_directory(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a real directory (not a link) that only this user can write to: where a worker's result
    files may be trusted. On Windows only the first part is checked (ACLs, not mode bits, guard it there)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        return False
    if os.name == "nt":
        return True
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


class WorkerClient:
    """Talks to one worker over HTTP. Thread-safe: every call opens its own connection.

    `result_dir`: the private result directory of a worker on this machine (see LocalWorker); result() then asks
    for the result as a file there and maps it instead of receiving it over the socket, falling back to HTTP when
    the worker does not offer that.
    """

    def __init__(self, url: str, token: str, timeout: float = 30.0,
                 result_dir: str | os.PathLike[str] | None = None,
                 exit_code: Callable[[], int | None] | None = None) -> None:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WorkerError(f"The worker address {url!r} is not a URL like http://127.0.0.1:PORT.")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.token = token.strip()
        self.timeout = float(timeout)
        self.result_dir = os.fspath(result_dir) if result_dir is not None else None
        # For a worker process we started: its exit code once it has exited (Popen.poll), so a refused connection
        # can say that the worker shut down rather than that it is not running.
        self._exit_code = exit_code
        # An empty ProxyHandler: a system-wide http_proxy (common in studios) must never receive loopback
        # traffic or the token, and a dead proxy must not make a healthy local worker look unreachable.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    @classmethod
    def connect(cls, url: str, token: str, timeout: float = 30.0) -> WorkerClient:
        """A client for an already running (possibly remote) worker, after checking that it answers protocol 1."""
        client = cls(url, token, timeout)
        health = client.health()
        if health.get("protocol") != PROTOCOL_VERSION:
            raise WorkerError(f"The worker at {client.url} speaks protocol {health.get('protocol')!r}; this add-on "
                              f"speaks {PROTOCOL_VERSION}. Update the add-on or the worker so they match.")
        return client

    def __repr__(self) -> str:
        return f"WorkerClient({self.url!r})"  # never the token: reprs end up in logs and bug reports

    # -- low level ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _open(self, method: str, path: str, body: bytes | None = None,
              headers: Mapping[str, str] | None = None, timeout: float | None = None
              ) -> Iterator[http.client.HTTPResponse]:
        """The open 2xx response, for the caller to read; every failure, also while reading, is a WorkerError."""
        all_headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        all_headers.update(headers or {})
        request = urllib.request.Request(self.url + path, data=body, headers=all_headers, method=method)
        limit = self.timeout if timeout is None else timeout
        try:
            with self._opener.open(request, timeout=limit) as response:
                yield response
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                try:
                    payload = exc.read()
                except (OSError, http.client.HTTPException):
                    payload = b""
            raise self._http_error(exc.code, payload) from None
        except urllib.error.URLError as exc:
            raise self._unreachable(exc.reason, limit) from None
        except (OSError, http.client.HTTPException) as exc:
            # Raised while reading the body, after urlopen returned (reset, timeout, truncated reply).
            raise self._unreachable(exc, limit) from None

    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None
                 ) -> tuple[int, http.client.HTTPMessage, bytes]:
        with self._open(method, path, body, headers, timeout) as response:
            return response.status, response.headers, response.read()

    def _unreachable(self, reason: object, timeout: float) -> WorkerUnreachable:
        code = self._exit_code() if self._exit_code is not None else None
        if code is not None:
            return WorkerShutDown(self.url, code)
        if isinstance(reason, ConnectionRefusedError):
            return WorkerNotRunning(self.url)
        if isinstance(reason, TimeoutError):
            return WorkerTimeout(self.url, timeout)
        if isinstance(reason, OSError) and reason.strerror:
            text = reason.strerror
        else:
            text = str(reason) or type(reason).__name__
        return WorkerUnreachable(self.url, text)

    def _http_error(self, status: int, payload: bytes) -> WorkerRequestError:
        code, message = f"http_{status}", ""
        try:
            error = json.loads(payload.decode("utf-8"))["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            # Not the worker's JSON: maybe another program owns the port, or the HTTP layer refused the request.
            first = payload.decode("utf-8", "replace").strip().splitlines()[:1]
            message = (f"The worker at {self.url} answered HTTP {status}"
                       f"{': ' + first[0][:200] if first else ''}; is something else listening on that port?")
        if status == 401:
            return WorkerAuthError(self.url, status, code, message)
        return WorkerRequestError(status, code, message)

    def _json(self, method: str, path: str, body: bytes | None = None,
              headers: Mapping[str, str] | None = None, timeout: float | None = None) -> dict:
        _, _, payload = self._request(method, path, body, headers, timeout)
        try:
            data = json.loads(payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise WorkerError(f"The worker at {self.url} sent a reply that is not a JSON object; is something "
                              "else listening on that port?")
        return data

    @staticmethod
    def _job_path(job_id: str, suffix: str = "") -> str:
        return "/jobs/" + urllib.parse.quote(str(job_id), safe="") + suffix

    # -- endpoints ---------------------------------------------------------------------------------------
    def health(self) -> dict:
        """GET /health: protocol, device, models (name, state, vertex_count, motion_fps, ...), queue, limits."""
        return self._json("GET", "/health")

    def submit(self, audio: bytes, *, model: str | None = None, subject: str | None = None,
               start_s: float | None = None, end_s: float | None = None, strength: float | None = None,
               smoothing_s: float | None = None, dtype: str | None = None, client: str | None = None,
               output: str | None = None) -> str:
        """POST /jobs with the audio file's bytes (WAV, FLAC, OGG, MP3...); returns the job id.

        ``output``: "vertices" (offsets (T, V, 3), the default) or "weights" (a blendshape model's (T, K)).
        """
        if not isinstance(audio, bytes | bytearray | memoryview):
            raise TypeError(f"audio must be the audio file's bytes, not {type(audio).__name__}.")
        headers = {"Content-Type": "application/octet-stream"}
        params = encode_params(model=model, subject=subject, start_s=start_s, end_s=end_s, strength=strength,
                               smoothing_s=smoothing_s, dtype=dtype, client=client, output=output)
        if params is not None:
            headers[PARAMS_HEADER] = params
        body = bytes(audio)
        try:
            reply = self._json("POST", "/jobs", body, headers)
        except (WorkerNotRunning, WorkerTimeout):
            raise
        except WorkerRequestError as exc:
            if exc.status == 413 and exc.code.startswith("http_"):  # the 413's own body was lost to the reset
                self._raise_if_too_large(len(body))
            raise
        except WorkerUnreachable:
            # A body far over --max-body-mb is refused (413) before it is read, and the unread rest makes the
            # socket reset under the upload, so the 413 itself is lost. Name the real cause when that is it.
            self._raise_if_too_large(len(body))
            raise
        if not isinstance(reply.get("job"), str):
            raise WorkerError(f"The worker at {self.url} accepted the audio but sent no job id; restart it.")
        return reply["job"]

    def _raise_if_too_large(self, size: int) -> None:
        try:
            limit = int(self.health()["limits"]["max_body_bytes"])
        except (WorkerError, KeyError, TypeError, ValueError):
            return
        if size > limit:
            message = (f"The audio file is {size / 2**20:.1f} MB; the worker accepts at most {limit / 2**20:.0f} MB. "
                       "Trim it, or export it as FLAC.")
            raise WorkerRequestError(413, "too_large", message)

    def submit_file(self, path: str | os.PathLike[str], **params: Any) -> str:
        """submit() the bytes of an audio file on disk."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise WorkerError(f"The audio file {os.fspath(path)} cannot be read ({exc.strerror or exc}); "
                              "check the path.") from exc
        return self.submit(data, **params)

    def status(self, job_id: str, wait: float | None = None) -> dict:
        """GET /jobs/{id}: state, progress (0..1), stage, timings, error.

        `wait` (seconds) long-polls: the worker holds the reply until the job's state changes or `wait` has
        passed (a finished job answers at once). A worker without long polling answers at once; tell them apart
        by the reply's "waited_s", which only a long-polling worker sends.
        """
        if wait is None:
            return self._json("GET", self._job_path(job_id))
        hold = max(0.0, float(wait))
        if not math.isfinite(hold):
            raise WorkerError(f"The status wait must be a finite number of seconds; got {wait}.")
        return self._json("GET", self._job_path(job_id, f"?wait={hold:.3f}"), timeout=self.timeout + hold)

    def result(self, job_id: str) -> tuple[np.ndarray, dict]:
        """GET /jobs/{id}/result: offsets (T, V, 3), float32 or float16 as submitted, and
        {fps, start_s, frames, vertices}.

        Over HTTP the body is read straight into one buffer of its announced length and the array is a view of
        it, so a large take is neither copied nor held twice. With a `result_dir` (a worker on this machine) the
        worker writes the .npy into that directory and the array maps the file (copy-on-write), which is then
        removed. Either way the .npy header is checked (see parse_npy_header) before any data is used.
        """
        if self.result_dir is not None:
            try:
                return self._result_via_file(job_id, self.result_dir)
            except WorkerRequestError as exc:
                if exc.code == "no_file_results":
                    self.result_dir = None  # this worker never offers files: stop asking
                elif exc.code != "file_write_failed":
                    raise
        return self._result_via_http(job_id)

    @staticmethod
    def _unreadable(job_id: str, reason: object) -> WorkerError:
        return WorkerError(f"The worker's result for job {job_id} is unreadable ({reason}); run the job again.")

    @staticmethod
    def _result_meta(job_id: str, fields: Mapping[str, Any]) -> dict:
        """{fps, start_s, frames, output, vertices | channels, shape} from the result's headers or JSON reply."""
        try:
            output = str(fields.get("output") or "vertices")
            meta = {"fps": float(fields["fps"]), "start_s": float(fields["start_s"]),
                    "frames": int(fields["frames"]), "output": output}
            if output == "weights":
                meta["channels"] = int(fields["channels"])
                meta["shape"] = (meta["frames"], meta["channels"])
            elif output == "vertices":
                meta["vertices"] = int(fields["vertices"])
                meta["shape"] = (meta["frames"], meta["vertices"], 3)
            else:
                raise ValueError(f"unknown output {output!r}")
        except (KeyError, ValueError, TypeError) as exc:
            raise WorkerClient._unreadable(job_id, f"missing or bad field {exc}") from None
        return meta

    @staticmethod
    def _checked_length(job_id: str, meta: dict, length: int) -> None:
        shape = meta["shape"]
        if min(shape) < 0:
            raise WorkerClient._unreadable(job_id, f"negative size in {shape}")
        # Never allocate or map more than the announced take can need: float32 data plus the largest header.
        most = math.prod(shape) * 4 + 12 + MAX_NPY_HEADER_BYTES
        if not 10 <= length <= most:
            raise WorkerClient._unreadable(job_id, f"{length} bytes for a result of shape {shape}")

    @staticmethod
    def _array_from(job_id: str, meta: dict, buffer: Any, length: int) -> np.ndarray:
        """The offsets array viewing `buffer` (the whole .npy image, `length` bytes), after checking its header."""
        try:
            dtype, shape, offset = parse_npy_header(memoryview(buffer)[:12 + MAX_NPY_HEADER_BYTES])
        except ValueError as exc:
            raise WorkerClient._unreadable(job_id, exc) from None
        if shape != meta["shape"]:
            raise WorkerError(f"The worker's result for job {job_id} has shape {shape}, not "
                              f"{meta['shape']}; run the job again.")
        count = math.prod(shape)
        if length - offset != count * dtype.itemsize:
            raise WorkerClient._unreadable(job_id, f"{length - offset} data bytes for shape {shape} of {dtype.name}")
        offsets = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset).reshape(shape)
        if not dtype.isnative:
            offsets = offsets.astype(dtype.newbyteorder("="))
        return offsets

    def _result_via_http(self, job_id: str) -> tuple[np.ndarray, dict]:
        def unreadable(reason: object) -> WorkerError:
            return self._unreadable(job_id, reason)

        with self._open("GET", self._job_path(job_id, "/result"),
                        headers={"Accept": "application/octet-stream"}) as response:
            headers = response.headers
            meta = self._result_meta(job_id, {key: headers[name] for key, name in RESULT_HEADERS.items()
                                              if headers.get(name) is not None})
            try:
                length = int(headers["Content-Length"])
            except (KeyError, ValueError, TypeError) as exc:
                raise unreadable(f"missing or bad header {exc}") from None
            self._checked_length(job_id, meta, length)
            buffer = np.empty(length, dtype=np.uint8)
            view = memoryview(buffer)
            got = 0
            while got < length:
                n = response.readinto(view[got:])
                if not n:
                    raise unreadable(f"the reply ended after {got} of {length} bytes")
                got += n
        return self._array_from(job_id, meta, buffer, length), meta

    def _result_via_file(self, job_id: str, directory: str) -> tuple[np.ndarray, dict]:
        """GET /jobs/{id}/result?via=file, then map the file the worker wrote into `directory` and remove it.

        Only a bare file name is accepted from the worker, joined to the directory this client was given (never a
        path of the worker's choosing); the file must be a regular file (not a link) of the announced size and,
        on POSIX, ours. A file that fails a check is removed too: it lies in our private directory.
        """
        reply = self._json("GET", self._job_path(job_id, "/result?via=file"))
        try:
            name = reply["file"]
            size = int(reply["bytes"])
        except (KeyError, ValueError, TypeError) as exc:
            raise self._unreadable(job_id, f"missing or bad field {exc}") from None
        meta = self._result_meta(job_id, reply)
        if not isinstance(name, str) or not RESULT_FILE_NAME.fullmatch(name):
            raise self._unreadable(job_id, f"the file name {str(name)[:80]!r} is not a bare .npy name")
        path = os.path.join(directory, name)
        try:
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
            try:
                fd = os.open(path, flags)
            except OSError as exc:
                raise self._unreadable(job_id, f"the result file cannot be opened: {exc.strerror or exc}") from None
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode) or (os.name != "nt" and info.st_uid != os.getuid()):
                    raise self._unreadable(job_id, "the result file is not a regular file of ours")
                if info.st_size != size:
                    raise self._unreadable(job_id, f"the result file has {info.st_size} bytes, not {size}")
                self._checked_length(job_id, meta, size)
                if os.name == "nt":
                    # Windows cannot remove a mapped file: read it into memory instead.
                    buffer: Any = np.empty(size, dtype=np.uint8)
                    with open(fd, "rb", closefd=False) as f:
                        if f.readinto(buffer) != size:
                            raise self._unreadable(job_id, "the result file ended early")
                else:
                    # Copy-on-write: the array is writable, its writes never reach the file, and untouched pages
                    # stay the very pages the worker wrote (no copy).
                    buffer = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
            finally:
                os.close(fd)
            return self._array_from(job_id, meta, buffer, size), meta
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def cancel(self, job_id: str) -> dict:
        """DELETE /jobs/{id}: a queued job never starts, a running one stops at its next window."""
        return self._json("DELETE", self._job_path(job_id))

    def shutdown(self) -> None:
        """POST /shutdown: the worker stops after replying."""
        self._json("POST", "/shutdown", b"")

    # -- conveniences ------------------------------------------------------------------------------------
    def wait(self, job_id: str, *, poll_s: float = 0.1, on_progress: ProgressCallback | None = None,
             should_cancel: Callable[[], bool] | None = None, timeout_s: float | None = None) -> dict:
        """Wait until the job is done and return its final status.

        Long-polls (status(wait=...)), so the end of the job is noticed as soon as it happens. `poll_s` is how
        often on_progress and should_cancel are served; without either, each request is held up to MAX_HOLD_S.
        Against a worker that answers at once (no long polling) this is plain polling every `poll_s`.

        Raises JobFailed (with the worker's sentence), JobCancelledByUser (should_cancel() turned true, which
        also sends DELETE; or someone else cancelled it) or WaitTimeout.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        interval = max(0.0, poll_s)
        hold = interval if on_progress is not None or should_cancel is not None else max(interval, MAX_HOLD_S)
        last_state: object = None
        while True:
            if should_cancel is not None and should_cancel():
                # The user has asked to stop: a worker that is gone or a job already finished changes nothing.
                with contextlib.suppress(WorkerError):
                    self.cancel(job_id)
                raise JobCancelledByUser(job_id, "cancelled by the user")
            asked = time.monotonic()
            limit = hold if deadline is None else max(0.0, min(hold, deadline - asked))
            status = self.status(job_id, wait=limit)
            state = status.get("state")
            if on_progress is not None:
                on_progress(float(status.get("progress") or 0.0), str(status.get("stage") or state))
            if state == "done":
                return status
            if state == "failed":
                raise JobFailed(job_id, status.get("error") or "the worker gave no reason.")
            if state == "cancelled":
                raise JobCancelledByUser(job_id, status.get("stage"))
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(job_id, timeout_s or 0.0)
            changed, last_state = state != last_state, state
            spent = time.monotonic() - asked
            if not changed and spent < interval:
                # Answered early with nothing new: an older worker that does not hold replies. Poll as before.
                time.sleep(interval - spent)

    def animate(self, audio: bytes, *, poll_s: float = 0.1, on_progress: ProgressCallback | None = None,
                should_cancel: Callable[[], bool] | None = None, timeout_s: float | None = None,
                **params: Any) -> tuple[np.ndarray, dict]:
        """submit() + wait() + result(); `params` are submit()'s keyword arguments."""
        job_id = self.submit(audio, **params)
        try:
            self.wait(job_id, poll_s=poll_s, on_progress=on_progress, should_cancel=should_cancel,
                      timeout_s=timeout_s)
        except (JobFailed, JobCancelledByUser):
            raise
        except BaseException:
            # Timeout, Ctrl+C, a callback's error: the caller never sees the job id, so nobody else would stop
            # the job and it would keep the worker busy.
            with contextlib.suppress(WorkerError):
                self.cancel(job_id)
            raise
        return self.result(job_id)
