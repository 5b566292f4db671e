"""The pure ASGI guard in front of the worker's routes: it refuses before any body is read.

A foreign Host header (DNS rebinding), a missing or wrong token, a repeated Host/Authorization/... header, and
bodies over the size cap (by Content-Length, and again while streaming for chunked uploads).
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from model_core.worker.errors import error, too_large
from model_core.worker.params import PARAMS_HEADER
from model_core.worker.state import WorkerSettings

SINGLE_HEADERS = (b"host", b"authorization", b"content-length", b"transfer-encoding", PARAMS_HEADER.encode())


class BodyTooLarge(Exception):
    """Raised by the capped receive inside the app; the app's handler for it answers 413 (see app.py)."""


class GuardMiddleware:
    """Wraps the Starlette app: a request it refuses never reaches a route, and its body is never read."""

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
            await too_large(limit)(scope, receive, send)
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
            await too_large(limit)(scope, receive, send)

