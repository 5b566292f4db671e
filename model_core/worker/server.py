"""`jambatalk serve`: bind, load models, announce readiness on stdout, serve until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from model_core.worker import PROTOCOL_VERSION
from model_core.worker.app import create_app
from model_core.worker.budget import ByteBudget
from model_core.worker.connections import (
    DEFAULT_HEAD_TIMEOUT_S,
    DEFAULT_MAX_CONNECTIONS,
    ConnectionGuard,
    raise_open_file_limit,
)
from model_core.worker.hosts import HostPolicy, is_loopback
from model_core.worker.jobs import JobBoard
from model_core.worker.models import ModelRegistry
from model_core.worker.state import DEFAULT_BODY_TIMEOUT_S, WorkerSettings

PARENT_POLL_SECONDS = 1.0


@dataclass
class ServeOptions:
    checkpoints: list[str]
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    host: str = "127.0.0.1"
    port: int = 0
    token_file: str | None = None
    parent_pid: int | None = None
    max_body_mb: float = 256.0
    max_audio_minutes: float = 30.0
    result_ttl: float = 600.0
    file_results: bool = True  # offer ?via=file results (loopback only) from a private temporary directory
    allow_hosts: list[str] = field(default_factory=list)  # extra Host names/addresses to answer (--allow-host)
    max_queued_audio_mb: float = 2048.0  # uploads + decoded audio waiting in the queue (--max-queued-audio-mb)
    head_timeout: float = DEFAULT_HEAD_TIMEOUT_S  # a connection must send its request head within this
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S  # an upload with no progress for this long is abandoned


def read_token(path: str | None) -> str:
    if path is None:
        return secrets.token_urlsafe(32)
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    token = lines[0].strip() if lines else ""
    if len(token) < 16:
        raise ValueError(f"The token in {path} must be at least 16 characters on its first line.")
    return token


def make_result_dir() -> Path:
    """A private (0700) directory for results handed over as files: on tmpfs (/dev/shm) where there is one,
    so a result never touches a disk."""
    base = None
    shm = Path("/dev/shm")
    if sys.platform.startswith("linux") and shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        base = str(shm)
    return Path(tempfile.mkdtemp(prefix="jambatalk-results-", dir=base))


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if host == "::" and hasattr(socket, "IPV6_V6ONLY"):
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # every address, IPv4 too, on every platform
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def process_exists(pid: int) -> bool:
    if sys.platform == "win32":
        # os.kill(pid, 0) would send CTRL_C_EVENT on Windows; ask the kernel whether the process still runs.
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x00100000 | 0x1000, False, pid)  # SYNCHRONIZE | QUERY_LIMITED_INFO
        if not handle:
            return ctypes.get_last_error() == 5  # access denied: it exists
        try:
            return kernel32.WaitForSingleObject(handle, 0) == 0x102  # WAIT_TIMEOUT: still running
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def parent_alive(pid: int, was_our_parent: bool) -> bool:
    """Whether `pid` still runs. When it was our parent, being re-parented also means it died."""
    if was_our_parent and sys.platform != "win32" and os.getppid() != pid:
        return False
    try:
        return process_exists(pid)
    except OSError:
        return True  # cannot tell: keep serving rather than vanish


def check_options(options: ServeOptions) -> None:
    """Refuse, before anything is loaded, options that cannot work (one sentence each)."""
    if not options.checkpoints:
        raise ValueError("Give at least one --checkpoint to serve.")
    if options.parent_pid is not None and (options.parent_pid <= 0 or not process_exists(options.parent_pid)):
        # Otherwise the worker would announce itself ready and exit a second later.
        raise ValueError(f"--parent-pid {options.parent_pid} is not a running process.")
    for name in ("head_timeout", "body_timeout", "max_queued_audio_mb", "max_body_mb", "max_audio_minutes"):
        value = getattr(options, name)
        if not (isinstance(value, int | float) and 0 < value < float("inf")):
            raise ValueError(f"--{name.replace('_', '-')} must be a positive number; got {value!r}.")


def serve(options: ServeOptions) -> int:
    check_options(options)
    if not is_loopback(options.host):
        if options.token_file is None:
            raise ValueError(f"Listening on {options.host} (not loopback) requires an explicit --token-file.")
        print(f"WARNING: the worker listens on {options.host}, reachable from other machines; "
              "keep the token secret and the network trusted.", file=sys.stderr)
    token = read_token(options.token_file)
    max_seconds = options.max_audio_minutes * 60
    registry = ModelRegistry(options.checkpoints, options.device, options.precision, options.backend, max_seconds)
    for slot in registry.slots.values():
        if not slot.ready:
            print(f"WARNING: checkpoint {slot.path} failed to load: {slot.error}", file=sys.stderr)
    board = JobBoard(registry.animate, ttl_s=options.result_ttl)
    sock = bind_socket(options.host, options.port)
    port = sock.getsockname()[1]
    hosts = HostPolicy(options.host, port, options.allow_hosts)
    # Results as files only for a client on this machine: a loopback worker's own private directory.
    result_dir = make_result_dir() if options.file_results and is_loopback(options.host) else None
    max_body = int(options.max_body_mb * 2**20)
    # The budget must hold at least one upload of the largest size and its decoded audio, or nothing would fit.
    budget = ByteBudget(max(int(options.max_queued_audio_mb * 2**20), max_body + int(max_seconds * 16000 * 4)))
    settings = WorkerSettings(token=token, hosts=hosts, max_body_bytes=max_body, max_audio_seconds=max_seconds,
                              result_dir=result_dir, budget=budget, body_timeout_s=options.body_timeout)
    # Room for thousands of connections, so idle ones are closed by the guard long before descriptors run out.
    files = raise_open_file_limit(DEFAULT_MAX_CONNECTIONS + 1024)
    guard = ConnectionGuard(options.head_timeout, max_connections=min(DEFAULT_MAX_CONNECTIONS, files - 256))
    # No limit_concurrency: uvicorn would count idle connections against it and answer every real request 503.
    config = uvicorn.Config(lambda *a: None, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5, limit_concurrency=None, backlog=2048,
                            http=guard.protocol_factory(AutoHTTPProtocol))
    server = uvicorn.Server(config)

    def request_shutdown() -> None:
        server.should_exit = True

    config.app = guard.wrap_app(create_app(registry, board, settings, request_shutdown))
    ready = {"port": port, "token": token, "pid": os.getpid(), "protocol": PROTOCOL_VERSION,
             "url": hosts.ready_url()}
    if hosts.wildcard:
        print(f"The worker listens on every address of this machine; clients can use {ready['url']} (or another "
              f"of its addresses). Names other than this machine's need --allow-host.", file=sys.stderr)
    if result_dir is not None:
        ready["result_dir"] = str(result_dir)

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.01)
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()

    async def watch_parent(pid: int) -> None:
        was_our_parent = os.getppid() == pid
        while not server.should_exit:
            if not parent_alive(pid, was_our_parent):
                print(f"Parent process {pid} is gone; the worker stops.", file=sys.stderr)
                server.should_exit = True
                return
            await asyncio.sleep(PARENT_POLL_SECONDS)

    async def release_waiters_on_exit() -> None:
        # However the stop comes (POST /shutdown, SIGTERM/SIGINT through uvicorn, parent death), long-polling
        # requests must answer now rather than hold the graceful shutdown for up to their `wait`.
        while not server.should_exit:
            await asyncio.sleep(0.05)
        board.release_watchers()

    async def main() -> None:
        tasks = [asyncio.create_task(announce()), asyncio.create_task(release_waiters_on_exit())]
        if options.parent_pid:
            tasks.append(asyncio.create_task(watch_parent(options.parent_pid)))
        try:
            await server.serve(sockets=[sock])
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    if threading.current_thread() is threading.main_thread():
        # uvicorn restores the previous SIGTERM handler after its graceful shutdown and re-raises the signal;
        # with the default handler the process then dies by SIGTERM (exit -15) before board.stop() runs.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        asyncio.run(main())
    finally:
        board.stop()
        sock.close()
        if result_dir is not None:
            shutil.rmtree(result_dir, ignore_errors=True)
    return 0
