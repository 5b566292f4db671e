"""Jobs, a fair queue across clients, and the single thread that runs them on the device."""

from __future__ import annotations

import collections
import contextlib
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_core.memory import release_memory

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


@dataclass
class JobRequest:
    """Everything a job needs, already validated: decoded 16 kHz samples and parameters."""

    model: str
    samples: np.ndarray
    start_s: float = 0.0
    subject: str | None = None
    strength: float = 1.0
    smoothing_s: float = 0.0
    dtype: str = "float32"
    client: str = "anonymous"
    output: str = "vertices"  # or "weights": (T, K) blendshape weights in 0..1
    # The samples' share of the worker's audio budget (budget.Reservation), given back by drop_audio().
    reservation: Any = field(default=None, repr=False)

    @property
    def audio_seconds(self) -> float:
        return len(self.samples) / 16000.0

    def drop_audio(self) -> None:
        """Free the samples (once the job has run, or will never run) and give their budget back."""
        size = self.samples.nbytes
        self.samples = np.zeros(0, dtype=np.float32)
        release_memory(size)
        if self.reservation is not None:
            self.reservation.release()
            self.reservation = None


@dataclass
class Job:
    id: str
    request: JobRequest
    state: str = QUEUED
    progress: float = 0.0
    stage: str = "queued"
    error: str | None = None
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    result: np.ndarray | None = None  # (T, V, 3) offsets, C-contiguous, in the requested dtype
    frames: int | None = None
    fps: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    # Called (under the board's lock, so they must be quick and thread-safe) whenever `state` changes;
    # long-polling requests register here. See JobBoard.watch.
    watchers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def status(self, position: int | None = None) -> dict:
        now = time.monotonic()
        end = self.finished or now
        return {
            "job": self.id,
            "state": self.state,
            "progress": round(self.progress, 4),
            "stage": self.stage,
            "elapsed_s": round(end - self.created, 3),
            "queued_s": round((self.started or end) - self.created, 3),
            "compute_s": round(end - self.started, 3) if self.started else 0.0,
            "position": position,
            "model": self.request.model,
            "frames": self.frames,
            "error": self.error,
        }


# A runner turns a request into (offsets array, frames, fps); it calls progress(fraction, stage) and must
# raise JobCancelledError when should_cancel() becomes true. The array is kept as the job's result and sent
# from memory as .npy, so it should already have the requested dtype and be C-contiguous.
Runner = Callable[[JobRequest, Callable[[float, str], None], Callable[[], bool]], tuple[np.ndarray, int, float]]


class JobCancelledError(RuntimeError):
    pass


