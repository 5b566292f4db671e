"""The worker's error replies: one JSON shape, and each sentence that more than one place sends, written once.

Every refusal is `{"error": {"code": ..., "message": ...}}` (docs/protocol.md); the codes are part of the
protocol, so clients and tests match on them and they must not drift between the places that send them.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

UNKNOWN_JOB = "No such job: it never existed or its result expired."


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error reply every refusal uses."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def too_large_message(limit_bytes: int) -> str:
    """Said when a body passes the cap: by Content-Length, while streaming, or while reading the upload."""
    return f"The request body is larger than the worker's limit of {limit_bytes / 2**20:.0f} MB."


def too_large(limit_bytes: int) -> JSONResponse:
    return error(413, "too_large", too_large_message(limit_bytes))


def unknown_job() -> JSONResponse:
    return error(404, "unknown_job", UNKNOWN_JOB)


def bad_params(message: str) -> JSONResponse:
    return error(400, "bad_params", message)


def bad_audio(message: str) -> JSONResponse:
    return error(400, "bad_audio", message)
