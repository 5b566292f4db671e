"""Connection hygiene for the worker: idle and slow-header connections cannot lock real clients out.

uvicorn keeps a connection open for as long as the client keeps it, until a request head arrives, and counts
every open connection against one concurrency limit; a few hundred idle sockets from any local process were
enough to make every real request a plain-text 503. Here each connection gets a deadline for a complete request
head (`head_timeout_s`, re-armed after every response, so a kept-alive connection cannot idle either), and when
`max_connections` are open the oldest connection still waiting for a head makes room for the new one. A
connection that is running a request is never closed by this guard; its body has its own timeout (upload.py).

The guard wraps uvicorn's own HTTP protocol (it only forwards the asyncio calls), and learns that a request
head is complete when the ASGI app is called for it (`wrap_app`), so it relies on no uvicorn internals.
"""

from __future__ import annotations

import asyncio
import collections
import resource
import sys
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.utils import get_local_addr, get_remote_addr

DEFAULT_HEAD_TIMEOUT_S = 5.0
DEFAULT_MAX_CONNECTIONS = 4096
_TIMEOUT_BODY = (b'{"error": {"code": "request_timeout", "message": '
                 b'"The request head did not arrive in time; send it at once."}}')
TIMEOUT_REPLY = (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY))


def raise_open_file_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files towards `wanted` (never above the hard limit); returns the
    soft limit now in force. Thousands of idle sockets must not exhaust descriptors before the guard acts."""
    if sys.platform == "win32":
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class _GuardedProtocol(asyncio.Protocol):
    """One connection: forwards everything to uvicorn's protocol and closes the transport when no request head
    arrives before the deadline."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol, loop: asyncio.AbstractEventLoop) -> None:
        self.guard = guard
        self.inner = inner
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.key: tuple | None = None
        self.active = 0  # requests of this connection being served by the app
        self.got_bytes = False  # since the deadline was armed: a partial head gets a 408, silence just a close
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.key = (get_local_addr(transport), get_remote_addr(transport))
        self.guard._add(self)
        self.arm()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if data:
            self.got_bytes = True
        self.inner.data_received(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        self.guard._remove(self)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    # -- deadline -------------------------------------------------------------------------------------------
    def arm(self) -> None:
        self.disarm()
        self.got_bytes = False
        self.timer = self.loop.call_later(self.guard.head_timeout_s, self.expire)
        self.guard._waiting[self] = None  # insertion order: oldest waiting first
        self.guard._waiting.move_to_end(self)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.guard._waiting.pop(self, None)

    def expire(self) -> None:
        self.timer = None
        self.guard._waiting.pop(self, None)
        if self.active or self.transport is None or self.transport.is_closing():
            return
        self.guard.closed_idle += 1
        if self.got_bytes:
            self.transport.write(TIMEOUT_REPLY)
        self.transport.close()

    def request_started(self) -> None:
        self.active += 1
        self.disarm()

    def request_finished(self) -> None:
        self.active = max(0, self.active - 1)
        if not self.active and self.transport is not None and not self.transport.is_closing():
            self.arm()


class ConnectionGuard:
    """Deadlines for request heads and a cap on open connections; see the module docstring.

    Use `protocol_factory(inner_class)` as uvicorn's `http` protocol and `wrap_app(app)` as its app.
    """

    def __init__(self, head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS) -> None:
        self.head_timeout_s = float(head_timeout_s)
        self.max_connections = max(2, int(max_connections))
        self._connections: dict[tuple, _GuardedProtocol] = {}
        self._waiting: collections.OrderedDict[_GuardedProtocol, None] = collections.OrderedDict()
        self.closed_idle = 0  # connections closed for sending no complete request head in time
        self.evicted = 0  # connections closed to make room for a new one

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def protocol_factory(self, inner_class: type[asyncio.Protocol]):
        """A callable with uvicorn's protocol signature that builds a guarded `inner_class` protocol."""

        def build(config: Any, server_state: Any, app_state: dict, _loop: asyncio.AbstractEventLoop | None = None
                  ) -> asyncio.Protocol:
            loop = _loop or asyncio.get_event_loop()
            inner = inner_class(config=config, server_state=server_state, app_state=app_state,  # type: ignore[call-arg]
                                _loop=loop)
            return _GuardedProtocol(self, inner, loop)

        return build

    def wrap_app(self, app: ASGIApp) -> ASGIApp:
        """The app, telling the guard when each request starts (its head is complete) and ends."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            connection = None
            if scope["type"] == "http":
                connection = self._connections.get((scope.get("server"), scope.get("client")))
            if connection is None:
                await app(scope, receive, send)
                return
            connection.request_started()
            try:
                await app(scope, receive, send)
            finally:
                connection.request_finished()

        return guarded

    def _add(self, connection: _GuardedProtocol) -> None:
        while len(self._connections) >= self.max_connections and self._waiting:
            oldest = next(iter(self._waiting))
            oldest.disarm()
            self.evicted += 1
            if oldest.transport is not None:
                oldest.transport.close()
            self._connections.pop(oldest.key, None)  # connection_lost follows later; make room now
        self._connections[connection.key] = connection

    def _remove(self, connection: _GuardedProtocol) -> None:
        if self._connections.get(connection.key) is connection:
            del self._connections[connection.key]
