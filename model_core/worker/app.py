"""The worker's HTTP application (Starlette): the endpoints of docs/protocol.md, behind the guard of guard.py.

The endpoints are plain functions; what they share (models, job board, settings) is a `WorkerState` on
`app.state.worker`, set by `create_app`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import torch
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from jambatalk_blender.core import protocol
from model_core import __version__
from model_core.worker import PROTOCOL_VERSION
from model_core.worker.audio_intake import receive_audio
from model_core.worker.errors import bad_audio, bad_params, error, too_large, unknown_job
from model_core.worker.guard import BodyTooLarge, GuardMiddleware
from model_core.worker.jobs import DONE, FINISHED, Job, JobBoard, JobRequest
from model_core.worker.models import ModelRegistry
from model_core.worker.params import PARAMS_HEADER, parse_params, parse_wait
from model_core.worker.responses import NpyResponse
from model_core.worker.state import WorkerSettings, WorkerState, worker_state


# -- endpoints ---------------------------------------------------------------------------------------------
async def health(request: Request) -> Response:
    state = worker_state(request)
    return JSONResponse({
        "protocol": PROTOCOL_VERSION,
        "version": __version__,
        "device": state.registry.device,
        "torch": torch.__version__,
        "models": state.registry.describe(),
        "queue": {**state.board.counts(), "audio_bytes": state.budget.used},
        "limits": {"max_body_bytes": state.settings.max_body_bytes,
                   "max_audio_seconds": state.settings.max_audio_seconds,
                   "max_queued_audio_bytes": state.budget.limit},
    })


async def submit(request: Request) -> Response:
    state = worker_state(request)
    try:
        params = parse_params(request.headers.get(PARAMS_HEADER))
    except ValueError as exc:
        return bad_params(str(exc))
    try:
        slot = state.registry.resolve(params.model)
    except KeyError as exc:
        return error(404, "unknown_model", exc.args[0])
    except LookupError as exc:
        return error(503, "model_unavailable", str(exc))
    animator = slot.animator
    if params.output == "weights" and animator.output_kind != "blendshapes":
        return bad_params(f"Model {slot.name!r} outputs vertex offsets, not blendshape weights; "
                          "ask for output 'vertices'.")
    subject = params.subject
    if subject and subject not in animator.style_names:
        known = ", ".join(animator.style_names) or "none (leave subject empty)"
        return bad_params(f"Unknown subject {subject!r}; model {slot.name!r} knows: {known}.")
    audio_or_error = await receive_audio(request, params, state)
    if isinstance(audio_or_error, Response):
        return audio_or_error
    audio, reservation = audio_or_error
    if animator.model.motion_frames_for(len(audio.samples)) < 1:
        reservation.release()
        return bad_audio("The audio range is too short to yield a single motion frame.")
    job_request = JobRequest(model=slot.name, samples=audio.samples, start_s=params.start_s or 0.0,
                             subject=subject or None, strength=params.strength, smoothing_s=params.smoothing_s,
                             dtype=params.dtype, client=params.client, output=params.output,
                             reservation=reservation)
    del audio
    try:
        job, position = state.board.submit(job_request)
    except OverflowError as exc:
        job_request.drop_audio()
        return error(429, "queue_full", str(exc), {"Retry-After": str(state.board.busy_seconds())})
    except RuntimeError as exc:
        job_request.drop_audio()
        return error(503, "shutting_down", str(exc))
    return JSONResponse({"job": job.id, "state": job.state, "position": position}, status_code=202)


async def status(request: Request) -> Response:
    board = worker_state(request).board
    job_id = request.path_params["job_id"]
    raw_wait = request.query_params.get("wait")
    if raw_wait is None:
        found = board.get(job_id)
        if found is None:
            return unknown_job()
        job, position = found
        return JSONResponse(job.status(position))
    try:
        hold = parse_wait(raw_wait)
    except ValueError as exc:
        return bad_params(str(exc))
    # Long poll: hold the reply until the job's state changes (or it is already finished), at most `hold` s.
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def wake() -> None:  # runs on the job thread, under the board's lock
        loop.call_soon_threadsafe(changed.set)

    started = loop.time()
    found = board.watch(job_id, wake)
    if found is None:
        return unknown_job()
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


def result_metadata(job: Job) -> dict[str, str]:
    """The reply headers of a result (protocol.RESULT_HEADERS): fps, start, frames, output and its width."""
    names, width = protocol.RESULT_HEADERS, job.result.shape[1]
    return {names["fps"]: repr(job.fps), names["start_s"]: repr(job.request.start_s),
            names["frames"]: str(job.frames), names["output"]: job.request.output,
            names["channels" if job.request.output == "weights" else "vertices"]: str(width)}


async def result(request: Request) -> Response:
    state = worker_state(request)
    via = request.query_params.get("via", "http")
    if via not in ("http", "file"):
        return bad_params("Query parameter via must be 'http' or 'file'.")
    found = state.board.get(request.path_params["job_id"])
    if found is None:
        return unknown_job()
    job, _ = found
    if job.state != DONE or job.result is None:
        reason = job.error or f"the job is {job.state}"
        return error(409, "not_ready", f"No result: {reason}.")
    array = job.result
    meta = result_metadata(job)
    if via == "http":
        return NpyResponse(array, headers=meta)
    if state.file_results is None:
        return error(400, "no_file_results", "This worker does not hand results over as files (only a worker "
                                             "on a loopback address does); fetch the result without via=file.")
    try:
        name, size = await run_in_threadpool(state.file_results.write, job.id, array)
    except OSError as exc:
        return error(503, "file_write_failed", f"The worker could not write the result file "
                                               f"({exc.strerror or exc}); fetch it without via=file.")
    return JSONResponse({"file": name, "bytes": size, "fps": job.fps, "start_s": job.request.start_s,
                         "frames": job.frames, "output": job.request.output,
                         "channels" if job.request.output == "weights" else "vertices": int(array.shape[1])},
                        headers=meta)


async def cancel(request: Request) -> Response:
    job = worker_state(request).board.cancel(request.path_params["job_id"])
    if job is None:
        return unknown_job()
    return JSONResponse(job.status())


async def shutdown(request: Request) -> Response:
    return JSONResponse({"state": "shutting down"}, status_code=202,
                        background=BackgroundTask(worker_state(request).request_shutdown))


# -- errors outside the endpoints --------------------------------------------------------------------------
async def not_found(request: Request, exc: Exception) -> Response:
    return error(404, "not_found", f"No endpoint {request.method} {request.url.path}; see docs/protocol.md.")


async def not_allowed(request: Request, exc: Exception) -> Response:
    return error(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}.")


async def body_too_large(request: Request, exc: Exception) -> Response:
    # Raised by GuardMiddleware's capped receive inside request.body(); without this handler Starlette's
    # ServerErrorMiddleware answers 500 first and the middleware's own 413 then fails (response started).
    return too_large(worker_state(request).settings.max_body_bytes)


async def server_error(request: Request, exc: Exception) -> Response:
    return error(500, "internal", f"The worker hit an unexpected error ({type(exc).__name__}); it keeps serving.")


ROUTES = [
    Route("/health", health, methods=["GET"]),
    Route("/jobs", submit, methods=["POST"]),
    Route("/jobs/{job_id}", status, methods=["GET"]),
    Route("/jobs/{job_id}", cancel, methods=["DELETE"]),
    Route("/jobs/{job_id}/result", result, methods=["GET"]),
    Route("/shutdown", shutdown, methods=["POST"]),
]
EXCEPTION_HANDLERS = {404: not_found, 405: not_allowed, 500: server_error, BodyTooLarge: body_too_large}


def create_app(registry: ModelRegistry, board: JobBoard, settings: WorkerSettings,
               request_shutdown: Callable[[], None]) -> ASGIApp:
    """The worker's ASGI app: the routes with their shared state, behind the guard."""
    app = Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS)
    app.state.worker = WorkerState.create(registry, board, settings, request_shutdown)
    return GuardMiddleware(app, settings)
