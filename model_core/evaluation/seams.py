"""Do long takes show their windows? Frame-to-frame motion at the joins of the cross-faded windows, against the
motion everywhere else, on a long recording (e.g. 10 minutes of real speech strung together)."""

from __future__ import annotations

import numpy as np

from model_core.windowing import plan_windows


def join_frames(total: int, window: int, overlap: int) -> np.ndarray:
    """Frames where a cross-fade starts or ends (where a seam would show)."""
    windows = plan_windows(total, window, overlap)
    edges = {start for start, _ in windows[1:]} | {end for _, end in windows[:-1]}
    return np.array(sorted(e for e in edges if 0 < e < total), dtype=np.int64)


def seam_report(animator, samples: np.ndarray) -> dict:
    """Largest per-frame change of the mesh (mm) within a frame of any join, and percentiles elsewhere."""
    offsets = animator.animate(samples, 16000)
    step = np.linalg.norm(np.diff(offsets, axis=0), axis=2).max(axis=1) * 1000.0  # (T-1,) worst vertex, mm
    fps = animator.fps
    joins = join_frames(len(offsets), max(1, round(animator.window_seconds * fps)),
                        round(animator.overlap_seconds * fps))
    near = np.zeros(len(step), dtype=bool)
    for j in joins:
        near[max(0, j - 2): min(len(step), j + 2)] = True
    away = step[~near]
    return {"seconds": round(len(samples) / 16000, 1), "frames": int(len(offsets)), "joins": int(len(joins)),
            "max_step_at_joins_mm": float(step[near].max()) if near.any() else 0.0,
            "p99_step_elsewhere_mm": float(np.percentile(away, 99)), "max_step_elsewhere_mm": float(away.max()),
            "seamless": bool(not near.any() or step[near].max() <= away.max())}


def real_speech_minutes(minutes: float = 10.0, pause_s: float = 0.3) -> np.ndarray:
    """Asterisk prompts (16 kHz, all of them in name order) strung together with short pauses."""
    from model_core.corpus.asterisk import asterisk_prompts

    parts, total = [], 0
    gap = np.zeros(int(pause_s * 16000), dtype=np.float32)
    for rec in asterisk_prompts("all"):
        if total >= minutes * 60 * 16000:
            break
        audio = rec.audio()
        parts += [audio, gap]
        total += len(audio) + len(gap)
    return np.concatenate(parts)[: int(minutes * 60 * 16000)]
