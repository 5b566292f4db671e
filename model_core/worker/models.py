"""The checkpoints a worker serves: loaded once at start-up, kept warm, failures reported by /health."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from model_core.inference import Animator, JobCancelled
from model_core.shaping import shape_motion
from model_core.worker.jobs import JobCancelledError, JobRequest

MIN_WINDOW_SECONDS = 5.0  # smallest window tried after a GPU out-of-memory error


@dataclass
class ModelSlot:
    name: str
    path: Path
    animator: Animator | None = None
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.animator is not None

    def describe(self) -> dict:
        base = {"name": self.name, "file": self.path.name, "state": "ready" if self.ready else "failed",
                "error": self.error}
        if self.animator is None:
            return base
        info = self.animator.checkpoint.info
        return {**base, "vertex_count": self.animator.vertex_count, "motion_fps": self.animator.fps,
                "styles": self.animator.style_names, "licence": info.licence, "topology": info.topology,
                "has_template": self.animator.template is not None, "output_kind": self.animator.output_kind,
                "channels": self.animator.blendshape_names,
                "outputs": ["vertices", "weights"] if self.animator.output_kind == "blendshapes" else ["vertices"],
                "precision": self.animator.precision}


class ModelRegistry:
    def __init__(self, paths: list[str | Path], device: str = "auto", precision: str = "auto",
                 backend: str = "auto", max_seconds: float = 1800.0) -> None:
        self.device = device
        self.slots: dict[str, ModelSlot] = {}
        for path in paths:
            path = Path(path)
            name = path.name.removesuffix(".safetensors")
            unique, n = name, 2
            while unique in self.slots:
                unique, n = f"{name}-{n}", n + 1
            slot = ModelSlot(unique, path)
            try:
                slot.animator = Animator(path, device=device, precision=precision, backend=backend,
                                         max_seconds=max_seconds)
                self.device = str(slot.animator.device)
            except Exception as exc:  # noqa: BLE001 - a bad checkpoint must not stop the worker
                slot.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.slots[unique] = slot

    def describe(self) -> list[dict]:
        return [slot.describe() for slot in self.slots.values()]

    def resolve(self, name: str | None) -> ModelSlot:
        """The named ready model, or the first ready one; KeyError/LookupError with a sentence otherwise."""
        if name is None:
            for slot in self.slots.values():
                if slot.ready:
                    return slot
            raise LookupError("No model is loaded in this worker; see /health for why.")
        slot = self.slots.get(name)
        if slot is None:
            raise KeyError(f"Unknown model {name!r}; this worker has: {', '.join(self.slots) or 'none'}.")
        if not slot.ready:
            raise LookupError(f"Model {name!r} failed to load: {slot.error}")
        return slot

    def animate(self, request: JobRequest, progress: Callable[[float, str], None],
                should_cancel: Callable[[], bool]) -> tuple[np.ndarray, int, float]:
        """Animate one request; returns (offsets (T, V, 3) or weights (T, K) in the requested dtype; frames; fps).

        This is the JobBoard's runner: the array is the job's result, streamed as .npy from memory when fetched,
        so no serialised copy is ever built.
        """
        animator = self.resolve(request.model).animator
        assert animator is not None
        offsets = self._animate_with_oom_retry(animator, request, progress, should_cancel)
        # The Animator's output is this job's own fresh array, so strength is applied in place (no copy).
        offsets = shape_motion(offsets, animator.fps, strength=request.strength, smoothing_s=request.smoothing_s,
                               weights=request.output == "weights")
        if not np.isfinite(offsets).all():
            # A result full of NaN would bake into a broken animation; fail the job with a reason instead.
            raise ValueError(f"Model {request.model!r} produced non-finite offsets (NaN or infinity) for this audio; "
                             "its weights are probably damaged, so retrain or re-convert the checkpoint.")
        if request.dtype == "float16":
            # torch's vectorised cast: the same values as numpy's astype (round to nearest even, inf past 65504),
            # about 2.5x faster, which matters for a 100 MB take on a busy CPU.
            offsets = torch.from_numpy(offsets).to(torch.float16).numpy()
            if not np.isfinite(offsets).all():
                raise ValueError("The offsets are too large for float16 (over 65504); ask for float32 instead.")
        return offsets, int(offsets.shape[0]), animator.fps

    @staticmethod
    def _animate_with_oom_retry(animator: Animator, request: JobRequest, progress, should_cancel) -> np.ndarray:
        original = animator.window_seconds
        try:
            while True:
                try:
                    animate = animator.animate_weights_16k if request.output == "weights" else animator.animate_16k
                    return animate(request.samples, request.subject, progress=progress, should_cancel=should_cancel)
                except JobCancelled as exc:
                    raise JobCancelledError(str(exc)) from None
                except torch.OutOfMemoryError:
                    if animator.device.type == "cuda":
                        torch.cuda.empty_cache()
                    smaller = animator.window_seconds / 2
                    if smaller < MIN_WINDOW_SECONDS or smaller <= 2 * animator.overlap_seconds:
                        raise MemoryError(
                            "The device ran out of memory even with short windows; free GPU memory or use the CPU."
                        ) from None
                    animator.window_seconds = smaller
                    progress(0.0, f"out of memory: retrying with {smaller:g} s windows")
        finally:
            animator.window_seconds = original
