"""A job's audio from its upload: read (upload.py), probed, and only the requested range decoded on the thread
pool, held in the budget.

Audio is decoded and range-checked before the job is accepted, so bad input is a 4xx sentence, not a failed job.
The length and decoding-cost limits apply to the range: a 5 s strip of a 40-minute recording is 5 s of work.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from model_core.audio_io import AudioError, DecodedAudio, decode_audio_bytes, probe_audio_bytes
from model_core.memory import release_memory
from model_core.worker.budget import Reservation
from model_core.worker.errors import bad_audio, error
from model_core.worker.params import JobParams
from model_core.worker.state import WorkerState
from model_core.worker.upload import ClientGone, UploadError, busy_error, read_body

UPLOAD_NAME = "The uploaded audio"  # how the decoder's sentences name the upload


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


async def receive_audio(request: Request, params: JobParams,
                        state: WorkerState) -> tuple[DecodedAudio, Reservation] | Response:
    """The upload read, decoded and cropped, with its reservation in the budget; or the error reply."""
    settings, budget, board = state.settings, state.budget, state.board
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
        info = await decode_in_thread(probe_audio_bytes, body, name=UPLOAD_NAME)
        if isinstance(info, AudioError):
            return bad_audio(str(info))
        # Hold the decoded size (known from the header) before decoding: refuse now rather than run out.
        decoded = budget.reserve(info.output_bytes(settings.max_audio_seconds, params.start_s, params.end_s))
        if decoded is None:
            busy = busy_error(budget, board.busy_seconds())
            return error(busy.status, busy.code, busy.message, {"Retry-After": str(busy.retry_after)})
        async with state.decode_slots:
            audio = await decode_in_thread(decode_audio_bytes, body, name=UPLOAD_NAME,
                                           max_seconds=settings.max_audio_seconds,
                                           max_source_samples=settings.max_source_samples,
                                           start_s=params.start_s, end_s=params.end_s)
        body = None
        upload.release()
        if isinstance(audio, AudioError):
            return bad_audio(str(audio))
        decoded.resize(audio.samples.nbytes)  # shrinking always fits
        reservation, decoded = decoded, None
        return audio, reservation
    finally:
        upload.release()
        if decoded is not None:
            decoded.release()
        body = None  # freed before the heap is trimmed, whatever happened
        release_memory(size)
