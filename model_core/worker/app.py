"""The HTTP application of the worker (Starlette): routes, auth, Host guard and request limits."""

from __future__ import annotations

import asyncio
import hmac
import io
import json
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from jambatalk_blender.core import protocol
from model_core import __version__
from model_core.audio_io import AudioError, crop_seconds, decode_audio_bytes, probe_audio_bytes
from model_core.worker import PROTOCOL_VERSION
from model_core.worker.budget import ByteBudget
from model_core.worker.hosts import HostPolicy
from model_core.worker.jobs import DONE, FINISHED, JobBoard, JobRequest
from model_core.worker.memory import release_memory
from model_core.worker.models import ModelRegistry
from model_core.worker.upload import ClientGone, UploadError, busy_error, read_body

# offsets (T, V, 3) from every model; (T, K) weights from blendshape models
MAX_PARAMS_BYTES = 16 * 1024
PARAMS_HEADER = protocol.PARAMS_HEADER.lower()  # ASGI header names are lower case
MAX_WAIT_SECONDS = 60.0  # the longest a long-polling GET /jobs/{id}?wait=S is held
RESULT_CHUNK_BYTES = 2**20  # one body message of a result stream: large writes, bounded buffering
FILE_RESULT_TTL_S = 60.0  # a result file its client has not removed by then is removed by the worker


DEFAULT_BODY_TIMEOUT_S = 20.0  # an upload with no progress for this long is abandoned (408)
DEFAULT_MAX_DECODES = 2  # decodes at once: each keeps a CPU core busy and a few blocks of samples in memory
# The most samples (frames x channels) one upload may ask to decode, per second of the length limit:
# 48 kHz stereo. 30 minutes at 384 kHz (a 2.6 MB FLAC of DC) is refused from its header.
SOURCE_SAMPLES_PER_SECOND = 48000 * 2


@dataclass
class WorkerSettings:
    token: str = field(repr=False)  # never in a repr: reprs end up in logs and bug reports
    hosts: HostPolicy
    max_body_bytes: int = 256 * 1024 * 1024
    max_audio_seconds: float = 1800.0
    result_dir: Path | None = None  # the private directory for ?via=file results; None: not offered
    budget: ByteBudget | None = None  # uploads + decoded audio held for queued jobs; None: 2 GiB
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    max_decodes: int = DEFAULT_MAX_DECODES

    def __post_init__(self) -> None:
        if self.budget is None:
            self.budget = ByteBudget(2 * 2**30)

    @property
    def max_source_samples(self) -> int:
        return int(self.max_audio_seconds * SOURCE_SAMPLES_PER_SECOND)


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


async def decode_in_thread(function: Callable, data: bytearray, **kwargs):
    """function(data, **kwargs) on the thread pool; its AudioError is returned, not raised.

    Nothing the pool keeps may hold the upload or the decoded audio: an idle pool thread keeps its last call's
    arguments and result alive, and an exception raised through the pool keeps the frames that hold them in
    reference cycles until a GC pass. So both travel in boxes emptied here, and the error comes back as a fresh
    exception without a traceback.
    """
    inbox, outbox = [data], []
    del data

    def work() -> None:
        try:
            outbox.append(function(inbox.pop(), **kwargs))
        except AudioError as exc:
            outbox.append(AudioError(str(exc)))

    await run_in_threadpool(work)
    return outbox.pop()


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


SINGLE_HEADERS = (b"host", b"authorization", b"content-length", b"transfer-encoding", PARAMS_HEADER.encode())


class GuardMiddleware:
    """Refuses, before any body is read: a foreign Host header (DNS rebinding), a missing or wrong token,
    and bodies over the size cap (by Content-Length, and again while streaming for chunked uploads)."""

    def __init__(self, app: ASGIApp, settings: WorkerSettings) -> None:
        self.app = app
        self.settings = settings
        self.expected_auth = f"Bearer {settings.token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for key, value in scope["headers"]:
            key = key.lower()
            if key in headers and key in SINGLE_HEADERS:
                # Two Authorization (or Host...) headers: intermediaries may each honour a different one. Refuse
                # rather than guess which the client meant.
                name = key.decode("latin-1").title()
                await error(400, "ambiguous_header", f"The request has more than one {name} header; send one.",
                            {"Connection": "close"})(scope, receive, send)
                return
            headers[key] = value
        host = headers.get(b"host", b"").decode("latin-1")
        local = scope.get("server")
        if not self.settings.hosts.allows(host, local[0] if local else None):
            await error(421, "wrong_host", "This worker only answers requests addressed to its own address or "
                                           "names; start it with --allow-host NAME to add one.")(scope, receive, send)
            return
        if not hmac.compare_digest(headers.get(b"authorization", b""), self.expected_auth):
            await error(401, "unauthorized", "Missing or wrong token: send 'Authorization: Bearer <token>'.")(
                scope, receive, send)
            return
        limit = self.settings.max_body_bytes
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await error(413, "too_large", f"The request body is larger than the worker's limit of "
                                          f"{limit / 2**20:.0f} MB.")(scope, receive, send)
            return
        received = 0

        async def capped_receive() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge()
            return message

        try:
            await self.app(scope, capped_receive, send)
        except BodyTooLarge:
            await error(413, "too_large", f"The request body is larger than the worker's limit of "
                                          f"{limit / 2**20:.0f} MB.")(scope, receive, send)