class JobBoard:
    """Holds every job, queues pending ones per client, and runs them one at a time on one thread.

    Clients are served round-robin, so one client's batch cannot starve another's single take. Finished
    jobs are forgotten `ttl_s` seconds after they end and at most `max_finished` are kept, so memory does
    not grow with the number of jobs served.
    """

    def __init__(self, runner: Runner, ttl_s: float = 600.0, max_finished: int = 256,
                 max_queued: int = 1024) -> None:
        self._runner = runner
        self._ttl_s = ttl_s
        self._max_finished = max_finished
        self._max_queued = max_queued
        self._jobs: dict[str, Job] = {}
        self._queues: collections.OrderedDict[str, collections.deque[Job]] = collections.OrderedDict()
        self._lock = threading.Condition()
        self._stopping = False
        self._released = False
        self._running: Job | None = None
        self._ids = itertools.count()
        self._compute_per_audio_s = 0.5  # running estimate of compute seconds per second of audio (Retry-After)
        self._thread = threading.Thread(target=self._loop, name="jambatalk-jobs", daemon=True)
        self._thread.start()

    # -- client side ---------------------------------------------------------------------------
    def submit(self, request: JobRequest) -> tuple[Job, int]:
        with self._lock:
            self._expire_locked()
            if self._stopping:
                raise RuntimeError("The worker is shutting down.")
            if self.queued_count() >= self._max_queued:
                raise OverflowError(f"The worker already has {self._max_queued} jobs queued; try again later.")
            job = Job(id=f"{next(self._ids):06d}-{secrets.token_hex(8)}", request=request)
            self._jobs[job.id] = job
            self._queues.setdefault(request.client, collections.deque()).append(job)
            position = self._position_locked(job)
            self._lock.notify_all()
            return job, position

    def get(self, job_id: str) -> tuple[Job, int | None] | None:
        with self._lock:
            self._expire_locked()
            job = self._jobs.get(job_id)
            if job is None:
                return None
            return job, self._position_locked(job) if job.state == QUEUED else None

    def watch(self, job_id: str, callback: Callable[[], None]) -> tuple[Job, int | None] | None:
        """Like get(), and also call `callback` at the job's next state change, unless it has already finished.

        Register and read the state under one lock, so a change between the two cannot be missed. The callback
        runs on whichever thread changes the state, under the board's lock: it must only hand over (e.g.
        loop.call_soon_threadsafe). Always pair with unwatch().
        """
        with self._lock:
            found = self.get(job_id)
            if found is not None and found[0].state not in FINISHED:
                if self._released:
                    callback()  # the worker is stopping: nobody should wait
                else:
                    found[0].watchers.append(callback)
            return found

    def unwatch(self, job: Job, callback: Callable[[], None]) -> None:
        with self._lock:
            with contextlib.suppress(ValueError):
                job.watchers.remove(callback)

    def release_watchers(self) -> None:
        """Call every watcher now, and from now on at once on watch(): the worker is stopping, so long polls
        answer immediately instead of holding up the server's graceful shutdown."""
        with self._lock:
            self._released = True
            for job in self._jobs.values():
                self._notify_locked(job)

    def cancel(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == QUEUED:
                self._queues[job.request.client].remove(job)
                job.request.drop_audio()  # at once, not when the job expires: a cancelled take holds nothing
                self._finish_locked(job, CANCELLED, stage="cancelled before it started")
            elif job.state == RUNNING:
                job.cancel_event.set()
                job.stage = "cancelling"
            return job

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"queued": self.queued_count(), "running": int(self._running is not None),
                    "kept": len(self._jobs)}

    def busy_seconds(self) -> int:
        """About how long until the queued and running work is done: what a refused client should wait."""
        with self._lock:
            jobs = [job for queue in self._queues.values() for job in queue]
            if self._running is not None:
                jobs.append(self._running)
            audio = sum(job.request.audio_seconds * (1.0 - job.progress) for job in jobs)
            return int(min(300, max(1, round(audio * self._compute_per_audio_s))))

    def queued_count(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel everything and stop the runner thread."""
        with self._lock:
            self._stopping = True
            for queue in self._queues.values():
                for job in queue:
                    job.request.drop_audio()
                    self._finish_locked(job, CANCELLED, stage="worker shut down")
                queue.clear()
            if self._running is not None:
                self._running.cancel_event.set()
            self._lock.notify_all()
        self._thread.join(timeout)

    # -- runner thread -------------------------------------------------------------------------
    def _next_locked(self) -> Job | None:
        for client in list(self._queues):
            queue = self._queues[client]
            if not queue:
                del self._queues[client]
                continue
            job = queue.popleft()
            # Round-robin: the client just served goes to the back of the line.
            self._queues.move_to_end(client)
            if not queue:
                del self._queues[client]
            return job
        return None

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and not any(self._queues.values()):
                    self._lock.wait(timeout=5.0)
                    self._expire_locked()
                if self._stopping:
                    return
                job = self._next_locked()
                if job is None:
                    continue
                job.state, job.stage, job.started = RUNNING, "starting", time.monotonic()
                self._running = job
                self._notify_locked(job)
            self._run(job)

    def _run(self, job: Job) -> None:
        seconds = job.request.audio_seconds

        def progress(fraction: float, stage: str) -> None:
            job.progress, job.stage = max(job.progress, min(1.0, fraction)), stage

        try:
            result, frames, fps = self._runner(job.request, progress, job.cancel_event.is_set)
        except JobCancelledError:
            with self._lock:
                self._finish_locked(job, CANCELLED, stage="worker shut down" if self._stopping else "cancelled")
        except Exception as exc:  # noqa: BLE001 - a failed job must never take the worker down
            with self._lock:
                self._finish_locked(job, FAILED, stage="failed", error=_sentence(exc))
        else:
            with self._lock:
                if seconds > 0 and job.started is not None:
                    ratio = (time.monotonic() - job.started) / seconds
                    self._compute_per_audio_s = 0.8 * self._compute_per_audio_s + 0.2 * ratio
                job.result, job.frames, job.fps = result, frames, fps
                job.progress = 1.0
                self._finish_locked(job, DONE, stage="done")
        finally:
            job.request.drop_audio()  # as soon as it is used
            with self._lock:
                self._running = None

    # -- bookkeeping ---------------------------------------------------------------------------
    def _finish_locked(self, job: Job, state: str, stage: str, error: str | None = None) -> None:
        job.state, job.stage, job.error, job.finished = state, stage, error, time.monotonic()
        self._notify_locked(job)
        self._expire_locked()

    @staticmethod
    def _notify_locked(job: Job) -> None:
        for callback in list(job.watchers):
            try:
                callback()
            except Exception:  # noqa: BLE001 - a waiter whose event loop has gone must not break the board
                pass

    def _position_locked(self, job: Job) -> int:
        """Jobs that will run before this one under round-robin (an estimate when clients come and go)."""
        queue = self._queues.get(job.request.client)
        if queue is None or job not in queue:
            return 0
        mine = list(queue).index(job)
        others = sum(min(len(q), mine + (1 if c_index < list(self._queues).index(job.request.client) else 0))
                     for c_index, (c, q) in enumerate(self._queues.items()) if c != job.request.client)
        return mine + others

    def _expire_locked(self) -> None:
        now = time.monotonic()
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        for job in finished:
            if now - (job.finished or now) > self._ttl_s:
                del self._jobs[job.id]
        finished = [j for j in self._jobs.values() if j.state in FINISHED]
        if len(finished) > self._max_finished:
            finished.sort(key=lambda j: j.finished or 0.0)
            for job in finished[: len(finished) - self._max_finished]:
                del self._jobs[job.id]


def _sentence(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:500]
