"""The worker's settings (limits, token, hosts) and the state its endpoints share, kept on `app.state.worker`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request

from model_core.worker.budget import ByteBudget
from model_core.worker.hosts import HostPolicy
from model_core.worker.jobs import JobBoard
from model_core.worker.models import ModelRegistry
from model_core.worker.responses import FileResults

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


@dataclass
class WorkerState:
    """What every endpoint shares: the models, the job board, the settings and the worker's own helpers."""

    registry: ModelRegistry
    board: JobBoard
    settings: WorkerSettings
    request_shutdown: Callable[[], None]
    file_results: FileResults | None  # None: this worker does not offer ?via=file
    decode_slots: asyncio.Semaphore  # bounds the decodes running at once

    @property
    def budget(self) -> ByteBudget:
        budget = self.settings.budget
        assert budget is not None  # WorkerSettings.__post_init__ always sets one
        return budget

    @classmethod
    def create(cls, registry: ModelRegistry, board: JobBoard, settings: WorkerSettings,
               request_shutdown: Callable[[], None]) -> WorkerState:
        file_results = FileResults(settings.result_dir) if settings.result_dir is not None else None
        return cls(registry, board, settings, request_shutdown, file_results,
                   asyncio.Semaphore(max(1, settings.max_decodes)))


def worker_state(request: Request) -> WorkerState:
    """The shared state of the app serving `request`."""
    return request.app.state.worker
