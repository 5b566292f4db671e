"""One "Animate from audio" bake: worker I/O on a background thread, writing into Blender on the main thread.

`BakeJob.start()` runs a thread that only talks to the worker (start/reuse it, check the model, upload, wait,
download) and never touches bpy. The main thread calls `poll()` (from a modal operator's timer, or in a loop
when headless: timers never fire in the bpy module) and, once the state is "done", `apply()` to resample,
decompose, reduce and write shape keys or a mesh cache. `cancel()` may be called at any time.

`WorkerManager` owns the local worker process: started on first use, reused while its settings stay the same,
stopped when the extension is disabled.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .audio_source import AudioSource
from .core import bake_math, keyframes, timing
from .core.worker_client import (
    JobCancelledByUser,
    LocalWorker,
    VertexCountMismatch,
    WorkerClient,
    WorkerError,
    check_vertex_count,
)

MODES = ("SHAPE_KEYS", "MESH_CACHE")


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
class BakeSettings:
    mode: str = "SHAPE_KEYS"
    take_name: str = ""
    model: str | None = None
    strength: float = 1.0
    smoothing_s: float = 0.0
    timing_offset_frames: float = 0.0
    tolerance_m: float = keyframes.DEFAULT_TOLERANCE_M
    variance_target: float = 0.999
    max_keys: int = 64


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


def _mismatch_sentence(exc: VertexCountMismatch) -> str:
    return (f"{exc} Animate a mesh with the model's topology (same vertex count and order as its training "
            "meshes, e.g. FLAME's 5023 vertices).")


class BakeJob:
    """One bake. Thread-safe: poll()/cancel() from the main thread while the worker thread runs."""

    def __init__(self, manager: WorkerManager, config: WorkerConfig, source: AudioSource, vertex_count: int,
                 settings: BakeSettings, poll_s: float = 0.05) -> None:
        if settings.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {settings.mode!r}")
        self.manager = manager
        self.config = config
        self.source = source
        self.vertex_count = int(vertex_count)
        self.settings = settings
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._status = JobStatus("starting", 0.0, "starting")
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.offsets: np.ndarray | None = None
        self.meta: dict | None = None
        self.job_id: str | None = None
        self.result_info: dict | None = None

    # -- main-thread API -------------------------------------------------------------------------------
    def start(self) -> BakeJob:
        self._thread = threading.Thread(target=self._run, name="jambatalk-bake", daemon=True)
        self._started_at = time.perf_counter()
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

    def _run(self) -> None:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        try:
            self._set(stage="connecting to the worker", progress=0.0)
            client = self.manager.client(self.config)
            timings["worker_s"] = time.perf_counter() - t0
            if self._cancel.is_set():
                raise JobCancelledByUser("-", "cancelled by the user")
            health = client.health()
            models = [m for m in health.get("models", []) if m.get("state") == "ready"]
            if self.settings.model:
                chosen = next((m for m in health.get("models", []) if m.get("name") == self.settings.model), None)
                if chosen is None:
                    raise WorkerError(f"The worker has no model called {self.settings.model!r}.")
            elif models:
                chosen = models[0]
            else:
                raise WorkerError("The worker has no model ready; check the checkpoint in the add-on preferences.")
            check_vertex_count(chosen, self.vertex_count)
            self._set(state="running", stage="uploading audio", progress=0.05)
            t1 = time.perf_counter()
            self.job_id = client.submit(self.source.data, model=chosen["name"], start_s=self.source.start_s,
                                        end_s=self.source.end_s, strength=self.settings.strength,
                                        smoothing_s=self.settings.smoothing_s, client="blender",
                                        # Remote: float16 halves the bytes (0.01 mm, far under the bake's tolerance);
                                        # a local worker hands over a file, where float32 costs nothing more.
                                        dtype="float16" if client.result_dir is None else None)
            client.wait(self.job_id, poll_s=self.poll_s, on_progress=self._on_progress,
                        should_cancel=self._cancel.is_set)
            timings["inference_s"] = time.perf_counter() - t1
            self._set(stage="downloading", progress=0.9)
            t2 = time.perf_counter()
            offsets, meta = client.result(self.job_id)
            timings["download_s"] = time.perf_counter() - t2
            if self._cancel.is_set():
                raise JobCancelledByUser(self.job_id, "cancelled by the user")
            # The bake's maths runs in float32 at least; a float16 download is widened here, on the thread.
            self.offsets, self.meta = np.asarray(offsets, dtype=np.float32), meta
            self._set(state="done", stage="ready to apply", progress=0.95, timings=timings)
        except JobCancelledByUser as exc:
            self._set(state="cancelled", stage="cancelled", error=str(exc), timings=timings)
        except VertexCountMismatch as exc:
            self._set(state="failed", stage="failed", error=_mismatch_sentence(exc), timings=timings)
        except WorkerError as exc:
            self._set(state="failed", stage="failed", error=str(exc), timings=timings)
        except Exception as exc:  # a thread must never die silently: the UI would wait forever
            self._set(state="failed", stage="failed", error=f"Unexpected error: {type(exc).__name__}: {exc}",
                      timings=timings)

    # -- main thread: write the result -----------------------------------------------------------------
    def apply(self, obj, scene) -> dict:
        """Write the finished take onto ``obj`` (main thread; the caller's operator makes it one undo step)."""
        from . import bpy_writers  # bpy is only needed here

        status = self.poll()
        if status.state != "done" or self.offsets is None or self.meta is None:
            raise bpy_writers.BakeError(status.error or f"The job is not finished ({status.state}).")
        offsets, meta = self.offsets, self.meta
        count = len(obj.data.vertices) if obj is not None and obj.type == "MESH" else None
        if count is None:
            raise bpy_writers.BakeError("Select a mesh object to animate.")
        if offsets.shape[1] != count:
            raise bpy_writers.BakeError(_mismatch_sentence(VertexCountMismatch(count, offsets.shape[1])))
        t0 = time.perf_counter()
        scene_fps = timing.effective_fps(scene.render.fps, scene.render.fps_base)
        first = self.source.first_frame + float(self.settings.timing_offset_frames)
        take = self.settings.take_name or self.source.label
        offsets = np.asarray(offsets, dtype=np.float32)
        if self.settings.mode == "SHAPE_KEYS":
            # K: the variance target, or fewer keys once the mesh is within the animator's tolerance.
            basis = bake_math.decompose(offsets, variance_target=self.settings.variance_target,
                                        max_keys=self.settings.max_keys, error_tolerance_m=self.settings.tolerance_m)
            t1 = time.perf_counter()
            weights = timing.resample_to_scene(basis.weights, meta["fps"], scene_fps)
            curves = keyframes.reduce_keyframes(weights, basis.scales, self.settings.tolerance_m, shapes=basis.shapes)
            t2 = time.perf_counter()
            frames = timing.scene_frames(first, weights.shape[0])
            info = bpy_writers.bake_shape_keys(obj, basis, curves, frames, take)
            t3 = time.perf_counter()
            info["timings"] = {"decompose_s": t1 - t0, "reduce_s": t2 - t1, "write_s": t3 - t2}
            info["tolerance_m"] = float(self.settings.tolerance_m)
        else:
            resampled = timing.resample_to_scene(offsets, meta["fps"], scene_fps)
            t1 = time.perf_counter()
            info = bpy_writers.bake_mesh_cache(obj, resampled, first, take)
            info["timings"] = {"resample_s": t1 - t0, "write_s": time.perf_counter() - t1}
        info["model_frames"] = int(offsets.shape[0])
        info["model_fps"] = float(meta["fps"])
        info["scene_fps"] = scene_fps
        info["first_frame"] = first
        info["timings"].update(status.timings)
        self.result_info = info
        with self._lock:
            self._status = JobStatus("applied", 1.0, "done", None, status.timings)
        return info
