"""`LineRunner`: batch lines in, output files and one report row per line out. Both engines run it (a local
process, a Ray actor): models load once per runner, short lines share batched forward passes, a line that fails
(undecodable or silent audio, an unknown subject, a write error) fails alone with its sentence."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from model_core.audio_io import (
    DEFAULT_MAX_SECONDS,
    TARGET_SAMPLE_RATE,
    decode_audio_bytes,
    read_audio_file_bytes,
)
from model_core.batch.manifest import BatchLine
from model_core.batch.packing import pack_batches
from model_core.batch.state import DigestCache, OutputFolder, line_fingerprint, sha256_bytes
from model_core.output_files import VERTEX_CACHE_FORMATS, WEIGHT_FORMATS, check_format, choose_template, write_animation
from model_core.shaping import shape_motion

if TYPE_CHECKING:
    from model_core.inference import Animator


@dataclass(frozen=True)
class RunnerOptions:
    out_dir: str
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    moe_policy: str | None = None
    max_seconds: float = DEFAULT_MAX_SECONDS
    batch_lines: int = 16  # lines per forward pass (1: one by one)
    batch_seconds: float = 120.0  # padded audio per forward pass
    force: bool = False  # redo lines that are done
    threads: int | None = None  # torch intra-op threads of this process (None: torch's choice)


@dataclass
class _Job:
    line: BatchLine
    animator: Animator
    samples: np.ndarray
    fingerprint: str
    template: np.ndarray | None
    audio_seconds: float
    seconds: float  # time spent on this line outside the network


def describe(exc: BaseException) -> str:
    """One sentence for the report: ours are ValueErrors/OSErrors that already are one; others get their type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (ValueError, OSError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class LineRunner:
    def __init__(self, options: RunnerOptions) -> None:
        import torch

        if options.threads:
            torch.set_num_threads(options.threads)
        self.options = options
        self.folder = OutputFolder(options.out_dir)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._digests = DigestCache()
        self._models: dict[str, Animator | Exception] = {}  # checkpoint -> its Animator, or why it did not load
        self._templates: dict[tuple[str, str | None], tuple[np.ndarray, str]] = {}

    # -- the work ------------------------------------------------------------------------------------------------
    def run(self, lines: list[BatchLine], on_row: Callable[[dict], None] | None = None) -> list[dict]:
        """Report rows in the order of `lines` (`on_row` sees each as soon as it exists)."""
        rows: list[dict | None] = [None] * len(lines)
        jobs: dict[str, list[tuple[int, _Job]]] = {}

        def emit(index: int, row: dict) -> None:
            rows[index] = row
            if on_row is not None:
                on_row(row)

        for index, line in enumerate(lines):
            try:
                animator = self._animator(line.model)  # loaded once, outside any line's time
            except ValueError as exc:
                emit(index, self._row(line, "failed", 0.0, compute_s=0.0, error=describe(exc)))
                continue
            started = time.perf_counter()
            try:
                job = self._prepare(line, animator)
            except Exception as exc:  # noqa: BLE001 - one line's failure must not stop the others
                emit(index, self._row(line, "failed", started, error=describe(exc)))
                continue
            if isinstance(job, dict):
                emit(index, job)
            else:
                job.seconds = time.perf_counter() - started
                jobs.setdefault(line.model, []).append((index, job))
        max_padded = max(1, int(self.options.batch_seconds * TARGET_SAMPLE_RATE))
        for members in jobs.values():
            for batch in pack_batches([len(job.samples) for _, job in members], self.options.batch_lines, max_padded):
                chosen = [members[i] for i in batch]
                for (index, job), result, share in zip(chosen, *self._animate([job for _, job in chosen]),
                                                       strict=True):
                    emit(index, self._finish(job, result, share, len(chosen)))
        return [row for row in rows if row is not None]

    def _prepare(self, line: BatchLine, animator: Animator) -> _Job | dict:
        """Check the line and read its audio: a skipped row when it is done already, else a job."""
        started = time.perf_counter()
        for fmt in line.formats:
            check_format(fmt, animator.output_kind, line.model)
        template, template_digest = None, None
        if any(fmt in VERTEX_CACHE_FORMATS for fmt in line.formats):
            template, template_digest = self._template(animator, line)
        data = read_audio_file_bytes(line.audio)
        # "float32" as before the CPU paths existed, so a re-run of an fp32 batch skips its done lines.
        precision = "float32" if animator.precision == "fp32" else animator.precision
        params = {"formats": list(line.formats), "subject": line.subject, "strength": line.strength,
                  "smoothing_s": line.smoothing_s, "start_s": line.start_s, "end_s": line.end_s,
                  "template": template_digest, "precision": precision,
                  "moe_policy": self.options.moe_policy}
        fingerprint = line_fingerprint(sha256_bytes(data), self._digests.digest(line.model), params)
        if not self.options.force:
            record = self.folder.done(line.output, fingerprint)
            if record is not None:
                info = record.info
                return self._row(line, "skipped", started, files=list(record.files), frames=info.get("frames"),
                                 fps=info.get("fps"), audio_seconds=info.get("audio_seconds"), fingerprint=fingerprint)
        audio = decode_audio_bytes(data, max_seconds=self.options.max_seconds, name=line.audio,
                                   start_s=line.start_s, end_s=line.end_s)
        del data
        return _Job(line, animator, audio.samples, fingerprint, template, audio.duration_s, 0.0)

    def _animate(self, jobs: list[_Job]) -> tuple[list[object], list[float]]:
        """Each job's output (or the exception it raised) and its share of the compute time, by frames."""
        animator = jobs[0].animator
        started = time.perf_counter()
        try:
            results = animator.animate_batch_16k([j.samples for j in jobs], [j.line.subject for j in jobs])
            elapsed = time.perf_counter() - started
            frames = [len(r) for r in results]
            return results, [elapsed * f / max(1, sum(frames)) for f in frames]
        except Exception as exc:  # noqa: BLE001 - isolate: one line's problem must not fail its batch
            if len(jobs) == 1:
                return [exc], [time.perf_counter() - started]
        results, shares = [], []
        for job in jobs:
            result, share = self._animate([job])
            results += result
            shares += share
        return results, shares

    def _finish(self, job: _Job, result: object, share: float, batch_lines: int) -> dict:
        started = time.perf_counter()
        line, animator = job.line, job.animator
        extra = {"audio_seconds": round(job.audio_seconds, 3), "batch_lines": batch_lines,
                 "fingerprint": job.fingerprint}
        try:
            if isinstance(result, BaseException):
                raise result
            weights = animator.output_kind == "blendshapes"
            values = shape_motion(result, animator.fps, strength=line.strength, smoothing_s=line.smoothing_s,
                                  weights=weights)
            if not np.isfinite(values).all():
                raise ValueError(f"The model {line.model} produced non-finite values (NaN or infinity) for this "
                                 "audio; its weights are probably damaged.")
            offsets = None
            files = []
            for fmt in line.formats:
                if fmt in WEIGHT_FORMATS:
                    out = values
                else:
                    if offsets is None:
                        offsets = animator.weights_to_offsets(values) if weights else values
                    out = offsets
                target = self.folder.target(line.output, fmt)
                target.parent.mkdir(parents=True, exist_ok=True)
                files.append(write_animation(target, fmt, out, fps=animator.fps, names=animator.blendshape_names,
                                             template=job.template, source=line.audio))
            compute = job.seconds + share + time.perf_counter() - started
            info = {"frames": int(len(values)), "fps": animator.fps, "audio_seconds": extra["audio_seconds"],
                    "compute_s": round(compute, 4)}
            self.folder.commit(line.output, job.fingerprint, files, info)
        except Exception as exc:  # noqa: BLE001 - this line fails alone
            return self._row(line, "failed", started, error=describe(exc),
                             compute_s=job.seconds + share + time.perf_counter() - started, **extra)
        return self._row(line, "done", started, files=[f.relative_to(self.folder.root).as_posix() for f in files],
                         frames=int(len(values)), fps=animator.fps, compute_s=compute, **extra)

    # -- models and templates, loaded once -------------------------------------------------------------------------
    def _animator(self, path: str) -> Animator:
        if path not in self._models:
            from model_core.inference import Animator

            o = self.options
            try:
                self._models[path] = Animator(path, device=o.device, precision=o.precision, backend=o.backend,
                                              moe_policy=o.moe_policy, max_seconds=o.max_seconds)
            except Exception as exc:  # noqa: BLE001 - its lines fail with this sentence; other models go on
                self._models[path] = exc
        model = self._models[path]
        if isinstance(model, BaseException):
            raise ValueError(f"The model {path} could not be loaded: {describe(model)}")
        return model

    def _template(self, animator: Animator, line: BatchLine) -> tuple[np.ndarray, str]:
        key = (line.model, line.template)
        if key not in self._templates:
            template = choose_template(line.template, animator.template, animator.vertex_count)
            digest = self._digests.digest(line.template) if line.template else "checkpoint"
            self._templates[key] = (template, digest)
        return self._templates[key]

    def _row(self, line: BatchLine, status: str, started: float, *, compute_s: float | None = None,
             **fields: object) -> dict:
        compute_s = time.perf_counter() - started if compute_s is None else compute_s
        return report_row(line, status, worker=self.worker, compute_s=round(compute_s, 4), **fields)


def report_row(line: BatchLine, status: str, *, error: str = "", files: list[str] | None = None,
               frames: int | None = None, fps: float | None = None, audio_seconds: float | None = None,
               compute_s: float | None = None, batch_lines: int | None = None, fingerprint: str = "",
               worker: str = "") -> dict:
    """One line's row of the report: status is "done", "skipped" or "failed" (then `error` says why)."""
    return {"line": line.number, "audio": line.audio, "output": line.output, "model": line.model, "status": status,
            "audio_seconds": audio_seconds, "frames": frames, "fps": fps, "compute_s": compute_s,
            "batch_lines": batch_lines, "files": files or [], "error": error, "fingerprint": fingerprint,
            "worker": worker, "extra": dict(line.extra)}
