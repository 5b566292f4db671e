"""Reading an upload: straight into one buffer, counted against the audio budget, with a timeout for a stalled body.

Starlette's `request.body()` joins the received chunks (one copy) and the decoder used to copy that again; a
200 MB chunked upload left half a gigabyte behind. Here a body with a Content-Length goes into one bytearray of
exactly that size, a chunked one into one bytearray that grows in place, and the decoder reads it in place.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import Receive

from model_core.worker.budget import ByteBudget, Reservation
from model_core.worker.errors import too_large_message

MIN_UPLOAD_RATE = 64 * 1024  # bytes/s: a body slower than this on average (after its grace time) is abandoned


class UploadError(Exception):
    """The body was not read; `status`, `code` and `message` make the JSON error reply."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class ClientGone(Exception):
    """The client closed the connection before its body was complete."""


def busy_error(budget: ByteBudget, retry_after: int) -> UploadError:
    return UploadError(
        503, "busy",
        f"The worker is busy: it already holds {budget.used / 2**20:.0f} MB of audio to animate (its limit is "
        f"{budget.limit / 2**20:.0f} MB); try again in about {retry_after} s.", retry_after=retry_after)


async def read_body(receive: Receive, content_length: int | None, limit: int, budget: ByteBudget,
                    idle_timeout_s: float, retry_after: int) -> tuple[bytearray, Reservation]:
    """The whole body in one bytearray, and its reservation in `budget` (the caller releases it).

    Raises UploadError: 503 `busy` when the budget cannot hold the body, 408 `body_timeout` when no bytes arrive
    for `idle_timeout_s` or the average rate falls below MIN_UPLOAD_RATE after that grace time, 413 over `limit`.
    """
    expected = content_length if content_length is not None else 0
    reservation = budget.reserve(expected)
    if reservation is None:
        raise busy_error(budget, retry_after)
    try:
        buffer = bytearray(expected)
        received = 0
        started = time.monotonic()
        while True:
            deadline = started + idle_timeout_s + (received + 1) / MIN_UPLOAD_RATE
            wait = min(idle_timeout_s, max(0.0, deadline - time.monotonic()))
            try:
                message = await asyncio.wait_for(receive(), wait)
            except TimeoutError:
                took = time.monotonic() - started
                raise UploadError(408, "body_timeout",
                                  f"The request body stalled or came too slowly ({received} bytes in {took:.0f} s); "
                                  "send it again without pausing.") from None
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            end = received + len(chunk)
            if end > limit:
                raise UploadError(413, "too_large", too_large_message(limit))
            if end > len(buffer):
                if content_length is not None:
                    raise UploadError(400, "bad_body", "The request body is longer than its Content-Length.")
                if not reservation.resize(end):
                    raise busy_error(budget, retry_after)
                buffer.extend(chunk)  # grows in place (realloc), so never two copies of the upload
            else:
                buffer[received:end] = chunk
            received = end
            if not message.get("more_body", False):
                break
        if received < len(buffer):
            raise UploadError(400, "bad_body", "The request body is shorter than its Content-Length.")
        return buffer, reservation
    except BaseException:
        reservation.release()
        raise
