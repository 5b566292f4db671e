"""The worker client's errors: every one is a `WorkerError` whose message is a sentence an animator can act on."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any


# -- errors ------------------------------------------------------------------------------------------------
class WorkerError(RuntimeError):
    """Anything that went wrong talking to or running the worker; str() is a sentence for the animator."""


class WorkerUnreachable(WorkerError):
    """No HTTP answer at all (refused, reset, timed out, unknown host)."""

    def __init__(self, url: str, reason: str, message: str | None = None) -> None:
        self.url = url
        self.reason = reason
        super().__init__(message or f"The worker at {url} could not be reached ({reason}). "
                                    "Check that it is running and that the address and port are right.")


class WorkerNotRunning(WorkerUnreachable):
    """Nothing listens at the worker's address."""

    def __init__(self, url: str, reason: str = "connection refused") -> None:
        super().__init__(url, reason, f"The worker at {url} is not running ({reason}). Start it from the add-on "
                                      "preferences, or check the address and port.")


class WorkerShutDown(WorkerNotRunning):
    """Nothing listens because the worker process we started has exited (SIGTERM, /shutdown, a crash)."""

    def __init__(self, url: str, exit_code: int) -> None:
        self.exit_code = exit_code
        if exit_code == 0:
            how = "it stopped normally"
        elif exit_code < 0:
            try:
                how = f"it was stopped by signal {signal.Signals(-exit_code).name}"
            except ValueError:
                how = f"it was stopped by signal {-exit_code}"
        else:
            how = f"it exited with code {exit_code}"
        WorkerUnreachable.__init__(self, url, "shut down", f"The worker at {url} has shut down ({how}). Start it "
                                                          "again from the add-on preferences.")


class WorkerTimeout(WorkerUnreachable):
    """The worker accepted the connection but did not answer in time."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(url, "timed out", f"The worker at {url} did not answer within {timeout:g} s; it may be "
                                           "overloaded or stuck. Try again, or restart it.")


class WorkerRequestError(WorkerError):
    """The worker answered with an error: `status` (HTTP), `code` (e.g. "bad_audio") and its `message`."""

    def __init__(self, status: int, code: str, message: str, text: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(text or message)


class WorkerAuthError(WorkerRequestError):
    """HTTP 401: the token is missing or wrong (a restarted worker has a new token)."""

    def __init__(self, url: str, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message,
                         f"The worker at {url} refused the token (HTTP {status}). Use the token it printed when it "
                         "started, or restart the worker from the add-on.")


class WorkerStartError(WorkerError):
    """A local worker could not be started; the message ends with the last lines of its stderr."""

    def __init__(self, message: str, exit_code: int | None = None, stderr_tail: str = "",
                 log_path: str | None = None) -> None:
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail
        self.log_path = log_path
        text = message
        if stderr_tail:
            text += "\nLast lines of its error output:\n" + stderr_tail
        super().__init__(text)


class WaitTimeout(WorkerError):
    """wait() gave up after `timeout_s`; the job may still be running on the worker."""

    def __init__(self, job_id: str, timeout_s: float) -> None:
        self.job_id = job_id
        super().__init__(f"Job {job_id} did not finish within {timeout_s:g} s; the worker may be busy with other "
                         "jobs. Wait longer, or cancel it and try a shorter range.")


class JobFailed(WorkerError):
    """The worker ran the job and it failed; `reason` is the worker's sentence."""

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"The animation job failed: {reason}")


class JobCancelledByUser(WorkerError):
    """The job was cancelled (by should_cancel, by a cancel() call, or because the worker shut down)."""

    def __init__(self, job_id: str, stage: str | None = None) -> None:
        self.job_id = job_id
        self.stage = stage
        detail = f" ({stage})" if stage and stage != "cancelled" else ""
        super().__init__(f"The animation job was cancelled{detail}.")


class VertexCountMismatch(WorkerError):
    """The mesh and the model disagree on the number of vertices; offsets cannot be applied."""

    def __init__(self, mesh_vertices: int, model_vertices: int) -> None:
        self.mesh_vertices = mesh_vertices
        self.model_vertices = model_vertices
        super().__init__(f"This mesh has {mesh_vertices} vertices; the model animates {model_vertices}.")


def check_vertex_count(model: Mapping[str, Any], mesh_vertex_count: int) -> None:
    """Raise unless `model` (one entry of /health's "models") is ready and animates `mesh_vertex_count` vertices."""
    name = model.get("name", "?")
    if model.get("state") != "ready" or model.get("vertex_count") is None:
        reason = model.get("error") or "it is not ready"
        raise WorkerError(f"Model {name!r} is not loaded on the worker: {reason}. Choose another model.")
    expected = int(model["vertex_count"])
    if int(mesh_vertex_count) != expected:
        raise VertexCountMismatch(int(mesh_vertex_count), expected)
