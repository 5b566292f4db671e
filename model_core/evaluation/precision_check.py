"""How far each fast path lands from the exact float32 path on recorded speech.

This is the measurement behind a checkpoint's `precision_error_mm` record (model_core/precision.py): the recipe
that makes a model writes it, and a CPU's `auto` then picks a fast path only for a model it was measured accurate
on. `jambatalk bench` reports the same figure per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

FAST_CPU_PATHS = ("bf16", "int8")


def max_vertex_error_mm(offsets: np.ndarray, reference: np.ndarray) -> float:
    """The largest distance (mm) between corresponding vertices of two (T, V, 3) or (T, V*3) offset arrays in
    metres, over every frame and vertex."""
    a = np.asarray(offsets, dtype=np.float64).reshape(len(offsets), -1, 3)
    b = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1, 3)
    if a.shape != b.shape:
        raise ValueError(f"Cannot compare offsets of shape {a.shape} with {b.shape}.")
    return float(np.linalg.norm(a - b, axis=-1).max()) * 1000.0 if a.size else 0.0


def precision_errors(checkpoint: str | Path, takes: Iterable[np.ndarray],
                     paths: tuple[str, ...] = FAST_CPU_PATHS) -> dict[str, float]:
    """{path: largest vertex error in mm against fp32 over `takes` (16 kHz mono float32)} on this CPU."""
    from model_core.inference import Animator

    takes = list(takes)
    if not takes:
        raise ValueError("Measuring a path's error needs at least one recording.")
    exact = Animator(checkpoint, device="cpu", precision="fp32")
    references = [exact.animate_16k(take) for take in takes]
    del exact
    out = {}
    for path in paths:
        fast = Animator(checkpoint, device="cpu", precision=path)  # loads its own copy: paths convert in place
        out[path] = round(max(max_vertex_error_mm(fast.animate_16k(take), ref)
                              for take, ref in zip(takes, references, strict=True)), 5)
    return out