class BodyTooLarge(Exception):
    pass


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


def parse_wait(raw: str) -> float:
    """The `wait` query parameter of GET /jobs/{id}: seconds to hold the reply, 0..MAX_WAIT_SECONDS (capped)."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"Query parameter wait must be a number of seconds; got {raw[:40]!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("Query parameter wait must be a finite number of seconds, 0 or more.")
    return min(value, MAX_WAIT_SECONDS)


def parse_params(raw: str | None, registry: ModelRegistry) -> dict:
    """Validate the X-JambaTalk-Params JSON; raises ValueError with a sentence."""
    if raw is None or raw.strip() == "":
        data: dict = {}
    else:
        if len(raw.encode("utf-8", "replace")) > MAX_PARAMS_BYTES:
            raise ValueError("The X-JambaTalk-Params header is longer than 16 KiB.")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"X-JambaTalk-Params is not valid JSON ({exc.msg}).") from None
        except (ValueError, RecursionError):  # a number of over 4300 digits; nesting deeper than the stack
            raise ValueError("X-JambaTalk-Params is not usable JSON (too deeply nested, or too long a number).") \
                from None
        if not isinstance(data, dict):
            raise ValueError("X-JambaTalk-Params must be a JSON object.")
    unknown = sorted(set(data) - set(protocol.PARAM_FIELDS))
    if unknown:
        # ascii(): the names are the client's text and may hold lone surrogates, which UTF-8 cannot encode.
        raise ValueError(f"Unknown parameter(s): {', '.join(ascii(k) for k in unknown)}.")

    def number(key: str, default: float | None, low: float, high: float) -> float | None:
        value = data.get(key)
        if value is None:  # absent or JSON null: the default (a null start_s once reached crop_seconds: 500)
            value = default
            if value is None:
                return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"Parameter {key} must be a finite number.")
        try:
            value = float(value)  # a huge JSON integer overflows here (math.isfinite would raise OverflowError)
        except OverflowError:
            raise ValueError(f"Parameter {key} must be a finite number.") from None
        if not math.isfinite(value):
            raise ValueError(f"Parameter {key} must be a finite number.")
        if not low <= value <= high:
            raise ValueError(f"Parameter {key} must be between {low:g} and {high:g}; got {value:g}.")
        return float(value)

    def text(key: str, default: str | None, max_len: int = 64) -> str | None:
        value = data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > max_len:
            raise ValueError(f"Parameter {key} must be a string of at most {max_len} characters.")
        return value

    params = {
        "model": text("model", None, 256),
        "subject": text("subject", None, 256),
        "start_s": number("start_s", 0.0, 0.0, 86400.0),
        "end_s": number("end_s", None, 0.0, 86400.0),
        "strength": number("strength", 1.0, 0.0, 4.0),
        "smoothing_s": number("smoothing_s", 0.0, 0.0, 1.0),
        "dtype": text("dtype", "float32"),
        "client": text("client", "anonymous") or "anonymous",
        "output": text("output", "vertices"),
    }
    if params["output"] not in protocol.OUTPUTS:
        raise ValueError("Parameter output must be 'vertices' (offsets, T x V x 3) or 'weights' (T x K).")
    if params["dtype"] not in ("float32", "float16"):
        raise ValueError("Parameter dtype must be 'float32' or 'float16'.")
    return params


def create_app(registry: ModelRegistry, board: JobBoard, settings: WorkerSettings,
               request_shutdown: Callable[[], None]) -> ASGIApp:
    file_results = FileResults(settings.result_dir) if settings.result_dir is not None else None
    decode_slots = asyncio.Semaphore(max(1, settings.max_decodes))

    async def health(request: Request) -> Response:
        return JSONResponse({
            "protocol": PROTOCOL_VERSION,
            "version": __version__,
            "device": registry.device,
            "torch": torch.__version__,
            "models": registry.describe(),
            "queue": {**board.counts(), "audio_bytes": settings.budget.used},
            "limits": {"max_body_bytes": settings.max_body_bytes, "max_audio_seconds": settings.max_audio_seconds,
                       "max_queued_audio_bytes": settings.budget.limit},
        })

    async def submit(request: Request) -> Response:
        try:
            params = parse_params(request.headers.get(PARAMS_HEADER), registry)
        except ValueError as exc:
            return error(400, "bad_params", str(exc))
        try:
            slot = registry.resolve(params["model"])
        except KeyError as exc:
            return error(404, "unknown_model", exc.args[0])
        except LookupError as exc:
            return error(503, "model_unavailable", str(exc))
        animator = slot.animator
        if params["output"] == "weights" and animator.output_kind != "blendshapes":
            return error(400, "bad_params", f"Model {slot.name!r} outputs vertex offsets, not blendshape weights; "
                                            "ask for output 'vertices'.")
        subject = params["subject"]
        if subject and subject not in animator.style_names:
            known = ", ".join(animator.style_names) or "none (leave subject empty)"
            return error(400, "bad_params", f"Unknown subject {subject!r}; model {slot.name!r} knows: {known}.")
        audio_or_error = await receive_audio(request, params)
        if isinstance(audio_or_error, Response):
            return audio_or_error
        audio, reservation = audio_or_error
        if animator.model.motion_frames_for(len(audio.samples)) < 1:
            reservation.release()
            return error(400, "bad_audio", "The audio range is too short to yield a single motion frame.")
        job_request = JobRequest(model=slot.name, samples=audio.samples, start_s=params["start_s"] or 0.0,
                                 subject=subject or None, strength=params["strength"],
                                 smoothing_s=params["smoothing_s"], dtype=params["dtype"], client=params["client"],
                                 output=params["output"], reservation=reservation)
        del audio
        try:
            job, position = board.submit(job_request)
        except OverflowError as exc:
            job_request.drop_audio()
            return error(429, "queue_full", str(exc), {"Retry-After": str(board.busy_seconds())})
        except RuntimeError as exc:
            job_request.drop_audio()
            return error(503, "shutting_down", str(exc))
        return JSONResponse({"job": job.id, "state": job.state, "position": position}, status_code=202)

    async def receive_audio(request: Request, params: dict):
        """The upload read, decoded and cropped, with its reservation in the budget; or the error reply."""
        budget = settings.budget
        assert budget is not None
        length = request.headers.get("content-length")
        try:
            body, upload = await read_body(request.receive, int(length) if length is not None else None,
                                           settings.max_body_bytes, budget, settings.body_timeout_s,
                                           board.busy_seconds())
        except UploadError as exc:
            headers = {"Connection": "close"}  # the rest of the body is not read: do not reuse the connection
            if exc.retry_after is not None:
                headers["Retry-After"] = str(exc.retry_after)
            return error(exc.status, exc.code, exc.message, headers)
        except ClientGone:
            return Response(status_code=400)  # nobody is listening
        decoded = None
        size = len(body)
        try:
            info = await decode_in_thread(probe_audio_bytes, body, name="The uploaded audio")
            if isinstance(info, AudioError):
                return error(400, "bad_audio", str(info))
            # Hold the decoded size (known from the header) before decoding: refuse now rather than run out.
            decoded = budget.reserve(info.output_bytes(settings.max_audio_seconds))
            if decoded is None:
                busy = busy_error(budget, board.busy_seconds())
                return error(busy.status, busy.code, busy.message, {"Retry-After": str(busy.retry_after)})
            async with decode_slots:
                audio = await decode_in_thread(decode_audio_bytes, body, name="The uploaded audio",
                                               max_seconds=settings.max_audio_seconds,
                                               max_source_samples=settings.max_source_samples)
            body = None
            upload.release()
            if isinstance(audio, AudioError):
                return error(400, "bad_audio", str(audio))
            try:
                if params["start_s"] or params["end_s"] is not None:
                    audio = crop_seconds(audio, params["start_s"], params["end_s"])
            except AudioError as exc:
                return error(400, "bad_audio", str(exc))
            decoded.resize(audio.samples.nbytes)  # shrinking always fits
            reservation, decoded = decoded, None
            return audio, reservation
        finally:
            upload.release()
            if decoded is not None:
                decoded.release()
            body = None  # freed before the heap is trimmed, whatever happened
            release_memory(size)

    def lookup(request: Request):
        found = board.get(request.path_params["job_id"])
        if found is None:
            return None, error(404, "unknown_job", "No such job: it never existed or its result expired.")
        return found, None

    async def status(request: Request) -> Response:
        raw_wait = request.query_params.get("wait")
        if raw_wait is None:
            found, failure = lookup(request)
            if failure:
                return failure
            job, position = found
            return JSONResponse(job.status(position))
        try:
            hold = parse_wait(raw_wait)
        except ValueError as exc:
            return error(400, "bad_params", str(exc))
        # Long poll: hold the reply until the job's state changes (or it is already finished), at most `hold` s.
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def wake() -> None:  # runs on the job thread, under the board's lock
            loop.call_soon_threadsafe(changed.set)

        job_id = request.path_params["job_id"]
        started = loop.time()
        found = board.watch(job_id, wake)
        if found is None:
            return error(404, "unknown_job", "No such job: it never existed or its result expired.")
        job, position = found
        try:
            if job.state not in FINISHED and hold > 0:
                try:
                    await asyncio.wait_for(changed.wait(), hold)
                except TimeoutError:
                    pass
        finally:
            board.unwatch(job, wake)
        if changed.is_set():
            again = board.get(job_id)
            position = again[1] if again is not None else None
        return JSONResponse({**job.status(position), "waited_s": round(loop.time() - started, 4)})

    async def result(request: Request) -> Response:
        via = request.query_params.get("via", "http")
        if via not in ("http", "file"):
            return error(400, "bad_params", "Query parameter via must be 'http' or 'file'.")
        found, failure = lookup(request)
        if failure:
            return failure
        job, _ = found
        if job.state != DONE or job.result is None:
            reason = job.error or f"the job is {job.state}"
            return error(409, "not_ready", f"No result: {reason}.")
        array = job.result
        names = protocol.RESULT_HEADERS
        meta = {names["fps"]: repr(job.fps), names["start_s"]: repr(job.request.start_s),
                names["frames"]: str(job.frames), names["output"]: job.request.output,
                names["channels" if job.request.output == "weights" else "vertices"]: str(array.shape[1])}
        if via == "http":
            return NpyResponse(array, headers=meta)
        if file_results is None:
            return error(400, "no_file_results", "This worker does not hand results over as files (only a worker "
                                                 "on a loopback address does); fetch the result without via=file.")
        try:
            name, size = await run_in_threadpool(file_results.write, job.id, array)
        except OSError as exc:
            return error(503, "file_write_failed", f"The worker could not write the result file "
                                                   f"({exc.strerror or exc}); fetch it without via=file.")
        return JSONResponse({"file": name, "bytes": size, "fps": job.fps, "start_s": job.request.start_s,
                             "frames": job.frames, "output": job.request.output,
                             "channels" if job.request.output == "weights" else "vertices": int(array.shape[1])},
                            headers=meta)

    async def cancel(request: Request) -> Response:
        job = board.cancel(request.path_params["job_id"])
        if job is None:
            return error(404, "unknown_job", "No such job: it never existed or its result expired.")
        return JSONResponse(job.status())

    async def shutdown(request: Request) -> Response:
        return JSONResponse({"state": "shutting down"}, status_code=202, background=BackgroundTask(request_shutdown))

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, "not_found", f"No endpoint {request.method} {request.url.path}; see docs/protocol.md.")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}.")

    async def too_large(request: Request, exc: Exception) -> Response:
        # Raised by GuardMiddleware's capped receive inside request.body(); without this handler Starlette's
        # ServerErrorMiddleware answers 500 first and the middleware's own 413 then fails (response started).
        return error(413, "too_large", f"The request body is larger than the worker's limit of "
                                       f"{settings.max_body_bytes / 2**20:.0f} MB.")

    async def server_error(request: Request, exc: Exception) -> Response:
        return error(500, "internal", f"The worker hit an unexpected error ({type(exc).__name__}); it keeps serving.")

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/jobs", submit, methods=["POST"]),
        Route("/jobs/{job_id}", status, methods=["GET"]),
        Route("/jobs/{job_id}", cancel, methods=["DELETE"]),
        Route("/jobs/{job_id}/result", result, methods=["GET"]),
        Route("/shutdown", shutdown, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed, 500: server_error,
                                                       BodyTooLarge: too_large})
    return GuardMiddleware(app, settings)
