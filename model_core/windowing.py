"""Split a long take into overlapping windows and cross-fade their predictions back together."""

from __future__ import annotations

import numpy as np


def plan_windows(total_frames: int, window_frames: int, overlap_frames: int) -> list[tuple[int, int]]:
    """[(start, end)) frame ranges covering 0..total_frames; neighbours overlap by exactly overlap_frames."""
    if total_frames <= 0:
        return []
    if total_frames <= window_frames:
        return [(0, total_frames)]
    if not 0 <= 2 * overlap_frames < window_frames:
        raise ValueError("The window overlap must be shorter than half the window.")
    hop = window_frames - overlap_frames
    windows = []
    start = 0
    while start + window_frames < total_frames:
        windows.append((start, start + window_frames))
        start += hop
    # The last window ends with the take; it is longer than the overlap, and only its neighbour overlaps it.
    windows.append((start, total_frames))
    return windows


def crossfade_weights(windows: list[tuple[int, int]]) -> list[np.ndarray]:
    """Per-window frame weights: linear ramps across each overlap, summing to 1 at every frame."""
    weights = [np.ones(end - start, dtype=np.float64) for start, end in windows]
    for k in range(len(windows) - 1):
        (s0, e0), (s1, _) = windows[k], windows[k + 1]
        overlap = e0 - s1
        if overlap <= 0:
            continue
        ramp = (np.arange(overlap) + 0.5) / overlap  # rises 0 -> 1 across the overlap
        weights[k][s1 - s0:] *= 1.0 - ramp
        weights[k + 1][:overlap] *= ramp
    return weights
