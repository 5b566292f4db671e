"""How far each fast path lands from the exact float32 path on recorded speech.

This is the measurement behind a checkpoint's `precision_error_mm` record (model_core/precision.py): the recipe
that makes a model writes it (`jambatalk check-precision CHECKPOINT --record` does it for any checkpoint), and a
CPU's `auto` then picks a fast path only for a model it was measured accurate on. `jambatalk bench` reports the
same figure per row.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from model_core.precision import DEFAULT_ERROR_BAR_MM, ERROR_RECORD_KEY, accurate_paths

FAST_CPU_PATHS = ("bf16", "int8")


def max_vertex_offset_mm(offsets: np.ndarray) -> float:
    """The largest vertex displacement (mm) in a (T, V, 3) or (T, V*3) offset array in metres."""
    moved = np.asarray(offsets, dtype=np.float64).reshape(len(offsets), -1, 3)
    return float(np.linalg.norm(moved, axis=-1).max()) * 1000.0 if moved.size else 0.0


def max_vertex_error_mm(offsets: np.ndarray, reference: np.ndarray) -> float:
    """The largest distance (mm) between corresponding vertices of two (T, V, 3) or (T, V*3) offset arrays in
    metres, over every frame and vertex."""
    a, b = np.asarray(offsets), np.asarray(reference)
    if a.reshape(len(a), -1).shape != b.reshape(len(b), -1).shape:
        raise ValueError(f"Cannot compare offsets of shape {a.shape} with {b.shape}.")
    return max_vertex_offset_mm(a.astype(np.float64) - b.reshape(a.shape))


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


def record_precision_errors(checkpoint: str | Path, errors: dict[str, float]) -> Path:
    """Write `errors` into the checkpoint's provenance (atomically), where `--precision auto` reads it."""
    from model_core.checkpoint import load_checkpoint, save_checkpoint

    loaded = load_checkpoint(checkpoint)
    loaded.info.provenance[ERROR_RECORD_KEY] = dict(errors)
    return save_checkpoint(checkpoint, loaded.model, loaded.info, template=loaded.template)


def add_check_precision_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a .safetensors checkpoint of ours")
    parser.add_argument("audio", nargs="*", help="recordings of speech to measure on (default: the scorecard's "
                                                 "held-out Asterisk prompts and LibriVox clips)")
    parser.add_argument("--record", action="store_true",
                        help="write the figures into the checkpoint, so `--precision auto` may pick a fast path "
                             f"that stays within {DEFAULT_ERROR_BAR_MM} mm for this model")


def run_check_precision_cli(args: argparse.Namespace) -> int:
    from model_core.audio_io import load_audio_file
    from model_core.evaluation.speech_sources import builtin_recordings

    if args.audio:
        takes = [load_audio_file(path).samples for path in args.audio]
    else:
        takes = [r.samples for r in builtin_recordings()]
    errors = precision_errors(args.checkpoint, takes)
    seconds = sum(len(t) for t in takes) / 16000
    print(f"{Path(args.checkpoint).name}: max vertex error against fp32 over {len(takes)} recording(s), "
          f"{seconds:.0f} s of audio")
    for path, mm in errors.items():
        verdict = "within" if mm <= DEFAULT_ERROR_BAR_MM else "over"
        print(f"  {path:5} {mm:.4f} mm  ({verdict} the {DEFAULT_ERROR_BAR_MM} mm a default may add)")
    if args.record:
        record_precision_errors(args.checkpoint, errors)
        fast = sorted(accurate_paths({ERROR_RECORD_KEY: errors}))
        print(f"Recorded in {args.checkpoint}; `--precision auto` may now use "
              f"{', '.join(fast) if fast else 'no fast path'} on CPUs that compute it natively (else fp32).")
    return 0
