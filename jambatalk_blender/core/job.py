"""One "Animate from audio" job: the worker I/O on a background thread, ending in a `Take`. No bpy.

`BakeJob.start()` runs a thread that only talks to the worker (start/reuse it, pick the model, upload, wait,
download) and reads the audio's prosody; it never touches bpy. The main thread calls `poll()` (from a modal
operator's timer, or in a loop when headless: timers never fire in the bpy module) and, once the state is
"done", takes `job.take` and bakes it (bake_plan.py, then the Blender writer). `cancel()` may be called at any
time. The worker is always asked for the raw take (strength 1, no smoothing): those belong to the bake.

`WorkerManager` owns the local worker process: started on first use, reused while its settings stay the same,
stopped when the extension is disabled.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import names
from .audio import AudioSource, Decoder, source_samples
from .local_worker import LocalWorker
from .prosody import prosody_track
from .take import Take, audio_digest, clean_take_name
from .worker_client import WorkerClient
from .worker_errors import JobCancelledByUser, VertexCountMismatch, WorkerError, check_vertex_count

REQUEST_MODES = ("AUTO", "CHARACTER", "SOLVE", "SHAPE_KEYS", "MESH_CACHE")


# -- worker ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerConfig:
    """Where the worker is: a LOCAL process we start (python + checkpoints), or a REMOTE one (url + token)."""

    mode: str = "LOCAL"
    python: str = ""
    checkpoints: tuple[str, ...] = ()
    device: str = "auto"
    cwd: str | None = None  # folder holding model_core when it is not installed into that Python
    url: str = ""
    token: str = field(default="", repr=False)  # never in a repr: reprs end up in logs and bug reports
    startup_timeout_s: float = 300.0
    env: tuple[tuple[str, str], ...] | None = None  # replaces the worker's environment (tests)

    def local_key(self) -> tuple:
        return (self.python, self.checkpoints, self.device, self.cwd, self.env)


class WorkerManager:
    """Thread-safe owner of at most one local worker process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local: LocalWorker | None = None
        self._key: tuple | None = None

    @property
    def local(self) -> LocalWorker | None:
        return self._local

    def client(self, config: WorkerConfig) -> WorkerClient:
        """A client for the configured worker; a local worker is started (may take seconds) or reused."""
        if config.mode == "REMOTE":
            if not config.url:
                raise WorkerError("Enter the worker's address in the add-on preferences (e.g. http://127.0.0.1:8765).")
            return WorkerClient.connect(config.url, config.token)
        if config.mode != "LOCAL":
            raise WorkerError(f"Unknown worker mode {config.mode!r}.")
        if not config.python:
            raise WorkerError("Set the worker's Python (the environment with torch) in the add-on preferences.")
        if not config.checkpoints:
            raise WorkerError("Choose a checkpoint for the worker in the add-on preferences.")
        with self._lock:
            if self._local is not None and (self._key != config.local_key() or not self._local.alive()):
                self._local.stop(timeout_s=5)
                self._local = None
            if self._local is None:
                env = dict(config.env) if config.env is not None else None
                self._local = LocalWorker.start(config.python, list(config.checkpoints), device=config.device,
                                                startup_timeout_s=config.startup_timeout_s, env=env,
                                                cwd=config.cwd or None)
                self._key = config.local_key()
            return self._local.client

    def stop(self) -> None:
        with self._lock:
            if self._local is not None:
                with contextlib.suppress(Exception):
                    self._local.stop(timeout_s=5)
                self._local = None
                self._key = None


# -- the job -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobRequest:
    """What to ask the worker for. ``mode`` AUTO: Character Shape Keys for a blendshape model when the mesh has
    keys it can drive, else the editable basis (vertex models, or a mesh without matching keys)."""

    mode: str = "AUTO"
    take_name: str = ""
    model: str | None = None
    vertex_count: int = 0  # the active mesh's
    key_names: tuple[str, ...] = ()  # the active mesh's shape keys (Basis excluded)


@dataclass
class JobStatus:
    state: str  # "starting", "running", "done", "failed", "cancelled", "applied"
    progress: float = 0.0
    stage: str = ""
    error: str | None = None
    timings: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled", "applied")


def mismatch_sentence(exc: VertexCountMismatch) -> str:
    return (f"{exc} Animate a mesh with the model's topology (same vertex count and order as its training "
            "meshes, e.g. FLAME's 5023 vertices), or use a blendshape model on a character with ARKit keys.")


def resolve_mode(mode: str, model: dict, key_names: tuple[str, ...], vertex_count: int) -> str:
    """The output mode AUTO stands for with this model and mesh (other modes are returned as they are)."""
    if mode != "AUTO":
        return mode
    channels = model.get("channels") or ()
    if model.get("output_kind") == "blendshapes" and channels:
        if names.match_channels(channels, key_names).matched_count:
            return "CHARACTER"
        if model.get("vertex_count") is not None and int(model["vertex_count"]) == int(vertex_count):
            return "SHAPE_KEYS"
        return "CHARACTER"  # its plan says in one sentence that no key matches, and how to map them
    return "SHAPE_KEYS"


class BakeJob:
    """One job. Thread-safe: poll()/cancel() from the main thread while the worker thread runs."""

    def __init__(self, manager: WorkerManager, config: WorkerConfig, source: AudioSource, request: JobRequest,
                 decoder: Decoder | None = None, poll_s: float = 0.05) -> None:
        if request.mode not in REQUEST_MODES:
            raise ValueError(f"mode must be one of {REQUEST_MODES}, got {request.mode!r}")
        self.manager = manager
        self.config = config
        self.source = source
        self.request = request
        self.decoder = decoder
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._status = JobStatus("starting", 0.0, "starting")
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.take: Take | None = None
        self.mode: str | None = None  # the resolved output mode
        self.job_id: str | None = None
        self.result_info: dict | None = None

    # -- main-thread API -------------------------------------------------------------------------------
    def start(self) -> BakeJob:
        self._thread = threading.Thread(target=self._run, name="jambatalk-bake", daemon=True)
        self._thread.start()
        return self

    def poll(self) -> JobStatus:
        """A snapshot of the job's state (cheap; call it from a timer)."""
        with self._lock:
            s = self._status
            return JobStatus(s.state, s.progress, s.stage, s.error, dict(s.timings))

    def cancel(self) -> None:
        """Stop the job: the worker is told to drop it; nothing is written into the scene."""
        self._cancel.set()
        with self._lock:
            if not self._status.finished:
                self._status = JobStatus("cancelled", self._status.progress, "cancelled",
                                         "The animation job was cancelled.", self._status.timings)

    def mark_applied(self, info: dict) -> None:
        """The main thread wrote the take into the scene."""
        self.result_info = info
        with self._lock:
            self._status = JobStatus("applied", 1.0, "done", None, self._status.timings)

    def join(self, timeout: float | None = None) -> JobStatus:
        """Block until the worker thread ends (headless use and tests); returns the final status."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.poll()

    def wait(self, timeout: float | None = None, poll_s: float = 0.05) -> JobStatus:
        """Poll until finished or ``timeout`` seconds pass (headless use)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.poll()
            if status.finished or (deadline is not None and time.monotonic() >= deadline):
                return status
            time.sleep(poll_s)

    # -- worker thread ---------------------------------------------------------------------------------
    def _set(self, **changes) -> None:
        with self._lock:
            if self._status.state == "cancelled" and changes.get("state") != "cancelled":
                return  # a cancel from the main thread wins
            for key, value in changes.items():
                setattr(self._status, key, value)

    def _on_progress(self, fraction: float, stage: str) -> None:
        self._set(state="running", progress=0.1 + 0.8 * max(0.0, min(1.0, fraction)), stage=stage)

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise JobCancelledByUser(self.job_id or "-", "cancelled by the user")

    def _choose_model(self, health: dict) -> dict:
        models = health.get("models", [])
        if self.request.model:
            chosen = next((m for m in models if m.get("name") == self.request.model), None)
            if chosen is None:
                raise WorkerError(f"The worker has no model called {self.request.model!r}.")
            return chosen
        ready = [m for m in models if m.get("state") == "ready"]
        if not ready:
            raise WorkerError("The worker has no model ready; check the checkpoint in the add-on preferences.")
        return ready[0]

    def _prosody(self, fps: float, n_frames: int):
        audio = source_samples(self.source, self.decoder)
        if audio is None:
            return None
        try:
            return prosody_track(audio[0], audio[1], fps, n_frames)
        except ValueError:  # e.g. a take shorter than the analysis window: no prosody, the bake goes on
            return None

    def _run(self) -> None:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        try:
            self._set(stage="connecting to the worker", progress=0.0)
            client = self.manager.client(self.config)
            timings["worker_s"] = time.perf_counter() - t0
            self._check_cancel()
            chosen = self._choose_model(client.health())
            self.mode = resolve_mode(self.request.mode, chosen, self.request.key_names, self.request.vertex_count)
            want = "weights" if self.mode == "CHARACTER" else "vertices"
            if want == "weights" and chosen.get("output_kind") != "blendshapes":
                raise WorkerError(f"Model {chosen.get('name')!r} outputs vertex offsets, not blendshape weights: "
                                  "choose Solve onto Shape Keys, Editable Basis or Mesh Cache.")
            if want == "vertices":
                check_vertex_count(chosen, self.request.vertex_count)
            self._set(state="running", stage="uploading audio", progress=0.05)
            t1 = time.perf_counter()
            self.job_id = client.submit(self.source.data, model=chosen["name"], start_s=self.source.start_s,
                                        end_s=self.source.end_s, client="blender", output=want,
                                        # Remote: float16 halves the bytes (0.01 mm, far under the bake's tolerance);
                                        # a local worker hands over a file, where float32 costs nothing more.
                                        dtype="float16" if client.result_dir is None else None)
            client.wait(self.job_id, poll_s=self.poll_s, on_progress=self._on_progress,
                        should_cancel=self._cancel.is_set)
            timings["inference_s"] = time.perf_counter() - t1
            self._set(stage="downloading", progress=0.9)
            t2 = time.perf_counter()
            data, meta = client.result(self.job_id)
            timings["download_s"] = time.perf_counter() - t2
            self._check_cancel()
            t3 = time.perf_counter()
            # The bake's maths runs in float32 at least; a float16 download is widened here, on the thread.
            data = np.asarray(data, dtype=np.float32)
            prosody = self._prosody(meta["fps"], data.shape[0])
            timings["prosody_s"] = time.perf_counter() - t3
            self.take = Take(name=clean_take_name(self.request.take_name or self.source.label), kind=want, data=data,
                             fps=meta["fps"], first_frame=self.source.first_frame,
                             channels=tuple(chosen.get("channels") or ()) if want == "weights" else (),
                             model=str(chosen.get("name", "")), source=self.source.path or self.source.label,
                             audio_sha256=audio_digest(self.source.data), prosody=prosody)
            self._set(state="done", stage="ready to apply", progress=0.95, timings=timings)
        except JobCancelledByUser as exc:
            self._set(state="cancelled", stage="cancelled", error=str(exc), timings=timings)
        except VertexCountMismatch as exc:
            self._set(state="failed", stage="failed", error=mismatch_sentence(exc), timings=timings)
        except WorkerError as exc:
            self._set(state="failed", stage="failed", error=str(exc), timings=timings)
        except Exception as exc:  # a thread must never die silently: the UI would wait forever
            self._set(state="failed", stage="failed", error=f"Unexpected error: {type(exc).__name__}: {exc}",
                      timings=timings)
